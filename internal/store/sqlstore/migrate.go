package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// migration is one numbered schema change. Migrations are append-only: once
// released, a migration's SQL never changes; a new change gets the next
// number. The SQL is shared by both engines, with {{serial}}, {{blob}} and
// {{float}} standing for the types that differ (see dialect); statements
// are separated by semicolons and must not contain one otherwise.
type migration struct {
	version int
	name    string
	sql     string
}

var migrations = []migration{
	{1, "initial schema", `
CREATE TABLE workspaces (
	name       TEXT PRIMARY KEY,
	created_at BIGINT
);

CREATE TABLE tokens (
	id         TEXT PRIMARY KEY,
	hash       TEXT NOT NULL UNIQUE,
	name       TEXT NOT NULL,
	workspace  TEXT NOT NULL,
	scope      TEXT NOT NULL,
	created_at BIGINT,
	expires_at BIGINT,
	revoked_at BIGINT
);

CREATE TABLE computes (
	id                            TEXT PRIMARY KEY,
	workspace                     TEXT NOT NULL,
	name                          TEXT NOT NULL,
	name_key                      TEXT NOT NULL,
	kind                          TEXT NOT NULL,
	description                   TEXT NOT NULL,
	tags                          TEXT NOT NULL,
	vm_size                       TEXT NOT NULL,
	vm_priority                   TEXT NOT NULL,
	min_nodes                     INTEGER NOT NULL,
	max_nodes                     INTEGER NOT NULL,
	idle_seconds_before_scaledown INTEGER NOT NULL,
	provider                      TEXT NOT NULL,
	python                        TEXT NOT NULL,
	provisioning_state            TEXT NOT NULL,
	provisioning_errors           TEXT NOT NULL,
	created_by                    TEXT NOT NULL,
	created_at                    BIGINT,
	modified_at                   BIGINT,
	node_seq                      BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX computes_workspace_name_key ON computes (workspace, name_key);

CREATE TABLE nodes (
	id               TEXT PRIMARY KEY,
	workspace        TEXT NOT NULL,
	compute_id       TEXT NOT NULL,
	state            TEXT NOT NULL,
	reason           TEXT NOT NULL,
	provider         TEXT NOT NULL,
	priority         TEXT NOT NULL,
	vm_size          TEXT NOT NULL,
	slots            INTEGER NOT NULL,
	handle           TEXT NOT NULL,
	token_hash       TEXT NOT NULL,
	created_at       BIGINT,
	state_changed_at BIGINT,
	idle_since       BIGINT,
	last_heartbeat   BIGINT,
	ready_at         BIGINT,
	ended_at         BIGINT
);
CREATE INDEX nodes_compute ON nodes (compute_id, created_at, id);
CREATE INDEX nodes_live ON nodes (created_at, id) WHERE ended_at IS NULL;

CREATE TABLE runs (
	id                     TEXT PRIMARY KEY,
	workspace              TEXT NOT NULL,
	experiment             TEXT NOT NULL,
	compute_name           TEXT NOT NULL,
	status                 TEXT NOT NULL,
	status_reason          TEXT NOT NULL,
	script                 TEXT NOT NULL,
	command                TEXT NOT NULL,
	args                   TEXT NOT NULL,
	env                    TEXT NOT NULL,
	python                 TEXT NOT NULL,
	environment            TEXT NOT NULL,
	snapshot_digest        TEXT NOT NULL,
	inputs                 TEXT NOT NULL,
	node_count             INTEGER NOT NULL,
	max_retries            INTEGER NOT NULL,
	max_preemption_retries INTEGER NOT NULL,
	retries                INTEGER NOT NULL,
	preemption_retries     INTEGER NOT NULL,
	max_duration_seconds   BIGINT NOT NULL,
	tags                   TEXT NOT NULL,
	created_by             TEXT NOT NULL,
	created_at             BIGINT,
	started_at             BIGINT,
	ended_at               BIGINT,
	error                  TEXT,
	attempt                INTEGER NOT NULL,
	requirements           TEXT NOT NULL
);
CREATE INDEX runs_workspace_created ON runs (workspace, created_at, id);
CREATE INDEX runs_active ON runs (created_at, id) WHERE status NOT IN ('Completed', 'Failed', 'Canceled');

CREATE TABLE attempts (
	id         TEXT PRIMARY KEY,
	run_id     TEXT NOT NULL REFERENCES runs (id),
	number     INTEGER NOT NULL,
	node_id    TEXT NOT NULL,
	state      TEXT NOT NULL,
	created_at BIGINT,
	started_at BIGINT,
	ended_at   BIGINT,
	exit_code  INTEGER,
	reason     TEXT NOT NULL,
	log_size   BIGINT NOT NULL DEFAULT 0,
	UNIQUE (run_id, number)
);
CREATE INDEX attempts_live ON attempts (created_at, id) WHERE state <> 'ended';

CREATE TABLE log_chunks (
	attempt_id TEXT NOT NULL REFERENCES attempts (id),
	pos        BIGINT NOT NULL,
	data       {{blob}} NOT NULL,
	PRIMARY KEY (attempt_id, pos)
);

CREATE TABLE events (
	id          {{serial}},
	workspace   TEXT NOT NULL,
	kind        TEXT NOT NULL,
	object      TEXT NOT NULL,
	compute     TEXT NOT NULL,
	type        TEXT NOT NULL,
	message     TEXT NOT NULL,
	occurred_at BIGINT
);
CREATE INDEX events_workspace_time ON events (workspace, occurred_at, id);
CREATE INDEX events_workspace_compute_time ON events (workspace, lower(compute), occurred_at, id);

CREATE TABLE metrics (
	id         {{serial}},
	run_id     TEXT NOT NULL REFERENCES runs (id),
	name       TEXT NOT NULL,
	value      {{float}},
	text_value TEXT NOT NULL,
	step       BIGINT NOT NULL,
	logged_at  BIGINT
);
CREATE INDEX metrics_run ON metrics (run_id, id);

CREATE TABLE environments (
	workspace  TEXT NOT NULL,
	name       TEXT NOT NULL,
	version    INTEGER NOT NULL,
	spec       {{blob}},
	created_at BIGINT,
	PRIMARY KEY (workspace, name, version)
);

CREATE TABLE quotas (
	workspace TEXT NOT NULL,
	family    TEXT NOT NULL,
	priority  TEXT NOT NULL,
	vcpus     INTEGER NOT NULL,
	PRIMARY KEY (workspace, family, priority)
)
`},
	{2, "models and services", `
CREATE TABLE models (
	workspace   TEXT NOT NULL,
	name        TEXT NOT NULL,
	version     INTEGER NOT NULL,
	description TEXT NOT NULL,
	tags        TEXT NOT NULL,
	properties  TEXT NOT NULL,
	run_id      TEXT NOT NULL,
	path        TEXT NOT NULL,
	digest      TEXT NOT NULL,
	size        BIGINT NOT NULL,
	created_by  TEXT NOT NULL,
	created_at  BIGINT,
	deleted_at  BIGINT,
	PRIMARY KEY (workspace, name, version)
);
CREATE INDEX models_workspace_created ON models (workspace, created_at);

CREATE TABLE services (
	workspace             TEXT NOT NULL,
	name                  TEXT NOT NULL,
	target                TEXT NOT NULL,
	models                TEXT NOT NULL,
	entry_script          TEXT NOT NULL,
	source_digest         TEXT NOT NULL,
	python                TEXT NOT NULL,
	environment           TEXT NOT NULL,
	env_vars              TEXT NOT NULL,
	environment_variables TEXT NOT NULL,
	requirements          TEXT NOT NULL,
	port                  INTEGER NOT NULL,
	workers               INTEGER NOT NULL,
	auth_enabled          INTEGER NOT NULL,
	primary_key           TEXT NOT NULL,
	secondary_key         TEXT NOT NULL,
	request_timeout_ms    BIGINT NOT NULL,
	generation            BIGINT NOT NULL,
	observed_generation   BIGINT NOT NULL,
	state                 TEXT NOT NULL,
	error                 TEXT NOT NULL,
	created_by            TEXT NOT NULL,
	created_at            BIGINT,
	updated_at            BIGINT,
	delete_requested      INTEGER NOT NULL,
	PRIMARY KEY (workspace, name)
);
CREATE UNIQUE INDEX services_port ON services (port) WHERE port <> 0
`},
}

// migrate applies the migrations db lacks, all in one transaction, and
// records each in schema_migrations. It is a no-op on an up-to-date
// database and refuses one migrated by a newer Hangar.
func migrate(ctx context.Context, db *sql.DB, d *dialect, now time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()

	if d == postgresDialect {
		// Serialise concurrent servers (and parallel tests) migrating the
		// same schema; other schemas of the database are not blocked.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('hangar.migrate.' || current_schema()))`); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at BIGINT NOT NULL
)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}

	var current sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	latest := migrations[len(migrations)-1].version
	if int(current.Int64) > latest {
		return fmt.Errorf("database schema version %d is newer than this binary's %d; upgrade hangar", current.Int64, latest)
	}
	for _, m := range migrations {
		if m.version <= int(current.Int64) {
			continue
		}
		for _, stmt := range strings.Split(m.sql, ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, d.ddl.Replace(stmt)); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
			m.version, m.name, now.UnixMicro()); err != nil {
			return fmt.Errorf("record migration %d: %w", m.version, err)
		}
	}
	return tx.Commit()
}
