package jit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/idsync/idsync/engine"
)

// loginStore is the persistence of sessions, pending logins and the SAML
// replay cache (migration 0004); *storage.DB implements it.
type loginStore interface {
	JITPutSession(ctx context.Context, idHash, identityID, orgID, sourceID string, created, expires time.Time) error
	JITSession(ctx context.Context, idHash string, now time.Time) (identityID, orgID, sourceID string, expires time.Time, err error)
	JITDeleteSession(ctx context.Context, idHash string, now time.Time) error
	JITPutLoginState(ctx context.Context, idHash string, data []byte, expires, now time.Time) error
	JITTakeLoginState(ctx context.Context, idHash string, now time.Time) ([]byte, error)
	JITConsumeAssertion(ctx context.Context, assertionID string, expires, now time.Time) error
}

// Options tune the handler; zero values are sensible.
type Options struct {
	// BaseURL is idsync's external URL (e.g. https://id.example.com); the
	// OIDC redirect URI and SAML ACS are built on it. Empty: taken from
	// each request (only for development behind no proxy).
	BaseURL string
	// HTTPClient fetches IdP metadata, discovery, keys and tokens.
	HTTPClient *http.Client
	// SessionTTL is how long a session lasts (default 8h).
	SessionTTL time.Duration
	// LoginTTL bounds a pending login (default 10m).
	LoginTTL time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
	// ObserveLogin, when set, receives idsync's own share of each browser
	// login that provisioned: from the verified IdP answer to the session
	// being set (metrics, benchmarks).
	ObserveLogin func(kind engine.SourceKind, d time.Duration)
}

// Cookie names.
const (
	SessionCookie = "idsync_session"
	stateCookie   = "idsync_login"
)

// Handler serves the login routes, sessions and the provision API.
type Handler struct {
	eng   *engine.Engine
	store loginStore
	prov  Provisioner
	opts  Options
	log   *slog.Logger
	mux   *http.ServeMux
	oidc  *oidcCache
	saml  *samlCache
	// sessions counts sessions started, to clean up now and then.
	sessions atomic.Uint64
}

// New returns the handler; the engine's store must hold the JIT tables.
func New(e *engine.Engine, opts Options) (*Handler, error) {
	st, ok := e.Store().(loginStore)
	if !ok {
		return nil, fmt.Errorf("jit: store %T has no login tables", e.Store())
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.SessionTTL == 0 {
		opts.SessionTTL = 8 * time.Hour
	}
	if opts.LoginTTL == 0 {
		opts.LoginTTL = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	h := &Handler{eng: e, store: st, prov: Provisioner{Engine: e}, opts: opts, log: opts.Logger,
		mux: http.NewServeMux(), oidc: newOIDCCache(), saml: newSAMLCache()}
	h.mux.HandleFunc("GET /login/{org}/{conn}", h.start)
	h.mux.HandleFunc("GET /login/{org}/{conn}/callback", h.oidcCallback)
	h.mux.HandleFunc("POST /login/{org}/{conn}/acs", h.samlACS)
	h.mux.HandleFunc("GET /login/{org}/{conn}/metadata", h.samlMetadata)
	h.mux.HandleFunc("GET /session", h.session)
	h.mux.HandleFunc("POST /logout", h.logout)
	h.mux.HandleFunc("POST /api/v1/jit/provision", h.provisionAPI)
	return h, nil
}

// Patterns are the route prefixes to mount the handler under.
var Patterns = []string{"/login/", "/session", "/logout", "/api/v1/jit/"}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	h.mux.ServeHTTP(w, r)
}

// Provisioner returns the provisioner the handler uses.
func (h *Handler) Provisioner() *Provisioner { return &h.prov }

func (h *Handler) now() time.Time { return h.opts.Now().UTC() }

func (h *Handler) base(r *http.Request) string {
	if h.opts.BaseURL != "" {
		return h.opts.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (h *Handler) secure(r *http.Request) bool { return strings.HasPrefix(h.base(r), "https://") }

// connection loads the enabled JIT connection named in the path.
func (h *Handler) connection(ctx context.Context, orgSlug, name string) (Connection, error) {
	st := h.eng.Store()
	org, err := st.OrganizationBySlug(ctx, orgSlug)
	if err != nil {
		return Connection{}, fmt.Errorf("organization %q: %w", orgSlug, engine.ErrNotFound)
	}
	src, err := st.SourceByName(ctx, org.ID, name)
	if err != nil {
		return Connection{}, fmt.Errorf("connection %q: %w", name, engine.ErrNotFound)
	}
	switch src.Kind {
	case engine.KindSAML, engine.KindOIDC, engine.KindEmailDomain:
	default:
		return Connection{}, fmt.Errorf("connection %q: %w", name, engine.ErrNotFound)
	}
	if !src.Enabled {
		return Connection{}, fmt.Errorf("connection %q is disabled: %w", name, engine.ErrForbidden)
	}
	cfg, err := ParseConfig(src.Kind, src.Config)
	if err != nil {
		return Connection{}, err
	}
	return Connection{Source: src, Org: org, Config: cfg}, nil
}

func (h *Handler) connectionPath(c Connection) string {
	return "/login/" + c.Org.Slug + "/" + c.Source.Name
}

// returnURL picks the allowed return URL asked for (exact, or under an
// entry ending in "*"); empty asks for the first allowed one.
func returnURL(c Connection, asked string) (string, error) {
	allowed := c.Config.ReturnURLs
	if asked == "" {
		if len(allowed) == 0 {
			return "/session", nil
		}
		return strings.TrimSuffix(allowed[0], "*"), nil
	}
	for _, a := range allowed {
		if p, ok := strings.CutSuffix(a, "*"); ok {
			if underPrefix(asked, p) {
				return asked, nil
			}
		} else if asked == a {
			return asked, nil
		}
	}
	return "", fmt.Errorf("return URL %q is not allowed for this connection: %w", asked, engine.ErrInvalid)
}

// underPrefix reports whether asked is the prefix URL or a path below it:
// same scheme and host, no user info, and a path that stays below the
// prefix's once dot segments (also percent-encoded) are resolved.
func underPrefix(asked, prefix string) bool {
	if !strings.HasPrefix(asked, prefix) || strings.ContainsAny(asked, "\\\x00") {
		return false
	}
	a, err1 := url.Parse(asked)
	p, err2 := url.Parse(prefix)
	if err1 != nil || err2 != nil || a.User != nil || a.Scheme != p.Scheme || a.Host != p.Host {
		return false
	}
	clean := path.Clean("/" + a.Path)
	if strings.HasSuffix(a.Path, "/") && clean != "/" {
		clean += "/"
	}
	return strings.HasPrefix(clean, path.Clean("/"+p.Path)) && clean == "/"+strings.TrimPrefix(a.Path, "/")
}

// pending is a login between the redirect to the IdP and its answer,
// kept in the database so any process can finish it.
type pending struct {
	SourceID  string `json:"s"`
	ReturnTo  string `json:"r"`
	Nonce     string `json:"n,omitempty"`
	Verifier  string `json:"v,omitempty"`
	RequestID string `json:"q,omitempty"`
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func (h *Handler) savePending(ctx context.Context, state string, p pending) error {
	b, _ := json.Marshal(p)
	now := h.now()
	return h.store.JITPutLoginState(ctx, hashOf(state), b, now.Add(h.opts.LoginTTL), now)
}

func (h *Handler) takePending(ctx context.Context, state string) (pending, error) {
	var p pending
	b, err := h.store.JITTakeLoginState(ctx, hashOf(state), h.now())
	if err != nil {
		return p, err
	}
	return p, json.Unmarshal(b, &p)
}

// setStateCookie binds a pending login to the browser that started it.
// Each login has a cookie of its own, named after its state, so that two
// logins started in one browser (two tabs) do not overwrite each other's.
func (h *Handler) setStateCookie(w http.ResponseWriter, r *http.Request, c Connection, state string, sameSite http.SameSite) {
	http.SetCookie(w, &http.Cookie{Name: stateCookieName(state), Value: state, Path: h.connectionPath(c),
		MaxAge: int(h.opts.LoginTTL.Seconds()), HttpOnly: true, Secure: h.secure(r) || sameSite == http.SameSiteNoneMode,
		SameSite: sameSite})
}

func (h *Handler) clearStateCookie(w http.ResponseWriter, r *http.Request, c Connection, state string) {
	http.SetCookie(w, &http.Cookie{Name: stateCookieName(state), Value: "", Path: h.connectionPath(c), MaxAge: -1,
		HttpOnly: true, Secure: h.secure(r)})
}

// stateCookieName is the state cookie of one login: the prefix and the
// start of the state's hash (the state itself is only in the value).
func stateCookieName(state string) string { return stateCookie + "_" + hashOf(state)[:16] }

// stateMatchesCookie checks the state the IdP sent back against the
// browser's cookie for it, in constant time.
func stateMatchesCookie(r *http.Request, state string) bool {
	if state == "" {
		return false
	}
	ck, err := r.Cookie(stateCookieName(state))
	return err == nil && subtle.ConstantTimeCompare([]byte(ck.Value), []byte(state)) == 1
}

func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	c, err := h.connection(r.Context(), r.PathValue("org"), r.PathValue("conn"))
	if err != nil {
		h.fail(w, r, "", err)
		return
	}
	ret, err := returnURL(c, r.URL.Query().Get("return_to"))
	if err != nil {
		h.fail(w, r, c.Source.Name, err)
		return
	}
	switch c.Source.Kind {
	case engine.KindSAML:
		err = h.samlStart(w, r, c, ret)
	default:
		err = h.oidcStart(w, r, c, ret)
	}
	if err != nil {
		h.fail(w, r, c.Source.Name, err)
	}
}

// finish provisions a verified login, sets the session and redirects.
func (h *Handler) finish(w http.ResponseWriter, r *http.Request, c Connection, in Login, returnTo string) {
	start := time.Now()
	p, err := h.prov.Provision(r.Context(), c, in)
	if err != nil {
		h.fail(w, r, c.Source.Name, err)
		return
	}
	h.log.Info("jit login", "connection", c.Source.Name, "org", c.Org.Slug, "identity", p.IdentityID, "outcome", p.Outcome)
	if err := h.startSession(w, r, p.IdentityID, c.Source.OrgID, c.Source.ID); err != nil {
		h.fail(w, r, c.Source.Name, err)
		return
	}
	if h.opts.ObserveLogin != nil {
		h.opts.ObserveLogin(c.Source.Kind, time.Since(start))
	}
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, identityID, orgID, sourceID string) error {
	// A new session replaces any the browser held (no fixation).
	if ck, err := r.Cookie(SessionCookie); err == nil {
		_ = h.store.JITDeleteSession(r.Context(), hashOf(ck.Value), h.now())
	}
	id := randomToken()
	now := h.now()
	if h.sessions.Add(1)%256 == 0 { // now and then, drop expired sessions
		_ = h.store.JITDeleteSession(r.Context(), "", now)
	}
	if err := h.store.JITPutSession(r.Context(), hashOf(id), identityID, orgID, sourceID, now, now.Add(h.opts.SessionTTL)); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", MaxAge: int(h.opts.SessionTTL.Seconds()),
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	return nil
}

// SessionView is what /session shows.
type SessionView struct {
	Identity      sessionIdentity `json:"identity"`
	Organizations []sessionOrg    `json:"organizations"`
	ExpiresAt     time.Time       `json:"expiresAt"`
	Connection    string          `json:"connectionId"`
}

type sessionIdentity struct {
	ID    string       `json:"id"`
	State engine.State `json:"state"`
	Attrs engine.Attrs `json:"attributes"`
}

type sessionOrg struct {
	ID         string   `json:"id"`
	Slug       string   `json:"slug"`
	Name       string   `json:"name"`
	Roles      []string `json:"roles"`
	Groups     []string `json:"groups"`
	GrantedVia string   `json:"grantedVia"`
}

func (h *Handler) session(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ck, err := r.Cookie(SessionCookie)
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not signed in"})
		return
	}
	identityID, _, sourceID, exp, err := h.store.JITSession(ctx, hashOf(ck.Value), h.now())
	if errors.Is(err, engine.ErrNotFound) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not signed in"})
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	st := h.eng.Store()
	ident, err := st.Identity(ctx, identityID)
	if err != nil {
		writeError(w, err)
		return
	}
	if ident.State != "active" {
		_ = h.store.JITDeleteSession(ctx, hashOf(ck.Value), h.now())
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "account is " + string(ident.State)})
		return
	}
	oms, err := st.OrgMemberships(ctx, identityID)
	if err != nil {
		writeError(w, err)
		return
	}
	edges, err := st.IdentityMemberships(ctx, identityID)
	if err != nil {
		writeError(w, err)
		return
	}
	view := SessionView{Identity: sessionIdentity{ID: ident.ID, State: ident.State, Attrs: ident.Attrs},
		ExpiresAt: exp, Connection: sourceID, Organizations: []sessionOrg{}}
	for _, om := range oms {
		org, err := st.Organization(ctx, om.OrgID)
		if err != nil {
			writeError(w, err)
			return
		}
		groups, err := st.Groups(ctx, om.OrgID)
		if err != nil {
			writeError(w, err)
			return
		}
		inOrg := map[string]bool{}
		for _, g := range groups {
			inOrg[g.ID] = true
		}
		names := []string{}
		for _, e := range edges {
			if inOrg[e.GroupID] && !slices.Contains(names, e.GroupName) {
				names = append(names, e.GroupName)
			}
		}
		slices.Sort(names)
		view.Organizations = append(view.Organizations, sessionOrg{ID: org.ID, Slug: org.Slug, Name: org.Name,
			Roles: om.Roles, Groups: names, GrantedVia: om.GrantedVia})
	}
	writeJSON(w, http.StatusOK, view)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(SessionCookie); err == nil {
		if err := h.store.JITDeleteSession(r.Context(), hashOf(ck.Value), h.now()); err != nil {
			writeError(w, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
	writeJSON(w, http.StatusOK, map[string]string{"status": "signed out"})
}

// ProvisionRequest is the body of POST /api/v1/jit/provision: claims an app
// has already verified, provisioned through the connection's rules.
type ProvisionRequest struct {
	Organization  string `json:"organization"`
	Connection    string `json:"connection"`
	Subject       string `json:"subject"`
	Claims        Claims `json:"claims"`
	EmailVerified bool   `json:"emailVerified"`
}

func (h *Handler) provisionAPI(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tok, err := h.authenticate(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req ProvisionRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 256<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, fmt.Errorf("body: %v: %w", err, engine.ErrInvalid))
		return
	}
	c, err := h.connection(ctx, req.Organization, req.Connection)
	if err != nil {
		writeError(w, err)
		return
	}
	if tok.OrgID != "" && tok.OrgID != c.Source.OrgID {
		writeError(w, fmt.Errorf("token is not for organization %s: %w", c.Org.Slug, engine.ErrForbidden))
		return
	}
	key := req.Subject
	if c.Config.OIDC != nil && key != "" {
		key = c.Config.OIDC.Issuer + "|" + key
	}
	p, err := h.prov.Provision(ctx, c, Login{Key: key, Claims: req.Claims, EmailVerified: req.EmailVerified,
		CorrelationID: r.Header.Get("X-Correlation-ID")})
	var ref *Refusal
	if errors.As(err, &ref) {
		code := http.StatusForbidden
		if errors.Is(err, engine.ErrConflict) {
			code = http.StatusConflict
		}
		writeJSON(w, code, map[string]any{"error": ref.Reason, "conflictId": ref.ConflictID, "outcome": p.Outcome})
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	p.Events = nil
	writeJSON(w, http.StatusOK, p)
}

func (h *Handler) authenticate(r *http.Request) (engine.Token, error) {
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || secret == "" {
		return engine.Token{}, fmt.Errorf("an admin API key is required: %w", engine.ErrForbidden)
	}
	t, err := h.eng.Authenticate(r.Context(), strings.TrimSpace(secret))
	if err != nil {
		return engine.Token{}, err
	}
	if t.Kind != engine.TokenAdmin || t.Scope != "admin" {
		return engine.Token{}, fmt.Errorf("token %s lacks the admin scope: %w", t.Prefix, engine.ErrForbidden)
	}
	return t, nil
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, engine.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, engine.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, engine.ErrConflict), errors.Is(err, engine.ErrExists):
		return http.StatusConflict
	case errors.Is(err, engine.ErrInvalid), errors.Is(err, errProtocol):
		return http.StatusBadRequest
	case errors.Is(err, engine.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	code := statusOf(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		msg = "internal error"
	}
	writeJSON(w, code, map[string]string{"error": msg})
}

// errProtocol marks a response or token that failed verification; the
// page says only that sign-in failed, the log says why (never the token).
var errProtocol = errors.New("sign-in response rejected")

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in {{.Title}}</title></head>
<body><h1>Sign-in {{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

// fail renders a clear page for a refused or failed login and logs why.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, conn string, err error) {
	code := statusOf(err)
	msg := "Sign-in failed. Please try again from the start."
	title := "failed"
	var ref *Refusal
	switch {
	case errors.As(err, &ref):
		msg, title = ref.Reason, "refused"
	case errors.Is(err, errProtocol):
		msg = "The identity provider's answer could not be verified. Please try again from the start."
	case errors.Is(err, engine.ErrNotFound):
		msg = "There is no such sign-in connection, or this sign-in link has expired."
	case errors.Is(err, engine.ErrInvalid):
		msg = "This sign-in request is not valid: " + err.Error()
	}
	h.log.Warn("jit login failed", "connection", conn, "route", r.Pattern, "status", code, "error", err.Error())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_ = page.Execute(w, map[string]string{"Title": title, "Message": msg})
}
