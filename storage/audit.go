package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/idsync/idsync/engine"
)

func isNotFound(err error) bool { return errors.Is(err, engine.ErrNotFound) }
func isExists(err error) bool   { return errors.Is(err, engine.ErrExists) }

type conflictRow struct {
	ID          string `db:"id"`
	OrgID       string `db:"org_id"`
	SourceID    string `db:"source_id"`
	Key         string `db:"source_key"`
	Rule        string `db:"rule"`
	Reason      string `db:"reason"`
	Candidates  string `db:"candidates"`
	Observation string `db:"observation"`
	Status      string `db:"status"`
	Resolution  string `db:"resolution"`
	ResolvedBy  string `db:"resolved_by"`
	CreatedAt   ts     `db:"created_at"`
	ResolvedAt  ts     `db:"resolved_at"`
}

const conflictCols = `id, org_id, source_id, source_key, rule, reason, candidates, observation, status, resolution, resolved_by, created_at, resolved_at`

func (r conflictRow) conflict() engine.Conflict {
	c := engine.Conflict{ID: r.ID, OrgID: r.OrgID, SourceID: r.SourceID, Key: r.Key, Rule: r.Rule, Reason: r.Reason,
		Status: r.Status, Resolution: r.Resolution, ResolvedBy: r.ResolvedBy, CreatedAt: r.CreatedAt.T(), ResolvedAt: r.ResolvedAt.T()}
	fromJSON(r.Candidates, &c.Candidates)
	fromJSON(r.Observation, &c.Observation)
	return c
}

func (c conn) Conflict(ctx context.Context, id string) (engine.Conflict, error) {
	var r conflictRow
	err := c.get(ctx, "conflict "+id, &r, `SELECT `+conflictCols+` FROM conflicts WHERE id = ?`, id)
	return r.conflict(), err
}

func (c conn) OpenConflictByKey(ctx context.Context, sourceID, key string) (engine.Conflict, bool, error) {
	var r conflictRow
	// status is a literal so the partial index conflicts_open applies.
	err := c.get(ctx, "conflict", &r, `SELECT `+conflictCols+` FROM conflicts WHERE source_id = ? AND source_key = ? AND status = 'open'`,
		sourceID, key)
	if isNotFound(err) {
		return engine.Conflict{}, false, nil
	}
	return r.conflict(), err == nil, err
}

// OpenConflictByKey inside a transaction first asks, once per source,
// whether the source has any open conflict at all (most have none).
func (c txConn) OpenConflictByKey(ctx context.Context, sourceID, key string) (engine.Conflict, bool, error) {
	if !c.memo.noConflicts[sourceID] {
		var n int
		if err := c.get(ctx, "open conflicts", &n, `SELECT COUNT(*) FROM conflicts WHERE source_id = ? AND status = 'open'`, sourceID); err != nil {
			return engine.Conflict{}, false, err
		}
		if n > 0 {
			return c.conn.OpenConflictByKey(ctx, sourceID, key)
		}
		c.memo.noConflicts[sourceID] = true
	}
	return engine.Conflict{}, false, nil
}

func (c conn) Conflicts(ctx context.Context, orgID, status string) ([]engine.Conflict, error) {
	q := `SELECT ` + conflictCols + ` FROM conflicts WHERE org_id = ?`
	args := []any{orgID}
	if status != "" {
		q += ` AND status = ?`
		args = append(args, status)
	}
	var rows []conflictRow
	if err := c.sel(ctx, "conflicts", &rows, q+` ORDER BY created_at, id`, args...); err != nil {
		return nil, err
	}
	out := make([]engine.Conflict, len(rows))
	for i, r := range rows {
		out[i] = r.conflict()
	}
	return out, nil
}

func (c txConn) InsertConflict(ctx context.Context, x engine.Conflict) error {
	delete(c.memo.noConflicts, x.SourceID)
	_, err := c.exec(ctx, "open conflict", `INSERT INTO conflicts (`+conflictCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		x.ID, x.OrgID, x.SourceID, x.Key, x.Rule, x.Reason, jsonOf(nonNil(x.Candidates)), jsonOf(x.Observation), x.Status,
		x.Resolution, x.ResolvedBy, tsOf(x.CreatedAt), tsOf(x.ResolvedAt))
	if isExists(err) {
		return fmt.Errorf("conflict for %q: %w", x.Key, engine.ErrRetry)
	}
	return err
}

func (c txConn) UpdateConflict(ctx context.Context, x engine.Conflict) error {
	r, err := c.exec(ctx, "update conflict", `UPDATE conflicts SET candidates = ?, observation = ?, status = ?, resolution = ?, resolved_by = ?, resolved_at = ? WHERE id = ?`,
		jsonOf(nonNil(x.Candidates)), jsonOf(x.Observation), x.Status, x.Resolution, x.ResolvedBy, tsOf(x.ResolvedAt), x.ID)
	if err != nil {
		return err
	}
	return mustAffect(r, "update conflict "+x.ID)
}

type auditRow struct {
	Seq           int64   `db:"seq"`
	ID            string  `db:"id"`
	At            ts      `db:"at"`
	OrgID         string  `db:"org_id"`
	Channel       string  `db:"channel"`
	SourceID      string  `db:"source_id"`
	Actor         string  `db:"actor"`
	Action        string  `db:"action"`
	SubjectType   string  `db:"subject_type"`
	SubjectID     string  `db:"subject_id"`
	IdentityID    string  `db:"identity_id"`
	Changes       *string `db:"changes"`
	CorrelationID string  `db:"correlation_id"`
	PrevHash      string  `db:"prev_hash"`
	Hash          string  `db:"hash"`
}

const auditCols = `seq, id, at, org_id, channel, source_id, actor, action, subject_type, subject_id, identity_id, changes, correlation_id, prev_hash, hash`

func (r auditRow) event() engine.AuditEvent {
	e := engine.AuditEvent{Seq: r.Seq, ID: r.ID, At: r.At.T(), OrgID: r.OrgID, Channel: r.Channel, SourceID: r.SourceID,
		Actor: r.Actor, Action: r.Action, SubjectType: r.SubjectType, SubjectID: r.SubjectID, IdentityID: r.IdentityID,
		CorrelationID: r.CorrelationID, PrevHash: r.PrevHash, Hash: r.Hash}
	if r.Changes != nil {
		e.Changes = json.RawMessage(*r.Changes)
	}
	return e
}

const auditChunk = 32

var auditInserts [auditChunk + 1]string

func init() {
	row := "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	for n := 1; n <= auditChunk; n++ {
		auditInserts[n] = `INSERT INTO audit_events (` + auditCols + `) VALUES ` + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
	}
}

func auditInsert(n int) string { return auditInserts[n] }

// AppendAudit locks the chain's head row, so appends are serialised across
// transactions and processes, then writes the events chained to it. The
// engine appends last in its transaction, so the head is held only briefly.
func (c txConn) AppendAudit(ctx context.Context, events []engine.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	// The head this process appended last is usually still the head: chain
	// onto it and claim the head row in one statement that succeeds only
	// if it is (and takes the row lock, as the read would have). When
	// another transaction or process appended since, or a transaction of
	// ours that moved it rolled back, the claim changes no row: read the
	// head under the lock and chain again.
	if seq, hash, ok := c.head.get(); ok {
		chainEvents(events, seq, hash)
		last := events[len(events)-1]
		r, err := c.exec(ctx, "audit head", `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1 AND seq = ? AND hash = ?`,
			last.Seq, last.Hash, seq, hash)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err == nil && n == 1 {
			c.head.set(last.Seq, last.Hash)
			return c.insertAudit(ctx, events)
		}
	}
	lock := `SELECT seq, hash FROM audit_head WHERE id = 1`
	if c.d == Postgres {
		lock += ` FOR UPDATE`
	}
	var seq int64
	var hash string
	if err := c.scan(ctx, "audit head", lock, nil, &seq, &hash); err != nil {
		return err
	}
	chainEvents(events, seq, hash)
	last := events[len(events)-1]
	if _, err := c.exec(ctx, "audit head", `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, last.Seq, last.Hash); err != nil {
		return err
	}
	c.head.set(last.Seq, last.Hash)
	return c.insertAudit(ctx, events)
}

// chainEvents numbers events after seq and chains their hashes to hash.
func chainEvents(events []engine.AuditEvent, seq int64, hash string) {
	var buf []byte
	for i := range events {
		ev := &events[i]
		ev.Seq, ev.PrevHash = seq+1, hash
		ev.Hash, buf = engine.ChainHashBuf(buf, ev.PrevHash, ev)
		seq, hash = ev.Seq, ev.Hash
	}
}

// insertAudit writes chained events in multi-row inserts of up to
// auditChunk: few statement shapes to prepare, few round trips.
func (c txConn) insertAudit(ctx context.Context, events []engine.AuditEvent) error {
	for start := 0; start < len(events); start += auditChunk {
		chunk := events[start:min(start+auditChunk, len(events))]
		args := make([]any, 0, len(chunk)*15)
		for _, ev := range chunk {
			args = append(args, ev.Seq, ev.ID, tsOf(ev.At), ev.OrgID, ev.Channel, ev.SourceID, ev.Actor, ev.Action, ev.SubjectType,
				ev.SubjectID, ev.IdentityID, nullText(ev.Changes), ev.CorrelationID, ev.PrevHash, ev.Hash)
		}
		if err := c.execBulk(ctx, "append audit", auditInsert(len(chunk)), args); err != nil {
			return err
		}
	}
	return nil
}

// headCache is the audit head this process appended last (a guess that
// AppendAudit checks, never trusts).
type headCache struct {
	mu    sync.Mutex
	seq   int64
	hash  string
	known bool
}

func (h *headCache) get() (int64, string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seq, h.hash, h.known
}

func (h *headCache) set(seq int64, hash string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq, h.hash, h.known = seq, hash, true
}

func auditWhere(f engine.AuditFilter) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if f.OrgID != "" {
		add("org_id = ?", f.OrgID)
	}
	if f.IdentityID != "" {
		add("identity_id = ?", f.IdentityID)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.Channel != "" {
		add("channel = ?", f.Channel)
	}
	if f.SourceID != "" {
		add("source_id = ?", f.SourceID)
	}
	if !f.Since.IsZero() {
		add("at >= ?", f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		add("at < ?", f.Until.UnixMicro())
	}
	if f.AfterSeq > 0 {
		add("seq > ?", f.AfterSeq)
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// StreamAudit streams matching events in sequence order without holding
// them all in memory.
func (s *DB) StreamAudit(ctx context.Context, f engine.AuditFilter, fn func(engine.AuditEvent) error) error {
	where, args := auditWhere(f)
	q := `SELECT ` + auditCols + ` FROM audit_events` + where + ` ORDER BY seq`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return fmt.Errorf("read audit: %w", mapErr(err))
	}
	defer rows.Close()
	var r auditRow
	for rows.Next() {
		r.Changes = nil
		if err := rows.Scan(&r.Seq, &r.ID, &r.At, &r.OrgID, &r.Channel, &r.SourceID, &r.Actor, &r.Action, &r.SubjectType,
			&r.SubjectID, &r.IdentityID, &r.Changes, &r.CorrelationID, &r.PrevHash, &r.Hash); err != nil {
			return fmt.Errorf("read audit: %w", mapErr(err))
		}
		if err := fn(r.event()); err != nil {
			return err
		}
	}
	return mapErr(rows.Err())
}

// AuditHead returns the last appended sequence number and hash.
func (s *DB) AuditHead(ctx context.Context) (int64, string, error) {
	var head struct {
		Seq  int64  `db:"seq"`
		Hash string `db:"hash"`
	}
	err := s.get(ctx, "audit head", &head, `SELECT seq, hash FROM audit_head WHERE id = 1`)
	return head.Seq, head.Hash, err
}
