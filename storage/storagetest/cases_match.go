package storagetest

import (
	"reflect"
	"slices"
	"testing"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/reconcile"
)

// unverifiedConflict creates a person by a verified JIT login, then lets SCIM
// assert the same email unverified, which must open a conflict.
func unverifiedConflict(t *testing.T, f *Fixture) (identityID string, c engine.Conflict) {
	t.Helper()
	r := f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|fay", EmailVerified: true, Login: true,
		Attrs: person("fay")})
	seq := f.AuditSeq()
	r2 := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "scim-fay", Attrs: engine.Attrs{
		"email": "fay@acme.test", "userName": "fay.s", "title": "CFO"}})
	if r2.Outcome != engine.OutcomeConflict || r2.ConflictID == "" || r2.IdentityID != "" {
		t.Fatalf("unverified email match = %+v, want a conflict", r2)
	}
	opened := Of(f.Events(seq), "conflict.opened")
	if len(opened) != 1 || opened[0].SubjectID != r2.ConflictID {
		t.Fatalf("conflict.opened events = %+v, want one for %s", opened, r2.ConflictID)
	}
	cs := f.OpenConflicts()
	if len(cs) != 1 || cs[0].ID != r2.ConflictID {
		t.Fatalf("open conflicts = %+v, want %s", cs, r2.ConflictID)
	}
	return r.IdentityID, cs[0]
}

var _ = register(
	Case{"jit login creates and a later scim create links by verified email", func(t *testing.T, f *Fixture) {
		r := f.Apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|gus", EmailVerified: true, Login: true,
			Attrs: person("gus")})
		if r.Outcome != engine.OutcomeCreated {
			t.Fatalf("login outcome %q, want created", r.Outcome)
		}
		seq := f.AuditSeq()
		r2 := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "scim-gus", EmailVerified: true,
			Attrs: engine.Attrs{"email": "GUS@acme.test", "userName": "gus"}})
		if r2.Outcome != engine.OutcomeLinked || r2.IdentityID != r.IdentityID {
			t.Fatalf("scim create = %+v, want linked to %s", r2, r.IdentityID)
		}
		evs := f.Events(seq)
		wantActions(t, evs, "account.linked")
		noActions(t, evs, "identity.created", "conflict.opened")
		if n := f.Count("identities", ""); n != 1 {
			t.Errorf("%d identities, want 1", n)
		}
		if a := f.Account(f.SCIM.ID, "scim-gus"); a.IdentityID != r.IdentityID {
			t.Errorf("SCIM account on %s, want %s", a.IdentityID, r.IdentityID)
		}
		if len(f.OpenConflicts()) != 0 {
			t.Errorf("a verified match opened a conflict")
		}
	}},

	Case{"an unverified email match opens one conflict however often it is seen", func(t *testing.T, f *Fixture) {
		id, c := unverifiedConflict(t, f)
		if c.Rule != "email" || !slices.Equal(c.Candidates, []string{id}) || c.SourceID != f.SCIM.ID ||
			c.Key != "scim-fay" || c.Status != engine.ConflictOpen {
			t.Errorf("conflict = %+v, want rule email, candidate %s", c, id)
		}
		if c.Observation.Attrs["title"] != "CFO" {
			t.Errorf("conflict keeps observation %+v", c.Observation)
		}
		if n := f.Count("accounts", "source_id = ?", f.SCIM.ID); n != 0 {
			t.Errorf("a conflict created %d SCIM accounts", n)
		}
		seq := f.AuditSeq()
		again := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "scim-fay", Attrs: engine.Attrs{
			"email": "fay@acme.test", "userName": "fay.s", "title": "CEO"}})
		if again.Outcome != engine.OutcomeConflict || again.ConflictID != c.ID {
			t.Errorf("re-applying = %+v, want the same conflict %s", again, c.ID)
		}
		noActions(t, f.Events(seq), "conflict.opened")
		cs := f.OpenConflicts()
		if len(cs) != 1 {
			t.Fatalf("%d open conflicts, want 1", len(cs))
		}
		if cs[0].Observation.Attrs["title"] != "CEO" {
			t.Errorf("the conflict should hold the newest observation, has %v", cs[0].Observation.Attrs)
		}
		if n := f.Count("conflicts", ""); n != 1 {
			t.Errorf("%d conflict rows, want 1", n)
		}
	}},

	Case{"two identities matching on username open a conflict", func(t *testing.T, f *Fixture) {
		a := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "a", Attrs: engine.Attrs{"email": "hal1@acme.test", "userName": "hal"}})
		b := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "b", Attrs: engine.Attrs{"email": "hal2@acme.test", "userName": "hal-2"}})
		if a.IdentityID == b.IdentityID || b.Outcome != engine.OutcomeCreated {
			t.Fatalf("setup: %+v / %+v", a, b)
		}
		// Renaming does not re-match: now two people share userName hal.
		f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "b", Attrs: engine.Attrs{"email": "hal2@acme.test", "userName": "HAL"}})
		seq := f.AuditSeq()
		r := f.Apply(engine.Observation{SourceID: f.LDAP.ID, Key: "uid=hal", EmailVerified: true,
			Attrs: engine.Attrs{"email": "hal3@acme.test", "userName": "hal"}})
		if r.Outcome != engine.OutcomeConflict {
			t.Fatalf("outcome %q, want conflict", r.Outcome)
		}
		wantActions(t, f.Events(seq), "conflict.opened")
		cs := f.OpenConflicts()
		if len(cs) != 1 || cs[0].Rule != "userName" {
			t.Fatalf("open conflicts = %+v, want one on userName", cs)
		}
		got := slices.Sorted(slices.Values(cs[0].Candidates))
		want := slices.Sorted(slices.Values([]string{a.IdentityID, b.IdentityID}))
		if !slices.Equal(got, want) {
			t.Errorf("candidates %v, want %v", got, want)
		}
		if n := f.Count("identities", ""); n != 2 {
			t.Errorf("%d identities, want 2", n)
		}
	}},

	Case{"a second account of one source matching a person opens a conflict", func(t *testing.T, f *Fixture) {
		r := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "scim-1", EmailVerified: true, Attrs: person("ron")})
		r2 := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "scim-2", EmailVerified: true, Attrs: person("ron")})
		if r2.Outcome != engine.OutcomeConflict {
			t.Fatalf("second SCIM account with ron's verified email = %+v, want a conflict", r2)
		}
		cs := f.OpenConflicts()
		if len(cs) != 1 || !slices.Equal(cs[0].Candidates, []string{r.IdentityID}) {
			t.Errorf("open conflicts = %+v, want one naming %s", cs, r.IdentityID)
		}
		if n := f.Count("accounts", "identity_id = ?", r.IdentityID); n != 1 {
			t.Errorf("ron holds %d accounts, want 1", n)
		}
	}},

	Case{"resolving a conflict with a candidate links the account", func(t *testing.T, f *Fixture) {
		id, c := unverifiedConflict(t, f)
		seq := f.AuditSeq()
		r, err := f.Engine.ResolveConflict(bg, byTest, c.ID, id)
		if err != nil {
			t.Fatalf("resolve: %v", err)
		}
		if r.Outcome != engine.OutcomeLinked || r.IdentityID != id {
			t.Errorf("resolve = %+v, want linked to %s", r, id)
		}
		evs := f.Events(seq)
		wantActions(t, evs, "conflict.resolved", "account.linked")
		noActions(t, evs, "identity.created")
		if a := f.Account(f.SCIM.ID, "scim-fay"); a.IdentityID != id {
			t.Errorf("account on %s, want %s", a.IdentityID, id)
		}
		got, err := f.DB.Conflict(bg, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != engine.ConflictResolved || got.Resolution != id || got.ResolvedBy != "test" || got.ResolvedAt.IsZero() {
			t.Errorf("conflict after resolve = %+v", got)
		}
		if len(f.OpenConflicts()) != 0 || f.Count("identities", "") != 1 {
			t.Errorf("open conflicts %d, identities %d; want 0 and 1", len(f.OpenConflicts()), f.Count("identities", ""))
		}
		if f.Identity(id).Attrs["title"] != "CFO" {
			t.Errorf("the queued observation was not applied: %v", f.Identity(id).Attrs)
		}
		if _, err := f.Engine.ResolveConflict(bg, byTest, c.ID, "new"); err == nil {
			t.Errorf("resolving a resolved conflict again succeeded")
		}
	}},

	Case{"resolving a conflict as new creates a separate identity", func(t *testing.T, f *Fixture) {
		id, c := unverifiedConflict(t, f)
		seq := f.AuditSeq()
		r, err := f.Engine.ResolveConflict(bg, byTest, c.ID, "new")
		if err != nil {
			t.Fatalf("resolve: %v", err)
		}
		if r.Outcome != engine.OutcomeCreated || r.IdentityID == "" || r.IdentityID == id {
			t.Errorf("resolve = %+v, want a new identity other than %s", r, id)
		}
		wantActions(t, f.Events(seq), "conflict.resolved", "identity.created", "account.linked")
		if n := f.Count("identities", ""); n != 2 {
			t.Errorf("%d identities, want 2", n)
		}
		if a := f.Account(f.SCIM.ID, "scim-fay"); a.IdentityID != r.IdentityID {
			t.Errorf("account on %s, want %s", a.IdentityID, r.IdentityID)
		}
		got, err := f.DB.Conflict(bg, c.ID)
		if err != nil || got.Status != engine.ConflictResolved || got.Resolution != "new" {
			t.Errorf("conflict after resolve = %+v, %v", got, err)
		}
	}},
)

var _ = register(
	Case{"FindCandidatesMany answers each set of values as FindCandidates does", func(t *testing.T, f *Fixture) {
		ada := f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "s-ada", Attrs: person("ada", "externalId", "X1")})
		bob := f.Apply(engine.Observation{SourceID: f.LDAP.ID, Key: "l-bob", Attrs: person("bob", "employeeNumber", "E7")})
		f.Apply(engine.Observation{SourceID: f.SCIM.ID, Key: "s-bob2", Attrs: engine.Attrs{"userName": "bob2", "employeeNumber": "E8"}})
		globex, err := f.Engine.CreateOrganization(bg, byTest, engine.Organization{Slug: "globex"})
		if err != nil {
			t.Fatal(err)
		}
		other, err := f.Engine.CreateSource(bg, byTest, engine.Source{OrgID: globex.ID, Kind: engine.KindSCIM, Name: "globex-scim"}, true)
		if err != nil {
			t.Fatal(err)
		}
		f.Apply(engine.Observation{SourceID: other.ID, Key: "o-ada", Attrs: person("ada")}) // another organization's
		sets := []map[string]string{
			{"email": "ADA@acme.test"},
			{"email": "bob@acme.test", "externalId": "X1"},
			{"employeeNumber": " E7 "},
			{"employeeNumber": "E8", "userName": "BOB2"},
			{"userName": "nobody"},
			{},
		}
		many, err := f.DB.FindCandidatesMany(bg, f.Org.ID, f.SCIM.ID, sets)
		if err != nil || len(many) != len(sets) {
			t.Fatalf("FindCandidatesMany: %d results, %v", len(many), err)
		}
		for i, vs := range sets {
			one := map[string][]reconcile.Candidate{}
			if len(vs) > 0 {
				if one, err = f.DB.FindCandidates(bg, f.Org.ID, f.SCIM.ID, vs); err != nil {
					t.Fatal(err)
				}
			}
			if !reflect.DeepEqual(many[i], one) {
				t.Errorf("values %v: many %v, one %v", vs, many[i], one)
			}
		}
		if c := many[1]["externalId"]; len(c) != 1 || c[0].IdentityID != ada.IdentityID || !c[0].HoldsSource {
			t.Errorf("externalId X1 candidates %+v, want ada holding the SCIM source", c)
		}
		if c := many[1]["email"]; len(c) != 1 || c[0].IdentityID != bob.IdentityID || c[0].HoldsSource {
			t.Errorf("bob's email candidates %+v, want bob not holding the SCIM source", c)
		}
		if c := many[2]["employeeNumber"]; len(c) != 1 || c[0].IdentityID != bob.IdentityID {
			t.Errorf("E7 candidates %+v, want bob", c)
		}
		if c := many[3]; len(c["employeeNumber"]) != 1 || len(c["userName"]) != 1 || !c["userName"][0].HoldsSource {
			t.Errorf("bob2 candidates %+v, want one by each rule, holding the SCIM source", c)
		}
		if c := many[0]["email"]; len(c) != 1 {
			t.Errorf("ada's email candidates %+v: the other organization's person must not be one", c)
		}
	}},
)
