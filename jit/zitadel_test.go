package jit_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	opstorage "github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/jit"
	"github.com/idsync/idsync/storage"
)

// zitadelOP starts github.com/zitadel/oidc's example OpenID provider on
// loopback (its in-memory storage, login page and users) with a web client
// whose redirect URI is redirect.
func zitadelOP(t testing.TB, redirect string) (issuer, clientID, secret string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer = "http://" + srv.Listener.Addr().String()
	clientID, secret = "idsync-web-"+randomString()[:8], "z-secret-"+randomString()
	opstorage.RegisterClients(opstorage.WebClient(clientID, secret, redirect))
	st := opstorage.NewStorage(opstorage.NewUserStore(issuer))
	srv.Config.Handler = exampleop.SetupServer(issuer, st, nil, false, op.WithAllowInsecure())
	srv.Start()
	t.Cleanup(srv.Close)
	return issuer, clientID, secret
}

// zitadelLogin signs in at the provider's login page with its test user.
func zitadelLogin(t testing.TB, e *env, b *http.Client, issuer string) *http.Response {
	t.Helper()
	resp := e.login(b, "acme", "zitadel")
	page := readAll(t, resp)
	id := resp.Request.URL.Query().Get("authRequestID")
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("expected the provider's login page, got %d at %s: %.300s", resp.StatusCode, resp.Request.URL, page)
	}
	host := strings.TrimPrefix(issuer, "http://")
	host = host[:strings.IndexByte(host, ':')]
	resp, err := b.PostForm(issuer+"/login/username", url.Values{"id": {id}, "username": {"test-user@" + host},
		"password": {"verysecure"}})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestOIDCZitadelProviderEndToEnd signs in through a real OpenID provider
// (zitadel/oidc's op package): authorize, the provider's login form, the
// token endpoint, ID token verification, JIT create, session.
func TestOIDCZitadelProviderEndToEnd(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		issuer, clientID, secret := zitadelOP(t, e.srv.URL+"/login/acme/zitadel/callback")
		t.Setenv("JIT_ZITADEL_SECRET", secret)
		src := e.connection(engine.KindOIDC, "zitadel", jit.Config{OIDC: &jit.OIDCConfig{Issuer: issuer, ClientID: clientID,
			ClientSecretEnv: "JIT_ZITADEL_SECRET", Scopes: []string{"openid", "email", "profile"}, Userinfo: true}}, false)
		b := e.browser()
		resp := zitadelLogin(t, e, b, issuer)
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/session" {
			t.Fatalf("login ended at %s with %d: %.500s\nlog: %s", resp.Request.URL, resp.StatusCode, body, e.log.String())
		}
		code, view := e.sessionOf(b)
		if code != http.StatusOK || view.Identity.Attrs["email"] != "test-user@zitadel.ch" || view.Identity.Attrs["givenName"] != "Test" {
			t.Fatalf("session %d %+v", code, view)
		}
		acct := e.f.Account(src.ID, issuer+"|id1")
		if acct.IdentityID != view.Identity.ID || !acct.EmailVerified {
			t.Errorf("account %+v", acct)
		}
		// A second login of the same person writes nothing.
		seq := e.f.AuditSeq()
		resp = zitadelLogin(t, e, e.browser(), issuer)
		readAll(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("second login: %d", resp.StatusCode)
		}
		if got := e.f.AuditSeq(); got != seq {
			t.Errorf("second login wrote %d audit events", got-seq)
		}
		e.noSecrets(secret)
	})
}
