package store

import (
	"context"
	"time"

	"github.com/hangar-ml/hangar/internal/model"
	"github.com/hangar-ml/hangar/internal/service"
)

// ModelStore holds registered models: one row per (workspace, name,
// version), the files in the blob store under the model's Digest.
type ModelStore interface {
	// ModelCreate stores m as the next version of its name in its workspace
	// (1 for the first) and returns it with Version set; m.Version is
	// ignored. Concurrent creates of one name get distinct versions.
	ModelCreate(ctx context.Context, m model.Model) (model.Model, error)
	// ModelGet returns one version of a model, or its latest version when
	// version <= 0; model.ErrNotFound if there is none.
	ModelGet(ctx context.Context, workspace, name string, version int) (model.Model, error)
	// ModelList lists the versions of the named model ("" = every model of
	// the workspace), newest first (by CreatedAt, then version).
	ModelList(ctx context.Context, workspace, name string) ([]model.Model, error)
	// ModelDelete removes one version; model.ErrNotFound if there is none.
	// The blob stays: blobs are content-addressed and may be shared.
	ModelDelete(ctx context.Context, workspace, name string, version int) error
}

// ServiceStore holds deployed services. The API writes the desired service
// (ServiceCreate, ServiceUpdate); the service manager writes what it
// observed (ServiceSetStatus) and removes a service once it has stopped it
// (ServiceDelete). The two write disjoint columns, so neither overwrites
// the other.
type ServiceStore interface {
	// ServiceCreate stores s. A name already used in the workspace, or a
	// non-zero Port used by any service of any workspace, is
	// store.ErrConflict.
	ServiceCreate(ctx context.Context, s service.Service) error
	// ServiceGet returns service.ErrNotFound if there is none.
	ServiceGet(ctx context.Context, workspace, name string) (service.Service, error)
	// ServiceList lists a workspace's services by name.
	ServiceList(ctx context.Context, workspace string) ([]service.Service, error)
	// ServiceListAll lists the services of every workspace, by workspace
	// and name (for the service manager).
	ServiceListAll(ctx context.Context) ([]service.Service, error)
	// ServiceUpdate overwrites the desired fields of service (s.Workspace,
	// s.Name) with s's: Target, Models, EntryScript, SourceDigest, Python,
	// Environment, EnvVars, EnvironmentVariables, Requirements, Port,
	// Workers, AuthEnabled, PrimaryKey, SecondaryKey, RequestTimeout,
	// Generation, DeleteRequested and UpdatedAt. It leaves the observed
	// fields (ObservedGeneration, State, Error) and CreatedBy/CreatedAt
	// alone. service.ErrNotFound if there is none; a Port taken by another
	// service is store.ErrConflict.
	ServiceUpdate(ctx context.Context, s service.Service) error
	// ServiceSetStatus writes what the manager observed: ObservedGeneration,
	// State, Error and UpdatedAt = now. It is unconditional (one manager
	// writes it) and idempotent; service.ErrNotFound if there is none.
	ServiceSetStatus(ctx context.Context, workspace, name string, observedGeneration int64, state service.State, errMsg string, now time.Time) error
	// ServiceDelete removes the service; service.ErrNotFound if there is none.
	ServiceDelete(ctx context.Context, workspace, name string) error
}
