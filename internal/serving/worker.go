package serving

import (
	"bufio"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// workerSource is the Python side of the protocol, run with `python -u -c`.
//
//go:embed worker.py
var workerSource string

// Frame kinds. A frame is a 4-byte big-endian payload length, a kind byte
// and the payload.
const (
	kindRequest   = 'R' // front end → worker: request body
	kindInitOK    = 'I' // init() returned
	kindInitError = 'E' // import or init() raised: JSON ScriptError
	kindOK        = 'O' // json.dumps(run(body)) as UTF-8
	kindUserError = 'U' // run() raised: JSON ScriptError

	frameHeader = 5
	// maxResponse bounds a response frame, so a confused worker cannot make
	// the front end allocate without limit.
	maxResponse = 1 << 30
)

// ScriptError is an exception raised by the entry script, as the worker
// reported it.
type ScriptError struct {
	// Stage is where it was raised: "import", "init", "run", "serialize"
	// (json.dumps of run()'s result, NaN and Infinity refused) or "decode"
	// (run() returned bytes that are not UTF-8).
	Stage     string `json:"stage"`
	Type      string `json:"type"`
	Message   string `json:"message"`
	Traceback string `json:"traceback"`
}

func (e *ScriptError) Error() string {
	switch e.Stage {
	case "import":
		return fmt.Sprintf("importing the entry script raised %s: %s", e.Type, e.Message)
	case "serialize":
		return fmt.Sprintf("run() returned a value that is not JSON-serialisable: %s: %s", e.Type, e.Message)
	case "decode":
		return fmt.Sprintf("run() returned bytes that are not UTF-8: %s: %s", e.Type, e.Message)
	case "":
		return fmt.Sprintf("%s: %s", e.Type, e.Message)
	default:
		return fmt.Sprintf("%s() raised %s: %s", e.Stage, e.Type, e.Message)
	}
}

// ExitError reports a worker process that ended when it should not have.
type ExitError struct {
	// During is what the worker was doing: "init", "run", or "idle" (it
	// held no request).
	During string
	// Status is the process's exit status as Go prints it ("exit status 3",
	// "signal: killed").
	Status string
}

func (e *ExitError) Error() string {
	if e.During == "idle" {
		return fmt.Sprintf("the worker exited while idle (%s)", e.Status)
	}
	return fmt.Sprintf("the worker exited during %s() (%s)", e.During, e.Status)
}

// errProtocol marks a worker that broke the frame protocol.
var errProtocol = errors.New("worker broke the frame protocol")

// worker is one Python process and the front end's ends of its pipes.
//
// Requests reach it through send, which writes the frame and appends the
// call to queue; its reader goroutine (readLoop) answers queue[0] with each
// response frame. The worker runs one request at a time; the others in
// queue wait in its request pipe (see pipelineDepth).
type worker struct {
	p    *pool
	slot int
	pid  int
	in   *os.File      // request pipe (worker's fd 0)
	out  *os.File      // response pipe (worker's fd 1)
	rd   *bufio.Reader // over out
	hdr  [frameHeader]byte

	wmu sync.Mutex // serialises frame writes, so queue order is pipe order

	qmu     sync.Mutex
	queue   []*call // sent and unanswered; queue[0] is running
	writing *call   // the call whose frame is being written, if any
	closed  bool    // no more sends: the worker died or is being killed

	// Guarded by pool.mu.
	load   int  // calls dispatched to it and not yet released
	usable bool // may take calls

	done    chan struct{} // closed once the process is reaped
	state   *os.ProcessState
	logDone chan struct{} // closed once its stderr reached EOF
}

// call is one /score round trip to a worker. The handler owns it except
// between a successful send and the receive from done.
type call struct {
	buf     []byte // request frame: header room, then the body
	out     []byte // response payload (separate: send may still be returning from the write)
	n       int    // request body length
	arrival int64  // clock time (Unix ns) it arrived; a worker must start it within the request timeout
	// started is the clock time (Unix ns) its worker started it: when it was
	// sent to an idle worker, or when the answer before it arrived. Set
	// under the worker's qmu; 0 while it waits.
	started  int64
	kind     byte    // response frame kind
	err      error   // errNotStarted, errTimeout, errQueueTimeout, or why the worker failed
	timedOut bool    // set by the watchdog (under qmu) when it killed the worker for it
	sendTo   *worker // a queued call assigned to this worker must write its own frame
	// abandoned marks a stand-in for a call that timed out in a worker's
	// pipe: the worker still runs it, and its answer is discarded.
	abandoned bool
	done      chan struct{}
}

// spawn starts a worker process for slot. It does not wait for init().
func (p *pool) spawn(slot int) (*worker, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW)
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(inR, inW, outR, outW)
		return nil, err
	}
	cmd := &exec.Cmd{
		Path:        p.python,
		Args:        []string{p.python, "-u", "-c", workerSource, p.cfg.EntryScript},
		Dir:         p.cfg.SourceDir,
		Env:         p.env,
		Stdin:       inR,
		Stdout:      outW,
		Stderr:      errW,
		SysProcAttr: sysProcAttr(),
	}
	w := &worker{
		p:       p,
		slot:    slot,
		in:      inW,
		out:     outR,
		rd:      bufio.NewReaderSize(outR, 64<<10),
		done:    make(chan struct{}),
		logDone: make(chan struct{}),
	}
	started := make(chan error, 1)
	// The goroutine that starts the process keeps its OS thread until the
	// process is reaped: Pdeathsig fires when the parent *thread* exits, so
	// the worker gets SIGKILL when the server dies, and not before.
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait() // the exit status is in ProcessState
		w.state = cmd.ProcessState
		close(w.done)
	}()
	err = <-started
	closeAll(inR, outW, errW)
	if err != nil {
		closeAll(inW, outR, errR)
		return nil, fmt.Errorf("start %s: %w", p.python, err)
	}
	w.pid = cmd.Process.Pid
	go w.copyStderr(errR)
	return w, nil
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// copyStderr sends the worker's output, line by line, to the service log
// and the pool's last lines.
func (w *worker) copyStderr(r *os.File) {
	defer close(w.logDone)
	defer r.Close()
	br := bufio.NewReaderSize(r, 16<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			w.p.outputLine(line)
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// awaitInit reads the worker's first frame: nil once init() returned.
func (w *worker) awaitInit() error {
	kind, payload, err := w.readFrame(nil)
	if err != nil {
		return w.deathError("init", err)
	}
	switch kind {
	case kindInitOK:
		return nil
	case kindInitError:
		return decodeScriptError(payload, "init")
	default:
		return fmt.Errorf("%w: frame %q before init", errProtocol, kind)
	}
}

// deathError explains a read that failed: the process's exit status when it
// has exited (waiting for it to be reaped), else the read error.
func (w *worker) deathError(during string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, os.ErrClosed) {
		w.kill() // a worker that closed its end without exiting
		<-w.done
		return &ExitError{During: during, Status: exitStatus(w.state)}
	}
	return err
}

func exitStatus(ps *os.ProcessState) string {
	if ps == nil {
		return "not reaped"
	}
	return ps.String()
}

func decodeScriptError(payload []byte, stage string) *ScriptError {
	se := &ScriptError{Stage: stage}
	if err := json.Unmarshal(payload, se); err != nil {
		se.Type, se.Message = "ProtocolError", "undecodable error report: "+err.Error()
	}
	return se
}

// Errors a call can end with besides a worker's death.
var (
	errTimeout      = errors.New("run() ran past the request timeout")
	errQueueTimeout = errors.New("request timed out before a worker started it")
	errNotStarted   = errors.New("the worker died before it started the request")
)

// send writes c's request frame and queues c for the reader. It returns
// false, without writing, when the worker takes no more calls; the caller
// then dispatches c again. After true, c.done receives exactly once.
func (w *worker) send(c *call) bool {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.qmu.Lock()
	if w.closed {
		w.qmu.Unlock()
		return false
	}
	if len(w.queue) == 0 {
		c.started = w.p.s.clock.Now().UnixNano() // an idle worker starts it at once
	}
	w.queue = append(w.queue, c)
	w.writing = c
	w.qmu.Unlock()
	binary.BigEndian.PutUint32(c.buf[:4], uint32(c.n))
	c.buf[4] = kindRequest
	// A failed write means the worker died: readLoop sees EOF and fails c.
	_, _ = w.in.Write(c.buf[:frameHeader+c.n])
	// c may be answered and reused already: only w is touched from here.
	w.qmu.Lock()
	w.writing = nil
	w.qmu.Unlock()
	return true
}

// readLoop answers queued calls with the worker's response frames until
// the worker ends, then fails what is left and restarts the slot (unless
// the pool is retiring).
func (w *worker) readLoop() {
	err := w.readResponses()
	w.qmu.Lock()
	w.closed = true
	queue := w.queue
	w.queue = nil
	w.qmu.Unlock()
	w.kill() // it may have broken the protocol while alive
	during := "run"
	if len(queue) == 0 {
		during = "idle"
	}
	cause := w.deathError(during, err)
	if len(queue) > 0 && queue[0].timedOut {
		cause = fmt.Errorf("killed: run() ran past the request timeout (%s)", w.p.s.requestTimeout())
	}
	for i, c := range queue {
		switch {
		case i > 0:
			c.err = errNotStarted
		case c.timedOut:
			c.err = errTimeout
		default:
			c.err = cause
		}
		c.done <- struct{}{}
	}
	w.wmu.Lock()
	_ = w.in.Close()
	w.wmu.Unlock()
	_ = w.out.Close()
	w.p.lost(w, cause)
}

// readResponses reads frames until an error; each answers queue[0].
func (w *worker) readResponses() error {
	for {
		if _, err := io.ReadFull(w.rd, w.hdr[:]); err != nil {
			return err
		}
		w.qmu.Lock()
		var c *call
		if len(w.queue) > 0 {
			c = w.queue[0]
		}
		w.qmu.Unlock()
		kind, n := w.hdr[4], binary.BigEndian.Uint32(w.hdr[:4])
		if c == nil || (kind != kindOK && kind != kindUserError) || n > maxResponse {
			return fmt.Errorf("%w: unexpected frame %q of %d bytes", errProtocol, kind, n)
		}
		if uint32(cap(c.out)) < n {
			c.out = make([]byte, n)
		}
		c.out = c.out[:n]
		if _, err := io.ReadFull(w.rd, c.out); err != nil {
			return err
		}
		c.kind = kind
		w.qmu.Lock()
		last := len(w.queue) - 1
		copy(w.queue, w.queue[1:]) // at most pipelineDepth long
		w.queue[last] = nil
		w.queue = w.queue[:last]
		if last > 0 { // the worker goes on with the next request in its pipe
			w.queue[0].started = w.p.s.clock.Now().UnixNano()
		}
		if c.timedOut {
			c.err = errTimeout // the watchdog decided first: 504 either way
		}
		w.qmu.Unlock()
		// Refill the pipe first, then wake the handler: it then runs right
		// after this goroutine parks, on the same P.
		w.p.answered(w)
		c.done <- struct{}{} // c belongs to its handler again
	}
}

// expire is the watchdog's check of w at clock time now (Unix ns). It
// kills w when the call it runs started timeout or more ago (its handler
// answers 504 and the slot restarts). Otherwise it gives back, with
// errQueueTimeout, each call waiting in w's pipe that arrived timeout or
// more ago: nothing is killed; w still runs it when it gets there, for a
// stand-in whose answer is discarded.
func (w *worker) expire(now, timeout int64) {
	w.qmu.Lock()
	if w.closed || len(w.queue) == 0 {
		w.qmu.Unlock()
		return
	}
	if c := w.queue[0]; c.started != 0 && now-c.started >= timeout {
		c.timedOut = true
		w.closed = true
		w.kill()
		w.qmu.Unlock()
		return // the calls behind it are dispatched again (or time out then)
	}
	var expired [pipelineDepth]*call
	n := 0
	for i := 1; i < len(w.queue); i++ {
		c := w.queue[i]
		// A frame still being written may be answered before send
		// returns; send owns it until then.
		if c.abandoned || c == w.writing || now-c.arrival < timeout {
			continue
		}
		w.queue[i] = &call{abandoned: true, done: make(chan struct{}, 1)}
		expired[n] = c
		n++
	}
	w.qmu.Unlock()
	for _, c := range expired[:n] {
		c.err = errQueueTimeout
		c.done <- struct{}{} // c belongs to its handler again
	}
}

// readFrame reads one frame, its payload into buf's storage when it fits.
func (w *worker) readFrame(buf []byte) (byte, []byte, error) {
	if _, err := io.ReadFull(w.rd, w.hdr[:]); err != nil {
		return 0, buf, err
	}
	n := binary.BigEndian.Uint32(w.hdr[:4])
	if n > maxResponse {
		return 0, buf, fmt.Errorf("%w: frame of %d bytes", errProtocol, n)
	}
	if uint32(cap(buf)) < n {
		buf = make([]byte, n)
	} else {
		buf = buf[:n]
	}
	if _, err := io.ReadFull(w.rd, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, buf, err
	}
	return w.hdr[4], buf, nil
}

// kill sends SIGKILL to the worker's process group unless it was reaped.
func (w *worker) kill() {
	select {
	case <-w.done:
	default:
		_ = syscall.Kill(-w.pid, syscall.SIGKILL)
	}
}

// terminate asks an idle worker to end: EOF on its request pipe and SIGTERM
// to its process group.
func (w *worker) terminate() {
	w.wmu.Lock()
	_ = w.in.Close()
	w.wmu.Unlock()
	select {
	case <-w.done:
	default:
		_ = syscall.Kill(-w.pid, syscall.SIGTERM)
	}
}

// release closes the front end's pipe ends once the process is reaped.
func (w *worker) release() {
	<-w.done
	w.wmu.Lock()
	_ = w.in.Close()
	w.wmu.Unlock()
	_ = w.out.Close()
}
