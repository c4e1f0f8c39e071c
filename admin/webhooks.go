package admin

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/idsync/idsync/engine"
	"github.com/idsync/idsync/storage"
)

// Webhook statuses.
const (
	WebhookActive = "active"
	WebhookPaused = "paused"
)

// Delivery statuses.
const (
	DeliveryOK     = "delivered"
	DeliveryFailed = "failed"
)

// Signature headers. The signature is "v1=" + hex(HMAC-SHA256(secret,
// timestamp + "." + body)); receivers check it and reject a timestamp
// older than a few minutes (replay).
const (
	HeaderSignature = "X-Idsync-Signature"
	HeaderTimestamp = "X-Idsync-Timestamp"
	HeaderEventID   = "X-Idsync-Event-Id"
)

// Sign returns the signature header value of body sent at ts.
func Sign(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.", ts)
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery's signature and that its timestamp is within
// tolerance of now; receivers in Go can use it as is.
func Verify(secret string, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(header.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("webhook: no timestamp: %w", engine.ErrForbidden)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook: timestamp is %s away: %w", d, engine.ErrForbidden)
	}
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(header.Get(HeaderSignature))) {
		return fmt.Errorf("webhook: signature does not verify: %w", engine.ErrForbidden)
	}
	return nil
}

// Webhook is a per-organization endpoint the events of that organization
// are delivered to, in sequence order, each once.
type Webhook struct {
	ID    string `json:"id"`
	OrgID string `json:"orgId"`
	URL   string `json:"url"`
	// Actions filter what is sent ("identity.*" for a prefix); empty: all.
	Actions []string `json:"actions"`
	// Cursor is the seq of the last event delivered or skipped.
	Cursor        int64     `json:"cursor"`
	Status        string    `json:"status"`
	Failures      int       `json:"failures"`
	NextAttemptAt time.Time `json:"nextAttemptAt,omitzero"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

func viewOf(w storage.AdminWebhook) Webhook {
	if w.Actions == nil {
		w.Actions = []string{}
	}
	return Webhook{ID: w.ID, OrgID: w.OrgID, URL: w.URL, Actions: w.Actions, Cursor: w.CursorSeq, Status: w.Status,
		Failures: w.Failures, NextAttemptAt: w.NextAttemptAt, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
}

// Delivery is one logged attempt.
type Delivery struct {
	ID         string    `json:"id"`
	WebhookID  string    `json:"webhookId"`
	EventSeq   int64     `json:"eventSeq"`
	Attempt    int       `json:"attempt"`
	Status     string    `json:"status"`
	HTTPStatus int       `json:"httpStatus,omitempty"`
	Error      string    `json:"error,omitempty"`
	At         time.Time `json:"at"`
	DurationMS float64   `json:"durationMs"`
}

func deliveryOf(d storage.AdminDelivery) Delivery {
	return Delivery{ID: d.ID, WebhookID: d.WebhookID, EventSeq: d.EventSeq, Attempt: d.Attempt, Status: d.Status,
		HTTPStatus: d.HTTPStatus, Error: d.Error, At: d.At, DurationMS: float64(d.Duration.Microseconds()) / 1000}
}

// WorkerOptions tune the delivery worker; zero values are sensible.
type WorkerOptions struct {
	Logger *slog.Logger
	Client *http.Client // default: 10 s timeout
	// Poll is how often the worker looks for new events (default 2s).
	Poll time.Duration
	// BaseBackoff is the first retry delay, doubled per failure up to
	// MaxBackoff (defaults 5s and 1h).
	BaseBackoff, MaxBackoff time.Duration
	// PauseAfter failures in a row pause the webhook (default 10).
	PauseAfter int
	Now        func() time.Time
}

// Worker delivers events to webhooks: per webhook, events after its cursor
// in seq order; a failure stops that webhook's queue (so order is kept)
// and retries it with exponential backoff; PauseAfter failures in a row
// pause it until an admin resumes it.
type Worker struct {
	st   Store
	opts WorkerOptions
	wake chan struct{}
	mu   sync.Mutex // one pass at a time
}

// NewWorker returns a delivery worker on e's store.
func NewWorker(e *engine.Engine, opts WorkerOptions) (*Worker, error) {
	st, ok := e.Store().(Store)
	if !ok {
		return nil, fmt.Errorf("admin: the store %T lacks the admin tables: %w", e.Store(), engine.ErrInvalid)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Poll == 0 {
		opts.Poll = 2 * time.Second
	}
	if opts.BaseBackoff == 0 {
		opts.BaseBackoff = 5 * time.Second
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = time.Hour
	}
	if opts.PauseAfter == 0 {
		opts.PauseAfter = 10
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Worker{st: st, opts: opts, wake: make(chan struct{}, 1)}, nil
}

// Wake makes the worker look for events now.
func (w *Worker) Wake() {
	if w == nil {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(w.opts.Poll)
	defer t.Stop()
	for {
		if err := w.Pass(ctx); err != nil && ctx.Err() == nil {
			w.opts.Logger.Warn("webhooks: delivery pass failed", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// Pass delivers what is due to every active webhook once.
func (w *Worker) Pass(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	hooks, err := w.st.AdminWebhooks(ctx, "")
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range hooks {
		if h.Status != WebhookActive || w.opts.Now().Before(h.NextAttemptAt) {
			continue
		}
		now := w.opts.Now()
		if ok, err := w.st.AdminClaimWebhook(ctx, h.ID, now, now.Add(claimFor)); err != nil || !ok {
			if err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := w.drain(ctx, h); err != nil {
			errs = append(errs, err)
			// Let the next pass retry soon rather than after the claim.
			_ = w.st.AdminWebhookProgress(context.WithoutCancel(ctx), h.ID, h.CursorSeq, h.Failures, time.Time{}, false, now)
		}
	}
	return errors.Join(errs...)
}

const batch = 200

// claimFor is how long one process holds a webhook for a delivery pass.
const claimFor = 2 * time.Minute

// drain delivers a webhook's pending events in order until it is caught
// up or one fails.
func (w *Worker) drain(ctx context.Context, h storage.AdminWebhook) error {
	for {
		var evs []engine.AuditEvent
		err := w.st.StreamAudit(ctx, engine.AuditFilter{OrgID: h.OrgID, AfterSeq: h.CursorSeq, Limit: batch},
			func(ev engine.AuditEvent) error {
				evs = append(evs, ev)
				return nil
			})
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return w.st.AdminWebhookProgress(ctx, h.ID, h.CursorSeq, h.Failures, time.Time{}, false, w.opts.Now())
		}
		for _, ev := range evs {
			if !matchAction(h.Actions, ev.Action) {
				h.CursorSeq = ev.Seq
				continue
			}
			d := w.send(ctx, h, ev, h.Failures+1)
			if err := w.st.AdminAddDelivery(ctx, d); err != nil {
				return err
			}
			now := w.opts.Now()
			if d.Status != DeliveryOK {
				h.Failures++
				pause := h.Failures >= w.opts.PauseAfter
				if pause {
					w.opts.Logger.Warn("webhooks: endpoint keeps failing, paused", "webhook", h.ID, "failures", h.Failures)
				}
				return w.st.AdminWebhookProgress(ctx, h.ID, h.CursorSeq, h.Failures, now.Add(w.backoff(h.Failures)), pause, now)
			}
			h.CursorSeq, h.Failures = ev.Seq, 0
			if err := w.st.AdminWebhookProgress(ctx, h.ID, h.CursorSeq, 0, now.Add(claimFor), false, now); err != nil {
				return err
			}
		}
		if len(evs) < batch {
			// Caught up: due again at once (the poll decides when).
			return w.st.AdminWebhookProgress(ctx, h.ID, h.CursorSeq, 0, time.Time{}, false, w.opts.Now())
		}
	}
}

func (w *Worker) backoff(failures int) time.Duration {
	d := w.opts.BaseBackoff
	for i := 1; i < failures && d < w.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, w.opts.MaxBackoff)
}

// send posts one event and returns the logged attempt.
func (w *Worker) send(ctx context.Context, h storage.AdminWebhook, ev engine.AuditEvent, attempt int) storage.AdminDelivery {
	start := time.Now()
	d := storage.AdminDelivery{ID: uuid.Must(uuid.NewV7()).String(), WebhookID: h.ID, EventSeq: ev.Seq,
		Attempt: attempt, At: w.opts.Now().UTC(), Status: DeliveryFailed}
	body, _ := json.Marshal(EventOf(ev))
	ts := w.opts.Now().Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		d.Error = err.Error()
		return d
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "idsync-webhooks/1")
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(h.Secret, ts, body))
	req.Header.Set(HeaderEventID, ev.ID)
	resp, err := w.opts.Client.Do(req)
	d.Duration = time.Since(start)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may hold credentials: do not log it
		}
		d.Error = err.Error()
		return d
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	d.HTTPStatus = resp.StatusCode
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		d.Status = DeliveryOK
	} else {
		d.Error = resp.Status
	}
	return d
}

// Redeliver sends a logged delivery's event again now and logs the
// attempt; the webhook's cursor does not move.
func (w *Worker) Redeliver(ctx context.Context, deliveryID string) (storage.AdminDelivery, error) {
	d, err := w.st.AdminDelivery(ctx, deliveryID)
	if err != nil {
		return d, err
	}
	h, err := w.st.AdminWebhook(ctx, d.WebhookID)
	if err != nil {
		return d, err
	}
	var ev engine.AuditEvent
	found := false
	err = w.st.StreamAudit(ctx, engine.AuditFilter{AfterSeq: d.EventSeq - 1, Limit: 1}, func(e engine.AuditEvent) error {
		ev, found = e, e.Seq == d.EventSeq
		return nil
	})
	if err != nil {
		return d, err
	}
	if !found {
		return d, fmt.Errorf("event %d: %w", d.EventSeq, engine.ErrNotFound)
	}
	nd := w.send(ctx, h, ev, d.Attempt+1)
	return nd, w.st.AdminAddDelivery(ctx, nd)
}

// NewWebhookSecret returns a fresh signing secret.
func NewWebhookSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b)
}

// WebhookInput creates or changes a webhook.
type WebhookInput struct {
	URL     *string  `json:"url,omitempty"`
	Actions []string `json:"actions,omitempty"`
	// Status "active" resumes a paused webhook (failures reset), "paused"
	// pauses it.
	Status *string `json:"status,omitempty"`
	// FromStart delivers the organization's whole history; otherwise a new
	// webhook starts at the current end of the log.
	FromStart bool `json:"fromStart,omitempty"`
}

func validURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("url %q is not an http(s) URL: %w", s, engine.ErrInvalid)
	}
	return nil
}

// CreateWebhook stores a webhook of orgID and returns it with its secret
// (shown once).
func CreateWebhook(ctx context.Context, st Store, orgID string, in WebhookInput, now time.Time) (Webhook, string, error) {
	if in.URL == nil {
		return Webhook{}, "", fmt.Errorf("url is required: %w", engine.ErrInvalid)
	}
	if err := validURL(*in.URL); err != nil {
		return Webhook{}, "", err
	}
	var cursor int64
	if !in.FromStart {
		seq, _, err := st.AuditHead(ctx)
		if err != nil {
			return Webhook{}, "", err
		}
		cursor = seq
	}
	secret := NewWebhookSecret()
	h := storage.AdminWebhook{ID: uuid.Must(uuid.NewV7()).String(), OrgID: orgID, URL: *in.URL, Secret: secret,
		Actions: in.Actions, CursorSeq: cursor, Status: WebhookActive, CreatedAt: now, UpdatedAt: now}
	if err := st.AdminPutWebhook(ctx, h); err != nil {
		return Webhook{}, "", err
	}
	return viewOf(h), secret, nil
}

// --- API handlers

func (h *Handler) listWebhooks(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	hs, err := h.st.AdminWebhooks(r.Context(), o.ID)
	if err != nil {
		return err
	}
	out := make([]Webhook, len(hs))
	for i, x := range hs {
		out[i] = viewOf(x)
	}
	return ok(w, list(out))
}

// NewWebhook is a created webhook with its signing secret, shown once.
type NewWebhook struct {
	Webhook
	Secret string `json:"secret"`
}

func (h *Handler) createWebhook(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	o, err := h.org(r, tok)
	if err != nil {
		return err
	}
	var in WebhookInput
	if err := decode(r, &in); err != nil {
		return err
	}
	wh, secret, err := CreateWebhook(r.Context(), h.st, o.ID, in, time.Now().UTC())
	if err != nil {
		return err
	}
	return created(w, NewWebhook{Webhook: wh, Secret: secret})
}

func (h *Handler) webhook(ctx context.Context, tok engine.Token, id string) (storage.AdminWebhook, error) {
	return owned(ctx, tok, "webhook", id, h.st.AdminWebhook, func(wh storage.AdminWebhook) string { return wh.OrgID })
}

func (h *Handler) getWebhook(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	wh, err := h.webhook(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	return ok(w, viewOf(wh))
}

// ChangeWebhook applies a partial update (resume resets the failures).
func ChangeWebhook(ctx context.Context, st Store, wh storage.AdminWebhook, in WebhookInput, now time.Time) (Webhook, error) {
	if in.URL != nil {
		if err := validURL(*in.URL); err != nil {
			return Webhook{}, err
		}
		wh.URL = *in.URL
	}
	if in.Actions != nil {
		wh.Actions = in.Actions
	}
	if in.Status != nil {
		switch *in.Status {
		case WebhookActive:
			wh.Status, wh.Failures, wh.NextAttemptAt = WebhookActive, 0, time.Time{}
		case WebhookPaused:
			wh.Status = WebhookPaused
		default:
			return Webhook{}, fmt.Errorf("status %q is not active or paused: %w", *in.Status, engine.ErrInvalid)
		}
	}
	wh.UpdatedAt = now
	return viewOf(wh), st.AdminPutWebhook(ctx, wh)
}

func (h *Handler) patchWebhook(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	wh, err := h.webhook(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	var in WebhookInput
	if err := decode(r, &in); err != nil {
		return err
	}
	v, err := ChangeWebhook(r.Context(), h.st, wh, in, time.Now().UTC())
	if err != nil {
		return err
	}
	return ok(w, v)
}

func (h *Handler) deleteWebhook(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	wh, err := h.webhook(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := h.st.AdminDeleteWebhook(r.Context(), wh.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) listDeliveries(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	wh, err := h.webhook(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 100, 1000)
	if err != nil {
		return err
	}
	ds, err := h.st.AdminDeliveries(r.Context(), wh.ID, limit)
	if err != nil {
		return err
	}
	out := make([]Delivery, len(ds))
	for i, d := range ds {
		out[i] = deliveryOf(d)
	}
	return ok(w, list(out))
}

func (h *Handler) redeliver(w http.ResponseWriter, r *http.Request, tok engine.Token) error {
	d, err := h.st.AdminDelivery(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if _, err := h.webhook(r.Context(), tok, d.WebhookID); err != nil {
		return fmt.Errorf("delivery %s: %w", d.ID, engine.ErrNotFound)
	}
	wk := h.opts.Webhooks
	if wk == nil {
		if wk, err = NewWorker(h.e, WorkerOptions{Logger: h.log}); err != nil {
			return err
		}
	}
	nd, err := wk.Redeliver(r.Context(), d.ID)
	if err != nil {
		return err
	}
	return created(w, deliveryOf(nd))
}
