package storagetest

import (
	"slices"
	"testing"

	"github.com/idsync/idsync/engine"
)

var _ = register(
	Case{"apply creates then an identical observation writes nothing", func(t *testing.T, f *Fixture) {
		obs := engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Attrs: engine.Attrs{
			"userName": "ada@acme.test", "email": "ada@acme.test", "givenName": "Ada", "department": "R&D"},
			Groups: []string{"Engineering", "All"}}
		before := f.AuditSeq()
		r := f.Apply(obs)
		if r.Outcome != engine.OutcomeCreated {
			t.Fatalf("first apply: outcome %q, want created", r.Outcome)
		}
		got := Actions(f.Events(before))
		for _, want := range []string{"account.linked", "identity.created", "org.joined", "group.created", "membership.granted"} {
			if !slices.Contains(got, want) {
				t.Errorf("events %v lack %s", got, want)
			}
		}
		id := f.Identity(r.IdentityID)
		if id.Attrs["department"] != "R&D" || id.State != "active" {
			t.Errorf("identity = %+v", id)
		}
		if p := id.Provenance["department"]; p.SourceID != f.SCIM.ID {
			t.Errorf("department provenance = %+v, want source %s", p, f.SCIM.ID)
		}
		seq := f.AuditSeq()
		r2 := f.Apply(obs)
		if r2.Outcome != engine.OutcomeUnchanged || r2.IdentityID != r.IdentityID {
			t.Errorf("second apply = %+v, want unchanged on %s", r2, r.IdentityID)
		}
		if f.AuditSeq() != seq {
			t.Errorf("an identical observation wrote audit events: %v", Actions(f.Events(seq)))
		}
		if v := f.Identity(r.IdentityID).Version; v != id.Version {
			t.Errorf("version moved from %d to %d", id.Version, v)
		}
	}},
)
