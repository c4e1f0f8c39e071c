package jit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/reconcile"
)

// Claims are the verified statements of an IdP about the person signing in:
// OIDC claims or SAML attributes, every value as strings.
type Claims map[string][]string

// First returns the first non-empty value of the first of names ("a|b")
// the claims hold.
func (c Claims) First(names string) string {
	for _, n := range strings.Split(names, "|") {
		for _, v := range c[strings.TrimSpace(n)] {
			if v = strings.TrimSpace(v); v != "" {
				return v
			}
		}
	}
	return ""
}

// All returns the values of the first of names ("a|b") the claims hold.
func (c Claims) All(names string) []string {
	for _, n := range strings.Split(names, "|") {
		if v, ok := c[strings.TrimSpace(n)]; ok {
			return v
		}
	}
	return nil
}

// Login is one verified sign-in, ready to provision.
type Login struct {
	// Key is the subject's immutable key at the connection.
	Key    string
	Claims Claims
	// EmailVerified is what the IdP says of the email (OIDC email_verified).
	EmailVerified bool
	CorrelationID string
}

// Connection is a JIT source with its parsed config.
type Connection struct {
	Source engine.Source
	Org    engine.Organization
	Config Config
}

// Refusal is a login idsync refuses after the IdP said yes; Reason is shown
// to the person. It wraps engine.ErrForbidden or engine.ErrConflict.
type Refusal struct {
	Reason     string
	ConflictID string
	Err        error
}

func (r *Refusal) Error() string { return "login refused: " + r.Reason }
func (r *Refusal) Unwrap() error { return r.Err }

func refuse(kind error, format string, args ...any) *Refusal {
	return &Refusal{Reason: fmt.Sprintf(format, args...), Err: kind}
}

// Provisioned is what a login did.
type Provisioned struct {
	engine.Result
	OrgID    string `json:"orgId"`
	SourceID string `json:"sourceId"`
}

// Provisioner turns verified logins into engine observations under a
// connection's mapping and policies.
type Provisioner struct {
	Engine *engine.Engine
}

// Observation builds the observation of a login; prev is the account the
// connection already holds for the key (nil on a first login).
func (c Connection) Observation(in Login, prev *engine.Account) (engine.Observation, error) {
	cfg := c.Config
	obs := engine.Observation{SourceID: c.Source.ID, Key: in.Key, Login: true,
		Actor: "jit:" + c.Source.Name, CorrelationID: in.CorrelationID}
	attrs := engine.Attrs{}
	for attr, claim := range cfg.Mapping.Attributes {
		if v := in.Claims.First(claim); v != "" {
			attrs[attr] = v
		}
	}
	if e := attrs[reconcile.AttrEmail]; e != "" {
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
			delete(attrs, reconcile.AttrEmail) // never let a malformed email fail the login
		} else {
			attrs[reconcile.AttrEmail] = engine.NormalizeEmail(e)
		}
	}
	obs.EmailVerified = attrs[reconcile.AttrEmail] != "" && (in.EmailVerified || cfg.Policy.TrustEmails)
	obs.Raw = usedClaims(in.Claims, cfg)
	if prev != nil && cfg.Policy.UpdateAttributes == UpdateOnCreate {
		attrs, obs.EmailVerified, obs.Raw = prev.Attrs, prev.EmailVerified, prev.Raw
	}
	obs.Attrs = attrs

	idpGroups := in.Claims.All(cfg.Mapping.GroupsClaim)
	groups := mapValues(idpGroups, cfg.Mapping.Groups, cfg.Mapping.PassthroughGroups)
	switch cfg.Mapping.GroupMode {
	case GroupsNone:
	case GroupsAssign:
		// Granted once; later logins restate what the first one granted,
		// so they neither grant more nor change the content hash.
		obs.GroupMode = engine.GroupsAdd
		obs.Groups = groups
		if prev != nil {
			obs.Groups = slices.Clone(prev.Groups)
		}
		if obs.Groups == nil {
			obs.Groups = []string{}
		}
	case GroupsAppend:
		obs.Groups, obs.GroupMode = nonNil(groups), engine.GroupsAdd
	case GroupsSync:
		obs.Groups, obs.GroupMode = nonNil(groups), engine.GroupsReplace
	}
	if len(cfg.Mapping.Roles) > 0 {
		if roles := mapValues(idpGroups, cfg.Mapping.Roles, false); len(roles) > 0 {
			obs.Roles = roles
		}
	}
	return obs, nil
}

// usedClaims is the account's raw document: the claims the mapping reads,
// as the IdP sent them. Only those: tokens carry claims that change at
// every sign-in (iat, exp, nonce, Entra's uti and aio, …) and would make
// every login a write; and never a token or assertion itself.
func usedClaims(c Claims, cfg Config) json.RawMessage {
	names := []string{cfg.Mapping.GroupsClaim}
	for _, v := range cfg.Mapping.Attributes {
		names = append(names, v)
	}
	if cfg.SAML != nil && cfg.SAML.KeyAttribute != "" {
		names = append(names, cfg.SAML.KeyAttribute)
	}
	used := map[string][]string{}
	for _, n := range names {
		for _, k := range strings.Split(n, "|") {
			if v, ok := c[strings.TrimSpace(k)]; ok {
				used[strings.TrimSpace(k)] = v
			}
		}
	}
	if len(used) == 0 {
		return nil
	}
	b, err := json.Marshal(used)
	if err != nil || len(b) > 200<<10 {
		return nil
	}
	return b
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// mapValues maps IdP values through rules (case-insensitive on from);
// unmapped values pass through when passthrough is set.
func mapValues(values []string, rules []Rule, passthrough bool) []string {
	var out []string
	for _, v := range values {
		hit := false
		for _, r := range rules {
			if strings.EqualFold(r.From, v) {
				out = append(out, r.To)
				hit = true
			}
		}
		if !hit && passthrough && strings.TrimSpace(v) != "" {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Provision applies a verified login to the graph under the connection's
// rules: email-domain membership, create and link policies, lifecycle
// refusal. A refused login returns a *Refusal.
func (p *Provisioner) Provision(ctx context.Context, c Connection, in Login) (Provisioned, error) {
	out := Provisioned{OrgID: c.Source.OrgID, SourceID: c.Source.ID}
	if !c.Source.Enabled {
		return out, refuse(engine.ErrForbidden, "this sign-in connection is disabled")
	}
	if strings.TrimSpace(in.Key) == "" {
		return out, refuse(engine.ErrForbidden, "the identity provider named no subject")
	}
	store := p.Engine.Store()
	head, found, err := store.AccountHead(ctx, c.Source.ID, in.Key)
	if err != nil {
		return out, err
	}
	if found && head.IdentityState != reconcile.StateActive {
		return out, refuse(engine.ErrForbidden, "your account is %s in this organization; ask its administrator", head.IdentityState)
	}
	var prev *engine.Account
	if found && (c.Config.Policy.UpdateAttributes == UpdateOnCreate || c.Config.Mapping.GroupMode == GroupsAssign) {
		a, ok, err := store.AccountByKey(ctx, c.Source.ID, in.Key)
		if err != nil {
			return out, err
		}
		if ok {
			prev = &a
		}
	}
	obs, err := c.Observation(in, prev)
	if err != nil {
		return out, err
	}
	if c.Source.Kind == engine.KindEmailDomain {
		if err := p.checkDomain(ctx, c, obs); err != nil {
			return out, err
		}
	}
	if !found && (!c.Config.Policy.Create() || c.Config.Policy.Link == LinkNone) {
		plan, err := p.Engine.Plan(ctx, obs)
		if err != nil {
			return out, err
		}
		switch {
		case plan.Outcome == engine.OutcomeCreated && !c.Config.Policy.Create():
			return out, refuse(engine.ErrForbidden, "this organization does not create accounts at first sign-in; ask its administrator to invite you")
		case plan.Outcome == engine.OutcomeLinked && c.Config.Policy.Link == LinkNone:
			return out, refuse(engine.ErrForbidden, "an account with your details already exists and this connection does not link accounts; ask the organization's administrator")
		}
	}
	res, err := p.Engine.Apply(ctx, obs)
	out.Result = res
	if err != nil {
		return out, err
	}
	if res.Outcome == engine.OutcomeConflict {
		r := refuse(engine.ErrConflict, "your sign-in matches more than one possible account (or an account it may not join automatically); an administrator must resolve it before you can sign in. Reference: %s", res.ConflictID)
		r.ConflictID = res.ConflictID
		return out, r
	}
	if res.State != reconcile.StateActive {
		return out, refuse(engine.ErrForbidden, "your account is %s in this organization; ask its administrator", res.State)
	}
	return out, nil
}

// checkDomain lets a person in through email-domain JIT only with a
// verified email in a domain the organization verified.
func (p *Provisioner) checkDomain(ctx context.Context, c Connection, obs engine.Observation) error {
	email := obs.Attrs[reconcile.AttrEmail]
	if email == "" || !(obs.EmailVerified || c.Source.TrustEmails) {
		return refuse(engine.ErrForbidden, "joining by email domain needs a verified email address")
	}
	domain := email[strings.LastIndexByte(email, '@')+1:]
	d, err := p.Engine.Store().DomainOwner(ctx, domain)
	if errors.Is(err, engine.ErrNotFound) || err == nil && (!d.Verified || d.OrgID != c.Source.OrgID) {
		return refuse(engine.ErrForbidden, "the domain %s is not a verified domain of this organization", domain)
	}
	return err
}
