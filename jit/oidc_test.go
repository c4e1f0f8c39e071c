package jit_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/jit"
	"github.com/idsync/idsync/storage"
)

// TestOIDCLoginEndToEnd: first login creates (with org membership, groups
// and audit), sets a secure session and lands on the return URL; a second
// login with unchanged claims writes nothing; a changed department updates
// and is audited; logout ends the session.
func TestOIDCLoginEndToEnd(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		op := newMiniOP(t)
		src := e.connection(engine.KindOIDC, "okta", op.config("JIT_TEST_SECRET", func(c *jit.Config) {
			c.Mapping.Attributes = map[string]string{"email": "email", "givenName": "given_name",
				"familyName": "family_name", "department": "department"}
			c.Mapping.GroupMode = jit.GroupsSync
			c.Mapping.Groups = []jit.Rule{{From: "eng", To: "Engineering"}, {From: "staff", To: "Staff"}}
			c.Mapping.Roles = []jit.Rule{{From: "staff", To: "member"}}
		}), false)
		b := e.browser()

		resp := e.login(b, "acme", "okta")
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/session" {
			t.Fatalf("first login ended at %s with %d: %s", resp.Request.URL, resp.StatusCode, body)
		}
		u, _ := url.Parse(e.srv.URL)
		var sess *http.Cookie
		for _, c := range b.Jar.Cookies(u) {
			if c.Name == jit.SessionCookie {
				sess = c
			}
		}
		if sess == nil {
			t.Fatal("no session cookie after login")
		}
		code, view := e.sessionOf(b)
		if code != http.StatusOK || view.Identity.Attrs["email"] != "alice@acme.test" || view.Identity.Attrs["department"] != "Research" {
			t.Fatalf("session %d %+v", code, view)
		}
		if len(view.Organizations) != 1 || view.Organizations[0].Slug != "acme" ||
			!slices.Equal(view.Organizations[0].Groups, []string{"Engineering", "Staff"}) ||
			!slices.Equal(view.Organizations[0].Roles, []string{"member"}) {
			t.Fatalf("session organizations %+v", view.Organizations)
		}
		acct := e.f.Account(src.ID, op.issuer()+"|u-1001")
		if acct.IdentityID != view.Identity.ID {
			t.Fatalf("account key iss|sub not linked to the session's identity")
		}
		if raw := string(acct.Raw); !strings.Contains(raw, `"department":["Research"]`) || strings.Contains(raw, "nonce") || strings.Contains(raw, `"exp"`) {
			t.Errorf("account raw document = %s: want the mapped claims only", raw)
		}
		for _, action := range []string{"identity.created", "identity.first_login", "org.joined", "membership.granted"} {
			if e.auditCount(action) == 0 {
				t.Errorf("no %s audit event", action)
			}
		}

		seq := e.f.AuditSeq()
		ver := e.f.Identity(view.Identity.ID).Version
		resp = e.login(e.browser(), "acme", "okta")
		readAll(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("second login: %d", resp.StatusCode)
		}
		if got := e.f.AuditSeq(); got != seq {
			t.Errorf("second login with unchanged claims wrote %d audit events", got-seq)
		}
		if got := e.f.Identity(view.Identity.ID).Version; got != ver {
			t.Errorf("second login with unchanged claims changed the identity (version %d → %d)", ver, got)
		}

		op.setClaim("department", "Platform")
		resp = e.login(b, "acme", "okta")
		readAll(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("third login: %d", resp.StatusCode)
		}
		if got := e.f.Identity(view.Identity.ID).Attrs["department"]; got != "Platform" {
			t.Errorf("department after change = %q", got)
		}
		n := e.f.Count("audit_events", "action = 'identity.updated' AND seq > ? AND changes LIKE '%Platform%'", seq)
		if n != 1 {
			t.Errorf("department change audited %d times", n)
		}

		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/logout", nil)
		resp, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if code, _ := e.sessionOf(b); code != http.StatusUnauthorized {
			t.Errorf("/session after logout = %d", code)
		}
		// The old cookie is dead on the server too.
		c2 := e.browser()
		c2.Jar.SetCookies(u, []*http.Cookie{sess})
		if code, _ := e.sessionOf(c2); code != http.StatusUnauthorized {
			t.Errorf("/session with the logged-out cookie = %d", code)
		}
		e.noSecrets(append(op.issued, op.secret, sess.Value)...)
	})
}

// TestSessionCookieFlags: the session cookie is Secure, HttpOnly, SameSite.
func TestSessionCookieFlags(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		op := newMiniOP(t)
		e.connection(engine.KindOIDC, "okta", op.config("JIT_TEST_SECRET"), false)
		b := e.browser()
		var setCookie []string
		b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			for _, c := range req.Response.Header.Values("Set-Cookie") {
				if strings.HasPrefix(c, jit.SessionCookie+"=") {
					setCookie = append(setCookie, c)
				}
			}
			return nil
		}
		readAll(t, e.login(b, "acme", "okta"))
		if len(setCookie) != 1 {
			t.Fatalf("session Set-Cookie headers: %q", setCookie)
		}
		for _, want := range []string{"Secure", "HttpOnly", "SameSite=Lax", "Path=/"} {
			if !strings.Contains(setCookie[0], want) {
				t.Errorf("session cookie %q lacks %s", setCookie[0], want)
			}
		}
	})
}

// oidcNegative runs a login against a provider tampered by prepare and
// expects idsync to refuse it: an error page, no session, no account, no
// token in logs or audit.
func oidcNegative(t *testing.T, why string, prepare func(op *miniOP), browse func(e *env, b *http.Client) *http.Response) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		op := newMiniOP(t)
		src := e.connection(engine.KindOIDC, "okta", op.config("JIT_TEST_SECRET"), false)
		prepare(op)
		b := e.browser()
		var resp *http.Response
		if browse != nil {
			resp = browse(e, b)
		} else {
			resp = e.login(b, "acme", "okta")
		}
		body := readAll(t, resp)
		if resp.StatusCode < 400 {
			t.Fatalf("login was accepted (%d at %s)", resp.StatusCode, resp.Request.URL)
		}
		if !strings.Contains(body, "Sign-in failed") && !strings.Contains(body, "could not be verified") {
			t.Errorf("error page does not say sign-in failed: %s", body)
		}
		if code, _ := e.sessionOf(b); code != http.StatusUnauthorized {
			t.Errorf("a session exists after a refused login")
		}
		if n := e.f.Count("accounts", "source_id = ?", src.ID); n != 0 {
			t.Errorf("a refused login created %d accounts", n)
		}
		if testing.Verbose() {
			t.Log(e.log.String())
		}
		if !strings.Contains(e.log.String(), why) {
			t.Errorf("refused, but not because of %q: %s", why, e.log.String())
		}
		e.noSecrets(append(op.issued, op.secret)...)
	})
}

func TestOIDCRejectsWrongIssuer(t *testing.T) {
	oidcNegative(t, "issued by a different provider", func(op *miniOP) { op.tamper = func(c map[string]any) { c["iss"] = "https://evil.example" } }, nil)
}

func TestOIDCRejectsWrongAudience(t *testing.T) {
	oidcNegative(t, "expected audience", func(op *miniOP) { op.tamper = func(c map[string]any) { c["aud"] = "another-client" } }, nil)
}

func TestOIDCRejectsWrongNonce(t *testing.T) {
	oidcNegative(t, "nonce does not match", func(op *miniOP) { op.tamper = func(c map[string]any) { c["nonce"] = "not-the-nonce" } }, nil)
}

func TestOIDCRejectsMissingNonce(t *testing.T) {
	oidcNegative(t, "nonce does not match", func(op *miniOP) { op.tamper = func(c map[string]any) { delete(c, "nonce") } }, nil)
}

func TestOIDCRejectsExpiredToken(t *testing.T) {
	oidcNegative(t, "token is expired", func(op *miniOP) {
		op.tamper = func(c map[string]any) {
			c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
			c["exp"] = time.Now().Add(-time.Hour).Unix()
		}
	}, nil)
}

func TestOIDCRejectsAlgNone(t *testing.T) {
	oidcNegative(t, "unexpected signature algorithm", func(op *miniOP) {
		op.sign = func(payload []byte) string {
			return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
				base64.RawURLEncoding.EncodeToString(payload) + "."
		}
	}, nil)
}

// An HS256 token keyed with the public key or the client secret (algorithm
// confusion) is refused: only the configured asymmetric algorithms count.
func TestOIDCRejectsUnexpectedAlgorithm(t *testing.T) {
	oidcNegative(t, "unexpected signature algorithm", func(op *miniOP) {
		op.sign = func(payload []byte) string {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(strings.Repeat(op.secret, 4))},
				(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
			if err != nil {
				t.Fatal(err)
			}
			jws, _ := s.Sign(payload)
			out, _ := jws.CompactSerialize()
			return out
		}
	}, nil)
}

// A token signed by a key the provider does not publish is refused.
func TestOIDCRejectsWrongSigningKey(t *testing.T) {
	oidcNegative(t, "failed to verify signature", func(op *miniOP) {
		other := newMiniOP(t)
		op.sign = other.signRS256
	}, nil)
}

// A callback whose state differs from the one this browser started with is
// refused before the code is redeemed.
func TestOIDCRejectsWrongState(t *testing.T) {
	oidcNegative(t, "state does not match", func(op *miniOP) {}, func(e *env, b *http.Client) *http.Response {
		b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if strings.HasSuffix(req.URL.Path, "/callback") {
				return http.ErrUseLastResponse
			}
			return nil
		}
		resp := e.login(b, "acme", "okta")
		readAll(t, resp)
		cb, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode != http.StatusFound {
			t.Fatalf("provider did not redirect to the callback: %d", resp.StatusCode)
		}
		q := cb.Query()
		q.Set("state", "forged-state")
		cb.RawQuery = q.Encode()
		b.CheckRedirect = nil
		resp, err = b.Get(cb.String())
		if err != nil {
			t.Fatal(err)
		}
		return resp
	})
}

// TestOIDCTwoLoginsInOneBrowser: two logins started in one browser (two
// tabs) before either comes back both finish, in either order: each has a
// state cookie of its own.
func TestOIDCTwoLoginsInOneBrowser(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		op := newMiniOP(t)
		e.connection(engine.KindOIDC, "okta", op.config("JIT_TEST_SECRET"), false)
		b := e.browser()
		b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if strings.HasSuffix(req.URL.Path, "/callback") {
				return http.ErrUseLastResponse
			}
			return nil
		}
		started := func() string {
			resp := e.login(b, "acme", "okta")
			readAll(t, resp)
			if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/callback") {
				t.Fatalf("login did not come back to the callback: %d", resp.StatusCode)
			}
			return resp.Header.Get("Location")
		}
		first, second := started(), started()
		b.CheckRedirect = nil
		for _, cb := range []string{second, first} {
			resp, err := b.Get(cb)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/session" {
				t.Fatalf("callback %s ended at %s with %d: %s", cb, resp.Request.URL, resp.StatusCode, body)
			}
		}
	})
}

// A callback replayed after the login finished is refused: state is single use.
func TestOIDCRejectsReplayedCallback(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		op := newMiniOP(t)
		e.connection(engine.KindOIDC, "okta", op.config("JIT_TEST_SECRET"), false)
		b := e.browser()
		var callback string
		b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if strings.HasSuffix(req.URL.Path, "/callback") {
				callback = req.URL.String()
			}
			return nil
		}
		resp := e.login(b, "acme", "okta")
		readAll(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		resp, err := b.Get(callback)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("replayed callback: %d, want 400", resp.StatusCode)
		}
	})
}

// A return URL that is not allowed for the connection is refused before
// the browser goes anywhere (no open redirect).
func TestLoginRejectsDisallowedReturnURL(t *testing.T) {
	eachBackend(t, func(t *testing.T, db *storage.DB) {
		e := newEnv(t, db)
		op := newMiniOP(t)
		e.connection(engine.KindOIDC, "okta", op.config("JIT_TEST_SECRET", func(c *jit.Config) {
			c.ReturnURLs = []string{"https://app.acme.test/", "https://app.acme.test/welcome/*"}
		}), false)
		b := e.browser()
		b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		for _, tc := range []struct {
			name, returnTo string
			ok             bool
		}{
			{"exact", "https://app.acme.test/", true},
			{"under-prefix", "https://app.acme.test/welcome/team", true},
			{"other-host", "https://evil.test/", false},
			{"prefix-trick", "https://app.acme.test.evil.test/", false},
			{"dot-dot", "https://app.acme.test/welcome/../admin", false},
			{"encoded-dot-dot", "https://app.acme.test/welcome/%2e%2e/admin", false},
			{"double-slash", "https://app.acme.test/welcome//evil.test", false},
			{"backslash", "https://app.acme.test/welcome/\\evil.test", false},
			{"trailing-slash-under-prefix", "https://app.acme.test/welcome/", true},
		} {
			t.Run("case="+tc.name, func(t *testing.T) {
				resp, err := b.Get(e.srv.URL + "/login/acme/okta?return_to=" + url.QueryEscape(tc.returnTo))
				if err != nil {
					t.Fatal(err)
				}
				readAll(t, resp)
				if got := resp.StatusCode == http.StatusFound; got != tc.ok {
					t.Errorf("return_to %s: status %d", tc.returnTo, resp.StatusCode)
				}
			})
		}
	})
}

// A genuinely signed RS512 token is refused when the connection allows
// only RS256.
func TestOIDCRejectsAlgorithmNotConfigured(t *testing.T) {
	oidcNegative(t, "unexpected signature algorithm", func(op *miniOP) {
		op.sign = func(payload []byte) string {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS512, Key: op.key},
				(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
			if err != nil {
				t.Fatal(err)
			}
			jws, _ := s.Sign(payload)
			out, _ := jws.CompactSerialize()
			return out
		}
	}, nil)
}
