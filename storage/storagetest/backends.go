// Package storagetest is the storage conformance suite: one set of tests of
// the engine's storage contract that every backend runs (Run), and the
// helpers that open a fresh database of each backend for any package's tests
// (SQLite, Postgres, Backends).
//
// PostgreSQL tests use the server named by IDSYNC_TEST_POSTGRES_DSN (each
// test gets its own database on it). Without it they skip with a message —
// unless IDSYNC_REQUIRE_SERVICES=1, as CI sets, where they fail.
package storagetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/idsync/idsync/storage"
)

// PostgresEnv names the variable holding a PostgreSQL server URL for tests.
const PostgresEnv = "IDSYNC_TEST_POSTGRES_DSN"

// RequireServices reports whether tests must fail rather than skip when a
// service (PostgreSQL, slapd, …) is missing.
func RequireServices() bool { return os.Getenv("IDSYNC_REQUIRE_SERVICES") == "1" }

// SkipOrFail skips the test with msg, or fails it when services are required.
func SkipOrFail(t testing.TB, msg string) {
	t.Helper()
	if RequireServices() {
		t.Fatalf("%s (IDSYNC_REQUIRE_SERVICES=1, so this fails instead of skipping)", msg)
	}
	t.Skip(msg)
}

// SQLite opens a fresh SQLite database in a temp dir.
func SQLite(t testing.TB) *storage.DB {
	t.Helper()
	return open(t, filepath.Join(t.TempDir(), "idsync.db"))
}

// SQLiteDSN returns the path of a fresh, not yet opened SQLite database.
func SQLiteDSN(t testing.TB) string { return filepath.Join(t.TempDir(), "idsync.db") }

// PostgresDSN creates an empty database on the test server and returns its
// URL; it is dropped when the test ends.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(PostgresEnv)
	if admin == "" {
		SkipOrFail(t, "PostgreSQL tests need "+PostgresEnv+" (e.g. postgres://postgres@127.0.0.1:5432/postgres); .ci/run starts one")
	}
	db, err := sqlx.Open("pgx", admin)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer db.Close()
	name := fmt.Sprintf("idsync_test_%d", rand.Uint64()%1e12)
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		if RequireServices() {
			t.Fatalf("postgres at %s: %v", admin, err)
		}
		t.Skipf("postgres at %s is not usable: %v", admin, err)
	}
	t.Cleanup(func() {
		db, err := sqlx.Open("pgx", admin)
		if err == nil {
			db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			db.Close()
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s: %v", PostgresEnv, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Postgres opens a fresh PostgreSQL database.
func Postgres(t testing.TB) *storage.DB {
	t.Helper()
	return open(t, PostgresDSN(t))
}

func open(t testing.TB, dsn string) *storage.DB {
	t.Helper()
	db, err := storage.Open(context.Background(), dsn, storage.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", strings.SplitN(dsn, "?", 2)[0], err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Backend opens a fresh database of one backend.
type Backend struct {
	Name string
	Open func(t testing.TB) *storage.DB
	DSN  func(t testing.TB) string
}

// Backends lists every backend; run a test under each with
//
//	for _, b := range storagetest.Backends() {
//		t.Run("database="+b.Name, func(t *testing.T) { db := b.Open(t); … })
//	}
func Backends() []Backend {
	return []Backend{
		{Name: "sqlite", Open: SQLite, DSN: SQLiteDSN},
		{Name: "postgres", Open: Postgres, DSN: PostgresDSN},
	}
}
