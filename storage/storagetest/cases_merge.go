package storagetest

import (
	"slices"
	"testing"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/reconcile"
)

// jitThenSCIM makes one person known to the OIDC source (department Sales)
// and then to SCIM (department R&D), linked by a verified email.
func jitThenSCIM(t *testing.T, f *Fixture) string {
	t.Helper()
	r := f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|ada", Login: true, EmailVerified: true,
		Attrs: person("ada", "department", "Sales", "givenName", "Ada")})
	if r.Outcome != engine.OutcomeCreated {
		t.Fatalf("login: outcome %q, want created", r.Outcome)
	}
	r2 := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "scim-ada", EmailVerified: true,
		Attrs: person("ada", "department", "R&D")})
	if r2.Outcome != engine.OutcomeLinked || r2.IdentityID != r.IdentityID {
		t.Fatalf("scim: %s on %s, want linked on %s", r2.Outcome, r2.IdentityID, r.IdentityID)
	}
	return r.IdentityID
}

var _ = register(
	Case{"scim outranks oidc for department and provenance names it", func(t *testing.T, f *Fixture) {
		id := jitThenSCIM(t, f)
		ident := f.Identity(id)
		if ident.Attrs["department"] != "R&D" {
			t.Errorf("department = %q, want R&D from SCIM (priority 10 beats OIDC 90)", ident.Attrs["department"])
		}
		scim := f.Account(f.SCIM.ID, "scim-ada")
		if p := ident.Provenance["department"]; p.SourceID != f.SCIM.ID || p.AccountID != scim.ID {
			t.Errorf("department provenance = %+v, want SCIM account %s", p, scim.ID)
		}
		// The login source alone knows givenName: it wins there.
		if p := ident.Provenance["givenName"]; ident.Attrs["givenName"] != "Ada" || p.SourceID != f.OIDC.ID {
			t.Errorf("givenName = %q from %+v, want Ada from OIDC", ident.Attrs["givenName"], p)
		}
		// Losing does not erase what the login source said.
		if d := f.Account(f.OIDC.ID, "https://idp|ada").Attrs["department"]; d != "Sales" {
			t.Errorf("OIDC account department = %q, want Sales", d)
		}
	}},

	Case{"a per-attribute priority override changes the winner after recompute", func(t *testing.T, f *Fixture) {
		id := jitThenSCIM(t, f)
		if _, err := f.Engine.UpdateOrganization(bg, byTest, f.Org.ID, func(o *engine.Organization) error {
			o.Settings.Priority = reconcile.Priority{Attributes: map[string][]string{"department": {"jit"}}}
			return nil
		}); err != nil {
			t.Fatalf("update organization: %v", err)
		}
		before := f.Identity(id)
		seq := f.AuditSeq()
		r, err := f.Engine.Recompute(bg, byTest, id)
		if err != nil {
			t.Fatalf("recompute: %v", err)
		}
		if r.Outcome != engine.OutcomeUpdated {
			t.Errorf("recompute outcome %q, want updated", r.Outcome)
		}
		ident := f.Identity(id)
		if ident.Attrs["department"] != "Sales" || ident.Provenance["department"].SourceID != f.OIDC.ID {
			t.Errorf("after override: department %q from %+v, want Sales from OIDC",
				ident.Attrs["department"], ident.Provenance["department"])
		}
		if ident.Version != before.Version+1 {
			t.Errorf("version %d, want %d", ident.Version, before.Version+1)
		}
		upd := Of(f.Events(seq), "identity.updated")
		if len(upd) != 1 {
			t.Fatalf("identity.updated events: %d, want 1", len(upd))
		}
		want := []reconcile.Change{{Field: "department", Before: "R&D", After: "Sales"}}
		if got := changesOf(t, upd[0]); !slices.Equal(got, want) {
			t.Errorf("changes = %+v, want %+v", got, want)
		}
		// Recomputing again changes nothing.
		seq = f.AuditSeq()
		if r, err := f.Engine.Recompute(bg, byTest, id); err != nil || r.Outcome != engine.OutcomeUnchanged {
			t.Errorf("second recompute = %+v, %v; want unchanged", r, err)
		}
		if f.AuditSeq() != seq {
			t.Errorf("second recompute wrote %v", Actions(f.Events(seq)))
		}
		// The stored override keeps ruling later observations.
		f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "scim-ada", EmailVerified: true,
			Attrs: person("ada", "department", "Platform")})
		if d := f.Identity(id).Attrs["department"]; d != "Sales" {
			t.Errorf("after a SCIM change under the override: department %q, want Sales", d)
		}
	}},

	Case{"a changed department writes identity.updated with before and after", func(t *testing.T, f *Fixture) {
		r := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Attrs: person("ada", "department", "R&D")})
		v := f.Identity(r.IdentityID).Version
		seq := f.AuditSeq()
		r2 := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Attrs: person("ada", "department", "Platform")})
		if r2.Outcome != engine.OutcomeUpdated || r2.IdentityID != r.IdentityID {
			t.Fatalf("update = %+v", r2)
		}
		evs := f.Events(seq)
		upd := Of(evs, "identity.updated")
		if len(upd) != 1 {
			t.Fatalf("events %v: want one identity.updated", Actions(evs))
		}
		ev := upd[0]
		if ev.IdentityID != r.IdentityID || ev.SourceID != f.SCIM.ID || ev.Channel != engine.ChannelSCIM || ev.OrgID != f.Org.ID {
			t.Errorf("event = %+v", ev)
		}
		want := []reconcile.Change{{Field: "department", Before: "R&D", After: "Platform"}}
		if got := changesOf(t, ev); !slices.Equal(got, want) {
			t.Errorf("changes = %+v, want %+v", got, want)
		}
		ident := f.Identity(r.IdentityID)
		if ident.Attrs["department"] != "Platform" || ident.Version != v+1 {
			t.Errorf("identity = %v v%d, want Platform v%d", ident.Attrs, ident.Version, v+1)
		}
	}},
)
