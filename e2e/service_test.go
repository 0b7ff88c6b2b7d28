package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
)

const echoScore = `import json, os
prefix = None
def init():
    global prefix
    prefix = open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "prefix.txt")).read().strip()
def run(raw_data):
    return {"echo": json.loads(raw_data), "model": prefix, "version": VERSION}
`

func waitService(t *testing.T, c *client.Client, name string) *api.Service {
	t.Helper()
	var s *api.Service
	waitFor(t, "service "+name+" to settle", 2*time.Minute, func() (bool, error) {
		var err error
		s, err = c.ServiceGet(context.Background(), name)
		if err != nil {
			return false, err
		}
		return s.State != "Transitioning" && s.ObservedGeneration >= s.Generation, nil
	})
	return s
}

// TestServiceLifecycle deploys a model as a local service with key auth,
// scores it, updates it with a broken init() (the old version keeps
// serving), kills the server with SIGKILL and checks the service comes back
// on the same port, then deletes it and checks the port is free.
func TestServiceLifecycle(t *testing.T) {
	dataDir := t.TempDir()
	killNodes(t, dataDir)
	addr := freeAddr(t)
	srv := startServer(t, dataDir, addr)
	c := srv.client(t)
	ctx := context.Background()

	mdir := t.TempDir()
	writeFile(t, mdir, "prefix.txt", "model-one\n")
	mdig := uploadDir(t, c, mdir)
	m, err := c.ModelRegister(ctx, api.ModelRegister{Name: "echo-model", Digest: mdig, Path: "prefix.txt"})
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeFile(t, src, "score.py", strings.Replace(echoScore, "VERSION", "1", 1))
	sdig := uploadDir(t, c, src)
	if _, err := c.ServiceDeploy(ctx, api.ServiceDeploy{Name: "echo-svc", Models: []string{"echo-model"}, EntryScript: "score.py", SourceDigest: sdig, Auth: "key"}); err != nil {
		t.Fatal(err)
	}
	s := waitService(t, c, "echo-svc")
	if s.State != "Healthy" || !strings.HasPrefix(s.ScoringURI, "http://127.0.0.1:") || s.Models[0].Version != m.Version {
		t.Fatalf("service = %+v", s)
	}
	keys, err := c.ServiceKeys(ctx, "echo-svc")
	if err != nil {
		t.Fatal(err)
	}
	score := func(key, body string) (int, string) {
		t.Helper()
		status, resp, err := c.Score(ctx, s.ScoringURI, key, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return status, string(resp)
	}
	if st, body := score(keys.PrimaryKey, `{"x": 1}`); st != 200 || !strings.Contains(body, `"model": "model-one"`) || !strings.Contains(body, `"version": 1`) {
		t.Fatalf("score = %d %s", st, body)
	}
	if st, body := score("", `{"x": 1}`); st != 401 || !strings.Contains(body, "hangar service keys echo-svc") {
		t.Errorf("score without key = %d %s", st, body)
	}
	if st, _ := score(keys.SecondaryKey, `{"x": 2}`); st != 200 {
		t.Errorf("secondary key = %d", st)
	}

	// A broken update keeps generation 1 serving.
	writeFile(t, src, "score.py", "def init():\n    raise RuntimeError('cannot load weights')\ndef run(d):\n    return d\n")
	bad := uploadDir(t, c, src)
	if _, err := c.ServiceUpdate(ctx, "echo-svc", api.ServiceUpdate{SourceDigest: &bad}); err != nil {
		t.Fatal(err)
	}
	s = waitService(t, c, "echo-svc")
	if s.State != "Healthy" || !strings.Contains(s.Error, "cannot load weights") {
		t.Errorf("after a failed update: state %s error %q; want Healthy with the init error", s.State, s.Error)
	}
	if st, body := score(keys.PrimaryKey, `{"x": 3}`); st != 200 || !strings.Contains(body, `"version": 1`) {
		t.Errorf("old version no longer serves: %d %s", st, body)
	}
	// A good update swaps in.
	writeFile(t, src, "score.py", strings.Replace(echoScore, "VERSION", "2", 1))
	good := uploadDir(t, c, src)
	if _, err := c.ServiceUpdate(ctx, "echo-svc", api.ServiceUpdate{SourceDigest: &good}); err != nil {
		t.Fatal(err)
	}
	s = waitService(t, c, "echo-svc")
	if st, body := score(keys.PrimaryKey, `{"x": 4}`); s.State != "Healthy" || st != 200 || !strings.Contains(body, `"version": 2`) {
		t.Errorf("after a good update: %s %q; score %d %s", s.State, s.Error, st, body)
	}

	// kill -9: the service comes back on the same port.
	srv.kill9()
	srv2 := startServer(t, dataDir, addr)
	c = srv2.client(t)
	s2 := waitService(t, c, "echo-svc")
	if s2.ScoringURI != s.ScoringURI || s2.State != "Healthy" {
		t.Fatalf("after restart: %+v (was %s)", s2, s.ScoringURI)
	}
	if st, body := score(keys.PrimaryKey, `{"x": 5}`); st != 200 || !strings.Contains(body, `"version": 2`) {
		t.Errorf("after restart: score %d %s", st, body)
	}

	// Delete stops the workers and frees the port.
	if err := c.ServiceDelete(ctx, "echo-svc"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "service deleted", time.Minute, func() (bool, error) {
		_, err := c.ServiceGet(ctx, "echo-svc")
		return client.IsNotFound(err), nil
	})
	port := strings.TrimSuffix(strings.TrimPrefix(s.ScoringURI, "http://127.0.0.1:"), "/score")
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Errorf("port %s still taken after delete: %v", port, err)
	} else {
		ln.Close()
	}
	if err := c.ModelDelete(ctx, "echo-model", m.Version); err != nil {
		t.Errorf("model delete after its service is gone: %v", err)
	}
}

// TestServiceInitFailure: a first deploy whose init() raises ends Failed
// with the exception in the error.
func TestServiceInitFailure(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, freeAddr(t))
	c := srv.client(t)
	ctx := context.Background()
	mdir := t.TempDir()
	writeFile(t, mdir, "w.bin", "x")
	m, err := c.ModelRegister(ctx, api.ModelRegister{Name: "m", Digest: uploadDir(t, c, mdir), Path: "w.bin"})
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeFile(t, src, "score.py", "def init():\n    raise ValueError('no such weights file')\ndef run(d):\n    return d\n")
	if _, err := c.ServiceDeploy(ctx, api.ServiceDeploy{Name: "broken", Models: []string{fmt.Sprintf("m:%d", m.Version)}, EntryScript: "score.py", SourceDigest: uploadDir(t, c, src)}); err != nil {
		t.Fatal(err)
	}
	s := waitService(t, c, "broken")
	if s.State != "Failed" || !strings.Contains(s.Error, "ValueError") || !strings.Contains(s.Error, "no such weights file") {
		t.Fatalf("service = %s %q; want Failed with the ValueError", s.State, s.Error)
	}
}
