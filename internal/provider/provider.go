// Package provider defines node providers: what creates and deletes the
// machines a cluster's nodes run on. `local` runs each node as a `hangar
// agent` process on the server's host; later providers start containers or
// cloud VMs. Every provider passes the same conformance suite.
package provider

import (
	"context"
	"errors"
	"time"
)

// Spec describes a node to create.
type Spec struct {
	NodeID    string
	Workspace string
	Compute   string
	// ServerURL is where the agent dials the server.
	ServerURL string
	// Token is the node's agent credential (write-only: never logged).
	Token string
	// Slots is how many attempts the agent may run at once.
	Slots    int
	VCPUs    int
	MemoryGB float64
}

// ErrGone is returned by Delete/Preempt implementations only for true errors;
// a node that is already gone is not an error.
var ErrGone = errors.New("node is gone")

// Provider creates and removes nodes.
//
// Create is idempotent on Spec.NodeID: calling it again for a node that is
// already up returns the existing handle instead of starting a twin. The
// handle is an opaque string the caller persists so a restarted server can
// re-adopt the node. Delete and Preempt may be called for a node that is
// already gone; they then return nil.
type Provider interface {
	Name() string
	// HasGPUs reports whether the provider can give nodes GPUs.
	HasGPUs() bool
	Create(ctx context.Context, spec Spec) (handle string, err error)
	// Alive reports whether the node is still running.
	Alive(ctx context.Context, handle string) (bool, error)
	// Delete stops the node: a graceful stop, then a kill after grace.
	Delete(ctx context.Context, handle string, grace time.Duration) error
	// Preempt evicts the node the way a cloud evicts a low-priority VM:
	// SIGTERM, a grace period, then a kill. The agent gets no warning through
	// the server.
	Preempt(ctx context.Context, handle string, grace time.Duration) error
}
