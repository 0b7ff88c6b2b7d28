package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/hangar-ml/hangar/internal/run"
	"github.com/hangar-ml/hangar/internal/store"
)

// EventAdd records e; its ID is assigned by the store and e.ID is ignored.
func (s *Store) EventAdd(ctx context.Context, e store.Event) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO events (workspace, kind, object, compute, type, message, occurred_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`, e.Workspace, e.Kind, e.Object, e.Compute, e.Type, text(e.Message), micros(e.Time))
	if err != nil {
		return fmt.Errorf("add event %s of %s %s: %w", e.Type, e.Kind, e.Object, err)
	}
	return nil
}

// EventList returns the workspace's newest events, newest first (by Time,
// then by insertion), at most limit of them (limit <= 0: all). A non-empty
// computeName keeps the events of that compute, ignoring case.
func (s *Store) EventList(ctx context.Context, workspace, computeName string, limit int) ([]store.Event, error) {
	q, args := `SELECT id, workspace, kind, object, compute, type, message, occurred_at FROM events WHERE workspace = ?`, []any{workspace}
	if computeName != "" {
		q, args = q+` AND lower(compute) = ?`, append(args, nameKey(computeName))
	}
	q += ` ORDER BY occurred_at DESC, id DESC`
	if limit > 0 {
		q, args = q+` LIMIT ?`, append(args, limit)
	}
	es, err := queryList(ctx, s.r, func(r rowScanner) (store.Event, error) {
		var e store.Event
		err := r.Scan(&e.ID, &e.Workspace, &e.Kind, &e.Object, &e.Compute, &e.Type, &e.Message, tm(&e.Time))
		return e, err
	}, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list events of %q: %w", workspace, err)
	}
	return es, nil
}

// MetricAdd records m. NaN and ±Inf values round-trip. An unknown run is
// run.ErrNotFound.
func (s *Store) MetricAdd(ctx context.Context, m store.Metric) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO metrics (run_id, name, value, text_value, step, logged_at) VALUES (?, ?, ?, ?, ?, ?)`,
		m.RunID, m.Name, floatValue(m.Value), text(m.Text), m.Step, micros(m.Time))
	if isForeignKeyViolation(err) {
		return fmt.Errorf("add metric %q: run %s: %w", m.Name, m.RunID, run.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("add metric %q of run %s: %w", m.Name, m.RunID, err)
	}
	return nil
}

// MetricList lists a run's metrics in the order they were added.
func (s *Store) MetricList(ctx context.Context, runID string) ([]store.Metric, error) {
	ms, err := queryList(ctx, s.r, func(r rowScanner) (store.Metric, error) {
		var (
			m store.Metric
			v sql.NullFloat64
		)
		err := r.Scan(&m.RunID, &m.Name, &v, &m.Text, &m.Step, tm(&m.Time))
		m.Value = floatFrom(v)
		return m, err
	}, `SELECT run_id, name, value, text_value, step, logged_at FROM metrics WHERE run_id = ? ORDER BY id`, runID)
	if err != nil {
		return nil, fmt.Errorf("list metrics of run %s: %w", runID, err)
	}
	return ms, nil
}

// EnvironmentCreate stores e as the next version of its name (1 for the
// first) and returns it with Version set; e.Version is ignored. Concurrent
// creates of one name get distinct versions.
func (s *Store) EnvironmentCreate(ctx context.Context, e store.Environment) (store.Environment, error) {
	for {
		err := s.w.QueryRowContext(ctx, `INSERT INTO environments (workspace, name, version, spec, created_at)
VALUES (?, ?, (SELECT COALESCE(MAX(version), 0) + 1 FROM environments WHERE workspace = ? AND name = ?), ?, ?)
RETURNING version`, e.Workspace, e.Name, e.Workspace, e.Name, e.Spec, micros(e.CreatedAt)).Scan(&e.Version)
		switch {
		case err == nil:
			return e, nil
		case isUniqueViolation(err) && s.tx == nil && ctx.Err() == nil:
			// Another create took the version (PostgreSQL only; SQLite
			// writes one at a time). Each such loss is another caller's
			// win, so retrying cannot go on forever.
			continue
		case isUniqueViolation(err):
			// Inside a transaction PostgreSQL cannot go on after an
			// error; the caller retries the transaction.
			return e, fmt.Errorf("environment %q: concurrent create: %w", e.Name, store.ErrConflict)
		default:
			return e, fmt.Errorf("create environment %q: %w", e.Name, err)
		}
	}
}

const environmentColumns = `workspace, name, version, spec, created_at`

func scanEnvironment(r rowScanner) (store.Environment, error) {
	var e store.Environment
	err := r.Scan(&e.Workspace, &e.Name, &e.Version, &e.Spec, tm(&e.CreatedAt))
	return e, err
}

// EnvironmentGet returns version of the named environment, or its latest
// version when version <= 0; store.ErrNotFound if there is none.
func (s *Store) EnvironmentGet(ctx context.Context, workspace, name string, version int) (store.Environment, error) {
	q, args := `SELECT `+environmentColumns+` FROM environments WHERE workspace = ? AND name = ?`, []any{workspace, name}
	if version > 0 {
		q, args = q+` AND version = ?`, append(args, version)
	} else {
		q += ` ORDER BY version DESC LIMIT 1`
	}
	e, err := scanEnvironment(s.r.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("environment %s:%d: %w", name, version, store.ErrNotFound)
	}
	if err != nil {
		return e, fmt.Errorf("get environment %s:%d: %w", name, version, err)
	}
	return e, nil
}

// EnvironmentList lists every version of the workspace's environments, by
// name, then version.
func (s *Store) EnvironmentList(ctx context.Context, workspace string) ([]store.Environment, error) {
	es, err := queryList(ctx, s.r, scanEnvironment, `SELECT `+environmentColumns+` FROM environments WHERE workspace = ? ORDER BY name, version`, workspace)
	if err != nil {
		return nil, fmt.Errorf("list environments of %q: %w", workspace, err)
	}
	return es, nil
}
