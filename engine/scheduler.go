package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Job kinds.
const (
	JobFull        = "full"
	JobIncremental = "incremental"
	JobReconcile   = "reconcile"
)

// RunContext is what a job runner gets: the job, its run, and a way to
// report progress and advance the job's watermark.
type RunContext struct {
	Job      Job
	Run      JobRun
	DryRun   bool
	Engine   *Engine
	progress func(Counts)
	mark     func(string) error
}

// Progress records the run's counts so far (shown while it runs).
func (rc *RunContext) Progress(c Counts) { rc.progress(c) }

// SetWatermark stores the job's incremental watermark. Call it only after
// the page it covers has committed.
func (rc *RunContext) SetWatermark(w string) error { return rc.mark(w) }

// Runner runs one job; it returns the counts and, for a dry run, the plan.
type Runner func(ctx context.Context, rc *RunContext) (Counts, *Plan, error)

// Scheduler runs the jobs stored in the database on their cron schedules.
// Each process runs one; a lease row in the database makes each scheduled
// run happen once across all processes. A job never overlaps itself (the
// lease is held for the whole run and renewed while it lasts); a process
// that dies loses its lease when it expires and the next tick recovers.
// Runs missed while no process was up run once at start.
type Scheduler struct {
	e       *Engine
	owner   string
	runners map[string]Runner // by job kind, or "kind/sourceKind"
	tick    time.Duration
	lease   time.Duration

	mu      sync.Mutex
	running map[string]bool
	wg      sync.WaitGroup
}

// SchedulerOptions tune a Scheduler.
type SchedulerOptions struct {
	Owner string        // this process's name (default host:pid)
	Tick  time.Duration // how often due jobs are looked for (default 10s)
	Lease time.Duration // lease length, renewed at a third (default 60s)
}

// NewScheduler returns a scheduler with the reconcile runner registered.
func NewScheduler(e *Engine, opts SchedulerOptions) *Scheduler {
	if opts.Owner == "" {
		h, _ := os.Hostname()
		opts.Owner = fmt.Sprintf("%s:%d:%s", h, os.Getpid(), newID()[:8])
	}
	if opts.Tick == 0 {
		opts.Tick = 10 * time.Second
	}
	if opts.Lease == 0 {
		opts.Lease = time.Minute
	}
	s := &Scheduler{e: e, owner: opts.Owner, runners: map[string]Runner{}, tick: opts.Tick, lease: opts.Lease,
		running: map[string]bool{}}
	s.Register(JobReconcile, "", ReconcileRunner)
	return s
}

// Register sets the runner of a job kind; sourceKind narrows it to jobs of
// sources of that kind ("" for any).
func (s *Scheduler) Register(kind string, sourceKind SourceKind, r Runner) {
	key := kind
	if sourceKind != "" {
		key += "/" + string(sourceKind)
	}
	s.runners[key] = r
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// NextRun is the first time after t the job's schedule names; zero for a
// job without a schedule (run by hand only).
func NextRun(j Job, t time.Time) (time.Time, error) {
	if strings.TrimSpace(j.Schedule) == "" {
		return time.Time{}, nil
	}
	sched, err := cronParser.Parse(j.Schedule)
	if err != nil {
		return time.Time{}, fmt.Errorf("schedule %q: %v: %w", j.Schedule, err, ErrInvalid)
	}
	loc := time.UTC
	if j.TimeZone != "" {
		if loc, err = time.LoadLocation(j.TimeZone); err != nil {
			return time.Time{}, fmt.Errorf("time zone %q: %v: %w", j.TimeZone, err, ErrInvalid)
		}
	}
	return sched.Next(t.In(loc)).UTC(), nil
}

// Start runs the scheduling loop until ctx ends; Wait waits for runs in
// flight.
func (s *Scheduler) Start(ctx context.Context) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.tick)
		defer t.Stop()
		for {
			s.Tick(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Wait blocks until the loop and every run it started have ended.
func (s *Scheduler) Wait() { s.wg.Wait() }

// Tick starts every due job once; it is exported so tests drive time.
func (s *Scheduler) Tick(ctx context.Context) {
	jobs, err := s.e.store.Jobs(ctx, "")
	if err != nil {
		s.e.log.Warn("scheduler: list jobs", "err", err)
		return
	}
	now := s.e.now()
	for _, j := range jobs {
		if !j.Enabled || j.NextRunAt.IsZero() || j.NextRunAt.After(now) {
			continue
		}
		s.mu.Lock()
		busy := s.running[j.ID]
		s.mu.Unlock()
		if busy {
			continue
		}
		s.wg.Add(1)
		go func(j Job) {
			defer s.wg.Done()
			if _, err := s.RunJob(ctx, j.ID, false, true); err != nil && !errors.Is(err, errNotDue) {
				s.e.log.Warn("scheduler: job run failed", "job", j.Name, "err", err)
			}
		}(j)
	}
}

var (
	errNotDue = errors.New("not due")
	// ErrBusy: the job is running (here or in another process).
	ErrBusy = errors.New("job is already running")
)

// RunJob runs a job now (scheduled: only if still due once the lease is
// held, so two processes never run one tick twice) and records the run.
func (s *Scheduler) RunJob(ctx context.Context, jobID string, dryRun, scheduled bool) (JobRun, error) {
	// In this process first (the lease treats its own owner as a renewal),
	// then across processes.
	s.mu.Lock()
	if s.running[jobID] {
		s.mu.Unlock()
		return JobRun{}, fmt.Errorf("job %s: %w", jobID, ErrBusy)
	}
	s.running[jobID] = true
	s.mu.Unlock()
	now := s.e.now()
	ok, err := s.e.store.TryLease(ctx, jobID, s.owner, now, now.Add(s.lease))
	if err != nil || !ok {
		s.mu.Lock()
		delete(s.running, jobID)
		s.mu.Unlock()
		if err != nil {
			return JobRun{}, err
		}
		return JobRun{}, fmt.Errorf("job %s: %w", jobID, ErrBusy)
	}
	defer func() {
		s.mu.Lock()
		delete(s.running, jobID)
		s.mu.Unlock()
		_ = s.e.store.ReleaseLease(context.WithoutCancel(ctx), jobID, s.owner)
	}()
	job, err := s.e.store.Job(ctx, jobID)
	if err != nil {
		return JobRun{}, err
	}
	if scheduled && (job.NextRunAt.IsZero() || job.NextRunAt.After(now)) {
		return JobRun{}, errNotDue // another process ran this tick
	}
	// Renew the lease while the run lasts.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		t := time.NewTicker(s.lease / 3)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				n := s.e.now()
				if ok, err := s.e.store.TryLease(runCtx, jobID, s.owner, n, n.Add(s.lease)); err == nil && !ok {
					s.e.log.Error("scheduler: lost the lease of a running job", "job", job.Name)
					stop()
				}
			}
		}
	}()
	return s.e.runJob(runCtx, job, s.runnerFor(job), dryRun)
}

func (s *Scheduler) runnerFor(j Job) Runner {
	if j.SourceID != "" {
		if src, err := s.e.store.Source(context.Background(), j.SourceID); err == nil {
			if r, ok := s.runners[j.Kind+"/"+string(src.Kind)]; ok {
				return r
			}
		}
	}
	return s.runners[j.Kind]
}

// runJob records a run of job: created as running, progress while it
// runs, then succeeded, failed or quarantined; the job's next run is set
// from its schedule, and a job.run audit event written with the run.
func (e *Engine) runJob(ctx context.Context, job Job, r Runner, dryRun bool) (JobRun, error) {
	run := JobRun{ID: newID(), JobID: job.ID, Status: RunRunning, DryRun: dryRun, StartedAt: e.now()}
	if err := e.inTx(ctx, func(tx Tx) error { return tx.CreateJobRun(ctx, run) }); err != nil {
		return run, err
	}
	rc := &RunContext{Job: job, Run: run, DryRun: dryRun, Engine: e}
	rc.progress = func(c Counts) {
		p := run
		p.Counts = c
		_ = e.inTx(ctx, func(tx Tx) error { return tx.UpdateJobRun(ctx, p) })
	}
	rc.mark = func(w string) error {
		if dryRun {
			return nil
		}
		return e.inTx(ctx, func(tx Tx) error {
			j, err := tx.Job(ctx, job.ID)
			if err != nil {
				return err
			}
			j.Watermark = w
			return tx.UpdateJob(ctx, j)
		})
	}
	var (
		counts Counts
		plan   *Plan
		err    error
	)
	if r == nil {
		err = fmt.Errorf("no runner for %s jobs: %w", job.Kind, ErrInvalid)
	} else {
		counts, plan, err = r(ctx, rc)
	}
	run.Counts, run.FinishedAt = counts, e.now()
	switch {
	case errors.Is(err, ErrQuarantined):
		run.Status = RunQuarantined
	case err != nil:
		run.Status = RunFailed
	default:
		run.Status = RunSucceeded
	}
	if err != nil {
		run.Error = err.Error()
	}
	e.opts.Metrics.JobRun(job.Kind, run.Status)
	if plan != nil {
		b, _ := json.Marshal(plan)
		run.Plan = b
	}
	werr := e.inTx(context.WithoutCancel(ctx), func(tx Tx) error {
		if err := tx.UpdateJobRun(ctx, run); err != nil {
			return err
		}
		j, err := tx.Job(ctx, job.ID)
		if err != nil {
			return err
		}
		j.LastRunAt = run.StartedAt
		if next, err := NextRun(j, run.FinishedAt); err == nil {
			j.NextRunAt = next
		}
		if err := tx.UpdateJob(ctx, j); err != nil {
			return err
		}
		ch := e.newChange(run.FinishedAt, job.OrgID, ChannelSystem, job.SourceID, "scheduler", run.ID)
		ch.add("job.run", "job", job.ID, "", map[string]any{"run": run.ID, "kind": job.Kind, "status": run.Status,
			"dryRun": dryRun, "counts": counts, "error": run.Error})
		return ch.flush(ctx, tx, false)
	})
	return run, errors.Join(err, werr)
}

// checkJob reports every problem of a job at once (as created, or as a
// change leaves it) and, when there is none, its next run after now.
func checkJob(j Job, now time.Time) (time.Time, error) {
	var probs []string
	switch j.Kind {
	case JobFull, JobIncremental, JobReconcile:
	default:
		probs = append(probs, fmt.Sprintf("kind %q is not full, incremental or reconcile", j.Kind))
	}
	if !slugRe.MatchString(j.Name) {
		probs = append(probs, fmt.Sprintf("name %q must be lowercase letters, digits and dashes", j.Name))
	}
	if j.Threshold < 0 || j.Threshold > 1 {
		probs = append(probs, fmt.Sprintf("threshold %v is not between 0 and 1", j.Threshold))
	}
	next, err := NextRun(j, now)
	if err != nil {
		probs = append(probs, err.Error())
	}
	if j.Kind != JobReconcile && j.SourceID == "" {
		probs = append(probs, "a pull job needs a source")
	}
	if len(probs) > 0 {
		return time.Time{}, fmt.Errorf("job %s: %s: %w", j.Name, strings.Join(probs, "; "), ErrInvalid)
	}
	return next, nil
}

// CreateJob stores a job after checking its schedule and kind.
func (e *Engine) CreateJob(ctx context.Context, by Admin, j Job) (Job, error) {
	now := e.now()
	next, err := checkJob(j, now)
	if err != nil {
		return Job{}, err
	}
	j.ID, j.CreatedAt, j.UpdatedAt, j.NextRunAt = newID(), now, now, next
	err = e.inTx(ctx, func(tx Tx) error {
		if _, err := tx.Organization(ctx, j.OrgID); err != nil {
			return err
		}
		if j.SourceID != "" {
			s, err := tx.Source(ctx, j.SourceID)
			if err != nil {
				return err
			}
			if s.OrgID != j.OrgID {
				return fmt.Errorf("source %s belongs to another organization: %w", s.Name, ErrInvalid)
			}
		}
		if err := tx.CreateJob(ctx, j); err != nil {
			return err
		}
		ch := e.newChange(now, j.OrgID, ChannelAdmin, j.SourceID, by.actor(), by.CorrelationID)
		ch.add("job.created", "job", j.ID, "", map[string]any{"name": j.Name, "kind": j.Kind, "schedule": j.Schedule})
		return ch.flush(ctx, tx, false)
	})
	return j, err
}

// ReconcileRunner re-merges every person of the job's organization under the
// current rules, suspends people only login sources know who have not signed
// in for the organization's JITInactiveAfter, and reports what changed. A
// dry run reports without writing.
func ReconcileRunner(ctx context.Context, rc *RunContext) (Counts, *Plan, error) {
	e := rc.Engine
	org, err := e.store.Organization(ctx, rc.Job.OrgID)
	if err != nil {
		return Counts{}, nil, err
	}
	plan := &Plan{Events: map[string]int{}}
	var c Counts
	after := ""
	for {
		page, err := e.store.Identities(ctx, IdentityFilter{OrgID: org.ID, AfterID: after, Limit: 500})
		if err != nil {
			return c, plan, err
		}
		if len(page) == 0 {
			break
		}
		for _, ident := range page {
			after = ident.ID
			c.Seen++
			res, err := e.reconcileOne(ctx, org, ident.ID, rc.DryRun)
			if err != nil {
				c.Errors++
				continue
			}
			plan.note(ident.ID, res, 1000)
			if len(res.Events) > 0 {
				c.Updated++
			} else {
				c.Unchanged++
			}
		}
		rc.Progress(c)
	}
	open, err := e.store.Conflicts(ctx, org.ID, ConflictOpen)
	if err == nil {
		c.Conflicts = len(open)
	}
	plan.Counts = c
	return c, plan, nil
}

func (e *Engine) reconcileOne(ctx context.Context, org Organization, identityID string, dryRun bool) (Result, error) {
	var res Result
	err := e.inTx(ctx, func(tx Tx) error {
		ident, err := tx.Identity(ctx, identityID)
		if err != nil {
			return err
		}
		linked, err := tx.LinkedAccounts(ctx, ident.ID)
		if err != nil {
			return err
		}
		ch := e.newChange(e.now(), org.ID, ChannelSystem, "", "reconcile", "")
		if stale := time.Duration(org.Settings.JITInactiveAfter); stale > 0 && !ident.Suspended && jitOnly(linked) {
			last := ident.LastLoginAt
			if last.IsZero() {
				last = ident.CreatedAt
			}
			if ch.at.Sub(last) >= stale {
				ident.Suspended, ident.SuspendReason = true, fmt.Sprintf("no login for %s (JIT only)", stale)
				if err := e.recomputeForced(ctx, tx, ch, org, &ident, linked); err != nil {
					return err
				}
				res = Result{IdentityID: ident.ID, State: ident.State, Events: ch.events}
				return finish(ctx, tx, ch, dryRun)
			}
		}
		if err := e.recompute(ctx, tx, ch, org, &ident, linked, false, false); err != nil {
			return err
		}
		res = Result{IdentityID: ident.ID, State: ident.State, Events: ch.events}
		return finish(ctx, tx, ch, dryRun)
	})
	if errors.Is(err, errRollback) {
		err = nil
	}
	return res, err
}

func finish(ctx context.Context, tx Tx, ch *change, dryRun bool) error {
	if dryRun {
		return errRollback
	}
	return ch.flush(ctx, tx, false)
}

func jitOnly(linked []LinkedAccount) bool {
	if len(linked) == 0 {
		return false
	}
	for _, a := range linked {
		switch a.SourceKind {
		case KindSAML, KindOIDC, KindEmailDomain:
		default:
			return false
		}
	}
	return true
}
