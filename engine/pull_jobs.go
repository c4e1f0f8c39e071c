package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// ApproveRun approves a quarantined run: the job runs again now with its
// threshold lifted for that run only, but allowed at most as many
// deprovisions and removals as the quarantined plan showed (so a
// directory that broke further since is quarantined again rather than
// trusted). The quarantined run is marked approved and both runs are
// audited. It returns the new run.
//
// Why a rerun rather than replaying the kept plan: the plan is a bounded
// sample (MaxPlanItems) made at quarantine time; the source may have
// changed since, and a fresh pull is what the rest of the engine trusts.
// A dry-run that was quarantined can be approved the same way.
func (s *Scheduler) ApproveRun(ctx context.Context, by Admin, runID string) (JobRun, error) {
	e := s.e
	run, err := e.store.JobRun(ctx, runID)
	if err != nil {
		return JobRun{}, err
	}
	if run.Status != RunQuarantined {
		return JobRun{}, fmt.Errorf("run %s is %s, not quarantined: %w", runID, run.Status, ErrConflict)
	}
	var plan Plan
	if len(run.Plan) > 0 {
		if err := json.Unmarshal(run.Plan, &plan); err != nil {
			return JobRun{}, fmt.Errorf("run %s: its plan does not read: %v: %w", runID, err, ErrInvalid)
		}
	}
	limit := plan.Events[PlannedDeprovisions] + plan.Events[PlannedRemovals]
	// RunJob lets this process's own lease be taken again; refuse here
	// while this scheduler runs the job.
	s.mu.Lock()
	busy := s.running[run.JobID]
	s.mu.Unlock()
	if busy {
		return JobRun{}, fmt.Errorf("job %s: %w", run.JobID, ErrBusy)
	}
	next, err := s.RunJob(withApproval(ctx, limit), run.JobID, false, false)
	if errors.Is(err, ErrBusy) {
		return next, err
	}
	if next.ID == "" { // the rerun did not start
		return next, err
	}
	werr := s.settle(context.WithoutCancel(ctx), by, run, RunApproved, map[string]any{"rerun": next.ID,
		"rerunStatus": next.Status, "allowed": limit})
	return next, errors.Join(err, werr)
}

// RejectRun rejects a quarantined run: nothing it held back is ever
// applied; the run is marked rejected and audited.
func (s *Scheduler) RejectRun(ctx context.Context, by Admin, runID string) (JobRun, error) {
	run, err := s.e.store.JobRun(ctx, runID)
	if err != nil {
		return JobRun{}, err
	}
	if run.Status != RunQuarantined {
		return run, fmt.Errorf("run %s is %s, not quarantined: %w", runID, run.Status, ErrConflict)
	}
	run.Status = RunRejected
	return run, s.settle(ctx, by, run, RunRejected, nil)
}

// settle marks a quarantined run approved or rejected, once: a run
// settled meanwhile by someone else is a conflict.
func (s *Scheduler) settle(ctx context.Context, by Admin, run JobRun, status string, details map[string]any) error {
	e := s.e
	return e.inTx(ctx, func(tx Tx) error {
		cur, err := tx.JobRun(ctx, run.ID)
		if err != nil {
			return err
		}
		if cur.Status != RunQuarantined {
			return fmt.Errorf("run %s is already %s: %w", run.ID, cur.Status, ErrConflict)
		}
		job, err := tx.Job(ctx, cur.JobID)
		if err != nil {
			return err
		}
		cur.Status = status
		if err := tx.UpdateJobRun(ctx, cur); err != nil {
			return err
		}
		if details == nil {
			details = map[string]any{}
		}
		details["run"] = run.ID
		ch := e.newChange(e.now(), job.OrgID, ChannelAdmin, job.SourceID, by.actor(), by.CorrelationID)
		ch.add("job.run."+status, "job", job.ID, "", details)
		return ch.flush(ctx, tx, false)
	})
}

// JobChange is a partial update of a job: nil fields stay as they are.
type JobChange struct {
	Schedule  *string  `json:"schedule,omitempty"`
	TimeZone  *string  `json:"timeZone,omitempty"`
	Enabled   *bool    `json:"enabled,omitempty"`
	Threshold *float64 `json:"threshold,omitempty"`
	Kind      *string  `json:"kind,omitempty"`
	// ResetWatermark makes the next incremental run start from scratch.
	ResetWatermark bool `json:"resetWatermark,omitempty"`
}

// ChangeJob updates a job's schedule, time zone, kind, threshold or
// enabled flag (pause: Enabled false; resume: true, next run from now) and
// audits it. All problems are reported at once.
func (e *Engine) ChangeJob(ctx context.Context, by Admin, jobID string, c JobChange) (Job, error) {
	var out Job
	err := e.inTx(ctx, func(tx Tx) error {
		j, err := tx.Job(ctx, jobID)
		if err != nil {
			return err
		}
		changed := map[string]any{}
		if c.Schedule != nil {
			j.Schedule, changed["schedule"] = *c.Schedule, *c.Schedule
		}
		if c.TimeZone != nil {
			j.TimeZone, changed["timeZone"] = *c.TimeZone, *c.TimeZone
		}
		if c.Enabled != nil {
			j.Enabled, changed["enabled"] = *c.Enabled, *c.Enabled
		}
		if c.Threshold != nil {
			j.Threshold, changed["threshold"] = *c.Threshold, *c.Threshold
		}
		if c.Kind != nil {
			j.Kind, changed["kind"] = *c.Kind, *c.Kind
		}
		if c.ResetWatermark {
			j.Watermark, changed["watermark"] = "", ""
		}
		now := e.now()
		next, err := checkJob(j, now)
		if err != nil {
			return err
		}
		if c.Schedule != nil || c.TimeZone != nil || (c.Enabled != nil && *c.Enabled) {
			j.NextRunAt = next // resuming does not replay what was missed while paused
		}
		j.UpdatedAt = now
		if err := tx.UpdateJob(ctx, j); err != nil {
			return err
		}
		action := "job.updated"
		if len(changed) == 1 && c.Enabled != nil {
			action = map[bool]string{true: "job.resumed", false: "job.paused"}[*c.Enabled]
		}
		ch := e.newChange(now, j.OrgID, ChannelAdmin, j.SourceID, by.actor(), by.CorrelationID)
		ch.add(action, "job", j.ID, "", changed)
		out = j
		return ch.flush(ctx, tx, false)
	})
	return out, err
}

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
