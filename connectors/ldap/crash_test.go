package ldap_test

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/idsync/idsync/connectors/ldap"
	"github.com/idsync/idsync/connectors/ldap/ldaptest"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
	"github.com/idsync/idsync/storage/storagetest"
)

// TestKillAndResume: a sync process SIGKILLed mid-stream leaves whole
// pages committed and nothing removed; the next full sync finishes the
// job with no duplicate account or identity. So does a run whose context
// is cancelled mid-stream.
func TestKillAndResume(t *testing.T) {
	if os.Getenv("IDSYNC_LDAP_CHILD_DSN") != "" {
		t.Skip("run as the child of TestKillAndResume only")
	}
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			t.Setenv(pwEnv, ldaptest.AdminPassword)
			dsn := b.DSN(t)
			db, err := storage.Open(bg, dsn, storage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			f := storagetest.NewFixture(t, db)
			s := seeded(t)
			src := newSource(t, f, "corp", people(s, nil))

			cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "IDSYNC_LDAP_CHILD_DSN="+dsn, "IDSYNC_LDAP_CHILD_SOURCE="+src.ID)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for live(t, f, src) < 100 {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatal("the child committed nothing in 30s")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			killedAt := live(t, f, src)
			if killedAt%50 != 0 || killedAt >= 240 {
				t.Fatalf("%d accounts after the kill: want whole pages of 50, fewer than 240", killedAt)
			}

			ctx, cancel := context.WithCancel(bg)
			src, _ = f.DB.Source(bg, src.ID)
			_, _, err = ldap.Sync(ctx, f.Engine, src, true, "", engine.SnapshotOptions{Progress: func(c engine.Counts) {
				if c.Created > 0 {
					cancel()
				}
			}})
			if err == nil {
				t.Fatal("the cancelled sync succeeded")
			}

			plan, _ := mustSync(t, f, src, true, "")
			if plan.Counts.Removed != 0 || plan.Counts.Created+plan.Counts.Unchanged != 240 {
				t.Fatalf("resume: %+v", plan.Counts)
			}
			if n := f.Count("accounts", "source_id = ?", src.ID); n != 240 {
				t.Fatalf("%d accounts, want 240", n)
			}
			if n := f.Count("identities", "org_id = ?", f.Org.ID); n != 240 {
				t.Fatalf("%d identities, want 240 (no duplicates)", n)
			}
			if r := f.Verify(); !r.OK {
				t.Fatalf("audit chain broken after the kill: %+v", r)
			}
		})
	}
}

// TestKillChild is the process TestKillAndResume kills: a slow full sync.
func TestKillChild(t *testing.T) {
	dsn := os.Getenv("IDSYNC_LDAP_CHILD_DSN")
	if dsn == "" {
		t.Skip("the child of TestKillAndResume")
	}
	db, err := storage.Open(bg, dsn, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := engine.New(db, engine.Options{})
	src, err := db.Source(bg, os.Getenv("IDSYNC_LDAP_CHILD_SOURCE"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = ldap.Sync(bg, e, src, true, "", engine.SnapshotOptions{PageSize: 50,
		Progress: func(engine.Counts) { time.Sleep(300 * time.Millisecond) }})
	t.Fatalf("the child was not killed: %v", err)
}
