package storagetest

import (
	"slices"
	"testing"

	"github.com/idsync/idsync/engine"
)

var _ = register(
	Case{"a source revokes only the group edges it asserted", func(t *testing.T, f *Fixture) {
		scim := engine.Observation{SourceID: f.SCIM.ID, Key: "scim-ivy", EmailVerified: true, Attrs: person("ivy"),
			Groups: []string{"Engineering"}}
		ldap := engine.Observation{SourceID: f.LDAP.ID, Key: "ldap-ivy", EmailVerified: true, Attrs: person("ivy"),
			Groups: []string{"engineering"}} // group names match case-insensitively
		r := f.Apply(scim)
		seq := f.AuditSeq()
		if r2 := f.Apply(ldap); r2.IdentityID != r.IdentityID {
			t.Fatalf("LDAP account not linked: %+v", r2)
		}
		noActions(t, f.Events(seq), "membership.granted", "group.created")
		if e := f.Edges(r.IdentityID); len(e) != 2 {
			t.Fatalf("edges %v, want one per source", e)
		}

		seq = f.AuditSeq()
		scim.Groups = []string{}
		f.Apply(scim)
		noActions(t, f.Events(seq), "membership.revoked")
		if g := f.GroupsOf(r.IdentityID); !slices.Equal(g, []string{"Engineering"}) {
			t.Errorf("after SCIM dropped it: groups %v, want Engineering (LDAP still asserts it)", g)
		}
		if e := f.Edges(r.IdentityID); !slices.Equal(e, []string{"Engineering@" + f.LDAP.ID}) {
			t.Errorf("edges %v, want only LDAP's", e)
		}

		seq = f.AuditSeq()
		ldap.Groups = []string{}
		f.Apply(ldap)
		rev := Of(f.Events(seq), "membership.revoked")
		if len(rev) != 1 || rev[0].IdentityID != r.IdentityID {
			t.Errorf("membership.revoked events %+v, want one for %s", rev, r.IdentityID)
		}
		if g := f.GroupsOf(r.IdentityID); len(g) != 0 {
			t.Errorf("after both dropped it: groups %v", g)
		}
	}},

	Case{"groups in add mode grant without revoking", func(t *testing.T, f *Fixture) {
		r := f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|jo", EmailVerified: true, Attrs: person("jo"),
			Groups: []string{"Staff"}})
		seq := f.AuditSeq()
		f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|jo", EmailVerified: true, Attrs: person("jo"),
			Groups: []string{"Admins"}, GroupMode: engine.GroupsAdd})
		evs := f.Events(seq)
		noActions(t, evs, "membership.revoked")
		if g := Of(evs, "membership.granted"); len(g) != 1 {
			t.Errorf("membership.granted events %d, want 1 (Admins)", len(g))
		}
		if g := f.GroupsOf(r.IdentityID); !slices.Equal(g, []string{"Admins", "Staff"}) {
			t.Errorf("groups %v, want Admins and Staff", g)
		}
		// Replace mode (the default) does revoke what is left out.
		seq = f.AuditSeq()
		f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|jo", EmailVerified: true, Attrs: person("jo"),
			Groups: []string{"Admins"}})
		if rev := Of(f.Events(seq), "membership.revoked"); len(rev) != 1 {
			t.Errorf("replace: membership.revoked events %d, want 1 (Staff)", len(rev))
		}
		if g := f.GroupsOf(r.IdentityID); !slices.Equal(g, []string{"Admins"}) {
			t.Errorf("after replace: groups %v, want Admins", g)
		}
	}},

	Case{"nil groups say nothing about memberships", func(t *testing.T, f *Fixture) {
		r := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Attrs: person("kim"), Groups: []string{"A", "B"}})
		seq := f.AuditSeq()
		r2 := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Attrs: person("kim", "title", "Lead"), Groups: noGroup})
		if r2.Outcome != engine.OutcomeUpdated {
			t.Fatalf("outcome %q, want updated", r2.Outcome)
		}
		noActions(t, f.Events(seq), "membership.revoked", "membership.granted")
		if g := f.GroupsOf(r.IdentityID); !slices.Equal(g, []string{"A", "B"}) {
			t.Errorf("groups %v, want A and B", g)
		}
		if g := f.Account(f.SCIM.ID, "u-1").Groups; !slices.Equal(g, []string{"A", "B"}) {
			t.Errorf("account groups %v, want A and B kept", g)
		}
	}},
)
