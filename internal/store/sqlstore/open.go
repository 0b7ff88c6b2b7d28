package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver

	"github.com/hangar-ml/hangar/internal/store"
)

// Store is a store.Store on SQLite or PostgreSQL. It is safe for concurrent
// use. The zero value is not usable; call Open.
type Store struct {
	d *dialect
	// w runs writes and r runs reads. Outside a transaction they are
	// statement caches over the writer and reader pools (the same pool on
	// PostgreSQL and for in-memory SQLite); inside InTx both are the
	// transaction.
	w, r querier
	// tx is the transaction this Store is bound to, nil outside InTx.
	tx *sql.Tx

	wdb            *sql.DB
	wcache, rcache *stmtCache
	closeDBs       []*sql.DB
}

var _ store.Store = (*Store)(nil)

// Open connects to the database named by rawURL and brings its schema up
// to date. rawURL is one of:
//
//	sqlite:///abs/path/hangar.db   sqlite://rel/path.db   sqlite:rel.db
//	/abs/path/hangar.db            rel/path.db            :memory:
//	postgres://…  postgresql://…   (any pgx connection URL)
//
// A SQLite file is created if missing (its directory must exist).
// ":memory:" gives a private in-memory database on a single connection,
// for tests. PostgreSQL runtime parameters such as search_path may be given
// as URL query parameters.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	var (
		s   *Store
		err error
	)
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		s, err = openPostgres(ctx, rawURL)
	case strings.HasPrefix(rawURL, "sqlite:"):
		var path string
		path, err = sqlitePath(rawURL)
		if err == nil {
			s, err = openSQLite(ctx, path)
		}
	case strings.Contains(rawURL, "://"):
		err = fmt.Errorf("unsupported database URL %q: want sqlite:///path/to/file.db, a file path, or postgres://…", redact(rawURL))
	case rawURL == "":
		err = errors.New("empty database URL")
	default:
		s, err = openSQLite(ctx, rawURL)
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

// sqlitePath extracts the file path of a sqlite: URL.
func sqlitePath(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("sqlite URL %q: query parameters are not supported", rawURL)
	}
	path := u.Host + u.Path // sqlite:///abs → /abs; sqlite://rel/x.db → rel/x.db
	if u.Opaque != "" {     // sqlite:rel.db
		if path, err = url.PathUnescape(u.Opaque); err != nil {
			return "", err
		}
	}
	if path == "" {
		return "", fmt.Errorf("sqlite URL %q has no file path", rawURL)
	}
	return path, nil
}

// redact hides a password in a URL for error messages.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func openSQLite(ctx context.Context, path string) (*Store, error) {
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("sqlite path %q must not contain '?'", path)
	}
	// busy_timeout covers other processes on the same file (a second
	// server, the sqlite3 shell); within this process writes never contend.
	const common = "_busy_timeout=10000&_foreign_keys=1"
	writer, err := sql.Open("sqlite", path+"?"+common+"&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	if err := setUp(ctx, writer, sqliteDialect); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	wcache := newStmtCache(writer, sqliteDialect)
	s := &Store{d: sqliteDialect, w: wcache, r: wcache, wdb: writer, wcache: wcache, closeDBs: []*sql.DB{writer}}
	if path == ":memory:" {
		return s, nil // every connection would be a new, empty database
	}

	reader, err := sql.Open("sqlite", path+"?"+common+"&_query_only=1")
	if err != nil {
		writer.Close()
		return nil, err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	reader.SetMaxOpenConns(n)
	reader.SetMaxIdleConns(n)
	s.rcache = newStmtCache(reader, sqliteDialect)
	s.r = s.rcache
	s.closeDBs = append(s.closeDBs, reader)
	return s, nil
}

func openPostgres(ctx context.Context, rawURL string) (*Store, error) {
	db, err := sql.Open("pgx", rawURL)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %w", redact(rawURL), err)
	}
	// Bounded so a burst of requests queues in Go rather than exhausting
	// the server's max_connections; idle connections are kept so the
	// prepared statements on them stay warm.
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := setUp(ctx, db, postgresDialect); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres %s: %w", redact(rawURL), err)
	}
	c := newStmtCache(db, postgresDialect)
	return &Store{d: postgresDialect, w: c, r: c, wdb: db, wcache: c, closeDBs: []*sql.DB{db}}, nil
}

// setUp checks the connection and migrates the schema.
func setUp(ctx context.Context, db *sql.DB, d *dialect) error {
	if err := db.PingContext(ctx); err != nil {
		return err
	}
	if err := migrate(ctx, db, d, time.Now()); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Close closes the database. Calling it on the Store given to an InTx
// function is a no-op.
func (s *Store) Close() error {
	if s.tx != nil {
		return nil
	}
	var errs []error
	if s.d == sqliteDialect {
		// Let SQLite refresh its planner statistics; cheap, and a no-op
		// when nothing changed.
		_, err := s.wdb.Exec("PRAGMA optimize")
		errs = append(errs, err)
	}
	errs = append(errs, s.wcache.close())
	if s.rcache != nil {
		errs = append(errs, s.rcache.close())
	}
	for _, db := range s.closeDBs {
		errs = append(errs, db.Close())
	}
	return errors.Join(errs...)
}

// Dialect names the engine: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// SchemaVersion returns the number of the last migration applied.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// InTx runs fn in one transaction, committed if fn returns nil and rolled
// back otherwise (also when fn panics). fn must use the Store it is given.
// InTx on a Store already in a transaction calls fn with that Store: the
// inner call joins the outer transaction rather than nesting.
func (s *Store) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	if s.tx != nil {
		return fn(s)
	}
	return s.inTx(ctx, func(tx *Store) error { return fn(tx) })
}

// inTx is InTx with the concrete type, for methods that need several
// statements to be atomic; it joins a transaction already under way.
func (s *Store) inTx(ctx context.Context, fn func(tx *Store) error) (err error) {
	if s.tx != nil {
		return fn(s)
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback()
		}
	}()
	q := txQuerier{tx: tx, cache: s.wcache}
	ts := &Store{d: s.d, w: q, r: q, tx: tx, wdb: s.wdb, wcache: s.wcache}
	if err := fn(ts); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	committed = true
	return nil
}
