// Package storage keeps the identity graph in SQL through sqlx: SQLite
// (modernc.org/sqlite, no cgo, WAL, busy timeout) as the embedded default and
// PostgreSQL (pgx) for several idsync processes on one database. One set of
// repository methods serves both; the few dialect differences (placeholders,
// error codes, row locks) live in this file.
//
// It implements engine.Store and engine.Tx; the engine owns the rules, this
// package only reads and writes rows. Migrations are embedded, numbered and
// forward-only (see migrate.go); package storagetest holds the conformance
// suite both backends run.
//
// Where things are: conn.go (statement cache, per-transaction memo, shared
// group cache, the JSON of columns, hand-written for the hot ones),
// writer.go (SQLite's one write connection), identities.go (people,
// accounts, matching candidates, groups, memberships), new_rows.go
// (multi-row inserts of new people), provenance.go (compact provenance),
// audit.go
// (conflicts, the audit chain), orgs.go, jobs.go, scim_resources.go,
// jit_store.go and admin_*.go (the tables of their packages).
package storage

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/idsync/idsync/engine"
)

// Dialect names a backend.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is the SQL store. It implements engine.Store.
type DB struct {
	conn
	stopCheckpoints func()
	db              *sqlx.DB
	dialect         Dialect
	writer          *writer // SQLite: the connection every write transaction runs on
}

var _ engine.Store = (*DB)(nil)

// Options tune Open.
type Options struct {
	// BusyTimeout is how long SQLite waits for a lock (default 10s).
	BusyTimeout time.Duration
	// MaxOpenConns bounds the pool (default 16; SQLite writers still take
	// turns).
	MaxOpenConns int
	// SkipMigrate leaves the schema as it is.
	SkipMigrate bool
}

// IsPostgresURL reports whether dsn names a PostgreSQL database rather than
// a SQLite file.
func IsPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open opens the database dsn names — a PostgreSQL URL or a SQLite file
// path — and brings its schema to the latest migration.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	if opts.BusyTimeout == 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if opts.MaxOpenConns == 0 {
		opts.MaxOpenConns = 16
	}
	var (
		db  *sqlx.DB
		d   Dialect
		err error
	)
	if IsPostgresURL(dsn) {
		d = Postgres
		db, err = sqlx.Open("pgx", dsn)
	} else {
		d = SQLite
		db, err = sqlx.Open("sqlite", sqliteDSN(dsn, opts.BusyTimeout))
	}
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", d, mapErr(err))
	}
	db.SetMaxOpenConns(opts.MaxOpenConns)
	db.SetMaxIdleConns(opts.MaxOpenConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s database %s: %w", d, redact(dsn), errors.Join(err, engine.ErrUnavailable))
	}
	s := &DB{db: db, dialect: d, conn: conn{x: db, d: d, cache: &stmtCache{pool: db, m: map[string]*sqlx.Stmt{}},
		groups: &groupCache{m: map[string]engine.Group{}}, head: &headCache{}}}
	if !opts.SkipMigrate {
		if _, err := s.Migrate(ctx, 0); err != nil {
			db.Close()
			return nil, err
		}
	}
	if d == SQLite {
		if s.writer, err = newWriter(ctx, db, opts.BusyTimeout); err != nil {
			db.Close()
			return nil, fmt.Errorf("open %s database %s: %w", d, redact(dsn), errors.Join(err, engine.ErrUnavailable))
		}
		s.stopCheckpoints = s.checkpointer()
	}
	return s, nil
}

// checkpointer copies the WAL back into the database file in the
// background, so no writer pays for a checkpoint (and its fsync) inside
// its commit: measured, that was the p99 of small writes. PASSIVE never
// blocks writers or readers.
func (s *DB) checkpointer() (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_, _ = s.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
			}
		}
	}()
	return func() { close(done); <-finished }
}

const headQuery = `
		SELECT a.id, a.identity_id, a.hash, i.state, i.last_login_at
		FROM accounts a JOIN identities i ON i.id = a.identity_id
		WHERE a.source_id = ? AND a.source_key = ?`

// sqliteDSN turns a path into a modernc DSN: WAL, a busy timeout, foreign
// keys, synchronous=NORMAL (durable against a crash of idsync; the last
// transactions may be lost on power loss) and write transactions that take
// the lock at BEGIN, so two writers never deadlock upgrading.
func sqliteDSN(path string, busy time.Duration) string {
	if strings.HasPrefix(path, "file:") {
		path = strings.TrimPrefix(path, "file:")
	}
	q := url.Values{}
	for _, p := range []string{
		fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()),
		"journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)",
		"wal_autocheckpoint(0)", // checkpoints run in the background (checkpointer)
		"temp_store(MEMORY)",    // statement journals of multi-row writes stay off disk
	} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		extra, _ := url.ParseQuery(path[i+1:])
		for k, vs := range extra {
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		path = path[:i]
	}
	return "file:" + path + "?" + q.Encode()
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Dialect reports the backend.
func (s *DB) Dialect() Dialect { return s.dialect }

// SQL exposes the pool for packages that own extra tables (and tests).
func (s *DB) SQL() *sqlx.DB { return s.db }

// Close closes the pool.
func (s *DB) Close() error {
	if s.writer != nil {
		s.writer.close()
	}
	if s.stopCheckpoints != nil {
		s.stopCheckpoints()
		_, _ = s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	s.cache.close()
	return s.db.Close()
}

// Ping checks the database answers.
func (s *DB) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", errors.Join(err, engine.ErrUnavailable))
	}
	return nil
}

// InTx runs fn in one transaction: on SQLite on the write connection
// (see writer), on PostgreSQL as a pooled transaction.
func (s *DB) InTx(ctx context.Context, fn func(engine.Tx) error) error {
	memo := newTxMemo()
	run := func(tx *txConn) error { return fn(tx) }
	var err error
	if s.writer != nil {
		err = s.writerTx(ctx, memo, run)
	} else {
		err = s.poolTx(ctx, memo, run)
	}
	if err != nil {
		return err
	}
	for _, k := range memo.created { // committed now
		if g, ok := memo.groups[k]; ok {
			s.groups.put(k, g)
		}
	}
	return nil
}

func (s *DB) poolTx(ctx context.Context, memo *txMemo, fn func(*txConn) error) (err error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", mapErr(err))
	}
	defer s.cache.prepareWanted(ctx) // after the connection went back
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(&txConn{conn: conn{x: tx, d: s.dialect, tx: tx, cache: s.cache, groups: s.groups, head: s.head}, memo: memo}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	return nil
}

// AccountHead is the hot-path read.
func (s *DB) AccountHead(ctx context.Context, sourceID, key string) (engine.AccountHead, bool, error) {
	var h engine.AccountHead
	var state string
	var last ts
	st, err := s.stmt(ctx, headQuery)
	if err != nil {
		return h, false, fmt.Errorf("account head: %w", mapErr(err))
	}
	err = st.QueryRowContext(ctx, sourceID, key).Scan(&h.AccountID, &h.IdentityID, &h.Hash, &state, &last)
	if errors.Is(err, errNoRows) {
		return h, false, nil
	}
	if err != nil {
		return h, false, fmt.Errorf("account head: %w", mapErr(err))
	}
	h.IdentityState, h.LastLoginAt = engine.State(state), last.T()
	return h, true, nil
}

// mapErr turns driver errors into engine error kinds.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("database is locked (another writer held it past the busy timeout): %w",
				errors.Join(err, engine.ErrUnavailable))
		case sqlite3.SQLITE_CONSTRAINT:
			if se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
				return errors.Join(err, engine.ErrExists)
			}
			return errors.Join(err, engine.ErrInvalid)
		case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY:
			return errors.Join(err, engine.ErrUnavailable)
		}
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505":
			return errors.Join(err, engine.ErrExists)
		case pe.Code == "40001" || pe.Code == "40P01":
			return errors.Join(err, engine.ErrRetry)
		case strings.HasPrefix(pe.Code, "23"):
			return errors.Join(err, engine.ErrInvalid)
		case strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57") || strings.HasPrefix(pe.Code, "53"):
			return errors.Join(err, engine.ErrUnavailable)
		}
		return err
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.SafeToRetry(err) || errors.Is(err, context.DeadlineExceeded) {
		return errors.Join(err, engine.ErrUnavailable)
	}
	return err
}

// SerializedWrites reports whether write transactions run one at a time
// (SQLite); the engine then groups concurrent applies into one commit.
func (s *DB) SerializedWrites() bool { return s.dialect == SQLite }

// Savepoint, RollbackTo and Release let the engine undo one observation of
// a grouped transaction.
func (c txConn) Savepoint(ctx context.Context, name string) error {
	_, err := c.x.ExecContext(ctx, "SAVEPOINT "+name)
	return mapErr(err)
}

// RollbackTo also forgets what the transaction memoised: a group the
// undone writes created no longer exists.
func (c txConn) RollbackTo(ctx context.Context, name string) error {
	_, err := c.x.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+name)
	clear(c.memo.groups)
	c.memo.created = c.memo.created[:0]
	clear(c.memo.noConflicts)
	return mapErr(err)
}

func (c txConn) Release(ctx context.Context, name string) error {
	_, err := c.x.ExecContext(ctx, "RELEASE SAVEPOINT "+name)
	return mapErr(err)
}
