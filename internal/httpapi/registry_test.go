package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/internal/service"
	"github.com/hangar-ml/hangar/internal/snapshot"
	"github.com/hangar-ml/hangar/internal/store"
	"github.com/hangar-ml/hangar/internal/store/storetest"
)

// fakeServices stands in for the service manager: it counts wakes and
// keeps logs under dir.
type fakeServices struct {
	dir   string
	wakes atomic.Int64
}

func (f *fakeServices) Wake() { f.wakes.Add(1) }

func (f *fakeServices) LogPath(ws, name string) string {
	return filepath.Join(f.dir, ws, name, "service.log")
}

// runWithFiles submits a run (it stays queued: no controller loop runs)
// and puts files (name → content) among its files, as an agent's upload
// would.
func (e *env) runWithFiles(files map[string]string) *api.Run {
	e.t.Helper()
	digest := e.upload(map[string]string{"train.py": "print('hi')\n"})
	r, err := e.admin.RunSubmit(e.t.Context(), api.RunSubmit{Compute: "local", Script: "train.py", SnapshotDigest: digest})
	if err != nil {
		e.t.Fatal(err)
	}
	writeFiles(e.t, e.ctl.RunFilesDir(r.ID), files)
	return r
}

// modelFiles downloads and extracts a model version, returning its files.
func (e *env) modelFiles(name string, version int) map[string]string {
	e.t.Helper()
	rc, err := e.admin.ModelFiles(e.t.Context(), name, version)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rc.Close()
	dir := e.t.TempDir()
	if err := snapshot.Extract(rc, dir); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// uploadModel packs a local file or folder as the CLI does and uploads it.
func (e *env) uploadModel(files map[string]string, name string) string {
	e.t.Helper()
	return e.uploadPacked(files, func(dir string, w io.Writer) (snapshot.Info, error) {
		return snapshot.WritePath(dir, name, snapshot.Limits{}, w)
	})
}

func TestModelRegisterFromRun(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e := newEnv(t, s)
		ctx := t.Context()
		r := e.runWithFiles(map[string]string{
			"outputs/model.pkl":         "pickle",
			"outputs/model/config.json": "{}",
			"outputs/model/w/0.bin":     "weights",
			"logs/std_log.txt":          "hi\n",
		})

		m, err := e.admin.ModelRegister(ctx, api.ModelRegister{Name: "digits", RunID: r.ID, Path: "outputs/model.pkl",
			Tags: map[string]string{"team": "ml"}, Properties: map[string]string{"accuracy": "0.97"}, Description: "first"})
		if err != nil {
			t.Fatal(err)
		}
		if e.status.get() != http.StatusCreated || m.Version != 1 || m.RunID != r.ID || m.Path != "outputs/model.pkl" || m.Size != 6 || m.CreatedBy != "admin" {
			t.Errorf("registered %d %+v", e.status.get(), m)
		}
		if d := cmp.Diff(map[string]string{"model.pkl": "pickle"}, e.modelFiles("digits", 1)); d != "" {
			t.Errorf("files of digits:1 (-want +got):\n%s", d)
		}
		// A folder keeps its name: a service finds model/config.json.
		m2, err := e.admin.ModelRegister(ctx, api.ModelRegister{Name: "digits", RunID: r.ID, Path: "./outputs/model/"})
		if err != nil {
			t.Fatal(err)
		}
		if m2.Version != 2 || m2.Path != "outputs/model" || m2.Size != 9 {
			t.Errorf("second version = %+v", m2)
		}
		if d := cmp.Diff(map[string]string{"model/config.json": "{}", "model/w/0.bin": "weights"}, e.modelFiles("digits", 2)); d != "" {
			t.Errorf("files of digits:2 (-want +got):\n%s", d)
		}

		tests := []struct {
			name      string
			req       api.ModelRegister
			field     string
			fragments []string
		}{
			{"missing file", api.ModelRegister{Name: "m", RunID: r.ID, Path: "outputs/nope.pkl"}, "path",
				[]string{"outputs/nope.pkl is not among the files of run " + r.ID + "; see hangar run download " + r.ID}},
			{"outside", api.ModelRegister{Name: "m", RunID: r.ID, Path: "../../blobs"}, "path", []string{"must be a relative path among the run's files"}},
			{"absolute", api.ModelRegister{Name: "m", RunID: r.ID, Path: "/etc/passwd"}, "path", []string{"must be a relative path"}},
			{"no path", api.ModelRegister{Name: "m", RunID: r.ID}, "path", []string{"is required"}},
			{"unknown run", api.ModelRegister{Name: "m", RunID: "run-nope", Path: "outputs/model.pkl"}, "run_id", []string{`run "run-nope" not found`}},
			{"run and digest", api.ModelRegister{Name: "m", RunID: r.ID, Path: "outputs/model.pkl", Digest: "sha256:00"}, "digest", []string{"not both"}},
			{"bad name", api.ModelRegister{Name: "-m", RunID: r.ID, Path: "outputs/model.pkl"}, "name", []string{"starting with a letter or digit"}},
			{"no name", api.ModelRegister{RunID: r.ID, Path: "outputs/model.pkl"}, "name", []string{"is required"}},
			{"long name", api.ModelRegister{Name: strings.Repeat("m", 256), RunID: r.ID, Path: "outputs/model.pkl"}, "name", []string{"at most 255"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.admin.ModelRegister(ctx, tc.req)
				wantAPIError(t, err, http.StatusBadRequest, "InvalidField", tc.field, tc.fragments...)
			})
		}
		ms, err := e.admin.ModelList(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 2 {
			t.Errorf("refused registrations stored models: %+v", ms)
		}
	})
}

func TestModelRegisterUpload(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e := newEnv(t, s)
		ctx := t.Context()
		file := e.uploadModel(map[string]string{"model.pkl": "pickle"}, "model.pkl")
		folder := e.uploadModel(map[string]string{"clf/a.json": "{}", "clf/b.bin": "bb"}, "clf")
		m, err := e.admin.ModelRegister(ctx, api.ModelRegister{Name: "digits", Path: "model.pkl", Digest: file})
		if err != nil {
			t.Fatal(err)
		}
		if m.Version != 1 || m.Size != 6 || m.RunID != "" || m.Digest != file {
			t.Errorf("registered %+v", m)
		}
		if d := cmp.Diff(map[string]string{"model.pkl": "pickle"}, e.modelFiles("digits", 1)); d != "" {
			t.Errorf("files (-want +got):\n%s", d)
		}
		if _, err := e.admin.ModelRegister(ctx, api.ModelRegister{Name: "clf", Path: "clf", Digest: folder}); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(map[string]string{"clf/a.json": "{}", "clf/b.bin": "bb"}, e.modelFiles("clf", 1)); d != "" {
			t.Errorf("files (-want +got):\n%s", d)
		}
		plain, err := e.admin.BlobUpload(ctx, strings.NewReader("not an archive"))
		if err != nil {
			t.Fatal(err)
		}
		missing := "sha256:" + strings.Repeat("0", 64)
		tests := []struct {
			name      string
			req       api.ModelRegister
			field     string
			fragments []string
		}{
			{"digest not stored", api.ModelRegister{Name: "m", Path: "model.pkl", Digest: missing}, "digest", []string{"is not stored"}},
			{"no digest", api.ModelRegister{Name: "m", Path: "model.pkl"}, "digest", []string{"is required"}},
			{"not an archive", api.ModelRegister{Name: "m", Path: "model.pkl", Digest: plain.Digest}, "digest", []string{"is not a model archive"}},
			{"archive of another name", api.ModelRegister{Name: "m", Path: "other.pkl", Digest: file}, "digest", []string{"holds model.pkl, outside other.pkl"}},
			{"path with a folder", api.ModelRegister{Name: "m", Path: "outputs/model.pkl", Digest: file}, "path", []string{"base name"}},
			{"no path", api.ModelRegister{Name: "m", Digest: file}, "path", []string{"is required"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.admin.ModelRegister(ctx, tc.req)
				wantAPIError(t, err, http.StatusBadRequest, "InvalidField", tc.field, tc.fragments...)
			})
		}
		t.Run("several problems together", func(t *testing.T) {
			_, err := e.admin.ModelRegister(ctx, api.ModelRegister{Name: "_m", Path: "a/b", Digest: missing, Tags: map[string]string{"": "x"}})
			ae := wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "name")
			var fields []string
			for _, d := range ae.Details {
				fields = append(fields, d.Field)
			}
			if d := cmp.Diff([]string{"name", "tags", "path", "digest"}, fields); d != "" {
				t.Errorf("fields (-want +got):\n%s", d)
			}
		})
	})
}

func TestModelGetListDelete(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e := newEnv(t, s)
		ctx := t.Context()
		digest := e.uploadModel(map[string]string{"model.pkl": "v"}, "model.pkl")
		for _, name := range []string{"a", "a", "b"} {
			if _, err := e.admin.ModelRegister(ctx, api.ModelRegister{Name: name, Path: "model.pkl", Digest: digest}); err != nil {
				t.Fatal(err)
			}
		}
		latest, err := e.admin.ModelGet(ctx, "a", 0)
		if err != nil || latest.Version != 2 {
			t.Fatalf("latest a = %+v, %v", latest, err)
		}
		v1, err := e.admin.ModelGet(ctx, "a", 1)
		if err != nil || v1.Version != 1 {
			t.Fatalf("a:1 = %+v, %v", v1, err)
		}
		_, err = e.admin.ModelGet(ctx, "a", 3)
		wantAPIError(t, err, http.StatusNotFound, "NotFound", "", "model a:3 not found")
		_, err = e.admin.ModelGet(ctx, "nope", 0)
		wantAPIError(t, err, http.StatusNotFound, "NotFound", "", "model nope not found")
		status, ae := e.raw("GET", "/api/v1/workspaces/default/models/a/versions/x", "")
		if status != http.StatusBadRequest || ae.Field != "version" {
			t.Errorf("version x = %d %+v, want 400 on version", status, ae)
		}
		all, err := e.admin.ModelList(ctx, "")
		if err != nil || len(all) != 3 {
			t.Fatalf("list = %+v, %v", all, err)
		}
		as, err := e.admin.ModelList(ctx, "a")
		if err != nil || len(as) != 2 || as[0].Version != 2 {
			t.Fatalf("list a = %+v, %v", as, err)
		}
		if err := e.admin.ModelDelete(ctx, "a", 2); err != nil {
			t.Fatal(err)
		}
		if e.status.get() != http.StatusNoContent {
			t.Errorf("delete status = %d, want 204", e.status.get())
		}
		err = e.admin.ModelDelete(ctx, "a", 2)
		wantAPIError(t, err, http.StatusNotFound, "NotFound", "")
		if latest, err := e.admin.ModelGet(ctx, "a", 0); err != nil || latest.Version != 1 {
			t.Errorf("latest a after delete = %+v, %v", latest, err)
		}
	})
}

// deployEnv has a model and a source snapshot to deploy.
func deployEnv(t *testing.T, s store.Store) (*env, api.ServiceDeploy) {
	e := newEnv(t, s)
	digest := e.uploadModel(map[string]string{"model.pkl": "v"}, "model.pkl")
	for range 2 {
		if _, err := e.admin.ModelRegister(t.Context(), api.ModelRegister{Name: "digits", Path: "model.pkl", Digest: digest}); err != nil {
			t.Fatal(err)
		}
	}
	src := e.upload(map[string]string{"score.py": "def init(): pass\ndef run(d): return d\n", "lib/x.py": "", "README": ""})
	return e, api.ServiceDeploy{Name: "digits-svc", Models: []string{"digits"}, EntryScript: "score.py", SourceDigest: src}
}

func TestServiceDeployValidation(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e, valid := deployEnv(t, s)
		ctx := t.Context()
		other := valid
		other.Name = "other-svc"
		taken, err := e.admin.ServiceDeploy(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		busyPort := busy.Addr().(*net.TCPAddr).Port
		missing := "sha256:" + strings.Repeat("0", 64)

		tests := []struct {
			name      string
			change    func(d *api.ServiceDeploy)
			field     string
			fragments []string
		}{
			{"name too short", func(d *api.ServiceDeploy) { d.Name = "ab" }, "name", []string{`"ab" must be 3 to 32 characters long (it has 2)`}},
			{"name too long", func(d *api.ServiceDeploy) { d.Name = strings.Repeat("a", 33) }, "name", []string{"3 to 32 characters"}},
			{"name uppercase", func(d *api.ServiceDeploy) { d.Name = "Digits" }, "name", []string{"lowercase letters, digits and '-'"}},
			{"name starts with a digit", func(d *api.ServiceDeploy) { d.Name = "1digits" }, "name", []string{"must start with a lowercase letter"}},
			{"name with underscore", func(d *api.ServiceDeploy) { d.Name = "my_svc" }, "name", []string{"lowercase letters, digits and '-'"}},
			{"name ends with dash", func(d *api.ServiceDeploy) { d.Name = "digits-" }, "name", []string{"must not end with '-'"}},
			{"no name", func(d *api.ServiceDeploy) { d.Name = "" }, "name", []string{"is required"}},
			{"no models", func(d *api.ServiceDeploy) { d.Models = nil }, "models", []string{"at least one model"}},
			{"unknown model", func(d *api.ServiceDeploy) { d.Models = []string{"nope"} }, "models", []string{"model nope not found"}},
			{"unknown version", func(d *api.ServiceDeploy) { d.Models = []string{"digits:9"} }, "models", []string{"model digits:9 not found"}},
			{"bad version", func(d *api.ServiceDeploy) { d.Models = []string{"digits:x"} }, "models", []string{"must be a positive integer"}},
			{"model twice", func(d *api.ServiceDeploy) { d.Models = []string{"digits", "digits:2"} }, "models", []string{"digits:2 is given twice"}},
			{"no entry script", func(d *api.ServiceDeploy) { d.EntryScript = "" }, "entry_script", []string{"is required"}},
			{"entry script not python", func(d *api.ServiceDeploy) { d.EntryScript = "README" }, "entry_script", []string{"ending in .py"}},
			{"entry script missing", func(d *api.ServiceDeploy) { d.EntryScript = "nope.py" }, "entry_script", []string{"nope.py is not in the source snapshot"}},
			{"entry script outside", func(d *api.ServiceDeploy) { d.EntryScript = "../score.py" }, "entry_script", []string{"inside the source directory"}},
			{"no source", func(d *api.ServiceDeploy) { d.SourceDigest = "" }, "source_digest", []string{"is required"}},
			{"source not stored", func(d *api.ServiceDeploy) { d.SourceDigest = missing }, "source_digest", []string{"is not stored"}},
			{"unknown target", func(d *api.ServiceDeploy) { d.Target = "aks" }, "target", []string{`"aks" is not a deployment target; available targets: local`}},
			{"workers negative", func(d *api.ServiceDeploy) { d.Workers = -1 }, "workers", []string{"(-1) must be between 1 and 16"}},
			{"workers too many", func(d *api.ServiceDeploy) { d.Workers = 17 }, "workers", []string{"(17) must be between 1 and 16"}},
			{"port privileged", func(d *api.ServiceDeploy) { d.Port = 80 }, "port", []string{"(80) must be between 1024 and 65535"}},
			{"port too high", func(d *api.ServiceDeploy) { d.Port = 70000 }, "port", []string{"between 1024 and 65535"}},
			{"port of another service", func(d *api.ServiceDeploy) { d.Port = taken.Port }, "port", []string{fmt.Sprintf("%d is used by service other-svc", taken.Port)}},
			{"port busy", func(d *api.ServiceDeploy) { d.Port = busyPort }, "port", []string{fmt.Sprintf("%d is not free on 127.0.0.1", busyPort)}},
			{"timeout negative", func(d *api.ServiceDeploy) { d.RequestTimeoutSeconds = -1 }, "request_timeout_seconds", []string{"between 1 and 3600 seconds"}},
			{"timeout too long", func(d *api.ServiceDeploy) { d.RequestTimeoutSeconds = 3601 }, "request_timeout_seconds", []string{"between 1 and 3600 seconds"}},
			{"bad auth", func(d *api.ServiceDeploy) { d.Auth = "token" }, "auth", []string{`"token" must be key or none`}},
			{"unknown environment", func(d *api.ServiceDeploy) { d.Environment = "nope" }, "environment", []string{`environment "nope" not found`}},
			{"environment twice", func(d *api.ServiceDeploy) {
				d.Environment, d.EnvironmentSpec = "nope", &api.EnvironmentSpec{Python: "python3"}
			}, "environment", []string{"not both"}},
			{"inline environment variable", func(d *api.ServiceDeploy) {
				d.EnvironmentSpec = &api.EnvironmentSpec{Variables: map[string]string{"HANGAR_X": "1"}}
			}, "environment_spec.variables.HANGAR_X", []string{"set by Hangar"}},
			{"HANGAR_ variable", func(d *api.ServiceDeploy) { d.Env = map[string]string{"HANGAR_TOKEN": "x"} }, "env.HANGAR_TOKEN", []string{"set by Hangar"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				d := valid
				tc.change(&d)
				_, err := e.admin.ServiceDeploy(ctx, d)
				wantAPIError(t, err, http.StatusBadRequest, "InvalidField", tc.field, tc.fragments...)
			})
		}
		t.Run("several problems together", func(t *testing.T) {
			d := valid
			d.Name, d.Models, d.EntryScript, d.Workers, d.Target = "X", []string{"nope"}, "nope.py", 99, "aci"
			_, err := e.admin.ServiceDeploy(ctx, d)
			ae := wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "name")
			var fields []string
			for _, x := range ae.Details {
				fields = append(fields, x.Field)
			}
			if d := cmp.Diff([]string{"name", "target", "workers", "models", "entry_script"}, fields); d != "" {
				t.Errorf("fields (-want +got):\n%s", d)
			}
		})
		svcs, err := e.admin.ServiceList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(svcs) != 1 {
			t.Errorf("refused deploys stored services: %+v", svcs)
		}
		if e.services.wakes.Load() != 1 {
			t.Errorf("manager woken %d times, want once (for the one deploy)", e.services.wakes.Load())
		}
	})
}

func TestServiceLifecycle(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e, d := deployEnv(t, s)
		ctx := t.Context()
		d.Auth, d.Workers, d.Env = "key", 2, map[string]string{"MODE": "fast"}
		svc, err := e.admin.ServiceDeploy(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if e.status.get() != http.StatusAccepted {
			t.Errorf("deploy status = %d, want 202", e.status.get())
		}
		if svc.State != "Transitioning" || svc.Generation != 1 || svc.ObservedGeneration != 0 || !svc.AuthEnabled || svc.Workers != 2 ||
			svc.Target != "local" || svc.RequestTimeoutSeconds != 60 || svc.EntryScript != "score.py" || svc.Error != "" {
			t.Errorf("deployed %+v", svc)
		}
		if d := cmp.Diff([]api.ServiceModel{{Name: "digits", Version: 2}}, svc.Models); d != "" {
			t.Errorf("models resolved to the latest version (-want +got):\n%s", d)
		}
		if svc.Port < 1024 || svc.ScoringURI != fmt.Sprintf("http://127.0.0.1:%d/score", svc.Port) || svc.SwaggerURI != fmt.Sprintf("http://127.0.0.1:%d/swagger.json", svc.Port) {
			t.Errorf("port %d, scoring %q, swagger %q", svc.Port, svc.ScoringURI, svc.SwaggerURI)
		}
		if e.services.wakes.Load() != 1 {
			t.Errorf("wakes = %d after deploy", e.services.wakes.Load())
		}
		keys, err := e.admin.ServiceKeys(ctx, "digits-svc")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(keys.PrimaryKey, "hsk_") || !strings.HasPrefix(keys.SecondaryKey, "hsk_") || keys.PrimaryKey == keys.SecondaryKey {
			t.Errorf("keys = %+v", keys)
		}

		// The same name again is refused unless overwriting, which is an
		// update: same port and keys, next generation.
		_, err = e.admin.ServiceDeploy(ctx, d)
		ae := wantAPIError(t, err, http.StatusConflict, "Conflict", "name", `"digits-svc" already exists`)
		if !strings.Contains(ae.Hint, "--overwrite") {
			t.Errorf("hint %q does not mention --overwrite", ae.Hint)
		}
		d.Overwrite, d.Models = true, []string{"digits:1"}
		svc2, err := e.admin.ServiceDeploy(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if svc2.Generation != 2 || svc2.Port != svc.Port || svc2.Models[0].Version != 1 || !svc2.CreatedOn.Equal(svc.CreatedOn) {
			t.Errorf("overwrite = %+v", svc2)
		}
		if k, _ := e.admin.ServiceKeys(ctx, "digits-svc"); *k != *keys {
			t.Errorf("overwrite changed the keys")
		}
		// A new port may be given, the service's own port too.
		d.Port = svc.Port
		if _, err := e.admin.ServiceDeploy(ctx, d); err != nil {
			t.Fatalf("overwrite on its own port: %v", err)
		}

		// The manager writes status; the API shows it.
		if err := s.ServiceSetStatus(ctx, "default", "digits-svc", 3, service.Healthy, "", time.Now()); err != nil {
			t.Fatal(err)
		}
		got, err := e.admin.ServiceGet(ctx, "digits-svc")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != "Healthy" || got.ObservedGeneration != 3 || got.Generation != 3 {
			t.Errorf("after status: %s %d/%d", got.State, got.ObservedGeneration, got.Generation)
		}

		t.Run("regen-key", func(t *testing.T) {
			wakes := e.services.wakes.Load()
			k2, err := e.admin.ServiceRegenKey(ctx, "digits-svc", "primary")
			if err != nil {
				t.Fatal(err)
			}
			if k2.PrimaryKey == keys.PrimaryKey || k2.SecondaryKey != keys.SecondaryKey {
				t.Errorf("regen primary: %+v (was %+v)", k2, keys)
			}
			k3, err := e.admin.ServiceRegenKey(ctx, "digits-svc", "secondary")
			if err != nil {
				t.Fatal(err)
			}
			if k3.PrimaryKey != k2.PrimaryKey || k3.SecondaryKey == keys.SecondaryKey {
				t.Errorf("regen secondary: %+v", k3)
			}
			_, err = e.admin.ServiceRegenKey(ctx, "digits-svc", "tertiary")
			wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "key", "must be primary or secondary")
			if got, _ := e.admin.ServiceGet(ctx, "digits-svc"); got.Generation != 3 {
				t.Errorf("regen-key changed the generation to %d", got.Generation)
			}
			if e.services.wakes.Load() != wakes+2 {
				t.Errorf("regen-key woke the manager %d times, want 2", e.services.wakes.Load()-wakes)
			}
		})

		t.Run("run tokens get no keys", func(t *testing.T) {
			r := e.runWithFiles(nil)
			_, err := e.client(e.runToken(r.ID)).ServiceKeys(ctx, "digits-svc")
			wantAPIError(t, err, http.StatusForbidden, "Forbidden", "")
		})

		t.Run("model in use", func(t *testing.T) {
			err := e.admin.ModelDelete(ctx, "digits", 1)
			ae := wantAPIError(t, err, http.StatusConflict, "Conflict", "", "model digits:1 is used by service(s) digits-svc")
			if !strings.Contains(ae.Hint, "hangar service delete digits-svc") {
				t.Errorf("hint = %q", ae.Hint)
			}
			if err := e.admin.ModelDelete(ctx, "digits", 2); err != nil {
				t.Errorf("deleting a version no service uses: %v", err)
			}
		})

		t.Run("update", func(t *testing.T) {
			up, err := e.admin.ServiceUpdate(ctx, "digits-svc", api.ServiceUpdate{Workers: ptr(3), Auth: ptr("none")})
			if err != nil {
				t.Fatal(err)
			}
			if e.status.get() != http.StatusAccepted || up.Generation != 4 || up.Workers != 3 || up.AuthEnabled || up.State != "Healthy" {
				t.Errorf("update = %d %+v", e.status.get(), up)
			}
			_, err = e.admin.ServiceUpdate(ctx, "digits-svc", api.ServiceUpdate{})
			wantAPIError(t, err, http.StatusBadRequest, "BadRequest", "", "nothing to update")
			_, err = e.admin.ServiceUpdate(ctx, "digits-svc", api.ServiceUpdate{Workers: ptr(0), EntryScript: ptr("nope.py"), Models: []string{"gone"}})
			ae := wantAPIError(t, err, http.StatusBadRequest, "InvalidField", "models")
			if len(ae.Details) != 3 {
				t.Errorf("details = %+v", ae.Details)
			}
			_, err = e.admin.ServiceUpdate(ctx, "nope-svc", api.ServiceUpdate{Workers: ptr(1)})
			wantAPIError(t, err, http.StatusNotFound, "NotFound", "name", `service "nope-svc" not found`)
			if got, _ := e.admin.ServiceGet(ctx, "digits-svc"); got.Generation != 4 || got.Workers != 3 {
				t.Errorf("refused updates changed the service: %+v", got)
			}
		})

		t.Run("logs", func(t *testing.T) {
			p := e.services.LogPath("default", "digits-svc")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("worker 1 ready\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			rc, err := e.admin.ServiceLogs(ctx, "digits-svc", 0, false)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(rc)
			rc.Close()
			if string(data) != "worker 1 ready\n" {
				t.Errorf("logs = %q", data)
			}
			rc, err = e.admin.ServiceLogs(ctx, "digits-svc", 7, false)
			if err != nil {
				t.Fatal(err)
			}
			data, _ = io.ReadAll(rc)
			rc.Close()
			if string(data) != "1 ready\n" {
				t.Errorf("logs from 7 = %q", data)
			}
		})

		t.Run("delete", func(t *testing.T) {
			wakes := e.services.wakes.Load()
			if err := e.admin.ServiceDelete(ctx, "digits-svc"); err != nil {
				t.Fatal(err)
			}
			got, err := e.admin.ServiceGet(ctx, "digits-svc")
			if err != nil {
				t.Fatal(err)
			}
			if !got.DeleteRequested || e.services.wakes.Load() != wakes+1 {
				t.Errorf("after delete: %+v, wakes +%d", got, e.services.wakes.Load()-wakes)
			}
			if err := e.admin.ServiceDelete(ctx, "digits-svc"); err != nil {
				t.Errorf("deleting twice: %v", err)
			}
			_, err = e.admin.ServiceUpdate(ctx, "digits-svc", api.ServiceUpdate{Workers: ptr(1)})
			wantAPIError(t, err, http.StatusConflict, "Conflict", "", "being deleted")
			_, err = e.admin.ServiceDeploy(ctx, d)
			wantAPIError(t, err, http.StatusConflict, "Conflict", "name", "being deleted")
			err = e.admin.ModelDelete(ctx, "digits", 1)
			wantAPIError(t, err, http.StatusConflict, "Conflict", "", "digits-svc (being deleted)")
			// The manager removes the row once the service stopped.
			if err := s.ServiceDelete(ctx, "default", "digits-svc"); err != nil {
				t.Fatal(err)
			}
			_, err = e.admin.ServiceGet(ctx, "digits-svc")
			wantAPIError(t, err, http.StatusNotFound, "NotFound", "name")
			if err := e.admin.ModelDelete(ctx, "digits", 1); err != nil {
				t.Errorf("model delete once the service is gone: %v", err)
			}
		})
	})
}

func TestServiceLogsFollow(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e, d := deployEnv(t, s)
		ctx := t.Context()
		if _, err := e.admin.ServiceDeploy(ctx, d); err != nil {
			t.Fatal(err)
		}
		p := e.services.LogPath("default", d.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		rc, err := e.admin.ServiceLogs(ctx, d.Name, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		// The log appears, grows, and the stream ends once the service
		// is gone, with every line.
		var (
			mu  sync.Mutex
			got []byte
		)
		done := make(chan error, 1)
		go func() {
			buf := make([]byte, 1024)
			for {
				n, err := rc.Read(buf)
				mu.Lock()
				got = append(got, buf[:n]...)
				mu.Unlock()
				if err != nil {
					done <- err
					return
				}
			}
		}()
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		waitFor := func(want string) {
			t.Helper()
			for {
				mu.Lock()
				ok := strings.Contains(string(got), want)
				mu.Unlock()
				if ok {
					return
				}
				select {
				case <-ctx.Done():
					t.Fatalf("log never showed %q", want)
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		fmt.Fprintln(f, "line 1")
		waitFor("line 1\n")
		fmt.Fprintln(f, "line 2")
		waitFor("line 2\n")
		fmt.Fprintln(f, "last words")
		if err := s.ServiceDelete(ctx, "default", d.Name); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != io.EOF {
				t.Errorf("stream ended with %v", err)
			}
		case <-ctx.Done():
			t.Fatal("stream did not end after the service was removed")
		}
		if string(got) != "line 1\nline 2\nlast words\n" {
			t.Errorf("followed log = %q", got)
		}
	})
}

func TestServiceEnvironment(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		e, d := deployEnv(t, s)
		ctx := context.WithoutCancel(t.Context())
		for _, spec := range []api.EnvironmentSpec{
			{Name: "sk", Python: "/usr/bin/python3", Requirements: []string{"scikit-learn"}, Variables: map[string]string{"A": "1", "B": "2"}},
			{Name: "sk2", Python: "python3.12", Variables: map[string]string{"A": "9"}},
		} {
			if _, err := e.admin.EnvironmentCreate(ctx, spec); err != nil {
				t.Fatal(err)
			}
		}
		d.Environment, d.Env = "sk", map[string]string{"B": "3", "C": "4"}
		svc, err := e.admin.ServiceDeploy(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if svc.Environment != "sk:1" || svc.Python != "/usr/bin/python3" {
			t.Errorf("environment %q python %q", svc.Environment, svc.Python)
		}
		wantEnv := func(want map[string]string) {
			t.Helper()
			got, err := e.admin.ServiceGet(ctx, d.Name)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got.Env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
		}
		wantEnv(map[string]string{"A": "1", "B": "3", "C": "4"})
		stored, err := s.ServiceGet(ctx, "default", d.Name)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff([]string{"scikit-learn"}, stored.Requirements); d != "" {
			t.Errorf("requirements (-want +got):\n%s", d)
		}

		// A new environment keeps the variables given before.
		up, err := e.admin.ServiceUpdate(ctx, d.Name, api.ServiceUpdate{Environment: ptr("sk2")})
		if err != nil {
			t.Fatal(err)
		}
		if up.Environment != "sk2:1" || up.Python != "python3.12" {
			t.Errorf("after update: environment %q python %q", up.Environment, up.Python)
		}
		wantEnv(map[string]string{"A": "9", "B": "3", "C": "4"})
		// New variables replace the given ones; the environment's stay.
		if _, err := e.admin.ServiceUpdate(ctx, d.Name, api.ServiceUpdate{Env: map[string]string{}}); err != nil {
			t.Fatal(err)
		}
		wantEnv(map[string]string{"A": "9"})
		// A python given wins over the environment's.
		up, err = e.admin.ServiceUpdate(ctx, d.Name, api.ServiceUpdate{Python: ptr("/opt/py/bin/python")})
		if err != nil {
			t.Fatal(err)
		}
		if up.Python != "/opt/py/bin/python" || up.Environment != "sk2:1" {
			t.Errorf("python update: %q %q", up.Python, up.Environment)
		}
		wantEnv(map[string]string{"A": "9"})
	})
}
