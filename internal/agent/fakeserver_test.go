package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/internal/agentproto"
)

// fakeServer is a test double of the server's side of the agent protocol,
// kept as simple as the protocol allows: an in-memory record per attempt,
// switches to answer 503 (down) or 409 (fenced), and a wait helper.
type fakeServer struct {
	t     testing.TB
	srv   *httptest.Server
	token string

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	pending   []agentproto.Assignment
	cancels   map[string]bool
	shutdown  bool
	blobs     map[string][]byte
	attempts  map[string]*fakeAttempt
	down      bool
	fenced    map[string]bool
	rejected  int // answers 503 while down
	workPolls int
	running   []string // from the last heartbeat
	active    int      // started and not finished
	maxActive int
	logGaps   int // log posts whose offset was past the stored end
	sentAt    map[string]time.Time
}

type fakeAttempt struct {
	starts   int
	log      []byte
	files    map[string][]byte
	uploads  [][]string // file names in each upload
	finish   *agentproto.Finish
	finishes int
}

func newFakeServer(t testing.TB) *fakeServer {
	s := &fakeServer{
		t:        t,
		token:    "hangar_node_" + strconv.Itoa(os.Getpid()),
		changed:  make(chan struct{}),
		cancels:  map[string]bool{},
		blobs:    map[string][]byte{},
		attempts: map[string]*fakeAttempt{},
		fenced:   map[string]bool{},
		sentAt:   map[string]time.Time{},
	}
	p := agentproto.Prefix
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+p+"/heartbeat", s.heartbeat)
	mux.HandleFunc("GET "+p+"/work", s.work)
	mux.HandleFunc("GET "+p+"/blobs/{digest}", s.blob)
	mux.HandleFunc("POST "+p+"/attempts/{id}/start", s.start)
	mux.HandleFunc("POST "+p+"/attempts/{id}/logs", s.logs)
	mux.HandleFunc("PUT "+p+"/attempts/{id}/files", s.files)
	mux.HandleFunc("POST "+p+"/attempts/{id}/finish", s.finish)
	s.srv = httptest.NewServer(s.guard(mux))
	t.Cleanup(s.srv.Close)
	return s
}

// guard checks the token and answers 503 while the server is "down".
func (s *fakeServer) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+s.token {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		s.mu.Lock()
		down := s.down
		if down {
			s.rejected++
			s.notify()
		}
		s.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// notify wakes waiters; s.mu must be held.
func (s *fakeServer) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// attempt returns the record of id, creating it; s.mu must be held.
func (s *fakeServer) attempt(id string) *fakeAttempt {
	a := s.attempts[id]
	if a == nil {
		a = &fakeAttempt{files: map[string][]byte{}}
		s.attempts[id] = a
	}
	return a
}

// fencedReq answers 409 if the attempt is fenced; s.mu must be held.
func (s *fakeServer) fencedReq(w http.ResponseWriter, id string) bool {
	if s.fenced[id] {
		http.Error(w, "fenced", http.StatusConflict)
		return true
	}
	return false
}

func (s *fakeServer) pendingCancels() []string {
	var ids []string
	for id := range s.cancels {
		if a := s.attempts[id]; a == nil || a.finish == nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (s *fakeServer) heartbeat(w http.ResponseWriter, r *http.Request) {
	var hb agentproto.Heartbeat
	if err := json.NewDecoder(r.Body).Decode(&hb); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.running = hb.Running
	reply := agentproto.HeartbeatReply{Cancel: s.pendingCancels(), Shutdown: s.shutdown, IntervalMillis: 100}
	s.notify()
	s.mu.Unlock()
	writeJSON(w, reply)
}

func (s *fakeServer) work(w http.ResponseWriter, r *http.Request) {
	wait, _ := strconv.Atoi(r.URL.Query().Get("wait"))
	timeout := time.After(time.Duration(wait) * time.Second)
	for {
		s.mu.Lock()
		s.workPolls++
		work := agentproto.Work{Assignments: s.pending, Cancel: s.pendingCancels(), Shutdown: s.shutdown}
		for _, a := range s.pending {
			s.sentAt[a.AttemptID] = time.Now()
		}
		s.pending = nil
		ch := s.changed
		s.notify()
		s.mu.Unlock()
		if len(work.Assignments) > 0 || len(work.Cancel) > 0 || work.Shutdown {
			writeJSON(w, work)
			return
		}
		select {
		case <-ch:
		case <-timeout:
			w.WriteHeader(http.StatusNoContent)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (s *fakeServer) blob(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	b, ok := s.blobs[r.PathValue("digest")]
	s.mu.Unlock()
	if !ok {
		http.Error(w, "no such blob", http.StatusNotFound)
		return
	}
	_, _ = w.Write(b)
}

func (s *fakeServer) start(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fencedReq(w, id) {
		return
	}
	a := s.attempt(id)
	if a.starts == 0 {
		s.active++
		s.maxActive = max(s.maxActive, s.active)
	}
	a.starts++
	s.notify()
	writeJSON(w, struct{}{})
}

func (s *fakeServer) logs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	offset, err := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	if err != nil || offset < 0 {
		http.Error(w, "bad offset", http.StatusBadRequest)
		return
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fencedReq(w, id) {
		return
	}
	a := s.attempt(id)
	end := int64(len(a.log))
	switch {
	case offset > end:
		s.logGaps++ // a gap: store nothing, say where we are
	case offset+int64(len(data)) > end:
		a.log = append(a.log, data[end-offset:]...)
	}
	s.notify()
	writeJSON(w, agentproto.LogAck{Stored: int64(len(a.log))})
}

func (s *fakeServer) files(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	files, err := readTarGz(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fencedReq(w, id) {
		return
	}
	a := s.attempt(id)
	var names []string
	for name, b := range files {
		a.files[name] = b
		names = append(names, name)
	}
	slices.Sort(names)
	a.uploads = append(a.uploads, names)
	s.notify()
	writeJSON(w, struct{}{})
}

func (s *fakeServer) finish(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var fin agentproto.Finish
	if err := json.NewDecoder(r.Body).Decode(&fin); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fencedReq(w, id) {
		return
	}
	a := s.attempt(id)
	if a.finish == nil {
		a.finish = &fin
		if a.starts > 0 {
			s.active--
		}
	}
	a.finishes++
	s.notify()
	writeJSON(w, struct{}{})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Controls used by tests.

func (s *fakeServer) assign(asg agentproto.Assignment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = append(s.pending, asg)
	s.notify()
}

func (s *fakeServer) cancel(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancels[id] = true
	s.notify()
}

func (s *fakeServer) fence(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fenced[id] = true
	s.notify()
}

func (s *fakeServer) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
	s.notify()
}

func (s *fakeServer) askShutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdown = true
	s.notify()
}

// addBlob stores b and returns its digest.
func (s *fakeServer) addBlob(b []byte) string {
	sum := sha256.Sum256(b)
	d := "sha256:" + hex.EncodeToString(sum[:])
	s.mu.Lock()
	s.blobs[d] = b
	s.mu.Unlock()
	return d
}

// read returns a copy of what the server knows of attempt id.
func (s *fakeServer) read(id string) fakeAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.attempt(id)
	c := *a
	c.log = bytes.Clone(a.log)
	c.files = map[string][]byte{}
	for k, v := range a.files {
		c.files[k] = v
	}
	c.uploads = slices.Clone(a.uploads)
	return c
}

// waitFor blocks until cond (called with s.mu held) holds. The deadline is
// a safety net for a broken agent, not a timing assertion.
func (s *fakeServer) waitFor(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		s.mu.Lock()
		ok := cond()
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			s.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// waitFinish waits for the attempt's finish report and returns the record.
func (s *fakeServer) waitFinish(id string) fakeAttempt {
	s.t.Helper()
	s.waitFor("finish of "+id, func() bool { a := s.attempts[id]; return a != nil && a.finish != nil })
	return s.read(id)
}

// waitLog waits until the attempt's stored log contains substr.
func (s *fakeServer) waitLog(id, substr string) {
	s.t.Helper()
	s.waitFor("log of "+id+" to contain "+strconv.Quote(substr), func() bool {
		a := s.attempts[id]
		return a != nil && bytes.Contains(a.log, []byte(substr))
	})
}

// newTestAgent returns an agent configured for s, with a fresh Dir and a
// short log-shipping interval; edit may change the config.
func newTestAgent(t testing.TB, s *fakeServer, edit func(*Config)) *Agent {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() { makeWritable(dir) }) // runs before TempDir's removal
	cfg := Config{
		ServerURL: s.srv.URL,
		NodeID:    "node-1",
		Token:     s.token,
		Dir:       dir,
		Slots:     4,
		Logger:    testLogger(t),
		KillGrace: 5 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	a := New(cfg)
	a.logInterval = 50 * time.Millisecond
	return a
}

// startAgent runs a in the background until the returned stop is called
// (or the test ends); stop returns Run's error.
func startAgent(t testing.TB, a *Agent) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func runAgent(t testing.TB, s *fakeServer, edit func(*Config)) (*Agent, func() error) {
	t.Helper()
	a := newTestAgent(t, s, edit)
	return a, startAgent(t, a)
}

// makeWritable undoes the agent's read-only inputs so the test's temporary
// directory can be removed by a non-root user.
func makeWritable(dir string) {
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
}

// tarGz builds a snapshot-like archive; names ending in ".sh" or ".py" are
// executable.
func tarGz(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		mode := int64(0o644)
		if strings.HasSuffix(n, ".sh") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: mode, Size: int64(len(files[n])), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readTarGz(r io.Reader) (map[string][]byte, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		files[hdr.Name] = b
	}
}

// testLogger sends log lines to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tLogWriter struct{ t testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
