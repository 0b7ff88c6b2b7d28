package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
)

func TestShortDuration(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{0, "0s"},
		{59*time.Second + 900*time.Millisecond, "59s"},
		{time.Minute, "1m"},
		{3*time.Minute + 10*time.Second, "3m10s"},
		{2*time.Hour + 5*time.Minute + 59*time.Second, "2h5m"},
		{24 * time.Hour, "1d"},
		{30 * 24 * time.Hour, "30d"},
		{4*24*time.Hour + 3*time.Hour, "4d3h"},
	} {
		if got := shortDuration(tt.d); got != tt.want {
			t.Errorf("shortDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestByteSizeAndMoney(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KB", 3482: "3.4 KB", 12 << 20: "12.0 MB", 300 << 20: "300.0 MB", 300<<20 + 1: "300.0 MB", 3 << 30: "3.0 GB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
	for _, tt := range []struct {
		amount   float64
		currency string
		want     string
	}{
		{0, "USD", "$0.00"},
		{0.0123, "USD", "$0.0123"},
		{12.5, "", "$12.50"},
		{3, "EUR", "3.00 EUR"},
	} {
		if got := money(tt.amount, tt.currency); got != tt.want {
			t.Errorf("money(%v, %q) = %q, want %q", tt.amount, tt.currency, got, tt.want)
		}
	}
}

func TestWriteYAMLKeepsJSONKeysAndOrder(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	c := api.Compute{Name: "c", Type: "cluster", ProvisioningState: "Succeeded", ProvisioningErrors: []api.ProvisioningError{},
		Properties: api.ComputeProperties{VMSize: "STANDARD_D2_V2", ScaleSettings: &api.ScaleSettings{MaxNodes: ptr(2)}},
		Tags:       map[string]string{"n": "1"}, CreatedOn: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := writeYAML(&buf, c); err != nil {
		t.Fatal(err)
	}
	want := `name: c
type: cluster
tags:
  n: "1"
provisioning_state: Succeeded
provisioning_errors: []
properties:
  vm_size: STANDARD_D2_V2
  scale_settings:
    max_nodes: 2
created_on: "2026-01-02T03:04:05Z"
modified_on: "0001-01-01T00:00:00Z"
`
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestNodeSummary(t *testing.T) {
	t.Parallel()
	cluster := func(cur, minN, maxN int) *api.Compute {
		return &api.Compute{Type: "cluster", Status: &api.ComputeStatus{CurrentNodeCount: cur},
			Properties: api.ComputeProperties{ScaleSettings: &api.ScaleSettings{MinNodes: ptr(minN), MaxNodes: ptr(maxN)}}}
	}
	for _, tt := range []struct {
		c    *api.Compute
		want string
	}{
		{cluster(0, 0, 2), "0 of 2 max nodes; scales up when runs are queued"},
		{cluster(0, 1, 2), "0 of 2 max nodes; scaling up to the minimum of 1"},
		{cluster(1, 1, 2), "1 of 2 max nodes; keeps at least 1, scales up when runs are queued"},
		{&api.Compute{Type: "local"}, "ready"},
	} {
		if got := nodeSummary(tt.c); got != tt.want {
			t.Errorf("nodeSummary = %q, want %q", got, tt.want)
		}
	}
}

func TestComputeRowsAligned(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	tw := newTable(&buf)
	computeRows(tw, []api.Compute{
		{Name: "cpu-cluster", Type: "cluster", ProvisioningState: "Succeeded",
			Properties: api.ComputeProperties{VMSize: "STANDARD_D2_V2", VMPriority: "dedicated", ScaleSettings: &api.ScaleSettings{MinNodes: ptr(0), MaxNodes: ptr(4)}},
			Status:     &api.ComputeStatus{CurrentNodeCount: 1, QueuedRuns: 2, RunningRuns: 1}},
		{Name: "local", Type: "local", ProvisioningState: "Succeeded"},
	})
	tw.Flush()
	want := `NAME         TYPE     STATE      VM SIZE         PRIORITY   NODES  MIN  MAX  QUEUED  RUNNING
cpu-cluster  cluster  Succeeded  STANDARD_D2_V2  dedicated  1      0    4    2       1
local        local    Succeeded  -               -          -      -    -    -       -
`
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestReport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		tokenFrom  string
		notStarted bool
		wantCode   int
		wantErr    string
	}{
		{name: "usage before the command ran", err: errors.New(`unknown flag: --x`), notStarted: true, wantCode: 2,
			wantErr: "Error: unknown flag: --x\nTry: hangar --help\n"},
		{name: "usage from the command", err: usagef("bad"), wantCode: 2, wantErr: "Error: bad\nTry: hangar --help\n"},
		{name: "api error with field and hint", err: &api.Error{Code: "NotFound", Field: "compute", Message: `"x" not found`, Hint: "hangar compute list", Status: 404}, wantCode: 1,
			wantErr: "Error: compute: \"x\" not found\nTry: hangar compute list\n"},
		{name: "api error without field", err: &api.Error{Code: "Conflict", Message: "busy", Status: 409}, wantCode: 1, wantErr: "Error: busy\n"},
		{name: "api error with details", err: &api.Error{Code: "InvalidField", Field: "a", Message: "x (and: b: y)", Status: 400, Details: []*api.Error{
			{Code: "InvalidField", Field: "a", Message: "x"}, {Code: "InvalidField", Field: "b", Message: "y", Hint: "h"}}}, wantCode: 1,
			wantErr: "Error: a: x\nError: b: y\nTry: h\n"},
		{name: "unauthorized", err: &api.Error{Code: "Unauthorized", Message: "unknown token", Status: 401}, wantCode: 1,
			wantErr: "Error: unknown token\nTry: hangar login --url URL --token-file FILE (or set HANGAR_TOKEN)\n"},
		{name: "unauthorized, token from HANGAR_TOKEN", tokenFrom: "HANGAR_TOKEN",
			err: &api.Error{Code: "Unauthorized", Message: "unknown token", Hint: "check HANGAR_TOKEN or run hangar login again", Status: 401}, wantCode: 1,
			wantErr: "Error: unknown token\nTry: check HANGAR_TOKEN (the token sent comes from it), or unset it and run hangar login --url URL --token-file FILE\n"},
		{name: "unauthorized, token from a file that hides the one login writes", tokenFrom: "/work/.hangar/config.json",
			err: &api.Error{Code: "Unauthorized", Message: "unknown token", Hint: "check HANGAR_TOKEN or run hangar login again", Status: 401}, wantCode: 1,
			wantErr: "Error: unknown token\nTry: fix or remove /work/.hangar/config.json: the token sent comes from it, and it takes precedence over HOME/.hangar/config.json, which hangar login writes\n"},
		{name: "unauthorized, token from the file login writes", tokenFrom: "HOME/.hangar/config.json",
			err: &api.Error{Code: "Unauthorized", Message: "unknown token", Status: 401}, wantCode: 1,
			wantErr: "Error: unknown token\nTry: hangar login --url URL --token-file FILE (the token sent comes from HOME/.hangar/config.json)\n"},
		{name: "unauthorized, no token", tokenFrom: noToken,
			err: &api.Error{Code: "Unauthorized", Message: "missing bearer token", Status: 401}, wantCode: 1,
			wantErr: "Error: missing bearer token\nTry: hangar login --url URL --token-file FILE (no token was sent: none is set in HANGAR_TOKEN or a config file)\n"},
		{name: "unauthorized at login", tokenFrom: "--token-file tok",
			err: &api.Error{Code: "Unauthorized", Message: "unknown token", Status: 401}, wantCode: 1,
			wantErr: "Error: unknown token\nTry: check --token-file tok (a local server's admin token is in DATA_DIR/admin-token)\n"},
		{name: "address in use", err: &hintError{Err: errors.New("listen on :1: address already in use"), Hint: "stop it"}, wantCode: 1,
			wantErr: "Error: listen on :1: address already in use\nTry: stop it\n"},
		{name: "interrupted while following", err: &interruptedError{What: "run r goes on on the server", Hint: "hangar run logs r -f"}, wantCode: 130,
			wantErr: "Interrupted: run r goes on on the server\nTry: hangar run logs r -f\n"},
		{name: "connection refused", err: fmt.Errorf("list: %w", &client.UnreachableError{URL: "http://127.0.0.1:8265", Err: syscall.ECONNREFUSED}), wantCode: 1,
			wantErr: "Error: cannot reach the Hangar server at http://127.0.0.1:8265\nTry: hangar server\n"},
		{name: "remote host unknown", err: &client.UnreachableError{URL: "http://hangar.example:8265", Err: errors.New("no such host")}, wantCode: 1,
			wantErr: "Error: cannot reach the Hangar server at http://hangar.example:8265 (no such host)\nTry: check HANGAR_URL, or hangar login --url URL --token-file FILE\n"},
		{name: "field error", err: &fieldError{Field: "source_dir", Err: errors.New("too big"), Hint: "ignore"}, wantCode: 1, wantErr: "Error: source_dir: too big\nTry: ignore\n"},
		{name: "silent", err: errSilent, wantCode: 1, wantErr: ""},
		{name: "interrupted", err: context.Canceled, wantCode: 1, wantErr: "Error: interrupted\n"},
		{name: "other", err: errors.New("boom"), wantCode: 1, wantErr: "Error: boom\n"},
	}
	home, _ := os.UserHomeDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			a := newApp(&stdout, &stderr)
			a.started = !tt.notStarted
			a.tokenFrom = strings.ReplaceAll(tt.tokenFrom, "HOME/", home+"/")
			if code := a.report(nil, tt.err); code != tt.wantCode {
				t.Errorf("code = %d, want %d", code, tt.wantCode)
			}
			if diff := cmp.Diff(tt.wantErr, strings.ReplaceAll(stderr.String(), home+"/", "HOME/")); diff != "" {
				t.Errorf("stderr (-want +got)\n%s", diff)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}

// fakeServer answers the API routes in routes ("METHOD /path" under
// /api/v1) with the given status and JSON body, and records request bodies.
func fakeServer(t *testing.T, routes map[string]func(w http.ResponseWriter, r *http.Request)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := routes[r.Method+" "+strings.TrimPrefix(r.URL.Path, "/api/v1")]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(api.ErrorBody{Error: api.Error{Code: "NotFound", Message: "no route " + r.URL.Path}})
			return
		}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func runCLI(t *testing.T, srvURL string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(&out, &errb)
	a.pollInterval = time.Millisecond
	a.loadSettings = func() (client.Settings, error) {
		return client.Settings{URL: srvURL, Token: "t", Workspace: "default"}, nil
	}
	code = a.run(context.Background(), args)
	return code, out.String(), errb.String()
}

func TestComputeCreateWaitsAndKeepsJSONPure(t *testing.T) {
	t.Parallel()
	var body map[string]any
	polls := 0
	compute := func(state string) api.Compute {
		return api.Compute{Name: "cpu", Type: "cluster", ProvisioningState: state, ProvisioningErrors: []api.ProvisioningError{},
			Properties: api.ComputeProperties{ScaleSettings: &api.ScaleSettings{MinNodes: ptr(0), MaxNodes: ptr(2)}},
			Status:     &api.ComputeStatus{}}
	}
	srv := fakeServer(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /workspaces/default/computes": func(w http.ResponseWriter, r *http.Request) {
			if got := r.Header.Get("Authorization"); got != "Bearer t" {
				t.Errorf("Authorization = %q", got)
			}
			json.NewDecoder(r.Body).Decode(&body)
			w.WriteHeader(http.StatusAccepted)
			json.NewEncoder(w).Encode(compute("Creating"))
		},
		"GET /workspaces/default/computes/cpu": func(w http.ResponseWriter, r *http.Request) {
			polls++
			state := "Creating"
			if polls >= 3 {
				state = "Succeeded"
			}
			json.NewEncoder(w).Encode(compute(state))
		},
	})
	code, stdout, stderr := runCLI(t, srv.URL, "compute", "create", "amlcompute", "--name", "cpu", "--max-nodes", "2", "--min-nodes", "0", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	wantBody := map[string]any{"name": "cpu", "type": "cluster", "properties": map[string]any{
		"scale_settings": map[string]any{"min_nodes": float64(0), "max_nodes": float64(2)}}}
	if diff := cmp.Diff(wantBody, body); diff != "" {
		t.Errorf("request body (-want +got)\n%s", diff)
	}
	var got api.Compute
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", err, stdout)
	}
	if got.ProvisioningState != "Succeeded" {
		t.Errorf("printed state %q, want the final one", got.ProvisioningState)
	}
	if want := "Creating cpu… Succeeded (0 of 2 max nodes; scales up when runs are queued)\n"; stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
}

func TestComputeCreateFailedExits1(t *testing.T) {
	t.Parallel()
	srv := fakeServer(t, map[string]func(http.ResponseWriter, *http.Request){
		"POST /workspaces/default/computes": func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(api.Compute{Name: "cpu", Type: "cluster", ProvisioningState: "Failed",
				ProvisioningErrors: []api.ProvisioningError{{Code: "ProviderError", Message: "no agent binary"}}})
		},
	})
	code, stdout, stderr := runCLI(t, srv.URL, "compute", "create", "cluster", "--name", "cpu", "--max-nodes", "1")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.HasPrefix(stdout, "NAME ") {
		t.Errorf("stdout = %q, want the compute table", stdout)
	}
	if want := "Creating cpu… Failed\nError: ProviderError: no agent binary\n"; stderr != want {
		t.Errorf("stderr = %q, want %q", stderr, want)
	}
}

func TestComputeDeleteWaitsFor404(t *testing.T) {
	t.Parallel()
	gets := 0
	var force string
	srv := fakeServer(t, map[string]func(http.ResponseWriter, *http.Request){
		"DELETE /workspaces/default/computes/cpu": func(w http.ResponseWriter, r *http.Request) {
			force = r.URL.Query().Get("force")
			w.WriteHeader(http.StatusAccepted)
		},
		"GET /workspaces/default/computes/cpu": func(w http.ResponseWriter, r *http.Request) {
			gets++
			if gets > 2 {
				w.WriteHeader(http.StatusNotFound)
				json.NewEncoder(w).Encode(api.ErrorBody{Error: api.Error{Code: "NotFound", Message: "gone"}})
				return
			}
			json.NewEncoder(w).Encode(api.Compute{Name: "cpu", ProvisioningState: "Deleting"})
		},
	})
	code, stdout, stderr := runCLI(t, srv.URL, "compute", "delete", "cpu", "--force")
	if code != 0 || stdout != "" || stderr != "Deleting cpu… done\n" || force != "true" {
		t.Errorf("exit %d, stdout %q, stderr %q, force %q", code, stdout, stderr, force)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"nope"},
		{"compute", "nope"},
		{"compute", "create", "cluster", "--max-nodes", "x"},
		{"compute", "create", "cluster", "extra", "arg"},
		{"compute", "show"},
		{"compute", "show", "a", "b"},
		{"compute", "update", "a"},
		{"quota", "set"},
		{"run", "submit", "--compute", "c"},
		{"run", "submit", "--compute", "c", "--script", "a", "--command", "b"},
		{"run", "logs"},
		{"environment", "create"},
		{"-o", "csv", "compute", "list"},
		{"events", "--limit", "-1"},
		{"events", "--limit", "0"},
		{"events", "--limit", "1001"},
		{"run", "submit", "--script", "train.py"},
		{"run", "submit", "--compute", "c", "--script", "a.py", "--node-count", "0"},
		{"run", "submit", "--compute", "c", "--script", "a.py", "--input", "Data=a", "--input", "data=b"},
		{"server", "--addr", "nonsense"},
	} {
		code, stdout, stderr := runCLI(t, "http://127.0.0.1:1", args...)
		if code != 2 || stdout != "" || !strings.HasPrefix(stderr, "Error: ") || !strings.Contains(stderr, "\nTry: hangar") {
			t.Errorf("hangar %s: exit %d, stdout %q, stderr %q; want exit 2 with Error and Try", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

// TestUsageMessages pins the wording of usage errors that cobra would
// otherwise word for us.
func TestUsageMessages(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "submit", "--compute", "c"}, "Error: give --script or --command\nTry: hangar run submit --help\n"},
		{[]string{"run", "submit", "--compute", "c", "--script", "a", "--command", "b"}, "Error: give --script or --command, not both\nTry: hangar run submit --help\n"},
		{[]string{"run", "submit", "--compute", "c", "--script", "a", "--environment", "e", "--python", "p"}, "Error: give --environment or --python, not both\nTry: hangar run submit --help\n"},
		{[]string{"service", "update", "s", "--environment", "e", "--python", "p"}, "Error: give --environment or --python, not both\nTry: hangar service update --help\n"},
		{[]string{"service", "invoke", "s"}, "Error: give --data or --data-file\nTry: hangar service invoke --help\n"},
		{[]string{"run", "submit", "--script", "a.py"}, "Error: required flag(s) \"compute\" not set\nTry: hangar run submit --help\n"},
		{[]string{"run", "submit", "--compute", "c", "--script", "a.py", "--node-count", "0"}, "Error: --node-count must be >= 1, not 0\nTry: hangar run submit --help\n"},
		{[]string{"run", "submit", "--compute", "c", "--script", "a.py", "--input", "Data=a", "--input", "data=b"},
			"Error: --input Data and --input data both set HANGAR_INPUT_DATA (and name the same folder on a case-insensitive disk); give names that differ in more than case\nTry: hangar run submit --help\n"},
		{[]string{"events", "--limit", "0"}, "Error: --limit must be between 1 and 1000, not 0\nTry: hangar events --help\n"},
		{[]string{"server", "--addr", "nonsense"}, "Error: --addr: \"nonsense\": missing port in address; give HOST:PORT, e.g. 127.0.0.1:8265 (port 0 picks a free one)\nTry: hangar server --help\n"},
	} {
		code, stdout, stderr := runCLI(t, "http://127.0.0.1:1", tt.args...)
		if code != 2 || stdout != "" || stderr != tt.want {
			t.Errorf("hangar %s: exit %d, stdout %q, stderr:\n%s\nwant exit 2 and:\n%s", strings.Join(tt.args, " "), code, stdout, stderr, tt.want)
		}
	}
}

func TestFlagList(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		flags []string
		want  string
	}{
		{[]string{"a"}, "--a"},
		{[]string{"a", "b"}, "--a or --b"},
		{[]string{"a", "b", "c"}, "--a, --b or --c"},
	} {
		if got := flagList(tt.flags, "or"); got != tt.want {
			t.Errorf("flagList(%v) = %q, want %q", tt.flags, got, tt.want)
		}
	}
}

func TestHelpExits0(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{}, {"--help"}, {"compute"}, {"run", "submit", "--help"}, {"completion", "bash"}} {
		code, stdout, stderr := runCLI(t, "http://127.0.0.1:1", args...)
		if code != 0 || stdout == "" {
			t.Errorf("hangar %s: exit %d, stdout %d bytes, stderr %q", strings.Join(args, " "), code, len(stdout), stderr)
		}
	}
}
