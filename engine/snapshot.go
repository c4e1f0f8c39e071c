package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"iter"
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

// ApplySnapshot applies everything a source holds now, streamed page by
// page (each page commits as a unit), then removes the source's accounts
// the snapshot did not mention (mark and sweep). It never holds the whole
// snapshot: only a 64-bit digest of each key seen. Unchanged subjects cost
// one read and no write.
//
// Invalid observations are counted as errors and skipped. A failure of the
// stream or the database stops the run before the sweep, so a broken pull
// never removes anyone; so does an empty snapshot (see AllowEmpty) and a
// sweep over the threshold (ErrQuarantined, with the plan).
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
		return plan, fmt.Errorf("snapshot of source %q: %w", sourceID, err)
	}
	seen := map[uint64]struct{}{}
	page := make([]Observation, 0, opts.PageSize)
	var errs []error
	flush := func() error {
		if len(page) == 0 {
			return nil
		}
		c, err := e.applyPage(ctx, page, opts, &plan)
		page = page[:0]
		if err != nil {
			return err
		}
		plan.Counts.Add(c)
		if opts.Progress != nil {
			opts.Progress(plan.Counts)
		}
		return nil
	}
	for obs, err := range snap {
		if err != nil {
			return plan, fmt.Errorf("snapshot of %s stopped after %d subjects, nothing removed: %w", src.Name, plan.Counts.Seen, err)
		}
		if err := ctx.Err(); err != nil {
			return plan, err
		}
		obs.SourceID = src.ID
		plan.Counts.Seen++
		seen[keyDigest(obs.Key)] = struct{}{}
		if err := obs.Validate(); err != nil {
			plan.Counts.Errors++
			if len(errs) < 20 {
				errs = append(errs, err)
			}
			continue
		}
		page = append(page, obs)
		if len(page) == opts.PageSize {
			if err := flush(); err != nil {
				return plan, err
			}
		}
	}
	if err := flush(); err != nil {
		return plan, err
	}
	if opts.Upsert {
		return plan, errors.Join(errs...)
	}
	if err := e.sweep(ctx, src, seen, opts, &plan); err != nil {
		return plan, err
	}
	return plan, errors.Join(errs...)
}

func keyDigest(k string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(k))
	return h.Sum64()
}

// applyPage applies one page: unchanged subjects by a read each, the rest in
// one transaction with one audit append.
func (e *Engine) applyPage(ctx context.Context, page []Observation, opts SnapshotOptions, plan *Plan) (Counts, error) {
	var c Counts
	todo := make([]Observation, 0, len(page))
	hashes := make([]string, 0, len(page))
	for _, obs := range page {
		h := obs.ContentHash()
		head, ok, err := e.store.AccountHead(ctx, obs.SourceID, obs.Key)
		if err != nil {
			return c, err
		}
		if ok && head.Hash == h {
			c.Unchanged++
			continue
		}
		todo = append(todo, obs)
		hashes = append(hashes, h)
	}
	if len(todo) == 0 {
		return c, nil
	}
	var pc Counts
	var results []Result
	err := e.inTx(ctx, func(tx Tx) error {
		pc, results = Counts{}, results[:0]
		var batch []AuditEvent
		for i, obs := range todo {
			r, err := e.applyBatched(ctx, tx, obs, hashes[i], nil, opts.DryRun, &batch)
			if err != nil {
				return fmt.Errorf("subject %q: %w", obs.Key, err)
			}
			pc.count(r)
			results = append(results, r)
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

// sweep removes the live accounts of src whose keys the snapshot did not
// hold, unless that is more than the threshold allows.
func (e *Engine) sweep(ctx context.Context, src Source, seen map[uint64]struct{}, opts SnapshotOptions, plan *Plan) error {
	var missing []string
	live := 0
	err := e.store.LiveAccountKeys(ctx, src.ID, func(key, _ string) error {
		live++
		if _, ok := seen[keyDigest(key)]; !ok {
			missing = append(missing, key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sweep %s: %w", src.Name, err)
	}
	if len(missing) == 0 {
		return nil
	}
	if len(seen) == 0 && !opts.AllowEmpty {
		return fmt.Errorf("snapshot of %s is empty but the source holds %d people: refusing to remove them all: %w",
			src.Name, live, ErrQuarantined)
	}
	plan.Removals = missing
	if len(plan.Removals) > opts.MaxPlanItems {
		plan.Removals, plan.Truncated = plan.Removals[:opts.MaxPlanItems], true
	}
	if opts.Threshold > 0 && float64(len(missing)) > opts.Threshold*float64(live) {
		return fmt.Errorf("snapshot of %s would remove %d of %d people (more than %.0f%%): quarantined, nothing removed: %w",
			src.Name, len(missing), live, opts.Threshold*100, ErrQuarantined)
	}
	removals := make([]Observation, 0, opts.PageSize)
	for i, key := range missing {
		removals = append(removals, Observation{SourceID: src.ID, Key: key, Removed: true, At: e.opts.Now()})
		if len(removals) == opts.PageSize || i == len(missing)-1 {
			c, err := e.applyPage(ctx, removals, opts, plan)
			if err != nil {
				return fmt.Errorf("sweep %s: %w", src.Name, err)
			}
			plan.Counts.Add(c)
			removals = removals[:0]
		}
	}
	return nil
}

// ApplyAll applies a stream of observations as upserts (an import), in
// pages; nothing is removed.
func (e *Engine) ApplyAll(ctx context.Context, sourceID string, obs iter.Seq2[Observation, error], opts SnapshotOptions) (Plan, error) {
	opts.Upsert = true
	return e.ApplySnapshot(ctx, sourceID, obs, opts)
}

// now for callers outside the package (schedulers, connectors).
func (e *Engine) Now() time.Time { return e.now() }
