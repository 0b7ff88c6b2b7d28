// Package run defines a training run, its attempts, and the run status
// state machine (DESIGN §4):
//
//	NotStarted ─> Queued ─> Provisioning ─> Preparing ─> Running ─> Finalizing ─> Completed
//	                 ^                                      │                   └> Failed
//	                 └──────── preempted / node lost ───────┘   any live ─> CancelRequested ─> Canceled
package run

import (
	"errors"
	"fmt"
	"time"
)

// Status is a run's status; the string is the wire value.
type Status string

// Run statuses.
const (
	NotStarted      Status = "NotStarted"
	Queued          Status = "Queued"
	Provisioning    Status = "Provisioning"
	Preparing       Status = "Preparing"
	Running         Status = "Running"
	Finalizing      Status = "Finalizing"
	CancelRequested Status = "CancelRequested"
	Completed       Status = "Completed"
	Failed          Status = "Failed"
	Canceled        Status = "Canceled"
)

// Terminal reports whether the run has ended.
func (s Status) Terminal() bool { return s == Completed || s == Failed || s == Canceled }

// Active reports whether an attempt of the run may be on a node.
func (s Status) Active() bool {
	switch s {
	case Preparing, Running, Finalizing, CancelRequested:
		return true
	}
	return false
}

// Waiting reports whether the run waits for a node.
func (s Status) Waiting() bool { return s == Queued || s == Provisioning }

// transitions lists the allowed moves; anything else is a *TransitionError.
var transitions = map[Status][]Status{
	NotStarted:      {Queued, Canceled, Failed},
	Queued:          {Provisioning, Preparing, Canceled, Failed, CancelRequested},
	Provisioning:    {Queued, Preparing, Canceled, Failed, CancelRequested},
	Preparing:       {Running, Queued, Failed, Completed, CancelRequested, Canceled, Finalizing},
	Running:         {Finalizing, Completed, Failed, Queued, CancelRequested, Canceled},
	Finalizing:      {Completed, Failed, Queued, CancelRequested, Canceled},
	CancelRequested: {Canceled, Completed, Failed},
}

// CanTransition reports whether from → to is allowed.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// TransitionError reports a refused status change.
type TransitionError struct{ From, To Status }

func (e *TransitionError) Error() string {
	return fmt.Sprintf("run cannot go from %s to %s", e.From, e.To)
}

// ErrNotFound is returned when no run has the requested id.
var ErrNotFound = errors.New("run not found")

// Input is a file or folder made available read-only under inputs/NAME.
type Input struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	// Dir is true when the input is a folder (stored as a tar).
	Dir bool `json:"dir"`
	// FileName is a file input's original name (kept under inputs/NAME/).
	FileName string `json:"file_name,omitempty"`
}

// Error describes why a run failed, for users.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Details is the tail of the user's stderr (the real exception).
	Details string `json:"details,omitempty"`
}

// Run is one submitted training job.
type Run struct {
	ID          string
	Workspace   string
	Experiment  string
	ComputeName string
	Status      Status
	// StatusReason says why the run is in its status (e.g. why it waits).
	StatusReason string
	// Script is the entry script (relative to the snapshot); empty when Command is set.
	Script  string
	Command string
	Args    []string
	Env     map[string]string
	Python  string
	// Environment names the environment used ("name:version"), if any.
	Environment string
	// Requirements are the environment's packages; the node checks the
	// interpreter has them before starting (nodes cannot install packages).
	Requirements   []string
	SnapshotDigest string
	Inputs         []Input
	NodeCount      int
	MaxRetries     int
	// MaxPreemptionRetries counts apart from MaxRetries.
	MaxPreemptionRetries int
	Retries              int
	PreemptionRetries    int
	MaxDurationSeconds   int64
	Tags                 map[string]string
	CreatedBy            string
	CreatedAt            time.Time
	StartedAt            time.Time
	EndedAt              time.Time
	Error                *Error
	// Attempt is the number of the current (or last) attempt; 0 before the first.
	Attempt int
}

// AttemptState is where an attempt is.
type AttemptState string

// Attempt states.
const (
	AttemptAssigned AttemptState = "assigned" // placed on a node, not yet started
	AttemptRunning  AttemptState = "running"  // process started
	AttemptEnded    AttemptState = "ended"
)

// Attempt reasons for ending.
const (
	ReasonCompleted      = "completed"
	ReasonFailed         = "failed"
	ReasonPreempted      = "preempted"
	ReasonNodeLost       = "node lost"
	ReasonCanceled       = "canceled"
	ReasonComputeDeleted = "compute deleted"
	ReasonTimeout        = "max run duration exceeded"
	ReasonSetupFailed    = "setup failed"
)

// Attempt is one execution of a run on a node.
type Attempt struct {
	ID        string // "<run>-<n>", deterministic
	RunID     string
	Number    int
	NodeID    string
	State     AttemptState
	CreatedAt time.Time
	StartedAt time.Time
	EndedAt   time.Time
	ExitCode  *int
	Reason    string
}

// AttemptID is the deterministic attempt id for run r's n-th attempt.
func AttemptID(runID string, n int) string { return fmt.Sprintf("%s-%d", runID, n) }
