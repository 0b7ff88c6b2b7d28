package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-ml/hangar/api"
)

// serviceAPI fakes the service routes: deploy and update answer with the
// next generation; each GET moves the fake manager one step along states
// (the observed generation reaches the new one at the last step).
type serviceAPI struct {
	t      *testing.T
	mu     sync.Mutex
	svc    api.Service
	states []string // what GETs show after a deploy or update, in order
	error  string   // the error of the last state
	gets   int
	body   map[string]any
	gone   bool
}

func (f *serviceAPI) server() *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		p := strings.TrimPrefix(r.URL.Path, "/api/v1/workspaces/default")
		switch {
		case r.Method == http.MethodHead && strings.HasPrefix(p, "/blobs/"):
			w.WriteHeader(http.StatusOK) // the snapshot is stored already
		case (r.Method == http.MethodPost && p == "/services") || (r.Method == http.MethodPatch && p == "/services/digits-svc"):
			f.body = nil
			json.NewDecoder(r.Body).Decode(&f.body)
			f.svc.Generation++
			f.svc.State, f.gets = "Transitioning", 0
			if f.svc.ObservedGeneration > 0 {
				f.svc.State = "Healthy" // the previous generation serves meanwhile
			}
			w.WriteHeader(http.StatusAccepted)
			json.NewEncoder(w).Encode(f.svc)
		case r.Method == http.MethodGet && p == "/services/digits-svc" && !f.gone:
			if f.gets < len(f.states) {
				f.svc.State = f.states[f.gets]
			}
			f.gets++
			if f.gets >= len(f.states) {
				f.svc.ObservedGeneration, f.svc.Error = f.svc.Generation, f.error
			}
			json.NewEncoder(w).Encode(f.svc)
		case r.Method == http.MethodDelete && p == "/services/digits-svc":
			f.gone = true
			w.WriteHeader(http.StatusAccepted)
			json.NewEncoder(w).Encode(f.svc)
		default:
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(api.ErrorBody{Error: api.Error{Code: "NotFound", Message: "no route " + r.Method + " " + p}})
		}
	}))
	f.t.Cleanup(srv.Close)
	return srv
}

func sourceDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "score.py"), []byte("def init(): pass\ndef run(d): return d\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestServiceDeployWaits(t *testing.T) {
	t.Parallel()
	f := &serviceAPI{t: t, svc: api.Service{Name: "digits-svc", Models: []api.ServiceModel{{Name: "digits", Version: 2}}, Workers: 1},
		states: []string{"Transitioning", "Transitioning", "Healthy"}}
	srv := f.server()
	code, stdout, stderr := runCLI(t, srv.URL, "service", "deploy", "--name", "digits-svc", "--model", "digits", "--entry-script", "score.py",
		"--source-dir", sourceDir(t), "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	// Only what was given is sent; the server applies the defaults.
	want := map[string]any{"name": "digits-svc", "models": []any{"digits"}, "entry_script": "score.py", "source_digest": f.body["source_digest"]}
	if d := cmp.Diff(want, f.body); d != "" {
		t.Errorf("request body (-want +got):\n%s", d)
	}
	if !strings.HasPrefix(f.body["source_digest"].(string), "sha256:") {
		t.Errorf("source_digest = %v", f.body["source_digest"])
	}
	var got api.Service
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || got.State != "Healthy" {
		t.Errorf("stdout = %q (%v), want the Healthy service as JSON", stdout, err)
	}
	if !strings.HasSuffix(stderr, "Deploying digits-svc (generation 1)… Healthy\n") {
		t.Errorf("stderr = %q", stderr)
	}
}

func TestServiceDeployFailedExits1(t *testing.T) {
	t.Parallel()
	f := &serviceAPI{t: t, svc: api.Service{Name: "digits-svc"}, states: []string{"Transitioning", "Failed"},
		error: "init() raised ValueError: no model.pkl\nlast log line"}
	srv := f.server()
	code, stdout, stderr := runCLI(t, srv.URL, "service", "deploy", "--name", "digits-svc", "--model", "digits", "--entry-script", "score.py",
		"--source-dir", sourceDir(t), "--workers", "2", "--auth", "key", "--request-timeout", "1m30s", "--port", "20001")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for k, v := range map[string]any{"workers": 2.0, "auth": "key", "request_timeout_seconds": 90.0, "port": 20001.0} {
		if f.body[k] != v {
			t.Errorf("body[%s] = %v, want %v", k, f.body[k], v)
		}
	}
	if !strings.HasPrefix(stdout, "NAME ") || !strings.Contains(stdout, "Failed") {
		t.Errorf("stdout = %q, want the service table", stdout)
	}
	wantErr := "Deploying digits-svc (generation 1)… Failed\nError: init() raised ValueError: no model.pkl\nlast log line\nTry: hangar service logs digits-svc\n"
	if !strings.HasSuffix(stderr, wantErr) {
		t.Errorf("stderr = %q, want it to end with %q", stderr, wantErr)
	}
}

// An update whose new version fails leaves the old one serving (Healthy)
// with the error: the command exits 1.
func TestServiceUpdateFailedKeepsServing(t *testing.T) {
	t.Parallel()
	f := &serviceAPI{t: t, svc: api.Service{Name: "digits-svc", State: "Healthy", Generation: 1, ObservedGeneration: 1},
		states: []string{"Healthy", "Healthy"}, error: "update to generation 2 failed; generation 1 keeps serving: init() raised"}
	srv := f.server()
	code, _, stderr := runCLI(t, srv.URL, "service", "update", "digits-svc", "--workers", "3", "-e", "A=1")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if d := cmp.Diff(map[string]any{"workers": 3.0, "env": map[string]any{"A": "1"}}, f.body); d != "" {
		t.Errorf("update body (-want +got):\n%s", d)
	}
	if want := "Updating digits-svc (generation 2)… Healthy\nError: update to generation 2 failed; generation 1 keeps serving: init() raised\n"; !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr = %q, want %q…", stderr, want)
	}
}

func TestServiceDeleteWaitsFor404(t *testing.T) {
	t.Parallel()
	f := &serviceAPI{t: t, svc: api.Service{Name: "digits-svc", State: "Healthy"}}
	srv := f.server()
	code, stdout, stderr := runCLI(t, srv.URL, "service", "delete", "digits-svc")
	if code != 0 || stdout != "" || stderr != "Deleting digits-svc… done\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestServiceInvoke(t *testing.T) {
	t.Parallel()
	var gotAuth, gotBody, gotType string
	status := http.StatusOK
	scorer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth, gotType = r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.WriteHeader(status)
		if status == http.StatusOK {
			io.WriteString(w, "[7]")
		} else {
			io.WriteString(w, `{"error": "run() raised ValueError: bad input", "request_id": "r1"}`)
		}
	}))
	t.Cleanup(scorer.Close)
	srv := fakeServer(t, map[string]func(http.ResponseWriter, *http.Request){
		"GET /workspaces/default/services/digits-svc": func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(api.Service{Name: "digits-svc", State: "Healthy", AuthEnabled: true, ScoringURI: scorer.URL + "/score"})
		},
		"GET /workspaces/default/services/digits-svc/keys": func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(api.ServiceKeys{PrimaryKey: "hsk_p", SecondaryKey: "hsk_s"})
		},
	})
	code, stdout, stderr := runCLI(t, srv.URL, "service", "invoke", "digits-svc", "--data", `{"data": [[1, 2]]}`)
	if code != 0 || stdout != "[7]\n" || stderr != "" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if gotAuth != "Bearer hsk_p" || gotBody != `{"data": [[1, 2]]}` || gotType != "application/json" {
		t.Errorf("scorer got auth %q, body %q, type %q", gotAuth, gotBody, gotType)
	}

	file := filepath.Join(t.TempDir(), "req.json")
	os.WriteFile(file, []byte(`{"data": []}`), 0o644)
	status = http.StatusInternalServerError
	code, stdout, stderr = runCLI(t, srv.URL, "service", "invoke", "digits-svc", "--data-file", file)
	if code != 1 || stdout != "" || gotBody != `{"data": []}` {
		t.Errorf("exit %d, stdout %q, body sent %q", code, stdout, gotBody)
	}
	if want := "Error: service digits-svc answered 500 Internal Server Error\n{\"error\": \"run() raised ValueError: bad input\", \"request_id\": \"r1\"}\n"; stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
	code, _, stderr = runCLI(t, srv.URL, "service", "invoke", "digits-svc", "--data-file", file+".nope")
	if code != 1 || !strings.HasPrefix(stderr, "Error: --data-file: "+file+".nope: no such file or directory\n") {
		t.Errorf("missing file: exit %d, stderr %q", code, stderr)
	}
}
