package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hangar-ml/hangar/internal/agentproto"
	"github.com/hangar-ml/hangar/internal/blob"
	"github.com/hangar-ml/hangar/internal/clock"
)

// Config configures an Agent.
type Config struct {
	// ServerURL is the server's base URL, e.g. "http://10.0.0.1:8080"; the
	// agent adds agentproto.Prefix. Required.
	ServerURL string
	// NodeID is this node's id. Required.
	NodeID string
	// Token is the node's bearer credential (from agentproto.TokenEnv). It
	// is never logged and never passed to attempts.
	Token string
	// Dir holds the agent's state: blobs/ (cache by digest), attempts/
	// (working directories and logs). Required; created if missing.
	Dir string
	// Slots is how many attempts may run at once; zero or negative means 1.
	Slots int
	// HTTPClient makes the calls to the server; nil means a client with no
	// overall timeout (the agent sets a deadline per call).
	HTTPClient *http.Client
	// Logger receives the agent's own messages; nil discards them.
	Logger *slog.Logger
	// Clock is the time source for intervals, backoff and deadlines; nil
	// means clock.Real.
	Clock clock.Clock
	// ExtraPythonPath is prepended to the attempt's PYTHONPATH (e.g. the
	// directory of the hangar Python package); "" adds nothing.
	ExtraPythonPath string
	// KillGrace is how long a stopped process gets between SIGTERM and
	// SIGKILL; zero or negative means 10 s.
	KillGrace time.Duration
	// Version is reported in heartbeats; "" means "dev".
	Version string
}

// Defaults.
const (
	defaultHeartbeat  = 2 * time.Second
	minHeartbeat      = 50 * time.Millisecond
	defaultKillGrace  = 10 * time.Second
	defaultOutputsInt = 10 * time.Second
	logShipInterval   = 500 * time.Millisecond
	workWaitSeconds   = 20
	// shutdownReportBudget bounds the final reports after a shutdown.
	shutdownReportBudget = 2 * time.Second
)

// Finish reasons.
const (
	reasonCanceled    = "canceled"
	reasonMaxDuration = "max run duration exceeded"
	reasonSetupFailed = "setup failed"
	reasonPreempted   = "preempted"
	// reasonFenced is internal: the server refused the attempt (409); it is
	// never reported.
	reasonFenced = "fenced"
)

// Agent runs the attempts the server assigns to one node.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	clock   clock.Clock
	hc      *http.Client
	base    string // ServerURL + agentproto.Prefix
	grace   time.Duration
	version string
	blobs   *blob.Store
	slots   chan struct{}

	// Knobs tests set before Run.
	logInterval time.Duration
	// onStarted, when set, is called right after an attempt's process
	// started, with the time its assignment was received.
	onStarted func(attemptID string, received time.Time)
	environ   func() []string

	shutdownOnce sync.Once
	shutdownCh   chan struct{} // closed when the agent begins to shut down

	mu           sync.Mutex
	attempts     map[string]*attempt // live attempts (queued, running, reporting)
	seen         map[string]bool     // every attempt id ever received
	shuttingDown bool
	wg           sync.WaitGroup // attempt goroutines
}

// New returns an agent. It has no side effects: nothing happens until Run.
func New(cfg Config) *Agent {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	slots := cfg.Slots
	if slots <= 0 {
		slots = 1
	}
	grace := cfg.KillGrace
	if grace <= 0 {
		grace = defaultKillGrace
	}
	version := cfg.Version
	if version == "" {
		version = "dev"
	}
	return &Agent{
		cfg:         cfg,
		log:         log.With("component", "agent", keyNode, cfg.NodeID),
		clock:       clk,
		hc:          hc,
		base:        strings.TrimRight(cfg.ServerURL, "/") + agentproto.Prefix,
		grace:       grace,
		version:     version,
		blobs:       blob.New(filepath.Join(cfg.Dir, "blobs")),
		slots:       make(chan struct{}, slots),
		logInterval: logShipInterval,
		environ:     os.Environ,
		shutdownCh:  make(chan struct{}),
		attempts:    map[string]*attempt{},
		seen:        map[string]bool{},
	}
}

// Run works until ctx is canceled or the server asks the agent to shut
// down. Either way it stops every running attempt (SIGTERM, KillGrace,
// SIGKILL), tries briefly to report them finished with reason "preempted",
// and returns nil. It returns an error only for an invalid Config or an
// unusable Dir. Run may be called once.
//
// On Linux, Run makes the whole process non-dumpable (prctl
// PR_SET_DUMPABLE), so attempts running as the same user cannot read the
// token from /proc/<agent pid>/environ or ptrace the agent.
func (a *Agent) Run(ctx context.Context) error {
	if a.cfg.ServerURL == "" || a.cfg.NodeID == "" || a.cfg.Dir == "" {
		return errors.New("agent: ServerURL, NodeID and Dir are required")
	}
	if err := os.MkdirAll(filepath.Join(a.cfg.Dir, "attempts"), 0o700); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := a.loadSeen(); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := hideSecrets(); err != nil {
		a.log.WarnContext(ctx, "cannot hide the agent's environment from attempts", keyErr, err)
	}
	a.log.InfoContext(ctx, "agent started", "server", a.cfg.ServerURL, "slots", cap(a.slots), "pid", os.Getpid())

	loopCtx, stopLoops := context.WithCancel(ctx)
	var loops sync.WaitGroup
	loops.Go(func() { a.heartbeatLoop(loopCtx) })
	loops.Go(func() { a.workLoop(loopCtx) })

	select {
	case <-ctx.Done():
		a.log.InfoContext(ctx, "agent stopping: signal")
	case <-a.shutdownCh:
		a.log.InfoContext(ctx, "agent stopping: server asked to shut down")
	}
	a.beginShutdown()
	stopLoops()
	loops.Wait()
	a.wg.Wait()
	a.log.InfoContext(ctx, "agent stopped")
	return nil
}

// loadSeen records the attempts this Dir has already received (their log
// files), so a restarted agent does not run them again.
func (a *Agent) loadSeen() error {
	entries, err := os.ReadDir(filepath.Join(a.cfg.Dir, "attempts"))
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".log"); ok && e.Type().IsRegular() {
			a.seen[id] = true
		}
	}
	return nil
}

// beginShutdown stops taking work and stops every attempt with reason
// "preempted". It may be called more than once.
func (a *Agent) beginShutdown() {
	a.shutdownOnce.Do(func() { close(a.shutdownCh) })
	a.mu.Lock()
	a.shuttingDown = true
	live := make([]*attempt, 0, len(a.attempts))
	for _, at := range a.attempts {
		live = append(live, at)
	}
	a.mu.Unlock()
	for _, at := range live {
		at.stop(reasonPreempted)
	}
}

func (a *Agent) heartbeatLoop(ctx context.Context) {
	interval := defaultHeartbeat
	for {
		reply, err := a.heartbeat(ctx)
		switch {
		case err == nil:
			if reply.IntervalMillis > 0 {
				interval = max(time.Duration(reply.IntervalMillis)*time.Millisecond, minHeartbeat)
			}
			a.apply(ctx, reply.Cancel, reply.Shutdown)
		case ctx.Err() == nil:
			a.log.WarnContext(ctx, "heartbeat failed", keyErr, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-a.clock.After(interval):
		}
	}
}

func (a *Agent) heartbeat(ctx context.Context) (agentproto.HeartbeatReply, error) {
	hb := agentproto.Heartbeat{NodeID: a.cfg.NodeID, Running: a.running(), Version: a.version, PID: os.Getpid()}
	var reply agentproto.HeartbeatReply
	err := a.call(ctx, "heartbeat", http.MethodPost, "/heartbeat", "", jsonBody(hb), &reply, callTimeout)
	return reply, err
}

// running lists the attempts whose processes are alive.
func (a *Agent) running() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	ids := []string{}
	for id, at := range a.attempts {
		if at.running.Load() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (a *Agent) workLoop(ctx context.Context) {
	var failures, idle backoff
	for ctx.Err() == nil {
		began := a.clock.Now()
		work, err := a.poll(ctx)
		var pause time.Duration
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			pause = failures.next()
			a.log.WarnContext(ctx, "work poll failed", keyErr, err, "retry_in", pause)
		case work == nil: // 204: nothing arrived in time
			failures.reset()
			if a.clock.Now().Sub(began) < time.Second {
				// The server did not hold the poll; do not spin.
				pause = idle.next()
			}
		default:
			failures.reset()
			if a.handleWork(ctx, *work) {
				idle.reset()
			} else {
				// An answer with nothing new would make us poll in a
				// tight loop; let it cool down.
				pause = idle.next()
			}
		}
		if pause > 0 {
			select {
			case <-ctx.Done():
				return
			case <-a.clock.After(pause):
			}
		}
	}
}

// poll long-polls for work; it returns nil, nil on 204.
func (a *Agent) poll(ctx context.Context) (*agentproto.Work, error) {
	var w agentproto.Work
	q := "wait=" + fmt.Sprint(workWaitSeconds)
	status, err := a.do(ctx, "work", http.MethodGet, "/work", q, nil, &w, (workWaitSeconds+15)*time.Second)
	if err != nil {
		return nil, err
	}
	if status == http.StatusNoContent {
		return nil, nil
	}
	return &w, nil
}

// handleWork applies a /work answer and reports whether it held anything new.
func (a *Agent) handleWork(ctx context.Context, w agentproto.Work) bool {
	fresh := a.apply(ctx, w.Cancel, w.Shutdown)
	for _, asg := range w.Assignments {
		if a.accept(ctx, asg) {
			fresh = true
		}
	}
	return fresh
}

// apply acts on cancels and a shutdown request; it reports whether any of
// it changed something.
func (a *Agent) apply(ctx context.Context, cancel []string, shutdown bool) bool {
	changed := false
	for _, id := range cancel {
		a.mu.Lock()
		at := a.attempts[id]
		a.mu.Unlock()
		if at != nil && at.stop(reasonCanceled) {
			a.log.InfoContext(ctx, "attempt cancel requested", keyAttempt, id)
			changed = true
		}
	}
	if shutdown {
		a.beginShutdown()
		changed = true
	}
	return changed
}

// accept starts the attempt's goroutine unless the attempt was seen before.
// It reports whether the assignment was new.
func (a *Agent) accept(ctx context.Context, asg agentproto.Assignment) bool {
	received := a.clock.Now()
	id := asg.AttemptID
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen[id] || a.shuttingDown {
		return false
	}
	a.seen[id] = true
	if err := checkName(id); err != nil {
		// Nothing about it can be reported: the id cannot name a URL path
		// or a file safely. This is a server bug.
		a.log.ErrorContext(ctx, "refusing assignment with invalid attempt id", keyAttempt, id, keyErr, err)
		return true
	}
	logPath := filepath.Join(a.cfg.Dir, "attempts", id+".log")
	// O_EXCL: the log file is the durable record that this attempt was
	// received; if it exists, a previous agent process got it already.
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			a.log.InfoContext(ctx, "ignoring attempt received before a restart", keyAttempt, id)
		} else {
			a.log.ErrorContext(ctx, "cannot create attempt log", keyAttempt, id, keyErr, err)
		}
		return true
	}
	at := newAttempt(a, asg, logFile, logPath, received)
	a.attempts[id] = at
	a.wg.Add(1)
	go a.runAttempt(at)
	a.log.InfoContext(ctx, "attempt received", keyAttempt, id, keyRun, asg.RunID)
	return true
}

func (a *Agent) forget(id string) {
	a.mu.Lock()
	delete(a.attempts, id)
	a.mu.Unlock()
}

// checkName refuses names that are not a single safe path element.
func checkName(s string) error {
	if s == "" || s == "." || s == ".." || len(s) > 200 {
		return fmt.Errorf("invalid name %q", s)
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return fmt.Errorf("invalid name %q: only letters, digits, '-', '_' and '.'", s)
		}
	}
	return nil
}

// Log attribute keys.
const (
	keyNode    = "node_id"
	keyAttempt = "attempt_id"
	keyRun     = "run_id"
	keyErr     = "err"
)
