package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/admin"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
)

// The admin API, webhooks and comparison wiring: serve starts the webhook
// worker and sets up invitations (startAdmin), and mounts the API at
// /api/v1/ and the console at /console/ (adminMounts); the CLI has compare,
// events, webhook and invite commands.

// startAdmin starts the webhook delivery worker until ctx ends and sets up
// invitation mail: SMTP from IDSYNC_SMTP_ADDR, IDSYNC_SMTP_FROM,
// IDSYNC_SMTP_USERNAME and IDSYNC_SMTP_PASSWORD; without IDSYNC_SMTP_ADDR,
// development mode writes each mail, link included, to the log. It fills
// the server's admin dependencies.
func startAdmin(ctx context.Context, a *app, e *engine.Engine, deps *serverDeps) {
	log := a.log
	var mailer admin.Mailer = admin.LogMailer{Log: log}
	if m, err := admin.NewMailer(admin.SMTPConfigFromEnv(), log); err != nil {
		log.Error("invitations: SMTP is misconfigured; mails go to the log", "error", err.Error())
	} else {
		mailer = m
	}
	if st, ok := e.Store().(admin.Store); ok {
		deps.invites = &admin.Invitations{E: e, Store: st, Mailer: mailer, BaseURL: a.cfg.BaseURL}
	}
	w, err := admin.NewWorker(e, admin.WorkerOptions{Logger: log})
	if err != nil {
		log.Error("webhooks: not started", "error", err.Error())
		return
	}
	deps.webhooks = w
	go w.Run(ctx)
}

// adminMounts returns the admin API and the console, one handler behind
// both. Without serve's scheduler (tests) run-now uses a scheduler of its
// own.
func adminMounts(e *engine.Engine, deps serverDeps, log *slog.Logger) []mount {
	sched := deps.sched
	if sched == nil {
		sched = engine.NewScheduler(e, engine.SchedulerOptions{})
		registerRunners(sched)
	}
	h, err := admin.New(e, admin.Options{Logger: log, Scheduler: sched, Webhooks: deps.webhooks, Invitations: deps.invites})
	if err != nil {
		down := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "admin API unavailable: "+err.Error(), http.StatusServiceUnavailable)
		})
		return []mount{{pattern: "/api/v1/", handler: down}, {pattern: "/console/", handler: down}}
	}
	return []mount{{pattern: "/api/v1/", handler: h}, {pattern: "/console/", handler: admin.NewConsole(h)}}
}

func adminStore(db *storage.DB) admin.Store { return db }

func parseWindow(since, until string) (time.Time, time.Time, error) {
	var s, u time.Time
	var err error
	if since != "" {
		if s, err = time.Parse(time.RFC3339, since); err != nil {
			if d, derr := time.ParseDuration(since); derr == nil {
				s, err = time.Now().Add(-d), nil
			} else {
				return s, u, fmt.Errorf("--since %q is not an RFC 3339 time or a duration: %w", since, engine.ErrInvalid)
			}
		}
	}
	if until != "" {
		if u, err = time.Parse(time.RFC3339, until); err != nil {
			return s, u, fmt.Errorf("--until %q is not an RFC 3339 time: %w", until, engine.ErrInvalid)
		}
	}
	return s, u, nil
}

func compareCmd(a *app) *cobra.Command {
	var since, until string
	cmd := &cobra.Command{
		Use: "compare ORG", Short: "Compare how people came in: JIT vs SCIM vs LDAP vs invitation, drift, lags", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, u, err := parseWindow(since, until)
			if err != nil {
				return err
			}
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, args[0])
				if err != nil {
					return err
				}
				c, err := admin.BuildCompare(ctx, adminStore(db), o.ID, s, u)
				if err != nil {
					return err
				}
				return a.print(c, func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "organization\t%s (%d people)\n", o.Slug, c.People)
					for _, k := range []string{admin.CameJITOnly, admin.CameSCIMOnly, admin.CameLDAPOnly, admin.CamePullOnly,
						admin.CameInvitation, admin.CameAPIOnly, admin.CameSeveral, admin.CameNone} {
						if n := c.CameIn[k]; n > 0 {
							fmt.Fprintf(w, "came in: %s\t%d\n", k, n)
						}
					}
					fmt.Fprintf(w, "directory people who never signed in\t%d\n", c.NeverSignedInCount)
					fmt.Fprintf(w, "JIT people no directory knows\t%d\n", c.JITUnknownCount)
					fmt.Fprintf(w, "attribute drift (JIT vs directory)\t%d\n", c.DriftCount)
					for _, d := range c.Drift {
						fmt.Fprintf(w, "  %s %s\tjit %q vs %s %q: %s won (%s)\n", d.IdentityID, d.Attribute, d.JITValue,
							d.DirectorySource, d.DirectoryValue, d.Winner, d.Why)
					}
					fmt.Fprintf(w, "deprovisioning lag\t%d, p50 %s, p95 %s, max %s\n", c.Deprovisioning.Count, secs(c.Deprovisioning.P50),
						secs(c.Deprovisioning.P95), secs(c.Deprovisioning.Max))
					fmt.Fprintf(w, "logins after a directory said gone\t%d\n", len(c.LoginsAfterGone))
					for _, l := range c.LoginsAfterGone {
						fmt.Fprintf(w, "  %s\tgone %s, login %s (%s)\n", l.IdentityID, l.GoneAt.Format(time.RFC3339), l.LoginAt.Format(time.RFC3339), l.Evidence)
					}
					fmt.Fprintf(w, "time to access\t%d, p50 %s, p95 %s, max %s\n", c.TimeToAccess.Count, secs(c.TimeToAccess.P50),
						secs(c.TimeToAccess.P95), secs(c.TimeToAccess.Max))
				})
			})
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "window start: RFC 3339 time or a duration back from now (720h)")
	cmd.Flags().StringVar(&until, "until", "", "window end: RFC 3339 time")
	return cmd
}

func secs(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

func eventsCmd(a *app) *cobra.Command {
	var org, action string
	var after int64
	var limit int
	cmd := &cobra.Command{
		Use: "events", Short: "Print lifecycle events after a cursor (resume with --after CURSOR)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				f := engine.AuditFilter{AfterSeq: after}
				if org != "" {
					o, err := orgBySlug(ctx, db, org)
					if err != nil {
						return err
					}
					f.OrgID = o.ID
				}
				page := admin.EventPage{Events: []admin.Event{}}
				last := after
				err := db.StreamAudit(ctx, f, func(ev engine.AuditEvent) error {
					if len(page.Events) == limit {
						page.More = true
						return context.Canceled
					}
					last = ev.Seq
					if matchActions(action, ev.Action) {
						page.Events = append(page.Events, admin.EventOf(ev))
					}
					return nil
				})
				if err != nil && err != context.Canceled {
					return err
				}
				page.Cursor = fmt.Sprint(last)
				return a.print(page, func(w *tabwriter.Writer) {
					for _, ev := range page.Events {
						fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", ev.Seq, ev.At.Format(time.RFC3339), ev.Action, ev.Channel, ev.IdentityID)
					}
					fmt.Fprintf(w, "cursor\t%s\n", page.Cursor)
				})
			})
		},
	}
	cmd.Flags().StringVar(&org, "org", "", "organization slug or ID")
	cmd.Flags().StringVar(&action, "action", "", "actions, comma-separated; identity.* for a prefix")
	cmd.Flags().Int64Var(&after, "after", 0, "cursor: the seq to resume after")
	cmd.Flags().IntVar(&limit, "limit", 100, "events per page")
	return cmd
}

func matchActions(patterns, action string) bool {
	if patterns == "" {
		return true
	}
	for _, p := range strings.Split(patterns, ",") {
		p = strings.TrimSpace(p)
		if p == action || (strings.HasSuffix(p, "*") && strings.HasPrefix(action, strings.TrimSuffix(p, "*"))) {
			return true
		}
	}
	return false
}

func webhookCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "webhook", Short: "Manage per-organization webhooks (signed event delivery)"}
	var actions []string
	var fromStart bool
	show := func(w *tabwriter.Writer, h admin.Webhook) {
		fmt.Fprintf(w, "%s\t%s\t%s\tcursor %d\tfailures %d\n", h.ID, h.Status, h.URL, h.Cursor, h.Failures)
	}
	create := &cobra.Command{
		Use: "create ORG URL", Short: "Create a webhook; its signing secret is printed once", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, args[0])
				if err != nil {
					return err
				}
				h, secret, err := admin.CreateWebhook(ctx, db, o.ID, admin.WebhookInput{URL: &args[1], Actions: actions,
					FromStart: fromStart}, time.Now().UTC())
				if err != nil {
					return err
				}
				return a.print(admin.NewWebhook{Webhook: h, Secret: secret}, func(w *tabwriter.Writer) {
					show(w, h)
					fmt.Fprintf(w, "signing secret (shown once)\t%s\n", secret)
				})
			})
		},
	}
	create.Flags().StringSliceVar(&actions, "action", nil, "only these actions (identity.* for a prefix); default all")
	create.Flags().BoolVar(&fromStart, "from-start", false, "deliver the organization's whole history, not only new events")
	list := &cobra.Command{
		Use: "list ORG", Short: "List webhooks", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, args[0])
				if err != nil {
					return err
				}
				hs, err := db.AdminWebhooks(ctx, o.ID)
				if err != nil {
					return err
				}
				out := []admin.Webhook{}
				for _, h := range hs {
					out = append(out, admin.Webhook{ID: h.ID, OrgID: h.OrgID, URL: h.URL, Actions: h.Actions, Cursor: h.CursorSeq,
						Status: h.Status, Failures: h.Failures, NextAttemptAt: h.NextAttemptAt, CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt})
				}
				return a.print(out, func(w *tabwriter.Writer) {
					for _, h := range out {
						show(w, h)
					}
				})
			})
		},
	}
	setStatus := func(use, status, short string) *cobra.Command {
		return &cobra.Command{
			Use: use + " WEBHOOK", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
					h, err := db.AdminWebhook(ctx, args[0])
					if err != nil {
						return err
					}
					v, err := admin.ChangeWebhook(ctx, db, h, admin.WebhookInput{Status: &status}, time.Now().UTC())
					if err != nil {
						return err
					}
					return a.print(v, func(w *tabwriter.Writer) { show(w, v) })
				})
			},
		}
	}
	del := &cobra.Command{
		Use: "delete WEBHOOK", Short: "Delete a webhook and its delivery log", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				if err := db.AdminDeleteWebhook(ctx, args[0]); err != nil {
					return err
				}
				return a.print(map[string]string{"deleted": args[0]}, func(w *tabwriter.Writer) { fmt.Fprintln(w, "deleted", args[0]) })
			})
		},
	}
	deliveries := &cobra.Command{
		Use: "deliveries WEBHOOK", Short: "Show a webhook's delivery log, newest first", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				ds, err := db.AdminDeliveries(ctx, args[0], 100)
				if err != nil {
					return err
				}
				return a.print(ds, func(w *tabwriter.Writer) {
					for _, d := range ds {
						fmt.Fprintf(w, "%s\t%s\tevent %d\tattempt %d\t%s\tHTTP %d\t%s\n", d.ID, d.At.Format(time.RFC3339), d.EventSeq,
							d.Attempt, d.Status, d.HTTPStatus, d.Error)
					}
				})
			})
		},
	}
	redeliver := &cobra.Command{
		Use: "redeliver DELIVERY", Short: "Send a logged delivery's event again now", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				w, err := admin.NewWorker(e, admin.WorkerOptions{Logger: a.log})
				if err != nil {
					return err
				}
				d, err := w.Redeliver(ctx, args[0])
				if err != nil {
					return err
				}
				return a.print(d, func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "%s\tevent %d\t%s\tHTTP %d\t%s\n", d.ID, d.EventSeq, d.Status, d.HTTPStatus, d.Error)
				})
			})
		},
	}
	cmd.AddCommand(create, list, setStatus("pause", admin.WebhookPaused, "Pause deliveries"),
		setStatus("resume", admin.WebhookActive, "Resume deliveries (failures reset)"), del, deliveries, redeliver)
	return cmd
}

func inviteCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "invite", Short: "Invite people by email to an organization (single-use, expiring links)"}
	var role string
	var ttl time.Duration
	create := &cobra.Command{
		Use: "create ORG EMAIL", Short: "Invite an email address; mails the link (SMTP from IDSYNC_SMTP_*, else the log) and prints it once", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, args[0])
				if err != nil {
					return err
				}
				m, err := admin.NewMailer(admin.SMTPConfigFromEnv(), a.log)
				if err != nil {
					return err
				}
				iv := &admin.Invitations{E: e, Store: db, Mailer: m, BaseURL: a.cfg.BaseURL, TTL: ttl}
				inv, link, err := iv.Invite(ctx, a.admin(), o.ID, args[1], role)
				if err != nil {
					return err
				}
				return a.print(admin.NewInvitation{AdminInvitation: inv, Link: link}, func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "%s\t%s\t%s\texpires %s\n", inv.ID, inv.Email, inv.Role, inv.ExpiresAt.Format(time.RFC3339))
					fmt.Fprintf(w, "link (single use, shown once)\t%s\n", link)
				})
			})
		},
	}
	create.Flags().StringVar(&role, "role", "", "role in the organization (default: its default role)")
	create.Flags().DurationVar(&ttl, "ttl", 7*24*time.Hour, "how long the link works")
	list := &cobra.Command{
		Use: "list ORG", Short: "List invitations", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, args[0])
				if err != nil {
					return err
				}
				is, err := db.AdminInvitations(ctx, o.ID)
				if err != nil {
					return err
				}
				return a.print(is, func(w *tabwriter.Writer) {
					for _, i := range is {
						state := "open"
						switch {
						case !i.AcceptedAt.IsZero():
							state = "accepted by " + i.AcceptedBy
						case !i.RevokedAt.IsZero():
							state = "revoked"
						case time.Now().After(i.ExpiresAt):
							state = "expired"
						}
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", i.ID, i.Email, i.Role, state)
					}
				})
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke ORG INVITATION", Short: "Revoke an unused invitation", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, args[0])
				if err != nil {
					return err
				}
				if err := db.AdminRevokeInvitation(ctx, args[1], time.Now().UTC()); err != nil {
					return err
				}
				if err := e.AuditInvitation(ctx, a.admin(), o.ID, "invitation.revoked", args[1], nil); err != nil {
					return err
				}
				return a.print(map[string]string{"revoked": args[1]}, func(w *tabwriter.Writer) { fmt.Fprintln(w, "revoked", args[1]) })
			})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
