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
	EntryScript  string
	SourceDigest string
	// Python is the interpreter ("" = the manager's default, python3): the
	// one given with the deploy, else the environment's.
	Python string
	// Environment names where Python, Requirements and
	// EnvironmentVariables came from: "name:version" of a registered
	// environment, "inline", or "" for none.
	Environment string
	// EnvVars are the worker processes' variables: the environment's
	// variables overridden by the ones given with the deploy or update.
	EnvVars map[string]string
	// EnvironmentVariables are the environment's own variables, kept so
	// that an update can tell them from the ones given (those in EnvVars
	// that are not here or differ).
	EnvironmentVariables map[string]string
	Requirements         []string
	// Port is the 127.0.0.1 port of the local target; the API picks a free
	// one at deploy time when none is given, so it is never 0 once stored.
	Port    int
	Workers int
	// AuthEnabled makes /score require "Authorization: Bearer <key>" with
	// PrimaryKey or SecondaryKey. Both keys exist even when it is off.
	AuthEnabled  bool
	PrimaryKey   string
	SecondaryKey string
	// RequestTimeout bounds one /score request (stored to the millisecond).
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
