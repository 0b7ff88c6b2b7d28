package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-ml/hangar/api"
)

// submitAPI fakes the routes of run submit, recording what was uploaded
// and submitted. Computes not in computes answer 404.
type submitAPI struct {
	mu       sync.Mutex
	computes map[string]bool
	envs     []api.Environment
	uploads  int
	submit   *api.RunSubmit
	answer   *api.Error // the answer to the submit, when set
}

func (f *submitAPI) handler(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := strings.TrimPrefix(r.URL.Path, "/api/v1/workspaces/default")
	notFound := func(msg string) {
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(api.ErrorBody{Error: api.Error{Code: "NotFound", Message: msg}})
	}
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/computes/"):
		name := strings.TrimPrefix(p, "/computes/")
		if !f.computes[name] {
			notFound("compute not found")
			return
		}
		json.NewEncoder(w).Encode(api.Compute{Name: name})
	case r.Method == http.MethodGet && p == "/environments":
		json.NewEncoder(w).Encode(api.List[api.Environment]{Value: f.envs})
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/environments/"):
		name, ver := strings.TrimPrefix(p, "/environments/"), r.URL.Query().Get("version")
		for _, e := range f.envs {
			if e.Name == name && (ver == "" || ver == strconv.Itoa(e.Version)) {
				json.NewEncoder(w).Encode(e)
				return
			}
		}
		notFound("environment not found")
	case r.Method == http.MethodHead:
		w.WriteHeader(http.StatusNotFound)
	case r.Method == http.MethodPost && p == "/blobs":
		io.Copy(io.Discard, r.Body)
		f.uploads++
		json.NewEncoder(w).Encode(api.Blob{Digest: "sha256:x"})
	case r.Method == http.MethodPost && p == "/runs":
		var s api.RunSubmit
		json.NewDecoder(r.Body).Decode(&s)
		f.submit = &s
		if f.answer != nil {
			w.WriteHeader(f.answer.Status)
			json.NewEncoder(w).Encode(api.ErrorBody{Error: *f.answer})
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(api.Run{ID: "run-1", Status: "Queued", Compute: s.Compute})
	default:
		notFound("no route " + r.Method + " " + p)
	}
}

func (f *submitAPI) server(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(f.handler))
	t.Cleanup(srv.Close)
	return srv
}

// project makes a source dir with train.py and a data file, and returns
// the dir.
func project(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"train.py": "print(1)\n", "data/digits.csv": "1,2\n"} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRunSubmitChecksNamesBeforeUploading(t *testing.T) {
	t.Parallel()
	dir := project(t)
	f := &submitAPI{computes: map[string]bool{"cpu": true}, envs: []api.Environment{
		{EnvironmentSpec: api.EnvironmentSpec{Name: "sk"}, Version: 1}, {EnvironmentSpec: api.EnvironmentSpec{Name: "sk"}, Version: 2}}}
	srv := f.server(t)
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{name: "unknown compute", args: []string{"--compute", "cpux"},
			wantStderr: "Error: compute: compute \"cpux\" not found in workspace default\nTry: hangar compute list\n"},
		{name: "unknown compute and environment", args: []string{"--compute", "cpux", "--environment", "skl"},
			wantStderr: "Error: compute: compute \"cpux\" not found in workspace default\nError: environment: environment \"skl\" not found in workspace default\nTry: hangar compute list\n"},
		{name: "unknown environment version", args: []string{"--compute", "cpu", "--environment", "sk:9"},
			wantStderr: "Error: environment: version 9 of environment sk does not exist; its versions: 1, 2\nTry: use --environment sk:2 (the latest)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"run", "submit", "--source-dir", dir, "--script", "train.py"}, tt.args...)
			code, stdout, stderr := runCLI(t, srv.URL, args...)
			if code != 1 || stdout != "" {
				t.Errorf("exit %d, stdout %q; want 1 and nothing", code, stdout)
			}
			if diff := cmp.Diff(tt.wantStderr, stderr); diff != "" {
				t.Errorf("stderr (-want +got)\n%s", diff)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.uploads != 0 || f.submit != nil {
				t.Errorf("%d uploads and submit %v before the names were checked", f.uploads, f.submit)
			}
		})
	}
}

func TestRunSubmitInputs(t *testing.T) {
	t.Parallel()
	dir := project(t)
	f := &submitAPI{computes: map[string]bool{"cpu": true}}
	srv := f.server(t)
	code, _, stderr := runCLI(t, srv.URL, "run", "submit", "--compute", "cpu", "--source-dir", dir, "--script", "train.py",
		"--input", "digits="+filepath.Join(dir, "data", "digits.csv"), "--input", "folder="+filepath.Join(dir, "data"))
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	want := []api.RunInput{
		{Name: "digits", Digest: "sha256:x", FileName: "digits.csv"},
		{Name: "folder", Digest: "sha256:x", Dir: true},
	}
	if diff := cmp.Diff(want, f.submit.Inputs); diff != "" {
		t.Errorf("inputs (-want +got)\n%s", diff)
	}

	// The server's field names become the flags the user typed.
	f.answer = &api.Error{Code: "InvalidField", Field: "inputs[1].name", Message: "x", Status: 400, Details: []*api.Error{
		{Code: "InvalidField", Field: "inputs[1].name", Message: `"2x" must be a letter followed by up to 63 letters, digits or '_'`},
		{Code: "InvalidField", Field: "max_run_duration_seconds", Message: "too long"},
		{Code: "InvalidField", Field: "node_count", Message: "(2) is more than compute cpu's max_nodes (1)"},
	}}
	code, _, stderr = runCLI(t, srv.URL, "run", "submit", "--compute", "cpu", "--source-dir", dir, "--script", "train.py",
		"--input", "a="+filepath.Join(dir, "train.py"), "--input", "2x="+filepath.Join(dir, "train.py"))
	wantErr := `Error: --input 2x: "2x" must be a letter followed by up to 63 letters, digits or '_'
Error: --max-run-duration: too long
Error: node_count: (2) is more than compute cpu's max_nodes (1)
`
	if diff := cmp.Diff(wantErr, stderr[strings.Index(stderr, "Error:"):]); code != 1 || diff != "" {
		t.Errorf("exit %d, stderr (-want +got)\n%s", code, diff)
	}
}

func TestQuotaSetNamesTheFlag(t *testing.T) {
	t.Parallel()
	srv := fakeServer(t, map[string]func(http.ResponseWriter, *http.Request){
		"PUT /workspaces/default/quotas": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(api.ErrorBody{Error: api.Error{Code: "InvalidField", Field: "vcpus_limit", Message: "(-1) must be >= 0"}})
		},
	})
	code, _, stderr := runCLI(t, srv.URL, "quota", "set", "--family", "f", "--vm-priority", "dedicated", "--vcpus", "-1")
	if want := "Error: --vcpus: (-1) must be >= 0\n"; code != 1 || stderr != want {
		t.Errorf("exit %d, stderr %q, want %q", code, stderr, want)
	}
}

func TestEnvironmentShowMissingVersion(t *testing.T) {
	t.Parallel()
	f := &submitAPI{envs: []api.Environment{
		{EnvironmentSpec: api.EnvironmentSpec{Name: "sklearn"}, Version: 1}, {EnvironmentSpec: api.EnvironmentSpec{Name: "sklearn"}, Version: 2}}}
	srv := f.server(t)
	code, _, stderr := runCLI(t, srv.URL, "environment", "show", "sklearn", "--version", "9")
	want := "Error: version 9 of environment sklearn does not exist; its versions: 1, 2\nTry: hangar environment show sklearn --version 2\n"
	if code != 1 || stderr != want {
		t.Errorf("exit %d, stderr %q, want %q", code, stderr, want)
	}
	code, _, stderr = runCLI(t, srv.URL, "environment", "show", "nope", "--version", "9")
	if want := "Error: environment not found\n"; code != 1 || stderr != want {
		t.Errorf("unknown name: exit %d, stderr %q, want the server's %q", code, stderr, want)
	}
}

func TestCheckOutputDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "afile")
	os.WriteFile(file, nil, 0o644)
	for _, tt := range []struct {
		dir, wantErr string
	}{
		{dir: dir},
		{dir: filepath.Join(dir, "new", "deeper")},
		{dir: file, wantErr: "--output-dir: " + file + " is not a directory"},
		{dir: filepath.Join(file, "sub"), wantErr: "--output-dir: " + filepath.Join(file, "sub") + " cannot be made: " + file + " is not a directory"},
	} {
		err := checkOutputDir(tt.dir)
		if got := errString(err); got != tt.wantErr {
			t.Errorf("checkOutputDir(%s) = %q, want %q", tt.dir, got, tt.wantErr)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
