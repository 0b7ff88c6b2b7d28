package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/hangar-ml/hangar/internal/compute"
	"github.com/hangar-ml/hangar/internal/store"
)

const computeColumns = `id, workspace, name, kind, description, tags, vm_size, vm_priority,
min_nodes, max_nodes, idle_seconds_before_scaledown, provider, python,
provisioning_state, provisioning_errors, created_by, created_at, modified_at, node_seq`

func scanCompute(r rowScanner) (compute.Compute, error) {
	var c compute.Compute
	err := r.Scan(&c.ID, &c.Workspace, &c.Name, &c.Kind, &c.Description, js(&c.Tags), &c.VMSize, &c.VMPriority,
		&c.MinNodes, &c.MaxNodes, &c.IdleSecondsBeforeScaledown, &c.Provider, &c.Python,
		&c.ProvisioningState, js(&c.ProvisioningErrors), &c.CreatedBy, tm(&c.CreatedAt), tm(&c.ModifiedAt), &c.NodeSeq)
	return c, err
}

// nameKey is the case-folded compute name the unique index is on.
func nameKey(name string) string { return strings.ToLower(name) }

// ComputeCreate stores c. A name already used in the workspace, in any
// case, or a taken id is store.ErrConflict.
func (s *Store) ComputeCreate(ctx context.Context, c compute.Compute) error {
	var e encoder
	tags, perrs := e.json(c.Tags), e.json(c.ProvisioningErrors)
	if e.err != nil {
		return fmt.Errorf("create compute %q: %w", c.Name, e.err)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO computes (`+computeColumns+`, name_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Workspace, c.Name, string(c.Kind), c.Description, tags, c.VMSize, string(c.VMPriority),
		c.MinNodes, c.MaxNodes, c.IdleSecondsBeforeScaledown, c.Provider, c.Python,
		string(c.ProvisioningState), perrs, c.CreatedBy, micros(c.CreatedAt), micros(c.ModifiedAt), c.NodeSeq,
		nameKey(c.Name))
	if isUniqueViolation(err) {
		return fmt.Errorf("compute %q in workspace %q: %w", c.Name, c.Workspace, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create compute %q: %w", c.Name, err)
	}
	return nil
}

// ComputeGet finds a compute by name, ignoring case; compute.ErrNotFound
// if none.
func (s *Store) ComputeGet(ctx context.Context, workspace, name string) (compute.Compute, error) {
	c, err := scanCompute(s.r.QueryRowContext(ctx, `SELECT `+computeColumns+` FROM computes WHERE workspace = ? AND name_key = ?`,
		workspace, nameKey(name)))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("compute %q in workspace %q: %w", name, workspace, compute.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("get compute %q: %w", name, err)
	}
	return c, nil
}

// ComputeGetByID returns compute.ErrNotFound for an unknown id.
func (s *Store) ComputeGetByID(ctx context.Context, id string) (compute.Compute, error) {
	c, err := scanCompute(s.r.QueryRowContext(ctx, `SELECT `+computeColumns+` FROM computes WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("compute %s: %w", id, compute.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("get compute %s: %w", id, err)
	}
	return c, nil
}

// ComputeList lists a workspace's computes by name, ignoring case.
func (s *Store) ComputeList(ctx context.Context, workspace string) ([]compute.Compute, error) {
	cs, err := queryList(ctx, s.r, scanCompute, `SELECT `+computeColumns+` FROM computes WHERE workspace = ? ORDER BY name_key`, workspace)
	if err != nil {
		return nil, fmt.Errorf("list computes of %q: %w", workspace, err)
	}
	return cs, nil
}

// ComputeListAll lists every compute by workspace, then name.
func (s *Store) ComputeListAll(ctx context.Context) ([]compute.Compute, error) {
	cs, err := queryList(ctx, s.r, scanCompute, `SELECT `+computeColumns+` FROM computes ORDER BY workspace, name_key`)
	if err != nil {
		return nil, fmt.Errorf("list computes: %w", err)
	}
	return cs, nil
}

// ComputeUpdate overwrites the mutable fields of compute c.ID with c's:
// Description, Tags, VMSize, VMPriority, MinNodes, MaxNodes,
// IdleSecondsBeforeScaledown, Provider, Python, ProvisioningState,
// ProvisioningErrors and ModifiedAt. ID, Workspace, Name, Kind, CreatedBy,
// CreatedAt and NodeSeq (see ComputeNextNodeSeq) are left as stored.
// An unknown id is compute.ErrNotFound.
func (s *Store) ComputeUpdate(ctx context.Context, c compute.Compute) error {
	var e encoder
	tags, perrs := e.json(c.Tags), e.json(c.ProvisioningErrors)
	if e.err != nil {
		return fmt.Errorf("update compute %s: %w", c.ID, e.err)
	}
	n, err := affected(s.w.ExecContext(ctx, `UPDATE computes SET description = ?, tags = ?, vm_size = ?, vm_priority = ?,
min_nodes = ?, max_nodes = ?, idle_seconds_before_scaledown = ?, provider = ?, python = ?,
provisioning_state = ?, provisioning_errors = ?, modified_at = ?
WHERE id = ?`,
		c.Description, tags, c.VMSize, string(c.VMPriority),
		c.MinNodes, c.MaxNodes, c.IdleSecondsBeforeScaledown, c.Provider, c.Python,
		string(c.ProvisioningState), perrs, micros(c.ModifiedAt),
		c.ID))
	if err != nil {
		return fmt.Errorf("update compute %s: %w", c.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("compute %s: %w", c.ID, compute.ErrNotFound)
	}
	return nil
}

// ComputeNextNodeSeq atomically increments the compute's node counter and
// returns the new value (1 for the first node).
func (s *Store) ComputeNextNodeSeq(ctx context.Context, id string) (int64, error) {
	var seq int64
	err := s.w.QueryRowContext(ctx, `UPDATE computes SET node_seq = node_seq + 1 WHERE id = ? RETURNING node_seq`, id).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("compute %s: %w", id, compute.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("next node number of compute %s: %w", id, err)
	}
	return seq, nil
}

// ComputeDelete removes the compute row; its nodes, runs and events stay.
// An unknown id is compute.ErrNotFound.
func (s *Store) ComputeDelete(ctx context.Context, id string) error {
	n, err := affected(s.w.ExecContext(ctx, `DELETE FROM computes WHERE id = ?`, id))
	if err != nil {
		return fmt.Errorf("delete compute %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("compute %s: %w", id, compute.ErrNotFound)
	}
	return nil
}
