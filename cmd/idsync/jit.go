package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/jit"
	"github.com/idsync/idsync/storage"
)

// connectionCmd manages JIT connections: engine sources of kind saml, oidc
// or email-domain whose config is a jit.Config.
func connectionCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "connection", Short: "Manage an organization's sign-in connections (SAML, OIDC, email-domain JIT)"}
	var (
		kind, file, issuer, clientID, secretEnv, mdURL, mdFile, nameID, keyAttr, groupMode string
		returnURLs, scopes                                                                 []string
		idpInitiated, trust                                                                bool
		priority                                                                           int
	)
	create := &cobra.Command{
		Use:   "create ORG NAME --kind saml|oidc|email-domain",
		Short: "Add a sign-in connection; --file takes a YAML/JSON jit config (see package jit), flags fill or override it",
		Example: `  idsync connection create acme okta --kind oidc --issuer https://acme.okta.com \
      --client-id 0oa1 --client-secret-env ACME_OKTA_SECRET --return-url https://app.acme.com/
  idsync connection create acme adfs --kind saml --idp-metadata-url https://adfs.acme.com/FederationMetadata/2007-06/FederationMetadata.xml
  idsync connection create acme google --kind email-domain --issuer https://accounts.google.com --client-id … --client-secret-env GOOGLE_SECRET`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			k := engine.SourceKind(kind)
			var cfg jit.Config
			if file != "" {
				b, err := readConfigFile(file)
				if err != nil {
					return err
				}
				if err := yaml.UnmarshalStrict(b, &cfg); err != nil {
					return fmt.Errorf("--file %s: %v: %w", file, err, engine.ErrInvalid)
				}
			}
			f := cmd.Flags().Changed
			if f("issuer") || f("client-id") || f("client-secret-env") || f("scopes") {
				if cfg.OIDC == nil {
					cfg.OIDC = &jit.OIDCConfig{}
				}
				set(&cfg.OIDC.Issuer, issuer, f("issuer"))
				set(&cfg.OIDC.ClientID, clientID, f("client-id"))
				set(&cfg.OIDC.ClientSecretEnv, secretEnv, f("client-secret-env"))
				if f("scopes") {
					cfg.OIDC.Scopes = scopes
				}
			}
			if f("idp-metadata-url") || f("idp-metadata-file") || f("allow-idp-initiated") || f("name-id-format") || f("key-attribute") {
				if cfg.SAML == nil {
					cfg.SAML = &jit.SAMLConfig{}
				}
				set(&cfg.SAML.IDPMetadataURL, mdURL, f("idp-metadata-url"))
				if mdFile != "" {
					b, err := os.ReadFile(mdFile)
					if err != nil {
						return err
					}
					cfg.SAML.IDPMetadataXML = string(b)
				}
				if f("allow-idp-initiated") {
					cfg.SAML.AllowIDPInitiated = idpInitiated
				}
				set(&cfg.SAML.NameIDFormat, nameID, f("name-id-format"))
				set(&cfg.SAML.KeyAttribute, keyAttr, f("key-attribute"))
			}
			if f("return-url") {
				cfg.ReturnURLs = returnURLs
			}
			set(&cfg.Mapping.GroupMode, groupMode, f("group-mode"))
			raw, err := json.Marshal(cfg)
			if err != nil {
				return err
			}
			if _, err := jit.ParseConfig(k, raw); err != nil {
				return err
			}
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, args[0])
				if err != nil {
					return err
				}
				s, err := e.CreateSource(ctx, a.admin(), engine.Source{OrgID: o.ID, Kind: k, Name: args[1],
					Priority: priority, TrustEmails: trust, Config: raw}, true)
				if err != nil {
					return err
				}
				return a.print(connectionView(a, o, s, cfg), func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "created %s connection %s/%s (%s)\n", s.Kind, o.Slug, s.Name, s.ID)
					printEndpoints(w, a, o, s)
				})
			})
		},
	}
	fl := create.Flags()
	fl.StringVar(&kind, "kind", "", "saml, oidc or email-domain")
	fl.StringVarP(&file, "file", "f", "", "connection config file, YAML or JSON (- for stdin)")
	fl.StringVar(&issuer, "issuer", "", "OIDC issuer URL")
	fl.StringVar(&clientID, "client-id", "", "OIDC client ID")
	fl.StringVar(&secretEnv, "client-secret-env", "", "name of the environment variable holding the OIDC client secret (never the secret)")
	fl.StringSliceVar(&scopes, "scopes", nil, "OIDC scopes (default openid,email,profile)")
	fl.StringVar(&mdURL, "idp-metadata-url", "", "SAML IdP metadata URL")
	fl.StringVar(&mdFile, "idp-metadata-file", "", "SAML IdP metadata XML file")
	fl.BoolVar(&idpInitiated, "allow-idp-initiated", false, "accept SAML IdP-initiated (unsolicited) logins")
	fl.StringVar(&nameID, "name-id-format", "", "SAML NameID format: persistent, email, unspecified, transient")
	fl.StringVar(&keyAttr, "key-attribute", "", "SAML attribute that identifies people (required with transient NameIDs)")
	fl.StringSliceVar(&returnURLs, "return-url", nil, "allowed return URLs (first is the default; a trailing * allows a prefix)")
	fl.StringVar(&groupMode, "group-mode", "", "group sync mode: none, assign, append, sync")
	fl.BoolVar(&trust, "trust-emails", false, "treat this IdP's emails as verified")
	fl.IntVar(&priority, "priority", 90, "merge priority (lower wins)")
	_ = create.MarkFlagRequired("kind")

	list := &cobra.Command{
		Use: "list ORG", Short: "List sign-in connections", Args: cobra.ExactArgs(1),
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
				ss = slices.DeleteFunc(ss, func(s engine.Source) bool { return !isConnection(s.Kind) })
				return a.print(ss, func(w *tabwriter.Writer) {
					fmt.Fprintln(w, "NAME\tKIND\tENABLED\tLOGIN URL\tID")
					for _, s := range ss {
						fmt.Fprintf(w, "%s\t%s\t%v\t%s\t%s\n", s.Name, s.Kind, s.Enabled, loginURL(a, o, s), s.ID)
					}
				})
			})
		},
	}
	show := &cobra.Command{
		Use: "show ORG NAME", Short: "Show a connection's config and endpoints", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withEngine(cmd, func(ctx context.Context, db *storage.DB, e *engine.Engine) error {
				o, err := orgBySlug(ctx, db, args[0])
				if err != nil {
					return err
				}
				s, err := db.SourceByName(ctx, o.ID, args[1])
				if err != nil {
					return err
				}
				if !isConnection(s.Kind) {
					return fmt.Errorf("source %s is %s, not a sign-in connection: %w", s.Name, s.Kind, engine.ErrInvalid)
				}
				cfg, cerr := jit.ParseConfig(s.Kind, s.Config)
				v := connectionView(a, o, s, cfg)
				return a.print(v, func(w *tabwriter.Writer) {
					fmt.Fprintf(w, "%s connection %s/%s (%s), enabled %v\n", s.Kind, o.Slug, s.Name, s.ID, s.Enabled)
					printEndpoints(w, a, o, s)
					if cerr != nil {
						fmt.Fprintf(w, "config problem:\t%v\n", cerr)
					}
					b, _ := yaml.Marshal(cfg)
					fmt.Fprintf(w, "config:\n%s", indent(string(b)))
				})
			})
		},
	}
	cmd.AddCommand(create, list, show)
	return cmd
}

func set(dst *string, v string, changed bool) {
	if changed {
		*dst = v
	}
}

func readConfigFile(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}

func isConnection(k engine.SourceKind) bool {
	return k == engine.KindSAML || k == engine.KindOIDC || k == engine.KindEmailDomain
}

func loginURL(a *app, o engine.Organization, s engine.Source) string {
	return strings.TrimRight(a.cfg.BaseURL, "/") + "/login/" + o.Slug + "/" + s.Name
}

type connectionJSON struct {
	engine.Source
	Endpoints map[string]string `json:"endpoints"`
	Parsed    jit.Config        `json:"parsedConfig"`
}

func endpoints(a *app, o engine.Organization, s engine.Source) map[string]string {
	base := loginURL(a, o, s)
	m := map[string]string{"login": base}
	if s.Kind == engine.KindSAML {
		m["acs"], m["metadata"] = base+"/acs", base+"/metadata"
	} else {
		m["redirectURI"] = base + "/callback"
	}
	return m
}

func connectionView(a *app, o engine.Organization, s engine.Source, cfg jit.Config) connectionJSON {
	return connectionJSON{Source: s, Endpoints: endpoints(a, o, s), Parsed: cfg}
}

func printEndpoints(w *tabwriter.Writer, a *app, o engine.Organization, s engine.Source) {
	ep := endpoints(a, o, s)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range ep {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(w, "%s:\t%s\n", k, ep[k])
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}

// jitHandler is the JIT handler (/login/, /session, /logout,
// /api/v1/jit/). Its external base URL is the configured baseURL; without
// one, each request's host.
func jitHandler(e *engine.Engine, baseURL string, log *slog.Logger) http.Handler {
	h, err := jit.New(e, jit.Options{BaseURL: baseURL, Logger: log})
	if err != nil {
		panic(err) // the store is always *storage.DB here
	}
	return h
}
