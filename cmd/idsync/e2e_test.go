package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	opstorage "github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/idsync/idsync/admin"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/jit"
	"github.com/idsync/idsync/storage/storagetest"
)

type capturedMail struct {
	mu    sync.Mutex
	mails []string
}

func (m *capturedMail) Send(_ context.Context, to, subject, body string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mails = append(m.mails, "To: "+to+"\n"+body)
	return nil
}

// TestInvitationAcceptedAfterRealLogin runs the whole server as `idsync
// serve` mounts it: an admin invites a person to one organization through
// the admin API; the person signs in at another organization's OIDC
// connection against a real OpenID provider (zitadel/oidc's example OP, on
// loopback), lands on the invitation link, accepts it, and joins.
func TestInvitationAcceptedAfterRealLogin(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			ctx := context.Background()
			db := b.Open(t)
			e := engine.New(db, engine.Options{CheckSourceConfig: validateSourceConfig})
			by := engine.Admin{Actor: "test"}

			srv := httptest.NewUnstartedServer(nil)
			base := "http://" + srv.Listener.Addr().String()
			mail := &capturedMail{}
			deps := serverDeps{baseURL: base, invites: &admin.Invitations{E: e, Store: db, Mailer: mail, BaseURL: base}}
			srv.Config.Handler = newServer(db, e, newMetrics(), deps, slog.New(slog.DiscardHandler))
			srv.Start()
			t.Cleanup(srv.Close)

			// The provider, with idsync's callback as the client's redirect URI.
			opSrv := httptest.NewUnstartedServer(nil)
			issuer := "http://" + opSrv.Listener.Addr().String()
			clientID, secret := "e2e-"+engine.NewID()[:8], "e2e-secret-"+engine.NewID()
			opstorage.RegisterClients(opstorage.WebClient(clientID, secret, base+"/login/acme/sso/callback"))
			opSrv.Config.Handler = exampleop.SetupServer(issuer, opstorage.NewStorage(opstorage.NewUserStore(issuer)), nil, false, op.WithAllowInsecure())
			opSrv.Start()
			t.Cleanup(opSrv.Close)
			t.Setenv("E2E_OIDC_SECRET", secret)

			acme, err := e.CreateOrganization(ctx, by, engine.Organization{Slug: "acme"})
			if err != nil {
				t.Fatal(err)
			}
			globex, err := e.CreateOrganization(ctx, by, engine.Organization{Slug: "globex", Roles: []string{"member", "admin"}})
			if err != nil {
				t.Fatal(err)
			}
			cfg, _ := json.Marshal(jit.Config{OIDC: &jit.OIDCConfig{Issuer: issuer, ClientID: clientID, ClientSecretEnv: "E2E_OIDC_SECRET",
				Scopes: []string{"openid", "email", "profile"}, Userinfo: true}, ReturnURLs: []string{"/console/*"}})
			if _, err := e.CreateSource(ctx, by, engine.Source{OrgID: acme.ID, Kind: engine.KindOIDC, Name: "sso", Config: cfg}, true); err != nil {
				t.Fatal(err)
			}
			_, key, err := e.CreateToken(ctx, by, engine.Token{Kind: engine.TokenAdmin, Name: "e2e"})
			if err != nil {
				t.Fatal(err)
			}

			// The admin invites the person to globex.
			req, _ := http.NewRequest("POST", base+"/api/v1/orgs/globex/invitations",
				strings.NewReader(`{"email":"test-user@zitadel.ch","role":"admin"}`))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("invite: %d %s", resp.StatusCode, body)
			}
			if len(mail.mails) != 1 {
				t.Fatalf("%d mails, want 1", len(mail.mails))
			}
			link := regexp.MustCompile(`/console/invite\?token=\S+`).FindString(mail.mails[0])
			if link == "" {
				t.Fatalf("no link in %q", mail.mails[0])
			}

			// The person signs in at acme's connection and is sent on to the link.
			jar, _ := cookiejar.New(nil)
			browser := &http.Client{Jar: jar}
			resp, err = browser.Get(base + "/login/acme/sso?return_to=" + url.QueryEscape(link))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			authID := resp.Request.URL.Query().Get("authRequestID")
			if authID == "" {
				t.Fatalf("expected the provider's login page, got %s", resp.Request.URL)
			}
			host := strings.Split(strings.TrimPrefix(issuer, "http://"), ":")[0]
			resp, err = browser.PostForm(issuer+"/login/username", url.Values{"id": {authID},
				"username": {"test-user@" + host}, "password": {"verysecure"}})
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/console/invite" || !strings.Contains(string(page), `id="accept"`) {
				t.Fatalf("after login: %d at %s: %.400s", resp.StatusCode, resp.Request.URL, page)
			}

			// Accepting joins globex by invitation, with the invited role.
			token := resp.Request.URL.Query().Get("token")
			resp, err = browser.PostForm(base+"/console/invite", url.Values{"token": {token}})
			if err != nil {
				t.Fatal(err)
			}
			page, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "You joined") {
				t.Fatalf("accept: %d %.400s", resp.StatusCode, page)
			}
			ids, err := db.Identities(ctx, engine.IdentityFilter{OrgID: globex.ID})
			if err != nil || len(ids) != 1 || ids[0].Attrs["email"] != "test-user@zitadel.ch" {
				t.Fatalf("globex members = %+v %v", ids, err)
			}
			m, ok, err := db.OrgMembership(ctx, globex.ID, ids[0].ID)
			if err != nil || !ok || m.GrantedVia != engine.GrantedViaInvitation || len(m.Roles) != 1 || m.Roles[0] != "admin" {
				t.Fatalf("membership = %+v %v %v", m, ok, err)
			}
			// The same link cannot be used twice, and the log still verifies.
			resp, err = browser.PostForm(base+"/console/invite", url.Values{"token": {token}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusConflict {
				t.Fatalf("second accept = %d, want 409", resp.StatusCode)
			}
			if rep, err := engine.VerifyAudit(ctx, db); err != nil || !rep.OK {
				t.Fatalf("audit: %+v %v", rep, err)
			}
		})
	}
}
