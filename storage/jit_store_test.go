package storage_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
	"github.com/idsync/idsync/storage/storagetest"
)

// TestJITStore covers the JIT tables (migration 0004) on every backend:
// sessions expire, a pending login is taken exactly once even by racing
// callbacks, and an assertion ID is accepted once.
func TestJITStore(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			db := b.Open(t)
			f := storagetest.NewFixture(t, db)
			r := f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "k1", Attrs: engine.Attrs{"email": "a@acme.test"}})
			for _, tc := range []struct {
				name string
				run  func(t *testing.T, db *storage.DB)
			}{
				{"session-lives-until-expiry", func(t *testing.T, db *storage.DB) {
					if err := db.JITPutSession(ctx, "h1", r.IdentityID, f.Org.ID, f.OIDC.ID, now, now.Add(time.Hour)); err != nil {
						t.Fatal(err)
					}
					id, _, _, _, err := db.JITSession(ctx, "h1", now.Add(time.Minute))
					if err != nil || id != r.IdentityID {
						t.Fatalf("live session: %q %v", id, err)
					}
					if _, _, _, _, err := db.JITSession(ctx, "h1", now.Add(2*time.Hour)); !errors.Is(err, engine.ErrNotFound) {
						t.Errorf("expired session: %v", err)
					}
					if err := db.JITDeleteSession(ctx, "h1", now); err != nil {
						t.Fatal(err)
					}
					if _, _, _, _, err := db.JITSession(ctx, "h1", now); !errors.Is(err, engine.ErrNotFound) {
						t.Errorf("deleted session: %v", err)
					}
				}},
				{"login-state-taken-once", func(t *testing.T, db *storage.DB) {
					if err := db.JITPutLoginState(ctx, "s1", []byte(`{"s":"x"}`), now.Add(time.Minute), now); err != nil {
						t.Fatal(err)
					}
					var wins atomic.Int32
					var wg sync.WaitGroup
					for range 8 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							if b, err := db.JITTakeLoginState(ctx, "s1", now); err == nil && string(b) == `{"s":"x"}` {
								wins.Add(1)
							}
						}()
					}
					wg.Wait()
					if wins.Load() != 1 {
						t.Errorf("%d callbacks took the same state", wins.Load())
					}
				}},
				{"login-state-expires", func(t *testing.T, db *storage.DB) {
					if err := db.JITPutLoginState(ctx, "s2", []byte(`{}`), now.Add(time.Minute), now); err != nil {
						t.Fatal(err)
					}
					if _, err := db.JITTakeLoginState(ctx, "s2", now.Add(time.Hour)); !errors.Is(err, engine.ErrNotFound) {
						t.Errorf("expired state: %v", err)
					}
				}},
				{"assertion-id-once", func(t *testing.T, db *storage.DB) {
					if err := db.JITConsumeAssertion(ctx, "_a1", now.Add(time.Minute), now); err != nil {
						t.Fatal(err)
					}
					if err := db.JITConsumeAssertion(ctx, "_a1", now.Add(time.Minute), now); !errors.Is(err, engine.ErrExists) {
						t.Errorf("replayed assertion ID: %v", err)
					}
				}},
			} {
				t.Run("case="+tc.name, func(t *testing.T) { tc.run(t, db) })
			}
		})
	}
}
