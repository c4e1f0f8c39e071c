package jit_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/jit"
	"github.com/idsync/idsync/storage"
)

// loginOK runs a browser login and fails unless it lands on the return URL;
// it returns the signed-in identity.
func (e *env) loginOK(conn string) string {
	e.t.Helper()
	b := e.browser()
	resp := e.login(b, "acme", conn)
	body := readAll(e.t, resp)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/session" {
		e.t.Fatalf("login through %s ended at %s with %d: %.400s", conn, resp.Request.URL, resp.StatusCode, body)
	}
	_, v := e.sessionOf(b)
	return v.Identity.ID
}

// loginRefused runs a browser login and expects idsync's refusal page
// with status code and a message containing want.
func (e *env) loginRefused(conn string, code int, want string) {
	e.t.Helper()
	b := e.browser()
	resp := e.login(b, "acme", conn)
	body := readAll(e.t, resp)
	if resp.StatusCode != code || !strings.Contains(body, want) {
		e.t.Fatalf("login through %s: %d %q, want %d with %q", conn, resp.StatusCode, body, code, want)
	}
	if c, _ := e.sessionOf(b); c != http.StatusUnauthorized {
		e.t.Errorf("a refused login left a session")
	}
}

// TestGroupSyncModes: a group the IdP stops sending is revoked only in sync
// mode, and never when SCIM also grants it; assign grants at the first
// login only; none ignores groups.
func TestGroupSyncModes(t *testing.T) {
	for _, tc := range []struct {
		mode  string
		first []string // groups after the first login
		later []string // after the IdP drops "staff" and adds "ops"
	}{
		{jit.GroupsNone, nil, nil},
		{jit.GroupsAssign, []string{"Engineering", "Staff"}, []string{"Engineering", "Staff"}},
		{jit.GroupsAppend, []string{"Engineering", "Staff"}, []string{"Engineering", "Operations", "Staff"}},
		{jit.GroupsSync, []string{"Engineering", "Staff"}, []string{"Engineering", "Operations"}},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, db *storage.DB) {
				e := newEnv(t, db)
				op := newMiniOP(t)
				e.connection(engine.KindOIDC, "okta", op.config("JIT_TEST_SECRET", func(c *jit.Config) {
					c.Mapping.GroupMode = tc.mode
					c.Mapping.Groups = []jit.Rule{{From: "eng", To: "Engineering"}, {From: "staff", To: "Staff"},
						{From: "ops", To: "Operations"}}
				}), false)
				id := e.loginOK("okta")
				if got := e.f.GroupsOf(id); !slices.Equal(got, tc.first) {
					t.Fatalf("groups after first login = %v, want %v", got, tc.first)
				}
				op.setClaim("groups", []any{"eng", "ops"})
				e.loginOK("okta")
				if got := e.f.GroupsOf(id); !slices.Equal(got, tc.later) {
					t.Fatalf("groups after the IdP changed them = %v, want %v", got, tc.later)
				}
				revoked := e.auditCount("membership.revoked")
				if want := tc.mode == jit.GroupsSync; (revoked > 0) != want {
					t.Errorf("membership.revoked events = %d in mode %s", revoked, tc.mode)
				}
			})
		})
	}
}

// TestSyncNeverRevokesSCIMGroups: in sync mode, a group the IdP stops
// sending stays when SCIM grants it too; only the JIT edge goes.
func TestSyncNeverRevokesSCIMGroups(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		op := newMiniOP(t)
		src := e.connection(engine.KindOIDC, "okta", op.config("JIT_TEST_SECRET", func(c *jit.Config) {
			c.Mapping.GroupMode = jit.GroupsSync
			c.Mapping.PassthroughGroups = true
		}), false)
		id := e.loginOK("okta")
		e.f.Apply(engine.Observation{SourceID: e.f.SCIM.ID, Key: "scim-alice", EmailVerified: true,
			Attrs: engine.Attrs{"email": "alice@acme.test", "userName": "alice@acme.test"}, Groups: []string{"staff"}})
		if got := e.f.Edges(id); !slices.Equal(got, []string{"eng@" + src.ID, "staff@" + e.f.SCIM.ID, "staff@" + src.ID}) {
			t.Fatalf("edges = %v", got)
		}
		op.setClaim("groups", []any{"eng"})
		e.loginOK("okta")
		if got := e.f.Edges(id); !slices.Equal(got, []string{"eng@" + src.ID, "staff@" + e.f.SCIM.ID}) {
			t.Errorf("edges after the IdP dropped staff = %v", got)
		}
		if got := e.f.GroupsOf(id); !slices.Equal(got, []string{"eng", "staff"}) {
			t.Errorf("groups = %v: SCIM's staff must stay", got)
		}
	})
}

// TestSCIMAccountIsLinkedNotDuplicated: a person SCIM created earlier signs
// in with the same verified email: the login links to them.
func TestSCIMAccountIsLinkedNotDuplicated(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		op := newMiniOP(t)
		src := e.connection(engine.KindOIDC, "okta", op.config("JIT_TEST_SECRET"), false)
		r := e.f.Apply(engine.Observation{SourceID: e.f.SCIM.ID, Key: "scim-alice", EmailVerified: true,
			Attrs: engine.Attrs{"email": "alice@acme.test", "userName": "alice@acme.test", "department": "Sales"}})
		id := e.loginOK("okta")
		if id != r.IdentityID {
			t.Fatalf("login signed in identity %s, SCIM created %s", id, r.IdentityID)
		}
		if n := e.f.Count("identities", ""); n != 1 {
			t.Errorf("%d identities after the login, want 1", n)
		}
		if e.f.Account(src.ID, op.issuer()+"|u-1001").IdentityID != r.IdentityID {
			t.Error("JIT account not linked to the SCIM person")
		}
		if n := e.f.Count("audit_events", "action = 'account.linked' AND source_id = ? AND changes LIKE '%matched%'", src.ID); n != 1 {
			t.Errorf("account.linked by match audited %d times", n)
		}
	})
}

// TestLoginPolicies covers create, link and update policies and lifecycle
// refusal.
func TestLoginPolicies(t *testing.T) {
	scimAlice := func(e *env) engine.Result {
		return e.f.Apply(engine.Observation{SourceID: e.f.SCIM.ID, Key: "scim-alice", EmailVerified: true,
			Attrs: engine.Attrs{"email": "alice@acme.test", "userName": "alice@acme.test"}})
	}
	f := false
	for _, tc := range []struct {
		name string
		cfg  func(*jit.Config)
		run  func(t *testing.T, e *env, op *miniOP)
	}{
		{"create-off-refuses-new-person", func(c *jit.Config) { c.Policy.CreateOnFirstLogin = &f }, func(t *testing.T, e *env, op *miniOP) {
			e.loginRefused("okta", http.StatusForbidden, "does not create accounts")
			if n := e.f.Count("identities", ""); n != 0 {
				t.Errorf("%d identities created", n)
			}
		}},
		{"create-off-links-existing", func(c *jit.Config) { c.Policy.CreateOnFirstLogin = &f }, func(t *testing.T, e *env, op *miniOP) {
			r := scimAlice(e)
			if id := e.loginOK("okta"); id != r.IdentityID {
				t.Errorf("linked to %s, want %s", id, r.IdentityID)
			}
		}},
		{"link-none-refuses-existing", func(c *jit.Config) { c.Policy.Link = jit.LinkNone }, func(t *testing.T, e *env, op *miniOP) {
			scimAlice(e)
			e.loginRefused("okta", http.StatusForbidden, "does not link accounts")
			if n := e.f.Count("accounts", "source_id <> ?", e.f.SCIM.ID); n != 0 {
				t.Errorf("%d JIT accounts", n)
			}
		}},
		{"link-none-creates-new", func(c *jit.Config) { c.Policy.Link = jit.LinkNone }, func(t *testing.T, e *env, op *miniOP) {
			e.loginOK("okta")
		}},
		{"update-on-create-only", func(c *jit.Config) {
			c.Policy.UpdateAttributes = jit.UpdateOnCreate
			c.Mapping.Attributes = map[string]string{"email": "email", "department": "department"}
		}, func(t *testing.T, e *env, op *miniOP) {
			id := e.loginOK("okta")
			op.setClaim("department", "Platform")
			e.loginOK("okta")
			if got := e.f.Identity(id).Attrs["department"]; got != "Research" {
				t.Errorf("department = %q, want the value at creation", got)
			}
		}},
		{"update-always", func(c *jit.Config) {
			c.Mapping.Attributes = map[string]string{"email": "email", "department": "department"}
		}, func(t *testing.T, e *env, op *miniOP) {
			id := e.loginOK("okta")
			op.setClaim("department", "Platform")
			e.loginOK("okta")
			if got := e.f.Identity(id).Attrs["department"]; got != "Platform" {
				t.Errorf("department = %q", got)
			}
		}},
		{"suspended-refused", nil, func(t *testing.T, e *env, op *miniOP) {
			id := e.loginOK("okta")
			if _, err := e.f.Engine.Suspend(bg, engine.Admin{Actor: "test"}, id, "left"); err != nil {
				t.Fatal(err)
			}
			e.loginRefused("okta", http.StatusForbidden, "suspended")
		}},
		{"deprovisioned-refused", nil, func(t *testing.T, e *env, op *miniOP) {
			scimAlice(e)
			e.loginOK("okta")
			e.f.Apply(engine.Observation{SourceID: e.f.SCIM.ID, Key: "scim-alice", Removed: true})
			e.loginRefused("okta", http.StatusForbidden, "deprovisioned")
		}},
		{"session-ends-when-suspended", nil, func(t *testing.T, e *env, op *miniOP) {
			b := e.browser()
			readAll(t, e.login(b, "acme", "okta"))
			_, v := e.sessionOf(b)
			if _, err := e.f.Engine.Suspend(bg, engine.Admin{Actor: "test"}, v.Identity.ID, "left"); err != nil {
				t.Fatal(err)
			}
			if code, _ := e.sessionOf(b); code != http.StatusUnauthorized {
				t.Errorf("/session of a suspended person = %d", code)
			}
		}},
		{"ambiguous-match-refused-with-conflict", nil, func(t *testing.T, e *env, op *miniOP) {
			scimAlice(e)
			op.setClaim("email_verified", false) // an unverified email never merges
			e.loginRefused("okta", http.StatusConflict, "administrator must resolve")
			if n := len(e.f.OpenConflicts()); n != 1 {
				t.Errorf("%d open conflicts", n)
			}
			if n := e.f.Count("identities", ""); n != 1 {
				t.Errorf("%d identities: an ambiguous login must not create", n)
			}
		}},
	} {
		t.Run("case="+tc.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, db *storage.DB) {
				e := newEnv(t, db)
				op := newMiniOP(t)
				var muts []func(*jit.Config)
				if tc.cfg != nil {
					muts = append(muts, tc.cfg)
				}
				e.connection(engine.KindOIDC, "okta", op.config("JIT_TEST_SECRET", muts...), false)
				tc.run(t, e, op)
			})
		})
	}
}

// TestEmailDomainJIT: a verified email in a verified domain joins with the
// default role; an unverified email, an unverified domain or another
// organization's domain never joins.
func TestEmailDomainJIT(t *testing.T) {
	for _, tc := range []struct {
		name     string
		email    string
		verified bool
		trusted  bool // the organization trusts the IdP's emails
		ok       bool
	}{
		{"verified-email-verified-domain", "alice@acme.test", true, false, true},
		{"unverified-email", "alice@acme.test", false, false, false},
		{"unverified-email-trusted-idp", "alice@acme.test", false, true, true},
		{"unverified-domain", "alice@pending.test", true, false, false},
		{"other-orgs-domain", "alice@globex.test", true, false, false},
		{"unknown-domain", "alice@gmail.test", true, false, false},
	} {
		t.Run("case="+tc.name, func(t *testing.T) {
			eachBackend(t, func(t *testing.T, db *storage.DB) {
				e := newEnv(t, db)
				by := engine.Admin{Actor: "test"}
				must := func(err error) {
					t.Helper()
					if err != nil {
						t.Fatal(err)
					}
				}
				must(e.f.Engine.AddDomain(bg, by, e.f.Org.ID, "acme.test", true))
				must(e.f.Engine.AddDomain(bg, by, e.f.Org.ID, "pending.test", false))
				globex, err := e.f.Engine.CreateOrganization(bg, by, engine.Organization{Slug: "globex"})
				must(err)
				must(e.f.Engine.AddDomain(bg, by, globex.ID, "globex.test", true))
				op := newMiniOP(t)
				op.setClaim("email", tc.email)
				op.setClaim("email_verified", tc.verified)
				src := e.connection(engine.KindEmailDomain, "google", op.config("JIT_TEST_SECRET"), tc.trusted)
				if !tc.ok {
					e.loginRefused("google", http.StatusForbidden, "")
					if n := e.f.Count("accounts", "source_id = ?", src.ID); n != 0 {
						t.Errorf("%d accounts", n)
					}
					return
				}
				id := e.loginOK("google")
				om, ok, err := e.f.DB.OrgMembership(bg, e.f.Org.ID, id)
				must(err)
				if !ok || om.GrantedVia != "email-domain" || !slices.Equal(om.Roles, []string{e.f.Org.DefaultRole}) {
					t.Errorf("org membership %+v (ok %v)", om, ok)
				}
			})
		})
	}
}

// TestProvisionAPI: an app provisions with claims it verified, under the
// same rules, with an admin-scope key.
func TestProvisionAPI(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		op := newMiniOP(t)
		src := e.connection(engine.KindOIDC, "okta", op.config("JIT_TEST_SECRET", func(c *jit.Config) {
			c.Mapping.GroupMode = jit.GroupsAppend
			c.Mapping.PassthroughGroups = true
		}), false)
		by := engine.Admin{Actor: "test"}
		_, admin, err := e.f.Engine.CreateToken(bg, by, engine.Token{Kind: engine.TokenAdmin, Name: "app", Scope: "admin"})
		if err != nil {
			t.Fatal(err)
		}
		_, read, err := e.f.Engine.CreateToken(bg, by, engine.Token{Kind: engine.TokenAdmin, Name: "ro", Scope: "read"})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(jit.ProvisionRequest{Organization: "acme", Connection: "okta", Subject: "u-77",
			EmailVerified: true, Claims: jit.Claims{"email": {"carol@acme.test"}, "given_name": {"Carol"}, "groups": {"eng"}}})
		for _, tc := range []struct {
			name, token string
			code        int
		}{
			{"no-token", "", http.StatusForbidden},
			{"bad-token", "idsk_nope", http.StatusForbidden},
			{"read-scope", read, http.StatusForbidden},
			{"admin", admin, http.StatusOK},
			{"admin-again", admin, http.StatusOK},
		} {
			t.Run("case="+tc.name, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/v1/jit/provision", bytes.NewReader(body))
				if tc.token != "" {
					req.Header.Set("Authorization", "Bearer "+tc.token)
				}
				resp, err := e.browser().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				out := readAll(t, resp)
				if resp.StatusCode != tc.code {
					t.Fatalf("status %d: %s", resp.StatusCode, out)
				}
			})
		}
		a := e.f.Account(src.ID, op.issuer()+"|u-77")
		if a.Attrs["givenName"] != "Carol" || !slices.Equal(e.f.GroupsOf(a.IdentityID), []string{"eng"}) {
			t.Errorf("provisioned account %+v groups %v", a, e.f.GroupsOf(a.IdentityID))
		}
		e.noSecrets(admin, read)
	})
}
