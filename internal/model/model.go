// Package model defines a registered model: a named, versioned file or
// folder, often registered from a run's outputs.
package model

import (
	"errors"
	"time"
)

// ErrNotFound is returned when no model (version) matches.
var ErrNotFound = errors.New("model not found")

// Model is one version of a registered model.
type Model struct {
	Workspace   string
	Name        string
	Version     int
	Description string
	Tags        map[string]string
	Properties  map[string]string
	// RunID is the run the files came from ("" for a local upload).
	RunID string
	// Path is the registered path: "outputs/model.pkl" from a run, or the
	// base name of an uploaded file or folder.
	Path string
	// Digest is the blob holding the files as a tar.gz, original names kept,
	// rooted at the model's version folder.
	Digest    string
	Size      int64
	CreatedBy string
	CreatedAt time.Time
}
