package storage

import (
	"context"
	"fmt"
	"sync"

	"github.com/jmoiron/sqlx"
)

// writer is SQLite's one write connection. SQLite lets one transaction
// write at a time anyway; running them all on one connection, with BEGIN
// IMMEDIATE and COMMIT issued by hand, spares each transaction what
// database/sql's Tx costs (a goroutine watching its context, started and
// woken per transaction: measured ~15 µs of a ~360 µs new-person write)
// and keeps one warm page cache and one set of prepared statements for
// every write. Transactions of this process take turns on mu; other
// processes wait on SQLite's lock as before (busy timeout).
type writer struct {
	mu   sync.Mutex
	conn *sqlx.Conn
	x    writerExt
	// stmts are prepared on conn. A snapshot page's background inserter
	// (engine/newcomers.go) prepares beside the transaction's goroutine,
	// hence smu.
	smu   sync.Mutex
	stmts map[string]*sqlx.Stmt
}

// writerExt gives the connection the two methods sqlx.ExtContext wants
// beyond what sqlx.Conn has.
type writerExt struct{ *sqlx.Conn }

func (writerExt) DriverName() string { return "sqlite" }

func (writerExt) BindNamed(q string, arg any) (string, []any, error) {
	return sqlx.BindNamed(sqlx.QUESTION, q, arg)
}

func newWriter(ctx context.Context, db *sqlx.DB) (*writer, error) {
	c, err := db.Connx(ctx)
	if err != nil {
		return nil, err
	}
	return &writer{conn: c, x: writerExt{c}, stmts: map[string]*sqlx.Stmt{}}, nil
}

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
	w.mu.Lock()
	defer w.mu.Unlock()
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
	if err := fn(&txConn{conn: conn{x: w.x, d: s.dialect, w: w, cache: s.cache, groups: s.groups}, memo: memo}); err != nil {
		return err
	}
	if _, err := w.x.ExecContext(bg, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	done = true
	return nil
}

func (w *writer) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.smu.Lock()
	defer w.smu.Unlock()
	for _, st := range w.stmts {
		st.Close()
	}
	w.conn.Close()
}
