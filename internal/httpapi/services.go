package httpapi

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/internal/ids"
	"github.com/hangar-ml/hangar/internal/model"
	"github.com/hangar-ml/hangar/internal/problem"
	"github.com/hangar-ml/hangar/internal/service"
	"github.com/hangar-ml/hangar/internal/store"
)

// ServiceHooks connects the API to the service manager
// (internal/servicectl), which reconciles service rows into running
// services and removes deleted ones.
type ServiceHooks interface {
	// Wake asks the manager to reconcile soon; it must not block.
	Wake()
	// LogPath is the file the service's log is written to; it need not
	// exist yet.
	LogPath(workspace, name string) string
}

// storeNow is the time in the precision the store keeps (microseconds,
// UTC), so that an answer shows the times a later GET shows.
func (a *API) storeNow() time.Time { return a.cfg.Clock.Now().UTC().Truncate(time.Microsecond) }

// wakeServices wakes the service manager, if there is one.
func (a *API) wakeServices() {
	if a.cfg.Services != nil {
		a.cfg.Services.Wake()
	}
}

// newServiceKey returns a random key for a service's /score.
func newServiceKey() string { return ids.Secret("hsk") }

// Ports picked for services come from below Linux's ephemeral range
// (32768–60999), so outgoing connections do not take a service's port
// while the server is down.
const pickPortMin, pickPortMax = 20000, 32767

func toAPIService(s service.Service) api.Service {
	out := api.Service{
		Name: s.Name, State: string(s.State), AuthEnabled: s.AuthEnabled, Models: []api.ServiceModel{}, Workers: s.Workers,
		Error: s.Error, Target: s.Target, Port: s.Port, EntryScript: s.EntryScript, SourceDigest: s.SourceDigest,
		Python: s.Python, Environment: s.Environment, Env: s.EnvVars, RequestTimeoutSeconds: int(s.RequestTimeout / time.Second),
		CreatedBy: s.CreatedBy, CreatedOn: s.CreatedAt, UpdatedOn: s.UpdatedAt,
		Generation: s.Generation, ObservedGeneration: s.ObservedGeneration, DeleteRequested: s.DeleteRequested,
	}
	if s.Port != 0 {
		out.ScoringURI = fmt.Sprintf("http://127.0.0.1:%d/score", s.Port)
		out.SwaggerURI = fmt.Sprintf("http://127.0.0.1:%d/swagger.json", s.Port)
	}
	for _, m := range s.Models {
		out.Models = append(out.Models, api.ServiceModel{Name: m.Name, Version: m.Version})
	}
	return out
}

// serviceDeploy validates a deployment completely before any side effect,
// then creates the service (Generation 1, Transitioning, two new keys) or,
// with overwrite, updates it (Generation+1, keys and port kept), and wakes
// the manager. The row stays Transitioning until the manager writes status.
func (a *API) serviceDeploy(w http.ResponseWriter, r *http.Request) error {
	ws, err := a.workspace(r)
	if err != nil {
		return err
	}
	if err := requireUser(r); err != nil {
		return err
	}
	var req api.ServiceDeploy
	if err := decode(r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	now := a.storeNow()

	var l problem.List
	var existing *service.Service
	if p := service.ValidateName(req.Name); p != nil {
		l.AddErr(p)
	} else if s, err := a.cfg.Store.ServiceGet(ctx, ws, req.Name); err == nil {
		existing = &s
	} else if !errors.Is(err, service.ErrNotFound) {
		return err
	}
	target := req.Target
	if target == "" {
		target = service.TargetLocal
	}
	if target != service.TargetLocal {
		l.Add("target", "%q is not a deployment target; available targets: %s", req.Target, strings.Join(service.Targets, ", "))
	}
	workers := req.Workers
	if workers == 0 {
		workers = 1
	}
	checkWorkers(&l, workers)
	timeout := time.Duration(req.RequestTimeoutSeconds) * time.Second
	if req.RequestTimeoutSeconds == 0 {
		timeout = service.DefaultRequestTimeout
	}
	checkTimeout(&l, req.RequestTimeoutSeconds, req.RequestTimeoutSeconds == 0)
	auth := parseAuth(&l, req.Auth)
	refs, err := a.resolveModels(ctx, ws, req.Models, &l)
	if err != nil {
		return err
	}
	if err := a.checkEntryScript(req.SourceDigest, req.EntryScript, &l); err != nil {
		return err
	}
	checkVars(&l, "env", req.Env)
	checkPython(&l, req.Python)
	spec, label, err := a.resolveEnvironment(ctx, ws, req.Environment, req.EnvironmentSpec, &l)
	if err != nil {
		return err
	}
	if err := a.checkPort(ctx, ws, req.Name, req.Port, existing, &l); err != nil {
		return err
	}
	if err := l.Err(); err != nil {
		return err
	}
	if existing != nil && existing.DeleteRequested {
		return problem.New(problem.Conflict, "service %q is being deleted; deploy it again once it is gone", req.Name).WithField("name").
			WithHint("hangar service show " + req.Name)
	}
	if existing != nil && !req.Overwrite {
		return problem.New(problem.Conflict, "a service named %q already exists in workspace %s", req.Name, ws).WithField("name").
			WithHint("deploy again with --overwrite to replace it, or: hangar service update " + req.Name)
	}

	var s service.Service
	if existing != nil {
		s = *existing
		s.Generation++
	} else {
		s = service.Service{
			Workspace: ws, Name: req.Name, Generation: 1, State: service.Transitioning,
			PrimaryKey: newServiceKey(), SecondaryKey: newServiceKey(),
			CreatedBy: principalOf(r).token.Name, CreatedAt: now,
		}
	}
	s.Target, s.Models, s.EntryScript, s.SourceDigest = target, refs, path.Clean(req.EntryScript), req.SourceDigest
	s.Workers, s.AuthEnabled, s.RequestTimeout, s.UpdatedAt = workers, auth == "key", timeout, now
	applyEnvironment(&s, spec, label, req.Python, req.Env)
	picked := false
	switch {
	case req.Port != 0:
		s.Port = req.Port
	case existing == nil:
		if s.Port, err = a.pickPort(ctx); err != nil {
			return err
		}
		picked = true
	}
	for attempt := 0; ; attempt++ {
		if existing != nil {
			err = a.cfg.Store.ServiceUpdate(ctx, s)
		} else {
			err = a.cfg.Store.ServiceCreate(ctx, s)
		}
		if !errors.Is(err, store.ErrConflict) {
			break
		}
		// Another deploy took the name or the port since validation.
		if _, gerr := a.cfg.Store.ServiceGet(ctx, ws, s.Name); gerr == nil && existing == nil {
			return problem.New(problem.Conflict, "a service named %q was just created in workspace %s", s.Name, ws).WithField("name")
		}
		if !picked || attempt == 3 {
			return problem.Field("port", "%d was just taken by another service; choose another port", s.Port)
		}
		if s.Port, err = a.pickPort(ctx); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	a.wakeServices()
	writeJSON(w, http.StatusAccepted, toAPIService(s))
	return nil
}

// applyEnvironment sets the interpreter, requirements and variables of s
// from an environment spec (nil: none), the python given (which wins over
// the environment's) and the variables given (which win over its
// variables).
func applyEnvironment(s *service.Service, spec *api.EnvironmentSpec, label, python string, given map[string]string) {
	s.Environment, s.Python, s.Requirements, s.EnvironmentVariables = label, python, nil, nil
	vars := map[string]string{}
	if spec != nil {
		if s.Python == "" {
			s.Python = spec.Python
		}
		s.Requirements, s.EnvironmentVariables = spec.Requirements, spec.Variables
		for k, v := range spec.Variables {
			vars[k] = v
		}
	}
	for k, v := range given {
		vars[k] = v
	}
	s.EnvVars = vars
}

// givenVars returns the variables of s that were given with a deploy or
// update rather than taken from its environment.
func givenVars(s service.Service) map[string]string {
	out := map[string]string{}
	for k, v := range s.EnvVars {
		if ev, ok := s.EnvironmentVariables[k]; !ok || ev != v {
			out[k] = v
		}
	}
	return out
}

func checkWorkers(l *problem.List, n int) {
	if n < 1 || n > service.MaxWorkers {
		l.Add("workers", "(%d) must be between 1 and %d", n, service.MaxWorkers)
	}
}

func checkTimeout(l *problem.List, secs int, absent bool) {
	if !absent && (secs < 1 || time.Duration(secs)*time.Second > service.MaxRequestTimeout) {
		l.Add("request_timeout_seconds", "(%d) must be between 1 and %d seconds", secs, int(service.MaxRequestTimeout/time.Second))
	}
}

// parseAuth returns "key" or "none" ("" means none, the local default, as
// in Azure ML).
func parseAuth(l *problem.List, auth string) string {
	switch strings.ToLower(auth) {
	case "", "none":
		return "none"
	case "key":
		return "key"
	}
	l.Add("auth", "%q must be key or none", auth)
	return "none"
}

func checkPython(l *problem.List, python string) {
	if strings.ContainsAny(python, "\n\x00") {
		l.Add("python", "must be a path or command name")
	}
}

// checkVars checks variable names as run submit does.
func checkVars(l *problem.List, field string, vars map[string]string) {
	for k := range vars {
		if !envKeyRE.MatchString(k) {
			l.Add(field+"."+k, "is not a valid environment variable name (letters, digits, '_', not starting with a digit)")
		} else if strings.HasPrefix(k, "HANGAR_") {
			l.Add(field+"."+k, "HANGAR_* variables are set by Hangar and cannot be overridden")
		}
	}
}

// resolveModels turns "name" (the latest version) and "name:version" into
// model versions that exist.
func (a *API) resolveModels(ctx context.Context, ws string, refs []string, l *problem.List) ([]service.ModelRef, error) {
	if len(refs) == 0 {
		l.Add("models", "give at least one model: NAME (its latest version) or NAME:VERSION")
		return nil, nil
	}
	var out []service.ModelRef
	seen := map[service.ModelRef]bool{}
	for _, ref := range refs {
		name, version, err := model.ParseRef(ref)
		if err != nil {
			l.Add("models", "%v", err)
			continue
		}
		m, err := a.cfg.Store.ModelGet(ctx, ws, name, version)
		if errors.Is(err, model.ErrNotFound) {
			l.AddErr(problem.Field("models", "model %s not found in workspace %s", ref, ws).WithHint("hangar model list"))
			continue
		}
		if err != nil {
			return nil, err
		}
		mr := service.ModelRef{Name: m.Name, Version: m.Version}
		if seen[mr] {
			l.Add("models", "%s:%d is given twice", m.Name, m.Version)
			continue
		}
		seen[mr] = true
		out = append(out, mr)
	}
	return out, nil
}

// checkEntryScript checks the source snapshot is stored and holds the
// entry script, a .py file.
func (a *API) checkEntryScript(digest, script string, l *problem.List) error {
	scriptOK := false
	switch clean := path.Clean(script); {
	case script == "":
		l.Add("entry_script", "is required: the scoring script with init() and run(), e.g. score.py")
	case !strings.HasSuffix(script, ".py"):
		l.Add("entry_script", "%q must be a Python file ending in .py", script)
	case path.IsAbs(script) || clean == ".." || strings.HasPrefix(clean, "../"):
		l.Add("entry_script", "%q must be a path inside the source directory", script)
	default:
		scriptOK = true
	}
	switch {
	case digest == "":
		l.Add("source_digest", "is required (upload the source snapshot to /blobs first)")
	case !a.cfg.Blobs.Has(digest):
		l.Add("source_digest", "blob %s is not stored; upload it first", digest)
	case scriptOK:
		ok, err := a.snapshotHas(digest, script)
		if p, isP := problem.As(err); isP {
			p.Field = "source_digest"
			l.AddErr(p)
		} else if err != nil {
			return err
		} else if !ok {
			l.Add("entry_script", "%s is not in the source snapshot (check --source-dir and ignore files)", script)
		}
	}
	return nil
}

// checkPort checks a port given for service name: in range, not another
// service's, and free on 127.0.0.1 now (unless it is the service's own
// port, which its workers may hold). 0 is checked by pickPort later.
func (a *API) checkPort(ctx context.Context, ws, name string, port int, self *service.Service, l *problem.List) error {
	if port == 0 {
		return nil
	}
	if port < service.MinPort || port > service.MaxPort {
		l.Add("port", "(%d) must be between %d and %d, or 0 to pick a free port", port, service.MinPort, service.MaxPort)
		return nil
	}
	all, err := a.cfg.Store.ServiceListAll(ctx)
	if err != nil {
		return err
	}
	for _, s := range all {
		if s.Port == port && (s.Workspace != ws || s.Name != name) {
			other := s.Name
			if s.Workspace != ws {
				other = fmt.Sprintf("%s (workspace %s)", s.Name, s.Workspace)
			}
			l.AddErr(problem.Field("port", "%d is used by service %s", port, other).WithHint("leave out --port to pick a free one"))
			return nil
		}
	}
	if self != nil {
		if self.Port == port {
			return nil
		}
		// A running service cannot move without dropping its clients.
		l.AddErr(problem.Field("port", "service %s serves on port %d; a service keeps its port (asked for %d)", name, self.Port, port).
			WithHint(fmt.Sprintf("leave out --port, or delete %s and deploy it again on the new port", name)))
		return nil
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		l.AddErr(problem.Field("port", "%d is not free on 127.0.0.1 (%v)", port, unwrapNetErr(err)).WithHint("leave out --port to pick a free one"))
		return nil
	}
	ln.Close()
	return nil
}

// unwrapNetErr drops the "listen tcp 127.0.0.1:N:" prefix.
func unwrapNetErr(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// pickPort returns a port free on 127.0.0.1 and used by no service.
func (a *API) pickPort(ctx context.Context) (int, error) {
	all, err := a.cfg.Store.ServiceListAll(ctx)
	if err != nil {
		return 0, err
	}
	used := map[int]bool{}
	for _, s := range all {
		used[s.Port] = true
	}
	for range 100 {
		port := pickPortMin + rand.IntN(pickPortMax-pickPortMin+1)
		if used[port] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	return 0, errors.New("no free port for the service on 127.0.0.1")
}

func (a *API) getService(r *http.Request) (service.Service, error) {
	ws, err := a.workspace(r)
	if err != nil {
		return service.Service{}, err
	}
	name := r.PathValue("name")
	s, err := a.cfg.Store.ServiceGet(r.Context(), ws, name)
	if errors.Is(err, service.ErrNotFound) {
		return s, problem.New(problem.NotFound, "service %q not found in workspace %s", name, ws).WithField("name").WithHint("hangar service list")
	}
	return s, err
}

func (a *API) serviceGet(w http.ResponseWriter, r *http.Request) error {
	s, err := a.getService(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAPIService(s))
	return nil
}

func (a *API) serviceList(w http.ResponseWriter, r *http.Request) error {
	ws, err := a.workspace(r)
	if err != nil {
		return err
	}
	ss, err := a.cfg.Store.ServiceList(r.Context(), ws)
	if err != nil {
		return err
	}
	out := []api.Service{}
	for _, s := range ss {
		out = append(out, toAPIService(s))
	}
	writeJSON(w, http.StatusOK, api.List[api.Service]{Value: out})
	return nil
}

// serviceUpdate changes what is given (validated as for a deploy), bumps
// the generation and wakes the manager.
func (a *API) serviceUpdate(w http.ResponseWriter, r *http.Request) error {
	if err := requireUser(r); err != nil {
		return err
	}
	s, err := a.getService(r)
	if err != nil {
		return err
	}
	var up api.ServiceUpdate
	if err := decode(r, &up); err != nil {
		return err
	}
	if s.DeleteRequested {
		return problem.New(problem.Conflict, "service %q is being deleted", s.Name).WithHint("hangar service show " + s.Name)
	}
	ctx := r.Context()
	var l problem.List
	changed := false
	if up.Models != nil {
		refs, err := a.resolveModels(ctx, s.Workspace, up.Models, &l)
		if err != nil {
			return err
		}
		s.Models, changed = refs, true
	}
	if up.EntryScript != nil || up.SourceDigest != nil {
		if up.EntryScript != nil {
			s.EntryScript = *up.EntryScript
		}
		if up.SourceDigest != nil {
			s.SourceDigest = *up.SourceDigest
		}
		if err := a.checkEntryScript(s.SourceDigest, s.EntryScript, &l); err != nil {
			return err
		}
		s.EntryScript, changed = path.Clean(s.EntryScript), true
	}
	if up.Workers != nil {
		checkWorkers(&l, *up.Workers)
		s.Workers, changed = *up.Workers, true
	}
	if up.Auth != nil {
		s.AuthEnabled, changed = parseAuth(&l, *up.Auth) == "key", true
	}
	if up.RequestTimeoutSeconds != nil {
		checkTimeout(&l, *up.RequestTimeoutSeconds, false)
		s.RequestTimeout, changed = time.Duration(*up.RequestTimeoutSeconds)*time.Second, true
	}
	if up.Env != nil || up.Python != nil || up.Environment != nil || up.EnvironmentSpec != nil {
		given := givenVars(s)
		if up.Env != nil {
			checkVars(&l, "env", up.Env)
			given = up.Env
		}
		// Without a new environment the current one stays; its python is
		// already in s.Python unless one was given.
		spec := &api.EnvironmentSpec{Requirements: s.Requirements, Variables: s.EnvironmentVariables}
		label, python := s.Environment, s.Python
		if up.Environment != nil || up.EnvironmentSpec != nil {
			ref := ""
			if up.Environment != nil {
				ref = *up.Environment
			}
			if spec, label, err = a.resolveEnvironment(ctx, s.Workspace, ref, up.EnvironmentSpec, &l); err != nil {
				return err
			}
			python = ""
		}
		if up.Python != nil {
			checkPython(&l, *up.Python)
			python = *up.Python
		}
		applyEnvironment(&s, spec, label, python, given)
		changed = true
	}
	if err := l.Err(); err != nil {
		return err
	}
	if !changed {
		return problem.New(problem.BadRequest, "nothing to update: give at least one of models, entry_script, source_digest, workers, auth, request_timeout_seconds, python, environment, environment_spec, env")
	}
	s.Generation++
	s.UpdatedAt = a.storeNow()
	if err := a.cfg.Store.ServiceUpdate(ctx, s); err != nil {
		return err
	}
	a.wakeServices()
	writeJSON(w, http.StatusAccepted, toAPIService(s))
	return nil
}

// serviceDelete asks the manager to stop the service; the manager removes
// the row once its workers have stopped and its port is free. Deleting a
// service being deleted is harmless.
func (a *API) serviceDelete(w http.ResponseWriter, r *http.Request) error {
	if err := requireUser(r); err != nil {
		return err
	}
	s, err := a.getService(r)
	if err != nil {
		return err
	}
	if !s.DeleteRequested {
		s.DeleteRequested, s.UpdatedAt = true, a.storeNow()
		if err := a.cfg.Store.ServiceUpdate(r.Context(), s); err != nil {
			return err
		}
	}
	a.wakeServices()
	writeJSON(w, http.StatusAccepted, toAPIService(s))
	return nil
}

// serviceLogs writes the service's log from ?offset=; with ?follow=true it
// keeps the response open, sending new bytes as they arrive, until the
// client goes away or the service is gone. A log that does not exist yet
// is empty; one that shrank (rewritten) is sent again from its start.
func (a *API) serviceLogs(w http.ResponseWriter, r *http.Request) error {
	s, err := a.getService(r)
	if err != nil {
		return err
	}
	logPath := ""
	if a.cfg.Services != nil {
		logPath = a.cfg.Services.LogPath(s.Workspace, s.Name)
	}
	return a.sendLog(w, r, logSource{
		read: func(_ context.Context, offset, limit int64) ([]byte, int64, error) {
			return readLogFile(logPath, offset, limit)
		},
		ended: func(ctx context.Context) (bool, error) {
			_, err := a.cfg.Store.ServiceGet(ctx, s.Workspace, s.Name)
			return err != nil, err
		},
		attrs: []any{"service", s.Name},
	})
}

// serviceKeys returns the keys of a service's /score. Run tokens are
// refused (the wrapper refuses them on every route without their run's id;
// this says so again where it matters). Restricting it to owners and
// contributors, and auditing each read, come with users and roles.
func (a *API) serviceKeys(w http.ResponseWriter, r *http.Request) error {
	if err := requireUser(r); err != nil {
		return err
	}
	s, err := a.getService(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.ServiceKeys{PrimaryKey: s.PrimaryKey, SecondaryKey: s.SecondaryKey})
	return nil
}

// serviceRegenKey replaces one key. The generation stays: the manager
// pushes the keys of every pass to the running service.
func (a *API) serviceRegenKey(w http.ResponseWriter, r *http.Request) error {
	if err := requireUser(r); err != nil {
		return err
	}
	s, err := a.getService(r)
	if err != nil {
		return err
	}
	var req api.RegenKey
	if err := decode(r, &req); err != nil {
		return err
	}
	switch strings.ToLower(req.Key) {
	case "primary":
		s.PrimaryKey = newServiceKey()
	case "secondary":
		s.SecondaryKey = newServiceKey()
	default:
		return problem.Field("key", "%q must be primary or secondary", req.Key)
	}
	s.UpdatedAt = a.storeNow()
	if err := a.cfg.Store.ServiceUpdate(r.Context(), s); err != nil {
		return err
	}
	a.wakeServices()
	writeJSON(w, http.StatusOK, api.ServiceKeys{PrimaryKey: s.PrimaryKey, SecondaryKey: s.SecondaryKey})
	return nil
}
