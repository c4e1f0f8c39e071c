package admin_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/admin"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage/storagetest"
)

var linkRe = regexp.MustCompile(`http://idsync\.test/console/invite\?token=(\S+)`)

// TestInvitations: an admin invites an email with a role; the mail carries
// a single-use link whose token is stored only hashed and never audited;
// accepting it needs a signed-in JIT session and joins the organization
// via "invitation" (audited org.joined); a second use, a revoked or an
// expired link is refused; the comparison counts the person as invited.
func TestInvitations(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			e := newEnv(t, b.Open(t))
			alice := e.apply(engine.Observation{SourceID: e.f.OIDC.ID, Key: "https://idp|alice", EmailVerified: true, Login: true,
				Attrs: person("alice", "alice@acme.test", "Eng")})
			var ni admin.NewInvitation
			e.call(e.admin, "POST", "/orgs/globex/invitations", map[string]any{"email": "Alice@acme.test", "role": "admin"}, 201, &ni)
			e.wantErr(e.admin, "POST", "/orgs/globex/invitations", map[string]any{"email": "x@y.test", "role": "owner"}, 400, admin.CodeInvalid)
			e.wantErr(e.read, "POST", "/orgs/globex/invitations", map[string]any{"email": "x@y.test"}, 403, admin.CodeForbidden)
			e.wantErr(e.scoped, "GET", "/orgs/globex/invitations", nil, 404, admin.CodeNotFound)
			if len(e.mail.mails) != 1 {
				t.Fatalf("%d mails sent, want 1", len(e.mail.mails))
			}
			m := linkRe.FindStringSubmatch(e.mail.mails[0])
			if m == nil || !strings.Contains(e.mail.mails[0], "To: alice@acme.test") {
				t.Fatalf("mail = %s", e.mail.mails[0])
			}
			token, _ := url.QueryUnescape(m[1])
			if ni.Link != m[0] {
				t.Fatalf("API link %q differs from the mailed %q", ni.Link, m[0])
			}
			if n := e.f.Count("admin_invitations", "token_hash = ?", token); n != 0 {
				t.Fatal("the token is stored in clear")
			}
			for _, ev := range e.f.Events(0) {
				if strings.Contains(string(ev.Changes), token) {
					t.Fatalf("audit event %s holds the invitation token", ev.Action)
				}
			}
			console := func(method, cookie string, form url.Values) (int, string) {
				t.Helper()
				var req *http.Request
				if method == "GET" {
					req, _ = http.NewRequest("GET", e.console.URL+"/console/invite?token="+url.QueryEscape(form.Get("token")), nil)
				} else {
					req, _ = http.NewRequest("POST", e.console.URL+"/console/invite", strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				if cookie != "" {
					req.AddCookie(&http.Cookie{Name: "idsync_session", Value: cookie})
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			form := url.Values{"token": {token}}
			if code, body := console("GET", "", form); code != 200 || !strings.Contains(body, "Sign in first") || !strings.Contains(body, "/login/globex/") && !strings.Contains(body, "Globex") {
				t.Fatalf("invite page without a session = %d %s", code, body)
			}
			if code, _ := console("POST", "", form); code != http.StatusUnauthorized {
				t.Fatalf("accept without a session = %d, want 401", code)
			}
			cookie := "session-cookie-value-for-alice"
			now := time.Now()
			if err := e.db.JITPutSession(bg, engine.HashSecret(cookie), alice.IdentityID, e.f.Org.ID, e.f.OIDC.ID, now, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if code, body := console("GET", cookie, form); code != 200 || !strings.Contains(body, `id="accept"`) {
				t.Fatalf("invite page signed in = %d %s", code, body)
			}
			seq := e.f.AuditSeq()
			if code, body := console("POST", cookie, form); code != 200 || !strings.Contains(body, "You joined") {
				t.Fatalf("accept = %d %s", code, body)
			}
			mem, ok, err := e.db.OrgMembership(bg, e.other.ID, alice.IdentityID)
			if err != nil || !ok || mem.GrantedVia != engine.GrantedViaInvitation || len(mem.Roles) != 1 || mem.Roles[0] != "admin" {
				t.Fatalf("membership = %+v %v %v", mem, ok, err)
			}
			joined := storagetest.Of(e.f.Events(seq), "org.joined")
			if len(joined) != 1 || !strings.Contains(string(joined[0].Changes), `"invitation"`) || joined[0].OrgID != e.other.ID {
				t.Fatalf("org.joined events = %+v", joined)
			}
			if code, _ := console("POST", cookie, form); code != http.StatusConflict {
				t.Fatalf("second use = %d, want 409", code)
			}
			var c admin.Compare
			e.call(e.admin, "GET", "/orgs/globex/compare", nil, 200, &c)
			if c.CameIn[admin.CameInvitation] != 1 {
				t.Fatalf("globex came in = %v, want one invitation", c.CameIn)
			}

			t.Run("revoked and expired links are refused", func(t *testing.T) {
				var r admin.NewInvitation
				e.call(e.admin, "POST", "/orgs/globex/invitations", map[string]any{"email": "bo@acme.test"}, 201, &r)
				e.call(e.admin, "DELETE", "/orgs/globex/invitations/"+r.ID, nil, 204, nil)
				tok, _ := url.QueryUnescape(linkRe.FindStringSubmatch(r.Link)[1])
				if code, _ := console("POST", cookie, url.Values{"token": {tok}}); code != http.StatusConflict {
					t.Fatalf("revoked link = %d, want 409", code)
				}
				iv := &admin.Invitations{E: e.f.Engine, Store: e.db, TTL: time.Minute, Now: func() time.Time { return now.Add(-time.Hour) }}
				_, link, err := iv.Invite(bg, engine.Admin{Actor: "test"}, e.other.ID, "cy@acme.test", "")
				if err != nil {
					t.Fatal(err)
				}
				tok, _ = url.QueryUnescape(linkRe.FindStringSubmatch("http://idsync.test" + link)[1])
				if code, _ := console("POST", cookie, url.Values{"token": {tok}}); code != http.StatusConflict {
					t.Fatalf("expired link = %d, want 409", code)
				}
				var l admin.List[map[string]any]
				e.call(e.admin, "GET", "/orgs/globex/invitations", nil, 200, &l)
				if len(l.Items) != 3 {
					t.Fatalf("invitations = %d, want 3", len(l.Items))
				}
			})
		})
	}
}
