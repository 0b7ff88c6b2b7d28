package serving

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/hangar-ml/hangar/internal/clock"
)

// slog attribute keys.
const (
	keyComponent = "component"
	keyService   = "service"
	keyPool      = "pool"
	keyWorkers   = "workers"
	keyRequest   = "request_id"
	keyErr       = "err"
)

// tailLines is how many last lines of output an init error carries.
const tailLines = 20

// serviceLog is the service log file: worker output as it comes (each
// worker's stderr is a pipe that a goroutine of its own copies here, off the
// request path), and front-end events prefixed with a UTC timestamp and
// "hangar:". Past max bytes the file is rotated to path+".1".
type serviceLog struct {
	clock clock.Clock
	max   int64 // rotate past this size; <= 0: never
	mu    sync.Mutex
	path  string
	f     *os.File // nil: lines are dropped (the pools still keep their last lines)
	size  int64    // of f
}

func newServiceLog(c clock.Clock, max int64) *serviceLog {
	return &serviceLog{clock: c, max: max}
}

func (l *serviceLog) open(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, size, err := openAppend(path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.path, l.f, l.size = path, f, size
	if l.max > 0 && l.size > l.max { // left over from an earlier run
		l.rotateLocked()
	}
	l.mu.Unlock()
	return nil
}

func openAppend(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// writeLocked appends b and rotates the file once it is past the cap.
func (l *serviceLog) writeLocked(b []byte) {
	n, _ := l.f.Write(b)
	l.size += int64(n)
	if l.max > 0 && l.size > l.max {
		l.rotateLocked()
	}
}

// rotateLocked renames the file to path+".1", replacing an older one, and
// starts a new one. If that fails the file is emptied instead, so the cap
// holds either way.
func (l *serviceLog) rotateLocked() {
	_ = l.f.Close()
	l.f, l.size = nil, 0
	if err := os.Rename(l.path, l.path+".1"); err == nil {
		if f, size, err := openAppend(l.path); err == nil {
			l.f, l.size = f, size
			return
		}
	}
	if f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o644); err == nil {
		l.f = f
	}
}

func (l *serviceLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
}

// event writes one front-end line and returns it without the timestamp.
func (l *serviceLog) event(format string, args ...any) string {
	msg := "hangar: " + fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		ts := l.clock.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")
		l.writeLocked([]byte(ts + " " + msg + "\n"))
	}
	return msg
}

// output writes a line (or a piece of a long one) of worker output.
func (l *serviceLog) output(line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	if len(line) > 0 && line[len(line)-1] != '\n' {
		line = append(line[:len(line):len(line)], '\n')
	}
	l.writeLocked(line)
}

// lineRing keeps the last tailLines lines.
type lineRing struct {
	mu    sync.Mutex
	lines [tailLines]string
	next  int
	n     int
}

func (r *lineRing) add(line string) {
	const maxLine = 1000
	if len(line) > maxLine {
		line = line[:maxLine] + "…"
	}
	r.mu.Lock()
	r.lines[r.next] = line
	r.next = (r.next + 1) % tailLines
	r.n = min(r.n+1, tailLines)
	r.mu.Unlock()
}

// last returns up to n last lines, oldest first.
func (r *lineRing) last(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	n = min(n, r.n)
	out := make([]string, 0, n)
	for i := r.next - n; i < r.next; i++ {
		out = append(out, r.lines[(i+tailLines)%tailLines])
	}
	return out
}
