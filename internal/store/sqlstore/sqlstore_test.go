package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/internal/compute"
	"github.com/hangar-ml/hangar/internal/run"
	"github.com/hangar-ml/hangar/internal/store"
	"github.com/hangar-ml/hangar/internal/store/sqlstore"
	"github.com/hangar-ml/hangar/internal/store/storetest"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)

func TestOpenSQLiteURLs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name, url, wantFile string
	}{
		{"sqlite URL", "sqlite://" + filepath.Join(dir, "a.db"), filepath.Join(dir, "a.db")},
		{"escaped sqlite URL", "sqlite://" + filepath.Join(dir, "b%20c.db"), filepath.Join(dir, "b c.db")},
		{"plain path", filepath.Join(dir, "d.db"), filepath.Join(dir, "d.db")},
		{"in memory", ":memory:", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := sqlstore.Open(t.Context(), tt.url)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Dialect() != "sqlite" {
				t.Errorf("Dialect = %q, want sqlite", s.Dialect())
			}
			if err := s.WorkspaceCreate(t.Context(), store.Workspace{Name: "ws"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.WorkspaceGet(t.Context(), "ws"); err != nil {
				t.Fatal(err)
			}
			if tt.wantFile != "" {
				if _, err := os.Stat(tt.wantFile); err != nil {
					t.Errorf("database file: %v", err)
				}
			}
		})
	}
}

func TestOpenBadURLs(t *testing.T) {
	t.Parallel()
	for _, url := range []string{
		"",
		"mysql://root@localhost/hangar",
		"sqlite://",
		"sqlite:///tmp/x.db?mode=ro",
		filepath.Join(t.TempDir(), "missing-dir", "x.db"),
	} {
		if s, err := sqlstore.Open(t.Context(), url); err == nil {
			s.Close()
			t.Errorf("Open(%q): no error", url)
		} else if !strings.HasPrefix(err.Error(), "open store: ") {
			t.Errorf("Open(%q) error %q lacks context", url, err)
		}
	}
}

func TestOpenRelativeSQLitePaths(t *testing.T) {
	t.Chdir(t.TempDir()) // not parallel: changes the working directory
	for _, tt := range []struct{ url, file string }{
		{"sqlite:rel1.db", "rel1.db"},
		{"sqlite://sub/rel2.db", "sub/rel2.db"},
		{"rel3.db", "rel3.db"},
	} {
		os.MkdirAll("sub", 0o755)
		s, err := sqlstore.Open(t.Context(), tt.url)
		if err != nil {
			t.Fatalf("Open(%q): %v", tt.url, err)
		}
		s.Close()
		if _, err := os.Stat(tt.file); err != nil {
			t.Errorf("Open(%q): %v", tt.url, err)
		}
	}
}

// TestReopen checks that data survives a restart and that migrating an
// up-to-date database changes nothing.
func TestReopen(t *testing.T) {
	t.Parallel()
	storetest.RunURL(t, func(t *testing.T, url string) {
		ctx := t.Context()
		s := open(t, url)
		v1, err := s.SchemaVersion(ctx)
		if err != nil || v1 < 1 {
			t.Fatalf("SchemaVersion = %d, %v; want >= 1", v1, err)
		}
		c := compute.Compute{ID: "c-1", Workspace: "ws", Name: "CPU", Kind: compute.KindCluster, CreatedAt: t0}
		must(t, s.ComputeCreate(ctx, c))
		if _, err := s.ComputeNextNodeSeq(ctx, "c-1"); err != nil {
			t.Fatal(err)
		}
		must(t, s.RunCreate(ctx, run.Run{ID: "r", Workspace: "ws", Status: run.Queued, CreatedAt: t0}))
		must(t, s.AttemptCreate(ctx, run.Attempt{ID: "r-1", RunID: "r", Number: 1, State: run.AttemptRunning}))
		if _, err := s.LogAppend(ctx, "r-1", 0, []byte("before restart\n")); err != nil {
			t.Fatal(err)
		}
		must(t, s.Close())

		for i := range 2 {
			s := open(t, url)
			v, err := s.SchemaVersion(ctx)
			if err != nil || v != v1 {
				t.Fatalf("reopen %d: SchemaVersion = %d, %v; want %d", i, v, err, v1)
			}
			got, err := s.ComputeGet(ctx, "ws", "cpu")
			if err != nil || got.NodeSeq != int64(1+i) {
				t.Fatalf("reopen %d: compute = %+v, %v; want NodeSeq %d", i, got, err, 1+i)
			}
			if _, err := s.ComputeNextNodeSeq(ctx, "c-1"); err != nil {
				t.Fatal(err)
			}
			log, err := s.LogRead(ctx, "r", 0)
			if err != nil || string(log) != "before restart\n" {
				t.Fatalf("reopen %d: log = %q, %v", i, log, err)
			}
			must(t, s.ComputeCreate(ctx, compute.Compute{ID: fmt.Sprint("c-new-", i), Workspace: "ws", Name: fmt.Sprint("new-", i)}))
			wantErrIs(t, s.ComputeCreate(ctx, compute.Compute{ID: "c-2", Workspace: "ws", Name: "cpu"}), store.ErrConflict)
			must(t, s.Close())
		}
	})
}

// TestConcurrentOpen opens one database from several goroutines at once, as
// several servers starting together would: migrations run once.
func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	storetest.RunURL(t, func(t *testing.T, url string) {
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				s, err := sqlstore.Open(context.Background(), url)
				if err == nil {
					err = s.Close()
				}
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	})
}

func TestSQLiteSettings(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hangar.db")
	s := open(t, path)
	defer s.Close()

	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var mode string
	if err := raw.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}

	// Foreign keys are enforced.
	err = s.AttemptCreate(t.Context(), run.Attempt{ID: "x-1", RunID: "x", Number: 1})
	wantErrIs(t, err, run.ErrNotFound)
}

func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hangar.db")
	must(t, open(t, path).Close())

	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = raw.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'from the future', 0)`)
	raw.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database migrated by a newer version: no error")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error = %v, want it to say the schema is newer", err)
	}
}

func open(t testing.TB, url string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErrIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}
