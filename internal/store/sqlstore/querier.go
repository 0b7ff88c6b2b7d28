package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// querier is what every Store method runs its SQL on: a statement cache
// over a pool outside a transaction, the transaction inside one. Queries are
// written with ? placeholders; the querier rebinds them for the dialect.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// stmtCache prepares each distinct query once per pool and keeps it, so the
// hot paths (run submission, heartbeats, log appends) skip SQL parsing. The
// set of distinct queries is small and fixed by the code (IN lists vary only
// with the number of statuses), so the cache needs no eviction.
type stmtCache struct {
	db *sql.DB
	d  *dialect

	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB, d *dialect) *stmtCache {
	return &stmtCache{db: db, d: d, stmts: make(map[string]*sql.Stmt)}
}

var _ querier = (*stmtCache)(nil)

// cached returns the prepared statement for q if there is one.
func (c *stmtCache) cached(q string) *sql.Stmt {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.stmts[q]
}

func (c *stmtCache) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st := c.cached(q); st != nil {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, c.d.rebind(q))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stmts == nil { // closed meanwhile
		st.Close()
		return nil, errors.New("store is closed")
	}
	if old := c.stmts[q]; old != nil {
		st.Close()
		return old, nil
	}
	c.stmts[q] = st
	return st, nil
}

func (c *stmtCache) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext cannot report a prepare error itself, so on one it falls
// back to an unprepared query, which reports the same error through Scan.
func (c *stmtCache) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return c.db.QueryRowContext(ctx, c.d.rebind(q), args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, st := range c.stmts {
		errs = append(errs, st.Close())
	}
	c.stmts = nil
	return errors.Join(errs...)
}

// txQuerier runs queries in a transaction, reusing the writer pool's
// prepared statements when they exist. It never prepares through the pool:
// with SQLite's single writer connection the transaction holds that
// connection, and waiting for it would deadlock.
type txQuerier struct {
	tx    *sql.Tx
	cache *stmtCache
}

var _ querier = txQuerier{}

func (q txQuerier) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := q.cache.cached(query); st != nil {
		return q.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return q.tx.ExecContext(ctx, q.cache.d.rebind(query), args...)
}

func (q txQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := q.cache.cached(query); st != nil {
		return q.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return q.tx.QueryContext(ctx, q.cache.d.rebind(query), args...)
}

func (q txQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := q.cache.cached(query); st != nil {
		return q.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return q.tx.QueryRowContext(ctx, q.cache.d.rebind(query), args...)
}

// queryList runs a query and scans every row with scan.
func queryList[T any](ctx context.Context, q querier, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// affected returns the rows a statement changed.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
