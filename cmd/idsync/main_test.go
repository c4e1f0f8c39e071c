package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
	"github.com/idsync/idsync/storage/storagetest"
)

// run executes idsync in-process with args and returns what it printed.
func run(t *testing.T, db string, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetArgs(append([]string{"--database", db}, args...))
	root.SetOut(&out)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// cliFor returns a runner of idsync commands on db that fails the test on
// any error.
func cliFor(t *testing.T, db string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out, err := run(t, db, args...)
		if err != nil {
			t.Fatalf("idsync %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
}

func TestCLI(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			db := b.DSN(t)
			mustRun := cliFor(t, db)
			mustRun("org", "create", "acme", "--name", "Acme")
			mustRun("domain", "add", "acme", "acme.com", "--verified")
			mustRun("source", "create", "acme", "entra", "--kind", "scim", "--priority", "10")

			csv := filepath.Join(t.TempDir(), "people.csv")
			os.WriteFile(csv, []byte("userName,email,department,groups\nada@acme.com,ada@acme.com,R&D,eng;all\nbob@acme.com,bob@acme.com,Sales,all\n"), 0o600)

			var plan engine.Plan
			if err := json.Unmarshal([]byte(mustRun("-o", "json", "plan", "acme", csv)), &plan); err != nil {
				t.Fatal(err)
			}
			if plan.Counts.Created != 2 || plan.Events["identity.created"] != 2 {
				t.Fatalf("plan = %+v", plan)
			}
			// The plan wrote nothing: importing now creates both.
			if err := json.Unmarshal([]byte(mustRun("-o", "json", "person", "import", "acme", csv)), &plan); err != nil {
				t.Fatal(err)
			}
			if plan.Counts.Created != 2 {
				t.Fatalf("import after plan: %+v", plan.Counts)
			}
			if err := json.Unmarshal([]byte(mustRun("-o", "json", "person", "import", "acme", csv)), &plan); err != nil {
				t.Fatal(err)
			}
			if plan.Counts.Unchanged != 2 || plan.Counts.Created != 0 {
				t.Fatalf("second import: %+v", plan.Counts)
			}

			var tok struct {
				Token  engine.Token `json:"token"`
				Secret string       `json:"secret"`
			}
			if err := json.Unmarshal([]byte(mustRun("-o", "json", "token", "create", "scim", "--source", "acme/entra")), &tok); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(tok.Secret, "idss_") || tok.Token.SourceID == "" {
				t.Fatalf("token = %+v", tok)
			}
			export := mustRun("audit", "export", "--format", "jsonl", "--org", "acme")
			if strings.Contains(export, tok.Secret) {
				t.Fatal("the audit export contains a token secret")
			}
			if !strings.Contains(export, `"action":"identity.created"`) || !strings.Contains(export, `"action":"token.created"`) {
				t.Fatalf("export lacks events:\n%s", export)
			}
			csvOut := mustRun("audit", "export", "--format", "csv", "--action", "identity.created")
			if n := strings.Count(csvOut, "identity.created"); n != 2 {
				t.Fatalf("csv export filtered by action has %d identity.created rows:\n%s", n, csvOut)
			}
			if out := mustRun("audit", "verify"); !strings.HasPrefix(out, "ok:") {
				t.Fatalf("verify: %s", out)
			}

			// Tamper with one event: verify fails with a non-zero exit.
			s, err := storage.Open(context.Background(), db, storage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.SQL().Exec(s.SQL().Rebind(`UPDATE audit_events SET actor = ? WHERE seq = 3`), "mallory"); err != nil {
				t.Fatal(err)
			}
			s.Close()
			out, err := run(t, db, "audit", "verify")
			if err == nil || !strings.Contains(out, "BROKEN at event 3") || exitCode(err) != 4 {
				t.Fatalf("verify after tampering: err=%v code=%d out=%s", err, exitCode(err), out)
			}

			if _, err := run(t, db, "org", "create", "Bad Slug"); !errors.Is(err, engine.ErrInvalid) || exitCode(err) != 2 {
				t.Fatalf("bad slug: %v", err)
			}
			// A source config its connector cannot read is refused when written.
			if _, err := run(t, db, "source", "create", "acme", "corp", "--kind", "ldap", "--config", `{"url":"ftp://x"}`); !errors.Is(err, engine.ErrInvalid) ||
				!strings.Contains(err.Error(), "baseDN is required") {
				t.Fatalf("bad ldap config: %v", err)
			}
			if _, err := run(t, db, "source", "create", "acme", "corp", "--kind", "ldap", "--config",
				`{"url":"ldap://127.0.0.1:389","baseDN":"dc=example,dc=org"}`); err != nil {
				t.Fatalf("good ldap config: %v", err)
			}
			if _, err := run(t, db, "source", "list", "nope"); !errors.Is(err, engine.ErrNotFound) {
				t.Fatalf("unknown org: %v", err)
			}
		})
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServe builds the binary, starts `idsync serve` on an empty SQLite
// database, checks the first-start key, health, readiness and metrics, and
// that SIGTERM stops it gracefully.
func TestServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "idsync")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := freePort(t)
	db := filepath.Join(dir, "idsync.db")
	start := func() (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(bin, "serve", "--database", db, "--listen", addr)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + "/healthz")
			if err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("serve did not come up: %s", stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		return cmd, &stderr
	}
	stop := func(cmd *exec.Cmd) {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("serve exited with %v after SIGTERM", err)
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Fatal("serve did not stop on SIGTERM")
		}
	}

	cmd, stderr := start()
	for path, want := range map[string]string{"/healthz": `"ok"`, "/readyz": `"ready"`} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(body.String(), want) {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body.String())
		}
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var m bytes.Buffer
	m.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`idsync_http_requests_total{code="200",route="GET /healthz"}`, "idsync_audit_events_total"} {
		if !strings.Contains(m.String(), want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
	stop(cmd)
	key := regexp.MustCompile(`idsk_[A-Za-z0-9_-]{43}`).FindString(stderr.String())
	if key == "" {
		t.Fatalf("no first-start key printed:\n%s", stderr.String())
	}
	if strings.Count(stderr.String(), key) != 1 {
		t.Fatal("the key was printed (or logged) more than once")
	}

	// The key works and a second start prints no new one.
	s, err := storage.Open(context.Background(), db, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.New(s, engine.Options{}).Authenticate(context.Background(), key); err != nil {
		t.Fatalf("bootstrap key does not authenticate: %v", err)
	}
	s.Close()
	cmd, stderr = start()
	stop(cmd)
	if strings.Contains(stderr.String(), "idsk_") {
		t.Fatal("a second start printed another key")
	}
}
