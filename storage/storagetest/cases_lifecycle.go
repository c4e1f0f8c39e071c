package storagetest

import (
	"testing"
	"time"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/reconcile"
)

const (
	active        = reconcile.StateActive
	suspended     = reconcile.StateSuspended
	deprovisioned = reconcile.StateDeprovisioned
)

var _ = register(
	Case{"jit cannot deprovision", func(t *testing.T, f *Fixture) {
		login := func(key string, inactive, removed bool) engine.Observation {
			return engine.Observation{SourceID: f.OIDC.ID, Key: key, EmailVerified: true, Login: !removed,
				Attrs: person("jit"), Inactive: inactive, Removed: removed}
		}
		r := f.Apply(login("https://idp|jit", false, false))
		seq := f.AuditSeq()
		if r := f.Apply(login("https://idp|jit", true, false)); r.State != active {
			t.Errorf("after JIT inactive: result state %q", r.State)
		}
		if s := f.State(r.IdentityID); s != active {
			t.Errorf("after JIT inactive: state %q, want active", s)
		}
		if a := f.Account(f.OIDC.ID, "https://idp|jit"); a.Active {
			t.Errorf("the OIDC account should record that its source says inactive")
		}
		f.Apply(login("https://idp|jit", false, true))
		if s := f.State(r.IdentityID); s != active {
			t.Errorf("after JIT removed: state %q, want active", s)
		}
		noActions(t, f.Events(seq), "identity.deprovisioned", "identity.suspended")

		// Nor when a directory keeps the person active.
		r2 := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "scim-ann", Attrs: person("ann")})
		f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|ann", EmailVerified: true, Attrs: person("ann")})
		seq = f.AuditSeq()
		f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|ann", EmailVerified: true, Attrs: person("ann"), Inactive: true})
		f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|ann", Removed: true})
		if s := f.State(r2.IdentityID); s != active {
			t.Errorf("SCIM-held person after JIT inactive and removed: %q, want active", s)
		}
		noActions(t, f.Events(seq), "identity.deprovisioned")
	}},

	Case{"scim inactive deprovisions and active again reactivates the same identity", func(t *testing.T, f *Fixture) {
		obs := engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Attrs: person("bob")}
		r := f.Apply(obs)
		seq := f.AuditSeq()
		off := obs
		off.Inactive = true
		r2 := f.Apply(off)
		if r2.State != deprovisioned || f.State(r.IdentityID) != deprovisioned {
			t.Errorf("after SCIM inactive: result %q, stored %q; want deprovisioned", r2.State, f.State(r.IdentityID))
		}
		wantActions(t, f.Events(seq), "account.deactivated", "identity.deprovisioned")
		seq = f.AuditSeq()
		r3 := f.Apply(obs)
		if r3.IdentityID != r.IdentityID || r3.State != active {
			t.Errorf("after SCIM active again: %+v, want active on %s", r3, r.IdentityID)
		}
		evs := f.Events(seq)
		wantActions(t, evs, "account.activated", "identity.reactivated")
		noActions(t, evs, "identity.created", "account.linked")
		if s := f.State(r.IdentityID); s != active {
			t.Errorf("state %q, want active", s)
		}
		if n := f.Count("identities", ""); n != 1 {
			t.Errorf("%d identities, want 1", n)
		}
		if n := f.Count("accounts", ""); n != 1 {
			t.Errorf("%d accounts, want 1", n)
		}
	}},

	Case{"a person is deprovisioned only when every authoritative account is removed", func(t *testing.T, f *Fixture) {
		r := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "scim-cy", EmailVerified: true, Attrs: person("cy", "title", "Dev")})
		r2 := f.Apply(engine.Observation{SourceID: f.LDAP.ID, Key: "ldap-cy", EmailVerified: true, Attrs: person("cy")})
		if r2.IdentityID != r.IdentityID {
			t.Fatalf("LDAP account not linked: %+v", r2)
		}
		seq := f.AuditSeq()
		f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "scim-cy", Removed: true})
		if s := f.State(r.IdentityID); s != active {
			t.Errorf("with LDAP still active: state %q, want active", s)
		}
		evs := f.Events(seq)
		wantActions(t, evs, "account.removed")
		noActions(t, evs, "identity.deprovisioned")
		seq = f.AuditSeq()
		r3 := f.Apply(engine.Observation{SourceID: f.LDAP.ID, Key: "ldap-cy", Removed: true})
		if r3.Outcome != engine.OutcomeRemoved || r3.State != deprovisioned {
			t.Errorf("LDAP removal = %+v, want removed and deprovisioned", r3)
		}
		if s := f.State(r.IdentityID); s != deprovisioned {
			t.Errorf("state %q, want deprovisioned", s)
		}
		wantActions(t, f.Events(seq), "account.removed", "identity.deprovisioned")
		// Removed accounts rank below live ones but still count: the person
		// keeps their last known record.
		if a := f.Identity(r.IdentityID).Attrs; a["email"] != "cy@acme.test" || a["title"] != "Dev" {
			t.Errorf("deprovisioned person's record = %v, want the last known email and title", a)
		}
	}},

	Case{"admin suspension sticks while scim says active and restore lifts it", func(t *testing.T, f *Fixture) {
		r := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Attrs: person("dee")})
		seq := f.AuditSeq()
		ident, err := f.Engine.Suspend(bg, byTest, r.IdentityID, "left the building")
		if err != nil {
			t.Fatalf("suspend: %v", err)
		}
		if ident.State != suspended || !ident.Suspended {
			t.Errorf("suspend returned %q suspended=%v", ident.State, ident.Suspended)
		}
		wantActions(t, f.Events(seq), "identity.suspended")
		stored := f.Identity(r.IdentityID)
		if stored.State != suspended || !stored.Suspended || stored.SuspendReason != "left the building" {
			t.Errorf("stored %q suspended=%v reason %q", stored.State, stored.Suspended, stored.SuspendReason)
		}
		seq = f.AuditSeq()
		r2 := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Attrs: person("dee", "title", "Boss")})
		if r2.State != suspended || f.State(r.IdentityID) != suspended {
			t.Errorf("after SCIM says active: %q / %q, want suspended", r2.State, f.State(r.IdentityID))
		}
		noActions(t, f.Events(seq), "identity.restored", "identity.reactivated")
		if f.Identity(r.IdentityID).Attrs["title"] != "Boss" {
			t.Errorf("a suspended person's attributes should still merge")
		}
		seq = f.AuditSeq()
		ident, err = f.Engine.Restore(bg, byTest, r.IdentityID)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if ident.State != active || f.State(r.IdentityID) != active || f.Identity(r.IdentityID).Suspended {
			t.Errorf("after restore: %q / %q, want active", ident.State, f.State(r.IdentityID))
		}
		wantActions(t, f.Events(seq), "identity.restored")
	}},

	Case{"jit cannot reactivate a deprovisioned person", func(t *testing.T, f *Fixture) {
		r := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", EmailVerified: true, Attrs: person("eve")})
		f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|eve", EmailVerified: true, Login: true, Attrs: person("eve")})
		f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Removed: true})
		if s := f.State(r.IdentityID); s != deprovisioned {
			t.Fatalf("after SCIM removal: %q, want deprovisioned", s)
		}
		seq := f.AuditSeq()
		f.Clock.Advance(2 * time.Hour)
		r2 := f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|eve", EmailVerified: true, Login: true,
			Attrs: person("eve", "title", "Returning")})
		if r2.IdentityID != r.IdentityID || r2.State != deprovisioned {
			t.Errorf("JIT login of a deprovisioned person = %+v, want deprovisioned on %s", r2, r.IdentityID)
		}
		// A new login account matched by email does not revive them either.
		other := f.NewSource(engine.KindSAML, "saml-idp", 80, true)
		r3 := f.Apply(engine.Observation{SourceID: other.ID, Key: "eve-nameid", Login: true, Attrs: person("eve")})
		if r3.IdentityID != r.IdentityID || r3.Outcome != engine.OutcomeLinked {
			t.Errorf("SAML login = %+v, want linked to %s", r3, r.IdentityID)
		}
		if s := f.State(r.IdentityID); s != deprovisioned {
			t.Errorf("state %q, want deprovisioned", s)
		}
		// Nor once no authoritative source holds them at all.
		if _, err := f.Engine.UpdateSource(bg, byTest, f.SCIM.ID, func(s *engine.Source) error {
			s.Authoritative = false
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		r4 := f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|eve", EmailVerified: true, Login: true,
			Attrs: person("eve", "title", "Back again")})
		if r4.State != deprovisioned || f.State(r.IdentityID) != deprovisioned {
			t.Errorf("JIT login with no authoritative account left: %q / %q, want deprovisioned", r4.State, f.State(r.IdentityID))
		}
		noActions(t, f.Events(seq), "identity.reactivated", "identity.restored", "identity.created")
	}},
)
