package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hangar-ml/hangar/internal/model"
	"github.com/hangar-ml/hangar/internal/store"
)

const modelColumns = `workspace, name, version, description, tags, properties, run_id, path, digest, size, created_by, created_at`

func scanModel(r rowScanner) (model.Model, error) {
	var m model.Model
	err := r.Scan(&m.Workspace, &m.Name, &m.Version, &m.Description, js(&m.Tags), js(&m.Properties),
		&m.RunID, &m.Path, &m.Digest, &m.Size, &m.CreatedBy, tm(&m.CreatedAt))
	return m, err
}

// ModelCreate stores m as the next version of its name (1 for the first)
// and returns it with Version set; m.Version is ignored. Concurrent creates
// of one name get distinct versions.
func (s *Store) ModelCreate(ctx context.Context, m model.Model) (model.Model, error) {
	var e encoder
	tags, props := e.json(m.Tags), e.json(m.Properties)
	if e.err != nil {
		return m, fmt.Errorf("create model %q: %w", m.Name, e.err)
	}
	for {
		err := s.w.QueryRowContext(ctx, `INSERT INTO models (`+modelColumns+`)
VALUES (?, ?, (SELECT COALESCE(MAX(version), 0) + 1 FROM models WHERE workspace = ? AND name = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING version`, m.Workspace, m.Name, m.Workspace, m.Name, text(m.Description), tags, props,
			m.RunID, m.Path, m.Digest, m.Size, m.CreatedBy, micros(m.CreatedAt)).Scan(&m.Version)
		switch {
		case err == nil:
			return m, nil
		case isUniqueViolation(err) && s.tx == nil && ctx.Err() == nil:
			// Another create took the version (PostgreSQL only; SQLite
			// writes one at a time); each loss is another caller's win.
			continue
		case isUniqueViolation(err):
			// Inside a transaction PostgreSQL cannot go on after an error;
			// the caller retries the transaction.
			return m, fmt.Errorf("model %q: concurrent create: %w", m.Name, store.ErrConflict)
		default:
			return m, fmt.Errorf("create model %q: %w", m.Name, err)
		}
	}
}

// ModelGet returns version of the named model, or its latest version when
// version <= 0; model.ErrNotFound if there is none.
func (s *Store) ModelGet(ctx context.Context, workspace, name string, version int) (model.Model, error) {
	q, args := `SELECT `+modelColumns+` FROM models WHERE workspace = ? AND name = ? AND deleted_at IS NULL`, []any{workspace, name}
	if version > 0 {
		q, args = q+` AND version = ?`, append(args, version)
	} else {
		q += ` ORDER BY version DESC LIMIT 1`
	}
	m, err := scanModel(s.r.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("model %s:%d: %w", name, version, model.ErrNotFound)
	}
	if err != nil {
		return m, fmt.Errorf("get model %s:%d: %w", name, version, err)
	}
	return m, nil
}

// ModelList lists the versions of the named model, or of every model of
// the workspace when name is "", newest first: by CreatedAt, then version,
// then name, all descending.
func (s *Store) ModelList(ctx context.Context, workspace, name string) ([]model.Model, error) {
	q, args := `SELECT `+modelColumns+` FROM models WHERE workspace = ? AND deleted_at IS NULL`, []any{workspace}
	if name != "" {
		q, args = q+` AND name = ?`, append(args, name)
	}
	q += ` ORDER BY created_at DESC, version DESC, name DESC`
	ms, err := queryList(ctx, s.r, scanModel, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list models of %q: %w", workspace, err)
	}
	return ms, nil
}

// ModelDelete removes one version of a model; model.ErrNotFound if there
// is none.
func (s *Store) ModelDelete(ctx context.Context, workspace, name string, version int) error {
	// A deleted version stays as a tombstone so its number is never reused
	// for other bytes (versions count up, as in Azure ML).
	n, err := affected(s.w.ExecContext(ctx, `UPDATE models SET deleted_at = ? WHERE workspace = ? AND name = ? AND version = ? AND deleted_at IS NULL`,
		time.Now().UnixMicro(), workspace, name, version))
	if err != nil {
		return fmt.Errorf("delete model %s:%d: %w", name, version, err)
	}
	if n == 0 {
		return fmt.Errorf("model %s:%d: %w", name, version, model.ErrNotFound)
	}
	return nil
}
