package httpapi

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/internal/compute"
	"github.com/hangar-ml/hangar/internal/ids"
	"github.com/hangar-ml/hangar/internal/problem"
	"github.com/hangar-ml/hangar/internal/run"
	"github.com/hangar-ml/hangar/internal/snapshot"
	"github.com/hangar-ml/hangar/internal/store"
)

// Defaults of a run submission.
const (
	defaultMaxPreemptionRetries = 3
	defaultMaxRunDuration       = 30 * 24 * 3600 // 30 days, as in Azure ML v1
)

var (
	experimentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$`)
	envKeyRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	inputNameRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)
)

func (a *API) blobUpload(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.workspace(r); err != nil {
		return err
	}
	if err := requireUser(r); err != nil {
		return err
	}
	if r.ContentLength > a.cfg.MaxBlobBytes {
		return problem.New(problem.TooLarge, "upload of %d bytes is over the limit of %d bytes", r.ContentLength, a.cfg.MaxBlobBytes)
	}
	body := http.MaxBytesReader(w, r.Body, a.cfg.MaxBlobBytes)
	digest, size, err := a.cfg.Blobs.Put(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return problem.New(problem.TooLarge, "upload is over the limit of %d bytes", a.cfg.MaxBlobBytes)
		}
		return err
	}
	writeJSON(w, http.StatusCreated, api.Blob{Digest: digest, Size: size})
	return nil
}

func (a *API) blobHead(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.workspace(r); err != nil {
		return err
	}
	if a.cfg.Blobs.Has(r.PathValue("digest")) {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	w.WriteHeader(http.StatusNotFound)
	return nil
}

// snapshotFiles caches the file list of snapshots so submits can check the
// script exists without re-reading the archive.
type snapshotFiles struct {
	mu    sync.Mutex
	files map[string]map[string]bool
}

func (a *API) snapshotHas(digest, name string) (bool, error) {
	a.snapFiles.mu.Lock()
	files, ok := a.snapFiles.files[digest]
	a.snapFiles.mu.Unlock()
	if !ok {
		rc, err := a.cfg.Blobs.Open(digest)
		if err != nil {
			return false, err
		}
		defer rc.Close()
		zr, err := gzip.NewReader(rc)
		if err != nil {
			return false, problem.Field("snapshot_digest", "blob %s is not a gzip'ed tar snapshot", digest)
		}
		files = map[string]bool{}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return false, problem.Field("snapshot_digest", "blob %s is not a valid snapshot: %v", digest, err)
			}
			if h.Typeflag == tar.TypeDir {
				continue // a directory is not a script
			}
			files[path.Clean(strings.TrimPrefix(h.Name, "./"))] = true
		}
		a.snapFiles.mu.Lock()
		if len(a.snapFiles.files) > 1000 {
			a.snapFiles.files = map[string]map[string]bool{}
		}
		a.snapFiles.files[digest] = files
		a.snapFiles.mu.Unlock()
	}
	return files[path.Clean(name)], nil
}

func (a *API) runSubmit(w http.ResponseWriter, r *http.Request) error {
	ws, err := a.workspace(r)
	if err != nil {
		return err
	}
	if err := requireUser(r); err != nil {
		return err
	}
	var req api.RunSubmit
	if err := decode(r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	now := a.cfg.Clock.Now()
	rn := run.Run{
		ID:                   ids.New("run"),
		Workspace:            ws,
		Experiment:           req.Experiment,
		ComputeName:          req.Compute,
		Status:               run.Queued,
		StatusReason:         "queued",
		Script:               req.Script,
		Command:              req.Command,
		Args:                 req.Args,
		Env:                  map[string]string{},
		Python:               req.Python,
		SnapshotDigest:       req.SnapshotDigest,
		NodeCount:            req.NodeCount,
		MaxPreemptionRetries: defaultMaxPreemptionRetries,
		MaxDurationSeconds:   req.MaxRunDurationSecs,
		Tags:                 req.Tags,
		CreatedBy:            principalOf(r).token.Name,
		CreatedAt:            now,
	}
	if rn.Experiment == "" {
		rn.Experiment = "default"
	}
	if rn.NodeCount == 0 {
		rn.NodeCount = 1
	}
	if rn.MaxDurationSeconds == 0 {
		rn.MaxDurationSeconds = defaultMaxRunDuration
	}
	if req.MaxRetries != nil {
		rn.MaxRetries = *req.MaxRetries
	}
	if req.MaxPreemptionRetries != nil {
		rn.MaxPreemptionRetries = *req.MaxPreemptionRetries
	}

	var l problem.List
	if !experimentRE.MatchString(rn.Experiment) {
		l.Add("experiment", "%q must be 1 to 255 letters, digits, '_', '.' or '-', starting with a letter or digit", rn.Experiment)
	}
	switch {
	case rn.Script == "" && rn.Command == "":
		l.Add("script", "give a script (--script train.py) or a command (--command \"…\")")
	case rn.Script != "" && rn.Command != "":
		l.Add("command", "give a script or a command, not both")
	case rn.Script != "":
		clean := path.Clean(rn.Script)
		if path.IsAbs(rn.Script) || clean == ".." || strings.HasPrefix(clean, "../") {
			l.Add("script", "%q must be a path inside the source directory", rn.Script)
		}
	}
	if rn.NodeCount < 1 {
		l.Add("node_count", "(%d) must be >= 1", rn.NodeCount)
	}
	if rn.MaxRetries < 0 || rn.MaxRetries > 100 {
		l.Add("max_retries", "(%d) must be between 0 and 100", rn.MaxRetries)
	}
	if rn.MaxPreemptionRetries < 0 || rn.MaxPreemptionRetries > 100 {
		l.Add("max_preemption_retries", "(%d) must be between 0 and 100", rn.MaxPreemptionRetries)
	}
	if rn.MaxDurationSeconds < 0 {
		l.Add("max_run_duration_seconds", "(%d) must be > 0 (0 or absent means the default, 30 days)", rn.MaxDurationSeconds)
	}
	for k, v := range req.Env {
		if !envKeyRE.MatchString(k) {
			l.Add("env."+k, "is not a valid environment variable name (letters, digits, '_', not starting with a digit)")
		} else if strings.HasPrefix(k, "HANGAR_") {
			l.Add("env."+k, "HANGAR_* variables are set by Hangar and cannot be overridden")
		}
		rn.Env[k] = v
	}
	for k, v := range rn.Tags {
		if k == "" || len(k) > 128 || len(v) > 256 {
			l.Add("tags", "tag keys must be 1 to 128 characters and values at most 256")
		}
	}
	if req.SnapshotDigest == "" {
		l.Add("snapshot_digest", "is required (upload the source snapshot to /blobs first)")
	} else if !a.cfg.Blobs.Has(req.SnapshotDigest) {
		l.Add("snapshot_digest", "blob %s is not stored; upload it first", req.SnapshotDigest)
	} else if rn.Script != "" {
		ok, err := a.snapshotHas(req.SnapshotDigest, rn.Script)
		if err != nil {
			if p, isP := problem.As(err); isP {
				l.AddErr(p)
			} else {
				return err
			}
		} else if !ok {
			l.Add("script", "%s is not in the source snapshot (check --source-dir and ignore files)", rn.Script)
		}
	}
	seenInputs := map[string]bool{}
	for i, in := range req.Inputs {
		f := fmt.Sprintf("inputs[%d]", i)
		switch {
		case !inputNameRE.MatchString(in.Name):
			l.Add(f+".name", "%q must be a letter followed by up to 63 letters, digits or '_'", in.Name)
		case seenInputs[strings.ToUpper(in.Name)]:
			l.Add(f+".name", "%q is given twice (input names are case-insensitive: each becomes HANGAR_INPUT_%s)", in.Name, strings.ToUpper(in.Name))
		case in.FileName != "" && (strings.ContainsAny(in.FileName, "/\\\x00") || in.FileName == "." || in.FileName == ".."):
			l.Add(f+".file_name", "%q must be a plain file name", in.FileName)
		case !a.cfg.Blobs.Has(in.Digest):
			l.Add(f+".digest", "blob %q is not stored; upload it first", in.Digest)
		}
		seenInputs[strings.ToUpper(in.Name)] = true
		rn.Inputs = append(rn.Inputs, run.Input{Name: in.Name, Digest: in.Digest, Dir: in.Dir, FileName: in.FileName})
	}
	// Environment: a registered one by name[:version], or an inline spec.
	envSpec, envLabel, err := a.resolveEnvironment(ctx, ws, req.Environment, req.EnvironmentSpec, &l)
	if err != nil {
		return err
	}
	if envSpec != nil {
		rn.Environment = envLabel
	}
	// The compute must exist and the run must be able to fit on it some day.
	cp, err := a.cfg.Store.ComputeGet(ctx, ws, req.Compute)
	switch {
	case req.Compute == "":
		l.Add("compute", "is required (a compute name, or local)")
	case errors.Is(err, compute.ErrNotFound):
		l.AddErr(problem.Field("compute", "compute %q not found in workspace %s", req.Compute, ws).WithHint("hangar compute list"))
	case err != nil:
		return err
	default:
		rn.ComputeName = cp.Name
		a.checkFits(ctx, &l, cp, rn)
	}
	if err := l.Err(); err != nil {
		return err
	}
	// Interpreter: run > environment > compute > python3 on the node.
	if envSpec != nil {
		if rn.Python == "" {
			rn.Python = envSpec.Python
		}
		rn.Requirements = envSpec.Requirements
		for k, v := range envSpec.Variables {
			if _, set := rn.Env[k]; !set {
				rn.Env[k] = v
			}
		}
	}
	if rn.Python == "" {
		rn.Python = cp.Python
	}
	err = a.cfg.Store.InTx(ctx, func(tx store.Store) error {
		if err := tx.RunCreate(ctx, rn); err != nil {
			return err
		}
		return tx.EventAdd(ctx, store.Event{Workspace: ws, Kind: "run", Object: rn.ID, Compute: cp.Name, Type: "Submitted", Message: fmt.Sprintf("run %s queued on %s", rn.ID, cp.Name), Time: now})
	})
	if err != nil {
		return err
	}
	a.cfg.Ctl.Wake()
	writeJSON(w, http.StatusCreated, toAPIRun(rn, nil))
	return nil
}

// resolveEnvironment returns the spec of a registered environment (name
// or name:version) and its label "name:version", or of an inline spec and
// the label "inline"; nil and "" when neither is given. Problems go to l
// under "environment" or "environment_spec.*"; the error is an internal one.
func (a *API) resolveEnvironment(ctx context.Context, ws, ref string, inline *api.EnvironmentSpec, l *problem.List) (*api.EnvironmentSpec, string, error) {
	switch {
	case ref != "" && inline != nil:
		l.Add("environment", "give a registered environment or an inline environment_spec, not both")
	case ref != "":
		name, ver := ref, 0
		if n, v, ok := strings.Cut(ref, ":"); ok {
			vv, err := strconv.Atoi(v)
			if err != nil || vv < 1 {
				l.Add("environment", "version in %q must be a positive integer", ref)
				return nil, "", nil
			}
			name, ver = n, vv
		}
		env, err := a.cfg.Store.EnvironmentGet(ctx, ws, name, ver)
		if errors.Is(err, store.ErrNotFound) {
			l.AddErr(problem.Field("environment", "environment %q not found in workspace %s", ref, ws).WithHint("hangar environment list"))
			return nil, "", nil
		}
		if err != nil {
			return nil, "", err
		}
		var spec api.EnvironmentSpec
		if err := json.Unmarshal(env.Spec, &spec); err != nil {
			return nil, "", err
		}
		return &spec, fmt.Sprintf("%s:%d", env.Name, env.Version), nil
	case inline != nil:
		if err := validateEnvironment(*inline, "environment_spec.", false); err != nil {
			if p, ok := problem.As(err); ok {
				l.AddErr(p)
			}
		}
		return inline, "inline", nil
	}
	return nil, "", nil
}

// checkFits refuses runs that could never be placed on the compute.
func (a *API) checkFits(ctx context.Context, l *problem.List, cp compute.Compute, rn run.Run) {
	switch cp.ProvisioningState {
	case compute.StateFailed:
		l.AddErr(problem.Field("compute", "compute %s is in state Failed and cannot run anything", cp.Name).WithHint("hangar compute show " + cp.Name))
		return
	case compute.StateDeleting:
		l.Add("compute", "compute %s is being deleted", cp.Name)
		return
	}
	if cp.Kind == compute.KindLocal {
		if rn.NodeCount > 1 {
			l.Add("node_count", "(%d) must be 1 on the local compute", rn.NodeCount)
		}
		return
	}
	if rn.NodeCount > cp.MaxNodes {
		l.AddErr(problem.Field("node_count", "(%d) is more than compute %s's max_nodes (%d)", rn.NodeCount, cp.Name, cp.MaxNodes).WithHint(fmt.Sprintf("hangar compute update %s --max-nodes %d", cp.Name, rn.NodeCount)))
	} else if rn.NodeCount > 1 {
		// Refused rather than silently run on one node: multi-node runs
		// (distributed training) come with the containers issue.
		l.Add("node_count", "(%d) multi-node runs are not supported yet; use node_count 1", rn.NodeCount)
	}
	size, ok := a.cfg.Catalog.Lookup(cp.VMSize)
	if !ok {
		return
	}
	limit, err := a.cfg.Ctl.QuotaLimit(ctx, cp.Workspace, size.Family, cp.VMPriority)
	// NodeCount*VCPUs may overflow for absurd node counts; compare by division.
	if err == nil && rn.NodeCount > max(limit, 0)/size.VCPUs {
		l.AddErr(problem.Field("node_count", "%d node(s) of %s need %d vCPUs, beyond the %s %s quota of %d vCPUs even when the workspace is empty", rn.NodeCount, size.Name, size.VCPUs*rn.NodeCount, size.Family, cp.VMPriority, limit).
			WithHint(fmt.Sprintf("hangar quota set --family %s --vm-priority %s --vcpus %d", size.Family, cp.VMPriority, size.VCPUs*rn.NodeCount)))
	}
}

func toAPIRun(r run.Run, attempts []run.Attempt) api.Run {
	out := api.Run{
		ID: r.ID, Experiment: r.Experiment, Compute: r.ComputeName, Status: string(r.Status), StatusReason: r.StatusReason,
		Script: r.Script, Command: r.Command, Args: r.Args, Env: r.Env, Python: r.Python, Environment: r.Environment,
		SnapshotDigest: r.SnapshotDigest, NodeCount: r.NodeCount, MaxRetries: r.MaxRetries, MaxPreemptionRetries: r.MaxPreemptionRetries,
		Retries: r.Retries, PreemptionRetries: r.PreemptionRetries, MaxRunDurationSecs: r.MaxDurationSeconds, Tags: r.Tags,
		CreatedBy: r.CreatedBy, CreatedOn: r.CreatedAt, StartedOn: timePtr(r.StartedAt), EndedOn: timePtr(r.EndedAt),
		Attempts: []api.Attempt{},
	}
	for _, in := range r.Inputs {
		out.Inputs = append(out.Inputs, api.RunInput{Name: in.Name, Digest: in.Digest, Dir: in.Dir, FileName: in.FileName})
	}
	if r.Error != nil {
		out.Error = &api.RunError{Code: r.Error.Code, Message: r.Error.Message, Details: r.Error.Details}
	}
	for _, at := range attempts {
		out.Attempts = append(out.Attempts, api.Attempt{Number: at.Number, Node: at.NodeID, State: string(at.State), Start: timePtr(at.StartedAt), End: timePtr(at.EndedAt), ExitCode: at.ExitCode, Reason: at.Reason})
	}
	return out
}

func (a *API) getRun(r *http.Request) (run.Run, error) {
	ws, err := a.workspace(r)
	if err != nil {
		return run.Run{}, err
	}
	id := r.PathValue("id")
	if scope := principalOf(r).runScope(); scope != "" && scope != id {
		return run.Run{}, problem.New(problem.Forbidden, "this run token is only valid for run %s", scope)
	}
	rn, err := a.cfg.Store.RunGet(r.Context(), ws, id)
	if errors.Is(err, run.ErrNotFound) {
		return rn, problem.New(problem.NotFound, "run %q not found in workspace %s", id, ws).WithHint("hangar run list")
	}
	return rn, err
}

func (a *API) runGet(w http.ResponseWriter, r *http.Request) error {
	rn, err := a.getRun(r)
	if err != nil {
		return err
	}
	attempts, err := a.cfg.Store.AttemptListByRun(r.Context(), rn.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAPIRun(rn, attempts))
	return nil
}

func (a *API) runList(w http.ResponseWriter, r *http.Request) error {
	ws, err := a.workspace(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := store.RunFilter{Workspace: ws, Experiment: q.Get("experiment"), ComputeName: q.Get("compute"), Limit: 1000}
	if s := q.Get("status"); s != "" {
		for _, part := range strings.Split(s, ",") {
			st, ok := parseStatus(part)
			if !ok {
				return problem.Field("status", "%q is not a run status (one of %s)", part, strings.Join(statusNames(), ", "))
			}
			f.Statuses = append(f.Statuses, st)
		}
	}
	if lim, err := queryInt(r, "limit", 1000); err != nil {
		return err
	} else if lim > 0 {
		f.Limit = int(lim)
	}
	runs, err := a.cfg.Store.RunList(r.Context(), f)
	if err != nil {
		return err
	}
	out := []api.Run{}
	for _, rn := range runs {
		out = append(out, toAPIRun(rn, nil))
	}
	writeJSON(w, http.StatusOK, api.List[api.Run]{Value: out})
	return nil
}

var allStatuses = []run.Status{run.NotStarted, run.Queued, run.Provisioning, run.Preparing, run.Running, run.Finalizing, run.CancelRequested, run.Completed, run.Failed, run.Canceled}

func parseStatus(s string) (run.Status, bool) {
	for _, st := range allStatuses {
		if strings.EqualFold(string(st), strings.TrimSpace(s)) {
			return st, true
		}
	}
	return "", false
}

func statusNames() []string {
	var out []string
	for _, s := range allStatuses {
		out = append(out, string(s))
	}
	return out
}

func (a *API) runCancel(w http.ResponseWriter, r *http.Request) error {
	if err := requireUser(r); err != nil {
		return err
	}
	rn, err := a.getRun(r)
	if err != nil {
		return err
	}
	rn, err = a.cfg.Ctl.CancelRun(r.Context(), rn)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, toAPIRun(rn, nil))
	return nil
}

// runLogs writes the run's log from ?offset=; with ?follow=true it keeps the
// response open, sending new bytes as they arrive, until the run ends.
func (a *API) runLogs(w http.ResponseWriter, r *http.Request) error {
	rn, err := a.getRun(r)
	if err != nil {
		return err
	}
	return a.sendLog(w, r, logSource{
		read: func(ctx context.Context, offset, limit int64) ([]byte, int64, error) {
			data, err := a.cfg.Store.LogReadRange(ctx, rn.ID, offset, limit)
			return data, offset, err
		},
		ended: func(ctx context.Context) (bool, error) {
			now, err := a.cfg.Store.RunGet(ctx, rn.Workspace, rn.ID)
			return now.Status.Terminal(), err
		},
		attrs: []any{"run", rn.ID},
	})
}

func (a *API) runFiles(w http.ResponseWriter, r *http.Request) error {
	rn, err := a.getRun(r)
	if err != nil {
		return err
	}
	dir := a.cfg.Ctl.RunFilesDir(rn.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", rn.ID+".tar.gz"))
	w.WriteHeader(http.StatusOK)
	_, err = snapshot.WriteTree(dir, w, time.Time{})
	if err != nil {
		a.log.ErrorContext(r.Context(), "write run files", "run", rn.ID, "err", err)
	}
	return nil
}

func (a *API) metricList(w http.ResponseWriter, r *http.Request) error {
	rn, err := a.getRun(r)
	if err != nil {
		return err
	}
	ms, err := a.cfg.Store.MetricList(r.Context(), rn.ID)
	if err != nil {
		return err
	}
	out := []api.Metric{}
	for _, m := range ms {
		am := api.Metric{Name: m.Name, Text: m.Text, Step: m.Step, Time: m.Time}
		if m.Text == "" {
			v := m.Value
			am.Value = &v
		}
		out = append(out, am)
	}
	writeJSON(w, http.StatusOK, api.List[api.Metric]{Value: out})
	return nil
}

func (a *API) metricPost(w http.ResponseWriter, r *http.Request) error {
	rn, err := a.getRun(r)
	if err != nil {
		return err
	}
	if principalOf(r).runScope() != "" && rn.Status.Terminal() {
		return problem.New(problem.Unauthorized, "run %s has ended (%s); its run token no longer posts metrics", rn.ID, rn.Status)
	}
	var req api.MetricsPost
	if err := decode(r, &req); err != nil {
		return err
	}
	now := a.cfg.Clock.Now()
	var ms []store.Metric
	if req.Name != "" {
		m, err := metricFrom("", req.Name, req.Value, req.Step, now, rn.ID)
		if err != nil {
			return err
		}
		ms = append(ms, m)
	}
	for i, m := range req.Metrics {
		var val any
		if m.Value != nil {
			val = *m.Value
		} else {
			val = m.Text
		}
		step := m.Step
		sm, err := metricFrom(fmt.Sprintf("metrics[%d].", i), m.Name, val, &step, now, rn.ID)
		if err != nil {
			return err
		}
		ms = append(ms, sm)
	}
	if len(ms) == 0 {
		return problem.Field("name", "is required (post {\"name\": \"accuracy\", \"value\": 0.97})")
	}
	if len(ms) > 1000 {
		return problem.Field("metrics", "at most 1000 metrics per request")
	}
	err = a.cfg.Store.InTx(r.Context(), func(tx store.Store) error {
		for _, m := range ms {
			if err := tx.MetricAdd(r.Context(), m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]int{"stored": len(ms)})
	return nil
}

func metricFrom(prefix, name string, value any, step *int64, now time.Time, runID string) (store.Metric, error) {
	m := store.Metric{RunID: runID, Name: name, Time: now}
	if name == "" || len(name) > 255 {
		return m, problem.Field(prefix+"name", "must be 1 to 255 characters")
	}
	if step != nil {
		m.Step = *step
	}
	switch v := value.(type) {
	case float64:
		m.Value = v
	case string:
		if v == "" {
			return m, problem.Field(prefix+"value", "is required")
		}
		m.Text = v
	case bool:
		if v {
			m.Value = 1
		}
	case nil:
		return m, problem.Field(prefix+"value", "is required")
	default:
		b, _ := json.Marshal(v)
		m.Text = string(b)
	}
	return m, nil
}

// ---- environments ----

func validateEnvironment(e api.EnvironmentSpec, prefix string, needName bool) error {
	var l problem.List
	if needName && !envNameRE.MatchString(e.Name) {
		l.Add(prefix+"name", "%q must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter", e.Name)
	}
	if strings.ContainsAny(e.Python, "\n\x00") {
		l.Add(prefix+"python", "must be a path or command name")
	}
	for i, req := range e.Requirements {
		if strings.TrimSpace(req) == "" {
			l.Add(fmt.Sprintf("%srequirements[%d]", prefix, i), "is empty")
		}
	}
	for k := range e.Variables {
		if !envKeyRE.MatchString(k) {
			l.Add(prefix+"variables."+k, "is not a valid environment variable name")
		} else if strings.HasPrefix(k, "HANGAR_") {
			l.Add(prefix+"variables."+k, "HANGAR_* variables are set by Hangar")
		}
	}
	return l.Err()
}

func (a *API) environmentCreate(w http.ResponseWriter, r *http.Request) error {
	ws, err := a.workspace(r)
	if err != nil {
		return err
	}
	if err := requireUser(r); err != nil {
		return err
	}
	var spec api.EnvironmentSpec
	if err := decode(r, &spec); err != nil {
		return err
	}
	if err := validateEnvironment(spec, "", true); err != nil {
		return err
	}
	raw, _ := json.Marshal(spec)
	env, err := a.cfg.Store.EnvironmentCreate(r.Context(), store.Environment{Workspace: ws, Name: spec.Name, Spec: raw, CreatedAt: a.cfg.Clock.Now()})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toAPIEnv(env))
	return nil
}

func toAPIEnv(e store.Environment) api.Environment {
	var spec api.EnvironmentSpec
	_ = json.Unmarshal(e.Spec, &spec)
	spec.Name = e.Name
	return api.Environment{EnvironmentSpec: spec, Version: e.Version, CreatedOn: e.CreatedAt}
}

func (a *API) environmentList(w http.ResponseWriter, r *http.Request) error {
	ws, err := a.workspace(r)
	if err != nil {
		return err
	}
	envs, err := a.cfg.Store.EnvironmentList(r.Context(), ws)
	if err != nil {
		return err
	}
	out := []api.Environment{}
	for _, e := range envs {
		out = append(out, toAPIEnv(e))
	}
	writeJSON(w, http.StatusOK, api.List[api.Environment]{Value: out})
	return nil
}

func (a *API) environmentGet(w http.ResponseWriter, r *http.Request) error {
	ws, err := a.workspace(r)
	if err != nil {
		return err
	}
	ver, err := queryInt(r, "version", 0)
	if err != nil {
		return err
	}
	e, err := a.cfg.Store.EnvironmentGet(r.Context(), ws, r.PathValue("name"), int(ver))
	if errors.Is(err, store.ErrNotFound) {
		return problem.New(problem.NotFound, "environment %q not found in workspace %s", r.PathValue("name"), ws).WithHint("hangar environment list")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAPIEnv(e))
	return nil
}
