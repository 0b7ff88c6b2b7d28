// Package api holds the wire types of Hangar's REST API (/api/v1). They change
// only on purpose: the server converts its domain types to these, and the Go
// client, the CLI and the Python SDK speak only these. Field names are
// snake_case and stable; `-o json` in the CLI prints exactly these documents.
package api

import "time"

// Version is the API version prefix.
const Version = "v1"

// ErrorBody is the body of every non-2xx response.
type ErrorBody struct {
	Error Error `json:"error"`
}

// Error is a user-facing error: a code, the field as the user wrote it, the
// rule broken, and an optional hint (often a command to try).
type Error struct {
	Code    string   `json:"code"`
	Field   string   `json:"field,omitempty"`
	Message string   `json:"message"`
	Hint    string   `json:"hint,omitempty"`
	Details []*Error `json:"details,omitempty"`
	// Status is the HTTP status; filled in by the client, not sent.
	Status int `json:"-"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Health is GET /api/v1/health.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version"`
}

// ScaleSettings are a cluster's autoscale bounds.
type ScaleSettings struct {
	MinNodes                   *int `json:"min_nodes,omitempty" yaml:"min_nodes,omitempty"`
	MaxNodes                   *int `json:"max_nodes,omitempty" yaml:"max_nodes,omitempty"`
	IdleSecondsBeforeScaledown *int `json:"idle_seconds_before_scaledown,omitempty" yaml:"idle_seconds_before_scaledown,omitempty"`
}

// ComputeProperties are a compute's kind-specific settings. Writable on
// create: vm_size, vm_priority, provider, python, scale_settings.
type ComputeProperties struct {
	VMSize        string         `json:"vm_size,omitempty" yaml:"vm_size,omitempty"`
	VMPriority    string         `json:"vm_priority,omitempty" yaml:"vm_priority,omitempty"`
	Provider      string         `json:"provider,omitempty" yaml:"provider,omitempty"`
	Python        string         `json:"python,omitempty" yaml:"python,omitempty"`
	ScaleSettings *ScaleSettings `json:"scale_settings,omitempty" yaml:"scale_settings,omitempty"`
	// VM describes the size (read-only).
	VM *VMSize `json:"vm,omitempty" yaml:"-"`
}

// ComputeSpec is the body of POST /computes and the format of `compute create -f`.
type ComputeSpec struct {
	Name        string            `json:"name" yaml:"name"`
	Type        string            `json:"type" yaml:"type"`
	Description string            `json:"description,omitempty" yaml:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty" yaml:"tags,omitempty"`
	Properties  ComputeProperties `json:"properties" yaml:"properties"`
}

// ComputeUpdate is the body of PATCH /computes/{name}; nil fields are kept.
type ComputeUpdate struct {
	Description   *string           `json:"description,omitempty"`
	Tags          map[string]string `json:"tags,omitempty"`
	ScaleSettings *ScaleSettings    `json:"scale_settings,omitempty"`
}

// NodeStateCounts counts a cluster's nodes by state.
type NodeStateCounts struct {
	Idle      int `json:"idle"`
	Running   int `json:"running"`
	Preparing int `json:"preparing"`
	Unusable  int `json:"unusable"`
	Leaving   int `json:"leaving"`
	Preempted int `json:"preempted"`
}

// ComputeStatus is a cluster's observed state.
type ComputeStatus struct {
	CurrentNodeCount int             `json:"current_node_count"`
	TargetNodeCount  int             `json:"target_node_count"`
	AllocationState  string          `json:"allocation_state"` // steady | resizing
	NodeStateCounts  NodeStateCounts `json:"node_state_counts"`
	QueuedRuns       int             `json:"queued_runs"`
	RunningRuns      int             `json:"running_runs"`
	// WaitReason says why queued runs are not placed, if something blocks them.
	WaitReason string `json:"wait_reason,omitempty"`
}

// Cost is the running cost estimate of a compute.
type Cost struct {
	NodeHours    float64 `json:"node_hours"`
	PricePerHour float64 `json:"price_per_hour"`
	Amount       float64 `json:"amount"`
	Currency     string  `json:"currency"`
}

// ProvisioningError is one entry of provisioning_errors.
type ProvisioningError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Compute is a compute target as the API shows it.
type Compute struct {
	Name               string              `json:"name"`
	Type               string              `json:"type"`
	Description        string              `json:"description,omitempty"`
	Tags               map[string]string   `json:"tags,omitempty"`
	ProvisioningState  string              `json:"provisioning_state"`
	ProvisioningErrors []ProvisioningError `json:"provisioning_errors"`
	Properties         ComputeProperties   `json:"properties"`
	Status             *ComputeStatus      `json:"status,omitempty"`
	ScaleEvents        []Event             `json:"scale_events,omitempty"`
	Cost               *Cost               `json:"cost,omitempty"`
	CreatedBy          string              `json:"created_by,omitempty"`
	CreatedOn          time.Time           `json:"created_on"`
	ModifiedOn         time.Time           `json:"modified_on"`
}

// Node is one node of a cluster.
type Node struct {
	ID             string     `json:"id"`
	State          string     `json:"state"`
	Reason         string     `json:"reason,omitempty"`
	VMSize         string     `json:"vm_size"`
	VMPriority     string     `json:"vm_priority"`
	Provider       string     `json:"provider"`
	RunIDs         []string   `json:"run_ids"`
	CreatedOn      time.Time  `json:"created_on"`
	StateChangedOn time.Time  `json:"state_changed_on"`
	IdleSince      *time.Time `json:"idle_since,omitempty"`
	LastHeartbeat  *time.Time `json:"last_heartbeat,omitempty"`
}

// VMSize is one entry of GET /vm-sizes.
type VMSize struct {
	Name                    string  `json:"name"`
	Family                  string  `json:"family"`
	VCPUs                   int     `json:"vcpus"`
	MemoryGB                float64 `json:"memory_gb"`
	GPUs                    int     `json:"gpus"`
	PricePerHour            float64 `json:"price_per_hour"`
	LowPriorityPricePerHour float64 `json:"low_priority_price_per_hour"`
}

// Quota is a workspace's vCPU limit for one VM family and priority.
type Quota struct {
	Family     string `json:"family"`
	VMPriority string `json:"vm_priority"`
	Limit      int    `json:"vcpus_limit"`
	Used       int    `json:"vcpus_used"`
}

// QuotaSet is the body of PUT /quotas.
type QuotaSet struct {
	Family     string `json:"family"`
	VMPriority string `json:"vm_priority"`
	Limit      int    `json:"vcpus_limit"`
}

// PreemptRequest is the body of POST /computes/{name}/preempt.
type PreemptRequest struct {
	Node string `json:"node,omitempty"`
}

// Event is something that happened, with its reason.
type Event struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Object  string    `json:"object"`
	Compute string    `json:"compute,omitempty"`
	Type    string    `json:"type"`
	Message string    `json:"message"`
}

// Blob is the answer to a blob upload.
type Blob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// RunInput is an input made available under inputs/NAME.
type RunInput struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Dir    bool   `json:"dir,omitempty"`
	// FileName is a file input's original name, kept under inputs/NAME/.
	FileName string `json:"file_name,omitempty"`
}

// EnvironmentSpec is a run environment: an interpreter, requirements and variables.
type EnvironmentSpec struct {
	Name         string            `json:"name,omitempty" yaml:"name,omitempty"`
	Python       string            `json:"python,omitempty" yaml:"python,omitempty"`
	Requirements []string          `json:"requirements,omitempty" yaml:"requirements,omitempty"`
	Variables    map[string]string `json:"variables,omitempty" yaml:"variables,omitempty"`
}

// Environment is a registered, versioned environment.
type Environment struct {
	EnvironmentSpec
	Version   int       `json:"version"`
	CreatedOn time.Time `json:"created_on"`
}

// RunSubmit is the body of POST /runs. The snapshot is uploaded first as a blob.
type RunSubmit struct {
	Experiment string            `json:"experiment,omitempty"`
	Compute    string            `json:"compute"`
	Script     string            `json:"script,omitempty"`
	Command    string            `json:"command,omitempty"`
	Args       []string          `json:"args,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	Python     string            `json:"python,omitempty"`
	// Environment names a registered environment, "name" or "name:version".
	Environment string `json:"environment,omitempty"`
	// EnvironmentSpec is an inline environment (from a file); exclusive with Environment.
	EnvironmentSpec      *EnvironmentSpec  `json:"environment_spec,omitempty"`
	SnapshotDigest       string            `json:"snapshot_digest"`
	Inputs               []RunInput        `json:"inputs,omitempty"`
	NodeCount            int               `json:"node_count,omitempty"`
	MaxRetries           *int              `json:"max_retries,omitempty"`
	MaxPreemptionRetries *int              `json:"max_preemption_retries,omitempty"`
	MaxRunDurationSecs   int64             `json:"max_run_duration_seconds,omitempty"`
	Tags                 map[string]string `json:"tags,omitempty"`
}

// RunError says why a run failed.
type RunError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details string `json:"details,omitempty"`
}

// Attempt is one execution of a run on a node.
type Attempt struct {
	Number   int        `json:"number"`
	Node     string     `json:"node"`
	State    string     `json:"state"`
	Start    *time.Time `json:"start,omitempty"`
	End      *time.Time `json:"end,omitempty"`
	ExitCode *int       `json:"exit_code,omitempty"`
	Reason   string     `json:"reason,omitempty"`
}

// Run is a training run as the API shows it.
type Run struct {
	ID                   string            `json:"id"`
	Experiment           string            `json:"experiment"`
	Compute              string            `json:"compute"`
	Status               string            `json:"status"`
	StatusReason         string            `json:"status_reason,omitempty"`
	Script               string            `json:"script,omitempty"`
	Command              string            `json:"command,omitempty"`
	Args                 []string          `json:"args,omitempty"`
	Env                  map[string]string `json:"env,omitempty"`
	Python               string            `json:"python,omitempty"`
	Environment          string            `json:"environment,omitempty"`
	SnapshotDigest       string            `json:"snapshot_digest"`
	Inputs               []RunInput        `json:"inputs,omitempty"`
	NodeCount            int               `json:"node_count"`
	MaxRetries           int               `json:"max_retries"`
	MaxPreemptionRetries int               `json:"max_preemption_retries"`
	Retries              int               `json:"retries"`
	PreemptionRetries    int               `json:"preemption_retries"`
	MaxRunDurationSecs   int64             `json:"max_run_duration_seconds"`
	Tags                 map[string]string `json:"tags,omitempty"`
	CreatedBy            string            `json:"created_by"`
	CreatedOn            time.Time         `json:"created_on"`
	StartedOn            *time.Time        `json:"started_on,omitempty"`
	EndedOn              *time.Time        `json:"ended_on,omitempty"`
	Error                *RunError         `json:"error,omitempty"`
	Attempts             []Attempt         `json:"attempts"`
}

// Metric is one logged metric value.
type Metric struct {
	Name  string    `json:"name"`
	Value *float64  `json:"value,omitempty"`
	Text  string    `json:"text,omitempty"`
	Step  int64     `json:"step,omitempty"`
	Time  time.Time `json:"time"`
}

// MetricsPost is the body of POST /runs/{id}/metrics: one metric or a batch.
type MetricsPost struct {
	Name    string   `json:"name,omitempty"`
	Value   any      `json:"value,omitempty"`
	Step    *int64   `json:"step,omitempty"`
	Metrics []Metric `json:"metrics,omitempty"`
}

// List wraps every list response.
type List[T any] struct {
	Value []T `json:"value"`
}

// Model is one version of a registered model. Its files are a tar.gz
// (GET /models/{name}/versions/{v}/files) holding the registered file or
// folder under its own name: extracting it gives model.pkl, or model/… for
// a folder, as a service finds them in its model directory.
type Model struct {
	Name        string            `json:"name"`
	Version     int               `json:"version"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Properties  map[string]string `json:"properties,omitempty"`
	// RunID is the run the files came from; empty for a local upload.
	RunID string `json:"run_id,omitempty"`
	// Path is the registered path: "outputs/model.pkl" of a run, or the
	// base name of an uploaded file or folder.
	Path string `json:"path"`
	// Digest names the blob holding the files (a tar.gz).
	Digest string `json:"digest"`
	// Size is the total size of the files, uncompressed.
	Size      int64     `json:"size"`
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedOn time.Time `json:"created_on"`
}

// ModelRegister is the body of POST /models: either RunID and the Path of
// a file or folder among the run's files, or Path (the base name of the
// file or folder) and the Digest of an uploaded tar.gz holding it, packed
// as snapshot.WritePath does.
type ModelRegister struct {
	Name        string            `json:"name"`
	RunID       string            `json:"run_id,omitempty"`
	Path        string            `json:"path"`
	Digest      string            `json:"digest,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Properties  map[string]string `json:"properties,omitempty"`
}

// ServiceModel names one model version a service loads.
type ServiceModel struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
}

// Service is a deployed model service (real-time inference).
type Service struct {
	Name string `json:"name"`
	// State is Transitioning, Healthy, Unhealthy or Failed.
	State string `json:"state"`
	// ScoringURI is http://127.0.0.1:PORT/score for the local target.
	ScoringURI  string         `json:"scoring_uri"`
	SwaggerURI  string         `json:"swagger_uri"`
	AuthEnabled bool           `json:"auth_enabled"`
	Models      []ServiceModel `json:"models"`
	Workers     int            `json:"workers"`
	// Error says why the service Failed, or why the latest update failed
	// while the previous version keeps serving; "" otherwise.
	Error                 string            `json:"error"`
	Target                string            `json:"target"`
	Port                  int               `json:"port"`
	EntryScript           string            `json:"entry_script"`
	SourceDigest          string            `json:"source_digest"`
	Python                string            `json:"python,omitempty"`
	Environment           string            `json:"environment,omitempty"`
	Env                   map[string]string `json:"env,omitempty"`
	RequestTimeoutSeconds int               `json:"request_timeout_seconds"`
	CreatedBy             string            `json:"created_by,omitempty"`
	CreatedOn             time.Time         `json:"created_on"`
	UpdatedOn             time.Time         `json:"updated_on"`
	// Generation counts deploys and updates; the service runs what was
	// asked once ObservedGeneration equals it.
	Generation         int64 `json:"generation"`
	ObservedGeneration int64 `json:"observed_generation"`
	// DeleteRequested is set while the service is being stopped and removed.
	DeleteRequested bool `json:"delete_requested,omitempty"`
}

// ServiceDeploy is the body of POST /services. The source snapshot is
// uploaded first as a blob, as for runs.
type ServiceDeploy struct {
	Name string `json:"name"`
	// Models are "name" (the latest version) or "name:version".
	Models       []string `json:"models"`
	EntryScript  string   `json:"entry_script"`
	SourceDigest string   `json:"source_digest"`
	Python       string   `json:"python,omitempty"`
	// Environment names a registered environment, "name" or "name:version".
	Environment string `json:"environment,omitempty"`
	// EnvironmentSpec is an inline environment; exclusive with Environment.
	EnvironmentSpec *EnvironmentSpec  `json:"environment_spec,omitempty"`
	Env             map[string]string `json:"env,omitempty"`
	// Target is where it runs: "local" (the default).
	Target string `json:"target,omitempty"`
	// Port is the 127.0.0.1 port (1024–65535); 0 picks a free one.
	Port int `json:"port,omitempty"`
	// Workers is the number of Python worker processes (1–16; default 1).
	Workers int `json:"workers,omitempty"`
	// Auth is "key" or "none" (the default for local, as in Azure ML).
	Auth string `json:"auth,omitempty"`
	// Overwrite turns a deploy over an existing service into an update.
	Overwrite bool `json:"overwrite,omitempty"`
	// RequestTimeoutSeconds bounds one request (1–3600; default 60).
	RequestTimeoutSeconds int `json:"request_timeout_seconds,omitempty"`
}

// ServiceUpdate is the body of PATCH /services/{name}; absent fields are
// kept. Env, when present (even {}), replaces the variables given before.
type ServiceUpdate struct {
	Models                []string          `json:"models,omitempty"`
	EntryScript           *string           `json:"entry_script,omitempty"`
	SourceDigest          *string           `json:"source_digest,omitempty"`
	Python                *string           `json:"python,omitempty"`
	Environment           *string           `json:"environment,omitempty"`
	EnvironmentSpec       *EnvironmentSpec  `json:"environment_spec,omitempty"`
	Env                   map[string]string `json:"env"` // null keeps; {} clears
	Workers               *int              `json:"workers,omitempty"`
	Auth                  *string           `json:"auth,omitempty"`
	RequestTimeoutSeconds *int              `json:"request_timeout_seconds,omitempty"`
}

// ServiceKeys are a service's two keys; /score accepts either as
// "Authorization: Bearer <key>" when auth is enabled.
type ServiceKeys struct {
	PrimaryKey   string `json:"primary_key"`
	SecondaryKey string `json:"secondary_key"`
}

// RegenKey is the body of POST /services/{name}/regen-key.
type RegenKey struct {
	// Key is "primary" or "secondary".
	Key string `json:"key"`
}
