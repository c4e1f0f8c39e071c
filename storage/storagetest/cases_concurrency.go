package storagetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/engine"
)

const (
	writers = 16
	updates = 25
	// deadline turns a deadlock (a transaction waiting for a connection
	// that writers waiting for it hold) into a failure instead of a hang.
	deadline = 30 * time.Second
)

var _ = register(
	Case{"concurrent sources updating one person lose no update", func(t *testing.T, f *Fixture) {
		// Everyone shares this verified email, so every source links to
		// the person the first one created.
		base := person("zoe")
		seed := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "zoe", Attrs: base})
		id := seed.IdentityID
		v0 := f.Identity(id).Version

		srcs := make([]engine.Source, writers)
		for i := range srcs {
			kind := engine.KindSCIM
			if i%2 == 1 {
				kind = engine.KindLDAP
			}
			srcs[i] = f.NewSource(kind, fmt.Sprintf("dir-%02d", i), 30+i, true)
		}
		attr := func(i int) string { return fmt.Sprintf("x%02d", i) }
		value := func(i, n int) string { return fmt.Sprintf("w%02d-v%02d", i, n) }

		seq := f.AuditSeq()
		ctx, cancel := context.WithTimeout(bg, deadline)
		defer cancel()
		errs := make(chan error, writers*updates)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				for n := range updates {
					a := engine.Attrs{"email": base["email"], attr(i): value(i, n)}
					r, err := f.Engine.Apply(ctx, engine.Observation{SourceID: srcs[i].ID, Key: "zoe-" + attr(i), Attrs: a})
					if err != nil {
						errs <- fmt.Errorf("writer %d update %d: %w", i, n, err)
						return
					}
					if r.IdentityID != id {
						errs <- fmt.Errorf("writer %d update %d landed on %s, want %s", i, n, r.IdentityID, id)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			return
		}

		if n := f.Count("identities", ""); n != 1 {
			t.Errorf("%d identities, want 1", n)
		}
		ident := f.Identity(id)
		for i := range writers {
			last := value(i, updates-1)
			if got := f.Account(srcs[i].ID, "zoe-"+attr(i)).Attrs[attr(i)]; got != last {
				t.Errorf("source %d account holds %s=%q, want %q", i, attr(i), got, last)
			}
			if got := ident.Attrs[attr(i)]; got != last {
				t.Errorf("identity holds %s=%q, want %q: an update was lost", attr(i), got, last)
			}
			if p := ident.Provenance[attr(i)]; p.SourceID != srcs[i].ID {
				t.Errorf("provenance of %s = %+v, want source %d", attr(i), p, i)
			}
		}
		if r := f.Verify(); !r.OK {
			t.Errorf("audit after concurrent writes: %+v", r)
		}
		// Every write changed one golden attribute: one version and one
		// identity.updated event each, none merged away or lost.
		evs := For(f.Events(seq), id)
		upd := len(Of(evs, "identity.updated"))
		if upd != writers*updates {
			t.Errorf("%d identity.updated events, want %d", upd, writers*updates)
		}
		if want := v0 + int64(upd); ident.Version != want {
			t.Errorf("version %d, want %d (%d before + %d updates)", ident.Version, want, v0, upd)
		}
		if n := len(Of(evs, "account.linked")); n != writers {
			t.Errorf("%d account.linked events, want %d", n, writers)
		}
	}},

	Case{"concurrent writes to different people keep one audit chain", func(t *testing.T, f *Fixture) {
		const people = 10
		srcs := make([]engine.Source, writers)
		for i := range srcs {
			srcs[i] = f.NewSource(engine.KindSCIM, fmt.Sprintf("dir-%02d", i), 30+i, false)
		}
		seq := f.AuditSeq()
		ctx, cancel := context.WithTimeout(bg, deadline)
		defer cancel()
		errs := make(chan error, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Go(func() {
				for n := range people {
					name := fmt.Sprintf("p%02d-%02d", i, n)
					if _, err := f.Engine.Apply(ctx, engine.Observation{SourceID: srcs[i].ID, Key: name, Attrs: person(name)}); err != nil {
						errs <- fmt.Errorf("writer %d person %d: %w", i, n, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := f.Count("identities", ""); n != writers*people {
			t.Errorf("%d identities, want %d", n, writers*people)
		}
		evs := f.Events(seq)
		if n := len(Of(evs, "identity.created")); n != writers*people {
			t.Errorf("%d identity.created events, want %d", n, writers*people)
		}
		if r := f.Verify(); !r.OK {
			t.Errorf("audit after concurrent appends: %+v", r)
		}
	}},
)

var _ = register(
	Case{"concurrent first statements about one new key make one person", func(t *testing.T, f *Fixture) {
		ctx, cancel := context.WithTimeout(bg, deadline)
		defer cancel()
		outcomes := make(chan string, writers)
		errs := make(chan error, writers)
		var wg sync.WaitGroup
		for range writers {
			wg.Go(func() {
				r, err := f.Engine.Apply(ctx, engine.Observation{SourceID: f.SCIM.ID, Key: "same-key", Attrs: person("same"), EmailVerified: true})
				if err != nil {
					errs <- err
					return
				}
				outcomes <- r.Outcome
			})
		}
		wg.Wait()
		close(errs)
		close(outcomes)
		for err := range errs {
			t.Error(err)
		}
		count := map[string]int{}
		for o := range outcomes {
			count[o]++
		}
		if count[engine.OutcomeCreated] != 1 || count[engine.OutcomeUnchanged] != writers-1 {
			t.Errorf("outcomes %v, want 1 created and %d unchanged", count, writers-1)
		}
		if n := f.Count("accounts", "source_id = ? AND source_key = ?", f.SCIM.ID, "same-key"); n != 1 {
			t.Errorf("%d accounts for the key, want 1", n)
		}
		if n := f.Count("identities", "email_norm = ?", "same@acme.test"); n != 1 {
			t.Errorf("%d people, want 1", n)
		}
		if cs := f.OpenConflicts(); len(cs) != 0 {
			t.Errorf("conflicts opened: %+v", cs)
		}
		if r := f.Verify(); !r.OK {
			t.Errorf("audit: %+v", r)
		}
	}},
)
