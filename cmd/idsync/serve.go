package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/idsync/idsync/admin"
	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/scim"
	"github.com/idsync/idsync/storage"
)

// metrics are idsync's Prometheus metrics; they implement engine.Metrics.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	apply    *prometheus.HistogramVec
	audit    prometheus.Counter
	jobRuns  *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "idsync_http_requests_total",
		Help: "HTTP requests by route pattern and status code."}, []string{"route", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "idsync_http_request_duration_seconds",
		Help: "HTTP request latency by route pattern.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"route"})
	m.apply = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "idsync_observation_apply_seconds",
		Help: "Latency of applying one observation, by outcome.", Buckets: prometheus.ExponentialBuckets(0.00002, 2, 18)}, []string{"outcome"})
	m.audit = prometheus.NewCounter(prometheus.CounterOpts{Name: "idsync_audit_events_total", Help: "Audit events appended."})
	m.jobRuns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "idsync_job_runs_total",
		Help: "Job runs by kind and final status."}, []string{"kind", "status"})
	m.reg.MustRegister(m.requests, m.latency, m.apply, m.audit, m.jobRuns,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) ObserveApply(outcome string, d time.Duration) {
	m.apply.WithLabelValues(outcome).Observe(d.Seconds())
}
func (m *metrics) AuditEvents(n int) { m.audit.Add(float64(n)) }
func (m *metrics) JobRun(kind, status string) {
	m.jobRuns.WithLabelValues(kind, status).Inc()
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument counts requests by the mux pattern that served them (never
// the raw path: it may hold IDs) and logs them without query strings or
// headers, where tokens live.
func instrument(mux *http.ServeMux, m *metrics, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				log.Error("panic serving request", "route", r.Pattern, "panic", fmt.Sprint(p))
				if sw.code == 0 {
					http.Error(sw, "internal error", http.StatusInternalServerError)
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
			m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
			log.Debug("request", "method", r.Method, "route", route, "status", code, "duration", time.Since(start))
		}()
		mux.ServeHTTP(sw, r)
	})
}

// newServer builds the HTTP handler: health, readiness, metrics and the
// mount points of the protocol packages (/scim/v2/, /login/, /api/v1/).
// serverDeps are what the protocol handlers share with the rest of serve.
type serverDeps struct {
	baseURL  string // as configured; empty: JIT derives it from each request
	sched    *engine.Scheduler
	webhooks *admin.Worker
	invites  *admin.Invitations
}

func newServer(db *storage.DB, e *engine.Engine, m *metrics, deps serverDeps, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.Ping(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "database: " + err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "database": string(db.Dialect())})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	for _, mnt := range mounts(e, deps, log) {
		mux.Handle(mnt.pattern, mnt.handler)
	}
	return instrument(mux, m, log)
}

// mount is a protocol package's handler under a path prefix.
type mount struct {
	pattern string
	handler http.Handler
}

// mounts lists the protocol endpoints; each package (scim, jit, the admin
// API) adds its handler here as it lands.
func mounts(e *engine.Engine, deps serverDeps, log *slog.Logger) []mount {
	login := jitHandler(e, deps.baseURL, log) // one handler for every JIT path
	return append([]mount{
		{pattern: scim.Prefix + "/", handler: scim.MustNew(e, scim.Options{Logger: log})},
		{pattern: "/login/", handler: login}, {pattern: "/session", handler: login},
		{pattern: "/logout", handler: login}, {pattern: "/api/v1/jit/", handler: login},
	}, adminMounts(e, deps, log)...)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// bootstrap creates a default organization and a deployment-wide admin
// key on a first start with an empty database, and returns the key (shown
// once, never stored in clear).
func bootstrap(ctx context.Context, db *storage.DB, e *engine.Engine) (string, error) {
	orgs, err := db.Organizations(ctx)
	if err != nil {
		return "", err
	}
	keys, err := db.Tokens(ctx, engine.TokenAdmin, "")
	if err != nil {
		return "", err
	}
	if len(orgs) > 0 || len(keys) > 0 {
		return "", nil
	}
	by := engine.Admin{Actor: "system:bootstrap"}
	if _, err := e.CreateOrganization(ctx, by, engine.Organization{Slug: "default", Name: "Default"}); err != nil && !errors.Is(err, engine.ErrExists) {
		return "", err
	}
	_, secret, err := e.CreateToken(ctx, by, engine.Token{Kind: engine.TokenAdmin, Name: "bootstrap", Scope: "admin"})
	return secret, err
}

func serveCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP server, the scheduler and the engine",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			m := newMetrics()
			db, e, err := a.open(ctx, m)
			if err != nil {
				return err
			}
			defer db.Close()
			secret, err := bootstrap(ctx, db, e)
			if err != nil {
				return fmt.Errorf("first start: %w", err)
			}
			if secret != "" {
				// Printed to the terminal once; never logged.
				fmt.Fprintf(os.Stderr, "\nFirst start: created organization \"default\" and an admin API key.\n"+
					"Store it now, it is not shown again:\n\n    %s\n\n", secret)
			}
			sched := engine.NewScheduler(e, engine.SchedulerOptions{Tick: time.Duration(a.cfg.Scheduler.Tick),
				Lease: time.Duration(a.cfg.Scheduler.Lease)})
			registerRunners(sched)
			schedCtx, stopSched := context.WithCancel(ctx)
			sched.Start(schedCtx)
			deps := serverDeps{baseURL: a.publicURL, sched: sched}
			startAdmin(schedCtx, a, e, &deps)

			ln, err := net.Listen("tcp", a.cfg.Listen)
			if err != nil {
				stopSched()
				return fmt.Errorf("listen on %s: %w", a.cfg.Listen, err)
			}
			srv := &http.Server{Handler: newServer(db, e, m, deps, a.log), ReadHeaderTimeout: 10 * time.Second,
				ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
			a.log.Info("idsync serving", "addr", ln.Addr().String(), "database", string(db.Dialect()))
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				stopSched()
				return err
			case <-ctx.Done():
			}
			a.log.Info("shutting down")
			sctx, cancel := context.WithTimeout(context.Background(), time.Duration(a.cfg.ShutdownTimeout))
			defer cancel()
			err = srv.Shutdown(sctx)
			stopSched()
			sched.Wait()
			a.log.Info("stopped")
			return err
		},
	}
	cmd.Flags().StringVar(&a.listen, "listen", "", "address to listen on (env IDSYNC_LISTEN; default 127.0.0.1:8080)")
	return cmd
}

// registerRunners sets the job runners of the connectors this build has.
func registerRunners(s *engine.Scheduler) {
	registerPullRunners(s) // ldap, file, scim-pull: full and incremental (pull.go)
}
