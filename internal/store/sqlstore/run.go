package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hangar-ml/hangar/internal/run"
	"github.com/hangar-ml/hangar/internal/store"
)

const runColumns = `id, workspace, experiment, compute_name, status, status_reason, script, command, args, env, python,
environment, snapshot_digest, inputs, node_count, max_retries, max_preemption_retries, retries, preemption_retries,
max_duration_seconds, tags, created_by, created_at, started_at, ended_at, error, attempt, requirements`

// notTerminal is the condition of the runs_active partial index; queries
// must repeat it verbatim for SQLite to use the index.
const notTerminal = `status NOT IN ('Completed', 'Failed', 'Canceled')`

func scanRun(r rowScanner) (run.Run, error) {
	var x run.Run
	err := r.Scan(&x.ID, &x.Workspace, &x.Experiment, &x.ComputeName, &x.Status, &x.StatusReason, &x.Script, &x.Command,
		js(&x.Args), js(&x.Env), &x.Python, &x.Environment, &x.SnapshotDigest, js(&x.Inputs),
		&x.NodeCount, &x.MaxRetries, &x.MaxPreemptionRetries, &x.Retries, &x.PreemptionRetries,
		&x.MaxDurationSeconds, js(&x.Tags), &x.CreatedBy, tm(&x.CreatedAt), tm(&x.StartedAt), tm(&x.EndedAt),
		js(&x.Error), &x.Attempt, js(&x.Requirements))
	return x, err
}

// runError is the column value of a run's Error: NULL when nil.
func runError(e *encoder, re *run.Error) any {
	if re == nil {
		return nil
	}
	return e.json(re)
}

// RunCreate stores r; a taken id is store.ErrConflict.
func (s *Store) RunCreate(ctx context.Context, r run.Run) error {
	var e encoder
	args, env, inputs, tags, rerr := e.json(r.Args), e.json(r.Env), e.json(r.Inputs), e.json(r.Tags), runError(&e, r.Error)
	reqs := e.json(r.Requirements)
	if e.err != nil {
		return fmt.Errorf("create run %s: %w", r.ID, e.err)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO runs (`+runColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Workspace, r.Experiment, r.ComputeName, string(r.Status), text(r.StatusReason), r.Script, r.Command,
		args, env, r.Python, r.Environment, r.SnapshotDigest, inputs,
		r.NodeCount, r.MaxRetries, r.MaxPreemptionRetries, r.Retries, r.PreemptionRetries,
		r.MaxDurationSeconds, tags, r.CreatedBy, micros(r.CreatedAt), micros(r.StartedAt), micros(r.EndedAt),
		rerr, r.Attempt, reqs)
	if isUniqueViolation(err) {
		return fmt.Errorf("run %s: %w", r.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create run %s: %w", r.ID, err)
	}
	return nil
}

// RunGet returns run id of the workspace ("" = of any workspace);
// run.ErrNotFound if there is none.
func (s *Store) RunGet(ctx context.Context, workspace, id string) (run.Run, error) {
	q, args := `SELECT `+runColumns+` FROM runs WHERE id = ?`, []any{id}
	if workspace != "" {
		q, args = q+` AND workspace = ?`, append(args, workspace)
	}
	r, err := scanRun(s.r.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("run %s: %w", id, run.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("get run %s: %w", id, err)
	}
	return r, nil
}

// RunList lists the runs matching f, newest (by CreatedAt) first.
// ComputeName matches ignoring case.
func (s *Store) RunList(ctx context.Context, f store.RunFilter) ([]run.Run, error) {
	var (
		where []string
		args  []any
	)
	if f.Workspace != "" {
		where, args = append(where, `workspace = ?`), append(args, f.Workspace)
	}
	if f.Experiment != "" {
		where, args = append(where, `experiment = ?`), append(args, f.Experiment)
	}
	if f.ComputeName != "" {
		where, args = append(where, `lower(compute_name) = ?`), append(args, nameKey(f.ComputeName))
	}
	if len(f.Statuses) > 0 {
		where = append(where, `status IN (`+placeholders(len(f.Statuses))+`)`)
		for _, st := range f.Statuses {
			args = append(args, string(st))
		}
	}
	q := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY created_at DESC, id DESC`
	if f.Limit > 0 {
		q, args = q+` LIMIT ?`, append(args, f.Limit)
	}
	rs, err := queryList(ctx, s.r, scanRun, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return rs, nil
}

// RunListActive lists every run not in a terminal status, oldest first.
func (s *Store) RunListActive(ctx context.Context) ([]run.Run, error) {
	rs, err := queryList(ctx, s.r, scanRun, `SELECT `+runColumns+` FROM runs WHERE `+notTerminal+` ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list active runs: %w", err)
	}
	return rs, nil
}

// RunSetStatusIf moves run p.ID to p.To if its status is one of p.From, in
// one UPDATE, setting StatusReason to p.Reason. Entering Running stamps
// StartedAt = p.Now unless already set; entering a terminal status stamps
// EndedAt = p.Now; a non-nil p.Error replaces Error. It returns false if
// the run is in another status, run.ErrNotFound if there is no such run.
func (s *Store) RunSetStatusIf(ctx context.Context, p store.RunSetStatusIfParams) (bool, error) {
	if len(p.From) == 0 {
		return false, fmt.Errorf("set status of run %s: no From statuses", p.ID)
	}
	var b strings.Builder
	args := make([]any, 0, 5+len(p.From))
	b.WriteString(`UPDATE runs SET status = ?, status_reason = ?`)
	args = append(args, string(p.To), text(p.Reason))
	if p.To == run.Running {
		b.WriteString(`, started_at = COALESCE(started_at, ?)`)
		args = append(args, micros(p.Now))
	}
	if p.To.Terminal() {
		b.WriteString(`, ended_at = ?`)
		args = append(args, micros(p.Now))
	}
	if p.Error != nil {
		var e encoder
		v := e.json(p.Error)
		if e.err != nil {
			return false, fmt.Errorf("set status of run %s: %w", p.ID, e.err)
		}
		b.WriteString(`, error = ?`)
		args = append(args, v)
	}
	b.WriteString(` WHERE id = ? AND status IN (` + placeholders(len(p.From)) + `)`)
	args = append(args, p.ID)
	for _, st := range p.From {
		args = append(args, string(st))
	}
	n, err := affected(s.w.ExecContext(ctx, b.String(), args...))
	if err != nil {
		return false, fmt.Errorf("set status of run %s: %w", p.ID, err)
	}
	if n == 0 {
		return false, s.runExists(ctx, p.ID)
	}
	return true, nil
}

// runExists returns run.ErrNotFound if there is no run id.
func (s *Store) runExists(ctx context.Context, id string) error {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM runs WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("run %s: %w", id, run.ErrNotFound)
	}
	return err
}

// RunUpdateCounters writes r's Attempt, Retries and PreemptionRetries to
// run r.ID; run.ErrNotFound if there is none.
func (s *Store) RunUpdateCounters(ctx context.Context, r run.Run) error {
	n, err := affected(s.w.ExecContext(ctx, `UPDATE runs SET attempt = ?, retries = ?, preemption_retries = ? WHERE id = ?`,
		r.Attempt, r.Retries, r.PreemptionRetries, r.ID))
	if err != nil {
		return fmt.Errorf("update counters of run %s: %w", r.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("run %s: %w", r.ID, run.ErrNotFound)
	}
	return nil
}

const attemptColumns = `id, run_id, number, node_id, state, created_at, started_at, ended_at, exit_code, reason`

func scanAttempt(r rowScanner) (run.Attempt, error) {
	var (
		a    run.Attempt
		code sql.NullInt64
	)
	err := r.Scan(&a.ID, &a.RunID, &a.Number, &a.NodeID, &a.State, tm(&a.CreatedAt), tm(&a.StartedAt), tm(&a.EndedAt), &code, &a.Reason)
	if code.Valid {
		c := int(code.Int64)
		a.ExitCode = &c
	}
	return a, err
}

func exitCode(c *int) any {
	if c == nil {
		return nil
	}
	return int64(*c)
}

// AttemptCreate stores a. A taken id, or a taken number for the run, is
// store.ErrConflict; an unknown run is run.ErrNotFound.
func (s *Store) AttemptCreate(ctx context.Context, a run.Attempt) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO attempts (`+attemptColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.RunID, a.Number, a.NodeID, string(a.State), micros(a.CreatedAt), micros(a.StartedAt), micros(a.EndedAt),
		exitCode(a.ExitCode), text(a.Reason))
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("attempt %s: %w", a.ID, store.ErrConflict)
	case isForeignKeyViolation(err):
		return fmt.Errorf("create attempt %s: run %s: %w", a.ID, a.RunID, run.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create attempt %s: %w", a.ID, err)
	}
	return nil
}

// AttemptGet returns store.ErrNotFound for an unknown id.
func (s *Store) AttemptGet(ctx context.Context, id string) (run.Attempt, error) {
	a, err := scanAttempt(s.r.QueryRowContext(ctx, `SELECT `+attemptColumns+` FROM attempts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("attempt %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("get attempt %s: %w", id, err)
	}
	return a, nil
}

// AttemptListByRun lists a run's attempts by number.
func (s *Store) AttemptListByRun(ctx context.Context, runID string) ([]run.Attempt, error) {
	as, err := queryList(ctx, s.r, scanAttempt, `SELECT `+attemptColumns+` FROM attempts WHERE run_id = ? ORDER BY number`, runID)
	if err != nil {
		return nil, fmt.Errorf("list attempts of run %s: %w", runID, err)
	}
	return as, nil
}

// AttemptListLive lists the attempts not ended, oldest first.
func (s *Store) AttemptListLive(ctx context.Context) ([]run.Attempt, error) {
	as, err := queryList(ctx, s.r, scanAttempt, `SELECT `+attemptColumns+` FROM attempts WHERE state <> 'ended' ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list live attempts: %w", err)
	}
	return as, nil
}

// AttemptStartIf moves an assigned attempt to running with StartedAt = now.
// It returns false if the attempt is not assigned, store.ErrNotFound if
// there is no such attempt.
func (s *Store) AttemptStartIf(ctx context.Context, id string, now time.Time) (bool, error) {
	n, err := affected(s.w.ExecContext(ctx, `UPDATE attempts SET state = ?, started_at = ? WHERE id = ? AND state = ?`,
		string(run.AttemptRunning), micros(now), id, string(run.AttemptAssigned)))
	if err != nil {
		return false, fmt.Errorf("start attempt %s: %w", id, err)
	}
	if n == 0 {
		return false, s.attemptExists(ctx, id)
	}
	return true, nil
}

// AttemptEndIf ends a live (assigned or running) attempt with the exit code
// (nil = none), reason and EndedAt = now. It returns false if the attempt
// already ended, store.ErrNotFound if there is no such attempt.
func (s *Store) AttemptEndIf(ctx context.Context, id string, code *int, reason string, now time.Time) (bool, error) {
	n, err := affected(s.w.ExecContext(ctx, `UPDATE attempts SET state = ?, exit_code = ?, reason = ?, ended_at = ? WHERE id = ? AND state <> ?`,
		string(run.AttemptEnded), exitCode(code), text(reason), micros(now), id, string(run.AttemptEnded)))
	if err != nil {
		return false, fmt.Errorf("end attempt %s: %w", id, err)
	}
	if n == 0 {
		return false, s.attemptExists(ctx, id)
	}
	return true, nil
}

// attemptExists returns store.ErrNotFound if there is no attempt id.
func (s *Store) attemptExists(ctx context.Context, id string) error {
	var one int
	err := s.r.QueryRowContext(ctx, `SELECT 1 FROM attempts WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("attempt %s: %w", id, store.ErrNotFound)
	}
	return err
}
