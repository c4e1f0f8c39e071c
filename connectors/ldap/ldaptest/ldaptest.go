// Package ldaptest starts a throwaway OpenLDAP slapd on a free loopback
// port for tests and benchmarks, seeded from LDIF files. It owns only the
// test server's lifecycle (its own temp directory and process, killed and
// removed when the test ends); it must not touch a system slapd or its
// configuration.
//
// Without slapd installed, Start skips the test through
// storagetest.SkipOrFail (so it fails under IDSYNC_REQUIRE_SERVICES=1).
package ldaptest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/storage/storagetest"
)

// Base, AdminDN and AdminPassword name the test directory and its root
// user.
const (
	Base          = "dc=test"
	AdminDN       = "cn=admin,dc=test"
	AdminPassword = "test-secret"
)

// Server is a running test slapd.
type Server struct {
	URL string // ldap://127.0.0.1:PORT
	// With Options.TLS: LDAPSURL is ldaps://localhost:PORT and CAFile the
	// PEM of the CA that signed the server's certificate (for localhost);
	// URL then speaks StartTLS too.
	LDAPSURL string
	CAFile   string
	Dir      string
	conf     string
	tls      bool
	cmd      *exec.Cmd
}

// Options choose how the server is seeded.
type Options struct {
	// LDIF files added online (ldapadd) after start, so overlays such as
	// memberof see them.
	LDIF []string
	// Offline LDIF files loaded with slapadd before start (fast; for
	// large benchmark data; overlays do not run).
	Offline []string
	// TLS makes a throwaway CA and server certificate and serves ldaps://
	// besides ldap:// (with StartTLS).
	TLS bool
}

// TestdataDir is the absolute path of connectors/ldap/testdata.
func TestdataDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata")
}

// Start starts slapd and seeds it; it is stopped when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	slapd, err := exec.LookPath("slapd")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/slapd"); err2 == nil {
			slapd = "/usr/sbin/slapd"
		} else {
			storagetest.SkipOrFail(t, "LDAP tests need slapd and ldap-utils (apt-get install slapd ldap-utils); .ci/run installs them")
		}
	}
	for _, tool := range []string{"ldapadd", "slapadd"} {
		if _, err := lookTool(tool); err != nil {
			storagetest.SkipOrFail(t, "LDAP tests need "+tool+" (apt-get install slapd ldap-utils)")
		}
	}
	dir, err := os.MkdirTemp("", "idsync-slapd-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Server{Dir: dir, conf: filepath.Join(dir, "slapd.conf"), tls: opts.TLS}
	if opts.TLS {
		if err := writeCerts(dir); err != nil {
			t.Fatal(err)
		}
		s.CAFile = filepath.Join(dir, "ca.pem")
	}
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.conf, []byte(s.config()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range opts.Offline {
		if out, err := exec.Command(mustTool(t, "slapadd"), "-q", "-f", s.conf, "-l", f).CombinedOutput(); err != nil {
			t.Fatalf("slapadd %s: %v\n%s", f, err, out)
		}
	}
	var dropArgs []string
	if os.Geteuid() == 0 { // slapd drops to the openldap user itself
		if u, err := user.Lookup("openldap"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			_ = filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, uid, gid) })
			dropArgs = []string{"-u", "openldap", "-g", u.Gid}
		}
	}
	port := freePort(t)
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", port)
	listen := s.URL
	if opts.TLS {
		tlsPort := freePort(t)
		s.URL = fmt.Sprintf("ldap://localhost:%d", port)
		s.LDAPSURL = fmt.Sprintf("ldaps://localhost:%d", tlsPort)
		listen = fmt.Sprintf("ldap://127.0.0.1:%d ldaps://127.0.0.1:%d", port, tlsPort)
	}
	args := append([]string{"-d", "0", "-h", listen, "-f", s.conf}, dropArgs...)
	s.cmd = exec.Command(slapd, args...)
	logf, err := os.Create(filepath.Join(dir, "slapd.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start slapd: %v", err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "slapd.log"))
			t.Fatalf("slapd did not listen on %s: %v\n%s", s.URL, err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, f := range opts.LDIF {
		s.Modify(t, "ldapadd", f)
	}
	return s
}

// Modify runs ldapadd, ldapmodify or ldapdelete (with -f file, or the LDIF
// text itself when it holds a newline) as the admin, with extra flags
// (e.g. -M to manage referral objects, -c to continue on errors).
func (s *Server) Modify(t testing.TB, tool, ldif string, flags ...string) {
	t.Helper()
	file := ldif
	if strings.Contains(ldif, "\n") {
		f, err := os.CreateTemp(s.Dir, "change-*.ldif")
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(ldif)
		f.Close()
		file = f.Name()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append([]string{"-x", "-H", s.URL, "-D", AdminDN, "-w", AdminPassword, "-f", file}, flags...)
	cmd := exec.CommandContext(ctx, mustTool(t, tool), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, filepath.Base(file), err, out)
	}
}

// Stop kills the server now (to test an unreachable directory).
func (s *Server) Stop() {
	_ = s.cmd.Process.Kill()
	_, _ = s.cmd.Process.Wait()
}

func (s *Server) config() string {
	schema := "/etc/ldap/schema"
	var b strings.Builder
	for _, f := range []string{"core", "cosine", "inetorgperson", "nis"} {
		fmt.Fprintf(&b, "include %s/%s.schema\n", schema, f)
	}
	fmt.Fprintf(&b, "include %s\n", filepath.Join(TestdataDir(), "schema.schema"))
	if s.tls {
		fmt.Fprintf(&b, "TLSCACertificateFile %[1]s/ca.pem\nTLSCertificateFile %[1]s/server.pem\nTLSCertificateKeyFile %[1]s/server.key\n", s.Dir)
	}
	fmt.Fprintf(&b, `pidfile %[1]s/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
sizelimit unlimited
database mdb
maxsize 1073741824
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/db
index objectClass eq
index uid eq
index modifyTimestamp eq
index entryUUID eq
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
limits dn.exact="%[3]s" size=unlimited size.pr=unlimited
`, s.Dir, Base, AdminDN, AdminPassword)
	return b.String()
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/bin"} {
		if p := filepath.Join(d, name); fileExists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

func mustTool(t testing.TB, name string) string {
	p, err := lookTool(name)
	if err != nil {
		storagetest.SkipOrFail(t, err.Error())
	}
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
