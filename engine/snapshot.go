package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"iter"
	"math"
	"time"
)

// SnapshotOptions tune ApplySnapshot.
type SnapshotOptions struct {
	// DryRun computes the plan and writes nothing.
	DryRun bool
	// Upsert applies the observations and removes nothing (an import).
	Upsert bool
	// PageSize is how many observations commit together (default 500).
	PageSize int
	// Threshold is the largest share (0..1] of the source's live accounts a
	// sweep may remove; more stops the sweep before it removes anyone and
	// returns ErrQuarantined. 0 means 0.1; a negative value means no limit.
	Threshold float64
	// AllowEmpty lets an empty snapshot remove everyone. Without it, an
	// empty snapshot of a source that holds accounts is refused: a
	// directory that answers nothing is far likelier broken than empty.
	AllowEmpty bool
	// Progress is called after each committed page.
	Progress func(Counts)
	// MaxPlanItems bounds the items a plan keeps (default 1000; counts are
	// always complete).
	MaxPlanItems int
}

// PlanItem is one thing a run did or would do.
type PlanItem struct {
	Action     string `json:"action"`
	Key        string `json:"key,omitempty"`
	IdentityID string `json:"identityId,omitempty"`
	Detail     []byte `json:"detail,omitempty"`
}

// Plan is what a snapshot did or, in a dry run, would do.
type Plan struct {
	Counts Counts         `json:"counts"`
	Events map[string]int `json:"events"` // audit actions and how many
	Items  []PlanItem     `json:"items,omitempty"`
	// Removals are the keys the sweep removes (or would have removed).
	Removals  []string `json:"removals,omitempty"`
	Truncated bool     `json:"truncated,omitempty"`
}

func (p *Plan) note(key string, r Result, limit int) {
	for _, ev := range r.Events {
		p.Events[ev.Action]++
		if len(p.Items) < limit {
			p.Items = append(p.Items, PlanItem{Action: ev.Action, Key: key, IdentityID: ev.IdentityID, Detail: ev.Changes})
		} else {
			p.Truncated = true
		}
	}
}

func (c *Counts) count(r Result) {
	switch r.Outcome {
	case OutcomeCreated, OutcomeLinked:
		c.Created++
	case OutcomeUpdated:
		if len(r.Events) == 0 {
			c.Unchanged++
		} else {
			c.Updated++
		}
	case OutcomeUnchanged:
		c.Unchanged++
	case OutcomeRemoved:
		c.Removed++
	case OutcomeConflict:
		c.Conflicts++
	}
}

func keyDigest(k string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(k))
	return h.Sum64()
}

// preparedPage is a page after the reads that need no transaction: what
// is unchanged is counted, the rest is left to do.
type preparedPage struct {
	todo      []Observation
	hashes    []string
	absent    []bool
	newKeys   int // how many of todo have no account
	unchanged int
	// seen and errors are the stream's totals when the page was sent.
	seen, errors int
	// barrier, when set, is closed once the page is committed (or given
	// up): the stream side waits for it (see ApplySnapshot).
	barrier chan struct{}
}

// applyPage applies one page: unchanged subjects by one read for the page,
// the rest in one transaction with one audit append.
func (e *Engine) applyPage(ctx context.Context, page []Observation, opts SnapshotOptions, plan *Plan) (Counts, error) {
	p, err := e.preparePage(ctx, page)
	if err != nil {
		return Counts{}, err
	}
	return e.commitPage(ctx, p, opts, plan)
}

// preparePage hashes a page's observations and reads, in one query, which
// are unchanged.
func (e *Engine) preparePage(ctx context.Context, page []Observation) (preparedPage, error) {
	var c preparedPage
	if len(page) == 0 {
		return c, nil
	}
	todo := make([]Observation, 0, len(page))
	hashes := make([]string, 0, len(page))
	absent := make([]bool, 0, len(page))
	inPage := make(map[string]bool, len(page))
	// One query tells which subjects are unchanged (a page is of one source).
	keys := make([]string, len(page))
	for i, obs := range page {
		keys[i] = obs.Key
	}
	stored, err := e.store.AccountHashes(ctx, page[0].SourceID, keys)
	if err != nil {
		return c, err
	}
	for _, obs := range page {
		h := obs.ContentHash()
		old, ok := stored[obs.Key]
		if ok && old == h && obs.SourceID == page[0].SourceID {
			c.unchanged++
			continue
		}
		todo = append(todo, obs)
		hashes = append(hashes, h)
		// Only a key's first statement in the page may skip the read: a
		// repeat must find the account the first one created.
		absent = append(absent, !ok && obs.SourceID == page[0].SourceID && !inPage[obs.Key])
		inPage[obs.Key] = true
	}
	c.todo, c.hashes, c.absent = todo, hashes, absent
	for _, a := range absent {
		if a {
			c.newKeys++
		}
	}
	return c, nil
}

// commitPage applies what a prepared page left to do, in one transaction.
func (e *Engine) commitPage(ctx context.Context, p preparedPage, opts SnapshotOptions, plan *Plan) (Counts, error) {
	c := Counts{Unchanged: p.unchanged}
	todo, hashes, absent := p.todo, p.hashes, p.absent
	if len(todo) == 0 {
		return c, nil
	}
	var pc Counts
	var results []Result
	attempt := 0
	err := e.inTx(ctx, func(tx Tx) error {
		pc, results = Counts{}, results[:0]
		hinted := attempt == 0 // a rerun reads every key again
		attempt++
		batch := make([]AuditEvent, 0, 6*len(todo)) // a new person is about 5 events
		pg, err := e.newPage(ctx, tx, todo, absent, hinted)
		if err != nil {
			return err
		}
		// Inserting in the background needs a connection that can run a
		// statement while a query of the page's is open (SQLite can;
		// PostgreSQL's wire protocol cannot), and is worth it only for a
		// page with more than a chunk of new keys.
		if sw, ok := e.store.(SerializedWriter); ok && sw.SerializedWrites() && hinted && !opts.DryRun && p.newKeys > aheadChunk {
			pg.news.ahead = startInserter(ctx, tx)
			defer pg.news.ahead.stop() // before the transaction ends, whatever happens
		}
		for i, obs := range todo {
			h := &pageHint{page: pg, absent: hinted && absent[i], candidates: pg.candidates[i]}
			if !h.absent {
				if err := pg.news.flush(ctx, tx); err != nil {
					return err
				}
			}
			r, err := e.applyHinted(ctx, tx, obs, hashes[i], nil, opts.DryRun, &batch, h)
			if err != nil {
				return fmt.Errorf("subject %q: %w", obs.Key, err)
			}
			pc.count(r)
			results = append(results, r)
		}
		if err := pg.news.flush(ctx, tx); err != nil {
			return err
		}
		if opts.DryRun {
			return errRollback
		}
		if len(batch) > 0 {
			if err := tx.AppendAudit(ctx, batch); err != nil {
				return err
			}
			e.opts.Metrics.AuditEvents(len(batch))
		}
		return nil
	})
	if err != nil && !errors.Is(err, errRollback) {
		return c, err
	}
	for i, r := range results {
		plan.note(todo[i].Key, r, opts.MaxPlanItems)
	}
	c.Add(pc)
	return c, nil
}

// ApplySnapshot applies everything a source holds now (or, with
// opts.Upsert, an incremental batch or an import), streamed page by page —
// each page commits as a unit and only a 64-bit digest of each key seen is
// kept — then removes the source's accounts the snapshot did not mention
// (mark and sweep). Unchanged subjects cost one read and no write. It holds
// back every destructive change — an active account turning inactive (a
// deprovision) as well as a removal — until the stream has ended, and
// counts them together against the threshold. Over the threshold, or on
// an empty snapshot of a non-empty source, it returns ErrQuarantined
// having made no destructive write (non-destructive pages did commit),
// and the plan lists what it held back (Plan.Removals, Items with action
// "account.deprovision" and Events[PlannedDeprovisions/PlannedRemovals]).
// A stream error stops it before any destructive write as well.
//
// Held-back deprovisions are kept in memory up to the limit only; past
// it they are just counted.
func (e *Engine) ApplySnapshot(ctx context.Context, sourceID string, snap iter.Seq2[Observation, error], opts SnapshotOptions) (Plan, error) {
	if opts.PageSize <= 0 {
		opts.PageSize = 500
	}
	if opts.Threshold == 0 {
		opts.Threshold = 0.1
	}
	if opts.MaxPlanItems == 0 {
		opts.MaxPlanItems = 1000
	}
	plan := Plan{Events: map[string]int{}}
	src, err := e.store.Source(ctx, sourceID)
	if err != nil {
		return plan, fmt.Errorf("pull of source %q: %w", sourceID, err)
	}
	live, err := e.store.CountAccounts(ctx, src.ID, true)
	if err != nil {
		return plan, fmt.Errorf("pull of %s: %w", src.Name, err)
	}
	limit := math.MaxInt
	approved, isApproved := approvalFrom(ctx)
	switch {
	case isApproved:
		limit = approved
		opts.AllowEmpty = true // the admin saw the plan remove everyone and agreed
	case opts.Threshold > 0:
		limit = int(math.Floor(opts.Threshold * float64(live)))
	}

	flush := func(obs []Observation) error {
		if len(obs) == 0 {
			return nil
		}
		c, err := e.applyPage(ctx, obs, opts, &plan)
		if err != nil {
			return err
		}
		plan.Counts.Add(c)
		if opts.Progress != nil {
			opts.Progress(plan.Counts)
		}
		return nil
	}

	// The stream side — reading the source, validating, hashing, the one
	// read per page that tells what is unchanged — runs in its own
	// goroutine, a page ahead of the transactions that apply the pages:
	// the source and the database then work side by side.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan preparedPage, 1)
	st := &snapshotStream{e: e, src: src, opts: opts, limit: limit, seen: map[uint64]struct{}{}, out: pages}
	go func() {
		defer close(pages)
		defer func() {
			if p := recover(); p != nil {
				st.err = fmt.Errorf("pull of %s: reading the snapshot panicked: %v", src.Name, p)
			}
		}()
		st.err = st.run(pctx, snap)
	}()
	var applyErr error
	for p := range pages {
		if applyErr == nil {
			c, err := e.commitPage(ctx, p, opts, &plan)
			if err != nil {
				applyErr = err
				cancel() // the stream side stops at its next step
			} else {
				plan.Counts.Add(c)
				plan.Counts.Seen, plan.Counts.Errors = p.seen, p.errors
				if opts.Progress != nil {
					opts.Progress(plan.Counts)
				}
			}
		}
		if p.barrier != nil {
			close(p.barrier)
		}
	}
	if applyErr != nil {
		return plan, applyErr
	}
	if st.err != nil {
		return plan, st.err
	}
	plan.Counts.Seen, plan.Counts.Errors = st.count, st.errors
	seen, held, deprov, explicitRm, errs := st.seen, st.held, st.deprov, st.explicitRm, st.errs

	var missing []string
	if !opts.Upsert {
		err := e.store.LiveAccountKeys(ctx, src.ID, func(key, _ string) error {
			if _, ok := seen[keyDigest(key)]; !ok {
				missing = append(missing, key)
			}
			return nil
		})
		if err != nil {
			return plan, fmt.Errorf("sweep %s: %w", src.Name, err)
		}
	}
	destructive := deprov + explicitRm + len(missing)
	plan.Removals = missing
	if len(plan.Removals) > opts.MaxPlanItems {
		plan.Removals, plan.Truncated = plan.Removals[:opts.MaxPlanItems], true
	}
	for _, o := range held {
		if len(plan.Items) >= opts.MaxPlanItems {
			plan.Truncated = true
			break
		}
		action := "account.deprovision"
		if o.Removed {
			action = "account.remove"
			plan.Removals = append(plan.Removals, o.Key)
		}
		plan.Items = append(plan.Items, PlanItem{Action: action, Key: o.Key})
	}
	if !opts.Upsert && len(seen) == 0 && len(missing) > 0 && !opts.AllowEmpty {
		plan.Events[PlannedRemovals] = len(missing)
		return plan, fmt.Errorf("snapshot of %s is empty but the source holds %d people: refusing to remove them all: %w",
			src.Name, live, ErrQuarantined)
	}
	if destructive > limit {
		plan.Events[PlannedDeprovisions] = deprov
		plan.Events[PlannedRemovals] = explicitRm + len(missing)
		why := fmt.Sprintf("more than %.0f%% of %d", opts.Threshold*100, live)
		if isApproved {
			why = fmt.Sprintf("more than the %d approved", approved)
		}
		return plan, errors.Join(append(errs, fmt.Errorf("pull of %s would deprovision %d and remove %d people (%s): quarantined, none deprovisioned or removed: %w",
			src.Name, deprov, explicitRm+len(missing), why, ErrQuarantined))...)
	}
	for i := 0; i < len(held); i += opts.PageSize {
		if err := flush(held[i:min(i+opts.PageSize, len(held))]); err != nil {
			return plan, err
		}
	}
	removals := make([]Observation, 0, opts.PageSize)
	for i, key := range missing {
		removals = append(removals, Observation{SourceID: src.ID, Key: key, Removed: true, At: e.opts.Now()})
		if len(removals) == opts.PageSize || i == len(missing)-1 {
			if err := flush(removals); err != nil {
				return plan, fmt.Errorf("sweep %s: %w", src.Name, err)
			}
			removals = removals[:0]
		}
	}
	return plan, errors.Join(errs...)
}

// snapshotStream is the stream side of ApplySnapshot: it reads the
// snapshot, validates each observation, holds back the destructive ones,
// and sends prepared pages. Only it touches its fields until out is
// closed.
type snapshotStream struct {
	e     *Engine
	src   Source
	opts  SnapshotOptions
	limit int
	out   chan<- preparedPage

	seen          map[uint64]struct{} // digest of every key seen
	count, errors int
	held          []Observation // destructive observations held back
	deprov        int
	explicitRm    int
	errs          []error
	err           error
}

func (st *snapshotStream) run(ctx context.Context, snap iter.Seq2[Observation, error]) error {
	src := st.src
	page := make([]Observation, 0, st.opts.PageSize)
	// send prepares and sends the page; with barrier it then waits until
	// every page sent so far has committed.
	send := func(barrier bool) error {
		var p preparedPage
		if len(page) > 0 {
			var err error
			if p, err = st.e.preparePage(ctx, page); err != nil {
				return err
			}
			page = page[:0]
		}
		p.seen, p.errors = st.count, st.errors
		if barrier {
			p.barrier = make(chan struct{})
		} else if len(p.todo) == 0 && p.unchanged == 0 {
			return nil
		}
		select {
		case st.out <- p:
		case <-ctx.Done():
			return ctx.Err()
		}
		if barrier {
			select {
			case <-p.barrier:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	for obs, err := range snap {
		if err != nil {
			return fmt.Errorf("pull of %s stopped after %d subjects, nothing removed or deprovisioned: %w", src.Name, st.count, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		obs.SourceID = src.ID
		st.count++
		d := keyDigest(obs.Key)
		if _, again := st.seen[d]; again {
			// A key stated twice: the reads for its second statement (held
			// back or not, unchanged or not) must see what the first
			// wrote, so everything before it commits first. Snapshots
			// rarely repeat a key; this costs nothing otherwise.
			if err := send(true); err != nil {
				return err
			}
		}
		st.seen[d] = struct{}{} // held-back removals are not swept twice
		if err := obs.Validate(); err != nil {
			st.errors++
			if len(st.errs) < 20 {
				st.errs = append(st.errs, err)
			}
			continue
		}
		if obs.Inactive || obs.Removed {
			acct, ok, err := st.e.store.AccountByKey(ctx, src.ID, obs.Key)
			if err != nil {
				return fmt.Errorf("pull of %s: %w", src.Name, err)
			}
			if ok && !acct.Removed && (acct.Active || obs.Removed) {
				if obs.Removed {
					st.explicitRm++
				} else {
					st.deprov++
				}
				if len(st.held) <= st.limit {
					st.held = append(st.held, obs)
				}
				continue
			}
		}
		page = append(page, obs)
		if len(page) == st.opts.PageSize {
			if err := send(false); err != nil {
				return err
			}
		}
	}
	return send(false)
}

// ApplyAll applies a stream of observations as upserts (an import), in
// pages; nothing is removed.
func (e *Engine) ApplyAll(ctx context.Context, sourceID string, obs iter.Seq2[Observation, error], opts SnapshotOptions) (Plan, error) {
	opts.Upsert = true
	return e.ApplySnapshot(ctx, sourceID, obs, opts)
}

// now for callers outside the package (schedulers, connectors).
func (e *Engine) Now() time.Time { return e.now() }
