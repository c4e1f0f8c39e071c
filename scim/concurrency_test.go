package scim_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/idsync/idsync/storage"
)

// TestConcurrentWrites: concurrent creates (grouped into shared
// transactions on SQLite) where every userName is sent twice: each name
// gets exactly one 201 and one 409, a refused create leaves nothing
// behind, and the audit chain verifies.
func TestConcurrentWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		const names = 40
		var mu sync.Mutex
		codes := map[string][]int{}
		var wg sync.WaitGroup
		// All at once: more writers than pooled connections (16) must
		// queue, not deadlock (the statement cache once could).
		sem := make(chan struct{}, names*2)
		for i := range names * 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				n := fmt.Sprintf("c%d@acme.test", i%names)
				code, _, _ := e.call("POST", "/Users", userBody(n))
				mu.Lock()
				codes[n] = append(codes[n], code)
				mu.Unlock()
			}()
		}
		wg.Wait()
		for n, c := range codes {
			if len(c) != 2 || c[0]+c[1] != 201+409 {
				t.Errorf("%s: %v, want one 201 and one 409", n, c)
			}
		}
		if got := e.f.Count("scim_resources", ""); got != names {
			t.Fatalf("%d resources, want %d", got, names)
		}
		if got := e.f.Count("accounts", "source_id = ?", e.f.SCIM.ID); got != names {
			t.Fatalf("%d accounts, want %d", got, names)
		}
		if r := e.f.Verify(); !r.OK {
			t.Fatalf("audit chain: %+v", r)
		}
	})
}

// TestConcurrentCreatesSharingAnEmail: concurrent creates (on SQLite their
// people are written together at the end of a shared transaction) where
// every email is used by two users with different userNames: a person
// buffered by one create must still be found by the other's matching, so
// no email ends up on two people.
func TestConcurrentCreatesSharingAnEmail(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		const pairs = 30
		var wg sync.WaitGroup
		sem := make(chan struct{}, 12)
		codes := make([]int, pairs*2)
		for i := range pairs * 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				email := fmt.Sprintf("shared%d@acme.test", i%pairs)
				body := userBody(fmt.Sprintf("u%d@acme.test", i), "emails", []any{map[string]any{"value": email, "type": "work", "primary": true}})
				codes[i], _, _ = e.call("POST", "/Users", body)
			}()
		}
		wg.Wait()
		for i, c := range codes {
			if c != 201 {
				t.Errorf("create %d: %d", i, c)
			}
		}
		for i := range pairs {
			email := fmt.Sprintf("shared%d@acme.test", i)
			if n := e.f.Count("identities", "email_norm = ?", email); n != 1 {
				t.Errorf("%s is on %d people, want 1 (the second create matches the first)", email, n)
			}
		}
		if got := e.f.Count("accounts", "source_id = ?", e.f.SCIM.ID); got != pairs {
			t.Errorf("%d accounts linked, want %d (the other creates wait in conflicts)", got, pairs)
		}
		if r := e.f.Verify(); !r.OK {
			t.Fatalf("audit chain: %+v", r)
		}
	})
}
