package admin_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/admin"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage/storagetest"
)

// TestConsoleSSO: signing in to the console through an organization's SSO
// needs a JIT session of a person holding the organization's admin role,
// and gives a session limited to that organization.
func TestConsoleSSO(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t))
			con := admin.NewConsole(e.h)
			alice := e.apply(engine.Observation{SourceID: e.f.OIDC.ID, Key: "https://idp|alice", EmailVerified: true, Login: true,
				Attrs: person("alice", "alice@acme.test", "Eng")})
			jit := "jit-session-of-alice"
			now := time.Now()
			if err := e.db.JITPutSession(bg, engine.HashSecret(jit), alice.IdentityID, e.f.Org.ID, e.f.OIDC.ID, now, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			get := func(path string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
				req := httptest.NewRequest("GET", path, nil)
				for _, c := range cookies {
					req.AddCookie(c)
				}
				rec := httptest.NewRecorder()
				con.ServeHTTP(rec, req)
				return rec
			}
			jitCookie := &http.Cookie{Name: "idsync_session", Value: jit}
			cases := []struct {
				name   string
				path   string
				cookie *http.Cookie
				status int
				body   string
			}{
				{"no session offers the connections", "/console/sso?org=acme", nil, 200, "/login/acme/okta-oidc?return_to=" + url.QueryEscape("/console/sso?org=acme")},
				{"a member without the admin role is refused", "/console/sso?org=acme", jitCookie, 403, "admin role"},
				{"an unknown organization", "/console/sso?org=nope", jitCookie, 404, "No such organization"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					var rec *httptest.ResponseRecorder
					if c.cookie != nil {
						rec = get(c.path, c.cookie)
					} else {
						rec = get(c.path)
					}
					if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.body) {
						t.Fatalf("GET %s = %d, want %d with %q:\n%s", c.path, rec.Code, c.status, c.body, rec.Body.String())
					}
				})
			}
			if _, err := e.f.Engine.JoinByInvitation(bg, engine.Admin{Actor: "test"}, e.f.Org.ID, alice.IdentityID, "admin", "inv-1"); err != nil {
				t.Fatal(err)
			}
			rec := get("/console/sso?org=acme", jitCookie)
			if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/console/orgs/acme" {
				t.Fatalf("SSO sign-in of an admin = %d → %q", rec.Code, rec.Header().Get("Location"))
			}
			var session *http.Cookie
			for _, c := range rec.Result().Cookies() {
				if c.Name == admin.ConsoleCookie {
					session = c
				}
			}
			if session == nil {
				t.Fatal("no console session cookie")
			}
			if r := get("/console/orgs/acme", session); r.Code != 200 {
				t.Fatalf("own organization = %d", r.Code)
			}
			if r := get("/console/orgs/globex", session); r.Code != 404 {
				t.Fatalf("another organization = %d, want 404", r.Code)
			}
			if r := get("/console/", session); r.Code != 200 || strings.Contains(r.Body.String(), "globex") {
				t.Fatalf("organization list shows another organization: %d", r.Code)
			}
			// Losing the role ends the console access at once.
			if _, err := e.f.Engine.Suspend(bg, engine.Admin{Actor: "test"}, alice.IdentityID, "left"); err != nil {
				t.Fatal(err)
			}
			if r := get("/console/orgs/acme", session); r.Code != http.StatusSeeOther {
				t.Fatalf("suspended admin's console = %d, want a redirect to sign-in", r.Code)
			}
		})
	}
}
