package storagetest

import (
	"slices"
	"strings"
	"testing"

	"github.com/idsync/idsync/engine"
)

var _ = register(
	Case{"roles stated by a source change the org membership and are audited", func(t *testing.T, f *Fixture) {
		obs := engine.Observation{SourceID: f.SCIM.ID, Key: "r1", Attrs: engine.Attrs{"userName": "rhea"}}
		r := f.Apply(obs) // no roles stated: the organization's default role
		m, ok, err := f.DB.OrgMembership(bg, f.Org.ID, r.IdentityID)
		if err != nil || !ok || !slices.Equal(m.Roles, []string{f.Org.DefaultRole}) {
			t.Fatalf("membership after create = %+v %v %v, want the default role %q", m, ok, err, f.Org.DefaultRole)
		}
		seq := f.AuditSeq()
		obs.Roles = []string{"admin"}
		f.Apply(obs)
		m, _, _ = f.DB.OrgMembership(bg, f.Org.ID, r.IdentityID)
		if !slices.Equal(m.Roles, []string{"admin"}) {
			t.Fatalf("roles = %v, want [admin]", m.Roles)
		}
		evs := Of(f.Events(seq), "org.roles_changed")
		if len(evs) != 1 || !strings.Contains(string(evs[0].Changes), `"before":"member"`) || !strings.Contains(string(evs[0].Changes), `"after":"admin"`) {
			t.Fatalf("org.roles_changed events = %+v", evs)
		}
		// Saying nothing about roles leaves them.
		obs.Roles = nil
		obs.Attrs = engine.Attrs{"userName": "rhea", "title": "CTO"}
		f.Apply(obs)
		if m, _, _ = f.DB.OrgMembership(bg, f.Org.ID, r.IdentityID); !slices.Equal(m.Roles, []string{"admin"}) {
			t.Fatalf("roles after an observation without roles = %v", m.Roles)
		}
	}},
	Case{"people created through the admin API gain groups without losing others", func(t *testing.T, f *Fixture) {
		by := engine.Admin{Actor: "test"}
		p := engine.Person{Attrs: engine.Attrs{"userName": "gus"}, Groups: []string{"eng"}}
		r, err := f.Engine.CreatePerson(bg, by, f.Org.ID, p)
		if err != nil {
			t.Fatal(err)
		}
		p.Groups = []string{"ops"}
		if _, err := f.Engine.CreatePerson(bg, by, f.Org.ID, p); err != nil {
			t.Fatal(err)
		}
		if got := f.GroupsOf(r.IdentityID); !slices.Equal(got, []string{"eng", "ops"}) {
			t.Fatalf("groups = %v, want [eng ops]: an admin update adds groups, it does not replace them", got)
		}
	}},
)
