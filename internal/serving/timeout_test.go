package serving_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/internal/clock"
	"github.com/hangar-ml/hangar/internal/serving"
)

// namedGateScript blocks each run() until the gate named by its (JSON
// string) body is opened, then returns the name.
const namedGateScript = `
import json, os, time
GATE = os.environ["GATE"]
def run(raw_data):
    name = json.loads(raw_data)
    open(GATE + "." + name + ".started", "w").close()
    while not os.path.exists(GATE + "." + name):
        time.sleep(0.01)
    return name
`

var fakeStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// advanceUntil moves the fake clock forward by step (a step per few
// milliseconds of wall time) until ch receives, and fails if the fake
// clock would pass limit first. The watchdog may be between ticks, so an
// event is only waited for, never expected at an exact step.
func advanceUntil[T any](t *testing.T, fake *clock.Fake, step time.Duration, limit time.Time, ch <-chan T) T {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		select {
		case v := <-ch:
			return v
		case <-time.After(5 * time.Millisecond):
		}
		if fake.Now().Add(step).After(limit) {
			t.Fatalf("fake clock at %s, limit %s: nothing happened", fake.Now().Sub(fakeStart), limit.Sub(fakeStart))
		}
		if time.Now().After(deadline) {
			t.Fatal("nothing happened within the hang guard")
		}
		fake.Advance(step)
	}
}

// advanceTo moves the fake clock to fake time at in steps, giving the
// watchdog a chance to run at each.
func advanceTo(fake *clock.Fake, step time.Duration, at time.Time) {
	for fake.Now().Before(at) {
		fake.Advance(min(step, at.Sub(fake.Now())))
		time.Sleep(time.Millisecond)
	}
}

// A request whose timeout passes before a worker starts it gets 504 and
// nothing is killed; run() is timed from when its worker started it.
func TestQueueTimeoutKillsNothing(t *testing.T) {
	t.Parallel()
	const timeout = time.Minute
	fake := clock.NewFake(fakeStart)
	gate := filepath.Join(t.TempDir(), "gate")
	pc := poolFor(t, namedGateScript)
	pc.Env = map[string]string{"GATE": gate}
	s := healthy(t, serving.Config{Clock: fake, RequestTimeout: timeout, Pool: pc})
	send := func(name string) <-chan response {
		ch := make(chan response, 1)
		go func() { ch <- score(t, s, `"`+name+`"`) }()
		return ch
	}

	// At 0 s: a runs, b waits in the worker's pipe, c in the queue.
	a := send("a")
	waitStarted(t, gate, "a")
	b := send("b")
	eventually(t, "b in the worker's pipe", func() bool { return s.Metrics().Busy == 2 })
	c := send("c")
	eventually(t, "c queued", func() bool { return s.Metrics().Queued == 1 })

	// At 50 s a returns: b starts, c moves into the worker's pipe.
	advanceTo(fake, time.Second, fakeStart.Add(50*time.Second))
	openGate(t, gate, "a")
	if r := <-a; r.status != 200 || r.body != `"a"` {
		t.Fatalf("a: %d %s", r.status, r.body)
	}
	waitStarted(t, gate, "b")
	eventually(t, "c in the worker's pipe", func() bool { m := s.Metrics(); return m.Busy == 2 && m.Queued == 0 })

	// c arrived at 0 s: it times out at 60 s in the pipe, long before b
	// has run for a minute (110 s), and nothing is killed for it.
	r := advanceUntil(t, fake, time.Second, fakeStart.Add(109*time.Second), c)
	wantStatus(t, r, 504)
	if e := r.errorBody(t).Error; e.Code != "Timeout" || !strings.Contains(e.Message, "waited in the queue") || strings.Contains(e.Message, "killed") {
		t.Errorf("queue timeout: %+v", e)
	}
	if m := s.Metrics(); m.WorkerRestarts != 0 || m.Timeouts != 1 {
		t.Errorf("after the queue timeout: %+v", m)
	}

	// b, which arrived at 0 s but started at 50 s, still answers.
	openGate(t, gate, "b")
	if r := <-b; r.status != 200 || r.body != `"b"` {
		t.Errorf("b: %d %s", r.status, r.body)
	}
	// The worker runs the abandoned c when it gets to it; its answer is dropped.
	waitStarted(t, gate, "c")
	openGate(t, gate, "c")
	eventually(t, "the worker idle", func() bool { return s.Metrics().Busy == 0 })

	// A run() that itself lasts a minute is killed.
	d := send("d")
	waitStarted(t, gate, "d")
	limit := fake.Now().Add(timeout + 10*time.Second)
	r = advanceUntil(t, fake, time.Second, limit, d)
	wantStatus(t, r, 504)
	if e := r.errorBody(t).Error; e.Code != "Timeout" || !strings.Contains(e.Message, "run() did not return within 1m0s") {
		t.Errorf("run timeout: %+v", e)
	}
	eventually(t, "the killed worker restarting", func() bool { return s.Metrics().WorkerRestarts == 1 })
	if m := s.Metrics(); m.Timeouts != 2 || m.Succeeded != 2 {
		t.Errorf("after the run timeout: %+v", m)
	}
}

// SetRequestTimeout applies to a request already running.
func TestSetRequestTimeout(t *testing.T) {
	t.Parallel()
	fake := clock.NewFake(fakeStart)
	cfg := serving.Config{Clock: fake, RequestTimeout: time.Hour, LogPath: filepath.Join(t.TempDir(), "svc.log"), Pool: poolFor(t, `
import time
def run(raw_data):
    time.sleep(3600)
`)}
	s := healthy(t, cfg)
	done := make(chan response, 1)
	go func() { done <- score(t, s, `"slow"`) }()
	eventually(t, "request running", func() bool { return s.Metrics().Busy == 1 })
	s.SetRequestTimeout(time.Minute)
	s.SetRequestTimeout(time.Minute) // logged once
	r := advanceUntil(t, fake, 10*time.Second, fakeStart.Add(30*time.Minute), done)
	wantStatus(t, r, 504)
	if e := r.errorBody(t).Error; !strings.Contains(e.Message, "within 1m0s") {
		t.Errorf("timeout: %+v", e)
	}
	s.SetRequestTimeout(time.Hour)
	s.SetRequestTimeout(0) // the default, 1 minute
	log := readLog(t, cfg.LogPath)
	if n := strings.Count(log, "request timeout set to 1m0s"); n != 2 {
		t.Errorf("%d log lines for the two changes to 1m0s:\n%s", n, log)
	}
}

// Status and /ready say not ready while no worker is up, though a pool
// serves; liveness stays 200.
func TestReadyWhileNoWorkerRuns(t *testing.T) {
	t.Parallel()
	fake := clock.NewFake(fakeStart) // the restart backoff never elapses
	mark := filepath.Join(t.TempDir(), "mark")
	pc := poolFor(t, `
import os
MARK = os.environ["MARK"]
def init():
    if os.path.exists(MARK):
        raise RuntimeError("cannot load the model again")
    open(MARK, "w").close()
def run(raw_data):
    os._exit(3)
`)
	pc.Env = map[string]string{"MARK": mark}
	s := healthy(t, serving.Config{Clock: fake, Pool: pc})
	base := fmt.Sprintf("http://127.0.0.1:%d", s.Port())
	if r := do(t, "GET", base+"/ready", "", "", nil); r.status != 200 {
		t.Fatalf("/ready while healthy: %d", r.status)
	}
	wantStatus(t, score(t, s, `1`), 503) // the worker dies; its restarts fail
	eventually(t, "Unhealthy", func() bool { return s.Status().State == serving.Unhealthy })
	if st := s.Status(); st.Ready || st.WorkersReady != 0 || st.Generation != 1 {
		t.Errorf("status: %+v", st)
	}
	r := do(t, "GET", base+"/ready", "", "", nil)
	wantStatus(t, r, 503)
	if e := r.errorBody(t).Error; e.Code != "NoWorker" || r.header.Get("Retry-After") == "" {
		t.Errorf("/ready: %+v", e)
	}
	if r := do(t, "GET", base+"/", "", "", nil); r.status != 200 {
		t.Errorf("liveness: %d", r.status)
	}
	if r := score(t, s, `1`); r.status != 503 || r.errorBody(t).Error.Code != "NoWorker" {
		t.Errorf("/score: %d %s", r.status, r.body)
	}
}
