// Command idsync is the one binary: `serve` runs the HTTP server, the
// scheduler and the engine; the other commands manage organizations,
// sources, tokens, people, jobs and the audit log against the same database.
// This package only wires the others together.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
)

// Config is idsync's configuration: one YAML file (json tags), then
// IDSYNC_* environment variables, then flags. Secrets are never written in
// the file; it names environment variables that hold them.
//
//	database: idsync.db            # a SQLite path or postgres:// URL
//	listen: 127.0.0.1:8080
//	baseURL: http://localhost:8080
//	log: {level: info, format: text}
//	engine: {touchInterval: 1h}
//	scheduler: {tick: 10s, lease: 60s}
type Config struct {
	Database string `json:"database"`
	Listen   string `json:"listen"`
	BaseURL  string `json:"baseURL"`
	Log      struct {
		Level  string `json:"level"`
		Format string `json:"format"`
	} `json:"log"`
	Engine struct {
		TouchInterval engine.Duration `json:"touchInterval"`
	} `json:"engine"`
	Scheduler struct {
		Tick  engine.Duration `json:"tick"`
		Lease engine.Duration `json:"lease"`
	} `json:"scheduler"`
	// ShutdownTimeout bounds a graceful stop (default 20s).
	ShutdownTimeout engine.Duration `json:"shutdownTimeout"`
}

func defaultConfig() Config {
	var c Config
	c.Database = "idsync.db"
	c.Listen = "127.0.0.1:8080"
	c.Log.Level = "info"
	c.Log.Format = "text"
	c.ShutdownTimeout = engine.Duration(20 * time.Second)
	return c
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var probs []string
	if c.Database == "" {
		probs = append(probs, "database is empty")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		probs = append(probs, fmt.Sprintf("log.level %q is not debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		probs = append(probs, fmt.Sprintf("log.format %q is not text or json", c.Log.Format))
	}
	if len(probs) > 0 {
		return fmt.Errorf("config: %s", strings.Join(probs, "; "))
	}
	return nil
}

type app struct {
	cfgPath  string
	database string
	listen   string
	output   string
	cfg      Config
	// publicURL is baseURL as configured (empty if not), for handlers that
	// can derive it from the request instead.
	publicURL string
	log       *slog.Logger
	out       io.Writer
}

func (a *app) loadConfig() error {
	a.cfg = defaultConfig()
	path := a.cfgPath
	if path == "" {
		path = os.Getenv("IDSYNC_CONFIG")
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := yaml.UnmarshalStrict(b, &a.cfg); err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
	}
	for env, dst := range map[string]*string{
		"IDSYNC_DATABASE": &a.cfg.Database, "IDSYNC_LISTEN": &a.cfg.Listen, "IDSYNC_BASE_URL": &a.cfg.BaseURL,
		"IDSYNC_LOG_LEVEL": &a.cfg.Log.Level, "IDSYNC_LOG_FORMAT": &a.cfg.Log.Format,
	} {
		if v := os.Getenv(env); v != "" {
			*dst = v
		}
	}
	if a.database != "" {
		a.cfg.Database = a.database
	}
	if a.listen != "" {
		a.cfg.Listen = a.listen
	}
	a.publicURL = a.cfg.BaseURL // as configured: JIT falls back to each request's host
	if a.cfg.BaseURL == "" {
		a.cfg.BaseURL = "http://" + a.cfg.Listen
	}
	if err := a.cfg.Validate(); err != nil {
		return err
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(a.cfg.Log.Level))
	hopts := &slog.HandlerOptions{Level: lvl}
	if a.cfg.Log.Format == "json" {
		a.log = slog.New(slog.NewJSONHandler(os.Stderr, hopts))
	} else {
		a.log = slog.New(slog.NewTextHandler(os.Stderr, hopts))
	}
	return nil
}

// open opens the database (migrating it) and an engine on it.
func (a *app) open(ctx context.Context, m engine.Metrics) (*storage.DB, *engine.Engine, error) {
	db, err := storage.Open(ctx, a.cfg.Database, storage.Options{})
	if err != nil {
		return nil, nil, err
	}
	e := engine.New(db, engine.Options{Logger: a.log, Metrics: m,
		TouchInterval: time.Duration(a.cfg.Engine.TouchInterval), CheckSourceConfig: validateSourceConfig})
	return db, e, nil
}

// print writes v as JSON (--output json) or through the text function.
func (a *app) print(v any, text func(w *tabwriter.Writer)) error {
	if a.output == "json" {
		enc := json.NewEncoder(a.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	text(tw)
	return tw.Flush()
}

func (a *app) admin() engine.Admin {
	user := os.Getenv("USER")
	if user == "" {
		user = "unknown"
	}
	return engine.Admin{Actor: "cli:" + user}
}

func newRoot() *cobra.Command {
	a := &app{out: os.Stdout}
	root := &cobra.Command{
		Use:           "idsync",
		Short:         "idsync keeps one identity graph fed by SAML/OIDC logins, SCIM pushes and directory pulls",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			a.out = cmd.OutOrStdout()
			if a.output != "text" && a.output != "json" {
				return fmt.Errorf("--output %q is not text or json", a.output)
			}
			return a.loadConfig()
		},
	}
	root.PersistentFlags().StringVar(&a.cfgPath, "config", "", "YAML config file (env IDSYNC_CONFIG)")
	root.PersistentFlags().StringVar(&a.database, "database", "", "SQLite path or postgres:// URL (env IDSYNC_DATABASE; default idsync.db)")
	root.PersistentFlags().StringVarP(&a.output, "output", "o", "text", "output format: text or json")
	root.AddCommand(serveCmd(a), migrateCmd(a), orgCmd(a), domainCmd(a), sourceCmd(a), tokenCmd(a),
		personCmd(a), conflictCmd(a), withPullJobCommands(a, jobCmd(a)), auditCmd(a), planCmd(a), scimCmd(a), connectionCmd(a),
		compareCmd(a), eventsCmd(a), webhookCmd(a), inviteCmd(a))
	return root
}

func main() {
	gcDefaults()
	ctx := context.Background()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "idsync:", err)
		os.Exit(exitCode(err))
	}
}

// defaultGCPercent is the Go GC target idsync runs with unless GOGC is
// set. idsync's live heap is small (tens of MB) while syncs and SCIM
// pushes allocate fast, so Go's default (100) collects very often:
// measured, 200 makes a 100,000-person snapshot ~10% faster and SCIM
// creates ~7% faster, for about twice the heap (the LDAP sync of 100,000
// people peaks at ~230 MB instead of ~165 MB). README "Benchmarks" gives
// figures at both settings.
const defaultGCPercent = 200

func gcDefaults() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// exitCode maps error kinds to exit codes scripts can tell apart.
func exitCode(err error) int {
	switch {
	case errors.Is(err, engine.ErrInvalid):
		return 2
	case errors.Is(err, engine.ErrNotFound):
		return 3
	case errors.Is(err, engine.ErrExists), errors.Is(err, engine.ErrConflict):
		return 4
	case errors.Is(err, engine.ErrForbidden):
		return 5
	case errors.Is(err, engine.ErrUnavailable):
		return 6
	case errors.Is(err, engine.ErrQuarantined):
		return 7
	}
	return 1
}
