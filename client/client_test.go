package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-ml/hangar/api"
)

// recorder is a test server that records the last request and answers
// with a fixed status and body.
type recorder struct {
	method, path, query, auth, contentType string
	contentLength                          int64
	body                                   []byte
}

func serve(t *testing.T, status int, body string) (*recorder, *httptest.Server) {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.method, rec.path, rec.query = r.Method, r.URL.EscapedPath(), r.URL.RawQuery
		rec.auth, rec.contentType, rec.contentLength = r.Header.Get("Authorization"), r.Header.Get("Content-Type"), r.ContentLength
		rec.body, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return rec, srv
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name       string
		call       func(c *Client) error
		answer     string
		wantMethod string
		wantPath   string
		wantQuery  string
		wantBody   string
	}{
		{name: "health", call: func(c *Client) error { _, err := c.Health(ctx); return err }, answer: `{"status":"ok"}`, wantMethod: "GET", wantPath: "/api/v1/health"},
		{name: "version", call: func(c *Client) error { _, err := c.Version(ctx); return err }, answer: `{"version":"1"}`, wantMethod: "GET", wantPath: "/api/v1/version"},
		{name: "vm sizes", call: func(c *Client) error { _, err := c.VMSizes(ctx); return err }, answer: `{"value":[]}`, wantMethod: "GET", wantPath: "/api/v1/vm-sizes"},
		{name: "compute create", call: func(c *Client) error {
			_, err := c.ComputeCreate(ctx, api.ComputeSpec{Name: "c", Type: "cluster", Properties: api.ComputeProperties{ScaleSettings: &api.ScaleSettings{MaxNodes: ptr(2)}}})
			return err
		}, answer: `{}`, wantMethod: "POST", wantPath: "/api/v1/workspaces/ws/computes", wantBody: `{"name":"c","type":"cluster","properties":{"scale_settings":{"max_nodes":2}}}`},
		{name: "compute get", call: func(c *Client) error { _, err := c.ComputeGet(ctx, "c/1"); return err }, answer: `{}`, wantMethod: "GET", wantPath: "/api/v1/workspaces/ws/computes/c%2F1"},
		{name: "compute list", call: func(c *Client) error { _, err := c.ComputeList(ctx); return err }, answer: `{"value":[]}`, wantMethod: "GET", wantPath: "/api/v1/workspaces/ws/computes"},
		{name: "compute update", call: func(c *Client) error {
			_, err := c.ComputeUpdate(ctx, "c", api.ComputeUpdate{ScaleSettings: &api.ScaleSettings{MinNodes: ptr(0)}})
			return err
		}, answer: `{}`, wantMethod: "PATCH", wantPath: "/api/v1/workspaces/ws/computes/c", wantBody: `{"scale_settings":{"min_nodes":0}}`},
		{name: "compute delete", call: func(c *Client) error { return c.ComputeDelete(ctx, "c", false) }, wantMethod: "DELETE", wantPath: "/api/v1/workspaces/ws/computes/c"},
		{name: "compute delete force", call: func(c *Client) error { return c.ComputeDelete(ctx, "c", true) }, wantMethod: "DELETE", wantPath: "/api/v1/workspaces/ws/computes/c", wantQuery: "force=true"},
		{name: "compute nodes", call: func(c *Client) error { _, err := c.ComputeNodes(ctx, "c"); return err }, answer: `{"value":[]}`, wantMethod: "GET", wantPath: "/api/v1/workspaces/ws/computes/c/nodes"},
		{name: "compute preempt", call: func(c *Client) error { _, err := c.ComputePreempt(ctx, "c", "n1"); return err }, answer: `{"id":"n1"}`, wantMethod: "POST", wantPath: "/api/v1/workspaces/ws/computes/c/preempt", wantBody: `{"node":"n1"}`},
		{name: "quota list", call: func(c *Client) error { _, err := c.QuotaList(ctx); return err }, answer: `{"value":[]}`, wantMethod: "GET", wantPath: "/api/v1/workspaces/ws/quotas"},
		{name: "quota set", call: func(c *Client) error {
			_, err := c.QuotaSet(ctx, api.QuotaSet{Family: "f", VMPriority: "dedicated", Limit: 8})
			return err
		}, answer: `{}`, wantMethod: "PUT", wantPath: "/api/v1/workspaces/ws/quotas", wantBody: `{"family":"f","vm_priority":"dedicated","vcpus_limit":8}`},
		{name: "blob has", call: func(c *Client) error { _, err := c.BlobHas(ctx, "sha256:ab"); return err }, wantMethod: "HEAD", wantPath: "/api/v1/workspaces/ws/blobs/sha256:ab"},
		{name: "blob upload", call: func(c *Client) error { _, err := c.BlobUpload(ctx, strings.NewReader("data")); return err }, answer: `{"digest":"d"}`, wantMethod: "POST", wantPath: "/api/v1/workspaces/ws/blobs", wantBody: "data"},
		{name: "run submit", call: func(c *Client) error {
			_, err := c.RunSubmit(ctx, api.RunSubmit{Compute: "c", SnapshotDigest: "d"})
			return err
		}, answer: `{}`, wantMethod: "POST", wantPath: "/api/v1/workspaces/ws/runs", wantBody: `{"compute":"c","snapshot_digest":"d"}`},
		{name: "run get", call: func(c *Client) error { _, err := c.RunGet(ctx, "r1"); return err }, answer: `{}`, wantMethod: "GET", wantPath: "/api/v1/workspaces/ws/runs/r1"},
		{name: "run list", call: func(c *Client) error {
			_, err := c.RunList(ctx, RunFilter{Experiment: "e", Compute: "c", Status: "Queued"})
			return err
		}, answer: `{"value":[]}`, wantMethod: "GET", wantPath: "/api/v1/workspaces/ws/runs", wantQuery: "compute=c&experiment=e&status=Queued"},
		{name: "run cancel", call: func(c *Client) error { _, err := c.RunCancel(ctx, "r1"); return err }, answer: `{}`, wantMethod: "POST", wantPath: "/api/v1/workspaces/ws/runs/r1/cancel"},
		{name: "run logs", call: func(c *Client) error {
			rc, err := c.RunLogs(ctx, "r1", 10, true)
			if err == nil {
				rc.Close()
			}
			return err
		}, wantMethod: "GET", wantPath: "/api/v1/workspaces/ws/runs/r1/logs", wantQuery: "follow=true&offset=10"},
		{name: "run files", call: func(c *Client) error {
			rc, err := c.RunFiles(ctx, "r1")
			if err == nil {
				rc.Close()
			}
			return err
		}, wantMethod: "GET", wantPath: "/api/v1/workspaces/ws/runs/r1/files"},
		{name: "run metrics", call: func(c *Client) error { _, err := c.RunMetrics(ctx, "r1"); return err }, answer: `{"value":[]}`, wantMethod: "GET", wantPath: "/api/v1/workspaces/ws/runs/r1/metrics"},
		{name: "metric post", call: func(c *Client) error { return c.MetricPost(ctx, "r1", api.MetricsPost{Name: "acc", Value: 0.9}) }, wantMethod: "POST", wantPath: "/api/v1/workspaces/ws/runs/r1/metrics", wantBody: `{"name":"acc","value":0.9}`},
		{name: "events", call: func(c *Client) error { _, err := c.Events(ctx, "c", 50); return err }, answer: `{"value":[]}`, wantMethod: "GET", wantPath: "/api/v1/workspaces/ws/events", wantQuery: "compute=c&limit=50"},
		{name: "environment create", call: func(c *Client) error {
			_, err := c.EnvironmentCreate(ctx, api.EnvironmentSpec{Name: "e", Python: "python3"})
			return err
		}, answer: `{}`, wantMethod: "POST", wantPath: "/api/v1/workspaces/ws/environments", wantBody: `{"name":"e","python":"python3"}`},
		{name: "environment get", call: func(c *Client) error { _, err := c.EnvironmentGet(ctx, "e", 2); return err }, answer: `{}`, wantMethod: "GET", wantPath: "/api/v1/workspaces/ws/environments/e", wantQuery: "version=2"},
		{name: "environment list", call: func(c *Client) error { _, err := c.EnvironmentList(ctx); return err }, answer: `{"value":[]}`, wantMethod: "GET", wantPath: "/api/v1/workspaces/ws/environments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec, srv := serve(t, http.StatusOK, tt.answer)
			c := New(srv.URL+"/api/v1/", "tok", WithWorkspace("ws"))
			if err := tt.call(c); err != nil {
				t.Fatal(err)
			}
			got := []string{rec.method, rec.path, rec.query, rec.auth, string(rec.body)}
			want := []string{tt.wantMethod, tt.wantPath, tt.wantQuery, "Bearer tok", tt.wantBody}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("request (-want +got)\n%s", diff)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestAPIErrorsDecoded(t *testing.T) {
	t.Parallel()
	_, srv := serve(t, http.StatusBadRequest, `{"error":{"code":"InvalidField","field":"min_nodes","message":"(3) must be <= max_nodes (2)","hint":"h","details":[{"code":"InvalidField","field":"min_nodes","message":"m"}]}}`)
	_, err := New(srv.URL, "").ComputeCreate(context.Background(), api.ComputeSpec{})
	var ae *api.Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %T %v, want *api.Error", err, err)
	}
	want := &api.Error{Code: "InvalidField", Field: "min_nodes", Message: "(3) must be <= max_nodes (2)", Hint: "h", Status: 400,
		Details: []*api.Error{{Code: "InvalidField", Field: "min_nodes", Message: "m"}}}
	if diff := cmp.Diff(want, ae); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if got := err.Error(); got != "min_nodes: (3) must be <= max_nodes (2)" {
		t.Errorf("Error() = %q", got)
	}
}

func TestNonAPIErrorBody(t *testing.T) {
	t.Parallel()
	_, srv := serve(t, http.StatusBadGateway, "<html>bad gateway</html>")
	_, err := New(srv.URL, "").RunGet(context.Background(), "r")
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Code != "ServerError" || !strings.Contains(ae.Message, "502 Bad Gateway: <html>bad gateway</html>") {
		t.Errorf("err = %#v", err)
	}
}

func TestNoTokenNoHeader(t *testing.T) {
	t.Parallel()
	rec, srv := serve(t, http.StatusOK, `{"status":"ok"}`)
	if _, err := New(srv.URL, "").Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec.auth != "" {
		t.Errorf("Authorization = %q, want none", rec.auth)
	}
}

func TestEmptyListIsNotNil(t *testing.T) {
	t.Parallel()
	_, srv := serve(t, http.StatusOK, `{"value":null}`)
	got, err := New(srv.URL, "").ComputeList(context.Background())
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("ComputeList = %#v, %v; want an empty, non-nil slice", got, err)
	}
}

func TestBlobHas(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]bool{200: true, 404: false} {
		_, srv := serve(t, status, "")
		got, err := New(srv.URL, "").BlobHas(context.Background(), "sha256:00")
		if err != nil || got != want {
			t.Errorf("status %d: BlobHas = %v, %v; want %v", status, got, err, want)
		}
	}
	_, srv := serve(t, http.StatusUnauthorized, "")
	if _, err := New(srv.URL, "").BlobHas(context.Background(), "sha256:00"); err == nil {
		t.Errorf("401: want an error")
	}
}

func TestBlobUploadSendsLengthOfFiles(t *testing.T) {
	t.Parallel()
	rec, srv := serve(t, http.StatusCreated, `{"digest":"sha256:x","size":5}`)
	f, err := os.CreateTemp(t.TempDir(), "blob")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("xhello")
	f.Seek(1, io.SeekStart)
	b, err := New(srv.URL, "").BlobUpload(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if b.Digest != "sha256:x" || rec.contentLength != 5 || string(rec.body) != "hello" || rec.contentType != "application/octet-stream" {
		t.Errorf("blob %+v; sent length %d body %q type %q", b, rec.contentLength, rec.body, rec.contentType)
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = New("http://"+addr, "").Health(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.URL != "http://"+addr || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("err = %#v, want *UnreachableError wrapping ECONNREFUSED", err)
	}
}

func TestContextCanceled(t *testing.T) {
	t.Parallel()
	_, srv := serve(t, http.StatusOK, `{}`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New(srv.URL, "").Health(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestLoadSettings(t *testing.T) {
	t.Parallel()
	write := func(t *testing.T, path string, s any) {
		t.Helper()
		os.MkdirAll(filepath.Dir(path), 0o700)
		data, _ := json.Marshal(s)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	homeFile := Settings{URL: "http://home:1", Token: "home-tok", Workspace: "home-ws"}
	tests := []struct {
		name  string
		env   map[string]string
		files map[string]any // relative to a temp root: cwd/… or home/…
		want  Settings
	}{
		{name: "defaults", want: Settings{URL: DefaultURL, Workspace: DefaultWorkspace}},
		{name: "home file", files: map[string]any{"home/.hangar/config.json": homeFile},
			want: Settings{URL: "http://home:1", Token: "home-tok", Workspace: "home-ws", File: "home/.hangar/config.json",
				URLFrom: "home/.hangar/config.json", TokenFrom: "home/.hangar/config.json", WorkspaceFrom: "home/.hangar/config.json"}},
		{name: "cwd .hangar before home", files: map[string]any{
			"home/.hangar/config.json": homeFile,
			"cwd/.hangar/config.json":  Settings{URL: "http://cwd:1", Token: "cwd-tok"},
		}, want: Settings{URL: "http://cwd:1", Token: "cwd-tok", Workspace: DefaultWorkspace, File: "cwd/.hangar/config.json",
			URLFrom: "cwd/.hangar/config.json", TokenFrom: "cwd/.hangar/config.json"}},
		{name: "cwd config.json first", files: map[string]any{
			"cwd/config.json":         Settings{URL: "http://top:1", Token: "top-tok"},
			"cwd/.hangar/config.json": Settings{URL: "http://cwd:1", Token: "cwd-tok"},
		}, want: Settings{URL: "http://top:1", Token: "top-tok", Workspace: DefaultWorkspace, File: "cwd/config.json",
			URLFrom: "cwd/config.json", TokenFrom: "cwd/config.json"}},
		{name: "someone else's config.json is skipped", files: map[string]any{
			"cwd/config.json":          map[string]any{"compilerOptions": map[string]any{}},
			"home/.hangar/config.json": homeFile,
		}, want: Settings{URL: "http://home:1", Token: "home-tok", Workspace: "home-ws", File: "home/.hangar/config.json",
			URLFrom: "home/.hangar/config.json", TokenFrom: "home/.hangar/config.json", WorkspaceFrom: "home/.hangar/config.json"}},
		{name: "env wins per field", env: map[string]string{EnvToken: "env-tok", EnvWorkspace: "env-ws"},
			files: map[string]any{"home/.hangar/config.json": homeFile},
			want: Settings{URL: "http://home:1", Token: "env-tok", Workspace: "env-ws", File: "home/.hangar/config.json",
				URLFrom: "home/.hangar/config.json", TokenFrom: EnvToken, WorkspaceFrom: EnvWorkspace}},
		{name: "same URL keeps the file's token", env: map[string]string{EnvURL: "http://home:1/"},
			files: map[string]any{"home/.hangar/config.json": homeFile},
			want: Settings{URL: "http://home:1/", Token: "home-tok", Workspace: "home-ws", File: "home/.hangar/config.json",
				URLFrom: EnvURL, TokenFrom: "home/.hangar/config.json", WorkspaceFrom: "home/.hangar/config.json"}},
		{name: "another URL never gets the file's token", env: map[string]string{EnvURL: "http://other:1"},
			files: map[string]any{"home/.hangar/config.json": homeFile},
			want:  Settings{URL: "http://other:1", Workspace: DefaultWorkspace, URLFrom: EnvURL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			for rel, s := range tt.files {
				write(t, filepath.Join(root, rel), s)
			}
			got, err := loadSettings(func(k string) string { return tt.env[k] }, filepath.Join(root, "cwd"), filepath.Join(root, "home"))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []*string{&got.File, &got.URLFrom, &got.TokenFrom, &got.WorkspaceFrom} {
				if filepath.IsAbs(*p) {
					*p, _ = filepath.Rel(root, *p)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestLoadSettingsBadFile(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".hangar"), 0o700)
	os.WriteFile(filepath.Join(home, ".hangar", "config.json"), []byte("{not json"), 0o600)
	if _, err := loadSettings(func(string) string { return "" }, "", home); err == nil {
		t.Error("want an error for a broken config file")
	}
}

func TestSaveSettings(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "home", ".hangar", "config.json")
	s := Settings{URL: "http://h:1", Token: "tok", Workspace: "default", File: "ignored"}
	if err := SaveSettings(path, s); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700 | os.ModeDir} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s mode = %v, want %v", p, fi.Mode(), want)
		}
	}
	data, _ := os.ReadFile(path)
	var got map[string]string
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"url": "http://h:1", "token": "tok", "workspace": "default"}, got); diff != "" {
		t.Errorf("file (-want +got)\n%s", diff)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("config dir holds %d entries, want only config.json", len(entries))
	}
}
