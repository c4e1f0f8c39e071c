package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
)

func auditCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify and export the lifecycle audit log"}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the hash chain: any edited, removed or reordered event fails it",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				start := time.Now()
				r, err := engine.VerifyAudit(ctx, db)
				if err != nil {
					return err
				}
				if err := a.print(r, func(w *tabwriter.Writer) {
					if r.OK {
						fmt.Fprintf(w, "ok: %d events, chain intact, head %d %s (%s)\n", r.Events, r.LastSeq, r.LastHash, time.Since(start).Round(time.Millisecond))
					} else {
						fmt.Fprintf(w, "BROKEN at event %d: %s\n", r.FirstBad, r.Problem)
					}
				}); err != nil {
					return err
				}
				if !r.OK {
					return fmt.Errorf("audit log fails verification at event %d: %w", r.FirstBad, engine.ErrConflict)
				}
				return nil
			})
		},
	}
	var (
		format, org, identity, action, channel, source, since, until string
	)
	export := &cobra.Command{
		Use:   "export",
		Short: "Export audit events as JSON lines or CSV, with filters",
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "jsonl" && format != "csv" {
				return fmt.Errorf("--format %q is not jsonl or csv: %w", format, engine.ErrInvalid)
			}
			f := engine.AuditFilter{IdentityID: identity, Action: action, Channel: channel, SourceID: source}
			var err error
			if f.Since, err = parseTime(since); err != nil {
				return err
			}
			if f.Until, err = parseTime(until); err != nil {
				return err
			}
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				if org != "" {
					o, err := orgBySlug(ctx, db, org)
					if err != nil {
						return err
					}
					f.OrgID = o.ID
				}
				bw := bufio.NewWriter(a.out)
				defer bw.Flush()
				if format == "jsonl" {
					enc := json.NewEncoder(bw)
					return db.StreamAudit(ctx, f, func(ev engine.AuditEvent) error { return enc.Encode(ev) })
				}
				cw := csv.NewWriter(bw)
				_ = cw.Write([]string{"seq", "id", "at", "org_id", "channel", "source_id", "actor", "action",
					"subject_type", "subject_id", "identity_id", "changes", "correlation_id", "prev_hash", "hash"})
				err := db.StreamAudit(ctx, f, func(ev engine.AuditEvent) error {
					return cw.Write([]string{strconv.FormatInt(ev.Seq, 10), ev.ID, ev.At.Format(time.RFC3339Nano), ev.OrgID,
						ev.Channel, ev.SourceID, ev.Actor, ev.Action, ev.SubjectType, ev.SubjectID, ev.IdentityID,
						string(ev.Changes), ev.CorrelationID, ev.PrevHash, ev.Hash})
				})
				cw.Flush()
				if err != nil {
					return err
				}
				return cw.Error()
			})
		},
	}
	export.Flags().StringVar(&format, "format", "jsonl", "jsonl or csv")
	export.Flags().StringVar(&org, "org", "", "organization slug or ID")
	export.Flags().StringVar(&identity, "identity", "", "identity ID")
	export.Flags().StringVar(&action, "action", "", "action, e.g. identity.deprovisioned")
	export.Flags().StringVar(&channel, "channel", "", "jit, scim, ldap, pull, admin or system")
	export.Flags().StringVar(&source, "source", "", "source ID")
	export.Flags().StringVar(&since, "since", "", "from this time (RFC 3339 or a duration ago, e.g. 24h)")
	export.Flags().StringVar(&until, "until", "", "before this time (RFC 3339 or a duration ago)")
	cmd.AddCommand(verify, export)
	return cmd
}

// parseTime reads RFC 3339 or a duration before now ("24h").
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("time %q is neither RFC 3339 nor a duration: %w", s, engine.ErrInvalid)
}

func jobCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "job", Short: "Create, list, run and inspect scheduled jobs"}
	var (
		org, source, kind, schedule, tz string
		threshold                       float64
	)
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a job (kind full, incremental or reconcile; cron schedule)", Args: cobra.ExactArgs(1),
		Example: `  idsync job create nightly-reconcile --org acme --kind reconcile --schedule "0 3 * * *" --tz Europe/Paris`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, org)
				if err != nil {
					return err
				}
				j := engine.Job{OrgID: o.ID, Name: args[0], Kind: kind, Schedule: schedule, TimeZone: tz, Threshold: threshold, Enabled: true}
				if source != "" {
					s, err := sourceRef(ctx, db, source)
					if err != nil {
						return err
					}
					j.SourceID = s.ID
				}
				j, err = e.CreateJob(ctx, a.admin(), j)
				if err != nil {
					return err
				}
				return a.print(j, func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "created job %s (%s), next run %s\n", j.Name, j.ID, j.NextRunAt.Format(time.RFC3339))
				})
			})
		},
	}
	create.Flags().StringVar(&org, "org", "", "organization")
	create.Flags().StringVar(&source, "source", "", "source (ID or org/name) for pull jobs")
	create.Flags().StringVar(&kind, "kind", engine.JobReconcile, "full, incremental or reconcile")
	create.Flags().StringVar(&schedule, "schedule", "", "cron spec (5 fields or @hourly …); empty: run by hand only")
	create.Flags().StringVar(&tz, "tz", "", "time zone of the schedule (default UTC)")
	create.Flags().Float64Var(&threshold, "threshold", 0, "largest share of the source one run may remove (default 0.1)")
	_ = create.MarkFlagRequired("org")
	list := &cobra.Command{
		Use: "list", Short: "List jobs",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				orgID, err := optionalOrgID(ctx, db, org)
				if err != nil {
					return err
				}
				js, err := db.Jobs(ctx, orgID)
				if err != nil {
					return err
				}
				return a.print(js, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "NAME\tKIND\tSCHEDULE\tENABLED\tNEXT RUN\tID")
					for _, j := range js {
						fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\t%s\n", j.Name, j.Kind, j.Schedule, j.Enabled, j.NextRunAt.Format(time.RFC3339), j.ID)
					}
				})
			})
		},
	}
	list.Flags().StringVar(&org, "org", "", "organization")
	var dryRun bool
	run := &cobra.Command{
		Use: "run JOB", Short: "Run a job now and wait for it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				s := engine.NewScheduler(e, engine.SchedulerOptions{})
				registerRunners(s)
				r, err := s.RunJob(ctx, args[0], dryRun, false)
				perr := a.print(r, func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "run %s: %s\n", r.ID, r.Status)
					printCounts(w, r.Counts, dryRun)
				})
				if err != nil {
					return err
				}
				return perr
			})
		},
	}
	run.Flags().BoolVar(&dryRun, "dry-run", false, "plan only")
	runs := &cobra.Command{
		Use: "runs JOB", Short: "Show a job's recent runs", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				rs, err := db.JobRuns(ctx, args[0], 20)
				if err != nil {
					return err
				}
				return a.print(rs, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "RUN\tSTATUS\tSTARTED\tDURATION\tSEEN\tCREATED\tUPDATED\tREMOVED\tERRORS\tERROR")
					for _, r := range rs {
						d := ""
						if !r.FinishedAt.IsZero() {
							d = r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond).String()
						}
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.ID, r.Status, r.StartedAt.Format(time.RFC3339), d,
							r.Counts.Seen, r.Counts.Created, r.Counts.Updated, r.Counts.Removed, r.Counts.Errors, r.Error)
					}
				})
			})
		},
	}
	cmd.AddCommand(create, list, run, runs)
	return cmd
}
