package jit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/idsync/idsync/engine"
)

// oidcCache keeps one discovered provider per connection and issuer, for
// providerTTL: discovery is one round trip, keys are cached by go-oidc.
type oidcCache struct {
	mu sync.Mutex
	m  map[string]cachedProvider
}

type cachedProvider struct {
	p  *oidc.Provider
	at time.Time
}

const providerTTL = 10 * time.Minute

func newOIDCCache() *oidcCache { return &oidcCache{m: map[string]cachedProvider{}} }

func (h *Handler) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, h.opts.HTTPClient)
}

func (h *Handler) provider(ctx context.Context, c Connection) (*oidc.Provider, error) {
	k := c.Source.ID + "|" + c.Config.OIDC.Issuer
	h.oidc.mu.Lock()
	cp, ok := h.oidc.m[k]
	h.oidc.mu.Unlock()
	if ok && time.Since(cp.at) < providerTTL {
		return cp.p, nil
	}
	// The provider keeps this context for fetching keys later: it must
	// outlive the request.
	p, err := oidc.NewProvider(h.ctx(context.WithoutCancel(ctx)), c.Config.OIDC.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc discovery for %s: %v: %w", c.Config.OIDC.Issuer, err, engine.ErrUnavailable)
	}
	h.oidc.mu.Lock()
	h.oidc.m[k] = cachedProvider{p: p, at: time.Now()}
	h.oidc.mu.Unlock()
	return p, nil
}

func (h *Handler) oauth2Config(r *http.Request, c Connection, p *oidc.Provider) *oauth2.Config {
	o := c.Config.OIDC
	return &oauth2.Config{ClientID: o.ClientID, ClientSecret: secret(o.ClientSecretEnv), Endpoint: p.Endpoint(),
		RedirectURL: h.base(r) + h.connectionPath(c) + "/callback", Scopes: o.Scopes}
}

// oidcStart redirects to the provider's authorization endpoint with a
// fresh state, nonce and PKCE challenge (RFC 7636, S256).
func (h *Handler) oidcStart(w http.ResponseWriter, r *http.Request, c Connection, returnTo string) error {
	p, err := h.provider(r.Context(), c)
	if err != nil {
		return err
	}
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	if err := h.savePending(r.Context(), state, pending{SourceID: c.Source.ID, ReturnTo: returnTo, Nonce: nonce, Verifier: verifier}); err != nil {
		return err
	}
	h.setStateCookie(w, r, c, state, http.SameSiteLaxMode)
	u := h.oauth2Config(r, c, p).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	http.Redirect(w, r, u, http.StatusFound)
	return nil
}

// oidcCallback checks state against the browser's cookie and the pending
// login, redeems the code with the PKCE verifier, verifies the ID token
// (signature with an allowed algorithm, issuer, audience, expiry, nonce)
// and provisions.
func (h *Handler) oidcCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, err := h.connection(ctx, r.PathValue("org"), r.PathValue("conn"))
	if err != nil {
		h.fail(w, r, "", err)
		return
	}
	if c.Config.OIDC == nil {
		h.fail(w, r, c.Source.Name, fmt.Errorf("not an OpenID Connect connection: %w", engine.ErrNotFound))
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	if !stateMatchesCookie(r, state) {
		h.fail(w, r, c.Source.Name, fmt.Errorf("state does not match this browser's login: %w", errProtocol))
		return
	}
	h.clearStateCookie(w, r, c, state)
	pend, err := h.takePending(ctx, state)
	if err != nil || pend.SourceID != c.Source.ID {
		h.fail(w, r, c.Source.Name, fmt.Errorf("unknown, used or expired state: %w", errProtocol))
		return
	}
	if e := q.Get("error"); e != "" {
		h.fail(w, r, c.Source.Name, fmt.Errorf("provider answered %q: %w", e, errProtocol))
		return
	}
	in, err := h.oidcVerify(ctx, r, c, q.Get("code"), pend)
	if err != nil {
		h.fail(w, r, c.Source.Name, err)
		return
	}
	h.finish(w, r, c, in, pend.ReturnTo)
}

func (h *Handler) oidcVerify(ctx context.Context, r *http.Request, c Connection, code string, pend pending) (Login, error) {
	if code == "" {
		return Login{}, fmt.Errorf("no authorization code: %w", errProtocol)
	}
	p, err := h.provider(ctx, c)
	if err != nil {
		return Login{}, err
	}
	cfg := h.oauth2Config(r, c, p)
	tok, err := cfg.Exchange(h.ctx(ctx), code, oauth2.VerifierOption(pend.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return Login{}, fmt.Errorf("token endpoint refused the code (%s): %w", re.ErrorCode, errProtocol)
		}
		return Login{}, fmt.Errorf("token endpoint: %v: %w", err, errProtocol)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Login{}, fmt.Errorf("token response has no id_token: %w", errProtocol)
	}
	skew := time.Duration(c.Config.ClockSkew)
	v := p.Verifier(&oidc.Config{ClientID: c.Config.OIDC.ClientID, SupportedSigningAlgs: c.Config.OIDC.Algorithms,
		Now: func() time.Time { return h.now().Add(-skew) }})
	idt, err := v.Verify(h.ctx(ctx), raw)
	if err != nil {
		return Login{}, fmt.Errorf("id token: %v: %w", err, errProtocol)
	}
	if idt.IssuedAt.After(h.now().Add(skew)) {
		return Login{}, fmt.Errorf("id token issued in the future: %w", errProtocol)
	}
	if pend.Nonce == "" || idt.Nonce != pend.Nonce {
		return Login{}, fmt.Errorf("id token nonce does not match the login: %w", errProtocol)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return Login{}, fmt.Errorf("id token claims: %v: %w", err, errProtocol)
	}
	if c.Config.OIDC.Userinfo {
		ui, err := p.UserInfo(h.ctx(ctx), oauth2.StaticTokenSource(tok))
		if err != nil {
			return Login{}, fmt.Errorf("userinfo: %v: %w", err, errProtocol)
		}
		if ui.Subject != idt.Subject {
			return Login{}, fmt.Errorf("userinfo is about another subject: %w", errProtocol)
		}
		var more map[string]any
		if err := ui.Claims(&more); err == nil {
			for k, v := range more {
				if _, ok := claims[k]; !ok {
					claims[k] = v
				}
			}
		}
	}
	return oidcLogin(idt.Issuer, idt.Subject, claims), nil
}

// oidcLogin turns ID token claims into a Login keyed "iss|sub".
func oidcLogin(iss, sub string, claims map[string]any) Login {
	in := Login{Key: iss + "|" + sub, Claims: Claims{}}
	for k, v := range claims {
		in.Claims[k] = claimStrings(v)
	}
	switch v := claims["email_verified"].(type) {
	case bool:
		in.EmailVerified = v
	case string: // some providers send "true"
		in.EmailVerified, _ = strconv.ParseBool(v)
	}
	return in
}

func claimStrings(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, claimStrings(e)...)
		}
		return out
	case float64:
		return []string{strconv.FormatFloat(x, 'f', -1, 64)}
	case bool:
		return []string{strconv.FormatBool(x)}
	}
	return nil
}
