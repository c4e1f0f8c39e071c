package admin_test

import (
	"slices"
	"testing"
	"time"

	"github.com/idsync/idsync/admin"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage/storagetest"
)

// TestCompare checks the comparison figures against a seeded scenario
// whose right answer is known:
//
//	alice  SCIM at T0, JIT login at T0+2h with another title → several, drift (SCIM wins on priority), access 2h
//	bob    SCIM only, never signs in                          → scim_only, never signed in
//	carol  JIT only                                           → jit_only, unknown to directories
//	dave   LDAP only, never signs in                          → ldap_only, never signed in
//	erin   created through the API                            → api_only
//	frank  SCIM+LDAP at T0, login T0+1h; SCIM deactivates at T0+3h, LDAP at T0+4h
//	       (deprovisioned then: lag 1h), then a JIT login at T0+5h → several, access 1h, login after gone
func TestCompare(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t))
			f := e.f
			t0 := f.Clock.Now()
			scim := func(u, title string, inactive bool) engine.Result {
				return e.apply(engine.Observation{SourceID: f.SCIM.ID, Key: "s-" + u, Attrs: person(u, u+"@acme.test", title), Inactive: inactive})
			}
			ldap := func(u string, inactive bool) engine.Result {
				return e.apply(engine.Observation{SourceID: f.LDAP.ID, Key: "l-" + u, Attrs: person(u, u+"@acme.test", "Ops"), Inactive: inactive, EmailVerified: true})
			}
			login := func(u, title string) engine.Result {
				return e.apply(engine.Observation{SourceID: f.OIDC.ID, Key: "https://idp|" + u, EmailVerified: true, Login: true,
					Attrs: person(u, u+"@acme.test", title)})
			}
			alice := scim("alice", "Staff Engineer", false)
			bob := scim("bob", "Clerk", false)
			dave := ldap("dave", false)
			frank := scim("frank", "Ops", false)
			ldap("frank", false)
			var erin engine.Result
			e.call(e.admin, "POST", "/orgs/acme/people", map[string]any{"attributes": person("erin", "erin@acme.test", "CEO")}, 201, &erin)
			f.Clock.Advance(time.Hour)
			login("frank", "Ops")
			f.Clock.Advance(time.Hour)
			if r := login("alice", "Engineer"); r.IdentityID != alice.IdentityID {
				t.Fatalf("alice's login made another person: %+v", r)
			}
			carol := login("carol", "Designer")
			f.Clock.Advance(time.Hour)
			scim("frank", "Ops", true)
			f.Clock.Advance(time.Hour)
			ldap("frank", true)
			if st := f.State(frank.IdentityID); st != "deprovisioned" {
				t.Fatalf("frank is %s after both directories said gone", st)
			}
			f.Clock.Advance(time.Hour)
			login("frank", "Ops")

			var c admin.Compare
			e.call(e.admin, "GET", "/orgs/acme/compare", nil, 200, &c)
			wantCame := map[string]int{admin.CameSeveral: 2, admin.CameSCIMOnly: 1, admin.CameJITOnly: 1, admin.CameLDAPOnly: 1, admin.CameAPIOnly: 1}
			if c.People != 6 || !mapsEqual(c.CameIn, wantCame) {
				t.Errorf("people %d came in %v, want 6 and %v", c.People, c.CameIn, wantCame)
			}
			if !sameSet(c.CameInPeople[admin.CameSeveral], alice.IdentityID, frank.IdentityID) || !sameSet(c.CameInPeople[admin.CameAPIOnly], erin.IdentityID) {
				t.Errorf("people by way in = %v", c.CameInPeople)
			}
			if !sameSet(c.NeverSignedIn, bob.IdentityID, dave.IdentityID) || c.NeverSignedInCount != 2 {
				t.Errorf("never signed in = %v", c.NeverSignedIn)
			}
			if !sameSet(c.JITUnknown, carol.IdentityID) {
				t.Errorf("JIT unknown to directories = %v", c.JITUnknown)
			}
			if len(c.Drift) != 1 || c.Drift[0].IdentityID != alice.IdentityID || c.Drift[0].Attribute != "title" ||
				c.Drift[0].Winner != f.SCIM.Name || c.Drift[0].JITValue != "Engineer" || c.Drift[0].DirectoryValue != "Staff Engineer" {
				t.Errorf("drift = %+v", c.Drift)
			} else if c.Drift[0].Why == "" {
				t.Error("drift does not say why")
			}
			if c.Deprovisioning.Count != 1 || c.Deprovisioning.P50 != 3600 {
				t.Errorf("deprovisioning lag = %+v, want one of 1h", c.Deprovisioning)
			}
			if len(c.LoginsAfterGone) != 1 || c.LoginsAfterGone[0].IdentityID != frank.IdentityID ||
				!c.LoginsAfterGone[0].LoginAt.Equal(t0.Add(5*time.Hour)) {
				t.Errorf("logins after gone = %+v", c.LoginsAfterGone)
			}
			if c.TimeToAccess.Count != 2 || c.TimeToAccess.Max != 7200 {
				t.Errorf("time to access = %+v, want 2 with max 2h", c.TimeToAccess)
			}
			t.Run("window", func(t *testing.T) {
				var w admin.Compare
				since := t0.Add(90 * time.Minute).Format(time.RFC3339)
				e.call(e.admin, "GET", "/orgs/acme/compare?since="+since, nil, 200, &w)
				if w.People != 1 || w.CameIn[admin.CameJITOnly] != 1 {
					t.Errorf("window from T0+90m: people %d came in %v, want carol only", w.People, w.CameIn)
				}
			})
		})
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func sameSet(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}
