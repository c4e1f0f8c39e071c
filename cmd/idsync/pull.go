package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/connectors/file"
	"github.com/idsync/idsync/connectors/ldap"
	"github.com/idsync/idsync/connectors/scimpull"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
)

// registerPullRunners registers the full and incremental runners of the
// pull connectors (LDAP, file, SCIM pull).
func registerPullRunners(s *engine.Scheduler) {
	s.Register(engine.JobFull, engine.KindLDAP, ldap.Runner(true))
	s.Register(engine.JobIncremental, engine.KindLDAP, ldap.Runner(false))
	s.Register(engine.JobFull, engine.KindFile, file.Runner(true))
	s.Register(engine.JobIncremental, engine.KindFile, file.Runner(false))
	s.Register(engine.JobFull, engine.KindSCIMPull, scimpull.Runner(true))
	s.Register(engine.JobIncremental, engine.KindSCIMPull, scimpull.Runner(false))
}

// withPullJobCommands adds approve, reject, pause, resume and update to
// the `idsync job` command.
func withPullJobCommands(a *app, job *cobra.Command) *cobra.Command {
	job.AddCommand(pullJobCommands(a)...)
	return job
}

func pullJobCommands(a *app) []*cobra.Command {
	settle := func(use, short string, approve bool) *cobra.Command {
		return &cobra.Command{
			Use: use + " RUN", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
					s := engine.NewScheduler(e, engine.SchedulerOptions{})
					registerRunners(s)
					var (
						r   engine.JobRun
						err error
					)
					if approve {
						r, err = s.ApproveRun(ctx, a.admin(), args[0])
					} else {
						r, err = s.RejectRun(ctx, a.admin(), args[0])
					}
					if err != nil && r.ID == "" {
						return err
					}
					perr := a.print(r, func(w *tabwriter.Writer) {
						if approve {
							fmt.Fprintf(w, "approved run %s; rerun %s: %s\n", args[0], r.ID, r.Status)
							printCounts(w, r.Counts, false)
						} else {
							fmt.Fprintf(w, "rejected run %s: nothing it held back is applied\n", args[0])
						}
					})
					if err != nil {
						return err
					}
					return perr
				})
			},
		}
	}
	approve := settle("approve", "Approve a quarantined run: rerun it now allowing the removals its plan showed", true)
	reject := settle("reject", "Reject a quarantined run: apply nothing it held back", false)

	change := func(use, short string, fill func(cmd *cobra.Command, c *engine.JobChange)) *cobra.Command {
		return &cobra.Command{
			Use: use + " JOB", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				var c engine.JobChange
				fill(cmd, &c)
				return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
					j, err := e.ChangeJob(ctx, a.admin(), args[0], c)
					if err != nil {
						return err
					}
					return a.print(j, func(w *tabwriter.Writer) {
						next := "-"
						if !j.NextRunAt.IsZero() {
							next = j.NextRunAt.Format(time.RFC3339)
						}
						fmt.Fprintf(w, "job %s (%s): enabled %v, schedule %q %s, threshold %v, next run %s\n",
							j.Name, j.ID, j.Enabled, j.Schedule, j.TimeZone, j.Threshold, next)
					})
				})
			},
		}
	}
	pause := change("pause", "Pause a job: its schedule stops until resumed", func(_ *cobra.Command, c *engine.JobChange) {
		f := false
		c.Enabled = &f
	})
	resume := change("resume", "Resume a paused job (missed runs are not replayed)", func(_ *cobra.Command, c *engine.JobChange) {
		t := true
		c.Enabled = &t
	})
	var (
		schedule, tz, kind string
		threshold          float64
		resetMark          bool
	)
	update := change("update", "Change a job's schedule, time zone, kind or threshold", func(cmd *cobra.Command, c *engine.JobChange) {
		if cmd.Flags().Changed("schedule") {
			c.Schedule = &schedule
		}
		if cmd.Flags().Changed("tz") {
			c.TimeZone = &tz
		}
		if cmd.Flags().Changed("kind") {
			c.Kind = &kind
		}
		if cmd.Flags().Changed("threshold") {
			c.Threshold = &threshold
		}
		c.ResetWatermark = resetMark
	})
	update.Flags().StringVar(&schedule, "schedule", "", "cron spec (5 fields or @hourly …); empty: run by hand only")
	update.Flags().StringVar(&tz, "tz", "", "time zone of the schedule")
	update.Flags().StringVar(&kind, "kind", "", "full, incremental or reconcile")
	update.Flags().Float64Var(&threshold, "threshold", 0, "largest share of the source one run may remove or deprovision")
	update.Flags().BoolVar(&resetMark, "reset-watermark", false, "make the next incremental run read everything")
	return []*cobra.Command{approve, reject, pause, resume, update}
}
