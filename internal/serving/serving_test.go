package serving_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/internal/clock"
	"github.com/hangar-ml/hangar/internal/serving"
)

// hangGuard bounds every wait in these tests; nothing asserts a duration.
const hangGuard = 2 * time.Minute

func pythonOrSkip(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH")
	}
	return p
}

// scriptDir writes files (name → content) into a new source dir.
func scriptDir(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func poolFor(t *testing.T, src string) serving.PoolConfig {
	t.Helper()
	return serving.PoolConfig{
		Python:      pythonOrSkip(t),
		SourceDir:   scriptDir(t, map[string]string{"score.py": src}),
		EntryScript: "score.py",
		InitTimeout: hangGuard,
	}
}

// startService starts cfg (defaults filled in for tests) and stops it at cleanup.
func startService(t *testing.T, cfg serving.Config) *serving.Service {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "svc"
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.LogPath == "" {
		cfg.LogPath = filepath.Join(t.TempDir(), "service.log")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	s, err := serving.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

func settle(t *testing.T, s *serving.Service) serving.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	st := s.WaitSettled(ctx)
	if st.State == serving.Transitioning {
		t.Fatalf("not settled within the hang guard: %+v", st)
	}
	return st
}

func healthy(t *testing.T, cfg serving.Config) *serving.Service {
	t.Helper()
	s := startService(t, cfg)
	if st := settle(t, s); st.State != serving.Healthy {
		t.Fatalf("state %s, want Healthy: %s", st.State, st.Error)
	}
	return s
}

type response struct {
	status int
	header http.Header
	body   string
}

// errorBody is the JSON error answer.
type errorBody struct {
	Error struct {
		Code             string `json:"code"`
		Message          string `json:"message"`
		Hint             string `json:"hint"`
		RequestID        string `json:"request_id"`
		Offset           *int   `json:"offset"`
		Line             int    `json:"line"`
		Column           int    `json:"column"`
		ExceptionType    string `json:"exception_type"`
		ExceptionMessage string `json:"exception_message"`
	} `json:"error"`
}

func (r response) errorBody(t *testing.T) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return e
}

var client = &http.Client{Timeout: hangGuard}

func do(t *testing.T, method, url, contentType, body string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s %s: no X-Request-Id", method, url)
	}
	return r
}

func score(t *testing.T, s *serving.Service, body string) response {
	t.Helper()
	return do(t, "POST", scoreURL(s), "application/json", body, nil)
}

func scoreURL(s *serving.Service) string { return fmt.Sprintf("http://127.0.0.1:%d/score", s.Port()) }

func wantStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// eventually polls cond (every 10 ms, up to the hang guard).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const echoScript = `
import json
def init():
    pass
def run(raw_data):
    return json.loads(raw_data)
`

func TestScoreEcho(t *testing.T) {
	t.Parallel()
	s := healthy(t, serving.Config{Pool: poolFor(t, echoScript)})
	r := score(t, s, `{"data": [[1, 2.5, "x"]], "ü": "ß"}`)
	wantStatus(t, r, 200)
	if got, want := r.body, `{"data": [[1, 2.5, "x"]], "\u00fc": "\u00df"}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	r = do(t, "POST", scoreURL(s), "", `[1,2,3]`, map[string]string{"X-Request-Id": "my-id-1"})
	wantStatus(t, r, 200)
	if id := r.header.Get("X-Request-Id"); id != "my-id-1" {
		t.Errorf("X-Request-Id %q, want the client's", id)
	}
	st := s.Status()
	if st.State != serving.Healthy || !st.Ready || st.Workers != 1 || st.WorkersReady != 1 || st.Generation != 1 {
		t.Errorf("status %+v", st)
	}
}

func TestScoreResultTypes(t *testing.T) {
	t.Parallel()
	s := healthy(t, serving.Config{Pool: poolFor(t, `
def run(raw_data):
    kind = raw_data.strip()
    if kind == "str":
        return "plain text"
    if kind == "bytes":
        return b"some bytes"
    if kind == "none":
        return None
    if kind == "set":
        return {1, 2}
    if kind == "utf8":
        return "é".encode()
    if kind == "latin1":
        return "é".encode("latin-1")
    if kind == "nan":
        return [1.0, float("nan")]
    if kind == "inf":
        return {"x": float("inf")}
    return {"got": raw_data}
`)})
	for _, tc := range []struct{ in, want string }{
		{"str", `"plain text"`},
		{"bytes", `"some bytes"`},
		{"utf8", `"\u00e9"`},
		{"none", `null`},
		{"hello", `{"got": "hello"}`},
	} {
		r := do(t, "POST", scoreURL(s), "text/plain", tc.in, nil)
		wantStatus(t, r, 200)
		if r.body != tc.want {
			t.Errorf("run returning %s: body %s, want %s", tc.in, r.body, tc.want)
		}
	}
	for _, tc := range []struct{ in, message, excType string }{
		{"set", "not JSON-serialisable", "TypeError"},
		{"nan", "not JSON-serialisable", "ValueError"},
		{"inf", "not JSON-serialisable", "ValueError"},
		{"latin1", "run() returned bytes that are not UTF-8", "UnicodeDecodeError"},
	} {
		r := do(t, "POST", scoreURL(s), "text/plain", tc.in, nil)
		wantStatus(t, r, 500)
		if e := r.errorBody(t).Error; e.Code != "RunFailed" || !strings.Contains(e.Message, tc.message) || e.ExceptionType != tc.excType {
			t.Errorf("run returning %s: %+v", tc.in, e)
		}
	}
}

func TestRunRaises(t *testing.T) {
	t.Parallel()
	cfg := serving.Config{Pool: poolFor(t, `
def init():
    pass
def run(raw_data):
    raise ValueError("bad input: " + raw_data)
`)}
	cfg.LogPath = filepath.Join(t.TempDir(), "svc.log")
	s := healthy(t, cfg)
	r := score(t, s, `"abc"`)
	wantStatus(t, r, 500)
	e := r.errorBody(t)
	id := r.header.Get("X-Request-Id")
	if e.Error.Code != "RunFailed" || e.Error.RequestID != id || e.Error.ExceptionType != "ValueError" {
		t.Errorf("error %+v (request id %s)", e.Error, id)
	}
	for _, want := range []string{"run()", "ValueError", `bad input: "abc"`, id} {
		if !strings.Contains(e.Error.Message, want) {
			t.Errorf("message %q does not name %q", e.Error.Message, want)
		}
	}
	if strings.Contains(r.body, "Traceback") {
		t.Errorf("traceback sent to the client: %s", r.body)
	}
	log := readLog(t, cfg.LogPath)
	if !strings.Contains(log, "request "+id+": run() raised ValueError") || !strings.Contains(log, "Traceback (most recent call last)") ||
		!strings.Contains(log, `raise ValueError("bad input: " + raw_data)`) {
		t.Errorf("log lacks the request id or the traceback:\n%s", log)
	}
	// The worker survives an exception.
	if r := score(t, s, `"x"`); r.status != 500 || s.Metrics().WorkerRestarts != 0 {
		t.Errorf("second call: %d, restarts %d", r.status, s.Metrics().WorkerRestarts)
	}
}

func TestMalformedJSON(t *testing.T) {
	t.Parallel()
	s := healthy(t, serving.Config{Pool: poolFor(t, echoScript)})
	for _, tc := range []struct {
		name, body        string
		offset, line, col int
	}{
		{"bad value", `{"data": x}`, 9, 1, 10},
		{"second line", "{\n  \"a\": [1,,2]\n}", 12, 2, 11},
		{"truncated", `{"data": [1, 2`, 14, 1, 15},
		{"empty", ``, 0, 1, 1},
		{"trailing", `{} {}`, 3, 1, 4},
	} {
		r := score(t, s, tc.body)
		if r.status != 400 {
			t.Errorf("%s: status %d, want 400", tc.name, r.status)
			continue
		}
		e := r.errorBody(t).Error
		if e.Code != "MalformedJSON" || e.Offset == nil || *e.Offset != tc.offset || e.Line != tc.line || e.Column != tc.col {
			t.Errorf("%s: %+v (offset %v), want offset %d line %d column %d", tc.name, e, deref(e.Offset), tc.offset, tc.line, tc.col)
		}
		if want := fmt.Sprintf("line %d, column %d", tc.line, tc.col); !strings.Contains(e.Message, want) {
			t.Errorf("%s: message %q lacks %q", tc.name, e.Message, want)
		}
	}
	// text/plain is not validated.
	r := do(t, "POST", scoreURL(s), "text/plain", `{"data": x}`, nil)
	wantStatus(t, r, 500) // json.loads in run() raises
	if e := r.errorBody(t).Error; e.ExceptionType != "JSONDecodeError" {
		t.Errorf("text/plain body: %+v", e)
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestAuth(t *testing.T) {
	t.Parallel()
	s := healthy(t, serving.Config{Name: "digits", Pool: poolFor(t, echoScript),
		AuthEnabled: true, PrimaryKey: "primary-key-123", SecondaryKey: "secondary-key-456"})
	url := scoreURL(s)
	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
	}{
		{"missing", nil, 401},
		{"wrong", map[string]string{"Authorization": "Bearer nope"}, 401},
		{"wrong same length", map[string]string{"Authorization": "Bearer primary-key-124"}, 401},
		{"no scheme", map[string]string{"Authorization": "primary-key-123"}, 401},
		{"empty bearer", map[string]string{"Authorization": "Bearer "}, 401},
		{"primary", map[string]string{"Authorization": "Bearer primary-key-123"}, 200},
		{"secondary", map[string]string{"Authorization": "Bearer secondary-key-456"}, 200},
		{"scheme case", map[string]string{"Authorization": "bearer secondary-key-456"}, 200},
	} {
		r := do(t, "POST", url, "application/json", `{"a": 1}`, tc.header)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
			continue
		}
		if tc.status == 401 {
			e := r.errorBody(t).Error
			if e.Code != "Unauthorized" || !strings.Contains(e.Message, "get a key with: hangar service keys digits") {
				t.Errorf("%s: %+v", tc.name, e)
			}
			if r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: no WWW-Authenticate", tc.name)
			}
		}
	}
	// Liveness, readiness and the swagger document need no key.
	for _, path := range []string{"/", "/ready", "/swagger.json"} {
		if r := do(t, "GET", fmt.Sprintf("http://127.0.0.1:%d%s", s.Port(), path), "", "", nil); r.status != 200 {
			t.Errorf("GET %s: %d", path, r.status)
		}
	}

	s.SetKeys(true, "new-primary", "")
	if r := do(t, "POST", url, "", `1`, map[string]string{"Authorization": "Bearer primary-key-123"}); r.status != 401 {
		t.Errorf("old key after SetKeys: %d", r.status)
	}
	if r := do(t, "POST", url, "", `1`, map[string]string{"Authorization": "Bearer new-primary"}); r.status != 200 {
		t.Errorf("new key: %d", r.status)
	}
	s.SetKeys(false, "", "")
	if r := do(t, "POST", url, "", `1`, nil); r.status != 200 {
		t.Errorf("auth off: %d", r.status)
	}
}

func TestContentTypeAndSize(t *testing.T) {
	t.Parallel()
	s := healthy(t, serving.Config{Pool: poolFor(t, echoScript), MaxBodyBytes: 1000})
	url := scoreURL(s)
	for _, tc := range []struct {
		ct     string
		status int
	}{
		{"application/json", 200},
		{"application/json; charset=utf-8", 200},
		{"Application/JSON", 200},
		{"application/vnd.api+json", 200},
		{"text/plain; charset=utf-8", 200},
		{"application/x-www-form-urlencoded", 415},
		{"application/xml", 415},
		{"multipart/form-data; boundary=x", 415},
	} {
		r := do(t, "POST", url, tc.ct, `{"a": [1]}`, nil)
		if r.status != tc.status {
			t.Errorf("Content-Type %s: %d, want %d", tc.ct, r.status, tc.status)
		}
		if r.status == 415 {
			if e := r.errorBody(t).Error; e.Code != "UnsupportedMediaType" || !strings.Contains(e.Hint, "application/json") {
				t.Errorf("415: %+v", e)
			}
		}
	}
	big := `"` + strings.Repeat("x", 1000) + `"`
	r := score(t, s, big)
	wantStatus(t, r, 413)
	if e := r.errorBody(t).Error; e.Code != "PayloadTooLarge" {
		t.Errorf("413: %+v", e)
	}
	// Chunked: no Content-Length up front.
	req, _ := http.NewRequest("POST", url, io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("chunked over the limit: %d", resp.StatusCode)
	}
	// Just under the limit, chunked, goes through.
	ok := `"` + strings.Repeat("y", 990) + `"`
	req, _ = http.NewRequest("POST", url, io.MultiReader(strings.NewReader(ok)))
	req.ContentLength = -1
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != ok {
		t.Errorf("chunked under the limit: %d %.40s", resp.StatusCode, b)
	}
	if r := do(t, "GET", url, "", "", nil); r.status != 405 || r.header.Get("Allow") != "POST" {
		t.Errorf("GET /score: %d Allow %q", r.status, r.header.Get("Allow"))
	}
	if r := do(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/nope", s.Port()), "", "", nil); r.status != 404 {
		t.Errorf("GET /nope: %d", r.status)
	}
}

func TestLargeBodyAndResult(t *testing.T) {
	t.Parallel()
	s := healthy(t, serving.Config{Pool: poolFor(t, `
def run(raw_data):
    return raw_data * 3
`)})
	body := strings.Repeat("abcdefghij", 300_000) // 3 MB, several pipe buffers each way
	r := do(t, "POST", scoreURL(s), "text/plain", body, nil)
	wantStatus(t, r, 200)
	var got string
	if err := json.Unmarshal([]byte(r.body), &got); err != nil || got != body+body+body {
		t.Fatalf("large result: %v, %d bytes", err, len(got))
	}
}

func TestWorkerCrash(t *testing.T) {
	t.Parallel()
	s := healthy(t, serving.Config{Pool: poolFor(t, `
import os
def init():
    pass
def run(raw_data):
    if raw_data == '"crash"':
        os._exit(3)
    return {"pid": os.getpid()}
`)})
	before := score(t, s, `"hi"`)
	wantStatus(t, before, 200)
	r := score(t, s, `"crash"`)
	wantStatus(t, r, 503)
	if e := r.errorBody(t).Error; e.Code != "WorkerDied" || r.header.Get("Retry-After") == "" {
		t.Errorf("crash: %+v, Retry-After %q", e, r.header.Get("Retry-After"))
	}
	after := score(t, s, `"hi"`) // waits in the queue for the restarted worker
	wantStatus(t, after, 200)
	if before.body == after.body {
		t.Errorf("same worker pid before and after the crash: %s", after.body)
	}
	if m := s.Metrics(); m.WorkerRestarts != 1 || m.WorkerDied != 1 {
		t.Errorf("metrics %+v", m)
	}
	eventually(t, "worker back", func() bool { return s.Status().WorkersReady == 1 })
	if st := s.Status(); st.State != serving.Healthy {
		t.Errorf("after restart: %+v", st)
	}
}

func TestWorkerBreakingProtocol(t *testing.T) {
	t.Parallel()
	s := healthy(t, serving.Config{Pool: poolFor(t, `
import os
def run(raw_data):
    if raw_data == '"corrupt"':
        for fd in range(3, 10):  # the private protocol pipe is among them
            try:
                os.write(fd, b"\x00\x00\x00\x01Zgarbage")
            except OSError:
                pass
    return "fine"
`)})
	if r := score(t, s, `"corrupt"`); r.status != 503 {
		t.Errorf("corrupting request: %d %s", r.status, r.body)
	}
	if r := score(t, s, `"next"`); r.status != 200 || r.body != `"fine"` {
		t.Errorf("after a protocol violation: %d %s", r.status, r.body)
	}
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	cfg := serving.Config{RequestTimeout: 300 * time.Millisecond, LogPath: filepath.Join(t.TempDir(), "svc.log"), Pool: poolFor(t, `
import time
def run(raw_data):
    if raw_data == '"slow"':
        time.sleep(3600)
    return "fast"
`)}
	s := healthy(t, cfg)
	r := score(t, s, `"slow"`)
	wantStatus(t, r, 504)
	if e := r.errorBody(t).Error; e.Code != "Timeout" || !strings.Contains(e.Message, "restarting") {
		t.Errorf("timeout: %+v", e)
	}
	r = score(t, s, `"again"`)
	wantStatus(t, r, 200)
	if r.body != `"fast"` {
		t.Errorf("after timeout: %s", r.body)
	}
	if m := s.Metrics(); m.Timeouts != 1 || m.WorkerRestarts != 1 {
		t.Errorf("metrics %+v", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := s.Stop(ctx); err != nil { // flushes the log
		t.Fatal(err)
	}
	log := readLog(t, cfg.LogPath)
	if !strings.Contains(log, "ended: killed: run() ran past the request timeout (300ms); restarting it") || strings.Contains(log, "while idle") {
		t.Errorf("log does not say the worker was killed during run():\n%s", log)
	}
}

func TestTimeoutFollowsInjectedClock(t *testing.T) {
	t.Parallel()
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := healthy(t, serving.Config{Clock: fake, RequestTimeout: time.Hour, Pool: poolFor(t, `
import time
def run(raw_data):
    time.sleep(3600)
`)})
	done := make(chan response, 1)
	go func() { done <- score(t, s, `"slow"`) }()
	eventually(t, "request running", func() bool { return s.Metrics().Busy == 1 })
	// An hour of fake time passes in a few steps; the wall clock barely moves.
	deadline := time.Now().Add(hangGuard)
	for {
		select {
		case r := <-done:
			wantStatus(t, r, 504)
			return
		case <-time.After(10 * time.Millisecond):
			fake.Advance(10 * time.Minute)
		}
		if time.Now().After(deadline) {
			t.Fatal("no 504 after the fake clock passed the timeout")
		}
	}
}

func TestPrintDoesNotCorruptFrames(t *testing.T) {
	t.Parallel()
	cfg := serving.Config{LogPath: filepath.Join(t.TempDir(), "svc.log"), Pool: poolFor(t, `
import os, sys
def init():
    print("init says hello")
def run(raw_data):
    print("run says", raw_data, "\x00\x00\x00\x05O" * 3)
    sys.stdout.write("raw stdout write\n")
    os.write(1, b"fd 1 write\n")
    sys.stderr.write("to stderr\n")
    return {"ok": True}
`)}
	s := healthy(t, cfg)
	for range 5 {
		r := score(t, s, `"hi"`)
		wantStatus(t, r, 200)
		if r.body != `{"ok": true}` {
			t.Fatalf("body %q", r.body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := s.Stop(ctx); err != nil { // flushes the log
		t.Fatal(err)
	}
	log := readLog(t, cfg.LogPath)
	for _, want := range []string{"init says hello", `run says "hi"`, "raw stdout write", "fd 1 write", "to stderr"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestModelDirAndEnv(t *testing.T) {
	// Not parallel: sets the parent's environment.
	t.Setenv("HANGAR_TEST_SECRET", "must-not-leak")
	t.Setenv("TZ", "UTC")
	modelDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(modelDir, "model.txt"), []byte("weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	pc := poolFor(t, `
import os, sys
def init():
    global weights
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.txt")) as f:
        weights = f.read()
def run(raw_data):
    import helper
    return {
        "weights": weights,
        "hangar_model_dir": os.environ.get("HANGAR_MODEL_DIR") == os.environ.get("AZUREML_MODEL_DIR"),
        "secret": os.environ.get("HANGAR_TEST_SECRET"),
        "tz": os.environ.get("TZ"),
        "extra": os.environ.get("EXTRA"),
        "cwd_is_source": os.getcwd() == sys.path[0],
        "helper": helper.VALUE,
    }
`)
	if err := os.WriteFile(filepath.Join(pc.SourceDir, "helper.py"), []byte("VALUE = 42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pc.ModelDir = modelDir
	pc.Env = map[string]string{"EXTRA": "yes"}
	s := healthy(t, serving.Config{Pool: pc})
	r := score(t, s, `{}`)
	wantStatus(t, r, 200)
	want := `{"weights": "weights", "hangar_model_dir": true, "secret": null, "tz": "UTC", "extra": "yes", "cwd_is_source": true, "helper": 42}`
	if r.body != want {
		t.Errorf("body\n%s\nwant\n%s", r.body, want)
	}
}

func TestInitFailure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"init raises", `
def init():
    print("loading the model from somewhere")
    raise FileNotFoundError("model.pkl is missing")
def run(raw_data):
    return 1
`, []string{"init() raised FileNotFoundError: model.pkl is missing", "last log lines:", "loading the model from somewhere", "Traceback", `raise FileNotFoundError("model.pkl is missing")`}},
		{"import fails", `
import no_such_module_here
def run(raw_data):
    return 1
`, []string{"importing the entry script raised ModuleNotFoundError", "no_such_module_here"}},
		{"syntax error", "def run(raw_data)\n    return 1\n", []string{"importing the entry script raised SyntaxError"}},
		{"no run", "def init():\n    pass\n", []string{"AttributeError", "defines no run(raw_data) function"}},
		{"init exits", "import os\ndef init():\n    print('bye')\n    os._exit(7)\ndef run(raw_data):\n    return 1\n", []string{"the worker exited during init() (exit status 7)", "bye"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pc := poolFor(t, tc.src)
			pc.Workers = 2
			s := startService(t, serving.Config{Pool: pc})
			st := settle(t, s)
			if st.State != serving.Failed || st.Ready {
				t.Fatalf("status %+v, want Failed", st)
			}
			for _, w := range tc.want {
				if !strings.Contains(st.Error, w) {
					t.Errorf("Error lacks %q:\n%s", w, st.Error)
				}
			}
			r := score(t, s, `1`)
			wantStatus(t, r, 503)
			if e := r.errorBody(t).Error; e.Code != "NotReady" {
				t.Errorf("score on a failed service: %+v", e)
			}
			if r := do(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/", s.Port()), "", "", nil); r.status != 200 {
				t.Errorf("liveness on a failed service: %d", r.status)
			}
		})
	}
}

func TestInitTimeout(t *testing.T) {
	t.Parallel()
	pc := poolFor(t, `
import time
def init():
    print("thinking", flush=True)
    time.sleep(3600)
def run(raw_data):
    return 1
`)
	pc.InitTimeout = 500 * time.Millisecond
	s := startService(t, serving.Config{Pool: pc})
	st := settle(t, s)
	if st.State != serving.Failed || !strings.Contains(st.Error, "init() did not return within 500ms") {
		t.Fatalf("status %+v", st)
	}
}

func TestBadPoolConfig(t *testing.T) {
	t.Parallel()
	pc := poolFor(t, echoScript)
	pc.EntryScript = "missing.py"
	s := startService(t, serving.Config{Pool: pc})
	if st := settle(t, s); st.State != serving.Failed || !strings.Contains(st.Error, "entry script missing.py not found") {
		t.Fatalf("status %+v", st)
	}
	pc = poolFor(t, echoScript)
	pc.Python = "/nonexistent/python"
	err := s.Update(context.Background(), pc)
	if err == nil || !strings.Contains(err.Error(), "python interpreter /nonexistent/python not found") {
		t.Fatalf("Update: %v", err)
	}
}

// gate is a file a script waits for, so a test controls when init() or
// run() returns.
const gatedScript = `
import os, time
GATE = os.environ["GATE"]
def wait(name):
    open(GATE + "." + name + ".started", "w").close()
    while not os.path.exists(GATE + "." + name):
        time.sleep(0.01)
def init():
    wait("init")
def run(raw_data):
    if raw_data == '"block"':
        wait("run")
    return "done"
`

func openGate(t *testing.T, gate, name string) {
	t.Helper()
	if err := os.WriteFile(gate+"."+name, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func waitStarted(t *testing.T, gate, name string) {
	t.Helper()
	eventually(t, name+" started", func() bool {
		_, err := os.Stat(gate + "." + name + ".started")
		return err == nil
	})
}

func TestReadyOnlyAfterInit(t *testing.T) {
	t.Parallel()
	gate := filepath.Join(t.TempDir(), "gate")
	pc := poolFor(t, gatedScript)
	pc.Env = map[string]string{"GATE": gate}
	s := startService(t, serving.Config{Pool: pc})
	waitStarted(t, gate, "init")
	base := fmt.Sprintf("http://127.0.0.1:%d", s.Port())
	if r := do(t, "GET", base+"/ready", "", "", nil); r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("/ready during init: %d", r.status)
	}
	if r := do(t, "GET", base+"/", "", "", nil); r.status != 200 {
		t.Errorf("/ during init: %d", r.status)
	}
	if r := score(t, s, `1`); r.status != 503 {
		t.Errorf("/score during init: %d", r.status)
	}
	if st := s.Status(); st.State != serving.Transitioning || st.Ready || st.Pending != 1 {
		t.Errorf("status during init: %+v", st)
	}
	openGate(t, gate, "init")
	if st := settle(t, s); st.State != serving.Healthy {
		t.Fatalf("after init: %+v", st)
	}
	if r := do(t, "GET", base+"/ready", "", "", nil); r.status != 200 {
		t.Errorf("/ready after init: %d", r.status)
	}
}

func TestQueueFull(t *testing.T) {
	t.Parallel()
	gate := filepath.Join(t.TempDir(), "gate")
	pc := poolFor(t, gatedScript)
	pc.Env = map[string]string{"GATE": gate}
	openGate(t, gate, "init")
	s := healthy(t, serving.Config{Pool: pc, MaxQueue: 1})

	// One worker holds two requests (the running one and the next, in its
	// pipe); the queue holds one more; the fourth is refused.
	var wg sync.WaitGroup
	results := make([]response, 3)
	send := func(i int, body string) {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = score(t, s, body) }()
	}
	send(0, `"block"`)
	waitStarted(t, gate, "run")
	send(1, `"next"`)
	eventually(t, "second request in the worker's pipe", func() bool { return s.Metrics().Busy == 2 })
	send(2, `"queued"`)
	eventually(t, "one request queued", func() bool { return s.Metrics().Queued == 1 })

	r := score(t, s, `"rejected"`)
	wantStatus(t, r, 503)
	if e := r.errorBody(t).Error; e.Code != "Overloaded" || r.header.Get("Retry-After") != "1" {
		t.Errorf("queue full: %+v Retry-After %q", e, r.header.Get("Retry-After"))
	}
	openGate(t, gate, "run")
	wg.Wait()
	for i, r := range results {
		if r.status != 200 {
			t.Errorf("request %d: %d %s", i, r.status, r.body)
		}
	}
	if m := s.Metrics(); m.Overloaded != 1 || m.Succeeded != 3 {
		t.Errorf("metrics %+v", m)
	}
}

func TestCrashRedispatchesWaitingRequest(t *testing.T) {
	t.Parallel()
	gate := filepath.Join(t.TempDir(), "gate")
	pc := poolFor(t, `
import os, time
GATE = os.environ["GATE"]
def run(raw_data):
    if raw_data == '"crash"':
        open(GATE + ".started", "w").close()
        while not os.path.exists(GATE):
            time.sleep(0.01)
        os._exit(3)
    return {"pid": os.getpid()}
`)
	pc.Env = map[string]string{"GATE": gate}
	s := healthy(t, serving.Config{Pool: pc})
	crashed := make(chan response, 1)
	go func() { crashed <- score(t, s, `"crash"`) }()
	eventually(t, "crash request running", func() bool { _, err := os.Stat(gate + ".started"); return err == nil })
	next := make(chan response, 1)
	go func() { next <- score(t, s, `"next"`) }()
	eventually(t, "next request in the worker's pipe", func() bool { return s.Metrics().Busy == 2 })
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := <-crashed; r.status != 503 {
		t.Errorf("crashing request: %d %s", r.status, r.body)
	}
	if r := <-next; r.status != 200 {
		t.Errorf("request waiting behind the crash: %d %s, want 200 from the restarted worker", r.status, r.body)
	}
}

const versionScript = `
import os
VERSION = os.environ["VERSION"]
def init():
    if VERSION == "broken":
        print("about to fail")
        raise RuntimeError("cannot load model v-broken")
def run(raw_data):
    return VERSION
`

func versionPool(t *testing.T, dir, version string) serving.PoolConfig {
	return serving.PoolConfig{Python: pythonOrSkip(t), SourceDir: dir, EntryScript: "score.py",
		Env: map[string]string{"VERSION": version}, Workers: 2, InitTimeout: hangGuard}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	dir := scriptDir(t, map[string]string{"score.py": versionScript})
	s := healthy(t, serving.Config{Pool: versionPool(t, dir, "v1")})
	if r := score(t, s, `1`); r.body != `"v1"` {
		t.Fatalf("v1: %s", r.body)
	}

	// Load keeps going during the failed update: every answer is v1.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string]int{}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := score(t, s, `1`)
				mu.Lock()
				answers[fmt.Sprint(r.status, " ", r.body)]++
				mu.Unlock()
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	err := s.Update(ctx, versionPool(t, dir, "broken"))
	if err == nil {
		t.Fatal("update with a failing init() succeeded")
	}
	for _, want := range []string{"init() raised RuntimeError: cannot load model v-broken", "about to fail"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("update error lacks %q:\n%v", want, err)
		}
	}
	// The caller (servicectl) says which update failed and what serves.
	if first, _, _ := strings.Cut(err.Error(), "\n"); strings.Contains(first, "keeps serving") || strings.Contains(first, "generation") {
		t.Errorf("update error is not only the cause: %v", err)
	}
	st := s.Status()
	if st.State != serving.Healthy || st.Generation != 1 || !strings.Contains(st.Error, "cannot load model v-broken") || !strings.Contains(st.Error, "keeps serving") {
		t.Errorf("after failed update: %+v", st)
	}
	if r := score(t, s, `1`); r.body != `"v1"` {
		t.Errorf("after failed update: %d %s", r.status, r.body)
	}

	// A good update swaps while the load goes on; afterwards only v2.
	if err := s.Update(ctx, versionPool(t, dir, "v2")); err != nil {
		t.Fatalf("update to v2: %v", err)
	}
	if r := score(t, s, `1`); r.body != `"v2"` {
		t.Errorf("after update: %d %s", r.status, r.body)
	}
	close(stop)
	wg.Wait()
	for a := range answers {
		if a != `200 "v1"` && a != `200 "v2"` {
			t.Errorf("answer during updates: %s (×%d)", a, answers[a])
		}
	}
	st = s.Status()
	if st.State != serving.Healthy || st.Generation != 3 || st.Error != "" || st.Workers != 2 {
		t.Errorf("after good update: %+v", st)
	}
}

func TestUpdateWaitsForRunningRequests(t *testing.T) {
	t.Parallel()
	gate := filepath.Join(t.TempDir(), "gate")
	pc := poolFor(t, gatedScript)
	pc.Env = map[string]string{"GATE": gate}
	openGate(t, gate, "init")
	s := healthy(t, serving.Config{Pool: pc})
	done := make(chan response, 1)
	go func() { done <- score(t, s, `"block"`) }()
	waitStarted(t, gate, "run")
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := s.Update(ctx, pc); err != nil { // the same code: init passes the gate at once
		t.Fatal(err)
	}
	if r := score(t, s, `"new"`); r.status != 200 {
		t.Errorf("new pool: %d", r.status)
	}
	openGate(t, gate, "run")
	if r := <-done; r.status != 200 || r.body != `"done"` {
		t.Errorf("request running during the swap: %d %s", r.status, r.body)
	}
}

func TestStopFreesPort(t *testing.T) {
	t.Parallel()
	s := healthy(t, serving.Config{Pool: poolFor(t, echoScript)})
	addr := fmt.Sprintf("127.0.0.1:%d", s.Port())
	if _, err := net.Listen("tcp", addr); err == nil {
		t.Fatal("port free while serving")
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port not freed: %v", err)
	}
	ln.Close()
	if err := s.Update(ctx, poolFor(t, echoScript)); err == nil {
		t.Error("Update after Stop succeeded")
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStartPortTaken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = serving.Start(context.Background(), serving.Config{Name: "svc", Addr: ln.Addr().String(), Pool: poolFor(t, echoScript)})
	if err == nil || !strings.Contains(err.Error(), "listen on") {
		t.Fatalf("Start on a taken port: %v", err)
	}
}

func TestSwagger(t *testing.T) {
	t.Parallel()
	s := healthy(t, serving.Config{Name: "digits", Pool: poolFor(t, echoScript), AuthEnabled: true, PrimaryKey: "k"})
	r := do(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/swagger.json", s.Port()), "", "", nil)
	wantStatus(t, r, 200)
	var doc struct {
		Swagger string                    `json:"swagger"`
		Paths   map[string]map[string]any `json:"paths"`
		Sec     map[string]any            `json:"securityDefinitions"`
	}
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Swagger != "2.0" || doc.Paths["/score"]["post"] == nil || doc.Sec["Bearer"] == nil {
		t.Errorf("swagger: %s", r.body)
	}
}

func TestDigitsSklearn(t *testing.T) {
	t.Parallel()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import sklearn").Run(); err != nil {
		t.Skip("no scikit-learn in /usr/bin/python3")
	}
	modelDir := t.TempDir()
	train := exec.Command(py, "-c", `
import pickle, sys
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
d = load_digits()
m = LogisticRegression(max_iter=2000).fit(d.data / 16.0, d.target)
pickle.dump(m, open(sys.argv[1], "wb"))
`, filepath.Join(modelDir, "model.pkl"))
	if out, err := train.CombinedOutput(); err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	src, err := os.ReadFile("../../examples/digits/score.py")
	if err != nil {
		t.Fatal(err)
	}
	pc := poolFor(t, string(src))
	pc.Python, pc.ModelDir, pc.Workers = py, modelDir, 2
	s := healthy(t, serving.Config{Pool: pc})
	zero := `{"data": [[0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0]]}`
	r := score(t, s, zero)
	wantStatus(t, r, 200)
	if r.body != `[0]` {
		t.Errorf("prediction %s, want [0]", r.body)
	}
	if r := score(t, s, `{"data": [[1, 2]]}`); r.status != 500 || !strings.Contains(r.body, "ValueError") {
		t.Errorf("wrong feature count: %d %s", r.status, r.body)
	}
}

func TestConcurrentLoad(t *testing.T) {
	t.Parallel()
	pc := poolFor(t, `
def run(raw_data):
    return raw_data
`)
	pc.Workers = 2
	s := healthy(t, serving.Config{Pool: pc})
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				body := fmt.Sprintf("client %d request %d %s", c, i, strings.Repeat("z", i*97))
				r := do(t, "POST", scoreURL(s), "text/plain", body, nil)
				want, _ := json.Marshal(body)
				if r.status != 200 || !bytes.Equal([]byte(r.body), want) {
					t.Errorf("client %d request %d: %d %.60s", c, i, r.status, r.body)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestSetKeysLogsOnlyChanges(t *testing.T) {
	t.Parallel()
	cfg := serving.Config{LogPath: filepath.Join(t.TempDir(), "svc.log"), Pool: poolFor(t, echoScript)}
	s := healthy(t, cfg)
	for range 3 { // as the service manager does every few seconds
		s.SetKeys(false, "", "")
	}
	s.SetKeys(true, "k1", "k2")
	s.SetKeys(true, "k1", "k2")
	s.SetKeys(true, "k3", "k2")
	s.SetKeys(true, "k3", "k2")
	if r := do(t, "POST", scoreURL(s), "", `1`, map[string]string{"Authorization": "Bearer k3"}); r.status != 200 {
		t.Errorf("new key: %d %s", r.status, r.body)
	}
	log := readLog(t, cfg.LogPath)
	if n, m := strings.Count(log, "auth enabled: true"), strings.Count(log, "keys changed"); n != 1 || m != 1 {
		t.Errorf("%d auth lines and %d key lines, want 1 and 1:\n%s", n, m, log)
	}
	if strings.Contains(log, "auth enabled: false") {
		t.Errorf("unchanged setting logged:\n%s", log)
	}
}

// hangingInit never returns from init() on its own; it marks that it started.
const hangingInit = `
import os, time
def init():
    open(os.environ["GATE"] + ".init.started", "w").close()
    time.sleep(3600)
def run(raw_data):
    return 1
`

func TestStopDuringHangingInit(t *testing.T) {
	t.Parallel()
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) // InitTimeout never elapses
	gate := filepath.Join(t.TempDir(), "gate")
	pc := poolFor(t, hangingInit)
	pc.Env = map[string]string{"GATE": gate}
	cfg := serving.Config{Clock: fake, LogPath: filepath.Join(t.TempDir(), "svc.log"), Pool: pc}
	s := startService(t, cfg)
	waitStarted(t, gate, "init")
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	// Had Stop waited for init(), only the hang guard would end it, with an error.
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if st := s.Status(); st.State != serving.Failed || st.Ready {
		t.Errorf("after Stop: %+v", st)
	}
	if log := readLog(t, cfg.LogPath); !strings.Contains(log, "pool 1 canceled: service stopped") {
		t.Errorf("log:\n%s", log)
	}
}

func TestNewerUpdateCancelsPendingOne(t *testing.T) {
	t.Parallel()
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) // InitTimeout never elapses
	dir := scriptDir(t, map[string]string{"score.py": versionScript})
	hang := filepath.Join(t.TempDir(), "hang")
	hanging := poolFor(t, hangingInit)
	hanging.Env = map[string]string{"GATE": hang}

	// Start's own deploy is superseded too, without passing through Failed.
	s := startService(t, serving.Config{Clock: fake, Pool: hanging})
	waitStarted(t, hang, "init")
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := s.Update(ctx, versionPool(t, dir, "v1")); err != nil {
		t.Fatalf("update superseding the first deploy: %v", err)
	}
	if st := settle(t, s); st.State != serving.Healthy || st.Generation != 2 {
		t.Fatalf("after superseding the first deploy: %+v", st)
	}

	if err := os.Remove(hang + ".init.started"); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- s.Update(ctx, hanging) }()
	waitStarted(t, hang, "init")
	if err := s.Update(ctx, versionPool(t, dir, "v2")); err != nil {
		t.Fatalf("newer update: %v", err)
	}
	if err := <-first; !errors.Is(err, serving.ErrSuperseded) {
		t.Errorf("superseded update: %v, want ErrSuperseded", err)
	}
	if r := score(t, s, `1`); r.body != `"v2"` {
		t.Errorf("after the newer update: %d %s", r.status, r.body)
	}
	if st := s.Status(); st.State != serving.Healthy || st.Error != "" || st.Generation != 4 {
		t.Errorf("status: %+v", st)
	}
}

func TestWorkerExitWhileIdle(t *testing.T) {
	t.Parallel()
	cfg := serving.Config{LogPath: filepath.Join(t.TempDir(), "svc.log"), Pool: poolFor(t, `
import os
def run(raw_data):
    return os.getpid()
`)}
	s := healthy(t, cfg)
	r := score(t, s, `1`)
	wantStatus(t, r, 200)
	var pid int
	if err := json.Unmarshal([]byte(r.body), &pid); err != nil {
		t.Fatal(err)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "worker restarted", func() bool { return s.Metrics().WorkerRestarts == 1 })
	want := fmt.Sprintf("pool 1 worker 0 (pid %d) ended: the worker exited while idle (signal: killed); restarting it", pid)
	// The restart is counted before its log line is written: wait for the line.
	eventually(t, "restart logged", func() bool { return strings.Contains(readLog(t, cfg.LogPath), "pool 1 worker 0 (pid") })
	log := readLog(t, cfg.LogPath)
	if !strings.Contains(log, want) || strings.Contains(log, "during run()") || strings.Contains(log, "generation") {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
}
