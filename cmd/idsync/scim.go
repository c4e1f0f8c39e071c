package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
)

// scimCmd manages the bearer tokens of SCIM directories (sources of kind
// scim); it wraps the engine's tokens like `idsync token`, scoped to one
// directory.
func scimCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "scim", Short: "SCIM 2.0 directories served under /scim/v2/"}
	tok := &cobra.Command{Use: "token", Short: "Create, list and revoke a directory's bearer tokens (stored hashed, shown once)"}
	var name, scope string
	create := &cobra.Command{
		Use: "create SOURCE", Short: "Create a bearer token of a SCIM directory (source ID or org/name); printed once",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				s, err := sourceRef(ctx, db, args[0])
				if err != nil {
					return err
				}
				t, secret, err := e.CreateToken(ctx, a.admin(), engine.Token{Kind: engine.TokenSCIM, SourceID: s.ID, Name: name, Scope: scope})
				if err != nil {
					return err
				}
				return a.print(map[string]any{"token": t, "secret": secret}, func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "created SCIM token %s (%s) for directory %s.\nEndpoint: <your idsync URL>/scim/v2/\n"+
						"Store the secret now, it is not shown again:\n%s\n", t.Name, t.ID, s.Name, secret)
				})
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "a name to recognise it by")
	create.Flags().StringVar(&scope, "scope", "admin", "admin (read and write) or read")
	list := &cobra.Command{
		Use: "list SOURCE", Short: "List a directory's tokens (never their secrets)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				s, err := sourceRef(ctx, db, args[0])
				if err != nil {
					return err
				}
				all, err := db.Tokens(ctx, engine.TokenSCIM, s.OrgID)
				if err != nil {
					return err
				}
				ts := []engine.Token{}
				for _, t := range all {
					if t.SourceID == s.ID {
						ts = append(ts, t)
					}
				}
				return a.print(ts, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "ID\tNAME\tPREFIX\tSCOPE\tCREATED\tREVOKED")
					for _, t := range ts {
						fmt.Fprintf(w, "%s\t%s\t%s…\t%s\t%s\t%v\n", t.ID, t.Name, t.Prefix, t.Scope, t.CreatedAt.Format("2006-01-02"), !t.RevokedAt.IsZero())
					}
				})
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a directory token at once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				return e.RevokeToken(ctx, a.admin(), args[0])
			})
		},
	}
	tok.AddCommand(create, list, revoke)
	cmd.AddCommand(tok)
	return cmd
}
