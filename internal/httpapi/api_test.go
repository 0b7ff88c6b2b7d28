package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
	"github.com/hangar-ml/hangar/internal/blob"
	"github.com/hangar-ml/hangar/internal/controller"
	"github.com/hangar-ml/hangar/internal/httpapi"
	"github.com/hangar-ml/hangar/internal/ids"
	"github.com/hangar-ml/hangar/internal/provider"
	"github.com/hangar-ml/hangar/internal/provider/local"
	"github.com/hangar-ml/hangar/internal/server"
	"github.com/hangar-ml/hangar/internal/snapshot"
	"github.com/hangar-ml/hangar/internal/store"
	"github.com/hangar-ml/hangar/internal/store/storetest"
	"github.com/hangar-ml/hangar/internal/vmsize"
)

// env is one in-process API over a real store, a real blob store and a real
// controller whose loop never runs: these tests are about the API edge, so
// nodes never start and runs stay where the API puts them.
type env struct {
	t     *testing.T
	url   string
	store store.Store
	// admin calls the API with the admin token; status holds the HTTP
	// status of its last answer.
	admin  *client.Client
	status *lastStatus
	secret string
	ctl    *controller.Controller
	// services stands in for the service manager.
	services *fakeServices
}

// lastStatus is an http.RoundTripper remembering the status of the last
// answer, so tests can check 201 and 202 through the public client.
type lastStatus struct {
	mu   sync.Mutex
	code int
}

func (l *lastStatus) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		l.mu.Lock()
		l.code = resp.StatusCode
		l.mu.Unlock()
	}
	return resp, err
}

func (l *lastStatus) get() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.code
}

// testLogger sends log lines to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tLogWriter struct{ t *testing.T }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func newEnv(t *testing.T, s store.Store) *env {
	t.Helper()
	ctx := t.Context()
	now := time.Now()
	if err := server.EnsureWorkspace(ctx, s, server.DefaultWorkspace, now); err != nil {
		t.Fatalf("ensure workspace: %v", err)
	}
	secret := ids.Secret("hgr")
	if err := s.TokenCreate(ctx, store.Token{ID: ids.New("tok"), Hash: ids.Hash(secret), Name: "admin", Scope: "admin", CreatedAt: now}); err != nil {
		t.Fatalf("create admin token: %v", err)
	}
	dir := t.TempDir()
	log := testLogger(t)
	catalog := vmsize.Builtin()
	reg := prometheus.NewRegistry()
	var srv *httptest.Server
	ctl := controller.New(controller.Config{
		Store:     s,
		Catalog:   catalog,
		Providers: map[string]provider.Provider{"local": local.New(local.Config{DataDir: dir, Logger: log})},
		Logger:    log,
		DataDir:   dir,
		ServerURL: func() string { return srv.URL },
		Metrics:   controller.NewMetrics(reg),
	})
	services := &fakeServices{dir: filepath.Join(dir, "services")}
	a := httpapi.New(httpapi.Config{
		Store:     s,
		Ctl:       ctl,
		Blobs:     blob.New(filepath.Join(dir, "blobs")),
		Catalog:   catalog,
		Providers: map[string]bool{"local": false},
		Logger:    log,
		Registry:  reg,
		Version:   "test",
		Services:  services,
	})
	srv = httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	st := &lastStatus{}
	return &env{
		t: t, url: srv.URL, store: s, secret: secret, status: st, ctl: ctl, services: services,
		admin: client.New(srv.URL, secret, client.WithHTTPClient(&http.Client{Transport: st})),
	}
}

// client returns a client calling with token.
func (e *env) client(token string) *client.Client { return client.New(e.url, token) }

// raw sends a request with a JSON body (as given) and the admin token, and
// returns the status and the decoded error, if the answer is one.
func (e *env) raw(method, path, body string) (int, api.Error) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb api.ErrorBody
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(data, &eb); err != nil {
			e.t.Fatalf("%s %s: %d with a body that is not a JSON error: %q", method, path, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, eb.Error
}

// cluster creates a cluster or fails the test.
func (e *env) cluster(name, size, prio string, minN, maxN int) *api.Compute {
	e.t.Helper()
	c, err := e.admin.ComputeCreate(e.t.Context(), clusterSpec(name, size, prio, minN, maxN))
	if err != nil {
		e.t.Fatalf("create cluster %s: %v", name, err)
	}
	return c
}

func clusterSpec(name, size, prio string, minN, maxN int) api.ComputeSpec {
	return api.ComputeSpec{Name: name, Type: "cluster", Properties: api.ComputeProperties{
		VMSize: size, VMPriority: prio,
		ScaleSettings: &api.ScaleSettings{MinNodes: &minN, MaxNodes: &maxN},
	}}
}

// upload snapshots a directory holding files (name → content) and uploads it.
func (e *env) upload(files map[string]string) string {
	e.t.Helper()
	return e.uploadPacked(files, func(dir string, w io.Writer) (snapshot.Info, error) {
		return snapshot.Write(dir, snapshot.Limits{}, w)
	})
}

// uploadPacked writes files (name → content) into a new directory, packs
// it with pack and uploads the archive, returning its digest.
func (e *env) uploadPacked(files map[string]string, pack func(dir string, w io.Writer) (snapshot.Info, error)) string {
	e.t.Helper()
	dir := e.t.TempDir()
	writeFiles(e.t, dir, files)
	var buf bytes.Buffer
	if _, err := pack(dir, &buf); err != nil {
		e.t.Fatalf("pack: %v", err)
	}
	b, err := e.admin.BlobUpload(e.t.Context(), &buf)
	if err != nil {
		e.t.Fatalf("upload: %v", err)
	}
	return b.Digest
}

// writeFiles writes files (slash name → content) under dir, making the
// directories they need.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runToken creates a token scoped to one run, as the controller does for a
// run's HANGAR_TOKEN.
func (e *env) runToken(runID string) string {
	e.t.Helper()
	secret := ids.Secret("hrun")
	err := e.store.TokenCreate(e.t.Context(), store.Token{ID: ids.New("tok"), Hash: ids.Hash(secret), Name: "run " + runID,
		Workspace: server.DefaultWorkspace, Scope: "run:" + runID, CreatedAt: time.Now()})
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// wantAPIError checks err is an *api.Error with that status, code and field
// whose message contains every fragment.
func wantAPIError(t *testing.T, err error, status int, code, field string, fragments ...string) *api.Error {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v (%T), want an *api.Error %d %s", err, err, status, code)
	}
	if ae.Status != status || ae.Code != code || ae.Field != field {
		t.Fatalf("error = %d %s field %q (%q), want %d %s field %q", ae.Status, ae.Code, ae.Field, ae.Message, status, code, field)
	}
	for _, f := range fragments {
		if !strings.Contains(ae.Message, f) {
			t.Errorf("message %q does not contain %q", ae.Message, f)
		}
	}
	return ae
}

func computeNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	cs, err := c.ComputeList(t.Context())
	if err != nil {
		t.Fatalf("list computes: %v", err)
	}
	var names []string
	for _, x := range cs {
		names = append(names, x.Name)
	}
	return names
}

func ptr[T any](v T) *T { return &v }

func TestAuth(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e := newEnv(t, s)
		ctx := t.Context()
		if _, err := e.client("").Health(ctx); err != nil {
			t.Fatalf("health without a token: %v", err)
		}
		_, err := e.client("").ComputeList(ctx)
		wantAPIError(t, err, http.StatusUnauthorized, "Unauthorized", "", "missing bearer token")
		_, err = e.client("hgr_wrong").ComputeList(ctx)
		wantAPIError(t, err, http.StatusUnauthorized, "Unauthorized", "", "unknown token")
		_, err = e.client(e.secret+"x").RunList(ctx, client.RunFilter{})
		wantAPIError(t, err, http.StatusUnauthorized, "Unauthorized", "", "unknown token")

		// The body is the JSON error document, whatever the client does.
		resp, err := http.Get(e.url + "/api/v1/workspaces/default/computes")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb api.ErrorBody
		if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
			t.Fatalf("401 body is not JSON: %v", err)
		}
		if resp.StatusCode != http.StatusUnauthorized || eb.Error.Code != "Unauthorized" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("got %d %q (%s), want 401 Unauthorized JSON", resp.StatusCode, eb.Error.Code, resp.Header.Get("Content-Type"))
		}

		if _, err := e.admin.ComputeList(ctx); err != nil {
			t.Fatalf("admin token refused: %v", err)
		}
	})
}

func TestUnknownFieldRefused(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e := newEnv(t, s)
		tests := []struct {
			name, method, path, body, field string
		}{
			{"compute top level", "POST", "/api/v1/workspaces/default/computes",
				`{"name": "cpu", "type": "cluster", "vmsize": "STANDARD_D2_V2", "properties": {"scale_settings": {"max_nodes": 2}}}`, "vmsize"},
			{"compute nested", "POST", "/api/v1/workspaces/default/computes",
				`{"name": "cpu", "type": "cluster", "properties": {"scale_settings": {"max_nodes": 2, "maxnodes": 3}}}`, "maxnodes"},
			{"run submit", "POST", "/api/v1/workspaces/default/runs",
				`{"compute": "local", "script": "train.py", "snapshot_digest": "sha256:00", "nodes": 2}`, "nodes"},
			{"quota set", "PUT", "/api/v1/workspaces/default/quotas",
				`{"family": "standardDv2Family", "vcpus": 8}`, "vcpus"},
			{"compute update", "PATCH", "/api/v1/workspaces/default/computes/local",
				`{"max_nodes": 8}`, "max_nodes"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				status, ae := e.raw(tc.method, tc.path, tc.body)
				if status != http.StatusBadRequest || ae.Code != "InvalidField" || ae.Field != tc.field || !strings.Contains(ae.Message, "unknown field") {
					t.Errorf("got %d %s field %q (%q), want 400 InvalidField field %q", status, ae.Code, ae.Field, ae.Message, tc.field)
				}
			})
		}
		if names := computeNames(t, e.admin); !cmp.Equal(names, []string{"local"}) {
			t.Errorf("computes after refused creates = %v, want [local]", names)
		}
	})
}

func TestComputeCreateValidation(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e := newEnv(t, s)
		ctx := t.Context()
		before := computeNames(t, e.admin)
		tests := []struct {
			name      string
			spec      api.ComputeSpec
			field     string
			fragments []string
		}{
			{name: "name too short", spec: clusterSpec("c", "", "", 0, 2), field: "name", fragments: []string{"2 to 24 characters"}},
			{name: "name too long", spec: clusterSpec(strings.Repeat("c", 25), "", "", 0, 2), field: "name", fragments: []string{"2 to 24 characters"}},
			{name: "name starts with a digit", spec: clusterSpec("1cpu", "", "", 0, 2), field: "name", fragments: []string{"start with a letter"}},
			{name: "name with underscore", spec: clusterSpec("cpu_1", "", "", 0, 2), field: "name", fragments: []string{"letters, digits and '-'"}},
			{name: "name ends with dash", spec: clusterSpec("cpu-", "", "", 0, 2), field: "name", fragments: []string{"must not end with '-'"}},
			{name: "reserved local", spec: clusterSpec("Local", "", "", 0, 2), field: "name", fragments: []string{"reserved"}},
			{name: "reserved amlcompute", spec: clusterSpec("AMLCOMPUTE", "", "", 0, 2), field: "name", fragments: []string{"reserved"}},
			{name: "reserved containerinstance", spec: clusterSpec("containerinstance", "", "", 0, 2), field: "name", fragments: []string{"reserved"}},
			{name: "max_nodes missing", spec: api.ComputeSpec{Name: "cpu", Type: "cluster"}, field: "max_nodes", fragments: []string{"is required"}},
			{name: "max_nodes zero", spec: clusterSpec("cpu", "", "", 0, 0), field: "max_nodes", fragments: []string{"is required and must be >= 1"}},
			// The store keeps scale settings in 32-bit columns: larger values
			// are refused up front on SQLite and PostgreSQL alike, not a 500.
			{name: "max_nodes beyond 32 bits", spec: clusterSpec("cpu", "", "", 0, 1<<31), field: "max_nodes", fragments: []string{"must be <= 2147483647"}},
			{name: "idle beyond 32 bits", spec: func() api.ComputeSpec {
				s := clusterSpec("cpu", "", "", 0, 2)
				s.Properties.ScaleSettings.IdleSecondsBeforeScaledown = ptr(1 << 40)
				return s
			}(), field: "idle_seconds_before_scaledown", fragments: []string{"must be <= 2147483647"}},
			{name: "min_nodes negative", spec: clusterSpec("cpu", "", "", -1, 2), field: "min_nodes", fragments: []string{"must be >= 0"}},
			{name: "min_nodes above max_nodes", spec: clusterSpec("cpu", "", "", 3, 2), field: "min_nodes", fragments: []string{"must be <= max_nodes (2)"}},
			{name: "idle negative", spec: func() api.ComputeSpec {
				s := clusterSpec("cpu", "", "", 0, 2)
				s.Properties.ScaleSettings.IdleSecondsBeforeScaledown = ptr(-1)
				return s
			}(), field: "idle_seconds_before_scaledown", fragments: []string{"must be >= 0"}},
			{name: "unknown vm size", spec: clusterSpec("cpu", "STANDARD_Z1", "", 0, 2), field: "vm_size",
				fragments: []string{"not a supported VM size", "STANDARD_D2_V2", "STANDARD_DS3_V2", "Standard_NC6"}},
			{name: "GPU size without GPUs", spec: clusterSpec("gpu", "standard_nc6", "", 0, 2), field: "vm_size", fragments: []string{"GPU", `"local" has no GPUs`}},
			{name: "unknown priority", spec: clusterSpec("cpu", "", "spot", 0, 2), field: "vm_priority", fragments: []string{"dedicated or lowpriority"}},
			{name: "unknown type", spec: api.ComputeSpec{Name: "cpu", Type: "containerinstance"}, field: "type", fragments: []string{"not a compute type"}},
			{name: "provider not offered", spec: func() api.ComputeSpec {
				s := clusterSpec("cpu", "", "", 0, 2)
				s.Properties.Provider = "docker"
				return s
			}(), field: "provider", fragments: []string{"available providers: local"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.admin.ComputeCreate(ctx, tc.spec)
				wantAPIError(t, err, http.StatusBadRequest, "InvalidField", tc.field, tc.fragments...)
			})
		}

		t.Run("several problems together", func(t *testing.T) {
			_, err := e.admin.ComputeCreate(ctx, clusterSpec("9", "nope", "", -1, 0))
			ae := wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "name", "max_nodes", "min_nodes", "vm_size")
			var fields []string
			for _, d := range ae.Details {
				fields = append(fields, d.Field)
			}
			if d := cmp.Diff([]string{"name", "max_nodes", "min_nodes", "vm_size"}, fields); d != "" {
				t.Errorf("details fields (-want +got):\n%s", d)
			}
		})

		// A refused create leaves nothing behind.
		if d := cmp.Diff(before, computeNames(t, e.admin)); d != "" {
			t.Errorf("computes changed by refused creates (-before +after):\n%s", d)
		}
		evs, err := e.admin.Events(ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 0 {
			t.Errorf("refused creates recorded events: %+v", evs)
		}
	})
}

func TestComputeLifecycle(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e := newEnv(t, s)
		ctx := t.Context()

		c := e.cluster("cpu-a", "standard_d3_v2", "LowPriority", 0, 4)
		if e.status.get() != http.StatusCreated {
			t.Errorf("create status = %d, want 201", e.status.get())
		}
		if c.Name != "cpu-a" || c.Type != "cluster" || c.Properties.VMSize != "STANDARD_D3_V2" || c.Properties.VMPriority != "lowpriority" {
			t.Errorf("created %+v, want cpu-a cluster STANDARD_D3_V2 lowpriority (canonical spellings)", c.Properties)
		}
		if s := c.Properties.ScaleSettings; s == nil || *s.MinNodes != 0 || *s.MaxNodes != 4 || *s.IdleSecondsBeforeScaledown != 1800 {
			t.Errorf("scale settings = %+v, want 0..4, idle 1800", s)
		}

		t.Run("duplicate name in another case", func(t *testing.T) {
			_, err := e.admin.ComputeCreate(ctx, clusterSpec("CPU-A", "", "", 0, 2))
			wantAPIError(t, err, http.StatusConflict, "Conflict", "name", "already exists")
			if d := cmp.Diff([]string{"cpu-a", "local"}, computeNames(t, e.admin)); d != "" {
				t.Errorf("computes (-want +got):\n%s", d)
			}
		})

		t.Run("get is case-insensitive", func(t *testing.T) {
			got, err := e.admin.ComputeGet(ctx, "CPU-A")
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != "cpu-a" {
				t.Errorf("name = %q, want cpu-a", got.Name)
			}
		})

		t.Run("get unknown names the compute", func(t *testing.T) {
			_, err := e.admin.ComputeGet(ctx, "nope")
			wantAPIError(t, err, http.StatusNotFound, "NotFound", "name", `"nope"`)
			if !client.IsNotFound(err) {
				t.Errorf("client.IsNotFound(%v) = false", err)
			}
		})

		t.Run("update min_nodes above max_nodes refused", func(t *testing.T) {
			_, err := e.admin.ComputeUpdate(ctx, "cpu-a", api.ComputeUpdate{ScaleSettings: &api.ScaleSettings{MinNodes: ptr(5)}})
			wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "min_nodes", "must be <= max_nodes (4)")
			_, err = e.admin.ComputeUpdate(ctx, "cpu-a", api.ComputeUpdate{ScaleSettings: &api.ScaleSettings{MinNodes: ptr(2), MaxNodes: ptr(1)}})
			wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "min_nodes", "must be <= max_nodes (1)")
			_, err = e.admin.ComputeUpdate(ctx, "cpu-a", api.ComputeUpdate{ScaleSettings: &api.ScaleSettings{MaxNodes: ptr(0)}})
			wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "max_nodes", ">= 1")
			got, err := e.admin.ComputeGet(ctx, "cpu-a")
			if err != nil {
				t.Fatal(err)
			}
			if s := got.Properties.ScaleSettings; *s.MinNodes != 0 || *s.MaxNodes != 4 {
				t.Errorf("refused update changed scale settings to %d..%d", *s.MinNodes, *s.MaxNodes)
			}
		})

		t.Run("largest max_nodes is stored", func(t *testing.T) {
			got, err := e.admin.ComputeCreate(ctx, clusterSpec("wide", "", "", 0, 1<<31-1))
			if err != nil {
				t.Fatal(err)
			}
			if *got.Properties.ScaleSettings.MaxNodes != 1<<31-1 {
				t.Errorf("max_nodes = %d", *got.Properties.ScaleSettings.MaxNodes)
			}
			_, err = e.admin.ComputeUpdate(ctx, "wide", api.ComputeUpdate{ScaleSettings: &api.ScaleSettings{MaxNodes: ptr(1 << 31)}})
			wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "max_nodes", "must be <= 2147483647")
			if err := e.admin.ComputeDelete(ctx, "wide", false); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("update", func(t *testing.T) {
			got, err := e.admin.ComputeUpdate(ctx, "cpu-a", api.ComputeUpdate{ScaleSettings: &api.ScaleSettings{MinNodes: ptr(1), IdleSecondsBeforeScaledown: ptr(0)}, Description: ptr("team a")})
			if err != nil {
				t.Fatal(err)
			}
			if s := got.Properties.ScaleSettings; *s.MinNodes != 1 || *s.MaxNodes != 4 || *s.IdleSecondsBeforeScaledown != 0 || got.Description != "team a" {
				t.Errorf("after update: %+v %q", s, got.Description)
			}
		})

		t.Run("local cannot be updated or deleted", func(t *testing.T) {
			_, err := e.admin.ComputeUpdate(ctx, "local", api.ComputeUpdate{Description: ptr("x")})
			wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "name", "local cannot be updated")
			err = e.admin.ComputeDelete(ctx, "local", false)
			wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "name", "local cannot be deleted")
			err = e.admin.ComputeDelete(ctx, "LOCAL", true)
			wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "name", "local cannot be deleted")
			if _, err := e.admin.ComputeGet(ctx, "local"); err != nil {
				t.Errorf("local after refused delete: %v", err)
			}
		})
	})
}

func TestQuota(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e := newEnv(t, s)
		ctx := t.Context()
		q, err := e.admin.QuotaSet(ctx, api.QuotaSet{Family: "STANDARDDV2FAMILY", VMPriority: "Dedicated", Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(api.Quota{Family: "standardDv2Family", VMPriority: "dedicated", Limit: 3}, *q); d != "" {
			t.Errorf("quota (-want +got):\n%s", d)
		}

		// STANDARD_D3_V2 has 4 vCPUs: one node is over the quota of 3.
		_, err = e.admin.ComputeCreate(ctx, clusterSpec("big", "STANDARD_D3_V2", "", 0, 2))
		ae := wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "vm_size", "need 4 vCPUs", "quota is 3 vCPUs")
		if !strings.Contains(ae.Hint, "hangar quota set") {
			t.Errorf("hint %q does not say how to raise the quota", ae.Hint)
		}
		// Low priority has its own quota (default 100).
		e.cluster("big-lp", "STANDARD_D3_V2", "lowpriority", 0, 2)
		// A 2-vCPU size fits.
		e.cluster("small", "STANDARD_D2_V2", "", 0, 2)
		if d := cmp.Diff([]string{"big-lp", "local", "small"}, computeNames(t, e.admin)); d != "" {
			t.Errorf("computes (-want +got):\n%s", d)
		}

		t.Run("bad quota", func(t *testing.T) {
			_, err := e.admin.QuotaSet(ctx, api.QuotaSet{Family: "nope", Limit: 1})
			wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "family", "standardDv2Family")
			_, err = e.admin.QuotaSet(ctx, api.QuotaSet{Family: "standardDv2Family", VMPriority: "spot", Limit: 1})
			wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "vm_priority")
			_, err = e.admin.QuotaSet(ctx, api.QuotaSet{Family: "standardDv2Family", Limit: -1})
			wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "vcpus_limit", "must be >= 0")
			_, err = e.admin.QuotaSet(ctx, api.QuotaSet{Family: "standardDv2Family", Limit: 1 << 31})
			wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "vcpus_limit", "must be <= 2147483647")
		})

		qs, err := e.admin.QuotaList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, q := range qs {
			if q.Family == "standardDv2Family" && q.VMPriority == "dedicated" {
				found = q.Limit == 3
			}
		}
		if !found {
			t.Errorf("quota list %+v lacks standardDv2Family dedicated = 3", qs)
		}
	})
}

func TestRunSubmit(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e := newEnv(t, s)
		ctx := t.Context()
		digest := e.upload(map[string]string{"train.py": "print('hi')\n", "pkg/model.py": "x = 1\n"})
		e.cluster("cpu", "STANDARD_D2_V2", "", 0, 2)
		// Low priority Dv2 quota 4 vCPUs: at most two STANDARD_D2_V2 nodes,
		// while the cluster allows 4.
		if _, err := e.admin.QuotaSet(ctx, api.QuotaSet{Family: "standardDv2Family", VMPriority: "lowpriority", Limit: 4}); err != nil {
			t.Fatal(err)
		}
		e.cluster("cpu-lp", "STANDARD_D2_V2", "lowpriority", 0, 4)

		valid := func() api.RunSubmit {
			return api.RunSubmit{Compute: "cpu", Experiment: "exp", Script: "train.py", SnapshotDigest: digest}
		}
		missing := "sha256:" + strings.Repeat("0", 64)
		tests := []struct {
			name      string
			change    func(r *api.RunSubmit)
			field     string
			fragments []string
		}{
			{"unknown compute", func(r *api.RunSubmit) { r.Compute = "nope" }, "compute", []string{`"nope" not found`}},
			{"no compute", func(r *api.RunSubmit) { r.Compute = "" }, "compute", []string{"is required"}},
			{"snapshot not stored", func(r *api.RunSubmit) { r.SnapshotDigest = missing }, "snapshot_digest", []string{"is not stored"}},
			{"snapshot malformed", func(r *api.RunSubmit) { r.SnapshotDigest = "sha256:xyz" }, "snapshot_digest", []string{"is not stored"}},
			{"no snapshot", func(r *api.RunSubmit) { r.SnapshotDigest = "" }, "snapshot_digest", []string{"is required"}},
			{"script not in snapshot", func(r *api.RunSubmit) { r.Script = "nope.py" }, "script", []string{"nope.py is not in the source snapshot"}},
			{"script is a directory", func(r *api.RunSubmit) { r.Script = "pkg" }, "script", []string{"pkg is not in the source snapshot"}},
			{"script outside", func(r *api.RunSubmit) { r.Script = "../train.py" }, "script", []string{"inside the source directory"}},
			{"no script nor command", func(r *api.RunSubmit) { r.Script = "" }, "script", []string{"give a script"}},
			{"script and command", func(r *api.RunSubmit) { r.Command = "python train.py" }, "command", []string{"not both"}},
			{"node_count above max_nodes", func(r *api.RunSubmit) { r.NodeCount = 3 }, "node_count", []string{"(3) is more than compute cpu's max_nodes (2)"}},
			{"node_count negative", func(r *api.RunSubmit) { r.NodeCount = -1 }, "node_count", []string{"must be >= 1"}},
			{"multi-node not yet", func(r *api.RunSubmit) { r.NodeCount = 2 }, "node_count", []string{"multi-node runs are not supported yet"}},
			{"beyond quota even when empty", func(r *api.RunSubmit) { r.Compute, r.NodeCount = "cpu-lp", 3 }, "node_count", []string{"need 6 vCPUs", "quota of 4 vCPUs even when the workspace is empty"}},
			{"node_count on local", func(r *api.RunSubmit) { r.Compute, r.NodeCount = "local", 2 }, "node_count", []string{"must be 1 on the local compute"}},
			{"HANGAR_ variable", func(r *api.RunSubmit) { r.Env = map[string]string{"HANGAR_TOKEN": "x"} }, "env.HANGAR_TOKEN", []string{"set by Hangar"}},
			{"bad variable name", func(r *api.RunSubmit) { r.Env = map[string]string{"1X": "x"} }, "env.1X", []string{"not a valid environment variable name"}},
			{"bad experiment", func(r *api.RunSubmit) { r.Experiment = "a b" }, "experiment", []string{"must be 1 to 255"}},
			{"negative retries", func(r *api.RunSubmit) { r.MaxRetries = ptr(-1) }, "max_retries", []string{"between 0 and 100"}},
			{"unknown environment", func(r *api.RunSubmit) { r.Environment = "nope" }, "environment", []string{`"nope" not found`}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := valid()
				tc.change(&r)
				_, err := e.admin.RunSubmit(ctx, r)
				wantAPIError(t, err, http.StatusBadRequest, "InvalidField", tc.field, tc.fragments...)
			})
		}
		runs, err := e.admin.RunList(ctx, client.RunFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 0 {
			t.Fatalf("refused submits stored runs: %+v", runs)
		}

		t.Run("several problems together", func(t *testing.T) {
			r := valid()
			r.Compute, r.Command, r.Env = "nope", "x", map[string]string{"HANGAR_X": "1"}
			_, err := e.admin.RunSubmit(ctx, r)
			ae := wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "command", "env.HANGAR_X", "compute")
			if len(ae.Details) != 3 {
				t.Errorf("details = %d, want 3: %+v", len(ae.Details), ae.Details)
			}
		})

		t.Run("valid", func(t *testing.T) {
			for _, r := range []api.RunSubmit{
				valid(),
				{Compute: "CPU", Script: "pkg/model.py", SnapshotDigest: digest, NodeCount: 1, Env: map[string]string{"SEED": "1"}},
				{Compute: "cpu-lp", Command: "python -c 'print(1)'", SnapshotDigest: digest},
				{Compute: "local", Script: "./train.py", SnapshotDigest: digest},
			} {
				got, err := e.admin.RunSubmit(ctx, r)
				if err != nil {
					t.Fatalf("submit %+v: %v", r, err)
				}
				if e.status.get() != http.StatusCreated || got.Status != "Queued" || got.ID == "" {
					t.Errorf("submit = %d %s %q, want 201 Queued with an id", e.status.get(), got.Status, got.ID)
				}
				if !strings.EqualFold(got.Compute, r.Compute) {
					t.Errorf("compute = %q, want %q", got.Compute, r.Compute)
				}
				list, err := e.admin.RunList(ctx, client.RunFilter{Status: "Queued"})
				if err != nil {
					t.Fatal(err)
				}
				found := false
				for _, x := range list {
					found = found || x.ID == got.ID
				}
				if !found {
					t.Errorf("run %s not in the queued run list", got.ID)
				}
				shown, err := e.admin.RunGet(ctx, got.ID)
				if err != nil {
					t.Fatal(err)
				}
				if shown.Status != "Queued" || shown.SnapshotDigest != digest {
					t.Errorf("run get = %s %s", shown.Status, shown.SnapshotDigest)
				}
			}
			runs, err := e.admin.RunList(ctx, client.RunFilter{Compute: "cpu"})
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) != 2 {
				t.Errorf("runs on cpu = %d, want 2", len(runs))
			}
		})
	})
}

func TestComputeDeleteWithRuns(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e := newEnv(t, s)
		ctx := t.Context()
		digest := e.upload(map[string]string{"train.py": "print('hi')\n"})
		e.cluster("doomed", "", "", 0, 1)
		r, err := e.admin.RunSubmit(ctx, api.RunSubmit{Compute: "doomed", Script: "train.py", SnapshotDigest: digest})
		if err != nil {
			t.Fatal(err)
		}

		err = e.admin.ComputeDelete(ctx, "doomed", false)
		ae := wantAPIError(t, err, http.StatusConflict, "Conflict", "", r.ID+" (Queued)")
		if !strings.Contains(ae.Hint, "--force") {
			t.Errorf("hint %q does not mention --force", ae.Hint)
		}
		c, err := e.admin.ComputeGet(ctx, "doomed")
		if err != nil {
			t.Fatal(err)
		}
		if c.ProvisioningState == "Deleting" {
			t.Error("a refused delete marked the compute Deleting")
		}

		if err := e.admin.ComputeDelete(ctx, "doomed", true); err != nil {
			t.Fatalf("forced delete: %v", err)
		}
		if e.status.get() != http.StatusAccepted {
			t.Errorf("forced delete status = %d, want 202", e.status.get())
		}
		c, err = e.admin.ComputeGet(ctx, "doomed")
		if err != nil {
			t.Fatal(err)
		}
		if c.ProvisioningState != "Deleting" {
			t.Errorf("provisioning_state = %s, want Deleting", c.ProvisioningState)
		}
		// A compute being deleted takes no new runs.
		_, err = e.admin.RunSubmit(ctx, api.RunSubmit{Compute: "doomed", Script: "train.py", SnapshotDigest: digest})
		wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "compute", "being deleted")
	})
}

func TestEnvironments(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e := newEnv(t, s)
		ctx := t.Context()
		v1, err := e.admin.EnvironmentCreate(ctx, api.EnvironmentSpec{Name: "torch", Python: "python3.11", Requirements: []string{"torch==2.3"}})
		if err != nil {
			t.Fatal(err)
		}
		v2, err := e.admin.EnvironmentCreate(ctx, api.EnvironmentSpec{Name: "torch", Python: "python3.12", Variables: map[string]string{"OMP_NUM_THREADS": "1"}})
		if err != nil {
			t.Fatal(err)
		}
		if v1.Version != 1 || v2.Version != 2 {
			t.Fatalf("versions = %d, %d, want 1, 2", v1.Version, v2.Version)
		}
		got1, err := e.admin.EnvironmentGet(ctx, "torch", 1)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(api.EnvironmentSpec{Name: "torch", Python: "python3.11", Requirements: []string{"torch==2.3"}}, got1.EnvironmentSpec); d != "" || got1.Version != 1 {
			t.Errorf("version 1 (-want +got):\n%s (version %d)", d, got1.Version)
		}
		latest, err := e.admin.EnvironmentGet(ctx, "torch", 0)
		if err != nil {
			t.Fatal(err)
		}
		if latest.Version != 2 || latest.Python != "python3.12" {
			t.Errorf("latest = version %d %s, want 2 python3.12", latest.Version, latest.Python)
		}
		list, err := e.admin.EnvironmentList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var versions []int
		for _, x := range list {
			if x.Name == "torch" {
				versions = append(versions, x.Version)
			}
		}
		if len(versions) == 0 {
			t.Errorf("environment list %+v lacks torch", list)
		}
		_, err = e.admin.EnvironmentGet(ctx, "torch", 3)
		wantAPIError(t, err, http.StatusNotFound, "NotFound", "", `"torch" not found`)
		_, err = e.admin.EnvironmentCreate(ctx, api.EnvironmentSpec{Name: "bad", Variables: map[string]string{"HANGAR_URL": "x"}})
		wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "variables.HANGAR_URL")
		_, err = e.admin.EnvironmentCreate(ctx, api.EnvironmentSpec{Name: "-bad"})
		wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "name")

		// A run can use a registered environment by name:version.
		digest := e.upload(map[string]string{"train.py": "print('hi')\n"})
		r, err := e.admin.RunSubmit(ctx, api.RunSubmit{Compute: "local", Script: "train.py", SnapshotDigest: digest, Environment: "torch:1"})
		if err != nil {
			t.Fatal(err)
		}
		if r.Environment != "torch:1" || r.Python != "python3.11" {
			t.Errorf("run environment = %q python %q, want torch:1 python3.11", r.Environment, r.Python)
		}
		_, err = e.admin.RunSubmit(ctx, api.RunSubmit{Compute: "local", Script: "train.py", SnapshotDigest: digest, Environment: "torch:9"})
		wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "environment", "not found")
	})
}

func TestRunTokenMetrics(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e := newEnv(t, s)
		ctx := t.Context()
		digest := e.upload(map[string]string{"train.py": "print('hi')\n"})
		submit := func() *api.Run {
			r, err := e.admin.RunSubmit(ctx, api.RunSubmit{Compute: "local", Script: "train.py", SnapshotDigest: digest, Env: map[string]string{"SECRET": "s3cr3t"}})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		mine, other := submit(), submit()
		rc := e.client(e.runToken(mine.ID))

		if err := rc.MetricPost(ctx, mine.ID, api.MetricsPost{Name: "accuracy", Value: 0.97, Step: ptr(int64(1))}); err != nil {
			t.Fatalf("run token posting its own metric: %v", err)
		}
		if err := rc.MetricPost(ctx, mine.ID, api.MetricsPost{Metrics: []api.Metric{{Name: "loss", Value: ptr(0.5), Step: 2}, {Name: "note", Text: "ok"}}}); err != nil {
			t.Fatalf("run token posting a batch: %v", err)
		}
		err := rc.MetricPost(ctx, other.ID, api.MetricsPost{Name: "accuracy", Value: 0.1})
		wantAPIError(t, err, http.StatusForbidden, "Forbidden", "", "only valid for run "+mine.ID)
		err = rc.MetricPost(ctx, mine.ID, api.MetricsPost{})
		wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "name", "is required")

		ms, err := e.admin.RunMetrics(ctx, mine.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range ms {
			got = append(got, m.Name)
		}
		if d := cmp.Diff([]string{"accuracy", "loss", "note"}, got); d != "" {
			t.Errorf("metrics (-want +got):\n%s", d)
		}
		ms, err = e.admin.RunMetrics(ctx, other.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 0 {
			t.Errorf("other run has metrics %+v", ms)
		}

		// The run token is for its own run only: it cannot act for a user,
		// nor read other runs (their variables may hold secrets).
		_, err = rc.RunSubmit(ctx, api.RunSubmit{Compute: "local", Script: "train.py", SnapshotDigest: digest})
		wantAPIError(t, err, http.StatusForbidden, "Forbidden", "")
		_, err = rc.RunCancel(ctx, mine.ID)
		wantAPIError(t, err, http.StatusForbidden, "Forbidden", "")
		_, err = rc.RunGet(ctx, other.ID)
		wantAPIError(t, err, http.StatusForbidden, "Forbidden", "")
		_, err = rc.RunList(ctx, client.RunFilter{})
		wantAPIError(t, err, http.StatusForbidden, "Forbidden", "")
		_, err = rc.ComputeList(ctx)
		wantAPIError(t, err, http.StatusForbidden, "Forbidden", "")
		_, err = rc.RunMetrics(ctx, other.ID)
		wantAPIError(t, err, http.StatusForbidden, "Forbidden", "")
		if _, err := rc.RunMetrics(ctx, mine.ID); err != nil {
			t.Errorf("run token reading its own metrics: %v", err)
		}
	})
}

func TestPrometheusMetrics(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e := newEnv(t, s)
		if _, err := e.admin.ComputeList(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client("").ComputeList(t.Context()); err == nil {
			t.Fatal("no token accepted")
		}
		if resp, err := http.Get(e.url + "/metrics"); err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("GET /metrics without a token = %v, %v; want 401", resp, err)
		}
		req, _ := http.NewRequest(http.MethodGet, e.url+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+e.secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics = %d", resp.StatusCode)
		}
		for _, want := range []string{
			"# TYPE hangar_api_request_duration_seconds histogram",
			`hangar_api_request_duration_seconds_count{code="200",method="GET",route="GET /api/v1/workspaces/{ws}/computes"} 1`,
			`hangar_api_request_duration_seconds_count{code="401",method="GET",route="GET /api/v1/workspaces/{ws}/computes"} 1`,
		} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})
}

func TestUnknownWorkspaceAndRoute(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e := newEnv(t, s)
		ctx := context.WithoutCancel(t.Context())
		_, err := client.New(e.url, e.secret, client.WithWorkspace("nope")).ComputeList(ctx)
		wantAPIError(t, err, http.StatusNotFound, "NotFound", "workspace", `"nope" not found`)
		status, ae := e.raw("GET", "/api/v1/nothing", "")
		if status != http.StatusNotFound || ae.Code != "NotFound" {
			t.Errorf("unknown route = %d %s, want 404 NotFound", status, ae.Code)
		}
		status, ae = e.raw("POST", "/api/v1/workspaces/default/computes", `{"name": "cpu"`)
		if status != http.StatusBadRequest || ae.Code != "BadRequest" {
			t.Errorf("truncated JSON = %d %s, want 400 BadRequest", status, ae.Code)
		}
		status, ae = e.raw("POST", "/api/v1/workspaces/default/computes", `{"name": "cpu", "type": "cluster", "properties": {"scale_settings": {"max_nodes": "2"}}}`)
		if status != http.StatusBadRequest || ae.Field != "properties.scale_settings.max_nodes" {
			t.Errorf("wrong type = %d %s %q, want 400 on properties.scale_settings.max_nodes", status, ae.Code, ae.Field)
		}
	})
}
