package engine

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/idsync/idsync/reconcile"
)

// Admin is who performs an admin action, for the audit log.
type Admin struct {
	Actor         string
	CorrelationID string
}

func (a Admin) actor() string {
	if a.Actor == "" {
		return "admin"
	}
	return a.Actor
}

var (
	slugRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	domainRe = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
)

// AdminSourceName is the name of the source every organization has for
// people created or imported through the API.
const AdminSourceName = "admin"

// CreateOrganization creates an organization and its admin source.
func (e *Engine) CreateOrganization(ctx context.Context, by Admin, o Organization) (Organization, error) {
	var probs []string
	if !slugRe.MatchString(o.Slug) {
		probs = append(probs, fmt.Sprintf("slug %q must be lowercase letters, digits and dashes", o.Slug))
	}
	if strings.TrimSpace(o.Name) == "" {
		o.Name = o.Slug
	}
	if len(o.Roles) == 0 {
		o.Roles = []string{"member", "admin"}
	}
	if o.DefaultRole == "" {
		o.DefaultRole = o.Roles[0]
	}
	if !slices.Contains(o.Roles, o.DefaultRole) {
		probs = append(probs, fmt.Sprintf("default role %q is not one of the roles %v", o.DefaultRole, o.Roles))
	}
	if err := validSettings(o.Settings); err != nil {
		probs = append(probs, err.Error())
	}
	if len(probs) > 0 {
		return Organization{}, fmt.Errorf("organization: %s: %w", strings.Join(probs, "; "), ErrInvalid)
	}
	now := e.now()
	o.ID, o.CreatedAt, o.UpdatedAt = newID(), now, now
	err := e.inTx(ctx, func(tx Tx) error {
		if _, err := tx.OrganizationBySlug(ctx, o.Slug); err == nil {
			return fmt.Errorf("organization %q: %w", o.Slug, ErrExists)
		}
		if err := tx.CreateOrganization(ctx, o); err != nil {
			return err
		}
		admin := Source{ID: newID(), OrgID: o.ID, Kind: KindAdmin, Name: AdminSourceName, Priority: 50,
			Enabled: true, TrustEmails: true, CreatedAt: now, UpdatedAt: now}
		if err := tx.CreateSource(ctx, admin); err != nil {
			return err
		}
		ch := e.newChange(now, o.ID, ChannelAdmin, "", by.actor(), by.CorrelationID)
		ch.add("org.created", "organization", o.ID, "", map[string]any{"slug": o.Slug, "name": o.Name})
		ch.add("source.created", "source", admin.ID, "", map[string]any{"name": admin.Name, "kind": admin.Kind})
		return ch.flush(ctx, tx, false)
	})
	return o, err
}

func validSettings(s OrgSettings) error {
	for _, r := range s.MatchRules {
		if !slices.Contains(MatchableAttrs(), r) {
			return fmt.Errorf("match rule %q is not one of %v", r, MatchableAttrs())
		}
	}
	return nil
}

// UpdateOrganization changes an organization's name, roles or rules.
func (e *Engine) UpdateOrganization(ctx context.Context, by Admin, id string, fn func(*Organization) error) (Organization, error) {
	var out Organization
	err := e.inTx(ctx, func(tx Tx) error {
		o, err := tx.Organization(ctx, id)
		if err != nil {
			return err
		}
		before := o
		if err := fn(&o); err != nil {
			return err
		}
		if err := validSettings(o.Settings); err != nil {
			return fmt.Errorf("organization %s: %w", o.Slug, fmt.Errorf("%s: %w", err.Error(), ErrInvalid))
		}
		if o.DefaultRole != "" && !slices.Contains(o.Roles, o.DefaultRole) {
			return fmt.Errorf("default role %q is not one of %v: %w", o.DefaultRole, o.Roles, ErrInvalid)
		}
		o.ID, o.UpdatedAt = before.ID, e.now()
		if err := tx.UpdateOrganization(ctx, o); err != nil {
			return err
		}
		ch := e.newChange(o.UpdatedAt, o.ID, ChannelAdmin, "", by.actor(), by.CorrelationID)
		ch.add("org.updated", "organization", o.ID, "", map[string]any{"before": before, "after": o})
		out = o
		return ch.flush(ctx, tx, false)
	})
	e.forgetSources()
	return out, err
}

// AddDomain claims an email domain for an organization. Verified domains
// drive email-domain JIT; one verified domain belongs to one organization.
func (e *Engine) AddDomain(ctx context.Context, by Admin, orgID, domain string, verified bool) error {
	domain = strings.ToLower(strings.TrimSpace(domain))
	if !domainRe.MatchString(domain) {
		return fmt.Errorf("domain %q is not a DNS name: %w", domain, ErrInvalid)
	}
	return e.inTx(ctx, func(tx Tx) error {
		if _, err := tx.Organization(ctx, orgID); err != nil {
			return err
		}
		if verified {
			if d, err := tx.DomainOwner(ctx, domain); err == nil && d.OrgID != orgID {
				return fmt.Errorf("domain %s is verified by another organization: %w", domain, ErrExists)
			}
		}
		now := e.now()
		if err := tx.AddDomain(ctx, Domain{OrgID: orgID, Domain: domain, Verified: verified, CreatedAt: now}); err != nil {
			return err
		}
		ch := e.newChange(now, orgID, ChannelAdmin, "", by.actor(), by.CorrelationID)
		ch.add("org.domain_added", "organization", orgID, "", map[string]any{"domain": domain, "verified": verified})
		return ch.flush(ctx, tx, false)
	})
}

// RemoveDomain drops a domain claim.
func (e *Engine) RemoveDomain(ctx context.Context, by Admin, orgID, domain string) error {
	return e.inTx(ctx, func(tx Tx) error {
		if err := tx.RemoveDomain(ctx, orgID, domain); err != nil {
			return err
		}
		ch := e.newChange(e.now(), orgID, ChannelAdmin, "", by.actor(), by.CorrelationID)
		ch.add("org.domain_removed", "organization", orgID, "", map[string]any{"domain": domain})
		return ch.flush(ctx, tx, false)
	})
}

// CreateSource adds a feed to an organization. Authoritative defaults by
// kind (directories yes, logins no) when def is true.
func (e *Engine) CreateSource(ctx context.Context, by Admin, s Source, defaultAuthority bool) (Source, error) {
	var probs []string
	if !s.Kind.Valid() {
		probs = append(probs, fmt.Sprintf("kind %q is not one of saml, oidc, email-domain, scim, ldap, scim-pull, file, admin", s.Kind))
	}
	if !slugRe.MatchString(s.Name) {
		probs = append(probs, fmt.Sprintf("name %q must be lowercase letters, digits and dashes", s.Name))
	}
	if len(s.Config) > 0 && !json.Valid(s.Config) {
		probs = append(probs, "config is not valid JSON")
	} else if err := e.checkConfig(s); err != nil {
		probs = append(probs, strings.TrimSuffix(err.Error(), ": "+ErrInvalid.Error()))
	}
	if len(probs) > 0 {
		return Source{}, fmt.Errorf("source: %s: %w", strings.Join(probs, "; "), ErrInvalid)
	}
	if defaultAuthority {
		s.Authoritative = s.Kind.DefaultAuthoritative()
	}
	if s.Priority == 0 {
		s.Priority = 100
	}
	now := e.now()
	s.ID, s.CreatedAt, s.UpdatedAt, s.Enabled = newID(), now, now, true
	err := e.inTx(ctx, func(tx Tx) error {
		if _, err := tx.Organization(ctx, s.OrgID); err != nil {
			return err
		}
		if _, err := tx.SourceByName(ctx, s.OrgID, s.Name); err == nil {
			return fmt.Errorf("source %q: %w", s.Name, ErrExists)
		}
		if err := tx.CreateSource(ctx, s); err != nil {
			return err
		}
		ch := e.newChange(now, s.OrgID, ChannelAdmin, s.ID, by.actor(), by.CorrelationID)
		ch.add("source.created", "source", s.ID, "", map[string]any{"name": s.Name, "kind": s.Kind,
			"priority": s.Priority, "authoritative": s.Authoritative})
		return ch.flush(ctx, tx, false)
	})
	return s, err
}

// UpdateSource changes a source's settings (priority, ownership, authority,
// config, enabled).
func (e *Engine) UpdateSource(ctx context.Context, by Admin, id string, fn func(*Source) error) (Source, error) {
	var out Source
	err := e.inTx(ctx, func(tx Tx) error {
		s, err := tx.Source(ctx, id)
		if err != nil {
			return err
		}
		before := s
		if err := fn(&s); err != nil {
			return err
		}
		if len(s.Config) > 0 && !json.Valid(s.Config) {
			return fmt.Errorf("source %s: config is not valid JSON: %w", s.Name, ErrInvalid)
		}
		if err := e.checkConfig(s); err != nil {
			return fmt.Errorf("source %s: %s: %w", s.Name, strings.TrimSuffix(err.Error(), ": "+ErrInvalid.Error()), ErrInvalid)
		}
		s.ID, s.OrgID, s.Kind, s.UpdatedAt = before.ID, before.OrgID, before.Kind, e.now()
		if err := tx.UpdateSource(ctx, s); err != nil {
			return err
		}
		ch := e.newChange(s.UpdatedAt, s.OrgID, ChannelAdmin, s.ID, by.actor(), by.CorrelationID)
		ch.add("source.updated", "source", s.ID, "", map[string]any{"changes": reconcile.Diff(sourceAttrs(before), sourceAttrs(s))})
		out = s
		return ch.flush(ctx, tx, false)
	})
	e.forgetSources()
	return out, err
}

// checkConfig runs the configured validator of the source's kind.
func (e *Engine) checkConfig(s Source) error {
	if e.opts.CheckSourceConfig == nil || !s.Kind.Valid() {
		return nil
	}
	cfg := s.Config
	if len(cfg) == 0 {
		cfg = json.RawMessage("{}")
	}
	return e.opts.CheckSourceConfig(s.Kind, cfg)
}

func sourceAttrs(s Source) Attrs {
	return Attrs{"name": s.Name, "priority": fmt.Sprint(s.Priority), "owns": strings.Join(s.Owns, ","),
		"authoritative": fmt.Sprint(s.Authoritative), "trustEmails": fmt.Sprint(s.TrustEmails),
		"enabled": fmt.Sprint(s.Enabled), "config": configDigest(s.Config)}
}

// configDigest stands for a config in audit diffs: configs may name secret
// references, so the log says that it changed, not what it holds.
func configDigest(b json.RawMessage) string {
	if len(b) == 0 {
		return ""
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// AdminSource returns an organization's admin source.
func (e *Engine) AdminSource(ctx context.Context, orgID string) (Source, error) {
	return e.store.SourceByName(ctx, orgID, AdminSourceName)
}

// Person is a person created or imported through the admin API.
type Person struct {
	// Key identifies the person in the admin source; empty: externalId,
	// else userName, else email.
	Key      string   `json:"key,omitempty"`
	Attrs    Attrs    `json:"attributes"`
	Groups   []string `json:"groups,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	Inactive bool     `json:"inactive,omitempty"`
}

func (p Person) observation(sourceID string, by Admin) (Observation, error) {
	key := p.Key
	for _, k := range []string{reconcile.AttrExternalID, reconcile.AttrUserName, reconcile.AttrEmail} {
		if key == "" {
			key = p.Attrs[k]
		}
	}
	if key == "" {
		return Observation{}, fmt.Errorf("person needs a key, externalId, userName or email: %w", ErrInvalid)
	}
	return Observation{SourceID: sourceID, Key: key, Attrs: p.Attrs, Groups: p.Groups, GroupMode: GroupsAdd,
		Roles: p.Roles, Inactive: p.Inactive, Actor: by.actor(), CorrelationID: by.CorrelationID}, nil
}

// CreatePerson creates (or updates) a person through the organization's
// admin source, under the same matching, merge and audit rules as any feed.
func (e *Engine) CreatePerson(ctx context.Context, by Admin, orgID string, p Person) (Result, error) {
	src, err := e.AdminSource(ctx, orgID)
	if err != nil {
		return Result{}, err
	}
	obs, err := p.observation(src.ID, by)
	if err != nil {
		return Result{}, err
	}
	return e.Apply(ctx, obs)
}

// Suspend suspends a person until Restore; sources cannot lift it.
func (e *Engine) Suspend(ctx context.Context, by Admin, identityID, reason string) (Identity, error) {
	return e.setSuspended(ctx, by, identityID, true, reason)
}

// Restore lifts a suspension; the person's state is derived again.
func (e *Engine) Restore(ctx context.Context, by Admin, identityID string) (Identity, error) {
	return e.setSuspended(ctx, by, identityID, false, "")
}

func (e *Engine) setSuspended(ctx context.Context, by Admin, identityID string, on bool, reason string) (Identity, error) {
	var out Identity
	err := e.inTx(ctx, func(tx Tx) error {
		ident, err := tx.Identity(ctx, identityID)
		if err != nil {
			return err
		}
		if ident.Suspended == on {
			out = ident
			return nil
		}
		org, err := tx.Organization(ctx, ident.OrgID)
		if err != nil {
			return err
		}
		linked, err := tx.LinkedAccounts(ctx, ident.ID)
		if err != nil {
			return err
		}
		ident.Suspended, ident.SuspendReason = on, reason
		ch := e.newChange(e.now(), ident.OrgID, ChannelAdmin, "", by.actor(), by.CorrelationID)
		if err := e.recomputeForced(ctx, tx, ch, org, &ident, linked); err != nil {
			return err
		}
		out = ident
		return ch.flush(ctx, tx, false)
	})
	return out, err
}

// recomputeForced is recompute for admin changes that must write the
// identity even when no attribute changed (its suspension flag did).
func (e *Engine) recomputeForced(ctx context.Context, tx Tx, ch *change, org Organization, ident *Identity, linked []LinkedAccount) error {
	from, prevVersion := ident.State, ident.Version
	before := ident.Attrs
	racc := toReconcile(linked)
	g := reconcile.Merge(racc, org.Settings.Priority)
	if len(linked) == 0 {
		g.Attrs, g.Provenance = ident.Attrs, ident.Provenance
	}
	ident.Attrs, ident.Provenance = g.Attrs, g.Provenance
	ident.State = reconcile.Lifecycle(ident.State, ident.Suspended, racc)
	ident.Version++
	ident.UpdatedAt = ch.at
	if err := tx.UpdateIdentity(ctx, *ident, prevVersion); err != nil {
		return err
	}
	if d := reconcile.Diff(before, ident.Attrs); len(d) > 0 {
		ch.add("identity.updated", "identity", ident.ID, ident.ID, map[string]any{"changes": d})
	}
	if t := reconcile.Transition(from, ident.State); t != "" {
		ch.add(t, "identity", ident.ID, ident.ID, map[string]any{"reason": ident.SuspendReason,
			"changes": []reconcile.Change{{Field: "state", Before: string(from), After: string(ident.State)}}})
	}
	return nil
}

func toReconcile(linked []LinkedAccount) []reconcile.Account {
	racc := make([]reconcile.Account, len(linked))
	for i, a := range linked {
		racc[i] = reconcile.Account{ID: a.ID, SourceID: a.SourceID, SourceKind: string(a.SourceKind),
			SourceName: a.SourceName, Priority: a.Priority, Authoritative: a.Authoritative, Owns: a.Owns,
			Attrs: a.Attrs, Active: a.Active, Removed: a.Removed, ChangedAt: a.ChangedAt}
	}
	return racc
}

// Recompute re-merges one person under the current rules (after a priority
// change, say) and writes what changed.
func (e *Engine) Recompute(ctx context.Context, by Admin, identityID string) (Result, error) {
	var res Result
	err := e.inTx(ctx, func(tx Tx) error {
		ident, err := tx.Identity(ctx, identityID)
		if err != nil {
			return err
		}
		org, err := tx.Organization(ctx, ident.OrgID)
		if err != nil {
			return err
		}
		linked, err := tx.LinkedAccounts(ctx, ident.ID)
		if err != nil {
			return err
		}
		ch := e.newChange(e.now(), ident.OrgID, ChannelSystem, "", by.actor(), by.CorrelationID)
		if err := e.recompute(ctx, tx, ch, org, &ident, linked, false, false); err != nil {
			return err
		}
		res = Result{IdentityID: ident.ID, State: ident.State, Outcome: OutcomeUnchanged, Events: ch.events}
		if len(ch.events) > 0 {
			res.Outcome = OutcomeUpdated
		}
		return ch.flush(ctx, tx, false)
	})
	return res, err
}

// Link moves an account to another identity (a manual merge). Both people
// are merged again; the one left without accounts keeps its last record.
func (e *Engine) Link(ctx context.Context, by Admin, accountID, identityID string) error {
	return e.inTx(ctx, func(tx Tx) error {
		return e.moveAccount(ctx, tx, by, accountID, identityID)
	})
}

// Unlink splits an account off into a new identity of its own.
func (e *Engine) Unlink(ctx context.Context, by Admin, accountID string) (string, error) {
	var id string
	err := e.inTx(ctx, func(tx Tx) error {
		acct, err := tx.Account(ctx, accountID)
		if err != nil {
			return err
		}
		now := e.now()
		ident := Identity{ID: newID(), OrgID: acct.OrgID, State: reconcile.StateActive, Version: 1,
			CreatedAt: now, UpdatedAt: now, Attrs: Attrs{}}
		if err := tx.InsertIdentity(ctx, ident); err != nil {
			return err
		}
		ch := e.newChange(now, acct.OrgID, ChannelAdmin, acct.SourceID, by.actor(), by.CorrelationID)
		ch.add("identity.created", "identity", ident.ID, ident.ID, map[string]any{"reason": "split from " + acct.IdentityID})
		if err := ch.flush(ctx, tx, false); err != nil {
			return err
		}
		id = ident.ID
		return e.moveAccount(ctx, tx, by, accountID, ident.ID)
	})
	return id, err
}

func (e *Engine) moveAccount(ctx context.Context, tx Tx, by Admin, accountID, toID string) error {
	acct, err := tx.Account(ctx, accountID)
	if err != nil {
		return err
	}
	fromID := acct.IdentityID
	if fromID == toID {
		return nil
	}
	to, err := tx.Identity(ctx, toID)
	if err != nil {
		return err
	}
	from, err := tx.Identity(ctx, fromID)
	if err != nil {
		return err
	}
	src, err := tx.Source(ctx, acct.SourceID)
	if err != nil {
		return err
	}
	others, err := tx.LinkedAccounts(ctx, toID)
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.SourceID == acct.SourceID {
			return fmt.Errorf("identity %s already holds an account of source %s: %w", toID, src.Name, ErrConflict)
		}
	}
	now := e.now()
	ch := e.newChange(now, acct.OrgID, ChannelAdmin, acct.SourceID, by.actor(), by.CorrelationID)
	acct.IdentityID = toID
	if err := tx.UpdateAccount(ctx, acct); err != nil {
		return err
	}
	// Group edges the source asserted move with the account.
	edges, err := tx.IdentityMemberships(ctx, fromID)
	if err != nil {
		return err
	}
	for _, m := range edges {
		if m.SourceID != acct.SourceID {
			continue
		}
		if err := tx.RemoveMembership(ctx, m.GroupID, fromID, m.SourceID); err != nil {
			return err
		}
		if err := tx.AddMembership(ctx, Membership{GroupID: m.GroupID, IdentityID: toID, SourceID: m.SourceID, GrantedAt: now}); err != nil {
			return err
		}
	}
	ch.add("account.unlinked", "account", acct.ID, fromID, map[string]any{"key": acct.Key, "to": toID})
	ch.add("account.linked", "account", acct.ID, toID, map[string]any{"key": acct.Key, "rule": "admin", "from": fromID})
	for _, id := range []*Identity{&from, &to} {
		org, err := tx.Organization(ctx, id.OrgID)
		if err != nil {
			return err
		}
		linked, err := tx.LinkedAccounts(ctx, id.ID)
		if err != nil {
			return err
		}
		if err := e.recomputeForced(ctx, tx, ch, org, id, linked); err != nil {
			return err
		}
	}
	if _, ok, err := tx.OrgMembership(ctx, acct.OrgID, toID); err != nil {
		return err
	} else if !ok {
		org, err := tx.Organization(ctx, acct.OrgID)
		if err != nil {
			return err
		}
		if err := e.syncOrgMembership(ctx, tx, ch, org, src, toID, nil, false, now); err != nil {
			return err
		}
	}
	return ch.flush(ctx, tx, false)
}

// ResolveConflict places a queued observation: on one of the candidates
// (choice is its identity ID) or on a new identity (choice "new").
func (e *Engine) ResolveConflict(ctx context.Context, by Admin, conflictID, choice string) (Result, error) {
	var res Result
	err := e.inTx(ctx, func(tx Tx) error {
		c, err := tx.Conflict(ctx, conflictID)
		if err != nil {
			return err
		}
		if c.Status != ConflictOpen {
			return fmt.Errorf("conflict %s is already %s: %w", c.ID, c.Status, ErrConflict)
		}
		forced := reconcile.MatchResult{Kind: reconcile.MatchNew}
		if choice != "new" {
			if _, err := tx.Identity(ctx, choice); err != nil {
				return fmt.Errorf("resolve conflict with identity %q: %w", choice, err)
			}
			if _, ok, err := tx.OrgMembership(ctx, c.OrgID, choice); err != nil {
				return err
			} else if !ok {
				return fmt.Errorf("identity %s is not a member of the conflict's organization: %w", choice, ErrForbidden)
			}
			forced = reconcile.MatchResult{Kind: reconcile.MatchRule, IdentityID: choice, Rule: "admin"}
		}
		now := e.now()
		c.Status, c.Resolution, c.ResolvedBy, c.ResolvedAt = ConflictResolved, choice, by.actor(), now
		if err := tx.UpdateConflict(ctx, c); err != nil {
			return err
		}
		ch := e.newChange(now, c.OrgID, ChannelAdmin, c.SourceID, by.actor(), by.CorrelationID)
		ch.add("conflict.resolved", "conflict", c.ID, "", map[string]any{"choice": choice, "key": c.Key})
		if err := ch.flush(ctx, tx, false); err != nil {
			return err
		}
		obs := c.Observation
		obs.Actor, obs.CorrelationID = by.actor(), by.CorrelationID
		res, err = e.applyTx(ctx, tx, obs, obs.ContentHash(), &forced, false)
		return err
	})
	return res, err
}

// DeleteIdentity removes a person and every account, membership and
// organization membership they have (a hard delete, e.g. SCIM DELETE of
// the last source). The audit log keeps their history.
func (e *Engine) DeleteIdentity(ctx context.Context, by Admin, identityID string) error {
	return e.inTx(ctx, func(tx Tx) error {
		ident, err := tx.Identity(ctx, identityID)
		if err != nil {
			return err
		}
		orgs, err := tx.OrgMemberships(ctx, identityID)
		if err != nil {
			return err
		}
		if err := tx.DeleteIdentity(ctx, identityID); err != nil {
			return err
		}
		ch := e.newChange(e.now(), ident.OrgID, ChannelAdmin, "", by.actor(), by.CorrelationID)
		for _, m := range orgs {
			ch.add("org.left", "organization", m.OrgID, identityID, nil)
		}
		ch.add("identity.deleted", "identity", identityID, identityID, map[string]any{"changes": reconcile.Diff(ident.Attrs, nil)})
		return ch.flush(ctx, tx, false)
	})
}

// NewSecret returns a fresh random token with a readable prefix, and the
// hash under which it is stored. The secret itself is never stored.
func NewSecret(prefix string) (secret, hash string) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	secret = prefix + "_" + base64.RawURLEncoding.EncodeToString(b)
	return secret, HashSecret(secret)
}

// HashSecret is the stored form of a token: SHA-256 (tokens are 256-bit
// random, so a slow hash adds nothing).
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateToken issues an admin API key (kind TokenAdmin; orgID empty for a
// deployment-wide key) or a SCIM directory token (kind TokenSCIM, sourceID
// set). The secret is returned once.
func (e *Engine) CreateToken(ctx context.Context, by Admin, t Token) (Token, string, error) {
	switch {
	case t.Kind != TokenAdmin && t.Kind != TokenSCIM:
		return Token{}, "", fmt.Errorf("token kind %q is not admin or scim: %w", t.Kind, ErrInvalid)
	case t.Kind == TokenSCIM && t.SourceID == "":
		return Token{}, "", fmt.Errorf("a SCIM token needs its directory (source): %w", ErrInvalid)
	case t.Scope == "":
		t.Scope = "admin"
	}
	if t.Scope != "admin" && t.Scope != "read" {
		return Token{}, "", fmt.Errorf("scope %q is not admin or read: %w", t.Scope, ErrInvalid)
	}
	prefix := "idsk"
	if t.Kind == TokenSCIM {
		prefix = "idss"
	}
	secret, hash := NewSecret(prefix)
	now := e.now()
	t.ID, t.Hash, t.Prefix, t.CreatedAt = newID(), hash, secret[:12], now
	err := e.inTx(ctx, func(tx Tx) error {
		if t.SourceID != "" {
			s, err := tx.Source(ctx, t.SourceID)
			if err != nil {
				return err
			}
			if s.Kind != KindSCIM && t.Kind == TokenSCIM {
				return fmt.Errorf("source %s is %s, not scim: %w", s.Name, s.Kind, ErrInvalid)
			}
			t.OrgID = s.OrgID
		} else if t.OrgID != "" {
			if _, err := tx.Organization(ctx, t.OrgID); err != nil {
				return err
			}
		}
		if err := tx.CreateToken(ctx, t); err != nil {
			return err
		}
		ch := e.newChange(now, t.OrgID, ChannelAdmin, t.SourceID, by.actor(), by.CorrelationID)
		ch.add("token.created", "token", t.ID, "", map[string]any{"kind": t.Kind, "name": t.Name, "scope": t.Scope, "prefix": t.Prefix})
		return ch.flush(ctx, tx, false)
	})
	if err != nil {
		return Token{}, "", err
	}
	return t, secret, nil
}

// RevokeToken revokes a token at once.
func (e *Engine) RevokeToken(ctx context.Context, by Admin, id string) error {
	return e.inTx(ctx, func(tx Tx) error {
		now := e.now()
		if err := tx.RevokeToken(ctx, id, now); err != nil {
			return err
		}
		ch := e.newChange(now, "", ChannelAdmin, "", by.actor(), by.CorrelationID)
		ch.add("token.revoked", "token", id, "", nil)
		return ch.flush(ctx, tx, false)
	})
}

// Authenticate returns the live token a secret belongs to.
func (e *Engine) Authenticate(ctx context.Context, secret string) (Token, error) {
	t, err := e.store.TokenByHash(ctx, HashSecret(secret))
	if err != nil {
		return Token{}, fmt.Errorf("unknown token: %w", ErrForbidden)
	}
	if !t.RevokedAt.IsZero() {
		return Token{}, fmt.Errorf("token %s was revoked: %w", t.Prefix, ErrForbidden)
	}
	return t, nil
}
