// Package node defines a node of a managed compute and its state machine:
//
//	preparing ──> idle <──> running
//	    │          │          │
//	    └──────────┴──> leaving ──> (gone)
//	any live state ──> preempted | unusable   (terminal; the node is removed)
package node

import (
	"errors"
	"time"
)

// State is a node's state; the string is the wire value.
type State string

// Node states.
const (
	Preparing State = "preparing"
	Idle      State = "idle"
	Running   State = "running"
	Leaving   State = "leaving"
	Preempted State = "preempted"
	Unusable  State = "unusable"
)

// AllStates in display order.
var AllStates = []State{Idle, Running, Preparing, Unusable, Leaving, Preempted}

// ErrNotFound is returned when no node has the requested id.
var ErrNotFound = errors.New("node not found")

// Counted reports whether a node in state s counts toward max_nodes,
// current_node_count and quota (DESIGN §5: preempted and unusable do not).
func (s State) Counted() bool {
	switch s {
	case Preparing, Idle, Running, Leaving:
		return true
	}
	return false
}

// Terminal reports whether the node will never do work again.
func (s State) Terminal() bool { return s == Preempted || s == Unusable }

// Node is one machine of a cluster, run by a `hangar agent`.
type Node struct {
	ID        string // e.g. "cpu-cluster-n3"
	Workspace string
	ComputeID string
	State     State
	// Reason says why the node is in its state (e.g. "scale-up: 2 runs waiting").
	Reason   string
	Provider string
	Priority string
	VMSize   string
	// Slots is how many attempts the node runs at once (1 for cluster nodes).
	Slots int
	// Handle is the provider's opaque record of the node (e.g. pid and dir),
	// persisted so a restarted server re-adopts it.
	Handle string
	// TokenHash is the hash of the agent's credential.
	TokenHash      string
	CreatedAt      time.Time
	StateChangedAt time.Time
	// IdleSince is when the node last became idle (zero when not idle).
	IdleSince     time.Time
	LastHeartbeat time.Time
	// ReadyAt is when the agent first checked in.
	ReadyAt time.Time
	// EndedAt is when the node left (preempted/unusable/deleted); zero while alive.
	EndedAt time.Time
}
