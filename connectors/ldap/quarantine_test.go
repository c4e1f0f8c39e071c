package ldap_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/idsync/idsync/connectors/ldap"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage/storagetest"
)

func scheduler(f *storagetest.Fixture) *engine.Scheduler {
	s := engine.NewScheduler(f.Engine, engine.SchedulerOptions{Owner: "test"})
	s.Register(engine.JobFull, engine.KindLDAP, ldap.Runner(true))
	s.Register(engine.JobIncremental, engine.KindLDAP, ldap.Runner(false))
	return s
}

func planOf(t *testing.T, r engine.JobRun) engine.Plan {
	t.Helper()
	var p engine.Plan
	if err := json.Unmarshal(r.Plan, &p); err != nil {
		t.Fatalf("plan of run %s: %v", r.ID, err)
	}
	return p
}

// TestQuarantineApproveReject: a dry run writes nothing; a full sync that
// would remove more than the job's threshold is quarantined with its plan
// and removes no one; rejecting it applies nothing; approving reruns it
// allowing what the plan showed. Deprovisions (entries turned disabled)
// count against the threshold like removals.
func TestQuarantineApproveReject(t *testing.T) {
	backends(t, func(t *testing.T, f *storagetest.Fixture) {
		s := seeded(t)
		src := newSource(t, f, "corp", people(s, map[string]any{"disabledAttr": "employeeType", "disabledValue": "disabled"}))
		job, err := f.Engine.CreateJob(bg, engine.Admin{Actor: "test"}, engine.Job{OrgID: f.Org.ID, SourceID: src.ID,
			Name: "corp-full", Kind: engine.JobFull, Enabled: true, Threshold: 0.1})
		if err != nil {
			t.Fatal(err)
		}
		sch := scheduler(f)
		run := func(dry bool) engine.JobRun {
			t.Helper()
			r, err := sch.RunJob(bg, job.ID, dry, false)
			if err != nil && !errors.Is(err, engine.ErrQuarantined) {
				t.Fatalf("run: %v", err)
			}
			return r
		}

		if r := run(true); r.Status != engine.RunSucceeded || r.Counts.Created != 240 || live(t, f, src) != 0 {
			t.Fatalf("dry run: %s %+v, live %d; want 240 planned, none written", r.Status, r.Counts, live(t, f, src))
		}
		if r := run(false); r.Status != engine.RunSucceeded || live(t, f, src) != 240 {
			t.Fatalf("first run: %s %+v (%s)", r.Status, r.Counts, r.Error)
		}

		var del strings.Builder
		for i := 100; i < 130; i++ {
			fmt.Fprintf(&del, "uid=u%04d,ou=people,dc=test\n", i)
		}
		s.Modify(t, "ldapdelete", del.String())
		q := run(false)
		if q.Status != engine.RunQuarantined || live(t, f, src) != 240 {
			t.Fatalf("30 of 240 gone: run %s, live %d; want quarantined, 240 live", q.Status, live(t, f, src))
		}
		if p := planOf(t, q); len(p.Removals) != 30 || p.Events[engine.PlannedRemovals] != 30 {
			t.Fatalf("quarantined plan: %d removals, events %v", len(p.Removals), p.Events)
		}
		if r, err := sch.RejectRun(bg, engine.Admin{Actor: "test"}, q.ID); err != nil || r.Status != engine.RunRejected || live(t, f, src) != 240 {
			t.Fatalf("reject: %v %s, live %d", err, r.Status, live(t, f, src))
		}
		if _, err := sch.ApproveRun(bg, engine.Admin{Actor: "test"}, q.ID); !errors.Is(err, engine.ErrConflict) {
			t.Fatalf("approving a rejected run: %v, want ErrConflict", err)
		}

		q = run(false)
		next, err := sch.ApproveRun(bg, engine.Admin{Actor: "test"}, q.ID)
		if err != nil || next.Status != engine.RunSucceeded || next.Counts.Removed != 30 || live(t, f, src) != 210 {
			t.Fatalf("approve: %v, rerun %s %+v, live %d; want 30 removed", err, next.Status, next.Counts, live(t, f, src))
		}
		if got, _ := f.DB.JobRun(bg, q.ID); got.Status != engine.RunApproved {
			t.Fatalf("approved run's status = %s", got.Status)
		}

		var dis strings.Builder
		for i := 0; i < 25; i++ {
			fmt.Fprintf(&dis, "dn: uid=u%04d,ou=people,dc=test\nchangetype: modify\nreplace: employeeType\nemployeeType: disabled\n\n", i)
		}
		s.Modify(t, "ldapmodify", dis.String())
		if r := run(true); r.Status != engine.RunQuarantined || planOf(t, r).Events[engine.PlannedDeprovisions] != 25 {
			t.Fatalf("dry run of 25 deprovisions: %s, plan %s", r.Status, r.Plan)
		}
		d := run(false)
		p := planOf(t, d)
		if d.Status != engine.RunQuarantined || p.Events[engine.PlannedDeprovisions] != 25 || len(p.Items) == 0 {
			t.Fatalf("25 of 210 disabled: run %s, plan events %v; want quarantined", d.Status, p.Events)
		}
		if a := accountOf(t, f, src, "u0000@acme.test"); !a.Active || f.State(a.IdentityID) != engine.State("active") {
			t.Fatalf("a quarantined run deprovisioned u0000")
		}
		if next, err := sch.ApproveRun(bg, engine.Admin{Actor: "test"}, d.ID); err != nil || next.Status != engine.RunSucceeded {
			t.Fatalf("approve deprovisions: %v %s %s", err, next.Status, next.Error)
		}
		if a := accountOf(t, f, src, "u0000@acme.test"); a.Active || f.State(a.IdentityID) == engine.State("active") {
			t.Fatalf("approved run did not deprovision u0000")
		}
		if evs := storagetest.Of(f.Events(0), "job.run.approved"); len(evs) != 2 {
			t.Fatalf("%d job.run.approved events, want 2", len(evs))
		}
	})
}
