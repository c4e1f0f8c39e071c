package storagetest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/idsync/idsync/engine"
)

// byEmail finds the one identity of the fixture's organization with email.
func (f *Fixture) byEmail(email string) engine.Identity {
	f.T.Helper()
	ids, err := f.DB.Identities(bg, engine.IdentityFilter{OrgID: f.Org.ID, Email: email})
	if err != nil || len(ids) != 1 {
		f.T.Fatalf("identities with email %s: %d, %v; want 1", email, len(ids), err)
	}
	return ids[0]
}

var _ = register(
	Case{"a duplicate organization slug is refused", func(t *testing.T, f *Fixture) {
		seq := f.AuditSeq()
		_, err := f.Engine.CreateOrganization(bg, byTest, engine.Organization{Slug: "acme", Name: "Acme again"})
		if !errors.Is(err, engine.ErrExists) {
			t.Errorf("err = %v, want ErrExists", err)
		}
		if n := f.Count("organizations", ""); n != 1 {
			t.Errorf("%d organizations, want 1", n)
		}
		if f.AuditSeq() != seq {
			t.Errorf("a refused organization was audited")
		}
	}},

	Case{"an invalid organization slug is refused", func(t *testing.T, f *Fixture) {
		for _, slug := range []string{"Bad Slug", "", "-dash", "ac_me"} {
			_, err := f.Engine.CreateOrganization(bg, byTest, engine.Organization{Slug: slug})
			if !errors.Is(err, engine.ErrInvalid) {
				t.Errorf("slug %q: err = %v, want ErrInvalid", slug, err)
			}
		}
		if n := f.Count("organizations", ""); n != 1 {
			t.Errorf("%d organizations, want 1", n)
		}
	}},

	Case{"a verified domain belongs to one organization", func(t *testing.T, f *Fixture) {
		if err := f.Engine.AddDomain(bg, byTest, f.Org.ID, "Acme.Test", true); err != nil {
			t.Fatalf("add domain: %v", err)
		}
		other, err := f.Engine.CreateOrganization(bg, byTest, engine.Organization{Slug: "globex"})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Engine.AddDomain(bg, byTest, other.ID, "acme.test", true); !errors.Is(err, engine.ErrExists) {
			t.Errorf("second verified claim: %v, want ErrExists", err)
		}
		d, err := f.DB.DomainOwner(bg, "acme.test")
		if err != nil || d.OrgID != f.Org.ID || !d.Verified {
			t.Errorf("owner = %+v, %v; want %s", d, err, f.Org.ID)
		}
		if ds, _ := f.DB.Domains(bg, other.ID); len(ds) != 0 {
			t.Errorf("the refused claim was stored: %+v", ds)
		}
		if err := f.Engine.AddDomain(bg, byTest, other.ID, "not a domain", false); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("bad domain: %v, want ErrInvalid", err)
		}
	}},

	Case{"create person through the admin source", func(t *testing.T, f *Fixture) {
		seq := f.AuditSeq()
		r, err := f.Engine.CreatePerson(bg, byTest, f.Org.ID, engine.Person{
			Attrs: engine.Attrs{"email": "nia@acme.test", "givenName": "Nia"}, Groups: []string{"Staff"}})
		if err != nil {
			t.Fatalf("create person: %v", err)
		}
		if r.Outcome != engine.OutcomeCreated {
			t.Errorf("outcome %q, want created", r.Outcome)
		}
		ident := f.Identity(r.IdentityID)
		if ident.Attrs["givenName"] != "Nia" || ident.State != active {
			t.Errorf("identity = %+v", ident)
		}
		m, ok, err := f.DB.OrgMembership(bg, f.Org.ID, r.IdentityID)
		if err != nil || !ok || m.GrantedVia != "admin" || !slices.Equal(m.Roles, []string{"member"}) {
			t.Errorf("org membership = %+v, %v, %v; want admin with the default role", m, ok, err)
		}
		evs := f.Events(seq)
		wantActions(t, evs, "identity.created", "org.joined", "membership.granted")
		for _, e := range evs {
			if e.Actor != "test" || e.Channel != engine.ChannelAdmin {
				t.Errorf("event %s by %q on %s, want test on admin", e.Action, e.Actor, e.Channel)
			}
		}
		if _, err := f.Engine.CreatePerson(bg, byTest, f.Org.ID, engine.Person{Attrs: engine.Attrs{"givenName": "Nobody"}}); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("a person without key: %v, want ErrInvalid", err)
		}
	}},

	Case{"import of csv and jsonl creates people", func(t *testing.T, f *Fixture) {
		csv := "email,givenName,groups,active\n" +
			"oli@acme.test,Oli,Staff;Eng,true\n" +
			"pia@acme.test,Pia,,false\n" +
			"quin@acme.test,Quin,Staff,\n"
		p, err := f.Engine.Import(bg, byTest, f.Org.ID, strings.NewReader(csv), engine.FormatCSV, engine.SnapshotOptions{})
		if err != nil {
			t.Fatalf("csv import: %v", err)
		}
		if p.Counts.Created != 3 || p.Counts.Seen != 3 {
			t.Errorf("csv counts %+v, want 3 created", p.Counts)
		}
		oli := f.byEmail("oli@acme.test")
		if oli.Attrs["givenName"] != "Oli" || !slices.Equal(f.GroupsOf(oli.ID), []string{"Eng", "Staff"}) {
			t.Errorf("oli = %v in %v", oli.Attrs, f.GroupsOf(oli.ID))
		}
		admin, err := f.Engine.AdminSource(bg, f.Org.ID)
		if err != nil {
			t.Fatal(err)
		}
		if a := f.Account(admin.ID, "pia@acme.test"); a.Active {
			t.Errorf("pia imported with active=false is active in the admin source")
		}

		jsonl := `{"attributes":{"email":"rex@acme.test","userName":"rex"},"groups":["Ops"]}` + "\n\n" +
			`{"key":"emp-7","attributes":{"email":"sue@acme.test","employeeNumber":"7"},"roles":["admin"]}` + "\n" +
			`{"attributes":{"email":"oli@acme.test","givenName":"Olivia"}}` + "\n"
		p, err = f.Engine.Import(bg, byTest, f.Org.ID, strings.NewReader(jsonl), engine.FormatJSONL, engine.SnapshotOptions{})
		if err != nil {
			t.Fatalf("jsonl import: %v", err)
		}
		if p.Counts.Created != 2 || p.Counts.Updated != 1 {
			t.Errorf("jsonl counts %+v, want 2 created, 1 updated", p.Counts)
		}
		if a := f.Account(admin.ID, "rex"); f.Identity(a.IdentityID).Attrs["email"] != "rex@acme.test" {
			t.Errorf("rex keyed by userName: %+v", a)
		}
		sue := f.Account(admin.ID, "emp-7")
		if m, _, _ := f.DB.OrgMembership(bg, f.Org.ID, sue.IdentityID); !slices.Equal(m.Roles, []string{"admin"}) {
			t.Errorf("sue's roles %v, want admin", m.Roles)
		}
		if g := f.byEmail("oli@acme.test").Attrs["givenName"]; g != "Olivia" {
			t.Errorf("oli's givenName %q, want Olivia", g)
		}
		if n := f.Count("identities", ""); n != 5 {
			t.Errorf("%d identities, want 5", n)
		}
	}},

	Case{"a malformed jsonl line stops the import naming the line", func(t *testing.T, f *Fixture) {
		jsonl := `{"attributes":{"email":"tia@acme.test"}}` + "\n" +
			`{"attributes":{"email":"uma@acme.test"}}` + "\n" +
			`{"attributes":{"email":` + "\n" +
			`{"attributes":{"email":"val@acme.test"}}` + "\n"
		_, err := f.Engine.Import(bg, byTest, f.Org.ID, strings.NewReader(jsonl), engine.FormatJSONL, engine.SnapshotOptions{})
		if !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), "line 3") {
			t.Fatalf("err = %v, want ErrInvalid naming line 3", err)
		}
		if _, err := f.Engine.Import(bg, byTest, f.Org.ID, strings.NewReader(`{"attributes":{},"nickname":"x"}`+"\n"),
			engine.FormatJSONL, engine.SnapshotOptions{}); !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("unknown field: %v, want ErrInvalid naming line 1", err)
		}
		if n := f.Count("identities", "email_norm = ?", "val@acme.test"); n != 0 {
			t.Errorf("a line after the malformed one was imported")
		}
	}},

	Case{"link and unlink move an account and audit it", func(t *testing.T, f *Fixture) {
		a := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "scim-wes", Attrs: person("wes", "title", "Dev"), Groups: []string{"Staff"}})
		b := f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|wes", Attrs: engine.Attrs{
			"email": "wes@personal.test", "givenName": "Wes"}, Groups: []string{"Beta"}})
		if a.IdentityID == b.IdentityID {
			t.Fatal("setup: the two accounts are one person already")
		}
		oidc := f.Account(f.OIDC.ID, "https://idp|wes")
		seq := f.AuditSeq()
		if err := f.Engine.Link(bg, byTest, oidc.ID, a.IdentityID); err != nil {
			t.Fatalf("link: %v", err)
		}
		if got := f.Account(f.OIDC.ID, "https://idp|wes").IdentityID; got != a.IdentityID {
			t.Errorf("after link the account is on %s, want %s", got, a.IdentityID)
		}
		evs := f.Events(seq)
		un, li := Of(evs, "account.unlinked"), Of(evs, "account.linked")
		if len(un) != 1 || un[0].IdentityID != b.IdentityID || un[0].SubjectID != oidc.ID {
			t.Errorf("account.unlinked = %+v, want one from %s", un, b.IdentityID)
		}
		if len(li) != 1 || li[0].IdentityID != a.IdentityID || li[0].SubjectID != oidc.ID {
			t.Errorf("account.linked = %+v, want one to %s", li, a.IdentityID)
		}
		if g := f.Identity(a.IdentityID).Attrs["givenName"]; g != "Wes" {
			t.Errorf("merged givenName %q, want Wes", g)
		}
		if g := f.GroupsOf(a.IdentityID); !slices.Equal(g, []string{"Beta", "Staff"}) {
			t.Errorf("groups after link %v, want the moved edge too", g)
		}
		if g := f.GroupsOf(b.IdentityID); len(g) != 0 {
			t.Errorf("the old identity keeps edges %v", g)
		}

		seq = f.AuditSeq()
		newID, err := f.Engine.Unlink(bg, byTest, oidc.ID)
		if err != nil {
			t.Fatalf("unlink: %v", err)
		}
		if newID == "" || newID == a.IdentityID || newID == b.IdentityID {
			t.Fatalf("unlink made identity %q", newID)
		}
		if got := f.Account(f.OIDC.ID, "https://idp|wes").IdentityID; got != newID {
			t.Errorf("after unlink the account is on %s, want %s", got, newID)
		}
		evs = f.Events(seq)
		wantActions(t, evs, "identity.created", "account.unlinked", "account.linked", "org.joined")
		if g := f.Identity(newID).Attrs["email"]; g != "wes@personal.test" {
			t.Errorf("split identity email %q", g)
		}
		if g := f.Identity(a.IdentityID).Attrs["givenName"]; g != "" {
			t.Errorf("the identity the account left still has givenName %q", g)
		}
		if _, ok, _ := f.DB.OrgMembership(bg, f.Org.ID, newID); !ok {
			t.Errorf("the split identity is not a member of the organization")
		}
	}},

	Case{"delete identity removes its rows and audits it", func(t *testing.T, f *Fixture) {
		r := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", EmailVerified: true, Attrs: person("xia"), Groups: []string{"Staff"}})
		f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|xia", EmailVerified: true, Attrs: person("xia")})
		keep := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "u-2", Attrs: person("yan"), Groups: []string{"Staff"}})
		seq := f.AuditSeq()
		if err := f.Engine.DeleteIdentity(bg, byTest, r.IdentityID); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := f.DB.Identity(bg, r.IdentityID); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("identity after delete: %v, want ErrNotFound", err)
		}
		for _, table := range []string{"identities", "accounts", "group_memberships", "org_memberships"} {
			col := "identity_id"
			if table == "identities" {
				col = "id"
			}
			if n := f.Count(table, col+" = ?", r.IdentityID); n != 0 {
				t.Errorf("%s keeps %d rows of the deleted identity", table, n)
			}
		}
		del := Of(f.Events(seq), "identity.deleted")
		if len(del) != 1 || del[0].IdentityID != r.IdentityID {
			t.Errorf("identity.deleted events %+v", del)
		}
		if f.State(keep.IdentityID) != active || len(f.GroupsOf(keep.IdentityID)) != 1 {
			t.Errorf("deleting one person touched another")
		}
		if err := f.Engine.DeleteIdentity(bg, byTest, r.IdentityID); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("deleting again: %v, want ErrNotFound", err)
		}
		if v := f.Verify(); !v.OK {
			t.Errorf("audit: %+v", v)
		}
	}},

	Case{"plan returns the events apply would write without writing", func(t *testing.T, f *Fixture) {
		obs := engine.Observation{SourceID: f.SCIM.ID, Key: "u-1", Attrs: person("zed"), Groups: []string{"Staff"}}
		seq := f.AuditSeq()
		p, err := f.Engine.Plan(bg, obs)
		if err != nil {
			t.Fatalf("plan: %v", err)
		}
		if p.Outcome != engine.OutcomeCreated || len(p.Events) == 0 {
			t.Errorf("plan = %+v, want created with events", p)
		}
		if f.AuditSeq() != seq {
			t.Errorf("plan wrote events %v", Actions(f.Events(seq)))
		}
		for _, table := range []string{"identities", "accounts", "org_groups", "group_memberships", "org_memberships"} {
			if n := f.Count(table, ""); n != 0 {
				t.Errorf("plan wrote %d %s rows", n, table)
			}
		}
		r := f.Apply(obs)
		if got, want := Actions(r.Events), Actions(p.Events); !slices.Equal(got, want) {
			t.Errorf("apply wrote %v, plan said %v", got, want)
		}
		// A plan against the existing person shows the change.
		obs.Attrs = person("zed", "title", "CEO")
		p, err = f.Engine.Plan(bg, obs)
		if err != nil || p.Outcome != engine.OutcomeUpdated || p.IdentityID != r.IdentityID {
			t.Fatalf("plan of an update = %+v, %v", p, err)
		}
		wantActions(t, p.Events, "identity.updated")
		if f.Identity(r.IdentityID).Attrs["title"] != "" || f.Account(f.SCIM.ID, "u-1").Attrs["title"] != "" {
			t.Errorf("the plan of an update wrote it")
		}
	}},
)
