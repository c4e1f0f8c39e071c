package storage

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/idsync/idsync/engine"
)

var errNoRows = sql.ErrNoRows

// conn holds the repository methods; it runs on the pool (reads) or on a
// transaction (txConn).
type conn struct {
	x sqlx.ExtContext
	d Dialect
}

// txConn is a conn inside a transaction: it also has the write methods.
type txConn struct{ conn }

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

func (c conn) exec(ctx context.Context, what, query string, args ...any) (sql.Result, error) {
	r, err := c.x.ExecContext(ctx, c.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, mapErr(err))
	}
	return r, nil
}

func (c conn) get(ctx context.Context, what string, dst any, query string, args ...any) error {
	err := sqlx.GetContext(ctx, c.x, dst, c.q(query), args...)
	if errors.Is(err, errNoRows) {
		return fmt.Errorf("%s: %w", what, engine.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, mapErr(err))
	}
	return nil
}

func (c conn) sel(ctx context.Context, what string, dst any, query string, args ...any) error {
	if err := sqlx.SelectContext(ctx, c.x, dst, c.q(query), args...); err != nil {
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
