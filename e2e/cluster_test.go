package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
)

// TestClusterScalesUpRunsAndScalesDown is the foundation's main story: a
// cluster min 0 / max 2 / idle 5 s gets three runs, grows to two nodes,
// completes all three with outputs and metrics, then shrinks to zero.
func TestClusterScalesUpRunsAndScalesDown(t *testing.T) {
	dataDir := t.TempDir()
	killNodes(t, dataDir)
	srv := startServer(t, dataDir, freeAddr(t))
	c := srv.client(t)
	ctx := context.Background()

	_, err := c.ComputeCreate(ctx, api.ComputeSpec{Name: "cpu-cluster", Type: "amlcompute", Properties: api.ComputeProperties{
		VMSize: "STANDARD_D2_V2", ScaleSettings: &api.ScaleSettings{MinNodes: ptr(0), MaxNodes: ptr(2), IdleSecondsBeforeScaledown: ptr(5)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "cluster provisioned", time.Minute, func() (bool, error) {
		cp, err := c.ComputeGet(ctx, "cpu-cluster")
		return err == nil && cp.ProvisioningState == "Succeeded", err
	})

	digest := uploadDir(t, c, examplesDir(t, "hello"))
	env := map[string]string{"STEPS": "4", "STEP_SECONDS": "0.5"}
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, submitHello(t, c, "cpu-cluster", digest, env).ID)
	}

	maxNodes := 0
	waitFor(t, "three runs to finish", 3*time.Minute, func() (bool, error) {
		cp, err := c.ComputeGet(ctx, "cpu-cluster")
		if err != nil {
			return false, err
		}
		maxNodes = max(maxNodes, cp.Status.CurrentNodeCount)
		if cp.Status.CurrentNodeCount > 2 {
			t.Fatalf("current_node_count %d is above max_nodes 2", cp.Status.CurrentNodeCount)
		}
		for _, id := range ids {
			r, err := c.RunGet(ctx, id)
			if err != nil {
				return false, err
			}
			if r.Status == "Failed" || r.Status == "Canceled" {
				t.Fatalf("run %s ended %s: %+v\nlog:\n%s", id, r.Status, r.Error, runLog(t, c, id))
			}
			if r.Status != "Completed" {
				return false, nil
			}
		}
		return true, nil
	})
	if maxNodes != 2 {
		t.Errorf("node count peaked at %d, want 2", maxNodes)
	}

	for _, id := range ids {
		r, err := c.RunGet(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Attempts) != 1 || r.Attempts[0].ExitCode == nil || *r.Attempts[0].ExitCode != 0 || r.Attempts[0].Node == "" {
			t.Errorf("run %s attempts = %+v, want one successful attempt on a node", id, r.Attempts)
		}
		if r.StartedOn == nil || r.EndedOn == nil {
			t.Errorf("run %s lacks timestamps: %+v", id, r)
		}
		files := runFiles(t, c, id)
		if got := files["outputs/result.txt"]; !strings.Contains(got, "run "+id+" attempt 1 args ['--lr', '0.1']") {
			t.Errorf("run %s outputs/result.txt = %q", id, got)
		}
		if log := runLog(t, c, id); strings.Count(log, "step 3") != 1 || !strings.Contains(log, "done") {
			t.Errorf("run %s log:\n%s", id, log)
		}
		ms, err := c.RunMetrics(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) != 1 || ms[0].Name != "loss" || ms[0].Value == nil || *ms[0].Value != 0.25 {
			t.Errorf("run %s metrics = %+v", id, ms)
		}
	}

	waitFor(t, "scale down to 0", time.Minute, func() (bool, error) {
		cp, err := c.ComputeGet(ctx, "cpu-cluster")
		return err == nil && cp.Status.CurrentNodeCount == 0, err
	})
	evs, err := c.Events(ctx, "cpu-cluster", 100)
	if err != nil {
		t.Fatal(err)
	}
	var up, down int
	for _, e := range evs {
		switch e.Type {
		case "ScaleUp":
			up++
		case "ScaleDown":
			down++
			if !strings.Contains(e.Message, "idle") {
				t.Errorf("scale-down event without idle reason: %q", e.Message)
			}
		}
	}
	if up != 2 || down != 2 {
		t.Errorf("scale events up=%d down=%d, want 2 and 2: %+v", up, down, evs)
	}
}

// TestUserErrorFailsWithException checks that a failing script ends Failed
// with the real exception in the run's error.
func TestUserErrorFailsWithException(t *testing.T) {
	dataDir := t.TempDir()
	killNodes(t, dataDir)
	srv := startServer(t, dataDir, freeAddr(t))
	c := srv.client(t)
	ctx := context.Background()
	src := t.TempDir()
	writeFile(t, src, "boom.py", "def f():\n    raise ValueError('bad learning rate 42')\nf()\n")
	digest := uploadDir(t, c, src)
	r, err := c.RunSubmit(ctx, api.RunSubmit{Compute: "local", Script: "boom.py", SnapshotDigest: digest})
	if err != nil {
		t.Fatal(err)
	}
	got := waitRun(t, c, r.ID)
	if got.Status != "Failed" || got.Error == nil || !strings.Contains(got.Error.Details, "ValueError: bad learning rate 42") {
		t.Fatalf("run = %+v, error %+v; want Failed with the ValueError", got, got.Error)
	}
}

func waitRun(t *testing.T, c *client.Client, id string) *api.Run {
	t.Helper()
	var r *api.Run
	waitFor(t, "run "+id+" to end", 2*time.Minute, func() (bool, error) {
		var err error
		r, err = c.RunGet(context.Background(), id)
		if err != nil {
			return false, err
		}
		switch r.Status {
		case "Completed", "Failed", "Canceled":
			return true, nil
		}
		return false, nil
	})
	return r
}

// TestEnvironmentRequirements: a run whose environment needs a package the
// interpreter lacks fails before user code starts, naming the package; one
// whose requirements are met runs.
func TestEnvironmentRequirements(t *testing.T) {
	dataDir := t.TempDir()
	killNodes(t, dataDir)
	srv := startServer(t, dataDir, freeAddr(t))
	c := srv.client(t)
	ctx := context.Background()
	src := t.TempDir()
	writeFile(t, src, "train.py", "print('user code ran')\n")
	digest := uploadDir(t, c, src)

	bad, err := c.RunSubmit(ctx, api.RunSubmit{Compute: "local", Script: "train.py", SnapshotDigest: digest,
		EnvironmentSpec: &api.EnvironmentSpec{Requirements: []string{"pip", "no-such-package-hangar-test"}}})
	if err != nil {
		t.Fatal(err)
	}
	got := waitRun(t, c, bad.ID)
	if got.Status != "Failed" || got.Error == nil || got.Error.Code != "SetupFailed" || !strings.Contains(got.Error.Message, "no-such-package-hangar-test is not installed") {
		t.Fatalf("run = %s %+v; want Failed/SetupFailed naming the package", got.Status, got.Error)
	}
	if strings.Contains(runLog(t, c, bad.ID), "user code ran") {
		t.Error("user code ran although a requirement was missing")
	}

	if _, err := c.EnvironmentCreate(ctx, api.EnvironmentSpec{Name: "withpip", Requirements: []string{"pip"}, Variables: map[string]string{"GREETING": "hi"}}); err != nil {
		t.Fatal(err)
	}
	good, err := c.RunSubmit(ctx, api.RunSubmit{Compute: "local", Script: "train.py", SnapshotDigest: digest, Environment: "withpip"})
	if err != nil {
		t.Fatal(err)
	}
	if got := waitRun(t, c, good.ID); got.Status != "Completed" || got.Environment != "withpip:1" {
		t.Fatalf("run = %s env %q %+v", got.Status, got.Environment, got.Error)
	}
}

// TestChattyRunLogIsCapped: a run that prints far more than the log limit
// keeps its first MiB plus a marker, ends on time, and the server streams
// the log back without holding it whole.
func TestChattyRunLogIsCapped(t *testing.T) {
	dataDir := t.TempDir()
	killNodes(t, dataDir)
	srv := startServer(t, dataDir, freeAddr(t), "--max-log-mib", "1")
	c := srv.client(t)
	ctx := context.Background()
	src := t.TempDir()
	writeFile(t, src, "noop.txt", "")
	r, err := c.RunSubmit(ctx, api.RunSubmit{Compute: "local", Command: "yes hangar-log-line-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx | head -c 20000000", SnapshotDigest: uploadDir(t, c, src)})
	if err != nil {
		t.Fatal(err)
	}
	got := waitRun(t, c, r.ID)
	if got.Status != "Completed" {
		t.Fatalf("run = %s %+v", got.Status, got.Error)
	}
	log := runLog(t, c, r.ID)
	if len(log) != 1<<20 || !strings.HasSuffix(log, "log passed 1 MiB; the rest is not kept]\n") || !strings.HasPrefix(log, "hangar-log-line") {
		t.Errorf("log is %d bytes, ends %q; want ~1 MiB with the marker", len(log), log[max(0, len(log)-120):])
	}
}
