package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/api"
)

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestServerKill9MidRun kills the server with SIGKILL while runs are
// running, restarts it on the same data dir, and checks every run still ends
// correctly, exactly once: one attempt each, each step printed once.
func TestServerKill9MidRun(t *testing.T) {
	dataDir := t.TempDir()
	killNodes(t, dataDir)
	addr := freeAddr(t)
	srv := startServer(t, dataDir, addr)
	c := srv.client(t)
	ctx := context.Background()

	if _, err := c.ComputeCreate(ctx, api.ComputeSpec{Name: "gpu-less", Type: "cluster", Properties: api.ComputeProperties{
		ScaleSettings: &api.ScaleSettings{MaxNodes: ptr(2), IdleSecondsBeforeScaledown: ptr(120)},
	}}); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	// Each run writes a marker per start, so a second start would show.
	writeFile(t, src, "train.py", `import os, time
marker = os.path.join(os.environ["MARKER_DIR"], os.environ["HANGAR_RUN_ID"])
with open(marker, "a") as f:
    f.write("started attempt %s\n" % os.environ["HANGAR_ATTEMPT"])
for i in range(8):
    print("step", i, flush=True)
    time.sleep(0.5)
os.makedirs("outputs", exist_ok=True)
open("outputs/done.txt", "w").write("ok")
`)
	markers := t.TempDir()
	digest := uploadDir(t, c, src)
	var ids []string
	for i := 0; i < 2; i++ {
		r, err := c.RunSubmit(ctx, api.RunSubmit{Compute: "gpu-less", Script: "train.py", SnapshotDigest: digest, Env: map[string]string{"MARKER_DIR": markers}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	waitFor(t, "both runs running", 2*time.Minute, func() (bool, error) {
		for _, id := range ids {
			r, err := c.RunGet(ctx, id)
			if err != nil || r.Status != "Running" {
				return false, err
			}
		}
		return true, nil
	})

	srv.kill9()
	time.Sleep(500 * time.Millisecond) // the runs go on without a server
	srv2 := startServer(t, dataDir, addr)
	c = srv2.client(t)

	for _, id := range ids {
		r := waitRun(t, c, id)
		if r.Status != "Completed" {
			t.Fatalf("run %s = %s (%+v), want Completed\nlog:\n%s", id, r.Status, r.Error, runLog(t, c, id))
		}
		if len(r.Attempts) != 1 {
			t.Errorf("run %s has %d attempts, want 1: %+v", id, len(r.Attempts), r.Attempts)
		}
		m, err := os.ReadFile(filepath.Join(markers, id))
		if err != nil {
			t.Fatal(err)
		}
		if string(m) != "started attempt 1\n" {
			t.Errorf("run %s started more than once: %q", id, m)
		}
		log := runLog(t, c, id)
		for i := 0; i < 8; i++ {
			if n := strings.Count(log, "step "+string(rune('0'+i))+"\n"); n != 1 {
				t.Errorf("run %s: step %d appears %d times in the log:\n%s", id, i, n, log)
			}
		}
		if files := runFiles(t, c, id); files["outputs/done.txt"] != "ok" {
			t.Errorf("run %s outputs = %v", id, files)
		}
	}
}

// TestPreemptionRequeues evicts a low-priority node mid-run: the run goes
// back to the queue, restarts on a new node and completes; what the first
// attempt uploaded to outputs/ stays.
func TestPreemptionRequeues(t *testing.T) {
	dataDir := t.TempDir()
	killNodes(t, dataDir)
	srv := startServer(t, dataDir, freeAddr(t))
	c := srv.client(t)
	ctx := context.Background()
	if _, err := c.ComputeCreate(ctx, api.ComputeSpec{Name: "spot", Type: "amlcompute", Properties: api.ComputeProperties{
		VMPriority: "lowpriority", ScaleSettings: &api.ScaleSettings{MaxNodes: ptr(1), IdleSecondsBeforeScaledown: ptr(60)},
	}}); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeFile(t, src, "train.py", `import os, time
os.makedirs("outputs", exist_ok=True)
attempt = os.environ["HANGAR_ATTEMPT"]
open("outputs/attempt-%s.txt" % attempt, "w").write("hello from attempt " + attempt)
for i in range(6 if attempt == "1" else 1):
    print("attempt", attempt, "step", i, flush=True)
    time.sleep(1)
`)
	digest := uploadDir(t, c, src)
	r, err := c.RunSubmit(ctx, api.RunSubmit{Compute: "spot", Script: "train.py", SnapshotDigest: digest})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the first attempt's outputs have been uploaded at least once.
	waitFor(t, "first attempt uploads outputs", 2*time.Minute, func() (bool, error) {
		got, err := c.RunGet(ctx, r.ID)
		if err != nil || got.Status != "Running" {
			return false, err
		}
		return runFiles(t, c, r.ID)["outputs/attempt-1.txt"] != "", nil
	})
	n, err := c.ComputePreempt(ctx, "spot", "")
	if err != nil {
		t.Fatal(err)
	}
	if n.State != "preempted" {
		t.Errorf("preempted node state = %s", n.State)
	}
	got := waitRun(t, c, r.ID)
	if got.Status != "Completed" || len(got.Attempts) != 2 || got.PreemptionRetries != 1 {
		t.Fatalf("run = %s, %d attempts, %d preemption retries; want Completed, 2, 1: %+v", got.Status, len(got.Attempts), got.PreemptionRetries, got.Attempts)
	}
	if got.Attempts[0].Reason != "preempted" || got.Attempts[0].Node == got.Attempts[1].Node {
		t.Errorf("attempts = %+v; want the first preempted and the second on another node", got.Attempts)
	}
	files := runFiles(t, c, r.ID)
	if files["outputs/attempt-1.txt"] == "" || files["outputs/attempt-2.txt"] == "" {
		t.Errorf("outputs = %v; want both attempts' files", files)
	}
}

// TestNodeLostWhileServerDown kills the server with SIGKILL, then kills one
// node's agent (and so its job) while the server is down. On restart the
// server re-adopts the surviving node, settles the dead one at once, and
// requeues its run, which completes on a new node with two attempts.
func TestNodeLostWhileServerDown(t *testing.T) {
	dataDir := t.TempDir()
	killNodes(t, dataDir)
	addr := freeAddr(t)
	srv := startServer(t, dataDir, addr)
	c := srv.client(t)
	ctx := context.Background()
	if _, err := c.ComputeCreate(ctx, api.ComputeSpec{Name: "pair", Type: "cluster", Properties: api.ComputeProperties{
		ScaleSettings: &api.ScaleSettings{MaxNodes: ptr(2), IdleSecondsBeforeScaledown: ptr(120)},
	}}); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeFile(t, src, "train.py", "import time\nfor i in range(6):\n    print('step', i, flush=True)\n    time.sleep(0.5)\n")
	digest := uploadDir(t, c, src)
	var ids []string
	for i := 0; i < 2; i++ {
		r, err := c.RunSubmit(ctx, api.RunSubmit{Compute: "pair", Script: "train.py", SnapshotDigest: digest})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	var victimNode string
	waitFor(t, "both runs running", 2*time.Minute, func() (bool, error) {
		for _, id := range ids {
			r, err := c.RunGet(ctx, id)
			if err != nil || r.Status != "Running" {
				return false, err
			}
			victimNode = r.Attempts[0].Node
		}
		return true, nil
	})
	srv.kill9()
	pid, err := os.ReadFile(filepath.Join(dataDir, "nodes", victimNode, "agent.pid"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("kill", "-9", strings.TrimSpace(string(pid))).CombinedOutput(); err != nil {
		t.Fatalf("kill agent: %v %s", err, out)
	}
	srv2 := startServer(t, dataDir, addr)
	c = srv2.client(t)
	for i, id := range ids {
		r := waitRun(t, c, id)
		if r.Status != "Completed" {
			t.Fatalf("run %s = %s (%+v)", id, r.Status, r.Error)
		}
		if i == 1 {
			if len(r.Attempts) != 2 || r.Attempts[0].Reason != "node lost" || r.Attempts[0].Node != victimNode {
				t.Errorf("run %s attempts = %+v; want the first lost on %s, then a second", id, r.Attempts, victimNode)
			}
		} else if len(r.Attempts) != 1 {
			t.Errorf("run %s attempts = %+v; want 1 (its node survived)", id, r.Attempts)
		}
	}
}

// TestDataDirLocked: a second server on the same data dir is refused,
// naming the first; after the first is killed -9 a new one starts.
func TestDataDirLocked(t *testing.T) {
	dataDir := t.TempDir()
	addr := freeAddr(t)
	srv := startServer(t, dataDir, addr)
	out, err := exec.Command(hangarBin, "server", "--data-dir", dataDir, "--addr", freeAddr(t)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is in use by another hangar server") || !strings.Contains(string(out), "url http://"+addr) {
		t.Fatalf("second server: %v\n%s", err, out)
	}
	srv.kill9()
	startServer(t, dataDir, addr)
}
