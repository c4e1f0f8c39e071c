package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/idsync/idsync/reconcile"
)

// SourceWriter makes the changes of one request of a push source (a SCIM
// directory) in one transaction: observations, single membership edges and
// the deletion of a person no other source holds, all audited on the
// source's channel. Package scim uses it so that its own rows (the stored
// SCIM documents) commit or roll back together with the graph.
type SourceWriter struct {
	// Tx is the transaction; the storage transaction also implements
	// SCIMTx.
	Tx  Tx
	Src Source
	Now time.Time

	e   *Engine
	org Organization
	ch  *change
	// batch, when set, collects the audit events of a grouped transaction
	// for one append at its end.
	batch *[]AuditEvent
	// rerun: this write runs again after a failed attempt, so hints taken
	// before the first attempt are not trusted (see Prepared).
	rerun bool
	// page, in a grouped transaction, buffers the people that calls with
	// freshly minted keys create, written together at its end (see
	// newcomers); nil otherwise.
	page *page
}

// flushNews writes the people buffered by earlier calls of the grouped
// transaction: anything but a newcomer's create may read them.
func (w *SourceWriter) flushNews(ctx context.Context) error {
	if w.page == nil {
		return nil
	}
	return w.page.news.flush(ctx, w.Tx)
}

// WriteSource runs fn in one transaction of the source's (rerun from the
// start when it lost a race, so fn must not keep state between runs).
//
// On a store whose writers take turns (SQLite), concurrent calls are
// grouped: one transaction runs several fns, each inside its own savepoint
// (an error rolls back that fn's writes only), and one commit makes them
// durable — many SCIM clients then share the single writer instead of
// queueing one commit each.
func (e *Engine) WriteSource(ctx context.Context, sourceID, actor, corr string, fn func(ctx context.Context, w *SourceWriter) error) error {
	src, org, err := e.source(ctx, e.store, sourceID)
	if err != nil {
		return fmt.Errorf("source %q: %w", sourceID, err)
	}
	if !src.Enabled {
		return fmt.Errorf("source %q (%s) is disabled: %w", src.Name, src.ID, ErrForbidden)
	}
	r := &writeReq{ctx: ctx, src: src, org: org, actor: actor, corr: corr, fn: fn}
	if sw, ok := e.store.(SerializedWriter); ok && sw.SerializedWrites() {
		return e.writes.submit(e, r)
	}
	return e.writeOne(r)
}

// writeReq is one WriteSource call.
type writeReq struct {
	ctx   context.Context
	src   Source
	org   Organization
	actor string
	corr  string
	fn    func(ctx context.Context, w *SourceWriter) error
	err   error
	done  chan struct{}
	rerun bool // run again after a failed attempt
}

func (e *Engine) newWriter(tx Tx, r *writeReq) *SourceWriter {
	w := &SourceWriter{Tx: tx, Src: r.src, Now: e.now(), e: e, org: r.org}
	w.ch = e.newChange(w.Now, r.src.OrgID, r.src.Kind.Channel(), r.src.ID, r.actor, r.corr)
	return w
}

// writeOne runs one request in its own transaction, with retries.
// A person it creates is buffered and written with one multi-row insert a
// table (on PostgreSQL, where every statement is a round trip, a first
// login then makes two fewer).
func (e *Engine) writeOne(r *writeReq) error {
	attempt := 0
	return e.inTx(r.ctx, func(tx Tx) error {
		w := e.newWriter(tx, r)
		w.rerun = r.rerun || attempt > 0
		w.page = &page{news: newNewcomers()}
		attempt++
		if err := r.fn(r.ctx, w); err != nil {
			return err
		}
		if err := w.page.news.flush(r.ctx, tx); err != nil {
			return err
		}
		return w.ch.flush(r.ctx, tx, false)
	})
}

// Group commit. On a store whose writers take turns anyway (SQLite: one
// write lock), concurrent writes — Engine.Apply and WriteSource alike — are
// gathered into one transaction: each runs inside its own savepoint (an
// error rolls back that write only), the audit events of the batch are
// appended once, and one commit makes them all durable. Callers still get
// their own result or error. This is what lets many concurrent SCIM
// clients or logins share the single SQLite writer instead of queueing one
// commit each. PostgreSQL runs one transaction per write (writers there
// proceed in parallel).

// SerializedWriter is implemented by stores whose write transactions run
// one at a time; the engine then groups concurrent writes.
type SerializedWriter interface {
	SerializedWrites() bool
}

// savepointer is what grouping needs of a transaction (storage implements
// it).
type savepointer interface {
	Savepoint(ctx context.Context, name string) error
	RollbackTo(ctx context.Context, name string) error
	Release(ctx context.Context, name string) error
}

// writeGroup gathers concurrent WriteSource calls of one engine. There is
// no background goroutine: the caller that finds no batch running leads
// one, and hands leadership on if more calls arrived meanwhile.
type writeGroup struct {
	mu      sync.Mutex
	pending []*writeReq
	leading bool
	// last is the recent batch size (a decaying peak); arrived, when
	// set, is closed by the next call to arrive (see awaitJoin).
	last    int
	arrived chan struct{}
}

const maxWriteGroup = 64

// joinWait bounds how long a batch waits, in all, for calls to join it
// (see awaitJoin).
const joinWait = 2 * time.Millisecond

func (g *writeGroup) submit(e *Engine, r *writeReq) error {
	r.done = make(chan struct{})
	g.mu.Lock()
	g.pending = append(g.pending, r)
	lead := !g.leading
	g.leading = true
	if g.arrived != nil {
		close(g.arrived) // a batch is waiting for company
		g.arrived = nil
	}
	g.mu.Unlock()
	if lead {
		g.lead(e)
	}
	<-r.done
	return r.err
}

// lead runs one batch, then passes leadership to a new goroutine when
// calls are waiting, so that no caller waits for batches after its own.
func (g *writeGroup) lead(e *Engine) {
	g.mu.Lock()
	n := min(len(g.pending), maxWriteGroup)
	batch := append([]*writeReq(nil), g.pending[:n]...)
	g.pending = append(g.pending[:0], g.pending[n:]...)
	g.mu.Unlock()
	e.runWriteBatch(g, batch)
	g.mu.Lock()
	if len(g.pending) > 0 {
		go g.lead(e)
	} else {
		g.leading = false
	}
	g.mu.Unlock()
}

// join moves calls that arrived meanwhile into a running batch, up to
// maxWriteGroup in all; false when none are waiting.
func (g *writeGroup) join(batch *[]*writeReq) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := min(len(g.pending), maxWriteGroup-len(*batch))
	if n <= 0 {
		return false
	}
	*batch = append(*batch, g.pending[:n]...)
	g.pending = append(g.pending[:0], g.pending[n:]...)
	return true
}

// awaitJoin is join for a batch about to commit much smaller than the
// previous one: its writers are then most likely between two requests
// (answering their clients, reading the next one), and committing now
// would leave them to queue behind this commit for one of their own. So
// it waits for the next call to arrive, until the deadline. A lone writer
// (previous batch under 4) never waits. PostgreSQL's commit_delay and
// MySQL's binlog_group_commit_sync_delay make the same trade.
func (g *writeGroup) awaitJoin(batch *[]*writeReq, deadline time.Time) bool {
	g.mu.Lock()
	if len(g.pending) == 0 && (g.last < 4 || len(*batch) >= g.last/2 || !time.Now().Before(deadline)) {
		g.mu.Unlock()
		return false
	}
	var ch chan struct{}
	if len(g.pending) == 0 {
		ch = make(chan struct{})
		g.arrived = ch
	}
	g.mu.Unlock()
	if ch != nil {
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ch:
		case <-t.C:
		}
		t.Stop()
		g.mu.Lock()
		if g.arrived == ch {
			g.arrived = nil
		}
		g.mu.Unlock()
	}
	return g.join(batch)
}

// runWriteBatch runs a batch in one transaction. Calls that arrive while it
// runs join it (up to maxWriteGroup) instead of waiting for a transaction
// of their own: a lone call is not committed alone while others queue
// behind its commit, and the commit — most of the cost of a small write —
// is shared by as many as were ready.
func (e *Engine) runWriteBatch(g *writeGroup, batch []*writeReq) {
	live := batch[:0:0]
	// A panic in one fn must not leave callers waiting forever or the group
	// without a leader: every caller of the batch gets an error.
	defer func() {
		if p := recover(); p != nil {
			for _, r := range append(batch, live...) {
				select {
				case <-r.done:
				default:
					r.err = fmt.Errorf("write of source %s panicked: %v", r.src.ID, p)
					close(r.done)
				}
			}
		}
	}()
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			close(r.done)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	bg := context.Background()
	var (
		events  []AuditEvent
		bareErr error // the error of a first call that ran alone
	)
	err := e.store.InTx(bg, func(tx Tx) error {
		sp, ok := tx.(savepointer)
		if !ok {
			return fmt.Errorf("transaction has no savepoints: %w", ErrRetry)
		}
		if events == nil {
			events = make([]AuditEvent, 0, 6*len(live)) // a new person is 3–6 events
		}
		events = events[:0]
		pg := &page{news: newNewcomers()}
		deadline := time.Now().Add(joinWait)
		for i := 0; i < len(live) || g.join(&live) || g.awaitJoin(&live, deadline); i++ {
			r := live[i]
			r.err = nil
			if i > 0 && r.ctx.Err() != nil { // joined after giving up
				r.err = r.ctx.Err()
				continue
			}
			ctx := context.WithoutCancel(r.ctx)
			// A call that starts the transaction alone runs bare: if it
			// fails, rolling the transaction back undoes exactly it. The
			// others run in a savepoint each, so that an error undoes that
			// call only.
			bare := i == 0 && len(live) == 1
			if !bare {
				if err := sp.Savepoint(bg, "scimw"); err != nil {
					return err
				}
			}
			mark := len(events)
			pg.news.begin()
			w := e.newWriter(tx, r)
			w.batch, w.ch.batch, w.page = &events, &events, pg
			err := r.fn(ctx, w)
			if err == nil {
				err = w.ch.flush(ctx, tx, false)
			}
			if err != nil && bare {
				bareErr = err
				return err
			}
			if err != nil {
				if rerr := sp.RollbackTo(bg, "scimw"); rerr != nil {
					return rerr
				}
				if !pg.news.undo() {
					return fmt.Errorf("a failed write of the batch took others' buffered rows with it: %w", ErrRetry)
				}
				events = events[:mark]
				r.err = err
			}
			if !bare {
				if err := sp.Release(bg, "scimw"); err != nil {
					return err
				}
			}
		}
		if err := pg.news.flush(bg, tx); err != nil {
			return err
		}
		if len(events) == 0 {
			return nil
		}
		return tx.AppendAudit(bg, events)
	})
	if err == nil && len(events) > 0 {
		e.opts.Metrics.AuditEvents(len(events))
	}
	g.mu.Lock()
	// A decaying peak: one small batch after large ones (its writers were
	// slow to come back) does not stop the next from waiting for them.
	g.last = max(len(live), g.last*3/4)
	g.mu.Unlock()
	for i, r := range live {
		switch {
		case i == 0 && bareErr != nil && !errors.Is(bareErr, ErrRetry):
			r.err = bareErr // it ran alone: the rollback undid it, and only it
		case err != nil || errors.Is(r.err, ErrRetry):
			r.rerun = true
			r.err = e.writeOne(r) // the batch failed as a whole, or this one lost a race
		}
		close(r.done)
	}
}

// Apply applies an observation of the writer's source in its transaction
// (see Engine.Apply).
func (w *SourceWriter) Apply(ctx context.Context, obs Observation) (Result, error) {
	p, err := w.Src.Prepare(obs, false)
	if err != nil {
		return Result{Outcome: "invalid"}, err
	}
	return w.ApplyPrepared(ctx, p)
}

// Prepared is an observation validated and hashed ahead of its
// transaction (see Source.Prepare), so that the shared writer spends no
// time on it.
type Prepared struct {
	obs  Observation
	hash string
	// newKey: the caller minted the key just now (a SCIM resource ID), so
	// no account holds it and it is not looked up.
	newKey bool
}

// Prepare validates and hashes obs as an observation of s. newKey says
// the caller minted obs.Key just now, so no account can hold it yet: the
// apply then skips looking it up (were it wrong, the insert would fail on
// the unique key and the write would rerun).
func (s Source) Prepare(obs Observation, newKey bool) (Prepared, error) {
	obs.SourceID = s.ID
	if err := obs.Validate(); err != nil {
		return Prepared{}, err
	}
	return Prepared{obs: obs, hash: obs.ContentHash(), newKey: newKey}, nil
}

// ApplyPrepared is Apply for an observation prepared outside the
// transaction.
func (w *SourceWriter) ApplyPrepared(ctx context.Context, p Prepared) (Result, error) {
	obs := p.obs
	if obs.SourceID != w.Src.ID {
		return Result{Outcome: "invalid"}, fmt.Errorf("observation prepared for source %s applied to %s: %w", obs.SourceID, w.Src.ID, ErrInvalid)
	}
	if obs.Actor == "" {
		obs.Actor = w.ch.actor
	}
	if obs.CorrelationID == "" {
		obs.CorrelationID = w.ch.corr
	}
	if obs.At.IsZero() {
		obs.At = w.Now
	}
	var h *pageHint
	if p.newKey && !w.rerun {
		h = &pageHint{absent: true, page: w.page}
	} else if err := w.flushNews(ctx); err != nil {
		return Result{}, err
	}
	start := time.Now()
	res, err := w.e.applyHinted(ctx, w.Tx, obs, p.hash, nil, false, w.batch, h)
	if err == nil {
		w.e.opts.Metrics.ObserveApply(res.Outcome, time.Since(start))
	}
	return res, err
}

// SetMembership grants (add) or revokes the source's membership edge of
// the subject with key memberKey in the organization group groupName,
// touching that one edge only. It returns ErrNotFound when the source holds
// no live account of that key.
func (w *SourceWriter) SetMembership(ctx context.Context, groupName, memberKey string, add bool) error {
	if err := w.flushNews(ctx); err != nil {
		return err
	}
	acct, found, err := w.Tx.AccountByKey(ctx, w.Src.ID, memberKey)
	if err != nil {
		return err
	}
	if !found || acct.Removed {
		return fmt.Errorf("source %q holds no subject %q: %w", w.Src.Name, memberKey, ErrNotFound)
	}
	edges, err := w.Tx.IdentityMemberships(ctx, acct.IdentityID)
	if err != nil {
		return err
	}
	key := strings.ToLower(strings.TrimSpace(groupName))
	mine, others, groupID := false, 0, ""
	for _, m := range edges {
		if strings.ToLower(m.GroupName) != key {
			continue
		}
		groupID = m.GroupID
		if m.SourceID == w.Src.ID {
			mine = true
		} else {
			others++
		}
	}
	if add {
		if mine {
			return nil
		}
		g, created, err := w.Tx.EnsureGroup(ctx, w.org.ID, strings.TrimSpace(groupName), w.Now)
		if err != nil {
			return err
		}
		if created {
			w.ch.add("group.created", "group", g.ID, "", map[string]any{"name": g.Name})
		}
		if err := w.Tx.AddMembership(ctx, Membership{GroupID: g.ID, IdentityID: acct.IdentityID, SourceID: w.Src.ID, GrantedAt: w.Now}); err != nil {
			return err
		}
		if others == 0 {
			w.ch.add("membership.granted", "group", g.ID, acct.IdentityID, map[string]any{"group": g.Name})
		}
		return nil
	}
	if !mine {
		return nil
	}
	if err := w.Tx.RemoveMembership(ctx, groupID, acct.IdentityID, w.Src.ID); err != nil {
		return err
	}
	if others == 0 {
		w.ch.add("membership.revoked", "group", groupID, acct.IdentityID, map[string]any{"group": groupName})
	}
	return nil
}

// DeleteIfOrphan deletes the person when no source other than the writer's
// holds a live account of them, and reports whether it did. The audit log
// keeps their history.
func (w *SourceWriter) DeleteIfOrphan(ctx context.Context, identityID string) (bool, error) {
	if err := w.flushNews(ctx); err != nil {
		return false, err
	}
	linked, err := w.Tx.LinkedAccounts(ctx, identityID)
	if err != nil {
		return false, err
	}
	for _, a := range linked {
		if a.SourceID != w.Src.ID && !a.Removed {
			return false, nil
		}
	}
	ident, err := w.Tx.Identity(ctx, identityID)
	if err != nil {
		return false, err
	}
	orgs, err := w.Tx.OrgMemberships(ctx, identityID)
	if err != nil {
		return false, err
	}
	if err := w.Tx.DeleteIdentity(ctx, identityID); err != nil {
		return false, err
	}
	for _, m := range orgs {
		w.ch.add("org.left", "organization", m.OrgID, identityID, nil)
	}
	w.ch.add("identity.deleted", "identity", identityID, identityID, map[string]any{"changes": reconcile.Diff(ident.Attrs, nil)})
	return true, nil
}
