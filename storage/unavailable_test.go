package storage_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
	"github.com/idsync/idsync/storage/storagetest"
)

func TestDatabaseDownOrLocked(t *testing.T) {
	ctx := context.Background()
	t.Run("case=postgres that does not answer", func(t *testing.T) {
		_, err := storage.Open(ctx, "postgres://idsync@127.0.0.1:1/idsync?sslmode=disable&connect_timeout=2", storage.Options{})
		if !errors.Is(err, engine.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		if strings.Contains(err.Error(), "password") {
			t.Fatalf("error leaks a password: %v", err)
		}
	})
	t.Run("case=sqlite file that cannot be created", func(t *testing.T) {
		_, err := storage.Open(ctx, filepath.Join(t.TempDir(), "no", "such", "dir", "x.db"), storage.Options{})
		if !errors.Is(err, engine.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	})
	t.Run("case=sqlite locked by another writer", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "idsync.db")
		db, err := storage.Open(ctx, path, storage.Options{BusyTimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		f := storagetest.NewFixture(t, db)
		// Another process holds the write lock.
		other, err := sqlx.Open("sqlite", "file:"+path+"?_txlock=immediate")
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		tx, err := other.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`UPDATE audit_head SET seq = seq WHERE id = 1`); err != nil {
			t.Fatal(err)
		}
		before := f.AuditSeq()
		_, err = f.Engine.Apply(ctx, engine.Observation{SourceID: f.SCIM.ID, Key: "u1", Attrs: engine.Attrs{"userName": "ada"}})
		if !errors.Is(err, engine.ErrUnavailable) || !strings.Contains(err.Error(), "locked") {
			t.Fatalf("apply while locked: %v, want ErrUnavailable naming the lock", err)
		}
		tx.Rollback()
		if f.AuditSeq() != before {
			t.Fatal("a failed apply wrote audit events")
		}
		// Once the lock is gone the same observation goes through.
		if r, err := f.Engine.Apply(ctx, engine.Observation{SourceID: f.SCIM.ID, Key: "u1", Attrs: engine.Attrs{"userName": "ada"}}); err != nil || r.Outcome != engine.OutcomeCreated {
			t.Fatalf("apply after unlock: %+v %v", r, err)
		}
	})
	t.Run("case=sqlite write connection held by a writer of this process", func(t *testing.T) {
		db, err := storage.Open(ctx, filepath.Join(t.TempDir(), "idsync.db"), storage.Options{BusyTimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		f := storagetest.NewFixture(t, db)
		holding, release := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- db.InTx(ctx, func(engine.Tx) error { close(holding); <-release; return nil })
		}()
		<-holding
		_, err = f.Engine.Apply(ctx, engine.Observation{SourceID: f.SCIM.ID, Key: "u2", Attrs: engine.Attrs{"userName": "bo"}})
		if !errors.Is(err, engine.ErrUnavailable) || !strings.Contains(err.Error(), "locked") {
			t.Fatalf("apply while another transaction holds the writer: %v, want ErrUnavailable naming the lock", err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if r, err := f.Engine.Apply(ctx, engine.Observation{SourceID: f.SCIM.ID, Key: "u2", Attrs: engine.Attrs{"userName": "bo"}}); err != nil || r.Outcome != engine.OutcomeCreated {
			t.Fatalf("apply after release: %+v %v", r, err)
		}
	})
}
