package storage

import (
	"context"
	"fmt"
	"time"
)

// The admin tables: per-organization webhooks and their delivery log.
// Package admin declares the interface these methods meet; they take and
// return plain values so that storage does not import admin.
//
// The tables are created by migration 0005_admin.sql.

// AdminWebhook is a stored webhook row.
type AdminWebhook struct {
	ID            string
	OrgID         string
	URL           string
	Secret        string
	Actions       []string
	CursorSeq     int64
	Status        string
	Failures      int
	NextAttemptAt time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

type webhookRow struct {
	ID            string `db:"id"`
	OrgID         string `db:"org_id"`
	URL           string `db:"url"`
	Secret        string `db:"secret"`
	Actions       string `db:"actions"`
	CursorSeq     int64  `db:"cursor_seq"`
	Status        string `db:"status"`
	Failures      int    `db:"failures"`
	NextAttemptAt ts     `db:"next_attempt_at"`
	CreatedAt     ts     `db:"created_at"`
	UpdatedAt     ts     `db:"updated_at"`
}

func (r webhookRow) hook() AdminWebhook {
	w := AdminWebhook{ID: r.ID, OrgID: r.OrgID, URL: r.URL, Secret: r.Secret, CursorSeq: r.CursorSeq,
		Status: r.Status, Failures: r.Failures, NextAttemptAt: r.NextAttemptAt.T(), CreatedAt: r.CreatedAt.T(),
		UpdatedAt: r.UpdatedAt.T()}
	fromJSON(r.Actions, &w.Actions)
	return w
}

const webhookCols = `id, org_id, url, secret, actions, cursor_seq, status, failures, next_attempt_at, created_at, updated_at`

// AdminPutWebhook inserts or replaces a webhook.
func (s *DB) AdminPutWebhook(ctx context.Context, w AdminWebhook) error {
	if w.Actions == nil {
		w.Actions = []string{}
	}
	r, err := s.exec(ctx, "update webhook", `UPDATE admin_webhooks SET url = ?, actions = ?, cursor_seq = ?, status = ?,
		failures = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?`, w.URL, jsonOf(w.Actions), w.CursorSeq, w.Status,
		w.Failures, tsOf(w.NextAttemptAt), tsOf(w.UpdatedAt), w.ID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n > 0 {
		return nil
	}
	_, err = s.exec(ctx, "insert webhook", `INSERT INTO admin_webhooks (`+webhookCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		w.ID, w.OrgID, w.URL, w.Secret, jsonOf(w.Actions), w.CursorSeq, w.Status, w.Failures, tsOf(w.NextAttemptAt),
		tsOf(w.CreatedAt), tsOf(w.UpdatedAt))
	return err
}

// AdminWebhook reads one webhook.
func (s *DB) AdminWebhook(ctx context.Context, id string) (AdminWebhook, error) {
	var r webhookRow
	if err := s.get(ctx, "webhook "+id, &r, `SELECT `+webhookCols+` FROM admin_webhooks WHERE id = ?`, id); err != nil {
		return AdminWebhook{}, err
	}
	return r.hook(), nil
}

// AdminWebhooks lists an organization's webhooks (all when orgID is empty).
func (s *DB) AdminWebhooks(ctx context.Context, orgID string) ([]AdminWebhook, error) {
	var rows []webhookRow
	q := `SELECT ` + webhookCols + ` FROM admin_webhooks WHERE (? = '' OR org_id = ?) ORDER BY created_at, id`
	if err := s.sel(ctx, "webhooks", &rows, q, orgID, orgID); err != nil {
		return nil, err
	}
	out := make([]AdminWebhook, len(rows))
	for i, r := range rows {
		out[i] = r.hook()
	}
	return out, nil
}

// AdminDeleteWebhook removes a webhook and its delivery log.
func (s *DB) AdminDeleteWebhook(ctx context.Context, id string) error {
	if _, err := s.exec(ctx, "delete deliveries", `DELETE FROM admin_deliveries WHERE webhook_id = ?`, id); err != nil {
		return err
	}
	r, err := s.exec(ctx, "delete webhook", `DELETE FROM admin_webhooks WHERE id = ?`, id)
	if err != nil {
		return err
	}
	return mustAffect(r, "webhook "+id)
}

// AdminDelivery is one attempt to deliver one event to one webhook.
type AdminDelivery struct {
	ID         string        `db:"id"`
	WebhookID  string        `db:"webhook_id"`
	EventSeq   int64         `db:"event_seq"`
	Attempt    int           `db:"attempt"`
	Status     string        `db:"status"`
	HTTPStatus int           `db:"http_status"`
	Error      string        `db:"error"`
	At         time.Time     `db:"-"`
	Duration   time.Duration `db:"-"`
}

type deliveryRow struct {
	AdminDelivery
	AtTS       ts    `db:"at"`
	DurationUS int64 `db:"duration_us"`
}

// AdminAddDelivery logs a delivery attempt.
func (s *DB) AdminAddDelivery(ctx context.Context, d AdminDelivery) error {
	_, err := s.exec(ctx, "insert delivery", `INSERT INTO admin_deliveries
		(id, webhook_id, event_seq, attempt, status, http_status, error, at, duration_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.WebhookID, d.EventSeq, d.Attempt, d.Status, d.HTTPStatus, d.Error, tsOf(d.At), d.Duration.Microseconds())
	return err
}

const deliveryCols = `id, webhook_id, event_seq, attempt, status, http_status, error, at, duration_us`

// AdminDelivery reads one delivery.
func (s *DB) AdminDelivery(ctx context.Context, id string) (AdminDelivery, error) {
	var r deliveryRow
	if err := s.get(ctx, "delivery "+id, &r, `SELECT `+deliveryCols+` FROM admin_deliveries WHERE id = ?`, id); err != nil {
		return AdminDelivery{}, err
	}
	r.AdminDelivery.At, r.AdminDelivery.Duration = r.AtTS.T(), time.Duration(r.DurationUS)*time.Microsecond
	return r.AdminDelivery, nil
}

// AdminDeliveries lists a webhook's delivery log, newest first.
func (s *DB) AdminDeliveries(ctx context.Context, webhookID string, limit int) ([]AdminDelivery, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	var rows []deliveryRow
	if err := s.sel(ctx, "deliveries", &rows, `SELECT `+deliveryCols+` FROM admin_deliveries WHERE webhook_id = ?
		ORDER BY at DESC, id DESC LIMIT `+fmt.Sprint(limit), webhookID); err != nil {
		return nil, err
	}
	out := make([]AdminDelivery, len(rows))
	for i, r := range rows {
		out[i] = r.AdminDelivery
		out[i].At, out[i].Duration = r.AtTS.T(), time.Duration(r.DurationUS)*time.Microsecond
	}
	return out, nil
}

// AdminAccountFacts are the columns of one account the comparison report
// reads, with its source's kind and priority.
type AdminAccountFacts struct {
	IdentityID string `db:"identity_id"`
	SourceID   string `db:"source_id"`
	SourceKind string `db:"kind"`
	SourceName string `db:"name"`
	Priority   int    `db:"priority"`
	Attrs      string `db:"attrs"`
	Active     bool   `db:"active"`
	Removed    bool   `db:"removed"`
	FirstSeen  int64  `db:"first_seen"` // unix micros
}

// AdminIdentityFacts are the columns of one identity the comparison reads.
type AdminIdentityFacts struct {
	ID           string `db:"id"`
	State        string `db:"state"`
	Provenance   string `db:"provenance"`
	CreatedAt    int64  `db:"created_at"`     // unix micros
	FirstLoginAt int64  `db:"first_login_at"` // unix micros, 0: never
	LastLoginAt  int64  `db:"last_login_at"`  // unix micros, 0: never
	GrantedVia   string `db:"granted_via"`
}

// AdminCompareFacts streams, in one query each, the identities that belong
// to orgID (by membership or home organization) and their accounts.
func (s *DB) AdminCompareFacts(ctx context.Context, orgID string,
	ident func(AdminIdentityFacts) error, acct func(AdminAccountFacts) error) error {
	rows, err := s.db.QueryxContext(ctx, s.q(`SELECT i.id, i.state, i.provenance, i.created_at, COALESCE(i.first_login_at, 0) AS first_login_at, COALESCE(i.last_login_at, 0) AS last_login_at, COALESCE(m.granted_via, '') AS granted_via
		FROM identities i LEFT JOIN org_memberships m ON m.identity_id = i.id AND m.org_id = ?
		WHERE i.org_id = ? OR m.org_id IS NOT NULL`), orgID, orgID)
	if err != nil {
		return fmt.Errorf("compare identities: %w", mapErr(err))
	}
	for rows.Next() {
		var f AdminIdentityFacts
		if err := rows.StructScan(&f); err != nil {
			rows.Close()
			return fmt.Errorf("compare identities: %w", mapErr(err))
		}
		if err := ident(f); err != nil {
			rows.Close()
			return err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return mapErr(err)
	}
	rows, err = s.db.QueryxContext(ctx, s.q(`SELECT a.identity_id, a.source_id, s.kind, s.name, s.priority, a.attrs,
		a.active, a.removed, a.first_seen FROM accounts a JOIN sources s ON s.id = a.source_id WHERE a.org_id = ?`), orgID)
	if err != nil {
		return fmt.Errorf("compare accounts: %w", mapErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var f AdminAccountFacts
		if err := rows.StructScan(&f); err != nil {
			return fmt.Errorf("compare accounts: %w", mapErr(err))
		}
		if err := acct(f); err != nil {
			return err
		}
	}
	return mapErr(rows.Err())
}

// AdminLifecycleEvent is the little of an audit event the comparison needs.
type AdminLifecycleEvent struct {
	At         int64  `db:"at"` // unix micros
	Action     string `db:"action"`
	Channel    string `db:"channel"`
	IdentityID string `db:"identity_id"`
}

// AdminCompareEvents streams, in seq order, an organization's audit events
// of the window [since, until) (zero: open) that bear on lifecycle:
// deactivations, removals, deprovisions, reactivations and everything on
// the JIT channel. It reads four narrow columns, not the whole event.
func (s *DB) AdminCompareEvents(ctx context.Context, orgID string, since, until time.Time, fn func(AdminLifecycleEvent) error) error {
	q := `SELECT at, action, channel, identity_id FROM audit_events WHERE org_id = ? AND identity_id <> ''
		AND (action IN ('account.deactivated', 'account.removed', 'account.activated', 'identity.deprovisioned',
		'identity.reactivated') OR channel = 'jit')`
	args := []any{orgID}
	if !since.IsZero() {
		q += ` AND at >= ?`
		args = append(args, since.UnixMicro())
	}
	if !until.IsZero() {
		q += ` AND at < ?`
		args = append(args, until.UnixMicro())
	}
	rows, err := s.db.QueryContext(ctx, s.q(q+` ORDER BY seq`), args...)
	if err != nil {
		return fmt.Errorf("compare events: %w", mapErr(err))
	}
	defer rows.Close()
	var ev AdminLifecycleEvent
	for rows.Next() {
		if err := rows.Scan(&ev.At, &ev.Action, &ev.Channel, &ev.IdentityID); err != nil {
			return fmt.Errorf("compare events: %w", mapErr(err))
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	return mapErr(rows.Err())
}

// AdminClaimWebhook takes a due webhook for one delivery pass until the
// given time, so that of several idsync processes one delivers it: false
// if it is not due, paused, or another process holds it.
func (s *DB) AdminClaimWebhook(ctx context.Context, id string, now, until time.Time) (bool, error) {
	r, err := s.exec(ctx, "claim webhook", `UPDATE admin_webhooks SET next_attempt_at = ?
		WHERE id = ? AND status = 'active' AND (next_attempt_at IS NULL OR next_attempt_at <= ?)`, tsOf(until), id, tsOf(now))
	if err != nil {
		return false, err
	}
	n, err := r.RowsAffected()
	return n == 1, mapErr(err)
}

// AdminWebhookProgress records a delivery pass: the cursor, the failures
// in a row and when to try next; pause also pauses it. An admin's change
// of URL, actions or status made meanwhile is kept.
func (s *DB) AdminWebhookProgress(ctx context.Context, id string, cursor int64, failures int, next time.Time, pause bool, now time.Time) error {
	q := `UPDATE admin_webhooks SET cursor_seq = ?, failures = ?, next_attempt_at = ?, updated_at = ?`
	if pause {
		q += `, status = 'paused'`
	}
	r, err := s.exec(ctx, "webhook progress", q+` WHERE id = ?`, cursor, failures, tsOf(next), tsOf(now), id)
	if err != nil {
		return err
	}
	return mustAffect(r, "webhook "+id)
}
