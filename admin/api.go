package admin

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

//go:embed openapi.json
var openAPI []byte

// Store is what the API needs beyond engine.Store: the webhook tables and
// the comparison read (storage.DB implements it).
type Store interface {
	engine.Store
	AdminPutWebhook(ctx context.Context, w storage.AdminWebhook) error
	AdminWebhook(ctx context.Context, id string) (storage.AdminWebhook, error)
	AdminWebhooks(ctx context.Context, orgID string) ([]storage.AdminWebhook, error)
	AdminDeleteWebhook(ctx context.Context, id string) error
	AdminAddDelivery(ctx context.Context, d storage.AdminDelivery) error
	AdminClaimWebhook(ctx context.Context, id string, now, until time.Time) (bool, error)
	AdminWebhookProgress(ctx context.Context, id string, cursor int64, failures int, next time.Time, pause bool, now time.Time) error
	AdminDelivery(ctx context.Context, id string) (storage.AdminDelivery, error)
	AdminDeliveries(ctx context.Context, webhookID string, limit int) ([]storage.AdminDelivery, error)
	AdminCompareFacts(ctx context.Context, orgID string, ident func(storage.AdminIdentityFacts) error,
		acct func(storage.AdminAccountFacts) error) error
	AdminCompareEvents(ctx context.Context, orgID string, since, until time.Time, fn func(storage.AdminLifecycleEvent) error) error
	InviteStore
	AdminPutConsoleSession(ctx context.Context, idHash, tokenID string, now, expires time.Time) error
	AdminConsoleSession(ctx context.Context, idHash string, now time.Time) (string, error)
	AdminDeleteConsoleSession(ctx context.Context, idHash string) error
	JITSession(ctx context.Context, idHash string, now time.Time) (identityID, orgID, sourceID string, expires time.Time, err error)
}

// Options configure the handler.
type Options struct {
	Logger *slog.Logger
	// Scheduler runs jobs now and approves or rejects quarantined runs;
	// nil: those endpoints answer unavailable.
	Scheduler *engine.Scheduler
	// Webhooks, when set, is woken after writes so deliveries go out soon.
	Webhooks *Worker
	// Invitations sends and accepts invitations; nil: development mode
	// (mails logged) with links relative to the server.
	Invitations *Invitations
}

// Handler serves the admin API.
type Handler struct {
	e      *engine.Engine
	st     Store
	opts   Options
	log    *slog.Logger
	mux    *http.ServeMux
	routes []Route
}

// Route is one endpoint: method and path below Prefix.
type Route struct {
	Method, Path, Summary string
	fn                    func(w http.ResponseWriter, r *http.Request, tok engine.Token) error
}

// New returns the API handler. The engine's store must implement Store.
func New(e *engine.Engine, opts Options) (*Handler, error) {
	st, ok := e.Store().(Store)
	if !ok {
		return nil, fmt.Errorf("admin: the store %T lacks the admin tables: %w", e.Store(), engine.ErrInvalid)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{e: e, st: st, opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	h.routes = h.table()
	h.mux.HandleFunc("GET "+Prefix+"/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	for _, rt := range h.routes {
		h.mux.HandleFunc(rt.Method+" "+Prefix+rt.Path, h.wrap(rt))
	}
	h.mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		h.writeErr(w, r, fmt.Errorf("no endpoint %s %s: %w", r.Method, r.URL.Path, engine.ErrNotFound))
	})
	return h, nil
}

// Routes lists the endpoints the router serves (besides openapi.json).
func (h *Handler) Routes() []Route { return h.routes }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

type tokenKey struct{}

// authenticate reads the admin key from "Authorization: Bearer".
func (h *Handler) authenticate(r *http.Request) (engine.Token, error) {
	auth := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || secret == "" {
		return engine.Token{}, fmt.Errorf("an admin API key is required (Authorization: Bearer …): %w", errUnauthorized)
	}
	tok, err := h.e.Authenticate(r.Context(), strings.TrimSpace(secret))
	if err != nil || tok.Kind != engine.TokenAdmin {
		return engine.Token{}, fmt.Errorf("the API key is unknown, revoked or not an admin key: %w", errUnauthorized)
	}
	return tok, nil
}

func (h *Handler) wrap(rt Route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, err := h.authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="idsync"`)
			h.writeErr(w, r, err)
			return
		}
		if r.Method != http.MethodGet && tok.Scope != "admin" {
			h.writeErr(w, r, fmt.Errorf("key %s is read-only: %w", tok.Prefix, engine.ErrForbidden))
			return
		}
		if err := rt.fn(w, r, tok); err != nil {
			h.writeErr(w, r, err)
			return
		}
		if r.Method != http.MethodGet && h.opts.Webhooks != nil {
			h.opts.Webhooks.Wake()
		}
	}
}

func by(r *http.Request, tok engine.Token) engine.Admin {
	return engine.Admin{Actor: "key:" + tok.Prefix, CorrelationID: r.Header.Get("X-Request-Id")}
}

// allow hides objects of other organizations from an organization-scoped
// key: they answer not_found, as if they did not exist.
func allow(tok engine.Token, orgID, what string) error {
	if tok.OrgID != "" && tok.OrgID != orgID {
		return fmt.Errorf("%s: %w", what, engine.ErrNotFound)
	}
	return nil
}

// owned reads the resource what with ID id and answers it as not found
// when it belongs to an organization tok does not reach.
func owned[T any](ctx context.Context, tok engine.Token, what, id string, read func(context.Context, string) (T, error), orgOf func(T) string) (T, error) {
	v, err := read(ctx, id)
	if err != nil {
		return v, err
	}
	return v, allow(tok, orgOf(v), what+" "+id)
}

func (h *Handler) org(r *http.Request, tok engine.Token) (engine.Organization, error) {
	ref := r.PathValue("org")
	return h.orgRef(r.Context(), tok, ref)
}

func (h *Handler) orgRef(ctx context.Context, tok engine.Token, ref string) (engine.Organization, error) {
	o, err := h.st.OrganizationBySlug(ctx, ref)
	if err != nil {
		o, err = h.st.Organization(ctx, ref)
	}
	if err != nil {
		return engine.Organization{}, fmt.Errorf("organization %q: %w", ref, engine.ErrNotFound)
	}
	if err := allow(tok, o.ID, fmt.Sprintf("organization %q", ref)); err != nil {
		return engine.Organization{}, err
	}
	return o, nil
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %v: %w", err, engine.ErrInvalid)
	}
	return nil
}

func ok(w http.ResponseWriter, v any) error {
	writeJSON(w, http.StatusOK, v)
	return nil
}

func created(w http.ResponseWriter, v any) error {
	writeJSON(w, http.StatusCreated, v)
	return nil
}

// List is the envelope of every list response.
type List[T any] struct {
	Items []T `json:"items"`
	// Next is the cursor of the next page; empty on the last page.
	Next string `json:"next,omitempty"`
}

func list[T any](items []T) List[T] {
	if items == nil {
		items = []T{}
	}
	return List[T]{Items: items}
}

func intParam(r *http.Request, name string, def, max int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s %q is not a non-negative number: %w", name, s, engine.ErrInvalid)
	}
	if max > 0 && n > max {
		n = max
	}
	return n, nil
}

func timeParam(r *http.Request, name string) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time: %w", name, s, engine.ErrInvalid)
	}
	return t, nil
}

// table lists every endpoint. The OpenAPI document must name each one
// (TestOpenAPICoversRoutes).
func (h *Handler) table() []Route {
	return []Route{
		{"GET", "/orgs", "List organizations", h.listOrgs},
		{"POST", "/orgs", "Create an organization (deployment-wide keys only)", h.createOrg},
		{"GET", "/orgs/{org}", "Read an organization", h.getOrg},
		{"PATCH", "/orgs/{org}", "Change an organization's name, roles or rules", h.patchOrg},
		{"GET", "/orgs/{org}/domains", "List an organization's domains", h.listDomains},
		{"POST", "/orgs/{org}/domains", "Claim a domain", h.addDomain},
		{"DELETE", "/orgs/{org}/domains/{domain}", "Drop a domain claim", h.removeDomain},
		{"GET", "/orgs/{org}/sources", "List sources", h.listSources},
		{"POST", "/orgs/{org}/sources", "Create a source", h.createSource},
		{"GET", "/sources/{id}", "Read a source", h.getSource},
		{"PATCH", "/sources/{id}", "Change a source", h.patchSource},
		{"GET", "/orgs/{org}/tokens", "List API keys and SCIM tokens (never their secrets)", h.listTokens},
		{"POST", "/orgs/{org}/tokens", "Create an API key or SCIM token; the secret is shown once", h.createToken},
		{"DELETE", "/tokens/{id}", "Revoke a token", h.revokeToken},
		{"GET", "/orgs/{org}/jobs", "List jobs", h.listJobs},
		{"GET", "/jobs/{id}", "Read a job", h.getJob},
		{"PATCH", "/jobs/{id}", "Change, pause or resume a job", h.patchJob},
		{"GET", "/jobs/{id}/runs", "List a job's runs", h.listRuns},
		{"POST", "/jobs/{id}/run", "Run a job now (dryRun=true for a plan)", h.runJob},
		{"GET", "/runs/{id}", "Read a run", h.getRun},
		{"POST", "/runs/{id}/approve", "Approve a quarantined run", h.approveRun},
		{"POST", "/runs/{id}/reject", "Reject a quarantined run", h.rejectRun},
		{"GET", "/orgs/{org}/identities", "List people", h.listIdentities},
		{"GET", "/identities/{id}", "A person: golden record, accounts side by side, provenance, memberships", h.getIdentity},
		{"GET", "/identities/{id}/history", "A person's lifecycle history from the audit log", h.identityHistory},
		{"POST", "/identities/{id}/suspend", "Suspend a person", h.suspend},
		{"POST", "/identities/{id}/restore", "Lift a suspension", h.restore},
		{"POST", "/accounts/{id}/link", "Move an account to another person (manual merge)", h.link},
		{"POST", "/accounts/{id}/unlink", "Split an account off into a new person", h.unlink},
		{"GET", "/orgs/{org}/groups", "List groups", h.listGroups},
		{"GET", "/orgs/{org}/conflicts", "List conflicts (status=open|resolved)", h.listConflicts},
		{"GET", "/conflicts/{id}", "Read a conflict", h.getConflict},
		{"POST", "/conflicts/{id}/resolve", "Resolve a conflict: a candidate's identity ID or \"new\"", h.resolveConflict},
		{"POST", "/orgs/{org}/plans", "Dry-run a bulk import (format=jsonl|csv): what it would do", h.plan},
		{"POST", "/orgs/{org}/people", "Create or update a person through the admin source", h.createPerson},
		{"POST", "/orgs/{org}/people/import", "Bulk import people (format=jsonl|csv)", h.importPeople},
		{"GET", "/audit", "The audit log, filtered and cursor-paged by seq", h.audit},
		{"GET", "/events", "Lifecycle events after a cursor, resumable", h.events},
		{"GET", "/orgs/{org}/webhooks", "List webhooks", h.listWebhooks},
		{"POST", "/orgs/{org}/webhooks", "Create a webhook; its signing secret is shown once", h.createWebhook},
		{"GET", "/webhooks/{id}", "Read a webhook", h.getWebhook},
		{"PATCH", "/webhooks/{id}", "Change, pause or resume a webhook", h.patchWebhook},
		{"DELETE", "/webhooks/{id}", "Delete a webhook", h.deleteWebhook},
		{"GET", "/webhooks/{id}/deliveries", "A webhook's delivery log", h.listDeliveries},
		{"POST", "/deliveries/{id}/redeliver", "Deliver a logged event again now", h.redeliver},
		{"GET", "/orgs/{org}/compare", "JIT vs directory comparison (since, until)", h.compare},
		{"GET", "/orgs/{org}/invitations", "List invitations", h.listInvitations},
		{"POST", "/orgs/{org}/invitations", "Create an invitation: mails a single-use link (returned once)", h.createInvitation},
		{"DELETE", "/orgs/{org}/invitations/{id}", "Revoke an unused invitation", h.revokeInvitation},
	}
}

// --- organizations

func (h *Handler) listOrgs(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	orgs, err := h.st.Organizations(r.Context())
	if err != nil {
		return err
	}
	orgs = slices.DeleteFunc(orgs, func(o engine.Organization) bool { return tok.OrgID != "" && o.ID != tok.OrgID })
	return ok(w, list(orgs))
}

func (h *Handler) createOrg(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	if tok.OrgID != "" {
		return fmt.Errorf("an organization's key cannot create organizations: %w", engine.ErrForbidden)
	}
	var o engine.Organization
	if err := decode(r, &o); err != nil {
		return err
	}
	o, err := h.e.CreateOrganization(r.Context(), by(r, tok), o)
	if err != nil {
		return err
	}
	return created(w, o)
}

func (h *Handler) getOrg(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	return ok(w, o)
}

// OrgPatch is a partial update of an organization.
type OrgPatch struct {
	Name        *string             `json:"name,omitempty"`
	Roles       []string            `json:"roles,omitempty"`
	DefaultRole *string             `json:"defaultRole,omitempty"`
	Settings    *engine.OrgSettings `json:"settings,omitempty"`
}

func (h *Handler) patchOrg(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	var p OrgPatch
	if err := decode(r, &p); err != nil {
		return err
	}
	o, err = h.e.UpdateOrganization(r.Context(), by(r, tok), o.ID, func(o *engine.Organization) error {
		if p.Name != nil {
			o.Name = *p.Name
		}
		if p.Roles != nil {
			o.Roles = p.Roles
		}
		if p.DefaultRole != nil {
			o.DefaultRole = *p.DefaultRole
		}
		if p.Settings != nil {
			o.Settings = *p.Settings
		}
		return nil
	})
	if err != nil {
		return err
	}
	return ok(w, o)
}

func (h *Handler) listDomains(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	ds, err := h.st.Domains(r.Context(), o.ID)
	if err != nil {
		return err
	}
	return ok(w, list(ds))
}

func (h *Handler) addDomain(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	var d struct {
		Domain   string `json:"domain"`
		Verified bool   `json:"verified"`
	}
	if err := decode(r, &d); err != nil {
		return err
	}
	if err := h.e.AddDomain(r.Context(), by(r, tok), o.ID, d.Domain, d.Verified); err != nil {
		return err
	}
	return created(w, engine.Domain{OrgID: o.ID, Domain: strings.ToLower(strings.TrimSpace(d.Domain)), Verified: d.Verified})
}

func (h *Handler) removeDomain(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	if err := h.e.RemoveDomain(r.Context(), by(r, tok), o.ID, r.PathValue("domain")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- sources

func (h *Handler) listSources(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	ss, err := h.st.Sources(r.Context(), o.ID)
	if err != nil {
		return err
	}
	return ok(w, list(ss))
}

// SourceInput creates a source; Authoritative nil means the kind's default.
type SourceInput struct {
	Kind          engine.SourceKind `json:"kind"`
	Name          string            `json:"name"`
	Priority      int               `json:"priority,omitempty"`
	Owns          []string          `json:"owns,omitempty"`
	Authoritative *bool             `json:"authoritative,omitempty"`
	TrustEmails   bool              `json:"trustEmails,omitempty"`
	Config        json.RawMessage   `json:"config,omitempty"`
}

func (h *Handler) createSource(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	var in SourceInput
	if err := decode(r, &in); err != nil {
		return err
	}
	s := engine.Source{OrgID: o.ID, Kind: in.Kind, Name: in.Name, Priority: in.Priority, Owns: in.Owns,
		TrustEmails: in.TrustEmails, Config: in.Config}
	if in.Authoritative != nil {
		s.Authoritative = *in.Authoritative
	}
	s, err = h.e.CreateSource(r.Context(), by(r, tok), s, in.Authoritative == nil)
	if err != nil {
		return err
	}
	return created(w, s)
}

func (h *Handler) source(r *http.Request, tok engine.Token) (engine.Source, error) {
	return owned(r.Context(), tok, "source", r.PathValue("id"), h.st.Source, func(s engine.Source) string { return s.OrgID })
}

func (h *Handler) getSource(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	s, err := h.source(r, tok)
	if err != nil {
		return err
	}
	return ok(w, s)
}

// SourcePatch is a partial update of a source.
type SourcePatch struct {
	Priority      *int            `json:"priority,omitempty"`
	Owns          []string        `json:"owns,omitempty"`
	Authoritative *bool           `json:"authoritative,omitempty"`
	TrustEmails   *bool           `json:"trustEmails,omitempty"`
	Enabled       *bool           `json:"enabled,omitempty"`
	Config        json.RawMessage `json:"config,omitempty"`
}

func (h *Handler) patchSource(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	s, err := h.source(r, tok)
	if err != nil {
		return err
	}
	var p SourcePatch
	if err := decode(r, &p); err != nil {
		return err
	}
	s, err = h.e.UpdateSource(r.Context(), by(r, tok), s.ID, func(s *engine.Source) error {
		if p.Priority != nil {
			s.Priority = *p.Priority
		}
		if p.Owns != nil {
			s.Owns = p.Owns
		}
		if p.Authoritative != nil {
			s.Authoritative = *p.Authoritative
		}
		if p.TrustEmails != nil {
			s.TrustEmails = *p.TrustEmails
		}
		if p.Enabled != nil {
			s.Enabled = *p.Enabled
		}
		if p.Config != nil {
			s.Config = p.Config
		}
		return nil
	})
	if err != nil {
		return err
	}
	return ok(w, s)
}

// --- tokens

func (h *Handler) orgTokens(ctx context.Context, orgID string) ([]engine.Token, error) {
	var out []engine.Token
	for _, kind := range []string{engine.TokenAdmin, engine.TokenSCIM} {
		ts, err := h.st.Tokens(ctx, kind, orgID)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

func (h *Handler) listTokens(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	ts, err := h.orgTokens(r.Context(), o.ID)
	if err != nil {
		return err
	}
	return ok(w, list(ts))
}

// TokenInput creates a token: kind "scim" needs sourceId.
type TokenInput struct {
	Kind     string `json:"kind"`
	Name     string `json:"name"`
	Scope    string `json:"scope,omitempty"`
	SourceID string `json:"sourceId,omitempty"`
}

// NewToken is a created token with its secret, shown this once.
type NewToken struct {
	engine.Token
	Secret string `json:"secret"`
}

func (h *Handler) createToken(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	var in TokenInput
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.SourceID != "" {
		s, err := h.st.Source(r.Context(), in.SourceID)
		if err != nil {
			return err
		}
		if s.OrgID != o.ID {
			return fmt.Errorf("source %s: %w", in.SourceID, engine.ErrNotFound)
		}
	}
	t, secret, err := h.e.CreateToken(r.Context(), by(r, tok), engine.Token{Kind: in.Kind, Name: in.Name,
		Scope: in.Scope, SourceID: in.SourceID, OrgID: o.ID})
	if err != nil {
		return err
	}
	return created(w, NewToken{Token: t, Secret: secret})
}

func (h *Handler) revokeToken(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	id := r.PathValue("id")
	var found bool
	for _, kind := range []string{engine.TokenAdmin, engine.TokenSCIM} {
		ts, err := h.st.Tokens(r.Context(), kind, tok.OrgID)
		if err != nil {
			return err
		}
		for _, t := range ts {
			found = found || t.ID == id
		}
	}
	if !found {
		return fmt.Errorf("token %s: %w", id, engine.ErrNotFound)
	}
	if err := h.e.RevokeToken(r.Context(), by(r, tok), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- jobs and runs

func (h *Handler) listJobs(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	js, err := h.st.Jobs(r.Context(), o.ID)
	if err != nil {
		return err
	}
	return ok(w, list(js))
}

func (h *Handler) job(ctx context.Context, tok engine.Token, id string) (engine.Job, error) {
	return owned(ctx, tok, "job", id, h.st.Job, func(j engine.Job) string { return j.OrgID })
}

func (h *Handler) getJob(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	j, err := h.job(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, j)
}

func (h *Handler) patchJob(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	j, err := h.job(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	var c engine.JobChange
	if err := decode(r, &c); err != nil {
		return err
	}
	j, err = h.e.ChangeJob(r.Context(), by(r, tok), j.ID, c)
	if err != nil {
		return err
	}
	return ok(w, j)
}

func (h *Handler) listRuns(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	j, err := h.job(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 50, 1000)
	if err != nil {
		return err
	}
	runs, err := h.st.JobRuns(r.Context(), j.ID, limit)
	if err != nil {
		return err
	}
	return ok(w, list(runs))
}

func (h *Handler) sched() (*engine.Scheduler, error) {
	if h.opts.Scheduler == nil {
		return nil, fmt.Errorf("this server runs no scheduler: %w", engine.ErrUnavailable)
	}
	return h.opts.Scheduler, nil
}

func (h *Handler) runJob(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	j, err := h.job(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	s, err := h.sched()
	if err != nil {
		return err
	}
	run, err := s.RunJob(r.Context(), j.ID, r.URL.Query().Get("dryRun") == "true", false)
	if run.ID != "" {
		// A run that ended quarantined or failed is still a run: show it.
		return created(w, run)
	}
	return err
}

func (h *Handler) run(ctx context.Context, tok engine.Token, id string) (engine.JobRun, error) {
	run, err := h.st.JobRun(ctx, id)
	if err != nil {
		return run, err
	}
	if _, err := h.job(ctx, tok, run.JobID); err != nil {
		return engine.JobRun{}, fmt.Errorf("run %s: %w", id, engine.ErrNotFound)
	}
	return run, nil
}

func (h *Handler) getRun(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	run, err := h.run(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, run)
}

func (h *Handler) approveRun(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	run, err := h.run(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	s, err := h.sched()
	if err != nil {
		return err
	}
	next, err := s.ApproveRun(r.Context(), by(r, tok), run.ID)
	if next.ID != "" {
		return ok(w, next)
	}
	return err
}

func (h *Handler) rejectRun(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	run, err := h.run(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	s, err := h.sched()
	if err != nil {
		return err
	}
	run, err = s.RejectRun(r.Context(), by(r, tok), run.ID)
	if err != nil {
		return err
	}
	return ok(w, run)
}

// --- identities

func (h *Handler) listIdentities(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 100, 1000)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	ids, err := h.st.Identities(r.Context(), engine.IdentityFilter{OrgID: o.ID, State: engine.State(q.Get("state")),
		AfterID: q.Get("after"), Limit: limit, Email: q.Get("email"), UserName: q.Get("userName")})
	if err != nil {
		return err
	}
	out := list(ids)
	if len(ids) == limit && limit > 0 {
		out.Next = ids[len(ids)-1].ID
	}
	return ok(w, out)
}

// identity reads a person an organization-scoped key may see: one whose
// home organization is the key's, or who is a member of it.
func (h *Handler) identity(ctx context.Context, tok engine.Token, id string) (engine.Identity, error) {
	ident, err := h.st.Identity(ctx, id)
	if err != nil {
		return ident, err
	}
	if tok.OrgID == "" || ident.OrgID == tok.OrgID {
		return ident, nil
	}
	if _, member, err := h.st.OrgMembership(ctx, tok.OrgID, id); err != nil {
		return engine.Identity{}, err
	} else if !member {
		return engine.Identity{}, fmt.Errorf("identity %s: %w", id, engine.ErrNotFound)
	}
	return ident, nil
}

// AccountView is one source's account of a person, with its source.
type AccountView struct {
	engine.Account
	SourceName    string            `json:"sourceName"`
	SourceKind    engine.SourceKind `json:"sourceKind"`
	Priority      int               `json:"priority"`
	Authoritative bool              `json:"authoritative"`
}

// IdentityView is a person: the golden record (with per-attribute
// provenance), every source's account side by side, group and
// organization memberships.
type IdentityView struct {
	Identity      engine.Identity        `json:"identity"`
	Accounts      []AccountView          `json:"accounts"`
	Memberships   []engine.Membership    `json:"memberships"`
	Organizations []engine.OrgMembership `json:"organizations"`
}

// IdentityDetail reads everything the API and console show of a person.
func (h *Handler) IdentityDetail(ctx context.Context, tok engine.Token, id string) (IdentityView, error) {
	ident, err := h.identity(ctx, tok, id)
	if err != nil {
		return IdentityView{}, err
	}
	v := IdentityView{Identity: ident, Accounts: []AccountView{}}
	linked, err := h.st.LinkedAccounts(ctx, id)
	if err != nil {
		return v, err
	}
	for _, a := range linked {
		if tok.OrgID != "" && a.OrgID != tok.OrgID {
			continue
		}
		v.Accounts = append(v.Accounts, AccountView{Account: a.Account, SourceName: a.SourceName, SourceKind: a.SourceKind,
			Priority: a.Priority, Authoritative: a.Authoritative})
	}
	if v.Memberships, err = h.st.IdentityMemberships(ctx, id); err != nil {
		return v, err
	}
	if v.Organizations, err = h.st.OrgMemberships(ctx, id); err != nil {
		return v, err
	}
	if tok.OrgID != "" {
		v.Organizations = slices.DeleteFunc(v.Organizations, func(m engine.OrgMembership) bool { return m.OrgID != tok.OrgID })
	}
	if v.Memberships == nil {
		v.Memberships = []engine.Membership{}
	}
	if v.Organizations == nil {
		v.Organizations = []engine.OrgMembership{}
	}
	return v, nil
}

func (h *Handler) getIdentity(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	v, err := h.IdentityDetail(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, v)
}

func (h *Handler) identityHistory(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	ident, err := h.identity(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	f, err := auditFilter(r)
	if err != nil {
		return err
	}
	f.IdentityID, f.OrgID = ident.ID, tok.OrgID
	return h.auditPage(w, r, f)
}

func (h *Handler) suspend(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	ident, err := h.identity(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	var in struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	ident, err = h.e.Suspend(r.Context(), by(r, tok), ident.ID, in.Reason)
	if err != nil {
		return err
	}
	return ok(w, ident)
}

func (h *Handler) restore(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	ident, err := h.identity(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	ident, err = h.e.Restore(r.Context(), by(r, tok), ident.ID)
	if err != nil {
		return err
	}
	return ok(w, ident)
}

func (h *Handler) account(ctx context.Context, tok engine.Token, id string) (engine.Account, error) {
	return owned(ctx, tok, "account", id, h.st.Account, func(a engine.Account) string { return a.OrgID })
}

func (h *Handler) link(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	a, err := h.account(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	var in struct {
		IdentityID string `json:"identityId"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if _, err := h.identity(r.Context(), tok, in.IdentityID); err != nil {
		return err
	}
	if err := h.e.Link(r.Context(), by(r, tok), a.ID, in.IdentityID); err != nil {
		return err
	}
	return ok(w, map[string]string{"accountId": a.ID, "identityId": in.IdentityID})
}

func (h *Handler) unlink(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	a, err := h.account(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	id, err := h.e.Unlink(r.Context(), by(r, tok), a.ID)
	if err != nil {
		return err
	}
	return ok(w, map[string]string{"accountId": a.ID, "identityId": id})
}

func (h *Handler) listGroups(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	gs, err := h.st.Groups(r.Context(), o.ID)
	if err != nil {
		return err
	}
	return ok(w, list(gs))
}

// --- conflicts

func (h *Handler) listConflicts(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	cs, err := h.st.Conflicts(r.Context(), o.ID, r.URL.Query().Get("status"))
	if err != nil {
		return err
	}
	return ok(w, list(cs))
}

func (h *Handler) conflict(ctx context.Context, tok engine.Token, id string) (engine.Conflict, error) {
	return owned(ctx, tok, "conflict", id, h.st.Conflict, func(c engine.Conflict) string { return c.OrgID })
}

func (h *Handler) getConflict(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	c, err := h.conflict(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, c)
}

func (h *Handler) resolveConflict(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	c, err := h.conflict(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	var in struct {
		Choice string `json:"choice"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Choice == "" {
		return fmt.Errorf("choice must be a candidate's identity ID or \"new\": %w", engine.ErrInvalid)
	}
	res, err := h.e.ResolveConflict(r.Context(), by(r, tok), c.ID, in.Choice)
	if err != nil {
		return err
	}
	return ok(w, res)
}

// --- people and plans

func (h *Handler) createPerson(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	var p engine.Person
	if err := decode(r, &p); err != nil {
		return err
	}
	res, err := h.e.CreatePerson(r.Context(), by(r, tok), o.ID, p)
	if err != nil {
		return err
	}
	if res.Outcome == engine.OutcomeCreated {
		return created(w, res)
	}
	return ok(w, res)
}

func importFormat(r *http.Request) engine.ImportFormat {
	if f := r.URL.Query().Get("format"); f != "" {
		return engine.ImportFormat(f)
	}
	if strings.Contains(r.Header.Get("Content-Type"), "csv") {
		return engine.FormatCSV
	}
	return engine.FormatJSONL
}

func (h *Handler) importPeople(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	return h.doImport(w, r, tok, false)
}

func (h *Handler) plan(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	return h.doImport(w, r, tok, true)
}

func (h *Handler) doImport(w http.ResponseWriter, r *http.Request, tok engine.Token, dry bool) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	plan, err := h.e.Import(r.Context(), by(r, tok), o.ID, io.LimitReader(r.Body, 256<<20), importFormat(r),
		engine.SnapshotOptions{DryRun: dry, Upsert: true})
	if err != nil {
		return err
	}
	return ok(w, plan)
}

// --- audit and events

func auditFilter(r *http.Request) (engine.AuditFilter, error) {
	q := r.URL.Query()
	f := engine.AuditFilter{IdentityID: q.Get("identity"), Action: q.Get("action"), Channel: q.Get("channel"),
		SourceID: q.Get("source")}
	var err error
	if f.Since, err = timeParam(r, "since"); err != nil {
		return f, err
	}
	if f.Until, err = timeParam(r, "until"); err != nil {
		return f, err
	}
	after, err := intParam(r, "after", 0, 0)
	if err != nil {
		return f, err
	}
	f.AfterSeq = int64(after)
	if f.Limit, err = intParam(r, "limit", 100, 1000); err != nil {
		return f, err
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	return f, nil
}

func (h *Handler) scopedAudit(r *http.Request, tok engine.Token) (engine.AuditFilter, error) {
	f, err := auditFilter(r)
	if err != nil {
		return f, err
	}
	if ref := r.URL.Query().Get("org"); ref != "" {
		o, err := h.orgRef(r.Context(), tok, ref)
		if err != nil {
			return f, err
		}
		f.OrgID = o.ID
	} else {
		f.OrgID = tok.OrgID
	}
	return f, nil
}

func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request, f engine.AuditFilter) error {
	evs := []engine.AuditEvent{}
	err := h.st.StreamAudit(r.Context(), f, func(ev engine.AuditEvent) error {
		evs = append(evs, ev)
		return nil
	})
	if err != nil {
		return err
	}
	out := List[engine.AuditEvent]{Items: evs}
	if len(evs) == f.Limit {
		out.Next = strconv.FormatInt(evs[len(evs)-1].Seq, 10)
	}
	return ok(w, out)
}

func (h *Handler) audit(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	f, err := h.scopedAudit(r, tok)
	if err != nil {
		return err
	}
	return h.auditPage(w, r, f)
}

// Event is what the events API and webhooks deliver: one audit event.
type Event struct {
	Seq        int64           `json:"seq"`
	ID         string          `json:"id"`
	At         time.Time       `json:"at"`
	OrgID      string          `json:"orgId,omitempty"`
	Action     string          `json:"action"`
	Channel    string          `json:"channel"`
	SourceID   string          `json:"sourceId,omitempty"`
	IdentityID string          `json:"identityId,omitempty"`
	Subject    string          `json:"subject,omitempty"`
	Changes    json.RawMessage `json:"changes,omitempty"`
}

// EventOf turns an audit event into the event delivered out.
func EventOf(ev engine.AuditEvent) Event {
	subj := ev.SubjectType
	if ev.SubjectID != "" {
		subj += ":" + ev.SubjectID
	}
	return Event{Seq: ev.Seq, ID: ev.ID, At: ev.At, OrgID: ev.OrgID, Action: ev.Action, Channel: ev.Channel,
		SourceID: ev.SourceID, IdentityID: ev.IdentityID, Subject: subj, Changes: ev.Changes}
}

// EventPage is a page of events; resume with after=Cursor.
type EventPage struct {
	Events []Event `json:"events"`
	// Cursor is the seq of the last event returned (or the after given):
	// pass it as after to resume.
	Cursor string `json:"cursor"`
	More   bool   `json:"more"`
}

func (h *Handler) events(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	f, err := h.scopedAudit(r, tok)
	if err != nil {
		return err
	}
	actions := splitComma(r.URL.Query().Get("action"))
	f.Action = ""
	if len(actions) == 1 && !strings.HasSuffix(actions[0], "*") {
		f.Action = actions[0]
	}
	page := EventPage{Events: []Event{}, Cursor: strconv.FormatInt(f.AfterSeq, 10)}
	limit := f.Limit
	f.Limit = 0
	last := f.AfterSeq
	err = h.st.StreamAudit(r.Context(), f, func(ev engine.AuditEvent) error {
		if len(page.Events) == limit {
			page.More = true
			return errStop
		}
		last = ev.Seq
		if matchAction(actions, ev.Action) {
			page.Events = append(page.Events, EventOf(ev))
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	page.Cursor = strconv.FormatInt(last, 10)
	return ok(w, page)
}

var errStop = errors.New("stop")

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// matchAction reports whether action is one of patterns ("identity.*"
// matches every identity action); no patterns match everything.
func matchAction(patterns []string, action string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if p == action || (strings.HasSuffix(p, "*") && strings.HasPrefix(action, strings.TrimSuffix(p, "*"))) {
			return true
		}
	}
	return false
}

// Store returns the store the handler reads.
func (h *Handler) Store() Store { return h.st }
