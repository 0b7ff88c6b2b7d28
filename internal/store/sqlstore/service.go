package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hangar-ml/hangar/internal/service"
	"github.com/hangar-ml/hangar/internal/store"
)

const serviceColumns = `workspace, name, target, models, entry_script, source_digest, python, environment,
env_vars, environment_variables, requirements, port, workers, auth_enabled, primary_key, secondary_key,
request_timeout_ms, generation, observed_generation, state, error, created_by, created_at, updated_at,
delete_requested`

func scanService(r rowScanner) (service.Service, error) {
	var (
		s         service.Service
		timeoutMS int64
	)
	err := r.Scan(&s.Workspace, &s.Name, &s.Target, js(&s.Models), &s.EntryScript, &s.SourceDigest, &s.Python, &s.Environment,
		js(&s.EnvVars), js(&s.EnvironmentVariables), js(&s.Requirements), &s.Port, &s.Workers, &s.AuthEnabled,
		&s.PrimaryKey, &s.SecondaryKey, &timeoutMS, &s.Generation, &s.ObservedGeneration, &s.State, &s.Error,
		&s.CreatedBy, tm(&s.CreatedAt), tm(&s.UpdatedAt), &s.DeleteRequested)
	s.RequestTimeout = time.Duration(timeoutMS) * time.Millisecond
	return s, err
}

// flag is the column value of a bool: PostgreSQL refuses a boolean for an
// INTEGER column, and both engines scan 0 and 1 back into a bool.
func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// serviceJSON encodes the JSON columns of s.
func serviceJSON(s service.Service) (models, env, envVars, reqs string, err error) {
	var e encoder
	models, env, envVars, reqs = e.json(s.Models), e.json(s.EnvVars), e.json(s.EnvironmentVariables), e.json(s.Requirements)
	return models, env, envVars, reqs, e.err
}

// ServiceCreate stores s. A name already used in the workspace, or a
// non-zero port used by any service, is store.ErrConflict.
func (s *Store) ServiceCreate(ctx context.Context, sv service.Service) error {
	models, env, envVars, reqs, err := serviceJSON(sv)
	if err != nil {
		return fmt.Errorf("create service %q: %w", sv.Name, err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO services (`+serviceColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sv.Workspace, sv.Name, sv.Target, models, sv.EntryScript, sv.SourceDigest, sv.Python, sv.Environment,
		env, envVars, reqs, sv.Port, sv.Workers, flag(sv.AuthEnabled), sv.PrimaryKey, sv.SecondaryKey,
		sv.RequestTimeout.Milliseconds(), sv.Generation, sv.ObservedGeneration, string(sv.State), text(sv.Error),
		sv.CreatedBy, micros(sv.CreatedAt), micros(sv.UpdatedAt), flag(sv.DeleteRequested))
	if isUniqueViolation(err) {
		return fmt.Errorf("service %q in workspace %q (or port %d): %w", sv.Name, sv.Workspace, sv.Port, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create service %q: %w", sv.Name, err)
	}
	return nil
}

// ServiceGet returns service.ErrNotFound if there is none.
func (s *Store) ServiceGet(ctx context.Context, workspace, name string) (service.Service, error) {
	sv, err := scanService(s.r.QueryRowContext(ctx, `SELECT `+serviceColumns+` FROM services WHERE workspace = ? AND name = ?`, workspace, name))
	if errors.Is(err, sql.ErrNoRows) {
		return sv, fmt.Errorf("service %q in workspace %q: %w", name, workspace, service.ErrNotFound)
	}
	if err != nil {
		return sv, fmt.Errorf("get service %q: %w", name, err)
	}
	return sv, nil
}

// ServiceList lists a workspace's services by name.
func (s *Store) ServiceList(ctx context.Context, workspace string) ([]service.Service, error) {
	ss, err := queryList(ctx, s.r, scanService, `SELECT `+serviceColumns+` FROM services WHERE workspace = ? ORDER BY name`, workspace)
	if err != nil {
		return nil, fmt.Errorf("list services of %q: %w", workspace, err)
	}
	return ss, nil
}

// ServiceListAll lists every service by workspace and name.
func (s *Store) ServiceListAll(ctx context.Context) ([]service.Service, error) {
	ss, err := queryList(ctx, s.r, scanService, `SELECT `+serviceColumns+` FROM services ORDER BY workspace, name`)
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	return ss, nil
}

// ServiceUpdate overwrites the desired fields of the service with sv's
// (see store.ServiceStore); the observed fields are left alone.
func (s *Store) ServiceUpdate(ctx context.Context, sv service.Service) error {
	models, env, envVars, reqs, err := serviceJSON(sv)
	if err != nil {
		return fmt.Errorf("update service %q: %w", sv.Name, err)
	}
	n, err := affected(s.w.ExecContext(ctx, `UPDATE services SET target = ?, models = ?, entry_script = ?, source_digest = ?,
python = ?, environment = ?, env_vars = ?, environment_variables = ?, requirements = ?, port = ?, workers = ?,
auth_enabled = ?, primary_key = ?, secondary_key = ?, request_timeout_ms = ?, generation = ?, delete_requested = ?,
updated_at = ? WHERE workspace = ? AND name = ?`,
		sv.Target, models, sv.EntryScript, sv.SourceDigest, sv.Python, sv.Environment, env, envVars, reqs, sv.Port, sv.Workers,
		flag(sv.AuthEnabled), sv.PrimaryKey, sv.SecondaryKey, sv.RequestTimeout.Milliseconds(), sv.Generation,
		flag(sv.DeleteRequested), micros(sv.UpdatedAt), sv.Workspace, sv.Name))
	if isUniqueViolation(err) {
		return fmt.Errorf("service %q: port %d: %w", sv.Name, sv.Port, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("update service %q: %w", sv.Name, err)
	}
	if n == 0 {
		return fmt.Errorf("service %q in workspace %q: %w", sv.Name, sv.Workspace, service.ErrNotFound)
	}
	return nil
}

// ServiceSetStatus writes ObservedGeneration, State, Error and UpdatedAt.
func (s *Store) ServiceSetStatus(ctx context.Context, workspace, name string, observedGeneration int64, state service.State, errMsg string, now time.Time) error {
	n, err := affected(s.w.ExecContext(ctx, `UPDATE services SET observed_generation = ?, state = ?, error = ?, updated_at = ?
WHERE workspace = ? AND name = ?`, observedGeneration, string(state), text(errMsg), micros(now), workspace, name))
	if err != nil {
		return fmt.Errorf("set status of service %q: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("service %q in workspace %q: %w", name, workspace, service.ErrNotFound)
	}
	return nil
}

// ServiceDelete removes the service; service.ErrNotFound if there is none.
func (s *Store) ServiceDelete(ctx context.Context, workspace, name string) error {
	n, err := affected(s.w.ExecContext(ctx, `DELETE FROM services WHERE workspace = ? AND name = ?`, workspace, name))
	if err != nil {
		return fmt.Errorf("delete service %q: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("service %q in workspace %q: %w", name, workspace, service.ErrNotFound)
	}
	return nil
}
