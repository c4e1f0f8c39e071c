package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
	"github.com/idsync/idsync/storage/storagetest"
)

var bg = context.Background()

// countingRunner counts runs; each run waits on gate (if set) first.
type countingRunner struct {
	runs    atomic.Int32
	started chan struct{}
	gate    chan struct{}
}

func (c *countingRunner) run(ctx context.Context, rc *engine.RunContext) (engine.Counts, *engine.Plan, error) {
	c.runs.Add(1)
	if c.started != nil {
		c.started <- struct{}{}
	}
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return engine.Counts{}, nil, ctx.Err()
		}
	}
	return engine.Counts{Seen: 1, Unchanged: 1}, nil, nil
}

func everyMinute(t *testing.T, f *storagetest.Fixture) engine.Job {
	t.Helper()
	j, err := f.Engine.CreateJob(bg, engine.Admin{Actor: "test"}, engine.Job{OrgID: f.Org.ID, SourceID: f.LDAP.ID,
		Name: "every-minute", Kind: engine.JobFull, Schedule: "* * * * *", TimeZone: "Europe/Paris", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func newScheduler(e *engine.Engine, owner string, r *countingRunner) *engine.Scheduler {
	s := engine.NewScheduler(e, engine.SchedulerOptions{Owner: owner, Lease: time.Minute, Tick: time.Hour})
	s.Register(engine.JobFull, engine.KindLDAP, r.run)
	return s
}

func runs(t *testing.T, db *storage.DB, jobID string) []engine.JobRun {
	t.Helper()
	rs, err := db.JobRuns(bg, jobID, 100)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestSchedulerNeverOverlaps: while a run of a job is in flight, running
// it by hand from another process is refused (ErrBusy) and ticks of both
// processes start no second run.
func TestSchedulerNeverOverlaps(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			f := storagetest.NewFixture(t, b.Open(t))
			j := everyMinute(t, f)
			r := &countingRunner{started: make(chan struct{}, 10), gate: make(chan struct{})}
			s := newScheduler(f.Engine, "a", r)
			f.Clock.Advance(2 * time.Minute)
			s.Tick(bg)
			<-r.started
			other := newScheduler(f.Engine, "b", r)
			if _, err := other.RunJob(bg, j.ID, false, false); !errors.Is(err, engine.ErrBusy) {
				t.Fatalf("a second run while one is in flight: %v, want ErrBusy", err)
			}
			f.Clock.Advance(30 * time.Second) // still due (the run has not finished), lease still held
			s.Tick(bg)
			other.Tick(bg)
			close(r.gate)
			s.Wait()
			other.Wait()
			if n := r.runs.Load(); n != 1 {
				t.Fatalf("%d runs, want 1", n)
			}
		})
	}
}

// TestTwoSchedulersOnePostgres: two processes (two connection pools, two
// schedulers) on one PostgreSQL database tick together; each due run
// happens exactly once.
func TestTwoSchedulersOnePostgres(t *testing.T) {
	dsn := storagetest.PostgresDSN(t)
	open := func() *storage.DB {
		db, err := storage.Open(bg, dsn, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	db1, db2 := open(), open()
	f := storagetest.NewFixture(t, db1)
	j := everyMinute(t, f)
	e2 := engine.New(db2, engine.Options{Now: f.Clock.Now})
	r := &countingRunner{}
	// Four processes, two per connection pool, each with its own owner.
	scheds := []*engine.Scheduler{newScheduler(f.Engine, "p1", r), newScheduler(e2, "p2", r),
		newScheduler(f.Engine, "p3", r), newScheduler(e2, "p4", r)}
	const ticks = 5
	for i := range ticks {
		f.Clock.Advance(time.Minute)
		var wg sync.WaitGroup
		for _, s := range scheds {
			wg.Go(func() { s.Tick(bg) })
		}
		wg.Wait()
		for _, s := range scheds {
			s.Wait()
		}
		if n := int(r.runs.Load()); n != i+1 {
			t.Fatalf("after tick %d: %d runs, want %d", i+1, n, i+1)
		}
	}
	if rs := runs(t, db1, j.ID); len(rs) != ticks {
		t.Fatalf("%d recorded runs, want %d", len(rs), ticks)
	}
}

// TestSchedulerRecoversDeadLease: a process that died mid-run holds the
// lease until it expires; the next tick after that runs the job.
func TestSchedulerRecoversDeadLease(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			f := storagetest.NewFixture(t, b.Open(t))
			j := everyMinute(t, f)
			f.Clock.Advance(2 * time.Minute)
			now := f.Clock.Now()
			// The dead process took the lease for a minute and never released it.
			if ok, err := f.DB.TryLease(bg, j.ID, "dead:1", now, now.Add(time.Minute)); err != nil || !ok {
				t.Fatalf("lease: %v %v", ok, err)
			}
			r := &countingRunner{}
			s := newScheduler(f.Engine, "alive", r)
			s.Tick(bg)
			s.Wait()
			if r.runs.Load() != 0 {
				t.Fatal("ran while a live lease was held")
			}
			f.Clock.Advance(61 * time.Second)
			s.Tick(bg)
			s.Wait()
			if r.runs.Load() != 1 {
				t.Fatalf("%d runs after the dead lease expired, want 1", r.runs.Load())
			}
			if got := f.DB; got != nil {
				jj, _ := got.Job(bg, j.ID)
				if jj.LeaseOwner != "" {
					t.Fatalf("lease still held by %q after the run", jj.LeaseOwner)
				}
			}
		})
	}
}

// TestSchedulerMissedRunsOnce: an hour of missed minutes runs once at
// start, then the job waits for its next minute.
func TestSchedulerMissedRunsOnce(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			f := storagetest.NewFixture(t, b.Open(t))
			j := everyMinute(t, f)
			f.Clock.Advance(time.Hour) // nobody was up
			r := &countingRunner{}
			s := newScheduler(f.Engine, "a", r)
			s.Tick(bg)
			s.Wait()
			s.Tick(bg)
			s.Wait()
			if r.runs.Load() != 1 {
				t.Fatalf("%d runs for an hour missed, want 1", r.runs.Load())
			}
			jj, err := f.DB.Job(bg, j.ID)
			if err != nil || !jj.NextRunAt.After(f.Clock.Now()) {
				t.Fatalf("next run %v is not after now %v (%v)", jj.NextRunAt, f.Clock.Now(), err)
			}
		})
	}
}

// TestJobPauseResume: a paused job is not run by ticks; resuming sets its
// next run from now (missed runs are not replayed); changes are audited.
func TestJobPauseResume(t *testing.T) {
	for _, b := range storagetest.Backends() {
		t.Run("database="+b.Name, func(t *testing.T) {
			f := storagetest.NewFixture(t, b.Open(t))
			j := everyMinute(t, f)
			off, on := false, true
			if _, err := f.Engine.ChangeJob(bg, engine.Admin{Actor: "test"}, j.ID, engine.JobChange{Enabled: &off}); err != nil {
				t.Fatal(err)
			}
			r := &countingRunner{}
			s := newScheduler(f.Engine, "a", r)
			f.Clock.Advance(10 * time.Minute)
			s.Tick(bg)
			s.Wait()
			if r.runs.Load() != 0 {
				t.Fatal("a paused job ran")
			}
			jj, err := f.Engine.ChangeJob(bg, engine.Admin{Actor: "test"}, j.ID, engine.JobChange{Enabled: &on})
			if err != nil || !jj.NextRunAt.After(f.Clock.Now()) {
				t.Fatalf("resume: %v, next %v", err, jj.NextRunAt)
			}
			bad := "not a cron"
			thr := 2.0
			if _, err := f.Engine.ChangeJob(bg, engine.Admin{Actor: "test"}, j.ID, engine.JobChange{Schedule: &bad, Threshold: &thr}); !errors.Is(err, engine.ErrInvalid) {
				t.Fatalf("bad change: %v", err)
			}
			if n := len(storagetest.Of(f.Events(0), "job.paused")) + len(storagetest.Of(f.Events(0), "job.resumed")); n != 2 {
				t.Fatalf("%d pause/resume audit events, want 2", n)
			}
		})
	}
}

// TestJobChangeIsCheckedAsCreate: a change is held to the rules a new job
// is; a reconcile job (which has no source) cannot become a pull.
func TestJobChangeIsCheckedAsCreate(t *testing.T) {
	f := storagetest.NewFixture(t, storagetest.SQLite(t))
	j, err := f.Engine.CreateJob(bg, engine.Admin{Actor: "test"}, engine.Job{OrgID: f.Org.ID, Name: "nightly-reconcile",
		Kind: engine.JobReconcile, Schedule: "0 3 * * *", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	full := engine.JobFull
	if _, err := f.Engine.ChangeJob(bg, engine.Admin{Actor: "test"}, j.ID, engine.JobChange{Kind: &full}); !errors.Is(err, engine.ErrInvalid) ||
		!strings.Contains(err.Error(), "needs a source") {
		t.Fatalf("reconcile job turned into a pull without a source: %v", err)
	}
	if got, err := f.DB.Job(bg, j.ID); err != nil || got.Kind != engine.JobReconcile {
		t.Fatalf("job after the refused change: %+v %v", got, err)
	}
}
