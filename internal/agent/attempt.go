package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hangar-ml/hangar/internal/agentproto"
)

// attempt is one assignment on this node, from receipt to its finish report.
type attempt struct {
	a        *Agent
	asg      agentproto.Assignment
	id       string
	dir      string // working directory
	logPath  string
	logFile  *os.File // the agent's handle, for its own lines (setup errors)
	received time.Time

	stopOnce sync.Once
	stopCh   chan struct{} // closed by stop
	reason   string        // why it was stopped; written before stopCh closes

	fenceOnce sync.Once
	fencedCh  chan struct{} // closed by fence

	// rctx is the context of every report about the attempt; fence
	// cancels it.
	rctx    context.Context
	rcancel context.CancelFunc

	running atomic.Bool // the process is alive

	// logOffset is how much of the log the server has stored. Only one
	// shipper runs at a time: the periodic one, then the final one.
	logOffset int64
	logBroken bool // the server refused log bytes for good
}

func newAttempt(a *Agent, asg agentproto.Assignment, logFile *os.File, logPath string, received time.Time) *attempt {
	rctx, rcancel := context.WithCancel(context.Background())
	return &attempt{
		a:        a,
		asg:      asg,
		id:       asg.AttemptID,
		dir:      filepath.Join(a.cfg.Dir, "attempts", asg.AttemptID),
		logPath:  logPath,
		logFile:  logFile,
		received: received,
		stopCh:   make(chan struct{}),
		fencedCh: make(chan struct{}),
		rctx:     rctx,
		rcancel:  rcancel,
	}
}

// stop asks the attempt to stop for reason; the first reason wins. It
// reports whether this call was the first.
func (at *attempt) stop(reason string) bool {
	first := false
	at.stopOnce.Do(func() {
		at.reason = reason
		close(at.stopCh)
		first = true
	})
	return first
}

func (at *attempt) stopped() bool {
	select {
	case <-at.stopCh:
		return true
	default:
		return false
	}
}

// fence marks the attempt refused by the server: its process is killed at
// once and nothing more is reported.
func (at *attempt) fence() {
	at.fenceOnce.Do(func() {
		at.a.log.Warn("attempt fenced by the server; killing it", keyAttempt, at.id)
		close(at.fencedCh)
		at.rcancel()
	})
	at.stop(reasonFenced)
}

func (at *attempt) isFenced() bool {
	select {
	case <-at.fencedCh:
		return true
	default:
		return false
	}
}

// path is the URL path of one of the attempt's routes.
func (at *attempt) path(route string) string {
	return "/attempts/" + url.PathEscape(at.id) + "/" + route
}

// untilStopped returns a context canceled when the attempt is stopped or
// fenced: for the work before the process starts.
func (at *attempt) untilStopped() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(at.rctx)
	go func() {
		select {
		case <-at.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// reportContext returns a context for final reports: canceled when the
// attempt is fenced, and budget after the agent begins to shut down (or
// budget from now if it already has).
func (a *Agent) reportContext(at *attempt, budget time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(at.rctx)
	go func() {
		select {
		case <-a.shutdownCh:
		case <-ctx.Done():
			return
		}
		select {
		case <-a.clock.After(budget):
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// runAttempt takes an attempt from receipt to its finish report.
func (a *Agent) runAttempt(at *attempt) {
	defer a.wg.Done()
	defer a.forget(at.id)
	defer at.rcancel()
	defer at.logFile.Close()
	log := a.log.With(keyAttempt, at.id)

	select {
	case a.slots <- struct{}{}:
		defer func() { <-a.slots }()
	case <-at.stopCh:
		a.endUnstarted(at, nil)
		return
	}

	ctx, cancel := at.untilStopped()
	defer cancel()
	err := a.retry(ctx, func(ctx context.Context) error {
		return a.call(ctx, "start", http.MethodPost, at.path("start"), "", jsonBody(agentproto.Start{}), nil, callTimeout)
	})
	switch {
	case err == nil:
	case errors.Is(err, errFenced):
		log.Info("server refused to start the attempt (fenced); dropping it")
		return
	case at.stopped():
		a.endUnstarted(at, nil)
		return
	default:
		log.Error("start refused; dropping the attempt", keyErr, err)
		return
	}

	cmd, err := a.prepare(ctx, at)
	if err != nil {
		if at.stopped() {
			a.endUnstarted(at, nil)
			return
		}
		log.Error("attempt setup failed", keyErr, err)
		a.endUnstarted(at, err)
		return
	}
	p, err := startProcess(cmd)
	if err != nil {
		log.Error("attempt process did not start", keyErr, err)
		a.endUnstarted(at, fmt.Errorf("start process: %w", err))
		return
	}
	at.running.Store(true)
	if a.onStarted != nil {
		a.onStarted(at.id, at.received)
	}
	log.Info("attempt started", "pid", p.pid, "setup", a.clock.Now().Sub(at.received))

	runCtx, stopReports := context.WithCancel(at.rctx)
	var reporters sync.WaitGroup
	reporters.Go(func() { a.shipLogsPeriodically(runCtx, at) })
	reporters.Go(func() { a.uploadOutputsPeriodically(runCtx, at) })

	reason := a.supervise(at, p)
	at.running.Store(false)
	stopReports()
	reporters.Wait()

	code := -1
	if p.state != nil {
		code = p.state.ExitCode()
	}
	if reason == reasonFenced || at.isFenced() {
		log.Info("fenced attempt killed and dropped", "exit_code", code)
		return
	}
	log.Info("attempt process ended", "exit_code", code, "reason", reason)
	a.finalize(at, code, reason, true)
}

// endUnstarted ends an attempt whose process never started: stopped while
// waiting (reason from stop) or failed setup (err).
func (a *Agent) endUnstarted(at *attempt, err error) {
	if at.isFenced() {
		return
	}
	reason := reasonSetupFailed
	if err == nil {
		reason = at.reason // set: only a stopped attempt ends without an error
	} else {
		fmt.Fprintf(at.logFile, "hangar: setup failed: %v\n", err)
	}
	a.finalize(at, -1, reason, false)
}

// supervise waits for the process to end, stopping it on cancel, max
// duration, shutdown or fencing, and returns the reason it was stopped
// ("" if it ended by itself).
func (a *Agent) supervise(at *attempt, p *process) string {
	var deadline <-chan time.Time
	if s := at.asg.MaxDurationSeconds; s > 0 {
		deadline = a.clock.After(time.Duration(s) * time.Second)
	}
	var reason string
	select {
	case <-p.done:
	case <-deadline:
		reason = reasonMaxDuration
	case <-at.stopCh:
		reason = at.reason
	}
	select {
	case <-p.done: // it ended by itself, whatever else happened
		p.killGroup(syscall.SIGKILL) // leftovers of the group
		if reason != reasonFenced {
			reason = ""
		}
		return reason
	default:
	}
	log := a.log.With(keyAttempt, at.id)
	if reason == reasonFenced {
		p.killGroup(syscall.SIGKILL)
		<-p.done
		return reason
	}
	log.Info("stopping attempt", "reason", reason, "grace", a.grace)
	p.killGroup(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-at.fencedCh:
		p.killGroup(syscall.SIGKILL)
		<-p.done
	case <-a.clock.After(a.grace):
		log.Info("attempt did not stop within grace; killing it")
		p.killGroup(syscall.SIGKILL)
		<-p.done
	}
	p.killGroup(syscall.SIGKILL)
	return reason
}

// finalize sends the rest of the log, the outputs (if the process ran) and
// the finish report, each retried until answered. After a shutdown it gives
// up after shutdownReportBudget, keeping most of it for finish.
func (a *Agent) finalize(at *attempt, code int, reason string, ran bool) {
	log := a.log.With(keyAttempt, at.id)
	fctx, fcancel := a.reportContext(at, shutdownReportBudget)
	defer fcancel()
	dctx, dcancel := a.reportContext(at, shutdownReportBudget*3/5)
	defer dcancel()

	logBytes, err := a.shipLogsFinal(dctx, at)
	if errors.Is(err, errFenced) {
		at.fence()
		return
	}
	if err != nil {
		log.Warn("could not send the whole log", keyErr, err)
	}
	if ran {
		err := a.uploadAllOutputs(dctx, at)
		if errors.Is(err, errFenced) {
			at.fence()
			return
		}
		if err != nil {
			log.Warn("could not upload outputs", keyErr, err)
		}
	}
	fin := agentproto.Finish{ExitCode: code, Reason: reason, LogBytes: logBytes}
	if code != 0 {
		fin.ErrorTail = errorTail(at.logPath, errorTailLines)
	}
	err = a.retry(fctx, func(ctx context.Context) error {
		return a.call(ctx, "finish", http.MethodPost, at.path("finish"), "", jsonBody(fin), nil, callTimeout)
	})
	switch {
	case err == nil:
		log.Info("attempt finished", "exit_code", code, "reason", reason, "log_bytes", logBytes)
	case errors.Is(err, errFenced):
		log.Info("server refused the finish report (fenced)")
	default:
		log.Error("finish report dropped", keyErr, err)
		return // keep everything for a later look
	}
	a.cleanUp(at)
}

// cleanUp frees the node's disk once the server has an attempt's outcome:
// the working dir goes, and the log file is emptied but kept, since its
// existence is the node's record that the attempt was received.
func (a *Agent) cleanUp(at *attempt) {
	if err := os.RemoveAll(at.dir); err != nil {
		a.log.Warn("remove attempt dir", keyAttempt, at.id, keyErr, err)
	}
	if err := os.Truncate(at.logPath, 0); err != nil {
		a.log.Warn("empty attempt log", keyAttempt, at.id, keyErr, err)
	}
}
