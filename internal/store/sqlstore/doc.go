// Package sqlstore implements store.Store over database/sql, once, for both
// SQLite (modernc.org/sqlite, pure Go) and PostgreSQL (pgx).
//
// Open picks the engine from the URL:
//
//	sqlite:///var/lib/hangar/hangar.db   (or a plain file path)
//	postgres://user@host:5432/db?sslmode=disable
//
// # Schema
//
// The schema is created and upgraded by numbered migrations, compiled into
// the binary, applied in one transaction at Open and recorded in the
// schema_migrations table; reopening an up-to-date database changes
// nothing. The same migration text serves both engines through a small
// dialect layer (placeholders, auto-increment keys, blob and float types).
//
// Conventions shared by every table:
//   - Times are BIGINT microseconds since the Unix epoch, UTC; NULL is the
//     zero time.Time. Times read back are in UTC, truncated to microseconds.
//   - Maps and slices (tags, env, args, inputs, provisioning errors,
//     run.Error) are JSON text; nil and empty round-trip distinctly.
//   - Compute names are unique per workspace ignoring case, through a
//     lower-cased name_key column with a unique index.
//   - Free text that may come from a process (status and node reasons,
//     attempt reasons, event messages, metric text) has NUL bytes and
//     invalid UTF-8 replaced by U+FFFD, which PostgreSQL would refuse; both
//     engines store the same text. Metric values may be NaN or ±Inf.
//
// Beyond the store.Store contract: RunGet with workspace "" finds a run of
// any workspace; EnvironmentGet with version <= 0 returns the latest
// version; NodeHeartbeat also sets ReadyAt on the first heartbeat; the
// compare-and-set methods return the concept's ErrNotFound (not false) for
// a record that does not exist, checked only after the UPDATE matched no
// row.
//
// # Concurrency
//
// On SQLite the database runs in WAL mode with synchronous=NORMAL. Writes go
// through a pool of exactly one connection, so concurrent writers queue in
// Go instead of failing with SQLITE_BUSY; reads use a separate pool of
// read-only connections that WAL lets proceed alongside the writer. A
// transaction (InTx) holds the writer connection for its whole life, so fn
// must use the Store it is given: calling the outer Store from inside fn
// deadlocks on SQLite.
//
// On PostgreSQL both kinds share one pool at the default READ COMMITTED
// isolation; compare-and-set methods are single UPDATE statements, which
// PostgreSQL re-checks against the latest committed row, so exactly one of
// several racing callers wins.
package sqlstore
