package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
)

func TestFollowRetry(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	unreachable := &client.UnreachableError{URL: "http://127.0.0.1:8265", Err: syscall.ECONNREFUSED}
	notFound := &api.Error{Code: "NotFound", Message: "run not found", Status: 404}
	unavailable := &api.Error{Code: "ServerError", Message: "busy", Status: 503}
	type step struct {
		ok        bool          // the server answered
		err       error         // else this failed
		at        time.Duration // since t0
		wantFirst bool
		wantStop  string // "" retry, "err" the error itself, "lost" a *lostError
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "never reached: stop at once", steps: []step{{err: unreachable, wantStop: "err"}}},
		{name: "a server error at the start is retried", steps: []step{
			{err: unavailable, wantFirst: true},
			{ok: true, at: time.Second},
		}},
		{name: "404 stops at once, even after answers", steps: []step{{ok: true}, {err: notFound, at: time.Second, wantStop: "err"}}},
		{name: "lost after an answer: retried until the limit", steps: []step{
			{ok: true},
			{err: unreachable, at: 10 * time.Second, wantFirst: true},
			{err: unreachable, at: 40 * time.Second},
			{err: unavailable, at: 69 * time.Second},
			{err: unreachable, at: 70 * time.Second, wantStop: "lost"},
		}},
		{name: "an answer starts the count again", steps: []step{
			{ok: true},
			{err: unreachable, at: 0, wantFirst: true},
			{err: unreachable, at: 50 * time.Second},
			{ok: true, at: 55 * time.Second},
			{err: unreachable, at: 100 * time.Second, wantFirst: true},
			{err: unreachable, at: 159 * time.Second},
			{err: unreachable, at: 160 * time.Second, wantStop: "lost"},
		}},
		{name: "canceled is not retried", steps: []step{{ok: true}, {err: context.Canceled, wantStop: "err"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := followRetry{limit: time.Minute}
			for i, s := range tt.steps {
				if s.ok {
					p.ok()
					continue
				}
				first, stop := p.failed(s.err, t0.Add(s.at))
				if first != s.wantFirst {
					t.Errorf("step %d: first = %v, want %v", i, first, s.wantFirst)
				}
				var lost *lostError
				switch got := stop; {
				case s.wantStop == "" && got != nil:
					t.Fatalf("step %d: stop = %v, want a retry", i, got)
				case s.wantStop == "err" && got != s.err:
					t.Fatalf("step %d: stop = %v, want %v", i, got, s.err)
				case s.wantStop == "lost" && !errors.As(got, &lost):
					t.Fatalf("step %d: stop = %v, want a *lostError", i, got)
				}
			}
		})
	}
}

// logsAPI fakes a run's log and status routes. Each GET of the run pops
// the next status (the last one stays); after failAfter answers (0: never)
// every request is cut off without an answer.
type logsAPI struct {
	mu        sync.Mutex
	log       string
	statuses  []string
	failAfter int
	answers   int
	onLogs    func(w http.ResponseWriter, r *http.Request) // replaces the log answer when set
}

func (f *logsAPI) routes() map[string]func(http.ResponseWriter, *http.Request) {
	cut := func(w http.ResponseWriter) bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.answers++
		if f.failAfter == 0 || f.answers <= f.failAfter {
			return false
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	}
	return map[string]func(http.ResponseWriter, *http.Request){
		"GET /workspaces/default/runs/run-1/logs": func(w http.ResponseWriter, r *http.Request) {
			if cut(w) {
				return
			}
			if f.onLogs != nil {
				f.onLogs(w, r)
				return
			}
			if r.URL.Query().Get("offset") == "" {
				fmt.Fprint(w, f.log)
			}
		},
		"GET /workspaces/default/runs/run-1": func(w http.ResponseWriter, r *http.Request) {
			if cut(w) {
				return
			}
			f.mu.Lock()
			st := f.statuses[0]
			if len(f.statuses) > 1 {
				f.statuses = f.statuses[1:]
			}
			f.mu.Unlock()
			r1 := api.Run{ID: "run-1", Status: st}
			if st == "Failed" {
				r1.Error = &api.RunError{Code: "UserError", Message: "user script exited with code 1", Details: "ValueError: bad"}
			}
			json.NewEncoder(w).Encode(r1)
		},
	}
}

// testApp is an app for srvURL with fast polling and a clock that moves
// 10 s each time it is read, so that giving up takes no real time.
func testApp(srvURL string) (a *app, stdout, stderr *bytes.Buffer) {
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	a = newApp(stdout, stderr)
	a.pollInterval = time.Millisecond
	a.loadSettings = func() (client.Settings, error) {
		return client.Settings{URL: srvURL, Token: "t", Workspace: "default", TokenFrom: client.EnvToken}, nil
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a.now = func() time.Time {
		now = now.Add(10 * time.Second)
		return now
	}
	return a, stdout, stderr
}

func TestRunLogsFollow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		api        *logsAPI
		url        string // instead of the fake server's
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{
			name:       "completed: exit 0",
			api:        &logsAPI{log: "epoch 1\n", statuses: []string{"Running", "Completed"}},
			wantStdout: "epoch 1\n",
			wantStderr: "Run run-1 Completed\n",
		},
		{
			name:       "failed: exit 1 with the error, as --stream",
			api:        &logsAPI{log: "about to fail\n", statuses: []string{"Failed"}},
			wantCode:   1,
			wantStdout: "about to fail\n",
			wantStderr: "Run run-1 Failed\nError: UserError: user script exited with code 1\nValueError: bad\n",
		},
		{
			name:       "server unreachable at the start: the usual error at once",
			url:        "http://127.0.0.1:1",
			wantCode:   1,
			wantStderr: "Error: cannot reach the Hangar server at http://127.0.0.1:1\nTry: hangar server\n",
		},
		{
			name:       "lost after it answered: retried, then given up with how to resume",
			api:        &logsAPI{log: "epoch 1\n", statuses: []string{"Running"}, failAfter: 2},
			wantCode:   1,
			wantStdout: "epoch 1\n",
			wantStderr: "Lost the connection to the server (EOF); retrying for up to 1m…\n" +
				"Error: gave up after 1m without an answer from the Hangar server at URL (EOF); run run-1 goes on on the server\n" +
				"Try: hangar run logs run-1 -f\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := tt.url
			if tt.api != nil {
				url = fakeServer(t, tt.api.routes()).URL
			}
			a, stdout, stderr := testApp(url)
			code := a.run(context.Background(), []string{"run", "logs", "run-1", "-f"})
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			if diff := cmp.Diff(tt.wantStdout, stdout.String()); diff != "" {
				t.Errorf("stdout (-want +got)\n%s", diff)
			}
			gotErr := strings.ReplaceAll(stderr.String(), url, "URL")
			if tt.url != "" {
				gotErr = stderr.String()
			}
			if diff := cmp.Diff(tt.wantStderr, gotErr); diff != "" {
				t.Errorf("stderr (-want +got)\n%s", diff)
			}
		})
	}
}

func TestRunLogsFollowNotFound(t *testing.T) {
	t.Parallel()
	srv := fakeServer(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /workspaces/default/runs/run-nope/logs": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(api.ErrorBody{Error: api.Error{Code: "NotFound", Message: `run "run-nope" not found in workspace default`, Hint: "hangar run list"}})
		},
	})
	code, stdout, stderr := runCLI(t, srv.URL, "run", "logs", "run-nope", "-f")
	if want := "Error: run \"run-nope\" not found in workspace default\nTry: hangar run list\n"; code != 1 || stdout != "" || stderr != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1, stderr %q", code, stdout, stderr, want)
	}
}

// TestFollowInterrupted: Ctrl-C while following says that the run goes on
// and how to follow it again, and exits 130.
func TestFollowInterrupted(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"run", "logs", "run-1", "-f"}, {"-o", "json", "run", "logs", "run-1", "-f"}} {
		ctx, cancel := context.WithCancel(context.Background())
		f := &logsAPI{statuses: []string{"Running"}, onLogs: func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "epoch 1\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}}
		a, stdout, stderr := testApp(fakeServer(t, f.routes()).URL)
		// The user presses Ctrl-C once the first line is shown.
		a.stdout = writerFunc(func(p []byte) (int, error) {
			defer cancel()
			return stdout.Write(p)
		})
		code := a.run(ctx, args)
		cancel()
		want := "Interrupted: run run-1 goes on on the server\nTry: hangar run logs run-1 -f\n"
		if code != ExitInterrupted || stdout.String() != "epoch 1\n" || stderr.String() != want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 130, stderr %q", args, code, stdout, stderr, want)
		}
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestServiceLogsFollowGivesUp(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	answers := 0
	cut := func(w http.ResponseWriter) bool {
		mu.Lock()
		defer mu.Unlock()
		answers++
		if answers <= 2 {
			return false
		}
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
		return true
	}
	srv := fakeServer(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /workspaces/default/services/svc/logs": func(w http.ResponseWriter, r *http.Request) {
			if !cut(w) && r.URL.Query().Get("offset") == "" {
				fmt.Fprint(w, "worker 1 ready\n")
			}
		},
		"GET /workspaces/default/services/svc": func(w http.ResponseWriter, r *http.Request) {
			if !cut(w) {
				json.NewEncoder(w).Encode(api.Service{Name: "svc", State: "Healthy"})
			}
		},
	})
	a, stdout, stderr := testApp(srv.URL)
	code := a.run(context.Background(), []string{"service", "logs", "svc", "-f"})
	want := "Lost the connection to the server (EOF); retrying for up to 1m…\n" +
		"Error: gave up after 1m without an answer from the Hangar server at URL (EOF); service svc goes on on the server\n" +
		"Try: hangar service logs svc -f\n"
	if diff := cmp.Diff(want, strings.ReplaceAll(stderr.String(), srv.URL, "URL")); code != 1 || stdout.String() != "worker 1 ready\n" || diff != "" {
		t.Errorf("exit %d, stdout %q, stderr (-want +got)\n%s", code, stdout, diff)
	}

	code, _, stderr2 := runCLI(t, "http://127.0.0.1:1", "service", "logs", "svc", "-f")
	if want := "Error: cannot reach the Hangar server at http://127.0.0.1:1\nTry: hangar server\n"; code != 1 || stderr2 != want {
		t.Errorf("unreachable: exit %d, stderr %q, want %q", code, stderr2, want)
	}
}
