// Package servicectl runs the services the store says should run. Its loop
// (Run) is level-triggered like the compute controller: every pass reads
// every service row and brings the local runtime (internal/serving) to it:
// start what should serve, update what changed (a new generation starts
// beside the old one and replaces it only once its init() returned, so a
// broken update keeps the previous version serving), push keys, stop and
// forget what was deleted, and write back state and error.
//
// Services run inside the server process: a restarted server (even after
// kill -9, which also takes the workers down with it through Pdeathsig)
// brings every service back on its recorded port.
package servicectl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hangar-ml/hangar/internal/blob"
	"github.com/hangar-ml/hangar/internal/clock"
	"github.com/hangar-ml/hangar/internal/pyreq"
	"github.com/hangar-ml/hangar/internal/service"
	"github.com/hangar-ml/hangar/internal/serving"
	"github.com/hangar-ml/hangar/internal/snapshot"
	"github.com/hangar-ml/hangar/internal/store"
)

// Config wires the manager.
type Config struct {
	Store store.Store
	Blobs *blob.Store
	// DataDir holds services/<workspace>/<name>/ (generations and the log).
	DataDir string
	// PythonPath is prepended to the workers' PYTHONPATH (the embedded SDK).
	PythonPath string
	Logger     *slog.Logger
	Clock      clock.Clock
}

// Manager reconciles service rows into running services.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}

	mu      sync.Mutex
	running map[string]*instance // key workspace/name
}

// instance is a service runtime and what it was started from.
type instance struct {
	svc        *serving.Service
	generation int64 // generation serving now
	// busy is set while a start or update is in flight.
	busy bool
}

// New returns a manager; it starts nothing until Run.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	return &Manager{cfg: cfg, log: cfg.Logger.With("component", "servicectl"), wake: make(chan struct{}, 1), running: map[string]*instance{}}
}

// Wake asks for a pass soon.
func (m *Manager) Wake() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func key(ws, name string) string { return ws + "/" + name }

// Dir is where a service's files live.
func (m *Manager) Dir(ws, name string) string {
	return filepath.Join(m.cfg.DataDir, "services", ws, name)
}

// LogPath is the service's log: worker output, tracebacks, lifecycle lines.
func (m *Manager) LogPath(ws, name string) string {
	return filepath.Join(m.Dir(ws, name), "service.log")
}

// Run reconciles until ctx ends, then stops every service (they come back
// when the server starts again).
func (m *Manager) Run(ctx context.Context) error {
	for {
		if err := m.RunOnce(ctx); err != nil && ctx.Err() == nil {
			m.log.ErrorContext(ctx, "service pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			m.stopAll()
			return nil
		case <-m.wake:
		case <-m.cfg.Clock.After(2 * time.Second):
		}
	}
}

func (m *Manager) stopAll() {
	m.mu.Lock()
	inst := m.running
	m.running = map[string]*instance{}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, in := range inst {
		if in.svc == nil {
			continue
		}
		wg.Add(1)
		go func(s *serving.Service) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			_ = s.Stop(ctx)
		}(in.svc)
	}
	wg.Wait()
}

// RunOnce is one pass over every service.
func (m *Manager) RunOnce(ctx context.Context) error {
	rows, err := m.cfg.Store.ServiceListAll(ctx)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, s := range rows {
		k := key(s.Workspace, s.Name)
		want[k] = true
		if s.DeleteRequested {
			if err := m.remove(ctx, s); err != nil {
				m.log.ErrorContext(ctx, "delete service", "service", k, "err", err)
			}
			continue
		}
		m.reconcile(ctx, s)
	}
	// Anything running without a row (deleted behind our back) stops.
	m.mu.Lock()
	var stale []*instance
	for k, in := range m.running {
		if !want[k] && !in.busy {
			stale = append(stale, in)
			delete(m.running, k)
		}
	}
	m.mu.Unlock()
	for _, in := range stale {
		if in.svc != nil {
			_ = in.svc.Stop(ctx)
		}
	}
	return nil
}

// reconcile brings one service to its row.
func (m *Manager) reconcile(ctx context.Context, s service.Service) {
	k := key(s.Workspace, s.Name)
	m.mu.Lock()
	in, ok := m.running[k]
	if ok && in.busy {
		m.mu.Unlock()
		return
	}
	if !ok {
		in = &instance{}
		m.running[k] = in
	}
	switch {
	case in.svc == nil:
		if s.State == service.Failed && s.ObservedGeneration == s.Generation {
			m.mu.Unlock()
			return // failed for this generation; a new deploy/update retries
		}
		in.busy = true
		m.mu.Unlock()
		if s.Error != "" && s.ObservedGeneration == s.Generation {
			// The last update failed while an older generation served:
			// bring back that one, not the broken spec.
			if served, ok := m.readServed(s); ok && served.Generation < s.Generation {
				go m.start(served, in, true)
				return
			}
		}
		go m.start(s, in, false)
	case in.generation < s.Generation && s.ObservedGeneration < s.Generation:
		in.busy = true
		m.mu.Unlock()
		go m.update(s, in)
	default:
		svc := in.svc
		m.mu.Unlock()
		svc.SetKeys(s.AuthEnabled, s.PrimaryKey, s.SecondaryKey)
		st := svc.Status()
		if state := service.State(st.State); state != s.State && s.ObservedGeneration == s.Generation {
			m.setStatus(ctx, s, s.Generation, state, st.Error)
		}
	}
}

// prepare lays out generation gen of a service: its source and its models.
func (m *Manager) prepare(ctx context.Context, s service.Service) (serving.PoolConfig, error) {
	dir := filepath.Join(m.Dir(s.Workspace, s.Name), fmt.Sprintf("g%d", s.Generation))
	if err := os.RemoveAll(dir); err != nil {
		return serving.PoolConfig{}, err
	}
	src := filepath.Join(dir, "src")
	if err := m.extract(s.SourceDigest, src); err != nil {
		return serving.PoolConfig{}, fmt.Errorf("source snapshot: %w", err)
	}
	models := filepath.Join(dir, "models")
	modelDir := models
	for _, ref := range s.Models {
		mdl, err := m.cfg.Store.ModelGet(ctx, s.Workspace, ref.Name, ref.Version)
		if err != nil {
			return serving.PoolConfig{}, fmt.Errorf("model %s:%d: %w", ref.Name, ref.Version, err)
		}
		vdir := filepath.Join(models, ref.Name, fmt.Sprint(ref.Version))
		if err := m.extract(mdl.Digest, vdir); err != nil {
			return serving.PoolConfig{}, fmt.Errorf("model %s:%d files: %w", ref.Name, ref.Version, err)
		}
		if len(s.Models) == 1 {
			modelDir = vdir // one model: its version folder, as in Azure ML
		}
	}
	env := map[string]string{}
	for k, v := range s.EnvVars {
		env[k] = v
	}
	if m.cfg.PythonPath != "" {
		env["PYTHONPATH"] = strings.Trim(m.cfg.PythonPath+string(os.PathListSeparator)+env["PYTHONPATH"], string(os.PathListSeparator))
	}
	env["HANGAR_SERVICE_NAME"] = s.Name
	env["HANGAR_WORKSPACE"] = s.Workspace
	python := s.Python
	if python == "" {
		python = "python3"
	}
	if len(s.Requirements) > 0 {
		if err := pyreq.Check(ctx, python, os.Environ(), src, s.Requirements); err != nil {
			return serving.PoolConfig{}, err
		}
	}
	return serving.PoolConfig{
		Python:      python,
		SourceDir:   src,
		EntryScript: s.EntryScript,
		ModelDir:    modelDir,
		Env:         env,
		Workers:     max(s.Workers, 1),
	}, nil
}

func (m *Manager) extract(digest, dir string) error {
	rc, err := m.cfg.Blobs.Open(digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return snapshot.Extract(rc, dir)
}

func (m *Manager) config(s service.Service, pool serving.PoolConfig) serving.Config {
	timeout := s.RequestTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	return serving.Config{
		Name:           s.Name,
		Addr:           fmt.Sprintf("127.0.0.1:%d", s.Port),
		Pool:           pool,
		AuthEnabled:    s.AuthEnabled,
		PrimaryKey:     s.PrimaryKey,
		SecondaryKey:   s.SecondaryKey,
		RequestTimeout: timeout,
		LogPath:        m.LogPath(s.Workspace, s.Name),
		Logger:         m.cfg.Logger,
		Clock:          m.cfg.Clock,
	}
}

// start launches a service that is not running and waits for it to settle.
// restoring is set when s is the last generation that served, brought back
// after a restart because a newer update had failed: the row's status (the
// failed update's error) is then left as it is.
func (m *Manager) start(s service.Service, in *instance, restoring bool) {
	ctx := context.Background()
	k := key(s.Workspace, s.Name)
	defer m.Wake()
	m.logLine(s, "starting generation %d (%d worker(s), port %d)", s.Generation, max(s.Workers, 1), s.Port)
	if s.State != service.Transitioning && !restoring {
		m.setStatus(ctx, s, s.ObservedGeneration, service.Transitioning, "")
	}
	fail := func(err error) {
		m.logLine(s, "generation %d failed: %v", s.Generation, err)
		if !restoring {
			m.setStatus(ctx, s, s.Generation, service.Failed, err.Error())
		}
		m.mu.Lock()
		in.busy = false
		if m.running[k] == in {
			delete(m.running, k)
		}
		m.mu.Unlock()
	}
	pool, err := m.prepare(ctx, s)
	if err != nil {
		fail(err)
		return
	}
	svc, err := serving.Start(ctx, m.config(s, pool))
	if err != nil {
		fail(err)
		return
	}
	st := svc.WaitSettled(ctx)
	if service.State(st.State) == service.Failed {
		_ = svc.Stop(ctx)
		fail(errors.New(st.Error))
		return
	}
	m.mu.Lock()
	in.svc, in.generation, in.busy = svc, s.Generation, false
	m.mu.Unlock()
	m.logLine(s, "generation %d is %s on port %d", s.Generation, st.State, svc.Port())
	m.recordServed(s)
	if restoring {
		return // the row keeps the failed update's error
	}
	m.setStatus(ctx, s, s.Generation, service.State(st.State), "")
}

// served is what a service last served successfully; it survives restarts
// so that a failed update never becomes what comes back.
func (m *Manager) servedPath(s service.Service) string {
	return filepath.Join(m.Dir(s.Workspace, s.Name), "served.json")
}

func (m *Manager) recordServed(s service.Service) {
	data, err := json.Marshal(s)
	if err != nil {
		return
	}
	tmp := m.servedPath(s) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		m.log.Error("record served generation", "service", s.Name, "err", err)
		return
	}
	if err := os.Rename(tmp, m.servedPath(s)); err != nil {
		m.log.Error("record served generation", "service", s.Name, "err", err)
		return
	}
	// Older generations' files are no longer needed.
	dirs, _ := filepath.Glob(filepath.Join(m.Dir(s.Workspace, s.Name), "g*"))
	for _, d := range dirs {
		if filepath.Base(d) != fmt.Sprintf("g%d", s.Generation) {
			_ = os.RemoveAll(d)
		}
	}
}

func (m *Manager) readServed(s service.Service) (service.Service, bool) {
	data, err := os.ReadFile(m.servedPath(s))
	if err != nil {
		return service.Service{}, false
	}
	var served service.Service
	if err := json.Unmarshal(data, &served); err != nil || served.Name != s.Name {
		return service.Service{}, false
	}
	// Keys and auth always come from the row: a regenerated key applies.
	served.AuthEnabled, served.PrimaryKey, served.SecondaryKey = s.AuthEnabled, s.PrimaryKey, s.SecondaryKey
	return served, true
}

// update replaces a running service's workers with a new generation; if
// the new init() fails, the previous generation keeps serving and the error
// is recorded against the new generation.
func (m *Manager) update(s service.Service, in *instance) {
	ctx := context.Background()
	defer m.Wake()
	m.logLine(s, "updating to generation %d", s.Generation)
	done := func() {
		m.mu.Lock()
		in.busy = false
		m.mu.Unlock()
	}
	pool, err := m.prepare(ctx, s)
	if err == nil {
		in.svc.SetKeys(s.AuthEnabled, s.PrimaryKey, s.SecondaryKey)
		err = in.svc.Update(ctx, pool)
	}
	if err != nil {
		msg := fmt.Sprintf("update to generation %d failed; generation %d keeps serving: %v", s.Generation, in.generation, err)
		m.logLine(s, "%s", msg)
		m.setStatus(ctx, s, s.Generation, service.State(in.svc.Status().State), msg)
		done()
		return
	}
	in.svc.SetRequestTimeout(s.RequestTimeout)
	m.mu.Lock()
	in.generation = s.Generation
	m.mu.Unlock()
	m.recordServed(s)
	m.logLine(s, "generation %d is serving", s.Generation)
	m.setStatus(ctx, s, s.Generation, service.State(in.svc.Status().State), "")
	done()
}

// remove stops a deleted service, frees its port and forgets it.
func (m *Manager) remove(ctx context.Context, s service.Service) error {
	k := key(s.Workspace, s.Name)
	m.mu.Lock()
	in, ok := m.running[k]
	if ok && in.busy {
		m.mu.Unlock()
		return nil // finish the start/update first; the next pass deletes
	}
	delete(m.running, k)
	m.mu.Unlock()
	if ok && in.svc != nil {
		if err := in.svc.Stop(ctx); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(m.Dir(s.Workspace, s.Name)); err != nil {
		return err
	}
	return m.cfg.Store.ServiceDelete(ctx, s.Workspace, s.Name)
}

func (m *Manager) setStatus(ctx context.Context, s service.Service, gen int64, state service.State, msg string) {
	if err := m.cfg.Store.ServiceSetStatus(ctx, s.Workspace, s.Name, gen, state, msg, m.cfg.Clock.Now()); err != nil && !errors.Is(err, service.ErrNotFound) {
		m.log.ErrorContext(ctx, "write service status", "service", s.Name, "err", err)
	}
}

// logLine appends a lifecycle line to the service log.
func (m *Manager) logLine(s service.Service, format string, args ...any) {
	path := m.LogPath(s.Workspace, s.Name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s hangar: %s\n", m.cfg.Clock.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
}
