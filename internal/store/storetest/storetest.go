// Package storetest runs store tests against every store.Store
// implementation: sqlstore on SQLite and on PostgreSQL. Its own tests are
// the conformance suite; other packages use Run to test against a real
// store instead of a fake.
//
// SQLite always runs, in a temporary file. PostgreSQL runs when
// HANGAR_TEST_POSTGRES_URL names a server (any database the URL's user may
// create schemas in), each test in a schema of its own that is dropped
// afterwards:
//
//	eval "$(bash .ci/postgres.sh)"
//	go test ./internal/store/...
//
// Without the variable the PostgreSQL subtests are skipped, except when CI
// is set: CI must test PostgreSQL, so there they fail.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/internal/store"
	"github.com/hangar-ml/hangar/internal/store/sqlstore"
)

// PostgresEnv names the environment variable with the PostgreSQL URL.
const PostgresEnv = "HANGAR_TEST_POSTGRES_URL"

// Run runs f as a subtest per implementation ("sqlite", "postgres"), each
// with a new, empty, migrated store that is closed when the subtest ends.
func Run(t *testing.T, f func(t *testing.T, s store.Store)) {
	t.Helper()
	RunURL(t, func(t *testing.T, url string) {
		f(t, Open(t, url))
	})
}

// RunURL runs f as a subtest per implementation with the URL of a new,
// empty database, for tests that open (and reopen) stores themselves.
func RunURL(t *testing.T, f func(t *testing.T, url string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { f(t, SQLiteURL(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, PostgresURL(t)) })
}

// Open opens the store at url and closes it when the test ends.
func Open(t testing.TB, url string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// SQLiteURL returns the URL of a new SQLite database file in the test's
// temporary directory.
func SQLiteURL(t testing.TB) string {
	t.Helper()
	u := url.URL{Scheme: "sqlite", Path: filepath.Join(t.TempDir(), "hangar.db")}
	return u.String()
}

// PostgresURL creates a schema for the test in the database named by
// HANGAR_TEST_POSTGRES_URL and returns a URL whose connections use it
// (search_path); the schema is dropped when the test ends. Without the
// variable it skips the test, or fails it when CI is set.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		const how = PostgresEnv + " is not set; to test PostgreSQL, run: eval \"$(bash .ci/postgres.sh)\" " +
			"(or set it to e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)"
		if os.Getenv("CI") != "" {
			t.Fatal("CI must test PostgreSQL: " + how)
		}
		t.Skip(how)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL, got %q", PostgresEnv, base)
	}
	admin, err := adminDB(base)
	if err != nil {
		t.Fatalf("connect to %s: %v", u.Redacted(), err)
	}

	schema := "hangar_test_" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// adminDB returns a process-wide connection to the base URL, used only to
// create and drop test schemas.
func adminDB(base string) (*sql.DB, error) {
	adminMu.Lock()
	defer adminMu.Unlock()
	if db := admins[base]; db != nil {
		return db, nil
	}
	db, err := sql.Open("pgx", base) // the driver is registered by sqlstore
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	admins[base] = db
	return db, nil
}

var (
	adminMu sync.Mutex
	admins  = map[string]*sql.DB{}
)

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToLower(hex.EncodeToString(b))
}
