package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/connectors/file"
	"github.com/idsync/idsync/connectors/ldap"
	"github.com/idsync/idsync/connectors/scimpull"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/jit"
	"github.com/idsync/idsync/storage"
)

// withEngine opens the database for one command and closes it after.
func (a *app) withEngine(cmd *cobra.Command, fn func(ctx context.Context, db *storage.DB, e *engine.Engine) error) error {
	ctx := cmd.Context()
	db, e, err := a.open(ctx, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(ctx, db, e)
}

// orgBySlug finds an organization by slug or ID.
func orgBySlug(ctx context.Context, db *storage.DB, ref string) (engine.Organization, error) {
	if o, err := db.OrganizationBySlug(ctx, ref); err == nil {
		return o, nil
	}
	return db.Organization(ctx, ref)
}

// optionalOrgID resolves an optional organization flag ("" means all).
func optionalOrgID(ctx context.Context, db *storage.DB, ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	o, err := orgBySlug(ctx, db, ref)
	return o.ID, err
}

// sourceRef finds a source by ID or by "org/name".
func sourceRef(ctx context.Context, db *storage.DB, ref string) (engine.Source, error) {
	if org, name, ok := strings.Cut(ref, "/"); ok {
		o, err := orgBySlug(ctx, db, org)
		if err != nil {
			return engine.Source{}, err
		}
		return db.SourceByName(ctx, o.ID, name)
	}
	return db.Source(ctx, ref)
}

func migrateCmd(a *app) *cobra.Command {
	var to int
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database migrations (serve does this at start too)",
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := storage.Open(cmd.Context(), a.cfg.Database, storage.Options{SkipMigrate: true})
			if err != nil {
				return err
			}
			defer db.Close()
			v, err := db.Migrate(cmd.Context(), to)
			if err != nil {
				return err
			}
			return a.print(map[string]any{"version": v, "latest": storage.LatestVersion()}, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "schema at version %d (latest %d)\n", v, storage.LatestVersion())
			})
		},
	}
	cmd.Flags().IntVar(&to, "to", 0, "stop at this version (0: latest)")
	return cmd
}

func orgCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "org", Short: "Manage organizations"}
	var name, defaultRole string
	var roles []string
	create := &cobra.Command{
		Use: "create SLUG", Short: "Create an organization", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := e.CreateOrganization(ctx, a.admin(), engine.Organization{Slug: args[0], Name: name, Roles: roles, DefaultRole: defaultRole})
				if err != nil {
					return err
				}
				return a.print(o, func(w *tabwriter.Writer) { fmt.Fprintf(w, "created organization %s (%s)\n", o.Slug, o.ID) })
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "display name")
	create.Flags().StringSliceVar(&roles, "roles", nil, "roles (default member,admin)")
	create.Flags().StringVar(&defaultRole, "default-role", "", "role new members get (default: the first role)")
	list := &cobra.Command{
		Use: "list", Short: "List organizations",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				orgs, err := db.Organizations(ctx)
				if err != nil {
					return err
				}
				return a.print(orgs, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "SLUG\tNAME\tDEFAULT ROLE\tID")
					for _, o := range orgs {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", o.Slug, o.Name, o.DefaultRole, o.ID)
					}
				})
			})
		},
	}
	var settings string
	update := &cobra.Command{
		Use: "set-rules ORG", Short: "Set an organization's match rules and priorities (JSON OrgSettings)", Args: cobra.ExactArgs(1),
		Example: `  idsync org set-rules acme --settings '{"matchRules":["email","employeeNumber"],"priority":{"attributes":{"department":["scim","ldap","jit"]}}}'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var s engine.OrgSettings
			dec := json.NewDecoder(strings.NewReader(settings))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&s); err != nil {
				return fmt.Errorf("--settings: %v: %w", err, engine.ErrInvalid)
			}
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, args[0])
				if err != nil {
					return err
				}
				o, err = e.UpdateOrganization(ctx, a.admin(), o.ID, func(o *engine.Organization) error { o.Settings = s; return nil })
				if err != nil {
					return err
				}
				return a.print(o, func(w *tabwriter.Writer) { fmt.Fprintf(w, "updated %s\n", o.Slug) })
			})
		},
	}
	update.Flags().StringVar(&settings, "settings", "{}", "settings as JSON")
	cmd.AddCommand(create, list, update)
	return cmd
}

func domainCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "domain", Short: "Manage an organization's email domains"}
	var verified bool
	add := &cobra.Command{
		Use: "add ORG DOMAIN", Short: "Claim a domain (--verified once ownership is proven)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, args[0])
				if err != nil {
					return err
				}
				if err := e.AddDomain(ctx, a.admin(), o.ID, args[1], verified); err != nil {
					return err
				}
				return a.print(map[string]any{"org": o.Slug, "domain": args[1], "verified": verified}, func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "%s claims %s (verified: %v)\n", o.Slug, args[1], verified)
				})
			})
		},
	}
	add.Flags().BoolVar(&verified, "verified", false, "the domain is verified")
	remove := &cobra.Command{
		Use: "remove ORG DOMAIN", Short: "Drop a domain claim", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, args[0])
				if err != nil {
					return err
				}
				return e.RemoveDomain(ctx, a.admin(), o.ID, args[1])
			})
		},
	}
	list := &cobra.Command{
		Use: "list ORG", Short: "List an organization's domains", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, args[0])
				if err != nil {
					return err
				}
				ds, err := db.Domains(ctx, o.ID)
				if err != nil {
					return err
				}
				return a.print(ds, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "DOMAIN\tVERIFIED")
					for _, d := range ds {
						fmt.Fprintf(w, "%s\t%v\n", d.Domain, d.Verified)
					}
				})
			})
		},
	}
	cmd.AddCommand(add, remove, list)
	return cmd
}

func sourceCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "source", Short: "Manage an organization's sources (feeds)"}
	var (
		kind, config string
		priority     int
		owns         []string
		auth         string
		trust        bool
	)
	create := &cobra.Command{
		Use: "create ORG NAME --kind KIND", Short: "Add a source (saml, oidc, email-domain, scim, ldap, scim-pull, file)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, args[0])
				if err != nil {
					return err
				}
				s := engine.Source{OrgID: o.ID, Kind: engine.SourceKind(kind), Name: args[1], Priority: priority, Owns: owns,
					TrustEmails: trust, Config: json.RawMessage(config)}
				def := auth == ""
				s.Authoritative = auth == "true"
				s, err = e.CreateSource(ctx, a.admin(), s, def)
				if err != nil {
					return err
				}
				return a.print(s, func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "created %s source %s/%s (%s), priority %d, authoritative %v\n", s.Kind, o.Slug, s.Name, s.ID, s.Priority, s.Authoritative)
				})
			})
		},
	}
	create.Flags().StringVar(&kind, "kind", "", "source kind")
	create.Flags().IntVar(&priority, "priority", 100, "merge priority (lower wins)")
	create.Flags().StringSliceVar(&owns, "owns", nil, "attributes this source may set (default all)")
	create.Flags().StringVar(&auth, "authoritative", "", "true/false: may decide lifecycle (default: directories yes, logins no)")
	create.Flags().BoolVar(&trust, "trust-emails", false, "treat this source's emails as verified")
	create.Flags().StringVar(&config, "config", "", "source config as JSON")
	_ = create.MarkFlagRequired("kind")
	list := &cobra.Command{
		Use: "list ORG", Short: "List sources", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, args[0])
				if err != nil {
					return err
				}
				ss, err := db.Sources(ctx, o.ID)
				if err != nil {
					return err
				}
				return a.print(ss, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "NAME\tKIND\tPRIORITY\tAUTHORITATIVE\tENABLED\tID")
					for _, s := range ss {
						fmt.Fprintf(w, "%s\t%s\t%d\t%v\t%v\t%s\n", s.Name, s.Kind, s.Priority, s.Authoritative, s.Enabled, s.ID)
					}
				})
			})
		},
	}
	var setPriority int
	var setEnabled, setAuth string
	update := &cobra.Command{
		Use: "update SOURCE", Short: "Change a source (SOURCE is an ID or org/name)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				s, err := sourceRef(ctx, db, args[0])
				if err != nil {
					return err
				}
				s, err = e.UpdateSource(ctx, a.admin(), s.ID, func(s *engine.Source) error {
					if cmd.Flags().Changed("priority") {
						s.Priority = setPriority
					}
					if cmd.Flags().Changed("owns") {
						s.Owns = owns
					}
					if setEnabled != "" {
						s.Enabled = setEnabled == "true"
					}
					if setAuth != "" {
						s.Authoritative = setAuth == "true"
					}
					if cmd.Flags().Changed("config") {
						s.Config = json.RawMessage(config)
					}
					return nil
				})
				if err != nil {
					return err
				}
				return a.print(s, func(w *tabwriter.Writer) { fmt.Fprintf(w, "updated source %s\n", s.Name) })
			})
		},
	}
	update.Flags().IntVar(&setPriority, "priority", 100, "merge priority (lower wins)")
	update.Flags().StringSliceVar(&owns, "owns", nil, "attributes this source may set")
	update.Flags().StringVar(&setEnabled, "enabled", "", "true/false")
	update.Flags().StringVar(&setAuth, "authoritative", "", "true/false")
	update.Flags().StringVar(&config, "config", "", "source config as JSON")
	cmd.AddCommand(create, list, update)
	return cmd
}

func tokenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage admin API keys and SCIM directory tokens (stored hashed, shown once)"}
	var org, source, scope, name string
	create := &cobra.Command{
		Use: "create admin|scim", Short: "Create a key; the secret is printed once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				t := engine.Token{Kind: args[0], Name: name, Scope: scope}
				if org != "" {
					o, err := orgBySlug(ctx, db, org)
					if err != nil {
						return err
					}
					t.OrgID = o.ID
				}
				if source != "" {
					s, err := sourceRef(ctx, db, source)
					if err != nil {
						return err
					}
					t.SourceID = s.ID
				}
				t, secret, err := e.CreateToken(ctx, a.admin(), t)
				if err != nil {
					return err
				}
				return a.print(map[string]any{"token": t, "secret": secret}, func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "created %s token %s (%s). Store the secret now, it is not shown again:\n%s\n", t.Kind, t.Name, t.ID, secret)
				})
			})
		},
	}
	create.Flags().StringVar(&org, "org", "", "organization (admin keys: limit to it)")
	create.Flags().StringVar(&source, "source", "", "SCIM directory (source ID or org/name)")
	create.Flags().StringVar(&scope, "scope", "admin", "admin or read")
	create.Flags().StringVar(&name, "name", "", "a name to recognise it by")
	var kind string
	list := &cobra.Command{
		Use: "list", Short: "List tokens (never their secrets)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				orgID, err := optionalOrgID(ctx, db, org)
				if err != nil {
					return err
				}
				ts, err := db.Tokens(ctx, kind, orgID)
				if err != nil {
					return err
				}
				return a.print(ts, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "ID\tNAME\tPREFIX\tSCOPE\tSOURCE\tREVOKED")
					for _, t := range ts {
						fmt.Fprintf(w, "%s\t%s\t%s…\t%s\t%s\t%v\n", t.ID, t.Name, t.Prefix, t.Scope, t.SourceID, !t.RevokedAt.IsZero())
					}
				})
			})
		},
	}
	list.Flags().StringVar(&kind, "kind", engine.TokenAdmin, "admin or scim")
	list.Flags().StringVar(&org, "org", "", "organization")
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a token at once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				return e.RevokeToken(ctx, a.admin(), args[0])
			})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func personCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "person", Short: "Create, import, show, suspend, link and delete people"}
	var attrs, groups, roles []string
	var key string
	create := &cobra.Command{
		Use: "create ORG --attr userName=ada@acme.com --attr email=…", Short: "Create a person through the admin source", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := engine.Person{Key: key, Attrs: engine.Attrs{}, Groups: groups, Roles: roles}
			for _, kv := range attrs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--attr %q is not name=value: %w", kv, engine.ErrInvalid)
				}
				p.Attrs[k] = v
			}
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, args[0])
				if err != nil {
					return err
				}
				r, err := e.CreatePerson(ctx, a.admin(), o.ID, p)
				if err != nil {
					return err
				}
				return a.print(r, func(w *tabwriter.Writer) { fmt.Fprintf(w, "%s %s (%s)\n", r.Outcome, r.IdentityID, r.State) })
			})
		},
	}
	create.Flags().StringArrayVar(&attrs, "attr", nil, "attribute name=value (repeatable)")
	create.Flags().StringSliceVar(&groups, "groups", nil, "groups to grant")
	create.Flags().StringSliceVar(&roles, "roles", nil, "roles in the organization")
	create.Flags().StringVar(&key, "key", "", "key in the admin source (default externalId, userName or email)")

	var format string
	var dryRun bool
	imp := &cobra.Command{
		Use: "import ORG FILE", Short: "Bulk create or update people from CSV or JSON lines (- for stdin)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.importPeople(cmd, args[0], args[1], format, dryRun)
		},
	}
	imp.Flags().StringVar(&format, "format", "", "csv or jsonl (default from the file name)")
	imp.Flags().BoolVar(&dryRun, "dry-run", false, "show the plan, write nothing")

	show := &cobra.Command{
		Use: "show IDENTITY", Short: "Show a person: golden record, provenance, accounts, memberships", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				id, err := db.Identity(ctx, args[0])
				if err != nil {
					return err
				}
				accts, err := db.LinkedAccounts(ctx, id.ID)
				if err != nil {
					return err
				}
				groups, err := db.IdentityMemberships(ctx, id.ID)
				if err != nil {
					return err
				}
				orgs, err := db.OrgMemberships(ctx, id.ID)
				if err != nil {
					return err
				}
				v := map[string]any{"identity": id, "accounts": accts, "groups": groups, "organizations": orgs}
				return a.print(v, func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "identity %s\tstate %s\tversion %d\n", id.ID, id.State, id.Version)
					fmt.Fprintln(w, "ATTRIBUTE\tVALUE\tFROM SOURCE\tAT")
					for k, val := range id.Attrs {
						p := id.Provenance[k]
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", k, val, p.SourceID, p.At.Format(time.RFC3339))
					}
					fmt.Fprintln(w, "ACCOUNT\tSOURCE\tKEY\tACTIVE\tREMOVED")
					for _, ac := range accts {
						fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%v\n", ac.ID, ac.SourceName, ac.Key, ac.Active, ac.Removed)
					}
					for _, g := range groups {
						fmt.Fprintf(w, "group %s\tvia %s\n", g.GroupName, g.SourceID)
					}
				})
			})
		},
	}
	var reason string
	suspend := &cobra.Command{
		Use: "suspend IDENTITY", Short: "Suspend a person until restored", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				id, err := e.Suspend(ctx, a.admin(), args[0], reason)
				if err != nil {
					return err
				}
				return a.print(id, func(w *tabwriter.Writer) { fmt.Fprintf(w, "%s is %s\n", id.ID, id.State) })
			})
		},
	}
	suspend.Flags().StringVar(&reason, "reason", "", "why")
	restore := &cobra.Command{
		Use: "restore IDENTITY", Short: "Lift a suspension", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				id, err := e.Restore(ctx, a.admin(), args[0])
				if err != nil {
					return err
				}
				return a.print(id, func(w *tabwriter.Writer) { fmt.Fprintf(w, "%s is %s\n", id.ID, id.State) })
			})
		},
	}
	link := &cobra.Command{
		Use: "link ACCOUNT IDENTITY", Short: "Move an account to another person", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				return e.Link(ctx, a.admin(), args[0], args[1])
			})
		},
	}
	unlink := &cobra.Command{
		Use: "unlink ACCOUNT", Short: "Split an account off into a new person", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				id, err := e.Unlink(ctx, a.admin(), args[0])
				if err != nil {
					return err
				}
				return a.print(map[string]string{"identityId": id}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "new identity %s\n", id) })
			})
		},
	}
	del := &cobra.Command{
		Use: "delete IDENTITY", Short: "Delete a person and all their accounts (the audit log keeps their history)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				return e.DeleteIdentity(ctx, a.admin(), args[0])
			})
		},
	}
	cmd.AddCommand(create, imp, show, suspend, restore, link, unlink, del)
	return cmd
}

func printCounts(w *tabwriter.Writer, c engine.Counts, dryRun bool) {
	if dryRun {
		fmt.Fprintln(w, "dry run: nothing written")
	}
	fmt.Fprintf(w, "seen\t%d\ncreated\t%d\nupdated\t%d\nunchanged\t%d\nremoved\t%d\nconflicts\t%d\nerrors\t%d\n",
		c.Seen, c.Created, c.Updated, c.Unchanged, c.Removed, c.Conflicts, c.Errors)
}

func conflictCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "conflict", Short: "List and resolve conflicts the reconciler refused to guess"}
	var status string
	list := &cobra.Command{
		Use: "list ORG", Short: "List conflicts", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, args[0])
				if err != nil {
					return err
				}
				cs, err := db.Conflicts(ctx, o.ID, status)
				if err != nil {
					return err
				}
				return a.print(cs, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "ID\tSTATUS\tKEY\tREASON\tCANDIDATES")
					for _, c := range cs {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Status, c.Key, c.Reason, strings.Join(c.Candidates, ","))
					}
				})
			})
		},
	}
	list.Flags().StringVar(&status, "status", engine.ConflictOpen, "open, resolved or empty for all")
	resolve := &cobra.Command{
		Use: "resolve CONFLICT IDENTITY|new", Short: "Link to a candidate or create a new person", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				r, err := e.ResolveConflict(ctx, a.admin(), args[0], args[1])
				if err != nil {
					return err
				}
				return a.print(r, func(w *tabwriter.Writer) { fmt.Fprintf(w, "%s %s\n", r.Outcome, r.IdentityID) })
			})
		},
	}
	cmd.AddCommand(list, resolve)
	return cmd
}

func planCmd(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "plan ORG FILE",
		Short: "Dry-run an import: show the creates, updates (with field diffs), links and conflicts it would make",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.importPeople(cmd, args[0], args[1], format, true)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "csv or jsonl (default from the file name)")
	return cmd
}

// importPeople imports (or, dryRun, plans) a CSV or JSON-lines file ("-":
// stdin) into an organization through its admin source. A dry run lists
// every planned change.
func (a *app) importPeople(cmd *cobra.Command, org, path, format string, dryRun bool) error {
	f := os.Stdin
	if path != "-" {
		var err error
		if f, err = os.Open(path); err != nil {
			return err
		}
		defer f.Close()
	}
	if format == "" {
		format = "jsonl"
		if strings.HasSuffix(path, ".csv") {
			format = "csv"
		}
	}
	return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
		o, err := orgBySlug(ctx, db, org)
		if err != nil {
			return err
		}
		plan, err := e.Import(ctx, a.admin(), o.ID, f, engine.ImportFormat(format), engine.SnapshotOptions{DryRun: dryRun})
		perr := a.print(plan, func(w *tabwriter.Writer) {
			printCounts(w, plan.Counts, dryRun)
			if dryRun {
				for _, it := range plan.Items {
					fmt.Fprintf(w, "%s\t%s\t%s\n", it.Action, it.Key, string(it.Detail))
				}
			}
		})
		if err != nil {
			return err
		}
		return perr
	})
}

// validateSourceConfig checks a source's config with the package that reads
// it, so a broken config is refused when written (CLI and admin API alike),
// not at the first run. It is wired into the engine by app.open.
func validateSourceConfig(kind engine.SourceKind, raw json.RawMessage) error {
	var err error
	switch kind {
	case engine.KindLDAP:
		_, err = ldap.ParseConfig(raw)
	case engine.KindFile:
		_, err = file.ParseConfig(raw)
	case engine.KindSCIMPull:
		_, err = scimpull.ParseConfig(raw)
	case engine.KindSAML, engine.KindOIDC, engine.KindEmailDomain:
		_, err = jit.ParseConfig(kind, raw)
	}
	return err
}
