package jit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/jit"
	"github.com/idsync/idsync/storage"
	"github.com/idsync/idsync/storage/storagetest"
)

var bg = context.Background()

// eachBackend runs fn on a fresh database of every backend.
func eachBackend(t *testing.T, fn func(t *testing.T, db *storage.DB)) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) { fn(t, b.Open(t)) })
	}
}

// offsetClock is idsync's clock in tests: real time plus an offset.
type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *offsetClock) Set(d time.Duration) {
	c.mu.Lock()
	c.off = d
	c.mu.Unlock()
}

// syncBuffer is a log sink tests read back to check no secret was logged.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is idsync serving the JIT routes over TLS on loopback, on a fresh
// graph (organization "acme" with SCIM, LDAP and OIDC sources).
type env struct {
	t     testing.TB
	clock *offsetClock
	f     *storagetest.Fixture
	h     *jit.Handler
	srv   *httptest.Server
	log   *syncBuffer
}

func newEnv(t testing.TB, db *storage.DB) *env {
	t.Helper()
	f := storagetest.NewFixture(t, db)
	logs := &syncBuffer{}
	clock := &offsetClock{}
	h, err := jit.New(f.Engine, jit.Options{Now: clock.Now, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, clock: clock, f: f, h: h, srv: srv, log: logs}
}

// browser is an http.Client with a cookie jar that trusts idsync's test
// certificate and follows redirects like a browser.
func (e *env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	c := *e.srv.Client()
	c.Jar = jar
	return &c
}

// connection creates a JIT source of kind with cfg.
func (e *env) connection(kind engine.SourceKind, name string, cfg any, trust bool) engine.Source {
	e.t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := e.f.Engine.CreateSource(bg, engine.Admin{Actor: "test"}, engine.Source{OrgID: e.f.Org.ID, Kind: kind,
		Name: name, Priority: 80, Config: b, TrustEmails: trust}, true)
	if err != nil {
		e.t.Fatalf("create connection %s: %v", name, err)
	}
	return s
}

func (e *env) sessionOf(c *http.Client) (int, jit.SessionView) {
	e.t.Helper()
	resp, err := c.Get(e.srv.URL + "/session")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v jit.SessionView
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			e.t.Fatal(err)
		}
	}
	return resp.StatusCode, v
}

func (e *env) auditCount(action string) int {
	return e.f.Count("audit_events", "action = ?", action)
}

// noSecrets fails when a secret shows up in the logs or the audit log.
func (e *env) noSecrets(secrets ...string) {
	e.t.Helper()
	var details []string
	if err := e.f.DB.SQL().Select(&details, "SELECT COALESCE(changes, '') || actor || subject_id FROM audit_events"); err != nil {
		e.t.Fatal(err)
	}
	all := strings.Join(details, "\n") + e.log.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(all, s) {
			e.t.Errorf("a secret (%.12s…) appears in the logs or the audit log", s)
		}
	}
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// miniOP is a small real OpenID provider on loopback: discovery, JWKS,
// authorize (the user is already signed in), token with PKCE, real RS256
// signatures. Tests change the claims or signing to play a broken or
// malicious provider.
type miniOP struct {
	t        testing.TB
	srv      *httptest.Server
	key      *rsa.PrivateKey
	clientID string
	secret   string

	mu    sync.Mutex
	codes map[string]authz
	// claims of the signed-in user, copied into each ID token.
	claims map[string]any
	// tamper, when set, edits the ID token claims before signing.
	tamper func(c map[string]any)
	// sign, when set, replaces RS256 signing.
	sign   func(payload []byte) string
	issued []string // ID tokens issued, to check none is logged
}

type authz struct {
	nonce, challenge, redirect string
}

func newMiniOP(t testing.TB) *miniOP {
	t.Helper()
	key := rsaKey(t)
	op := &miniOP{t: t, key: key, clientID: "idsync-test", secret: "s3cret-client", codes: map[string]authz{},
		claims: map[string]any{"sub": "u-1001", "email": "alice@acme.test", "email_verified": true,
			"given_name": "Alice", "family_name": "Liddell", "name": "Alice Liddell",
			"preferred_username": "alice@acme.test", "department": "Research", "groups": []any{"eng", "staff"}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("GET /jwks", op.jwks)
	mux.HandleFunc("GET /authorize", op.authorize)
	mux.HandleFunc("POST /token", op.token)
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

func (op *miniOP) issuer() string { return op.srv.URL }

func (op *miniOP) setClaim(k string, v any) {
	op.mu.Lock()
	defer op.mu.Unlock()
	if v == nil {
		delete(op.claims, k)
		return
	}
	op.claims[k] = v
}

func (op *miniOP) discovery(w http.ResponseWriter, r *http.Request) {
	iss := op.issuer()
	json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "authorization_endpoint": iss + "/authorize",
		"token_endpoint": iss + "/token", "jwks_uri": iss + "/jwks", "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported": []string{"S256"}})
}

func (op *miniOP) jwks(w http.ResponseWriter, r *http.Request) {
	json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &op.key.PublicKey, KeyID: "k1",
		Algorithm: "RS256", Use: "sig"}}})
}

func (op *miniOP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != op.clientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
		q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	code := randomString()
	op.mu.Lock()
	op.codes[code] = authz{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
	op.mu.Unlock()
	v := url.Values{"code": {code}, "state": {q.Get("state")}}
	http.Redirect(w, r, q.Get("redirect_uri")+"?"+v.Encode(), http.StatusFound)
}

func (op *miniOP) token(w http.ResponseWriter, r *http.Request) {
	id, sec, ok := r.BasicAuth()
	if !ok {
		id, sec = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	}
	if id != op.clientID || sec != op.secret {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
		return
	}
	op.mu.Lock()
	a, ok := op.codes[r.PostFormValue("code")]
	delete(op.codes, r.PostFormValue("code"))
	op.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
	if !ok || a.redirect != r.PostFormValue("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != a.challenge {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
		return
	}
	now := time.Now()
	op.mu.Lock()
	c := map[string]any{"iss": op.issuer(), "aud": op.clientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": a.nonce}
	for k, v := range op.claims {
		c[k] = v
	}
	tamper, sign := op.tamper, op.sign
	op.mu.Unlock()
	if tamper != nil {
		tamper(c)
	}
	payload, _ := json.Marshal(c)
	var idt string
	if sign != nil {
		idt = sign(payload)
	} else {
		idt = op.signRS256(payload)
	}
	op.mu.Lock()
	op.issued = append(op.issued, idt)
	op.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + randomString(), "token_type": "Bearer",
		"expires_in": 300, "id_token": idt})
}

func (op *miniOP) signRS256(payload []byte) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: op.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		op.t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		op.t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		op.t.Fatal(err)
	}
	return out
}

var (
	keyMu   sync.Mutex
	keyPool []*rsa.PrivateKey
	keyNext int
)

// rsaKey hands out 2048-bit RSA keys from a small pool that tests share:
// generating one per test costs seconds in total. Consecutive calls in a
// test get different keys.
func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	for len(keyPool) < 4 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		keyPool = append(keyPool, k)
	}
	keyNext++
	return keyPool[keyNext%len(keyPool)]
}

func randomString() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// oidcConfig is a connection to op.
func (op *miniOP) config(envVar string, mutate ...func(*jit.Config)) jit.Config {
	op.t.Setenv(envVar, op.secret)
	c := jit.Config{OIDC: &jit.OIDCConfig{Issuer: op.issuer(), ClientID: op.clientID, ClientSecretEnv: envVar},
		ReturnURLs: []string{"/session"}}
	for _, m := range mutate {
		m(&c)
	}
	return c
}

// login runs a browser login through idsync and the provider and returns
// the final response (the return URL, or idsync's error page).
func (e *env) login(c *http.Client, org, conn string) *http.Response {
	e.t.Helper()
	resp, err := c.Get(fmt.Sprintf("%s/login/%s/%s", e.srv.URL, org, conn))
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}
