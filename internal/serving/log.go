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
	keyComponent  = "component"
	keyService    = "service"
	keyGeneration = "generation"
	keyWorkers    = "workers"
	keyRequest    = "request_id"
	keyErr        = "err"
)

// tailLines is how many last lines of output an init error carries.
const tailLines = 20

// serviceLog is the service log file: worker output as it comes, and
// front-end events prefixed with a UTC timestamp and "hangar:".
type serviceLog struct {
	clock clock.Clock
	mu    sync.Mutex
	f     *os.File // nil: lines are dropped (the pools still keep their last lines)
}

func newServiceLog(c clock.Clock) *serviceLog { return &serviceLog{clock: c} }

func (l *serviceLog) open(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.f = f
	l.mu.Unlock()
	return nil
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
		_, _ = l.f.WriteString(ts + " " + msg + "\n")
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
	_, _ = l.f.Write(line)
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
