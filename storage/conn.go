package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/idsync/idsync/engine"
)

var errNoRows = sql.ErrNoRows

// conn holds the repository methods; it runs on the pool (reads) or on a
// transaction (txConn).
type conn struct {
	x      sqlx.ExtContext
	d      Dialect
	tx     *sqlx.Tx // set inside a PostgreSQL transaction
	w      *writer  // set inside a SQLite transaction (see writer)
	cache  *stmtCache
	groups *groupCache
	head   *headCache
}

// inTx reports whether c runs inside a transaction.
func (c conn) inTx() bool { return c.tx != nil || c.w != nil }

// txConn is a conn inside a transaction: it also has the write methods.
type txConn struct {
	conn
	memo *txMemo
}

// txMemo remembers, for one transaction, reads that its own writes keep
// true: the groups it looked up or created, and the sources known to have
// no open conflict. A snapshot page or a group commit applies hundreds of
// observations in one transaction; these lookups then cost one query
// each instead of one per observation.
type txMemo struct {
	groups      map[string]engine.Group // org ID + "\x00" + lower-case name
	created     []string                // keys of the groups to share once committed (groupCache)
	noConflicts map[string]bool         // source ID → no open conflict
}

func newTxMemo() *txMemo {
	return &txMemo{groups: map[string]engine.Group{}, noConflicts: map[string]bool{}}
}

// groupCache remembers committed organization groups across transactions.
// A group row never changes and is never deleted (organizations are not
// deleted either), so a committed group stays valid in every process; a
// logged-in person's groups then cost no query per login.
type groupCache struct {
	mu sync.RWMutex
	m  map[string]engine.Group
}

const maxCachedGroups = 10000

func (gc *groupCache) get(key string) (engine.Group, bool) {
	gc.mu.RLock()
	defer gc.mu.RUnlock()
	g, ok := gc.m[key]
	return g, ok
}

func (gc *groupCache) put(key string, g engine.Group) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	if len(gc.m) >= maxCachedGroups {
		clear(gc.m)
	}
	gc.m[key] = g
}

var _ engine.Tx = (*txConn)(nil)

var rebound sync.Map // query → PostgreSQL form

// q returns query in the dialect's placeholder form.
func (c conn) q(query string) string {
	if c.d != Postgres {
		return query
	}
	if v, ok := rebound.Load(query); ok {
		return v.(string)
	}
	r := sqlx.Rebind(sqlx.DOLLAR, query)
	rebound.Store(query, r)
	return r
}

// stmtCache keeps one prepared statement per query text. database/sql
// prepares it once per pooled connection and reuses it inside transactions
// on that connection, so the hot paths skip SQL parsing (measured: a third
// of the cost of a new identity on SQLite).
type stmtCache struct {
	pool   *sqlx.DB
	mu     sync.RWMutex
	m      map[string]*sqlx.Stmt
	wanted map[string]bool // run unprepared by a transaction: prepare after it
	closed bool
}

const maxCachedStmts = 512

func (sc *stmtCache) lookup(q string) (st *sqlx.Stmt, full bool) {
	sc.mu.RLock()
	defer sc.mu.RUnlock()
	return sc.m[q], len(sc.m) >= maxCachedStmts
}

// get returns the statement for q, preparing it on the pool on a miss; nil
// means run the query text directly. Preparing takes a pooled connection,
// so only callers that hold none may call get, and it runs outside the
// lock so that transactions can still look statements up meanwhile.
func (sc *stmtCache) get(ctx context.Context, q string) (*sqlx.Stmt, error) {
	if st, full := sc.lookup(q); st != nil || full {
		return st, nil // full: a query built with many shapes, run unprepared
	}
	st, err := sc.pool.PreparexContext(ctx, q)
	if err != nil {
		return nil, err
	}
	sc.mu.Lock()
	old, dup := sc.m[q]
	if !dup && !sc.closed {
		sc.m[q] = st
	}
	closed := sc.closed
	sc.mu.Unlock()
	if dup || closed {
		// Closing needs the statement's connections, which a transaction
		// waiting for sc.mu may hold: never close under the lock.
		st.Close()
		return old, nil
	}
	return st, nil
}

// want notes a query a transaction ran unprepared. A transaction must not
// wait for a second connection to prepare it: with the pool taken by
// writers waiting for this one's locks, it would never get one.
func (sc *stmtCache) want(q string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.wanted == nil {
		sc.wanted = map[string]bool{}
	}
	sc.wanted[q] = true
}

// prepareWanted prepares what transactions wanted; InTx calls it once its
// transaction has given the connection back. A failure leaves a query
// unprepared until a transaction wants it again.
func (sc *stmtCache) prepareWanted(ctx context.Context) {
	sc.mu.Lock()
	qs := make([]string, 0, len(sc.wanted))
	for q := range sc.wanted {
		qs = append(qs, q)
	}
	clear(sc.wanted)
	sc.mu.Unlock()
	for _, q := range qs {
		if _, err := sc.get(ctx, q); err != nil {
			return
		}
	}
}

func (sc *stmtCache) close() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, st := range sc.m {
		st.Close()
	}
	sc.m = map[string]*sqlx.Stmt{}
	sc.closed = true
}

// stmt returns the cached statement for query, bound to the transaction
// when there is one; nil means run the query text directly.
func (c conn) stmt(ctx context.Context, query string) (*sqlx.Stmt, error) {
	if c.cache == nil {
		return nil, nil
	}
	q := c.q(query)
	if c.w != nil {
		return c.w.stmt(ctx, q)
	}
	if c.tx == nil {
		return c.cache.get(ctx, q)
	}
	st, full := c.cache.lookup(q)
	if st == nil {
		if !full {
			c.cache.want(q)
		}
		return nil, nil
	}
	return c.tx.StmtxContext(ctx, st), nil
}

func (c conn) exec(ctx context.Context, what, query string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, query)
	var r sql.Result
	if err == nil && st != nil {
		r, err = st.ExecContext(ctx, args...)
	} else if err == nil {
		r, err = c.x.ExecContext(ctx, c.q(query), args...)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, mapErr(err))
	}
	return r, nil
}

func (c conn) get(ctx context.Context, what string, dst any, query string, args ...any) error {
	st, err := c.stmt(ctx, query)
	if err == nil && st != nil {
		err = st.GetContext(ctx, dst, args...)
	} else if err == nil {
		err = sqlx.GetContext(ctx, c.x, dst, c.q(query), args...)
	}
	return rowErr(what, err)
}

// rowErr names what a one-row read was for: no row is ErrNotFound.
func rowErr(what string, err error) error {
	if errors.Is(err, errNoRows) {
		return fmt.Errorf("%s: %w", what, engine.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, mapErr(err))
	}
	return nil
}

// execBulk runs a multi-row insert: on SQLite's write connection through
// the driver directly (see writer.execRaw), elsewhere as exec does.
func (c conn) execBulk(ctx context.Context, what, query string, args []any) error {
	if c.w == nil {
		_, err := c.exec(ctx, what, query, args...)
		return err
	}
	if err := c.w.execRaw(ctx, query, args); err != nil {
		return fmt.Errorf("%s: %w", what, mapErr(err))
	}
	return nil
}

// scan reads one row into dst without reflection (for the hottest reads).
func (c conn) scan(ctx context.Context, what, query string, args []any, dst ...any) error {
	st, err := c.stmt(ctx, query)
	if err == nil && st != nil {
		err = st.QueryRowContext(ctx, args...).Scan(dst...)
	} else if err == nil {
		err = c.x.QueryRowxContext(ctx, c.q(query), args...).Scan(dst...)
	}
	return rowErr(what, err)
}

func (c conn) sel(ctx context.Context, what string, dst any, query string, args ...any) error {
	st, err := c.stmt(ctx, query)
	if err == nil && st != nil {
		err = st.SelectContext(ctx, dst, args...)
	} else if err == nil {
		err = sqlx.SelectContext(ctx, c.x, dst, c.q(query), args...)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, mapErr(err))
	}
	return nil
}

// mustAffect turns "no row changed" into ErrNotFound.
func mustAffect(r sql.Result, what string) error {
	n, err := r.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, mapErr(err))
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, engine.ErrNotFound)
	}
	return nil
}

// ts is a time stored as Unix microseconds; the zero time is NULL.
type ts int64

func tsOf(t time.Time) ts {
	if t.IsZero() {
		return 0
	}
	return ts(t.UnixMicro())
}

func (t ts) T() time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.UnixMicro(int64(t)).UTC()
}

func (t ts) Value() (driver.Value, error) {
	if t == 0 {
		return nil, nil
	}
	return int64(t), nil
}

func (t *ts) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*t = 0
	case int64:
		*t = ts(x)
	case int32:
		*t = ts(x)
	case float64:
		*t = ts(int64(x))
	default:
		return fmt.Errorf("time column holds %T", v)
	}
	return nil
}

// jsonOf encodes v for a TEXT column.
func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("storage: marshal %T: %v", v, err))
	}
	return string(b)
}

// attrsJSON encodes attributes as encoding/json does (keys sorted), by
// hand: it runs for the golden record and the account of every write.
func attrsJSON(a engine.Attrs) string {
	if a == nil {
		return "null"
	}
	keys := make([]string, 0, len(a))
	n := 2
	for k, v := range a {
		keys = append(keys, k)
		n += len(k) + len(v) + 6
	}
	slices.Sort(keys)
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = engine.AppendJSONString(b, k)
		b = append(b, ':')
		b = engine.AppendJSONString(b, a[k])
	}
	return string(append(b, '}'))
}

// stringsJSON encodes a list of strings as encoding/json does (nil as
// []), by hand: group and role lists are written with every new person.
func stringsJSON(l []string) string {
	n := 2
	for _, v := range l {
		n += len(v) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, v := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = engine.AppendJSONString(b, v)
	}
	return string(append(b, ']'))
}

// nullText stores raw JSON, NULL when empty.
func nullText(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

func fromJSON(s string, v any) {
	if s == "" {
		return
	}
	_ = json.Unmarshal([]byte(s), v) // written by jsonOf; a broken value reads as empty
}
