// Package service defines a deployed model service (real-time inference)
// and its state machine (DESIGN §4):
//
//	Transitioning ──> Healthy ⇄ Unhealthy
//	      └─────────> Failed
//
// The store holds the desired service (Generation counts changes); the
// service manager (internal/servicectl) brings the runtime to it and writes
// back State and Error.
package service

import (
	"errors"
	"time"
)

// State is a service's observed state; the string is the wire value.
type State string

// Service states.
const (
	Transitioning State = "Transitioning"
	Healthy       State = "Healthy"
	Unhealthy     State = "Unhealthy"
	Failed        State = "Failed"
)

// ErrNotFound is returned when no service has the requested name.
var ErrNotFound = errors.New("service not found")

// ModelRef names one model version a service loads.
type ModelRef struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
}

// Service is a deployed model behind HTTP /score.
type Service struct {
	Workspace string
	Name      string
	// Target is where it runs: "local" (the server's host).
	Target string
	Models []ModelRef
	// EntryScript is relative to the source snapshot.
	EntryScript    string
	SourceDigest   string
	Python         string
	Environment    string
	EnvVars        map[string]string
	Requirements   []string
	Port           int
	Workers        int
	AuthEnabled    bool
	PrimaryKey     string
	SecondaryKey   string
	RequestTimeout time.Duration
	// Generation increases with every deploy/update; the manager compares it
	// with ObservedGeneration to know what to (re)start.
	Generation         int64
	ObservedGeneration int64
	State              State
	// Error is set when State is Failed (or an update failed while the
	// previous generation keeps serving).
	Error     string
	CreatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
	// DeleteRequested asks the manager to stop it and remove the record.
	DeleteRequested bool
}
