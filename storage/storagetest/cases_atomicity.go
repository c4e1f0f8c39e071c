package storagetest

import (
	"context"
	"errors"
	"testing"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
)

var errAuditDown = errors.New("audit append failed (injected)")

// failingAudit is the real store whose transactions fail at the audit
// append, the last write of every engine transaction.
type failingAudit struct{ *storage.DB }

func (s failingAudit) InTx(ctx context.Context, fn func(engine.Tx) error) error {
	return s.DB.InTx(ctx, func(tx engine.Tx) error { return fn(failingAuditTx{tx}) })
}

type failingAuditTx struct{ engine.Tx }

func (failingAuditTx) AppendAudit(context.Context, []engine.AuditEvent) error { return errAuditDown }

var _ = register(
	Case{"an observation whose transaction fails leaves nothing", func(t *testing.T, f *Fixture) {
		e := engine.New(failingAudit{f.DB}, engine.Options{Now: f.Clock.Now})
		seq := f.AuditSeq()
		obs := engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Attrs: person("max"), Groups: []string{"Staff"},
			Roles: []string{"admin"}}
		r, err := e.Apply(bg, obs)
		if !errors.Is(err, errAuditDown) {
			t.Fatalf("apply = %+v, %v; want the injected error", r, err)
		}
		for _, table := range []string{"identities", "accounts", "org_groups", "group_memberships", "org_memberships", "conflicts"} {
			if n := f.Count(table, ""); n != 0 {
				t.Errorf("%s holds %d rows after a failed transaction", table, n)
			}
		}
		if f.AuditSeq() != seq || f.Count("audit_events", "seq > ?", seq) != 0 {
			t.Errorf("audit moved after a failed transaction")
		}
		// The same observation through a working store then applies in full.
		if r := f.Apply(obs); r.Outcome != engine.OutcomeCreated {
			t.Errorf("after the failure: outcome %q, want created", r.Outcome)
		}
		if f.Count("identities", "") != 1 || f.Count("group_memberships", "") != 1 {
			t.Errorf("retry did not write the person")
		}

		// An update that fails leaves the previous state.
		before := f.identityOf(f.SCIM, "u-1")
		upd := obs
		upd.Attrs = person("max", "title", "CTO")
		upd.Groups = []string{}
		if _, err := e.Apply(bg, upd); !errors.Is(err, errAuditDown) {
			t.Fatalf("update: %v, want the injected error", err)
		}
		after := f.identityOf(f.SCIM, "u-1")
		if after.Version != before.Version || after.Attrs["title"] != "" || f.Count("group_memberships", "") != 1 {
			t.Errorf("a failed update changed the person: %+v", after)
		}
		if a := f.Account(f.SCIM.ID, "u-1"); a.Attrs["title"] != "" || a.Hash != obs.ContentHash() {
			t.Errorf("a failed update changed the account: %+v", a)
		}
	}},
)
