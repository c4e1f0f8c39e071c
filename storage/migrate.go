package storage

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migrations live in migrations/NNNN_name.sql and run on both backends. A
// migration that must differ per backend is written as
// NNNN_name.sqlite.sql and NNNN_name.postgres.sql. They are forward-only:
// never edit one that has shipped, add the next number.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func migrations(d Dialect) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]migration{}
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".sql")
		specific := ""
		if i := strings.LastIndexByte(name, '.'); i > 0 {
			name, specific = name[:i], name[i+1:]
		}
		if specific != "" && specific != string(d) {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and _", e.Name())
		}
		if old, dup := byVersion[v]; dup && specific == "" {
			_ = old // the dialect-specific file wins
			continue
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		byVersion[v] = migration{version: v, name: name, sql: dialectSQL(string(b), d)}
	}
	var out []migration
	for _, m := range byVersion {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations: version %d is missing", i+1)
		}
	}
	return out, nil
}

// LatestVersion is the number of the newest embedded migration.
func LatestVersion() int {
	ms, err := migrations(SQLite)
	if err != nil {
		return 0
	}
	return len(ms)
}

// Migrate applies the migrations not yet applied, up to version `to` (0: all),
// each in its own transaction, and returns the version reached. Several
// processes may call it at once: on PostgreSQL an advisory lock makes them
// take turns, on SQLite the write lock does.
func (s *DB) Migrate(ctx context.Context, to int) (int, error) {
	ms, err := migrations(s.dialect)
	if err != nil {
		return 0, err
	}
	if to == 0 || to > len(ms) {
		to = len(ms)
	}
	if err := s.lockedExec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	current := 0
	for _, m := range ms[:to] {
		err := func() error {
			tx, err := s.db.BeginTxx(ctx, nil)
			if err != nil {
				return mapErr(err)
			}
			defer tx.Rollback()
			if s.dialect == Postgres {
				if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7275696)`); err != nil {
					return mapErr(err)
				}
			}
			var n int
			if err := tx.GetContext(ctx, &n, s.db.Rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.version); err != nil {
				return mapErr(err)
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range splitSQL(m.sql) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", firstLine(stmt), mapErr(err))
				}
			}
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
				m.version, m.name, time.Now().UnixMicro()); err != nil {
				return mapErr(err)
			}
			return tx.Commit()
		}()
		if err != nil {
			return current, fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
		}
		current = m.version
	}
	return current, nil
}

// SchemaVersion is the newest migration applied.
func (s *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v *int
	if err := s.db.GetContext(ctx, &v, `SELECT MAX(version) FROM schema_migrations`); err != nil {
		return 0, fmt.Errorf("schema version: %w", mapErr(err))
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}

// splitSQL splits a migration into statements at semicolons that end a line,
// dropping comment-only lines. Migrations keep one statement per ;-line.
func splitSQL(src string) []string {
	var out []string
	var b strings.Builder
	for _, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSpace(b.String()))
			b.Reset()
		}
	}
	if s := strings.TrimSpace(b.String()); s != "" {
		out = append(out, s)
	}
	return out
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i > 0 {
		return s[:i]
	}
	return s
}

// lockedExec runs one statement under the migration lock.
func (s *DB) lockedExec(ctx context.Context, stmt string) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	defer tx.Rollback()
	if s.dialect == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7275696)`); err != nil {
			return mapErr(err)
		}
	}
	if _, err := tx.ExecContext(ctx, stmt); err != nil {
		return mapErr(err)
	}
	return mapErr(tx.Commit())
}

var (
	sqliteOnly = regexp.MustCompile(`/\*sqlite:([^*]*)\*/`)
	pgOnly     = regexp.MustCompile(`/\*pg:([^*]*)\*/`)
)

// dialectSQL turns "/*sqlite:X*/" into X on SQLite and "/*pg:X*/" into X
// on PostgreSQL; each dialect reads the other's markers as comments.
func dialectSQL(src string, d Dialect) string {
	if d == SQLite {
		return sqliteOnly.ReplaceAllString(src, "$1")
	}
	return pgOnly.ReplaceAllString(src, "$1")
}
