package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/idsync/idsync/reconcile"
)

// Metrics receives what the engine measures; cmd wires Prometheus to it.
type Metrics interface {
	ObserveApply(outcome string, d time.Duration)
	AuditEvents(n int)
	JobRun(kind, status string)
}

type noMetrics struct{}

func (noMetrics) ObserveApply(string, time.Duration) {}
func (noMetrics) AuditEvents(int)                    {}
func (noMetrics) JobRun(string, string)              {}

// Options tune an Engine; zero values are sensible.
type Options struct {
	// Now is the clock; tests pass a fixed one.
	Now func() time.Time
	// TouchInterval is how stale an identity's last login may get before an
	// unchanged login observation writes it again (default 1h). It keeps the
	// returning-login path free of writes.
	TouchInterval time.Duration
	// MaxRetries bounds reruns of a transaction that lost a race (default 10).
	MaxRetries int
	// SourceCacheTTL is how long a source read for the hot path is reused
	// (default 5s); this process drops its entry at once when it changes one.
	SourceCacheTTL time.Duration
	Logger         *slog.Logger
	Metrics        Metrics
	// CheckSourceConfig validates a source's Config for its kind when a
	// source is created or changed (the composition root wires each
	// connector's parser here); nil accepts any JSON.
	CheckSourceConfig func(kind SourceKind, config json.RawMessage) error
}

// Engine applies observations and admin actions to the identity graph.
type Engine struct {
	store Store
	opts  Options
	log   *slog.Logger

	mu      sync.Mutex
	sources map[string]cachedSource
	writes  writeGroup // concurrent writes sharing one transaction (writer.go)
}

type cachedSource struct {
	src Source
	org Organization
	at  time.Time
}

// New returns an Engine writing to store.
func New(store Store, opts Options) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TouchInterval == 0 {
		opts.TouchInterval = time.Hour
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 10
	}
	if opts.SourceCacheTTL == 0 {
		opts.SourceCacheTTL = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = noMetrics{}
	}
	return &Engine{store: store, opts: opts, log: opts.Logger, sources: map[string]cachedSource{}}
}

// Store returns the engine's store, for read-only callers.
func (e *Engine) Store() Store { return e.store }

func (e *Engine) now() time.Time { return e.opts.Now().UTC().Truncate(time.Microsecond) }

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// Outcomes of Apply.
const (
	OutcomeUnchanged = "unchanged"
	OutcomeCreated   = "created"
	OutcomeLinked    = "linked"
	OutcomeUpdated   = "updated"
	OutcomeRemoved   = "removed"
	OutcomeConflict  = "conflict"
)

// Result is what Apply did (or, for a plan, would do).
type Result struct {
	IdentityID string `json:"identityId,omitempty"`
	AccountID  string `json:"accountId,omitempty"`
	State      State  `json:"state,omitempty"`
	Outcome    string `json:"outcome"`
	ConflictID string `json:"conflictId,omitempty"`
	// Events are the audit events written (or, in a plan, to be written).
	Events []AuditEvent `json:"events,omitempty"`
}

// source returns a source and its organization for the apply path, cached
// for SourceCacheTTL: they change rarely, and this process drops its cache
// at once when it changes either. Other processes see a change within the
// TTL.
func (e *Engine) source(ctx context.Context, r Reader, id string) (Source, Organization, error) {
	now := time.Now()
	e.mu.Lock()
	c, ok := e.sources[id]
	e.mu.Unlock()
	if ok && now.Sub(c.at) < e.opts.SourceCacheTTL {
		return c.src, c.org, nil
	}
	// Inside a transaction r is the transaction: never wait for a second
	// pooled connection while holding one.
	s, err := r.Source(ctx, id)
	if err != nil {
		return Source{}, Organization{}, err
	}
	o, err := r.Organization(ctx, s.OrgID)
	if err != nil {
		return Source{}, Organization{}, fmt.Errorf("organization of source %q: %w", s.Name, err)
	}
	e.mu.Lock()
	e.sources[id] = cachedSource{src: s, org: o, at: now}
	e.mu.Unlock()
	return s, o, nil
}

// forgetSources drops the cache (after a source or organization changed).
func (e *Engine) forgetSources() {
	e.mu.Lock()
	clear(e.sources)
	e.mu.Unlock()
}

// Apply commits one observation in one transaction, or nothing. An
// observation identical to the last one applied for the same subject
// changes nothing and writes nothing (one indexed read).
func (e *Engine) Apply(ctx context.Context, obs Observation) (Result, error) {
	start := time.Now()
	res, err := e.apply(ctx, obs, false)
	outcome := res.Outcome
	if err != nil {
		outcome = "error"
	}
	e.opts.Metrics.ObserveApply(outcome, time.Since(start))
	return res, err
}

// Plan runs the same code as Apply in a transaction that is always rolled
// back, and returns what Apply would have done.
func (e *Engine) Plan(ctx context.Context, obs Observation) (Result, error) {
	return e.apply(ctx, obs, true)
}

var errRollback = errors.New("dry run: roll back")

func (e *Engine) apply(ctx context.Context, obs Observation, dryRun bool) (Result, error) {
	if err := obs.Validate(); err != nil {
		return Result{Outcome: "invalid"}, err
	}
	src, _, err := e.source(ctx, e.store, obs.SourceID)
	if err != nil {
		return Result{}, fmt.Errorf("apply to source %q: %w", obs.SourceID, err)
	}
	if !src.Enabled {
		return Result{}, fmt.Errorf("source %q (%s) is disabled: %w", src.Name, src.ID, ErrForbidden)
	}
	hash := obs.ContentHash()
	if !dryRun {
		head, known, err := e.store.AccountHead(ctx, src.ID, obs.Key)
		if err != nil {
			return Result{}, fmt.Errorf("apply: read account: %w", err)
		}
		if known && head.Hash == hash && !e.needsTouch(obs, head.LastLoginAt) {
			return Result{IdentityID: head.IdentityID, AccountID: head.AccountID,
				State: head.IdentityState, Outcome: OutcomeUnchanged}, nil
		}
		var res Result
		err = e.WriteSource(ctx, src.ID, obs.Actor, obs.CorrelationID, func(ctx context.Context, w *SourceWriter) error {
			// A key the read above found no account for is not read again,
			// and a person it creates joins the transaction's newcomers;
			// should another write have linked the key meanwhile, the
			// write finds out and reruns reading it (see applyHinted).
			var h *pageHint
			if !known && !w.rerun {
				h = &pageHint{absent: true, page: w.page}
			} else if err := w.flushNews(ctx); err != nil {
				return err
			}
			var err error
			res, err = e.applyHinted(ctx, w.Tx, obs, hash, nil, false, w.batch, h)
			return err
		})
		return res, err
	}
	var res Result
	err = e.inTx(ctx, func(tx Tx) error {
		var err error
		if res, err = e.applyTx(ctx, tx, obs, hash, nil, true); err != nil {
			return err
		}
		return errRollback
	})
	if errors.Is(err, errRollback) {
		err = nil
	}
	return res, err
}

func (e *Engine) needsTouch(obs Observation, last time.Time) bool {
	if !obs.Login {
		return false
	}
	at := obs.At
	if at.IsZero() {
		at = e.now()
	}
	return last.IsZero() || at.Sub(last) >= e.opts.TouchInterval
}

// inTx runs fn in a transaction, rerunning it when it lost a race.
func (e *Engine) inTx(ctx context.Context, fn func(Tx) error) error {
	var err error
	for attempt := 0; attempt <= e.opts.MaxRetries; attempt++ {
		err = e.store.InTx(ctx, fn)
		if !errors.Is(err, ErrRetry) {
			return err
		}
		if attempt > 1 {
			d := time.Duration(attempt*attempt) * time.Millisecond
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
	}
	return fmt.Errorf("gave up after %d attempts: %w", e.opts.MaxRetries+1, errors.Join(err, ErrConflict))
}

// change collects the audit events of one transaction.
type change struct {
	e       *Engine
	at      time.Time
	org     string
	channel string
	source  string
	actor   string
	corr    string
	events  []AuditEvent
	// batch, when set, collects the events for one append at the end of a
	// multi-observation transaction (a snapshot page).
	batch *[]AuditEvent
}

func (e *Engine) newChange(at time.Time, org, channel, source, actor, corr string) *change {
	if actor == "" {
		actor = "source:" + source
		if source == "" {
			actor = "system"
		}
	}
	// A new person is 5–6 events: room for them at once, not by doubling.
	return &change{e: e, at: at, org: org, channel: channel, source: source, actor: actor, corr: corr,
		events: make([]AuditEvent, 0, 6)}
}

func (c *change) add(action, subjectType, subjectID, identityID string, details any) {
	ev := AuditEvent{ID: newID(), At: c.at, OrgID: c.org, Channel: c.channel, SourceID: c.source,
		Actor: c.actor, Action: action, SubjectType: subjectType, SubjectID: subjectID,
		IdentityID: identityID, CorrelationID: c.corr}
	if details != nil {
		ev.Changes = mustJSON(details)
	}
	c.events = append(c.events, ev)
}

func (c *change) flush(ctx context.Context, tx Tx, dryRun bool) error {
	if len(c.events) == 0 || dryRun {
		return nil
	}
	if c.batch != nil {
		*c.batch = append(*c.batch, c.events...)
		return nil
	}
	if err := tx.AppendAudit(ctx, c.events); err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	c.e.opts.Metrics.AuditEvents(len(c.events))
	return nil
}

// applyTx is the body of Apply. forced, when set, replaces matching (a
// conflict being resolved).
func (e *Engine) applyTx(ctx context.Context, tx Tx, obs Observation, hash string, forced *reconcile.MatchResult, dryRun bool) (Result, error) {
	return e.applyBatched(ctx, tx, obs, hash, forced, dryRun, nil)
}

func (e *Engine) applyBatched(ctx context.Context, tx Tx, obs Observation, hash string, forced *reconcile.MatchResult, dryRun bool, batch *[]AuditEvent) (Result, error) {
	return e.applyHinted(ctx, tx, obs, hash, forced, dryRun, batch, nil)
}

// applyHinted is applyBatched for one observation of a snapshot page, which
// shares work with the page's other observations through h (nil outside a
// page): see pageHint.
func (e *Engine) applyHinted(ctx context.Context, tx Tx, obs Observation, hash string, forced *reconcile.MatchResult, dryRun bool, batch *[]AuditEvent, h *pageHint) (Result, error) {
	src, org, err := e.source(ctx, tx, obs.SourceID)
	if err != nil {
		return Result{}, fmt.Errorf("source %q: %w", obs.SourceID, err)
	}
	now := obs.At.UTC().Truncate(time.Microsecond)
	if obs.At.IsZero() {
		now = e.now()
	}
	ch := e.newChange(now, src.OrgID, src.Kind.Channel(), src.ID, obs.Actor, obs.CorrelationID)
	ch.batch = batch

	var (
		acct  Account
		found bool
	)
	var news *newcomers // where a person this creates is buffered
	if h != nil && h.absent {
		if h.page != nil {
			news = h.page.news
		}
	} else {
		if acct, found, err = tx.AccountByKey(ctx, src.ID, obs.Key); err != nil {
			return Result{}, err
		}
	}
	if found && acct.Hash == hash {
		ident, err := tx.Identity(ctx, acct.IdentityID)
		if err != nil {
			return Result{}, err
		}
		res := Result{IdentityID: ident.ID, AccountID: acct.ID, State: ident.State, Outcome: OutcomeUnchanged}
		if e.needsTouch(obs, ident.LastLoginAt) {
			if err := e.touchLogin(ctx, tx, ch, &ident, acct.ID, now, dryRun); err != nil {
				return Result{}, err
			}
		}
		res.Events = ch.events
		return res, nil
	}

	var ident Identity
	wtx := tx // a newcomer's inserts go through the buffer
	isNewIdentity, isNewAccount := false, !found
	outcome := OutcomeUpdated
	if !found {
		if obs.Removed {
			return Result{}, fmt.Errorf("source %q holds no subject %q: %w", src.Name, obs.Key, ErrNotFound)
		}
		var m reconcile.MatchResult
		if forced != nil {
			m = *forced
		} else {
			c, open, err := tx.OpenConflictByKey(ctx, src.ID, obs.Key)
			if err != nil {
				return Result{}, err
			}
			if open {
				// Already queued: keep the newest statement for the resolver.
				c.Observation = obs
				if err := tx.UpdateConflict(ctx, c); err != nil {
					return Result{}, err
				}
				return Result{Outcome: OutcomeConflict, ConflictID: c.ID}, nil
			}
			if m, err = e.match(ctx, tx, org, src, obs, h); err != nil {
				return Result{}, err
			}
		}
		if m.Kind != reconcile.MatchNew {
			if err := news.flush(ctx, tx); err != nil {
				return Result{}, err
			}
			if h != nil && h.absent {
				// The key was not read in this transaction: before linking
				// or queueing a conflict, make sure no account holds it now
				// (another writer may have linked it since); if one does,
				// rerun reading it.
				if _, held, err := tx.AccountByKey(ctx, src.ID, obs.Key); err != nil {
					return Result{}, err
				} else if held {
					return Result{}, fmt.Errorf("source %s key %q was linked meanwhile: %w", src.Name, obs.Key, ErrRetry)
				}
			}
		}
		switch m.Kind {
		case reconcile.MatchConflict:
			c := Conflict{ID: newID(), OrgID: org.ID, SourceID: src.ID, Key: obs.Key, Rule: m.Rule,
				Reason: m.Reason, Candidates: m.Candidates, Observation: obs, Status: ConflictOpen, CreatedAt: now}
			if err := tx.InsertConflict(ctx, c); err != nil {
				return Result{}, err
			}
			ch.add("conflict.opened", "conflict", c.ID, "", map[string]any{
				"key": obs.Key, "rule": m.Rule, "reason": m.Reason, "candidates": m.Candidates})
			if err := ch.flush(ctx, tx, dryRun); err != nil {
				return Result{}, err
			}
			return Result{Outcome: OutcomeConflict, ConflictID: c.ID, Events: ch.events}, nil
		case reconcile.MatchNew:
			isNewIdentity = true
			outcome = OutcomeCreated
			if news != nil {
				wtx = bufferedTx{Tx: tx, n: news}
			}
			ident = Identity{ID: newID(), OrgID: org.ID, State: reconcile.StateActive, CreatedAt: now}
		default:
			outcome = OutcomeLinked
			if ident, err = tx.Identity(ctx, m.IdentityID); err != nil {
				return Result{}, fmt.Errorf("matched identity: %w", err)
			}
		}
		acct = Account{ID: newID(), SourceID: src.ID, OrgID: src.OrgID, IdentityID: ident.ID,
			Key: obs.Key, FirstSeen: now, Active: true}
		ch.add("account.linked", "account", acct.ID, ident.ID, linkedDetail{Key: obs.Key, Rule: string(m.Kind) + ruleSuffix(m.Rule)})
	} else if ident, err = tx.Identity(ctx, acct.IdentityID); err != nil {
		return Result{}, err
	}

	before := ident.Attrs // the golden record before this observation
	// The account now says what the observation says.
	prev := acct
	// A removal that carries no attributes (a sweep, a SCIM DELETE) says
	// only that the source dropped the subject: the account keeps what it
	// said last, so the person keeps their last known record.
	if !obs.Removed || len(obs.Attrs) > 0 {
		acct.Attrs = cloneAttrs(obs.Attrs)
		acct.Raw = obs.Raw
		acct.EmailVerified = obs.EmailVerified || src.TrustEmails
	}
	acct.Hash = hash
	acct.Active = !obs.Inactive && !obs.Removed
	acct.Removed = obs.Removed
	acct.LastSeen = now
	if obs.Groups != nil {
		acct.Groups = slices.Clone(obs.Groups)
	}
	if isNewAccount || !attrsEqual(prev.Attrs, acct.Attrs) {
		acct.ChangedAt = now
	}
	if !isNewAccount {
		switch {
		case acct.Removed && !prev.Removed:
			outcome = OutcomeRemoved
			ch.add("account.removed", "account", acct.ID, ident.ID, map[string]any{"key": acct.Key})
		case !acct.Removed && prev.Removed:
			ch.add("account.restored", "account", acct.ID, ident.ID, map[string]any{"key": acct.Key})
		case acct.Active != prev.Active && acct.Active:
			ch.add("account.activated", "account", acct.ID, ident.ID, nil)
		case acct.Active != prev.Active:
			ch.add("account.deactivated", "account", acct.ID, ident.ID, nil)
		}
	}

	// Merge every account of the person, this one as it is now.
	var linked []LinkedAccount
	if !isNewIdentity {
		if linked, err = tx.LinkedAccounts(ctx, ident.ID); err != nil {
			return Result{}, err
		}
	}
	linked = replaceAccount(linked, LinkedAccount{Account: acct, SourceKind: src.Kind, SourceName: src.Name,
		Priority: src.Priority, Authoritative: src.Authoritative, Owns: src.Owns})

	// A new identity's row must exist before its account references it.
	if !isNewAccount {
		if err := tx.UpdateAccount(ctx, acct); err != nil {
			return Result{}, err
		}
	} else if !isNewIdentity {
		if err := tx.InsertAccount(ctx, acct); err != nil {
			return Result{}, err
		}
	}
	if obs.Login {
		if ident.FirstLoginAt.IsZero() {
			ident.FirstLoginAt = now
		}
		ident.LastLoginAt = now
	}
	if err := e.recompute(ctx, wtx, ch, org, &ident, linked, isNewIdentity, obs.Login); err != nil {
		return Result{}, err
	}
	if isNewIdentity {
		if err := wtx.InsertAccount(ctx, acct); err != nil {
			return Result{}, err
		}
	}
	if isNewAccount || obs.Roles != nil {
		if err := e.syncOrgMembership(ctx, wtx, ch, org, src, ident.ID, obs.Roles, isNewIdentity, now); err != nil {
			return Result{}, err
		}
	}
	if obs.Groups != nil || (acct.Removed && !prev.Removed) {
		want := obs.Groups
		mode := obs.GroupMode
		if acct.Removed {
			want, mode = nil, GroupsReplace
		}
		if err := e.syncGroups(ctx, wtx, ch, org.ID, src.ID, ident.ID, want, mode, isNewIdentity, now); err != nil {
			return Result{}, err
		}
	}
	if err := ch.flush(ctx, tx, dryRun); err != nil {
		return Result{}, err
	}
	if h != nil && h.page != nil {
		h.page.touch(before, ident.Attrs)
	}
	return Result{IdentityID: ident.ID, AccountID: acct.ID, State: ident.State, Outcome: outcome, Events: ch.events}, nil
}

func ruleSuffix(rule string) string {
	if rule == "" {
		return ""
	}
	return ":" + rule
}

// matchValues are the values of obs the organization's rules match on.
func matchValues(org Organization, obs Observation) map[string]string {
	values := map[string]string{}
	for _, rule := range org.Settings.Rules() {
		if v := obs.Attrs[rule]; v != "" {
			values[rule] = v
		}
	}
	return values
}

// match finds the candidates of obs: those its page read ahead when no
// person the page wrote could change them, else by a query (after writing
// the page's buffered people who could be among them).
func (e *Engine) match(ctx context.Context, tx Tx, org Organization, src Source, obs Observation, h *pageHint) (reconcile.MatchResult, error) {
	in := reconcile.MatchInput{Attrs: obs.Attrs, EmailVerified: obs.EmailVerified || src.TrustEmails,
		Rules: org.Settings.Rules()}
	values := matchValues(org, obs)
	if len(values) > 0 && h != nil && h.candidates != nil && !h.page.touchedAny(values) {
		in.Candidates = h.candidates
	} else if len(values) > 0 {
		if h != nil && h.page != nil && h.page.news.mayMatch(values) {
			if err := h.page.news.flush(ctx, tx); err != nil {
				return reconcile.MatchResult{}, err
			}
		}
		var err error
		if in.Candidates, err = tx.FindCandidates(ctx, org.ID, src.ID, values); err != nil {
			return reconcile.MatchResult{}, fmt.Errorf("match: %w", err)
		}
	}
	return reconcile.Match(in), nil
}

// recompute merges the accounts of ident, derives its state, and writes the
// identity (inserting it when isNew) with the events describing the change.
func (e *Engine) recompute(ctx context.Context, tx Tx, ch *change, org Organization, ident *Identity, linked []LinkedAccount, isNew, login bool) error {
	racc := toReconcile(linked)
	g := reconcile.Merge(racc, org.Settings.Priority)
	state := reconcile.Lifecycle(ident.State, ident.Suspended, racc)
	if isNew {
		ident.Attrs, ident.Provenance, ident.State = g.Attrs, g.Provenance, state
		ident.Version, ident.UpdatedAt = 1, ch.at
		if err := tx.InsertIdentity(ctx, *ident); err != nil {
			return err
		}
		ch.add("identity.created", "identity", ident.ID, ident.ID, createdDetail{Changes: reconcile.Diff(nil, g.Attrs), State: state})
		if login {
			ch.add("identity.first_login", "identity", ident.ID, ident.ID, nil)
		}
		return nil
	}
	diff := reconcile.Diff(ident.Attrs, g.Attrs)
	provChanged := !maps.Equal(ident.Provenance, g.Provenance)
	firstLogin := login && ident.FirstLoginAt.Equal(ch.at)
	if len(diff) == 0 && state == ident.State && !provChanged && !login {
		return nil
	}
	from := ident.State
	prevVersion := ident.Version
	ident.Attrs, ident.Provenance, ident.State = g.Attrs, g.Provenance, state
	ident.Version++
	ident.UpdatedAt = ch.at
	if err := tx.UpdateIdentity(ctx, *ident, prevVersion); err != nil {
		return err
	}
	if len(diff) > 0 {
		ch.add("identity.updated", "identity", ident.ID, ident.ID, changesDetail{Changes: diff})
	}
	if t := reconcile.Transition(from, state); t != "" {
		ch.add(t, "identity", ident.ID, ident.ID, map[string]any{
			"changes": []reconcile.Change{{Field: "state", Before: string(from), After: string(state)}}})
	}
	if firstLogin {
		ch.add("identity.first_login", "identity", ident.ID, ident.ID, nil)
	}
	return nil
}

func (e *Engine) touchLogin(ctx context.Context, tx Tx, ch *change, ident *Identity, accountID string, at time.Time, dryRun bool) error {
	first := ident.FirstLoginAt.IsZero()
	if err := tx.TouchLogin(ctx, ident.ID, accountID, at); err != nil {
		return err
	}
	ident.LastLoginAt = at
	if first {
		ident.FirstLoginAt = at
		ch.add("identity.first_login", "identity", ident.ID, ident.ID, nil)
	}
	return ch.flush(ctx, tx, dryRun)
}

func grantedVia(k SourceKind) string {
	switch k {
	case KindSAML, KindOIDC:
		return "jit"
	default:
		return string(k)
	}
}

// syncOrgMembership joins the identity to the organization (first time) and
// sets its roles when the source states them.
func (e *Engine) syncOrgMembership(ctx context.Context, tx Tx, ch *change, org Organization, src Source, identityID string, roles []string, isNewIdentity bool, at time.Time) error {
	var m OrgMembership
	ok := false
	if !isNewIdentity {
		var err error
		if m, ok, err = tx.OrgMembership(ctx, org.ID, identityID); err != nil {
			return err
		}
	}
	if !ok {
		m = OrgMembership{OrgID: org.ID, IdentityID: identityID, Roles: roles, GrantedVia: grantedVia(src.Kind),
			SourceID: src.ID, CreatedAt: at}
		if len(m.Roles) == 0 && org.DefaultRole != "" {
			m.Roles = []string{org.DefaultRole}
		}
		if err := tx.UpsertOrgMembership(ctx, m); err != nil {
			return err
		}
		ch.add("org.joined", "organization", org.ID, identityID, joinedDetail{Roles: m.Roles, Via: m.GrantedVia})
		return nil
	}
	if roles == nil {
		return nil
	}
	want := slices.Sorted(slices.Values(roles))
	have := slices.Sorted(slices.Values(m.Roles))
	if slices.Equal(want, have) {
		return nil
	}
	m.Roles = want
	if err := tx.UpsertOrgMembership(ctx, m); err != nil {
		return err
	}
	ch.add("org.roles_changed", "organization", org.ID, identityID, map[string]any{"changes": []reconcile.Change{
		{Field: "roles", Before: strings.Join(have, ","), After: strings.Join(want, ",")}}})
	return nil
}

// syncGroups makes the source's membership edges of the identity equal want
// (GroupsReplace) or grants want (GroupsAdd). A membership is granted when
// its first source asserts it and revoked when its last source stops.
func (e *Engine) syncGroups(ctx context.Context, tx Tx, ch *change, orgID, sourceID, identityID string, want []string, mode GroupMode, isNew bool, at time.Time) error {
	var edges []Membership
	if !isNew {
		var err error
		if edges, err = tx.IdentityMemberships(ctx, identityID); err != nil {
			return err
		}
	}
	mine := map[string]Membership{} // lower name → this source's edge
	others := map[string]int{}      // group ID → edges of other sources
	for _, m := range edges {
		if m.SourceID == sourceID {
			mine[strings.ToLower(m.GroupName)] = m
		} else {
			others[m.GroupID]++
		}
	}
	wanted := map[string]bool{}
	for _, name := range want {
		name = strings.TrimSpace(name)
		key := strings.ToLower(name)
		if wanted[key] {
			continue
		}
		wanted[key] = true
		if _, ok := mine[key]; ok {
			continue
		}
		g, created, err := tx.EnsureGroup(ctx, orgID, name, at)
		if err != nil {
			return err
		}
		if created {
			ch.add("group.created", "group", g.ID, "", nameDetail{Name: g.Name})
		}
		if err := tx.AddMembership(ctx, Membership{GroupID: g.ID, IdentityID: identityID, SourceID: sourceID, GrantedAt: at}); err != nil {
			return err
		}
		if others[g.ID] == 0 {
			ch.add("membership.granted", "group", g.ID, identityID, groupDetail{Group: g.Name})
		}
	}
	if mode == GroupsAdd {
		return nil
	}
	for key, m := range mine {
		if wanted[key] {
			continue
		}
		if err := tx.RemoveMembership(ctx, m.GroupID, identityID, sourceID); err != nil {
			return err
		}
		if others[m.GroupID] == 0 {
			ch.add("membership.revoked", "group", m.GroupID, identityID, groupDetail{Group: m.GroupName})
		}
	}
	return nil
}

func replaceAccount(list []LinkedAccount, a LinkedAccount) []LinkedAccount {
	for i := range list {
		if list[i].ID == a.ID {
			list[i] = a
			return list
		}
	}
	return append(list, a)
}

func cloneAttrs(a Attrs) Attrs {
	out := make(Attrs, len(a))
	for k, v := range a {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

func attrsEqual(a, b Attrs) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("engine: marshal %T: %v", v, err))
	}
	return b
}

// NewID returns a new time-ordered ID (UUIDv7).
func NewID() string { return newID() }

// MatchableAttrs are the attributes a matching rule may name.
func MatchableAttrs() []string {
	return []string{reconcile.AttrEmail, reconcile.AttrUserName, reconcile.AttrExternalID, reconcile.AttrEmployeeNumber}
}

// Details of the most frequent audit events, as structs (their JSON is the
// same as the equivalent maps', keys in the same order, at a fraction of
// the encoding cost on the apply path).
type (
	linkedDetail struct {
		Key  string `json:"key"`
		Rule string `json:"rule"`
	}
	createdDetail struct {
		Changes []reconcile.Change `json:"changes"`
		State   State              `json:"state"`
	}
	changesDetail struct {
		Changes []reconcile.Change `json:"changes"`
	}
	joinedDetail struct {
		Roles []string `json:"roles"`
		Via   string   `json:"via"`
	}
	groupDetail struct {
		Group string `json:"group"`
	}
	nameDetail struct {
		Name string `json:"name"`
	}
)
