package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hangar-ml/hangar/internal/node"
	"github.com/hangar-ml/hangar/internal/store"
)

const nodeColumns = `id, workspace, compute_id, state, reason, provider, priority, vm_size, slots, handle, token_hash,
created_at, state_changed_at, idle_since, last_heartbeat, ready_at, ended_at`

func scanNode(r rowScanner) (node.Node, error) {
	var n node.Node
	err := r.Scan(&n.ID, &n.Workspace, &n.ComputeID, &n.State, &n.Reason, &n.Provider, &n.Priority, &n.VMSize,
		&n.Slots, &n.Handle, &n.TokenHash,
		tm(&n.CreatedAt), tm(&n.StateChangedAt), tm(&n.IdleSince), tm(&n.LastHeartbeat), tm(&n.ReadyAt), tm(&n.EndedAt))
	return n, err
}

// NodeCreate stores n; a taken id is store.ErrConflict.
func (s *Store) NodeCreate(ctx context.Context, n node.Node) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO nodes (`+nodeColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		n.ID, n.Workspace, n.ComputeID, string(n.State), text(n.Reason), n.Provider, n.Priority, n.VMSize,
		n.Slots, n.Handle, n.TokenHash,
		micros(n.CreatedAt), micros(n.StateChangedAt), micros(n.IdleSince), micros(n.LastHeartbeat), micros(n.ReadyAt), micros(n.EndedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("node %s: %w", n.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create node %s: %w", n.ID, err)
	}
	return nil
}

// NodeGet returns a node, live or ended; node.ErrNotFound if none.
func (s *Store) NodeGet(ctx context.Context, id string) (node.Node, error) {
	n, err := scanNode(s.r.QueryRowContext(ctx, `SELECT `+nodeColumns+` FROM nodes WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return n, fmt.Errorf("node %s: %w", id, node.ErrNotFound)
	}
	if err != nil {
		return n, fmt.Errorf("get node %s: %w", id, err)
	}
	return n, nil
}

// NodeListByCompute lists the compute's live nodes, oldest first.
func (s *Store) NodeListByCompute(ctx context.Context, computeID string) ([]node.Node, error) {
	ns, err := queryList(ctx, s.r, scanNode, `SELECT `+nodeColumns+` FROM nodes
WHERE compute_id = ? AND ended_at IS NULL ORDER BY created_at, id`, computeID)
	if err != nil {
		return nil, fmt.Errorf("list nodes of compute %s: %w", computeID, err)
	}
	return ns, nil
}

// NodeListAll lists every live node, oldest first.
func (s *Store) NodeListAll(ctx context.Context) ([]node.Node, error) {
	ns, err := queryList(ctx, s.r, scanNode, `SELECT `+nodeColumns+` FROM nodes WHERE ended_at IS NULL ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return ns, nil
}

// NodeSetStateIf moves node p.ID to p.To if its state is one of p.From,
// setting Reason. When the state changes it stamps StateChangedAt = p.Now,
// and sets IdleSince = p.Now on entering Idle or clears it on leaving;
// idle → idle only updates Reason. It returns false if the node is in
// another state, node.ErrNotFound if there is no such node.
func (s *Store) NodeSetStateIf(ctx context.Context, p store.NodeSetStateIfParams) (bool, error) {
	if len(p.From) == 0 {
		return false, fmt.Errorf("set state of node %s: no From states", p.ID)
	}
	to := string(p.To)
	idle := `NULL`
	args := []any{to, text(p.Reason), to, micros(p.Now)}
	if p.To == node.Idle {
		idle = `CASE WHEN state = ? THEN idle_since ELSE ? END`
		args = append(args, to, micros(p.Now))
	}
	args = append(args, p.ID)
	for _, st := range p.From {
		args = append(args, string(st))
	}
	n, err := affected(s.w.ExecContext(ctx, `UPDATE nodes SET state = ?, reason = ?,
state_changed_at = CASE WHEN state = ? THEN state_changed_at ELSE ? END,
idle_since = `+idle+`
WHERE id = ? AND state IN (`+placeholders(len(p.From))+`)`, args...))
	if err != nil {
		return false, fmt.Errorf("set state of node %s: %w", p.ID, err)
	}
	if n == 0 {
		return false, s.nodeExists(ctx, p.ID)
	}
	return true, nil
}

// nodeExists returns node.ErrNotFound if there is no node id.
func (s *Store) nodeExists(ctx context.Context, id string) error {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM nodes WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("node %s: %w", id, node.ErrNotFound)
	}
	return err
}

// nodeUpdate runs an UPDATE of one node and maps "no row" to
// node.ErrNotFound.
func (s *Store) nodeUpdate(ctx context.Context, what, id, query string, args ...any) error {
	n, err := affected(s.w.ExecContext(ctx, query, args...))
	if err != nil {
		return fmt.Errorf("%s of node %s: %w", what, id, err)
	}
	if n == 0 {
		return fmt.Errorf("node %s: %w", id, node.ErrNotFound)
	}
	return nil
}

// NodeSetHandle records the provider's handle of the node.
func (s *Store) NodeSetHandle(ctx context.Context, id, handle string) error {
	return s.nodeUpdate(ctx, "set handle", id, `UPDATE nodes SET handle = ? WHERE id = ?`, handle, id)
}

// NodeHeartbeat sets LastHeartbeat to now, and ReadyAt too on the first
// heartbeat (the agent's first check-in).
func (s *Store) NodeHeartbeat(ctx context.Context, id string, now time.Time) error {
	t := micros(now)
	return s.nodeUpdate(ctx, "heartbeat", id, `UPDATE nodes SET last_heartbeat = ?, ready_at = COALESCE(ready_at, ?) WHERE id = ?`, t, t, id)
}

// NodeEnd sets EndedAt to now; ending an ended node keeps the first time.
func (s *Store) NodeEnd(ctx context.Context, id string, now time.Time) error {
	return s.nodeUpdate(ctx, "end", id, `UPDATE nodes SET ended_at = COALESCE(ended_at, ?) WHERE id = ?`, micros(now), id)
}

// NodeHoursByCompute sums, over every node of the compute (live or ended),
// the hours from CreatedAt to EndedAt, or to now for live nodes. Nodes with
// no CreatedAt count nothing; 0 for a compute without nodes.
func (s *Store) NodeHoursByCompute(ctx context.Context, computeID string, now time.Time) (float64, error) {
	var us sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT CAST(SUM(COALESCE(ended_at, ?) - created_at) AS BIGINT) FROM nodes WHERE compute_id = ?`,
		now.UnixMicro(), computeID).Scan(&us)
	if err != nil {
		return 0, fmt.Errorf("node hours of compute %s: %w", computeID, err)
	}
	return float64(us.Int64) / float64(time.Hour/time.Microsecond), nil
}
