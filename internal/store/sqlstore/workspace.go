package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hangar-ml/hangar/internal/store"
)

// WorkspaceCreate stores w; a taken name is store.ErrConflict.
func (s *Store) WorkspaceCreate(ctx context.Context, w store.Workspace) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO workspaces (name, created_at) VALUES (?, ?)`, w.Name, micros(w.CreatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("workspace %q: %w", w.Name, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create workspace %q: %w", w.Name, err)
	}
	return nil
}

func scanWorkspace(r rowScanner) (store.Workspace, error) {
	var w store.Workspace
	err := r.Scan(&w.Name, tm(&w.CreatedAt))
	return w, err
}

// WorkspaceGet returns store.ErrNotFound for an unknown name.
func (s *Store) WorkspaceGet(ctx context.Context, name string) (store.Workspace, error) {
	w, err := scanWorkspace(s.r.QueryRowContext(ctx, `SELECT name, created_at FROM workspaces WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return w, fmt.Errorf("workspace %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return w, fmt.Errorf("get workspace %q: %w", name, err)
	}
	return w, nil
}

// WorkspaceList lists every workspace by name.
func (s *Store) WorkspaceList(ctx context.Context) ([]store.Workspace, error) {
	ws, err := queryList(ctx, s.r, scanWorkspace, `SELECT name, created_at FROM workspaces ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list workspaces: %w", err)
	}
	return ws, nil
}

// TokenCreate stores t; a taken id or hash is store.ErrConflict.
func (s *Store) TokenCreate(ctx context.Context, t store.Token) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO tokens (id, hash, name, workspace, scope, created_at, expires_at, revoked_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Hash, t.Name, t.Workspace, t.Scope, micros(t.CreatedAt), micros(t.ExpiresAt), micros(t.RevokedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("token %q: %w", t.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create token %q: %w", t.ID, err)
	}
	return nil
}

// TokenGetByHash finds a token by the hash of its secret, revoked or
// expired ones included (the caller judges them); store.ErrNotFound if none.
func (s *Store) TokenGetByHash(ctx context.Context, hash string) (store.Token, error) {
	var t store.Token
	err := s.r.QueryRowContext(ctx, `SELECT id, hash, name, workspace, scope, created_at, expires_at, revoked_at
FROM tokens WHERE hash = ?`, hash).Scan(
		&t.ID, &t.Hash, &t.Name, &t.Workspace, &t.Scope, tm(&t.CreatedAt), tm(&t.ExpiresAt), tm(&t.RevokedAt))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("get token: %w", err)
	}
	return t, nil
}

// TokenRevoke sets RevokedAt to now. Revoking a revoked token keeps the
// first time; an unknown id is store.ErrNotFound.
func (s *Store) TokenRevoke(ctx context.Context, id string, now time.Time) error {
	n, err := affected(s.w.ExecContext(ctx, `UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, micros(now), id))
	if err != nil {
		return fmt.Errorf("revoke token %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("token %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// QuotaSet creates or replaces the quota of (workspace, family, priority).
func (s *Store) QuotaSet(ctx context.Context, q store.Quota) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO quotas (workspace, family, priority, vcpus) VALUES (?, ?, ?, ?)
ON CONFLICT (workspace, family, priority) DO UPDATE SET vcpus = excluded.vcpus`,
		q.Workspace, q.Family, string(q.Priority), q.VCPUs)
	if err != nil {
		return fmt.Errorf("set quota %s/%s/%s: %w", q.Workspace, q.Family, q.Priority, err)
	}
	return nil
}

// QuotaList lists a workspace's quotas by family, then priority.
func (s *Store) QuotaList(ctx context.Context, workspace string) ([]store.Quota, error) {
	qs, err := queryList(ctx, s.r, func(r rowScanner) (store.Quota, error) {
		var q store.Quota
		err := r.Scan(&q.Workspace, &q.Family, &q.Priority, &q.VCPUs)
		return q, err
	}, `SELECT workspace, family, priority, vcpus FROM quotas WHERE workspace = ? ORDER BY family, priority`, workspace)
	if err != nil {
		return nil, fmt.Errorf("list quotas of %q: %w", workspace, err)
	}
	return qs, nil
}
