package ldap_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/connectors/ldap"
	"github.com/idsync/idsync/connectors/ldap/ldaptest"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage/storagetest"
)

// BenchmarkLDAPSync100k measures, against a local slapd holding
// IDSYNC_BENCH_LDAP_USERS users (default 100,000, loaded with slapadd,
// in 100 groups) and an empty SQLite graph, in one run:
//
//	full-s        first full sync (everything created)
//	ldapsearch-s  `ldapsearch -E pr=1000/noprompt` dumping the same entries
//	ratio         full-s / ldapsearch-s
//	second-s      second full sync, no change (must write nothing)
//	incr-s        incremental sync of 1,000 changed entries
//	peak-MB       the process's peak RSS during the first full sync
//
// Run: go test ./connectors/ldap -run '^$' -bench LDAPSync100k -benchtime 1x
func BenchmarkLDAPSync100k(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("IDSYNC_BENCH_LDAP_USERS")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	ldif := filepath.Join(dir, "bench.ldif")
	writeBenchLDIF(b, ldif, n)
	s := ldaptest.Start(b, ldaptest.Options{Offline: []string{ldif}})
	b.Setenv(pwEnv, ldaptest.AdminPassword)
	for i := 0; i < b.N; i++ {
		f := storagetest.NewFixture(b, storagetest.SQLite(b))
		src := newBenchSource(b, f, s)

		resetPeak()
		start := time.Now()
		plan, mark, err := ldapSync(f, src, true, "")
		full := time.Since(start)
		peak := peakRSS()
		if err != nil || plan.Counts.Created != n {
			b.Fatalf("full sync: %v %+v", err, plan.Counts)
		}

		start = time.Now()
		out, err := exec.Command("ldapsearch", "-x", "-LLL", "-H", s.URL, "-D", ldaptest.AdminDN, "-w", ldaptest.AdminPassword,
			"-b", "ou=people,"+ldaptest.Base, "-E", "pr=1000/noprompt", "(objectClass=inetOrgPerson)").Output()
		dump := time.Since(start)
		if err != nil || strings.Count(string(out), "\ndn: ")+1 < n {
			b.Fatalf("ldapsearch: %v (%d bytes)", err, len(out))
		}

		seq := f.AuditSeq()
		start = time.Now()
		plan, _, err = ldapSync(f, src, true, "")
		second := time.Since(start)
		if err != nil || plan.Counts.Unchanged != n || f.AuditSeq() != seq {
			b.Fatalf("second full sync: %v %+v, %d audit events", err, plan.Counts, f.AuditSeq()-seq)
		}

		var mod strings.Builder
		for j := 0; j < 1000; j++ {
			fmt.Fprintf(&mod, "dn: uid=b%06d,ou=people,dc=test\nchangetype: modify\nreplace: title\ntitle: Changed %d\n\n", j*(n/1000), i)
		}
		s.Modify(b, "ldapmodify", mod.String())
		start = time.Now()
		plan, _, err = ldapSync(f, src, false, mark)
		incr := time.Since(start)
		if err != nil || plan.Counts.Updated != 1000 || plan.Counts.Seen != 1000 {
			b.Fatalf("incremental: %v %+v", err, plan.Counts)
		}
		b.ReportMetric(full.Seconds(), "full-s")
		b.ReportMetric(dump.Seconds(), "ldapsearch-s")
		b.ReportMetric(full.Seconds()/dump.Seconds(), "ratio")
		b.ReportMetric(second.Seconds(), "second-s")
		b.ReportMetric(incr.Seconds(), "incr-s")
		b.ReportMetric(float64(peak)/1024, "peak-MB")
	}
}

func ldapSync(f *storagetest.Fixture, src engine.Source, full bool, mark string) (engine.Plan, string, error) {
	src, err := f.DB.Source(bg, src.ID)
	if err != nil {
		return engine.Plan{}, "", err
	}
	return ldap.Sync(bg, f.Engine, src, full, mark, engine.SnapshotOptions{})
}

func newBenchSource(b *testing.B, f *storagetest.Fixture, s *ldaptest.Server) engine.Source {
	cfg := people(s, map[string]any{"pageSize": 1000, "nestedGroups": false, "timeout": "120s"})
	return newSource(b, f, "bench", cfg)
}

// writeBenchLDIF writes n users (modifyTimestamp in the past, so the
// first watermark is below every later change) in 100 groups.
func writeBenchLDIF(b *testing.B, path string, n int) {
	fh, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(fh, 1<<20)
	fmt.Fprint(w, "dn: dc=test\nobjectClass: dcObject\nobjectClass: organization\ndc: test\no: Test\n\n")
	fmt.Fprint(w, "dn: ou=people,dc=test\nobjectClass: organizationalUnit\nou: people\n\n")
	fmt.Fprint(w, "dn: ou=groups,dc=test\nobjectClass: organizationalUnit\nou: groups\n\n")
	stamp := "modifyTimestamp: 20200101000000Z\ncreateTimestamp: 20200101000000Z\ncreatorsName: cn=admin,dc=test\nmodifiersName: cn=admin,dc=test\n"
	for i := 0; i < n; i++ {
		fmt.Fprintf(w, "dn: uid=b%06d,ou=people,dc=test\nobjectClass: inetOrgPerson\nuid: b%06d\ncn: Bench %d\ngivenName: Bench\nsn: B%06d\nmail: b%06d@bench.test\ntitle: Engineer\ndepartmentNumber: D%d\nemployeeNumber: %d\n%s\n",
			i, i, i, i, i, i%20, i, stamp)
	}
	for g := 0; g < 100; g++ {
		fmt.Fprintf(w, "dn: cn=team%02d,ou=groups,dc=test\nobjectClass: groupOfNames\ncn: team%02d\n", g, g)
		for i := g; i < n; i += 100 {
			fmt.Fprintf(w, "member: uid=b%06d,ou=people,dc=test\n", i)
		}
		fmt.Fprintf(w, "%s\n", stamp)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	fh.Close()
}

// resetPeak resets the process's peak RSS (VmHWM); peakRSS reads it in KiB.
func resetPeak() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func peakRSS() int {
	bs, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(bs), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}
