// Package store is the system of record: the desired and observed state of
// workspaces, computes, nodes, runs and their attempts, events, metrics and
// logs. Controllers read it level-triggered and write it with
// compare-and-set, so a restarted server (even after kill -9) carries on from
// exactly what was committed. One implementation (sqlstore) serves SQLite and
// PostgreSQL; storetest holds the conformance suite both pass.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/hangar-ml/hangar/internal/compute"
	"github.com/hangar-ml/hangar/internal/node"
	"github.com/hangar-ml/hangar/internal/run"
)

// ErrConflict is returned when a create collides with an existing record
// (e.g. a compute name taken, case-insensitively).
var ErrConflict = errors.New("already exists")

// ErrNotFound is returned for records other than computes, nodes and runs,
// which have their own (compute.ErrNotFound, node.ErrNotFound, run.ErrNotFound).
var ErrNotFound = errors.New("not found")

// Workspace is a namespace owning computes and runs.
type Workspace struct {
	Name      string
	CreatedAt time.Time
}

// Token is a bearer credential; only its hash is stored.
type Token struct {
	ID        string
	Hash      string
	Name      string
	Workspace string // "" = every workspace (the admin token)
	// Scope limits the token: "admin", "run:<id>" (metrics of one run),
	// "node:<id>" (the agent of one node).
	Scope     string
	CreatedAt time.Time
	ExpiresAt time.Time // zero = never
	RevokedAt time.Time // zero = live
}

// Event is a recorded happening with its reason (scale-up, preemption…).
type Event struct {
	ID        int64
	Workspace string
	// Kind is the object kind ("compute", "run", "node").
	Kind string
	// Object is the object's name or id.
	Object string
	// Compute is the compute involved, if any, so events can be filtered by it.
	Compute string
	Type    string // short machine word, e.g. "ScaleUp", "Preempted"
	Message string
	Time    time.Time
}

// Metric is one logged value of a run.
type Metric struct {
	RunID string
	Name  string
	// Value is a float; Text holds a non-numeric value instead.
	Value float64
	Text  string
	Step  int64
	Time  time.Time
}

// Environment is a named, versioned environment definition (Spec is its JSON).
type Environment struct {
	Workspace string
	Name      string
	Version   int
	Spec      []byte
	CreatedAt time.Time
}

// Quota is a vCPU limit for one VM family and priority in a workspace.
type Quota struct {
	Workspace string
	Family    string
	Priority  compute.Priority
	VCPUs     int
}

// RunFilter selects runs for RunList. Zero fields do not filter.
type RunFilter struct {
	Workspace   string
	Experiment  string
	ComputeName string
	Statuses    []run.Status
	// Limit caps the result (0 = no cap); newest first.
	Limit int
}

// RunSetStatusIfParams moves a run from one of From to To only if its
// status is still one of From (compare-and-set).
type RunSetStatusIfParams struct {
	ID     string
	From   []run.Status
	To     run.Status
	Reason string
	// Error is set when non-nil.
	Error *run.Error
	// Now stamps StartedAt (entering Running, if unset) and EndedAt (terminal).
	Now time.Time
}

// NodeSetStateIfParams moves a node from one of From to To (compare-and-set).
type NodeSetStateIfParams struct {
	ID     string
	From   []node.State
	To     node.State
	Reason string
	Now    time.Time
}

// Store is implemented by sqlstore for SQLite and PostgreSQL.
//
// All methods are safe for concurrent use. Get methods return the concept's
// ErrNotFound; Create methods return ErrConflict on a duplicate key. *If
// methods return (false, nil) when the compare-and-set lost: the caller
// re-reads and decides again.
type Store interface {
	ModelStore
	ServiceStore
	// InTx runs fn in one transaction; fn must use the Store it is given.
	InTx(ctx context.Context, fn func(tx Store) error) error
	Close() error

	WorkspaceCreate(ctx context.Context, w Workspace) error
	WorkspaceGet(ctx context.Context, name string) (Workspace, error)
	WorkspaceList(ctx context.Context) ([]Workspace, error)

	TokenCreate(ctx context.Context, t Token) error
	TokenGetByHash(ctx context.Context, hash string) (Token, error)
	TokenRevoke(ctx context.Context, id string, now time.Time) error

	// ComputeCreate refuses a name already used in the workspace, ignoring case.
	ComputeCreate(ctx context.Context, c compute.Compute) error
	// ComputeGet finds a compute by name, ignoring case.
	ComputeGet(ctx context.Context, workspace, name string) (compute.Compute, error)
	ComputeGetByID(ctx context.Context, id string) (compute.Compute, error)
	ComputeList(ctx context.Context, workspace string) ([]compute.Compute, error)
	// ComputeListAll lists the computes of every workspace (for controllers).
	ComputeListAll(ctx context.Context) ([]compute.Compute, error)
	// ComputeUpdate overwrites every mutable field of the compute with c's.
	ComputeUpdate(ctx context.Context, c compute.Compute) error
	// ComputeNextNodeSeq increments and returns the compute's node counter.
	ComputeNextNodeSeq(ctx context.Context, id string) (int64, error)
	ComputeDelete(ctx context.Context, id string) error

	NodeCreate(ctx context.Context, n node.Node) error
	NodeGet(ctx context.Context, id string) (node.Node, error)
	// NodeListByCompute lists live nodes (EndedAt zero) of a compute.
	NodeListByCompute(ctx context.Context, computeID string) ([]node.Node, error)
	// NodeListAll lists every live node.
	NodeListAll(ctx context.Context) ([]node.Node, error)
	NodeSetStateIf(ctx context.Context, p NodeSetStateIfParams) (bool, error)
	NodeSetHandle(ctx context.Context, id, handle string) error
	NodeHeartbeat(ctx context.Context, id string, now time.Time) error
	// NodeEnd marks a node gone (EndedAt = now); it stays readable by NodeGet.
	NodeEnd(ctx context.Context, id string, now time.Time) error
	// NodeHoursByCompute sums the hours every node of the compute (live or
	// ended) has existed, up to now, for the cost estimate.
	NodeHoursByCompute(ctx context.Context, computeID string, now time.Time) (float64, error)

	RunCreate(ctx context.Context, r run.Run) error
	RunGet(ctx context.Context, workspace, id string) (run.Run, error)
	RunList(ctx context.Context, f RunFilter) ([]run.Run, error)
	// RunListActive lists every run not in a terminal status, oldest first.
	RunListActive(ctx context.Context) ([]run.Run, error)
	RunSetStatusIf(ctx context.Context, p RunSetStatusIfParams) (bool, error)
	// RunUpdateCounters writes Attempt, Retries and PreemptionRetries.
	RunUpdateCounters(ctx context.Context, r run.Run) error

	AttemptCreate(ctx context.Context, a run.Attempt) error
	AttemptGet(ctx context.Context, id string) (run.Attempt, error)
	AttemptListByRun(ctx context.Context, runID string) ([]run.Attempt, error)
	// AttemptListLive lists attempts not yet ended.
	AttemptListLive(ctx context.Context) ([]run.Attempt, error)
	// AttemptStartIf moves an assigned attempt to running.
	AttemptStartIf(ctx context.Context, id string, now time.Time) (bool, error)
	// AttemptEndIf ends a live attempt (compare-and-set on not-ended).
	AttemptEndIf(ctx context.Context, id string, exitCode *int, reason string, now time.Time) (bool, error)

	EventAdd(ctx context.Context, e Event) error
	// EventList returns up to limit newest events of a workspace, optionally of one compute.
	EventList(ctx context.Context, workspace, computeName string, limit int) ([]Event, error)

	MetricAdd(ctx context.Context, m Metric) error
	MetricList(ctx context.Context, runID string) ([]Metric, error)

	// LogAppend stores data at byte offset of the attempt's log. Appending
	// at an offset already stored is a no-op (retries are idempotent); a gap
	// is refused with ErrConflict and the stored length.
	LogAppend(ctx context.Context, attemptID string, offset int64, data []byte) (stored int64, err error)
	// LogRead returns the run's log (all attempts, in order) from byte offset.
	LogRead(ctx context.Context, runID string, offset int64) ([]byte, error)
	// LogReadRange is LogRead returning at most limit bytes (limit <= 0: all).
	LogReadRange(ctx context.Context, runID string, offset, limit int64) ([]byte, error)

	EnvironmentCreate(ctx context.Context, e Environment) (Environment, error)
	EnvironmentGet(ctx context.Context, workspace, name string, version int) (Environment, error)
	EnvironmentList(ctx context.Context, workspace string) ([]Environment, error)

	QuotaSet(ctx context.Context, q Quota) error
	QuotaList(ctx context.Context, workspace string) ([]Quota, error)
}
