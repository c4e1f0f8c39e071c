package storage_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
	"github.com/idsync/idsync/storage/storagetest"
)

// TestAuditHeadAcrossProcessesAndRollbacks: each process remembers the
// audit head it appended last and chains onto it when it still is the
// head. Two processes appending in turn, and appends rolled back, must
// still leave one unbroken chain.
func TestAuditHeadAcrossProcessesAndRollbacks(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.DSN(t)
			open := func() *storage.DB {
				db, err := storage.Open(ctx, dsn, storage.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return db
			}
			one, two := open(), open()
			n := 0
			appendOn := func(db *storage.DB, undo bool) {
				t.Helper()
				n++
				ev := engine.AuditEvent{ID: fmt.Sprintf("ev-%d", n), At: time.Now().UTC(), Channel: "admin",
					Actor: "test", Action: "test.appended", SubjectType: "test", SubjectID: fmt.Sprint(n)}
				errUndo := errors.New("undo")
				err := db.InTx(ctx, func(tx engine.Tx) error {
					if err := tx.AppendAudit(ctx, []engine.AuditEvent{ev, ev}); err != nil {
						return err
					}
					if undo {
						return errUndo
					}
					return nil
				})
				if undo && !errors.Is(err, errUndo) || !undo && err != nil {
					t.Fatalf("append %d (undo %v): %v", n, undo, err)
				}
			}
			for _, step := range []struct {
				db   *storage.DB
				undo bool
			}{{one, false}, {one, false}, {two, false}, {one, false}, {one, true}, {one, false}, {two, true}, {two, false}, {one, false}} {
				appendOn(step.db, step.undo)
			}
			for _, db := range []*storage.DB{one, two} {
				r, err := engine.VerifyAudit(ctx, db)
				if err != nil || !r.OK || r.Events != 14 {
					t.Fatalf("verify: %+v %v (want 14 events, an unbroken chain)", r, err)
				}
			}
		})
	}
}
