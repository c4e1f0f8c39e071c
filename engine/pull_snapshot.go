package engine

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
)

// Plan.Events keys a pull records when it stops before any destructive
// write: how many deprovisions (an active account turned inactive) and
// removals (sweep or an explicit Removed) it would have made. Approving
// the quarantined run allows at most their sum.
const (
	PlannedDeprovisions = "planned.deprovisions"
	PlannedRemovals     = "planned.removals"
)

type approvalKey struct{}

// withApproval marks ctx as the rerun of an approved quarantined run: the
// threshold is lifted, but the run may still make at most limit
// destructive changes (what the admin saw in the plan).
func withApproval(ctx context.Context, limit int) context.Context {
	return context.WithValue(ctx, approvalKey{}, limit)
}

func approvalFrom(ctx context.Context) (int, bool) {
	n, ok := ctx.Value(approvalKey{}).(int)
	return n, ok
}

// PullSnapshot is what pull connectors (LDAP, file, SCIM pull) call: it
// applies a streamed snapshot (or, with opts.Upsert, an incremental
// batch) like ApplySnapshot, page by page, but holds back every
// destructive change — an active account turning inactive (a
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
func (e *Engine) PullSnapshot(ctx context.Context, sourceID string, snap iter.Seq2[Observation, error], opts SnapshotOptions) (Plan, error) {
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

	seen := map[uint64]struct{}{}
	page := make([]Observation, 0, opts.PageSize)
	var (
		held       []Observation // destructive observations held back
		deprov     int
		explicitRm int
		errs       []error
	)
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
	for obs, err := range snap {
		if err != nil {
			return plan, fmt.Errorf("pull of %s stopped after %d subjects, nothing removed or deprovisioned: %w", src.Name, plan.Counts.Seen, err)
		}
		if err := ctx.Err(); err != nil {
			return plan, err
		}
		obs.SourceID = src.ID
		plan.Counts.Seen++
		seen[keyDigest(obs.Key)] = struct{}{} // held-back removals are not swept twice
		if err := obs.Validate(); err != nil {
			plan.Counts.Errors++
			if len(errs) < 20 {
				errs = append(errs, err)
			}
			continue
		}
		if obs.Inactive || obs.Removed {
			acct, ok, err := e.store.AccountByKey(ctx, src.ID, obs.Key)
			if err != nil {
				return plan, fmt.Errorf("pull of %s: %w", src.Name, err)
			}
			if ok && !acct.Removed && (acct.Active || obs.Removed) {
				if obs.Removed {
					explicitRm++
				} else {
					deprov++
				}
				if len(held) <= limit {
					held = append(held, obs)
				}
				continue
			}
		}
		page = append(page, obs)
		if len(page) == opts.PageSize {
			if err := flush(page); err != nil {
				return plan, err
			}
			page = page[:0]
		}
	}
	if err := flush(page); err != nil {
		return plan, err
	}

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
