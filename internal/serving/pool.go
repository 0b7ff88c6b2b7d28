package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// parentEnv is the allow-list of the server's environment passed to
// workers. It includes the machine's numeric-library settings: some hosts
// set OPENBLAS_CORETYPE because older OpenBLAS builds compute wrong results
// or crash on their processor.
var parentEnv = []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER",
	"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}

// singleThreaded are numeric-library thread counts each worker gets unless
// the parent or the service sets them: W worker processes already use the
// cores, and per-process thread pools would only fight over them.
var singleThreaded = []string{"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}

const (
	restartBackoffMin = time.Second
	restartBackoffMax = 30 * time.Second
)

// pool is the W workers started from one PoolConfig; gen numbers it ("pool N"
// in the log, the runtime's own counter, not the service's generation).
type pool struct {
	s        *Service
	gen      int64
	cfg      PoolConfig // defaults applied, SourceDir absolute
	python   string
	env      []string
	n        int
	maxQueue int

	ctx    context.Context // ended by retire, kill or Stop: aborts starts and restarts
	cancel context.CancelFunc

	tail lineRing // last lines of output and events, for error messages

	mu         sync.Mutex
	drained    sync.Cond // broadcast when busy drops to 0 while retiring
	slots      []*worker // the current worker of each slot (nil before its first start)
	spawned    []*worker // every process started, for kill and reaping
	pending    callQueue // calls waiting for a worker, oldest first
	busy       int       // calls assigned to workers and not answered
	up         int       // usable workers
	down       int       // slots whose restart failed and is retried
	retiring   bool
	restartErr string
}

// newPool checks pc and prepares a pool; no process starts.
func (s *Service) newPool(pc PoolConfig, gen int64) (*pool, error) {
	if pc.Workers <= 0 {
		pc.Workers = DefaultWorkers
	}
	if pc.InitTimeout <= 0 {
		pc.InitTimeout = DefaultInitTimeout
	}
	var problems []string
	if pc.SourceDir == "" {
		problems = append(problems, "source dir is empty")
	} else {
		abs, err := filepath.Abs(pc.SourceDir)
		if err != nil {
			problems = append(problems, err.Error())
		} else if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			problems = append(problems, fmt.Sprintf("source dir %s is not a directory", pc.SourceDir))
		}
		pc.SourceDir = abs
	}
	if pc.EntryScript == "" {
		problems = append(problems, "entry script is empty")
	} else if pc.SourceDir != "" {
		if fi, err := os.Stat(filepath.Join(pc.SourceDir, pc.EntryScript)); err != nil || fi.IsDir() {
			problems = append(problems, fmt.Sprintf("entry script %s not found in %s", pc.EntryScript, pc.SourceDir))
		}
	}
	if pc.ModelDir != "" {
		if abs, err := filepath.Abs(pc.ModelDir); err == nil {
			pc.ModelDir = abs
		}
	}
	python := pc.Python
	if python == "" {
		python = "python3"
	}
	path, err := exec.LookPath(python)
	if err != nil {
		problems = append(problems, fmt.Sprintf("python interpreter %s not found: %v", python, err))
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	maxQueue := s.cfg.MaxQueue
	switch {
	case maxQueue == 0:
		maxQueue = DefaultQueuePerWorker * pc.Workers
	case maxQueue < 0:
		maxQueue = 0
	}
	p := &pool{
		s:        s,
		gen:      gen,
		cfg:      pc,
		python:   path,
		env:      workerEnv(pc),
		n:        pc.Workers,
		maxQueue: maxQueue,
		slots:    make([]*worker, pc.Workers),
	}
	p.drained.L = &p.mu
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p, nil
}

// workerEnv is the workers' environment: the parent's allow-listed
// variables, then pc.Env, then the model dir variables.
func workerEnv(pc PoolConfig) []string {
	m := make(map[string]string)
	for _, k := range parentEnv {
		if v, ok := os.LookupEnv(k); ok {
			m[k] = v
		}
	}
	for k, v := range pc.Env {
		m[k] = v
	}
	for _, k := range singleThreaded {
		if _, set := m[k]; !set {
			m[k] = "1"
		}
	}
	if pc.ModelDir != "" {
		m["AZUREML_MODEL_DIR"] = pc.ModelDir
		m["HANGAR_MODEL_DIR"] = pc.ModelDir
	}
	m["AZUREML_ENTRY_SCRIPT"] = pc.EntryScript
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// startPool starts every worker of pool gen and waits until all
// init() returned. On failure every process it started is killed and
// reaped, and the error is an *InitError.
func (s *Service) startPool(ctx context.Context, pc PoolConfig, gen int64) (*pool, error) {
	p, err := s.newPool(pc, gen)
	if err != nil {
		s.log.event("pool %d not started: %v", gen, err)
		return nil, &InitError{Generation: gen, Err: err}
	}
	s.addPool(p)
	p.event("pool %d starting %d worker(s): %s %s in %s", gen, p.n, p.python, p.cfg.EntryScript, p.cfg.SourceDir)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(p.ctx, cancel)
	defer stop()
	type result struct {
		w   *worker
		err error
	}
	results := make(chan result, p.n)
	for i := range p.n {
		go func() {
			w, err := p.startWorker(ctx, i)
			results <- result{w, err}
		}()
	}
	var first error
	var started []*worker
	for range p.n {
		r := <-results
		if r.err != nil && first == nil {
			first = r.err
			cancel() // the others are killed
		}
		if r.w != nil {
			started = append(started, r.w)
		}
	}
	if first == nil {
		for _, w := range started {
			p.install(w)
		}
		return p, nil
	}
	p.kill() // the workers that did start, too
	p.reap()
	p.logScriptError("", first)
	return nil, &InitError{Generation: gen, Err: first, LastLines: p.tail.last(tailLines)}
}

// startWorker starts the process of slot and waits for its init().
func (p *pool) startWorker(ctx context.Context, slot int) (*worker, error) {
	w, err := p.spawn(slot)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.spawned = append(p.spawned, w)
	p.mu.Unlock()
	initErr := make(chan error, 1)
	go func() { initErr <- w.awaitInit() }()
	select {
	case err = <-initErr:
	case <-p.s.clock.After(p.cfg.InitTimeout):
		w.kill()
		<-initErr
		err = fmt.Errorf("init() did not return within %s; the worker was killed", p.cfg.InitTimeout)
	case <-ctx.Done():
		w.kill()
		<-initErr
		err = context.Cause(ctx)
	}
	if err != nil {
		w.kill()
		<-w.done
		return nil, err
	}
	p.event("pool %d worker %d ready (pid %d)", p.gen, slot, w.pid)
	return w, nil
}

// InitError is a pool that did not start: an entry script that raised
// (*ScriptError), a worker that exited (*ExitError), a timeout, or a bad
// PoolConfig. Its message ends with the last lines of the workers' output.
type InitError struct {
	Generation int64 // the pool's number (see Status.Generation)
	Err        error
	LastLines  []string
}

func (e *InitError) Error() string {
	if len(e.LastLines) == 0 {
		return e.Err.Error()
	}
	var b strings.Builder
	b.WriteString(e.Err.Error())
	b.WriteString("\nlast log lines:")
	for _, l := range e.LastLines {
		b.WriteString("\n  ")
		b.WriteString(l)
	}
	return b.String()
}

func (e *InitError) Unwrap() error { return e.Err }

// logScriptError writes an exception's traceback to the log (and the
// pool's last lines) after the workers' own output has drained.
func (p *pool) logScriptError(reqID string, err error) {
	var se *ScriptError
	if !errors.As(err, &se) {
		return
	}
	prefix := fmt.Sprintf("pool %d: ", p.gen)
	if reqID != "" {
		prefix = fmt.Sprintf("request %s: ", reqID)
	}
	p.s.log.event("%s%s", prefix, se.Error())
	for _, l := range strings.Split(strings.TrimRight(se.Traceback, "\n"), "\n") {
		p.outputLine([]byte(l))
	}
}

// reap waits until every process the pool started is reaped and its output
// drained (at most 2 s for output held open by the workers' children).
func (p *pool) reap() {
	p.mu.Lock()
	spawned := append([]*worker(nil), p.spawned...)
	p.mu.Unlock()
	drain := time.NewTimer(2 * time.Second)
	defer drain.Stop()
	for _, w := range spawned {
		w.release()
		select {
		case <-w.logDone:
		case <-drain.C:
		}
	}
	p.s.removePool(p)
}

// kill SIGKILLs every process of the pool and aborts starts and restarts.
func (p *pool) kill() {
	p.cancel()
	p.mu.Lock()
	spawned := append([]*worker(nil), p.spawned...)
	p.mu.Unlock()
	for _, w := range spawned {
		w.kill()
	}
}

// install puts a worker whose init() returned into service and starts
// its reader.
func (p *pool) install(w *worker) {
	p.s.bg.Add(1)
	go func() {
		defer p.s.bg.Done()
		w.readLoop()
	}()
	p.mu.Lock()
	p.slots[w.slot] = w
	w.usable = true
	p.up++
	p.feedLocked(w) // unlocks
}

// lost takes a worker that ended out of service and, unless the pool is
// retiring, restarts its slot (in the calling goroutine, readLoop's). cause
// says why it ended and what it was doing.
func (p *pool) lost(w *worker, cause error) {
	p.mu.Lock()
	p.disableLocked(w)
	retiring := p.retiring
	p.mu.Unlock()
	if retiring || p.ctx.Err() != nil {
		return
	}
	// Log first, then count: whoever sees the count can read why.
	p.event("pool %d worker %d (pid %d) ended: %v; restarting it", p.gen, w.slot, w.pid, cause)
	p.s.m.restarts.Add(1)
	p.s.refresh()
	p.restart(w.slot)
}

// restart starts a new worker in slot, retrying with backoff while its
// init() fails (the service is Unhealthy meanwhile), until the pool retires.
func (p *pool) restart(slot int) {
	backoff := restartBackoffMin
	failing := false
	defer func() {
		if failing {
			p.mu.Lock()
			p.down--
			p.mu.Unlock()
			p.s.refresh()
		}
	}()
	for p.ctx.Err() == nil {
		w, err := p.startWorker(p.ctx, slot)
		if err == nil {
			p.install(w)
			p.s.refresh()
			return
		}
		if p.ctx.Err() != nil {
			return
		}
		p.logScriptError("", err)
		msg := fmt.Sprintf("worker %d of pool %d does not restart (retrying in %s): %v", slot, p.gen, backoff, err)
		p.event("%s", msg)
		p.s.logger.Warn("worker restart failed", slog.Int64(keyPool, p.gen), slog.String(keyErr, err.Error()))
		p.mu.Lock()
		p.restartErr = msg
		if !failing {
			failing = true
			p.down++
		}
		p.mu.Unlock()
		p.s.refresh()
		select {
		case <-p.s.clock.After(backoff):
		case <-p.ctx.Done():
		}
		backoff = min(2*backoff, restartBackoffMax)
	}
}

func (p *pool) restartError() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restartErr
}

// retire stops the pool gracefully: its waiting requests move to the
// serving pool, the requests its workers hold finish, then every worker is
// terminated, and killed after Config.StopGrace. It returns once all are
// reaped.
func (p *pool) retire() {
	p.cancel()
	p.mu.Lock()
	p.retiring = true
	for c := p.pending.pop(); c != nil; c = p.pending.pop() {
		c.err = errNotStarted // dispatched again, to the serving pool
		c.done <- struct{}{}
	}
	for p.busy > 0 {
		p.drained.Wait()
	}
	spawned := append([]*worker(nil), p.spawned...)
	p.mu.Unlock()
	for _, w := range spawned {
		w.terminate()
	}
	grace := p.s.clock.After(p.s.cfg.StopGrace)
	for _, w := range spawned {
		select {
		case <-w.done:
		case <-grace:
			p.kill()
		}
	}
	p.reap()
	p.s.log.event("pool %d stopped", p.gen)
}

// event writes a front-end line to the log and the pool's last lines.
func (p *pool) event(format string, args ...any) {
	line := p.s.log.event(format, args...)
	p.tail.add(line)
}

// outputLine writes a line of worker output to the log and the last lines.
func (p *pool) outputLine(line []byte) {
	p.s.log.output(line)
	p.tail.add(strings.TrimRight(string(line), "\r\n"))
}

func (p *pool) downCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down
}
