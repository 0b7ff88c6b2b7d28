// Package agentproto is the protocol between the server and a node's
// `hangar agent`. The agent always dials the server (never the other way),
// authenticating with its node token as a bearer token. Every call about an
// attempt names the attempt id; the server answers 409 Conflict when that
// attempt is no longer the run's current, live attempt (fencing), and the
// agent must then stop the attempt's process and forget it.
//
// Routes (all under /api/v1/agent, JSON unless noted):
//
//	POST /heartbeat                  Heartbeat → HeartbeatReply
//	GET  /work?wait=SECONDS          → Work (200), or 204 when nothing arrived in time
//	GET  /blobs/{digest}             → raw bytes (snapshots, inputs)
//	POST /attempts/{id}/start        Start → 200 | 409
//	POST /attempts/{id}/logs?offset=N  raw bytes → LogAck | 409
//	PUT  /attempts/{id}/files        tar.gz of outputs/ and logs/ → 200 | 409
//	POST /attempts/{id}/finish       Finish → 200 | 409
//
// Every call is idempotent so the agent can retry until it gets an answer:
// when the server is down (even killed -9), the agent keeps its attempts
// running, buffers their logs on disk and reports when the server is back.
package agentproto

// Prefix is the route prefix of the agent protocol.
const Prefix = "/api/v1/agent"

// TokenEnv is the environment variable that passes the node token to the
// agent process (never a command-line argument, which `ps` would show).
const TokenEnv = "HANGAR_AGENT_TOKEN"

// Heartbeat tells the server the agent is alive and what it runs.
type Heartbeat struct {
	NodeID string `json:"node_id"`
	// Running lists the attempt ids whose processes are alive.
	Running []string `json:"running"`
	Version string   `json:"version"`
	PID     int      `json:"pid"`
}

// HeartbeatReply tells the agent what to do.
type HeartbeatReply struct {
	// Cancel lists attempts to stop (SIGTERM, grace, SIGKILL), then finish
	// with reason "canceled".
	Cancel []string `json:"cancel,omitempty"`
	// Shutdown asks the agent to stop its attempts and exit.
	Shutdown bool `json:"shutdown,omitempty"`
	// IntervalMillis is how often to heartbeat.
	IntervalMillis int `json:"interval_ms"`
}

// Input is a file or folder to place read-only under inputs/NAME.
type Input struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	// Dir means the blob is a tar.gz to extract; otherwise it is the file itself.
	Dir bool `json:"dir,omitempty"`
	// FileName is the file's name when Dir is false.
	FileName string `json:"file_name,omitempty"`
}

// Assignment is one attempt the node must run.
type Assignment struct {
	AttemptID string `json:"attempt_id"`
	RunID     string `json:"run_id"`
	Number    int    `json:"number"`
	Workspace string `json:"workspace"`
	// Script is run as `PYTHON -u SCRIPT ARGS…`; otherwise Command runs
	// under /bin/sh -c with ARGS appended as positional parameters.
	Script  string   `json:"script,omitempty"`
	Command string   `json:"command,omitempty"`
	Args    []string `json:"args,omitempty"`
	// Python is the interpreter ("" = python3 on PATH).
	Python string `json:"python,omitempty"`
	// Requirements are Python distributions ("scikit-learn", "numpy==1.24.2")
	// the interpreter must have; the agent checks them before starting a
	// script and fails the attempt with reason "setup failed" naming the
	// missing ones (nodes cannot install packages: no index is reachable).
	Requirements []string `json:"requirements,omitempty"`
	// Env holds the user's variables and the HANGAR_* ones; the agent adds
	// only an allow-list of its own environment (PATH, HOME, LANG, TMPDIR…).
	Env            map[string]string `json:"env"`
	SnapshotDigest string            `json:"snapshot_digest"`
	Inputs         []Input           `json:"inputs,omitempty"`
	// MaxDurationSeconds stops the process after that long (0 = no limit).
	MaxDurationSeconds int64 `json:"max_duration_seconds,omitempty"`
	// OutputsIntervalSeconds is how often outputs/ is uploaded while running.
	OutputsIntervalSeconds int `json:"outputs_interval_seconds,omitempty"`
}

// Work is the answer to GET /work.
type Work struct {
	Assignments []Assignment `json:"assignments,omitempty"`
	Cancel      []string     `json:"cancel,omitempty"`
	Shutdown    bool         `json:"shutdown,omitempty"`
}

// Start reports that the agent is about to start the attempt's process. The
// agent starts it only after a 200, so a fenced attempt never runs.
type Start struct{}

// LogAck tells the agent how many bytes of the attempt's log are stored.
// Stored may be less than sent (resend from there) or, once the log is over
// the server's size limit, more than the file holds: the server keeps no
// more of it and the agent skips to the end of its file.
type LogAck struct {
	Stored int64 `json:"stored"`
}

// Finish reports the end of an attempt's process.
type Finish struct {
	// ExitCode is the process exit code (-1 when killed by a signal).
	ExitCode int `json:"exit_code"`
	// Reason is "" for a normal exit, "canceled" after a cancel, or
	// "max run duration exceeded", or "setup failed" when the process never started.
	Reason string `json:"reason,omitempty"`
	// ErrorTail is the last lines of output when the exit code is not 0.
	ErrorTail string `json:"error_tail,omitempty"`
	// LogBytes is the full length of the log, so the server can tell whether
	// everything arrived.
	LogBytes int64 `json:"log_bytes"`
}
