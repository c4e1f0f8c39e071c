package storagetest

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/idsync/idsync/engine"
)

// newJob stores a job of the LDAP source through a transaction.
func (f *Fixture) newJob(name string) engine.Job {
	f.T.Helper()
	now := f.Clock.Now()
	j := engine.Job{ID: engine.NewID(), OrgID: f.Org.ID, SourceID: f.LDAP.ID, Name: name, Kind: "full",
		Schedule: "*/15 * * * *", TimeZone: "Europe/Paris", Enabled: true, Threshold: 0.25,
		Config: json.RawMessage(`{"baseDN":"dc=acme,dc=test"}`), NextRunAt: now.Add(15 * time.Minute),
		CreatedAt: now, UpdatedAt: now}
	if err := f.DB.InTx(bg, func(tx engine.Tx) error { return tx.CreateJob(bg, j) }); err != nil {
		f.T.Fatalf("create job: %v", err)
	}
	return j
}

func (f *Fixture) job(id string) engine.Job {
	f.T.Helper()
	j, err := f.DB.Job(bg, id)
	if err != nil {
		f.T.Fatalf("job %s: %v", id, err)
	}
	return j
}

var _ = register(
	Case{"a job lease is exclusive until it expires", func(t *testing.T, f *Fixture) {
		j := f.newJob("ldap-full")
		now := f.Clock.Now()
		lease := func(owner string, at time.Time) bool {
			t.Helper()
			ok, err := f.DB.TryLease(bg, j.ID, owner, at, at.Add(time.Minute))
			if err != nil {
				t.Fatalf("lease by %s: %v", owner, err)
			}
			return ok
		}
		if !lease("a", now) {
			t.Fatal("a free lease was refused")
		}
		if got := f.job(j.ID); got.LeaseOwner != "a" || !got.LeaseUntil.Equal(now.Add(time.Minute)) {
			t.Errorf("lease = %q until %v", got.LeaseOwner, got.LeaseUntil)
		}
		if lease("b", now.Add(30*time.Second)) {
			t.Error("b took a's unexpired lease")
		}
		if !lease("a", now.Add(30*time.Second)) {
			t.Error("a could not renew its own lease")
		}
		if lease("b", now.Add(80*time.Second)) {
			t.Error("b took a's renewed lease before it expired")
		}
		if !lease("b", now.Add(2*time.Minute)) {
			t.Error("b could not take an expired lease")
		}
		if got := f.job(j.ID).LeaseOwner; got != "b" {
			t.Errorf("owner %q, want b", got)
		}
		if err := f.DB.ReleaseLease(bg, j.ID, "a"); err != nil {
			t.Fatal(err)
		}
		if got := f.job(j.ID).LeaseOwner; got != "b" {
			t.Errorf("a released b's lease: owner %q", got)
		}
		if err := f.DB.ReleaseLease(bg, j.ID, "b"); err != nil {
			t.Fatal(err)
		}
		if got := f.job(j.ID); got.LeaseOwner != "" {
			t.Errorf("after release: owner %q", got.LeaseOwner)
		}
		if !lease("a", now.Add(2*time.Minute)) {
			t.Error("a released lease could not be taken")
		}
		if ok, err := f.DB.TryLease(bg, "no-such-job", "a", now, now.Add(time.Minute)); ok || err != nil {
			t.Errorf("lease of a missing job = %v, %v", ok, err)
		}
	}},

	Case{"jobs and job runs are stored updated and listed", func(t *testing.T, f *Fixture) {
		j := f.newJob("ldap-full")
		f.newJob("another")
		got := f.job(j.ID)
		if got.Name != j.Name || got.Schedule != j.Schedule || got.TimeZone != j.TimeZone || got.Threshold != 0.25 ||
			!got.Enabled || string(got.Config) != string(j.Config) || !got.NextRunAt.Equal(j.NextRunAt) || !got.LastRunAt.IsZero() {
			t.Errorf("job read back = %+v, want %+v", got, j)
		}
		jobs, err := f.DB.Jobs(bg, f.Org.ID)
		if err != nil || len(jobs) != 2 || jobs[0].Name != "another" || jobs[1].ID != j.ID {
			t.Errorf("jobs = %+v, %v", jobs, err)
		}
		if err := f.DB.InTx(bg, func(tx engine.Tx) error { return tx.CreateJob(bg, j) }); !errors.Is(err, engine.ErrExists) {
			t.Errorf("a second job with the same ID: %v, want ErrExists", err)
		}

		// Updating settings leaves the lease alone.
		now := f.Clock.Now()
		if ok, err := f.DB.TryLease(bg, j.ID, "runner", now, now.Add(time.Hour)); !ok || err != nil {
			t.Fatalf("lease: %v %v", ok, err)
		}
		j.Watermark, j.LastRunAt, j.UpdatedAt = "usn:42", now, now
		if err := f.DB.InTx(bg, func(tx engine.Tx) error { return tx.UpdateJob(bg, j) }); err != nil {
			t.Fatalf("update job: %v", err)
		}
		if got := f.job(j.ID); got.Watermark != "usn:42" || !got.LastRunAt.Equal(now) || got.LeaseOwner != "runner" {
			t.Errorf("after update: %+v", got)
		}

		runs := []engine.JobRun{
			{ID: engine.NewID(), JobID: j.ID, Status: engine.RunRunning, StartedAt: now},
			{ID: engine.NewID(), JobID: j.ID, Status: engine.RunRunning, DryRun: true, StartedAt: now.Add(time.Minute)},
		}
		if err := f.DB.InTx(bg, func(tx engine.Tx) error {
			for _, r := range runs {
				if err := tx.CreateJobRun(bg, r); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatalf("create runs: %v", err)
		}
		done := runs[0]
		done.Status, done.FinishedAt, done.Error = engine.RunQuarantined, now.Add(30*time.Second), "would remove 40%"
		done.Counts = engine.Counts{Seen: 10, Created: 2, Removed: 4}
		done.Plan = json.RawMessage(`{"removals":["a","b"]}`)
		if err := f.DB.InTx(bg, func(tx engine.Tx) error { return tx.UpdateJobRun(bg, done) }); err != nil {
			t.Fatalf("update run: %v", err)
		}
		got1, err := f.DB.JobRun(bg, done.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got1.Status != engine.RunQuarantined || got1.Counts != done.Counts || got1.Error != done.Error ||
			!got1.FinishedAt.Equal(done.FinishedAt) || string(got1.Plan) != string(done.Plan) {
			t.Errorf("run read back = %+v, want %+v", got1, done)
		}
		list, err := f.DB.JobRuns(bg, j.ID, 10)
		if err != nil || len(list) != 2 || list[0].ID != runs[1].ID || !list[0].DryRun || list[1].ID != done.ID {
			t.Errorf("runs = %+v, %v; want newest first", list, err)
		}
		if list, _ := f.DB.JobRuns(bg, j.ID, 1); len(list) != 1 {
			t.Errorf("limit 1 returned %d runs", len(list))
		}
		missing := engine.JobRun{ID: "nope", JobID: j.ID, Status: engine.RunFailed}
		if err := f.DB.InTx(bg, func(tx engine.Tx) error { return tx.UpdateJobRun(bg, missing) }); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("update of a missing run: %v, want ErrNotFound", err)
		}
		if err := f.DB.InTx(bg, func(tx engine.Tx) error { return tx.DeleteJob(bg, j.ID) }); err != nil {
			t.Fatalf("delete job: %v", err)
		}
		if _, err := f.DB.Job(bg, j.ID); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("job after delete: %v", err)
		}
		if f.Count("job_runs", "job_id = ?", j.ID) != 0 {
			t.Errorf("runs of a deleted job remain")
		}
	}},
)
