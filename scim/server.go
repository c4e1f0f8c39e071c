package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	scimerr "github.com/elimity-com/scim/errors"

	"github.com/idsync/idsync/engine"
)

// Prefix is where the handler is mounted.
const Prefix = "/scim/v2"

// Config is a scim source's configuration (engine.Source.Config); see the
// package doc for a YAML example. Zero values take the defaults.
type Config struct {
	MaxBodyBytes        int64 `json:"maxBodyBytes,omitempty"`
	MaxResults          int   `json:"maxResults,omitempty"`
	BulkMaxOperations   int   `json:"bulkMaxOperations,omitempty"`
	BulkMaxPayloadBytes int64 `json:"bulkMaxPayloadBytes,omitempty"`
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var probs []string
	for _, p := range []struct {
		bad bool
		msg string
	}{
		{c.MaxBodyBytes < 0 || c.MaxBodyBytes > 64<<20, "maxBodyBytes must be between 0 (default) and 64 MiB"},
		{c.MaxResults < 0 || c.MaxResults > 10000, "maxResults must be between 0 (default) and 10000"},
		{c.BulkMaxOperations < 0 || c.BulkMaxOperations > 10000, "bulkMaxOperations must be between 0 (default) and 10000"},
		{c.BulkMaxPayloadBytes < 0 || c.BulkMaxPayloadBytes > 64<<20, "bulkMaxPayloadBytes must be between 0 (default) and 64 MiB"},
	} {
		if p.bad {
			probs = append(probs, p.msg)
		}
	}
	if len(probs) > 0 {
		return fmt.Errorf("scim config: %s: %w", strings.Join(probs, "; "), engine.ErrInvalid)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxResults == 0 {
		c.MaxResults = 1000
	}
	if c.BulkMaxOperations == 0 {
		c.BulkMaxOperations = 1000
	}
	if c.BulkMaxPayloadBytes == 0 {
		c.BulkMaxPayloadBytes = 1 << 20
	}
	return c
}

// Options tune the Handler.
type Options struct {
	Logger *slog.Logger
	// SourceTTL is how long a directory's source and config are reused
	// (default 5s).
	SourceTTL time.Duration
}

// Handler serves every SCIM directory under Prefix.
type Handler struct {
	e    *engine.Engine
	rd   engine.SCIMReader
	log  *slog.Logger
	opts Options

	mu    sync.Mutex
	dirs  map[string]cachedDir
	pages pageCache
}

type cachedDir struct {
	d  *dir
	at time.Time
}

// dir is one directory as a request sees it.
type dir struct {
	src engine.Source
	cfg Config
}

// New returns the handler. The engine's store must implement
// engine.SCIMReader (package storage does).
func New(e *engine.Engine, opts Options) (*Handler, error) {
	rd, ok := e.Store().(engine.SCIMReader)
	if !ok {
		return nil, fmt.Errorf("scim: store %T keeps no SCIM resources", e.Store())
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SourceTTL == 0 {
		opts.SourceTTL = 5 * time.Second
	}
	return &Handler{e: e, rd: rd, log: opts.Logger, opts: opts, dirs: map[string]cachedDir{}}, nil
}

// request is one SCIM operation, from HTTP or from a /Bulk operation.
type request struct {
	method      string
	path        string // below Prefix, e.g. /Users/123
	query       url.Values
	body        []byte
	ifMatch     string
	ifNoneMatch string
	base        string // absolute URL of Prefix, for meta.location
	actor       string
	corr        string
	readOnly    bool
}

// response is what an operation answers.
type response struct {
	status   int
	body     []byte
	etag     string
	location string
}

const contentType = "application/scim+json"

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d, tok, err := h.authenticate(ctx, r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="scim"`)
		h.write(w, errResponse(err, r.Method))
		return
	}
	req := request{method: r.Method, path: strings.TrimPrefix(r.URL.Path, Prefix), query: r.URL.Query(),
		ifMatch: r.Header.Get("If-Match"), ifNoneMatch: r.Header.Get("If-None-Match"),
		base: baseURL(r), actor: "scim-token:" + tok.ID, corr: r.Header.Get("X-Request-Id"), readOnly: tok.Scope == "read"}
	if !printable(req.corr) {
		req.corr = engine.NewID()
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		limit := d.cfg.MaxBodyBytes
		if req.path == "/Bulk" {
			limit = d.cfg.BulkMaxPayloadBytes
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				h.write(w, errResponse(scimErr(http.StatusRequestEntityTooLarge, "",
					fmt.Sprintf("the request body is larger than %d bytes", limit)), r.Method))
				return
			}
			h.write(w, errResponse(scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidSyntax, "the request body could not be read"), r.Method))
			return
		}
		req.body = body
	}
	resp := h.do(ctx, d, req)
	if resp.status >= 500 {
		h.log.Error("scim request failed", "method", r.Method, "source", d.src.ID, "status", resp.status, "correlation", req.corr)
	}
	h.write(w, resp)
}

func (h *Handler) write(w http.ResponseWriter, resp response) {
	hd := w.Header()
	if resp.etag != "" {
		hd.Set("ETag", resp.etag)
	}
	if resp.location != "" {
		hd.Set("Location", resp.location)
	}
	if len(resp.body) > 0 {
		hd.Set("Content-Type", contentType)
	}
	w.WriteHeader(resp.status)
	if len(resp.body) > 0 {
		w.Write(resp.body)
	}
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host + Prefix
}

var (
	errNoToken  = scimErr(http.StatusUnauthorized, "", "a bearer token of a SCIM directory is required")
	errBadToken = scimErr(http.StatusUnauthorized, "", "the bearer token is unknown or revoked")
)

// authenticate finds the directory of the request's bearer token.
func (h *Handler) authenticate(ctx context.Context, r *http.Request) (*dir, engine.Token, error) {
	auth := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return nil, engine.Token{}, errNoToken
	}
	tok, err := h.e.Authenticate(ctx, strings.TrimSpace(secret))
	if err != nil {
		if errors.Is(err, engine.ErrForbidden) {
			return nil, engine.Token{}, errBadToken
		}
		return nil, engine.Token{}, err
	}
	if tok.Kind != engine.TokenSCIM || tok.SourceID == "" {
		return nil, engine.Token{}, errBadToken
	}
	d, err := h.dir(ctx, tok.SourceID)
	if err != nil {
		return nil, engine.Token{}, err
	}
	return d, tok, nil
}

func (h *Handler) dir(ctx context.Context, sourceID string) (*dir, error) {
	now := time.Now()
	h.mu.Lock()
	c, ok := h.dirs[sourceID]
	h.mu.Unlock()
	if ok && now.Sub(c.at) < h.opts.SourceTTL {
		return c.d, nil
	}
	src, err := h.e.Store().Source(ctx, sourceID)
	if err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			return nil, errBadToken
		}
		return nil, err
	}
	if src.Kind != engine.KindSCIM {
		return nil, errBadToken
	}
	if !src.Enabled {
		return nil, scimErr(http.StatusForbidden, "", "this SCIM directory is disabled")
	}
	var cfg Config
	if len(src.Config) > 0 && string(src.Config) != "null" {
		if err := json.Unmarshal(src.Config, &cfg); err != nil {
			return nil, scimErr(http.StatusInternalServerError, "", "this directory's configuration is not valid JSON")
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, scimErr(http.StatusInternalServerError, "", err.Error())
	}
	d := &dir{src: src, cfg: cfg.withDefaults()}
	h.mu.Lock()
	h.dirs[sourceID] = cachedDir{d: d, at: now}
	h.mu.Unlock()
	return d, nil
}

// do routes one operation.
func (h *Handler) do(ctx context.Context, d *dir, req request) response {
	segs := strings.Split(strings.Trim(req.path, "/"), "/")
	write := req.method != http.MethodGet && !(req.method == http.MethodPost && segs[len(segs)-1] == ".search")
	if write && req.readOnly {
		return errResponse(scimErr(http.StatusForbidden, "", "this token may only read"), req.method)
	}
	var (
		resp response
		err  error
	)
	switch {
	case len(segs) == 1 && segs[0] == "ServiceProviderConfig" && req.method == http.MethodGet:
		resp, err = h.serviceProviderConfig(d, req)
	case segs[0] == "Schemas" && len(segs) <= 2 && req.method == http.MethodGet:
		resp, err = h.schemas(req, segs[1:])
	case segs[0] == "ResourceTypes" && len(segs) <= 2 && req.method == http.MethodGet:
		resp, err = h.resourceTypes(req, segs[1:])
	case len(segs) == 1 && segs[0] == "Bulk" && req.method == http.MethodPost:
		resp, err = h.bulk(ctx, d, req)
	case len(segs) == 1 && segs[0] == ".search" && req.method == http.MethodPost:
		resp, err = h.rootSearch(ctx, d, req)
	case segs[0] == "Users" || segs[0] == "Groups":
		resp, err = h.resource(ctx, d, req, segs)
	default:
		err = scimErr(http.StatusNotFound, "", fmt.Sprintf("no endpoint %s %s", req.method, req.path))
	}
	if err != nil {
		resp = errResponse(err, req.method)
	}
	if write {
		h.pages.wrote(d.src.ID) // even a failed bulk may have written
	}
	return resp
}

func (h *Handler) resource(ctx context.Context, d *dir, req request, segs []string) (response, error) {
	users := segs[0] == "Users"
	switch {
	case len(segs) == 1 && req.method == http.MethodGet:
		return h.list(ctx, d, req, users, req.query)
	case len(segs) == 2 && segs[1] == ".search" && req.method == http.MethodPost:
		q, err := searchQuery(req.body)
		if err != nil {
			return response{}, err
		}
		return h.list(ctx, d, req, users, q)
	case len(segs) == 1 && req.method == http.MethodPost:
		if users {
			return h.createUser(ctx, d, req)
		}
		return h.createGroup(ctx, d, req)
	case len(segs) == 2 && segs[1] != "":
		id := segs[1]
		switch req.method {
		case http.MethodGet:
			return h.get(ctx, d, req, users, id)
		case http.MethodPut:
			if users {
				return h.putUser(ctx, d, req, id)
			}
			return h.putGroup(ctx, d, req, id)
		case http.MethodPatch:
			if users {
				return h.patchUser(ctx, d, req, id)
			}
			return h.patchGroup(ctx, d, req, id)
		case http.MethodDelete:
			if users {
				return h.deleteUser(ctx, d, req, id)
			}
			return h.deleteGroup(ctx, d, req, id)
		}
		return response{}, scimErr(http.StatusMethodNotAllowed, "", req.method+" is not supported on "+segs[0]+"/{id}")
	}
	return response{}, scimErr(http.StatusNotFound, "", fmt.Sprintf("no endpoint %s %s", req.method, req.path))
}

// decodeObject decodes a JSON object keeping numbers as json.Number.
func decodeObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil || doc == nil {
		return nil, scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidSyntax, "the request body is not a JSON object")
	}
	if dec.More() {
		return nil, scimErr(http.StatusBadRequest, scimerr.ScimTypeInvalidSyntax, "the request body holds more than one JSON value")
	}
	return doc, nil
}

// MustNew is New for the composition root: a store without SCIM tables is
// a wiring bug.
func MustNew(e *engine.Engine, opts Options) *Handler {
	h, err := New(e, opts)
	if err != nil {
		panic(err)
	}
	return h
}

// printable admits a client's X-Request-Id as the audit correlation id.
func printable(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
