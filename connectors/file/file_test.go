package file_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idsync/idsync/connectors/file"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage/storagetest"
)

var bg = context.Background()

func source(t *testing.T, f *storagetest.Fixture, cfg map[string]any) engine.Source {
	t.Helper()
	b, _ := json.Marshal(cfg)
	s, err := f.Engine.CreateSource(bg, engine.Admin{Actor: "test"}, engine.Source{OrgID: f.Org.ID, Kind: engine.KindFile,
		Name: "hr-" + cfg["format"].(string), Priority: 40, Config: b}, true)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func live(t *testing.T, f *storagetest.Fixture, src engine.Source) int {
	t.Helper()
	n, err := f.DB.CountAccounts(bg, src.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFileSync: CSV and JSON lines files as snapshots and upserts; a
// missing file, a malformed line and an emptied file remove no one.
func TestFileSync(t *testing.T) {
	csvRows := func(n int, extra ...string) string {
		var b strings.Builder
		b.WriteString("key,email,givenName,groups,active\n")
		for i := range n {
			b.WriteString("e" + string(rune('a'+i)) + ",p" + string(rune('a'+i)) + "@acme.test,P,staff;eng,true\n")
		}
		for _, x := range extra {
			b.WriteString(x + "\n")
		}
		return b.String()
	}
	jsonRows := func(n int, extra ...string) string {
		var b strings.Builder
		for i := range n {
			k := string(rune('a' + i))
			b.WriteString(`{"key":"e` + k + `","attributes":{"email":"p` + k + `@acme.test"},"groups":["staff"]}` + "\n")
		}
		for _, x := range extra {
			b.WriteString(x + "\n")
		}
		return b.String()
	}
	for _, format := range []struct {
		name string
		rows func(int, ...string) string
		bad  string
	}{{"csv", csvRows, `ez,"unterminated`}, {"jsonl", jsonRows, `{"key":`}} {
		for _, b := range storagetest.Backends() {
			t.Run(format.name+"/database="+b.Name, func(t *testing.T) {
				f := storagetest.NewFixture(t, b.Open(t))
				path := filepath.Join(t.TempDir(), "people."+format.name)
				write := func(s string) {
					if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				src := source(t, f, map[string]any{"path": path, "format": format.name})
				sync := func(full bool, threshold float64) (engine.Plan, error) {
					return file.Sync(bg, f.Engine, src, full, engine.SnapshotOptions{Threshold: threshold})
				}
				write(format.rows(10))
				if p, err := sync(true, 0); err != nil || p.Counts.Created != 10 || live(t, f, src) != 10 {
					t.Fatalf("first sync: %v %+v", err, p.Counts)
				}
				write(format.rows(9))
				if p, err := sync(true, 0.2); err != nil || p.Counts.Removed != 1 || live(t, f, src) != 9 {
					t.Fatalf("snapshot without one row: %v %+v", err, p.Counts)
				}
				write(format.rows(5))
				if _, err := sync(true, 0); !errors.Is(err, engine.ErrQuarantined) || live(t, f, src) != 9 {
					t.Fatalf("4 of 9 gone: %v, live %d; want quarantined", err, live(t, f, src))
				}
				if p, err := sync(false, 0); err != nil || p.Counts.Removed != 0 || live(t, f, src) != 9 {
					t.Fatalf("upsert: %v %+v", err, p.Counts)
				}
				write(format.rows(3, format.bad))
				if _, err := sync(true, -1); !errors.Is(err, engine.ErrInvalid) || live(t, f, src) != 9 {
					t.Fatalf("malformed line: %v, live %d; want ErrInvalid, nothing removed", err, live(t, f, src))
				}
				write(format.rows(0))
				if _, err := sync(true, -1); !errors.Is(err, engine.ErrQuarantined) || live(t, f, src) != 9 {
					t.Fatalf("empty file: %v, live %d", err, live(t, f, src))
				}
				os.Remove(path)
				if _, err := sync(true, -1); !errors.Is(err, engine.ErrUnavailable) || live(t, f, src) != 9 {
					t.Fatalf("missing file: %v, live %d", err, live(t, f, src))
				}
			})
		}
	}
}

// TestFileConfig reports every problem at once.
func TestFileConfig(t *testing.T) {
	for _, tc := range []struct {
		name, cfg string
		want      []string
	}{
		{"ok", `{"path":"/x/people.jsonl"}`, nil},
		{"all wrong", `{"path":"rel.csv","format":"xml","mode":"merge"}`, []string{"absolute", "format", "mode"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := file.ParseConfig(json.RawMessage(tc.cfg))
			if tc.want == nil {
				if err != nil || c.Format != "jsonl" || c.Mode != "snapshot" {
					t.Fatalf("%+v %v", c, err)
				}
				return
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v does not mention %q", err, w)
				}
			}
		})
	}
}

// TestFileApproveEmpty: an emptied file is quarantined by a scheduled job;
// approving the run removes everyone, as its plan showed.
func TestFileApproveEmpty(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			f := storagetest.NewFixture(t, b.Open(t))
			path := filepath.Join(t.TempDir(), "people.csv")
			os.WriteFile(path, []byte("key,email\nk1,a@acme.test\nk2,b@acme.test\n"), 0o600)
			src := source(t, f, map[string]any{"path": path, "format": "csv"})
			job, err := f.Engine.CreateJob(bg, engine.Admin{Actor: "test"}, engine.Job{OrgID: f.Org.ID, SourceID: src.ID,
				Name: "hr", Kind: engine.JobFull, Enabled: true})
			if err != nil {
				t.Fatal(err)
			}
			s := engine.NewScheduler(f.Engine, engine.SchedulerOptions{Owner: "test"})
			s.Register(engine.JobFull, engine.KindFile, file.Runner(true))
			if r, err := s.RunJob(bg, job.ID, false, false); err != nil || r.Counts.Created != 2 {
				t.Fatalf("first run: %v %+v", err, r)
			}
			os.WriteFile(path, []byte("key,email\n"), 0o600)
			q, err := s.RunJob(bg, job.ID, false, false)
			if !errors.Is(err, engine.ErrQuarantined) || live(t, f, src) != 2 {
				t.Fatalf("empty file: %v, live %d", err, live(t, f, src))
			}
			next, err := s.ApproveRun(bg, engine.Admin{Actor: "test"}, q.ID)
			if err != nil || next.Counts.Removed != 2 || live(t, f, src) != 0 {
				t.Fatalf("approve: %v %+v, live %d", err, next.Counts, live(t, f, src))
			}
		})
	}
}
