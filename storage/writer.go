package storage

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sync"
	"time"

	"github.com/idsync/idsync/engine"

	"github.com/jmoiron/sqlx"
)

// writer is SQLite's one write connection. SQLite lets one transaction
// write at a time anyway; running them all on one connection, with BEGIN
// IMMEDIATE and COMMIT issued by hand, spares each transaction what
// database/sql's Tx costs (a goroutine watching its context, started and
// woken per transaction: measured ~15 µs of a ~360 µs new-person write)
// and keeps one warm page cache and one set of prepared statements for
// every write. Transactions of this process take turns on turn, waiting
// at most the busy timeout as they would for SQLite's lock; other
// processes wait on SQLite's lock as before.
type writer struct {
	turn chan struct{} // holds a token while a transaction runs
	busy time.Duration
	conn *sqlx.Conn
	x    writerExt
	// stmts are prepared on conn. A snapshot page's background inserter
	// (engine/newcomers.go) prepares beside the transaction's goroutine,
	// hence smu.
	smu   sync.Mutex
	stmts map[string]*sqlx.Stmt
	// raw holds the driver's own statements for the multi-row inserts
	// (execRaw); touched only inside conn.Raw, which runs one at a time.
	raw  map[string]driver.Stmt
	args []driver.NamedValue
}

// writerExt gives the connection the two methods sqlx.ExtContext wants
// beyond what sqlx.Conn has.
type writerExt struct{ *sqlx.Conn }

func (writerExt) DriverName() string { return "sqlite" }

func (writerExt) BindNamed(q string, arg any) (string, []any, error) {
	return sqlx.BindNamed(sqlx.QUESTION, q, arg)
}

func newWriter(ctx context.Context, db *sqlx.DB, busy time.Duration) (*writer, error) {
	c, err := db.Connx(ctx)
	if err != nil {
		return nil, err
	}
	return &writer{turn: make(chan struct{}, 1), busy: busy, conn: c, x: writerExt{c}, stmts: map[string]*sqlx.Stmt{},
		raw: map[string]driver.Stmt{}}, nil
}

// execRaw runs q with args on the driver's connection itself. The
// multi-row inserts of a snapshot page bind hundreds of values a
// statement; database/sql's conversion of them (a slice and a check per
// value, every statement) was a tenth of what a page allocated.
func (w *writer) execRaw(ctx context.Context, q string, args []any) error {
	return w.conn.Raw(func(dc any) error {
		st, ok := w.raw[q]
		if !ok {
			p, ok := dc.(driver.ConnPrepareContext)
			if !ok {
				return fmt.Errorf("driver connection %T cannot prepare", dc)
			}
			var err error
			if st, err = p.PrepareContext(ctx, q); err != nil {
				return err
			}
			w.raw[q] = st
		}
		ex, ok := st.(driver.StmtExecContext)
		if !ok {
			return fmt.Errorf("driver statement %T cannot execute", st)
		}
		w.args = w.args[:0]
		for i, a := range args {
			v, err := driverValue(a)
			if err != nil {
				return err
			}
			w.args = append(w.args, driver.NamedValue{Ordinal: i + 1, Value: v})
		}
		_, err := ex.ExecContext(ctx, w.args)
		clear(w.args) // hold no values past the call
		return err
	})
}

// driverValue is database/sql's conversion for the types storage binds.
func driverValue(a any) (driver.Value, error) {
	switch v := a.(type) {
	case nil, int64, float64, bool, []byte, string, time.Time:
		return v, nil
	case int:
		return int64(v), nil
	case *string:
		if v == nil {
			return nil, nil
		}
		return *v, nil
	case driver.Valuer:
		return v.Value()
	}
	return driver.DefaultParameterConverter.ConvertValue(a)
}

// take waits for the write connection: until ctx ends, or the busy
// timeout passes (then ErrUnavailable, as SQLite's own lock would say).
func (w *writer) take(ctx context.Context) error {
	select {
	case w.turn <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(w.busy)
	defer t.Stop()
	select {
	case w.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("database is locked (another writer of this process held it past the busy timeout): %w", engine.ErrUnavailable)
	}
}

func (w *writer) release() { <-w.turn }

// stmt returns q prepared on the write connection (nil: run it as text,
// when the cache is full).
func (w *writer) stmt(ctx context.Context, q string) (*sqlx.Stmt, error) {
	w.smu.Lock()
	defer w.smu.Unlock()
	if st, ok := w.stmts[q]; ok {
		return st, nil
	}
	if len(w.stmts) >= maxCachedStmts {
		return nil, nil
	}
	st, err := w.conn.PreparexContext(ctx, q)
	if err != nil {
		return nil, err
	}
	w.stmts[q] = st
	return st, nil
}

// writerTx runs fn in one write transaction on the write connection.
func (s *DB) writerTx(ctx context.Context, memo *txMemo, fn func(*txConn) error) error {
	w := s.writer
	if err := w.take(ctx); err != nil {
		return err
	}
	defer w.release()
	// BEGIN, COMMIT and ROLLBACK run whatever happens to ctx: a
	// transaction must not be left open on the shared connection.
	bg := context.WithoutCancel(ctx)
	if _, err := w.x.ExecContext(bg, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin: %w", mapErr(err))
	}
	done := false
	defer func() {
		if !done {
			_, _ = w.x.ExecContext(bg, "ROLLBACK")
		}
	}()
	if err := fn(&txConn{conn: conn{x: w.x, d: s.dialect, w: w, cache: s.cache, groups: s.groups, head: s.head}, memo: memo}); err != nil {
		return err
	}
	if _, err := w.x.ExecContext(bg, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	done = true
	return nil
}

func (w *writer) close() {
	w.turn <- struct{}{} // no transaction after this one
	w.smu.Lock()
	defer w.smu.Unlock()
	for _, st := range w.stmts {
		st.Close()
	}
	_ = w.conn.Raw(func(any) error {
		for _, st := range w.raw {
			st.Close()
		}
		return nil
	})
	w.conn.Close()
}
