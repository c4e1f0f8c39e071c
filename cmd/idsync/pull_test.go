package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage/storagetest"
)

// TestJobApproveRejectCLI: through the CLI, a file pull job whose run
// would remove half the source is quarantined; `idsync job reject` keeps
// everyone, `idsync job approve` reruns it and removes them; `job pause`,
// `job resume` and `job update` change the job.
func TestJobApproveRejectCLI(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			db := b.DSN(t)
			mustRun := cliFor(t, db)
			path := filepath.Join(t.TempDir(), "hr.csv")
			write := func(n int) {
				var sb strings.Builder
				sb.WriteString("key,email\n")
				for i := range n {
					fmt.Fprintf(&sb, "k%d,p%d@acme.test\n", i, i)
				}
				os.WriteFile(path, []byte(sb.String()), 0o600)
			}
			mustRun("org", "create", "acme", "--name", "Acme")
			cfg, _ := json.Marshal(map[string]string{"path": path})
			mustRun("source", "create", "acme", "hr", "--kind", "file", "--config", string(cfg))
			var job engine.Job
			json.Unmarshal([]byte(mustRun("-o", "json", "job", "create", "hr-full", "--org", "acme", "--source", "acme/hr", "--kind", "full")), &job)
			if job.ID == "" {
				t.Fatal("no job created")
			}
			write(10)
			var r engine.JobRun
			json.Unmarshal([]byte(mustRun("-o", "json", "job", "run", job.ID)), &r)
			if r.Status != engine.RunSucceeded || r.Counts.Created != 10 {
				t.Fatalf("first run: %+v", r)
			}
			write(5)
			quarantined := func() engine.JobRun {
				t.Helper()
				out, err := run(t, db, "-o", "json", "job", "run", job.ID)
				var q engine.JobRun
				json.Unmarshal([]byte(out), &q)
				if !errors.Is(err, engine.ErrQuarantined) || q.Status != engine.RunQuarantined {
					t.Fatalf("half gone: %v, run %+v", err, q)
				}
				return q
			}
			q := quarantined()
			if out := mustRun("job", "reject", q.ID); !strings.Contains(out, "rejected") {
				t.Fatalf("reject printed %q", out)
			}
			q = quarantined()
			var next engine.JobRun
			json.Unmarshal([]byte(mustRun("-o", "json", "job", "approve", q.ID)), &next)
			if next.Status != engine.RunSucceeded || next.Counts.Removed != 5 {
				t.Fatalf("approved rerun: %+v", next)
			}
			if _, err := run(t, db, "job", "approve", q.ID); !errors.Is(err, engine.ErrConflict) {
				t.Fatalf("approving twice: %v", err)
			}
			if out := mustRun("job", "pause", job.ID); !strings.Contains(out, "enabled false") {
				t.Fatalf("pause printed %q", out)
			}
			if out := mustRun("job", "resume", job.ID); !strings.Contains(out, "enabled true") {
				t.Fatalf("resume printed %q", out)
			}
			if out := mustRun("job", "update", job.ID, "--schedule", "0 3 * * *", "--tz", "Europe/Paris", "--threshold", "0.3"); !strings.Contains(out, `"0 3 * * *" Europe/Paris, threshold 0.3`) {
				t.Fatalf("update printed %q", out)
			}
			if _, err := run(t, db, "job", "update", job.ID, "--schedule", "nope"); !errors.Is(err, engine.ErrInvalid) {
				t.Fatalf("bad schedule: %v", err)
			}
		})
	}
}
