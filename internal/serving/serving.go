package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hangar-ml/hangar/internal/clock"
)

// Defaults applied by Start and Update to zero fields.
const (
	DefaultWorkers        = 1
	DefaultInitTimeout    = 5 * time.Minute
	DefaultRequestTimeout = 60 * time.Second
	DefaultMaxBodyBytes   = 100 << 20
	DefaultQueuePerWorker = 64
	DefaultStopGrace      = 10 * time.Second
	DefaultMaxLogBytes    = 100 << 20

	// MaxBodyLimit caps Config.MaxBodyBytes: a frame length is 32 bits.
	MaxBodyLimit = 1 << 30
)

// PoolConfig is the code a service runs: one pool of workers.
type PoolConfig struct {
	// Python is the interpreter; "" means python3 found on PATH.
	Python string
	// SourceDir is the workers' working directory and sys.path[0].
	SourceDir string
	// EntryScript is the scoring script, relative to SourceDir (e.g. "score.py").
	EntryScript string
	// ModelDir is exported as AZUREML_MODEL_DIR and HANGAR_MODEL_DIR ("" exports nothing).
	ModelDir string
	// Env is extra environment (e.g. PYTHONPATH). Workers get only these,
	// the model dir variables and the parent's PATH, HOME, LANG, LC_ALL, TZ,
	// TMPDIR and USER; Env wins over the parent's.
	Env map[string]string
	// Workers is the number of worker processes; 0 means 1.
	Workers int
	// InitTimeout bounds import + init() of every worker, at the first
	// start and at each restart; 0 or negative means 5 minutes. A pool
	// whose init() takes longer fails; a restart that takes longer is
	// retried with backoff. Stop and a newer Update do not wait for it.
	InitTimeout time.Duration
}

// Config describes one service.
type Config struct {
	// Name is the service name, used in messages ("hangar service keys NAME").
	Name string
	// Addr is the listen address, "127.0.0.1:PORT"; port 0 picks a free one (see Port).
	Addr string
	// Pool is the first pool of workers.
	Pool PoolConfig
	// AuthEnabled requires "Authorization: Bearer <PrimaryKey or SecondaryKey>" on /score.
	// Empty keys never match. Change with SetKeys.
	AuthEnabled  bool
	PrimaryKey   string
	SecondaryKey string
	// RequestTimeout bounds, for one /score request, both the wait for a
	// worker to start it (from arrival: in the queue or in a worker's pipe)
	// and run() itself (from when the worker started it); 0 or negative
	// means 60 s. A request no worker started in time gets 504 and nothing
	// is killed; a worker whose run() runs longer is killed and restarted,
	// and its request gets 504. Either happens within a watchdog tick
	// (RequestTimeout/10, at most 1 s), so a request is answered within
	// about twice RequestTimeout. Change with SetRequestTimeout.
	RequestTimeout time.Duration
	// MaxBodyBytes limits the request body; 0 means 100 MB, and it is capped at MaxBodyLimit.
	MaxBodyBytes int64
	// MaxQueue is how many requests may wait for a worker while every
	// worker holds two (the one it runs and the next, see the package
	// doc); 0 means 64 per worker, negative means none. Beyond it /score
	// answers 503 with Retry-After.
	MaxQueue int
	// StopGrace is how long a stopping worker gets between SIGTERM and
	// SIGKILL; 0 means 10 s.
	StopGrace time.Duration
	// LogPath is the service log (worker output, tracebacks, front-end
	// events), appended to; "" keeps only the last lines in memory.
	LogPath string
	// MaxLogBytes caps LogPath: once it grows past the cap it is renamed to
	// LogPath+".1" (replacing an older one) and a new LogPath starts, so
	// about twice the cap is on disk at most. 0 means 100 MiB; negative
	// means no cap.
	MaxLogBytes int64
	// Logger receives front-end events too; nil discards.
	Logger *slog.Logger
	// Clock drives init timeouts, request timeouts, restart backoff and
	// log timestamps; nil means clock.Real.
	Clock clock.Clock
}

// State is the observed state of a service; the strings match service.State.
type State string

// Service states.
const (
	// Transitioning: a pool is starting (first deploy or update), or an
	// Update waits to start one. The previous pool, if any, keeps serving
	// meanwhile.
	Transitioning State = "Transitioning"
	// Healthy: a pool serves and all its workers are up or restarting normally.
	Healthy State = "Healthy"
	// Unhealthy: a pool serves but a worker's restart has failed and is
	// being retried with backoff.
	Unhealthy State = "Unhealthy"
	// Failed: no pool serves, because the first deploy failed (or the
	// service was stopped).
	Failed State = "Failed"
)

// Status is a snapshot of a service.
type Status struct {
	State State
	// Error explains Failed and Unhealthy; while Healthy it holds the error
	// of the last failed Update (cleared by a successful one), if any.
	Error string
	// Ready reports whether a pool serves and at least one of its workers
	// is up (what GET /ready answers).
	Ready bool
	// Workers is the serving pool's worker count; WorkersReady how many of
	// them are running (idle or busy) rather than restarting.
	Workers      int
	WorkersReady int
	// Generation numbers pools in the order Start and Update created them
	// (the first is 1; the log calls it "pool N"); 0 while none serves. It
	// is the runtime's own counter, not the service's generation.
	Generation int64
	// Pending is the pool number being started, 0 when none.
	Pending int64
}

// Service is one running service. Its methods are safe for concurrent use.
type Service struct {
	name       string
	cfg        Config // defaults applied; Pool is the first pool's
	clock      clock.Clock
	logger     *slog.Logger
	log        *serviceLog
	srv        *http.Server
	port       int
	maxBody    int64
	swaggerOn  []byte
	swaggerOff []byte

	timeout    atomic.Int64  // RequestTimeout, see SetRequestTimeout
	timeoutSet chan struct{} // wakes the watchdog after SetRequestTimeout
	keys       atomic.Pointer[keySet]
	cur        atomic.Pointer[pool] // the serving pool, nil while none
	m          metrics
	calls      sync.Pool // *call, with their buffers

	deploy chan struct{} // one-slot semaphore: one pool starts at a time

	mu       sync.Mutex
	state    State  // as last derived; see refresh
	errMsg   string // Failed/update error
	lastGen  int64
	pending  int64
	waiting  int                // Updates waiting for the deploy semaphore
	newest   *deployTicket      // the latest deploy not yet finished; a newer Update or Stop cancels it
	pools    map[*pool]struct{} // every pool with live processes (watchdog, hard stop)
	changed  chan struct{}      // closed and replaced on every change
	stopping bool

	stop     chan struct{} // closed by Stop
	stopOnce sync.Once
	bg       sync.WaitGroup // goroutines other than the HTTP server's
	served   chan struct{}  // closed when srv.Serve returned
}

// ErrStopped is returned by Update after Stop.
var ErrStopped = errors.New("service stopped")

// ErrSuperseded is returned by an Update (and ends Start's first deploy)
// that a newer Update replaced before its pool was ready.
var ErrSuperseded = errors.New("a newer update replaced this one before its workers were ready")

// deployTicket is one deploy (Start's or an Update's) until it finishes.
type deployTicket struct {
	cancel context.CancelCauseFunc
}

// Start binds cfg.Addr at once (an error if it is taken), serves HTTP and
// starts the first pool in the background: /ready answers 503 and Status is
// Transitioning until every worker's init() returned, then Healthy; a failed
// pool makes it Failed with the exception and the last log lines in Error.
// ctx is only used while Start runs; the service lives until Stop.
func Start(ctx context.Context, cfg Config) (*Service, error) {
	s, err := newService(cfg)
	if err != nil {
		return nil, err
	}
	if s.cfg.LogPath != "" {
		if err := s.log.open(s.cfg.LogPath); err != nil {
			return nil, fmt.Errorf("service %s: open log: %w", s.name, err)
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		s.log.close()
		return nil, fmt.Errorf("service %s: listen on %s: %w", s.name, cfg.Addr, err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	s.log.event("service %s listening on %s", s.name, ln.Addr())
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln) // ErrServerClosed after Stop
	}()
	s.bg.Add(2)
	go func() {
		defer s.bg.Done()
		s.watchdog()
	}()
	pc := s.cfg.Pool
	s.deploy <- struct{}{} // taken here, so that an Update right after Start comes second
	dctx, t := s.newDeploy(context.Background())
	go func() {
		defer s.bg.Done()
		ctx, cancel := s.mergeStop(dctx)
		defer cancel()
		_ = s.deployPool(ctx, pc, t, true) // the outcome is in Status
	}()
	return s, nil
}

func newService(cfg Config) (*Service, error) {
	if cfg.Name == "" {
		return nil, errors.New("serving: Config.Name is empty")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBodyBytes > MaxBodyLimit {
		cfg.MaxBodyBytes = MaxBodyLimit
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	if cfg.MaxLogBytes == 0 {
		cfg.MaxLogBytes = DefaultMaxLogBytes
	}
	s := &Service{
		name:    cfg.Name,
		cfg:     cfg,
		clock:   cfg.Clock,
		logger:  cfg.Logger.With(slog.String(keyComponent, "serving"), slog.String(keyService, cfg.Name)),
		maxBody: cfg.MaxBodyBytes,
		deploy:  make(chan struct{}, 1),
		state:   Transitioning,
		pools:   make(map[*pool]struct{}),
		changed: make(chan struct{}),
		stop:    make(chan struct{}),
		served:  make(chan struct{}),
	}
	s.timeout.Store(int64(cfg.RequestTimeout))
	s.timeoutSet = make(chan struct{}, 1)
	s.log = newServiceLog(cfg.Clock, cfg.MaxLogBytes)
	s.keys.Store(&keySet{enabled: cfg.AuthEnabled, primary: cfg.PrimaryKey, secondary: cfg.SecondaryKey})
	s.swaggerOn = swaggerDoc(cfg.Name, true)
	s.swaggerOff = swaggerDoc(cfg.Name, false)
	return s, nil
}

// Port is the TCP port the service listens on.
func (s *Service) Port() int { return s.port }

// SetKeys replaces the auth setting and keys; requests after it returns use
// them. It may be called often with the same values: the log records only
// changes.
func (s *Service) SetKeys(enabled bool, primary, secondary string) {
	k := &keySet{enabled: enabled, primary: primary, secondary: secondary}
	old := s.keys.Swap(k)
	switch {
	case old.enabled != k.enabled:
		s.log.event("auth enabled: %t", enabled)
	case *old != *k:
		s.log.event("keys changed")
	}
}

// SetRequestTimeout replaces Config.RequestTimeout (d <= 0 means 60 s)
// without a restart. The watchdog applies it at once, to requests already
// waiting or running too. It may be called often with the same value: the
// log records only changes.
func (s *Service) SetRequestTimeout(d time.Duration) {
	if d <= 0 {
		d = DefaultRequestTimeout
	}
	if old := time.Duration(s.timeout.Swap(int64(d))); old == d {
		return
	}
	s.log.event("request timeout set to %s", d)
	select {
	case s.timeoutSet <- struct{}{}:
	default: // the watchdog has a wakeup pending already
	}
}

// requestTimeout is the current RequestTimeout.
func (s *Service) requestTimeout() time.Duration { return time.Duration(s.timeout.Load()) }

// Status returns the service's current state.
func (s *Service) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusLocked()
}

func (s *Service) statusLocked() Status {
	st := Status{State: s.state, Error: s.errMsg, Pending: s.pending}
	p := s.cur.Load()
	if p != nil && !s.stopping {
		st.Generation = p.gen
		st.Workers = p.n
		p.mu.Lock()
		st.WorkersReady = p.up
		p.mu.Unlock()
		st.Ready = st.WorkersReady > 0
	}
	if s.state == Unhealthy && p != nil {
		if e := p.restartError(); e != "" {
			st.Error = e
		}
	}
	return st
}

// refresh derives the state after a change and wakes WaitSettled callers.
// The caller holds s.mu.
func (s *Service) refreshLocked() {
	p := s.cur.Load()
	switch {
	case s.stopping:
		s.state = Failed
	case s.pending != 0, s.waiting > 0:
		s.state = Transitioning
	case p == nil:
		s.state = Failed
	case p.downCount() > 0:
		s.state = Unhealthy
	default:
		s.state = Healthy
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Service) refresh() {
	s.mu.Lock()
	s.refreshLocked()
	s.mu.Unlock()
}

// WaitSettled blocks until no pool is starting and returns the status then:
// Healthy or Failed after a deploy (Unhealthy if a worker has failed since).
// It returns early with the current status when ctx ends.
func (s *Service) WaitSettled(ctx context.Context) Status {
	for {
		s.mu.Lock()
		st := s.statusLocked()
		ch := s.changed
		s.mu.Unlock()
		if st.State != Transitioning {
			return st
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st
		}
	}
}

// Update starts a new pool from pc next to the serving one. When every new
// worker's init() returned it swaps the new pool in atomically (requests
// arriving after Update returns run the new code) and stops the old pool in
// the background once its running requests finished. If the new pool fails
// (init() raised, timed out, a worker died, or ctx ended) its workers are
// killed, the old pool keeps serving, and the error is only the cause: the
// exception and the last log lines (Status.Error has it too). Updates are
// applied one at a time; a newer Update cancels one still waiting or
// starting (including Start's first deploy), whose workers are killed at
// once and which returns ErrSuperseded. After Stop it returns ErrStopped.
func (s *Service) Update(ctx context.Context, pc PoolConfig) error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return ErrStopped
	}
	s.waiting++
	ctx, t := s.newDeployLocked(ctx)
	s.bg.Add(1) // Stop waits for it
	s.mu.Unlock()
	defer s.bg.Done()
	ctx, cancel := s.mergeStop(ctx)
	defer cancel()
	return s.deployPool(ctx, pc, t, false)
}

// newDeploy registers a deploy as the newest, canceling the previous one
// (ErrSuperseded), and returns its context.
func (s *Service) newDeploy(ctx context.Context) (context.Context, *deployTicket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newDeployLocked(ctx)
}

func (s *Service) newDeployLocked(ctx context.Context) (context.Context, *deployTicket) {
	if s.newest != nil {
		s.newest.cancel(ErrSuperseded)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	s.newest = &deployTicket{cancel: cancel}
	return ctx, s.newest
}

// endDeployLocked forgets t once its deploy finished.
func (s *Service) endDeployLocked(t *deployTicket) {
	t.cancel(context.Canceled)
	if s.newest == t {
		s.newest = nil
	}
}

// deployPool starts a pool and swaps it in. first marks Start's deploy,
// whose caller took the deploy semaphore already; otherwise the caller
// counted itself in s.waiting.
func (s *Service) deployPool(ctx context.Context, pc PoolConfig, t *deployTicket, first bool) error {
	if !first {
		select {
		case s.deploy <- struct{}{}:
		case <-ctx.Done():
			s.mu.Lock()
			s.waiting--
			s.endDeployLocked(t)
			s.refreshLocked()
			s.mu.Unlock()
			return context.Cause(ctx)
		}
	}
	defer func() { <-s.deploy }()

	s.mu.Lock()
	if !first {
		s.waiting--
	}
	if err := context.Cause(ctx); err != nil || s.stopping {
		if s.stopping {
			err = ErrStopped
		}
		s.endDeployLocked(t)
		s.refreshLocked()
		s.mu.Unlock()
		return err
	}
	s.lastGen++
	gen := s.lastGen
	s.pending = gen
	s.refreshLocked()
	s.mu.Unlock()

	p, err := s.startPool(ctx, pc, gen)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.endDeployLocked(t)
	s.pending = 0
	if err == nil && s.stopping {
		err = ErrStopped
	}
	if err != nil {
		if p != nil { // started, but Stop came first
			p.kill()
			s.bg.Add(1)
			go func() {
				defer s.bg.Done()
				p.reap()
			}()
		}
		if errors.Is(err, ErrSuperseded) || errors.Is(err, ErrStopped) {
			// Not a failure of the code: Status keeps what it had.
			err = ErrSuperseded
			if s.stopping {
				err = ErrStopped
			}
			s.log.event("pool %d canceled: %v", gen, err)
			s.refreshLocked()
			return err
		}
		s.log.event("pool %d failed: %v", gen, err)
		s.logger.Warn("pool failed", slog.Int64(keyPool, gen), slog.String(keyErr, err.Error()))
		s.errMsg = err.Error()
		if s.cur.Load() != nil {
			s.errMsg = "the last update failed, the previous code keeps serving: " + s.errMsg
		}
		s.refreshLocked()
		return err
	}
	old := s.cur.Swap(p)
	s.errMsg = ""
	s.refreshLocked()
	s.log.event("pool %d serving (%d workers)", gen, p.n)
	s.logger.Info("pool serving", slog.Int64(keyPool, gen), slog.Int(keyWorkers, p.n))
	if old != nil {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			old.retire()
		}()
	}
	return nil
}

// Stop closes the listener, waits (until ctx ends) for running requests,
// then stops every worker: request pipe closed and SIGTERM to its process
// group, SIGKILL after StopGrace (at once if ctx has ended). The port is free
// when Stop returns. Stop may be called more than once.
func (s *Service) Stop(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopping = true
		if s.newest != nil { // a starting pool is killed now, not after init()
			s.newest.cancel(ErrStopped)
		}
		s.refreshLocked()
		s.mu.Unlock()
		s.log.event("stopping")
		err = s.srv.Shutdown(ctx)
		if err != nil {
			_ = s.srv.Close()
		}
		<-s.served
		close(s.stop) // pools retire: each waits for its idle workers
		if p := s.cur.Swap(nil); p != nil {
			s.bg.Add(1)
			go func() {
				defer s.bg.Done()
				p.retire()
			}()
		}
		done := make(chan struct{})
		go func() { s.bg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.killAll()
			<-done
			if err == nil {
				err = ctx.Err()
			}
		}
		s.log.event("stopped")
		s.log.close()
	})
	return err
}

// killAll SIGKILLs every worker of every pool.
func (s *Service) killAll() {
	s.mu.Lock()
	pools := make([]*pool, 0, len(s.pools))
	for p := range s.pools {
		pools = append(pools, p)
	}
	s.mu.Unlock()
	for _, p := range pools {
		p.kill()
	}
}

func (s *Service) addPool(p *pool) {
	s.mu.Lock()
	s.pools[p] = struct{}{}
	s.mu.Unlock()
}

func (s *Service) removePool(p *pool) {
	s.mu.Lock()
	delete(s.pools, p)
	s.mu.Unlock()
}

// mergeStop derives a context from ctx that Stop also cancels.
func (s *Service) mergeStop(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-s.stop:
			cancel(ErrStopped)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}
