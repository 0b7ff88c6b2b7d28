package local_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/internal/agentproto"
	"github.com/hangar-ml/hangar/internal/provider"
	"github.com/hangar-ml/hangar/internal/provider/local"
	"github.com/hangar-ml/hangar/internal/provider/providertest"
)

// fakeAgent is the stand-in agent built from testdata/fakeagent in TestMain.
// The suite here is about the node process lifecycle; the end-to-end tests
// run the real `hangar agent`.
var fakeAgent string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hangar-fakeagent-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakeAgent = filepath.Join(dir, "fakeagent")
	build := exec.Command("go", "build", "-o", fakeAgent, "./testdata/fakeagent")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build fake agent:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newProvider(dataDir string) func(t *testing.T) provider.Provider {
	return func(t *testing.T) provider.Provider {
		return local.New(local.Config{Executable: fakeAgent, DataDir: dataDir, Logger: testLogger(t)})
	}
}

func TestConformance(t *testing.T) {
	providertest.Run(t, newProvider(t.TempDir()), fakeAgent)
}

func TestCreateStartsAgentInOwnSessionWithTokenInEnv(t *testing.T) {
	parentVar := "HANGAR_TEST_PARENT_" + strconv.Itoa(os.Getpid())
	t.Setenv(parentVar, "leak")
	dataDir := t.TempDir()
	p := newProvider(dataDir)(t)
	spec := provider.Spec{NodeID: "n-env", ServerURL: "http://127.0.0.1:1", Token: "tok_secret_123", Slots: 3}
	handle, err := p.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Delete(t.Context(), handle, time.Second) })

	var h local.Handle
	if err := json.Unmarshal([]byte(handle), &h); err != nil {
		t.Fatalf("handle %q: %v", handle, err)
	}
	wantDir := filepath.Join(dataDir, "nodes", "n-env")
	if h.Dir != wantDir || h.Node != "n-env" || h.PID <= 0 {
		t.Fatalf("handle = %+v, want dir %s, node n-env and a pid", h, wantDir)
	}

	cmdline := readProc(t, h.PID, "cmdline")
	wantArgs := strings.Join([]string{fakeAgent, "agent", "--server", spec.ServerURL, "--node", "n-env", "--dir", wantDir, "--slots", "3"}, "\x00") + "\x00"
	if cmdline != wantArgs {
		t.Errorf("cmdline = %q, want %q", cmdline, wantArgs)
	}
	environ := "\x00" + readProc(t, h.PID, "environ")
	if !strings.Contains(environ, "\x00"+agentproto.TokenEnv+"=tok_secret_123\x00") {
		t.Errorf("agent environment lacks %s", agentproto.TokenEnv)
	}
	if strings.Contains(environ, parentVar) {
		t.Errorf("agent environment has the server's %s", parentVar)
	}
	// Own session: the session id (field 6 of stat) is the agent's pid.
	stat := readProc(t, h.PID, "stat")
	fields := strings.Fields(stat[strings.LastIndexByte(stat, ')')+2:])
	if sid := fields[3]; sid != strconv.Itoa(h.PID) {
		t.Errorf("agent session id = %s, want its own pid %d", sid, h.PID)
	}
	for _, f := range []string{"agent.pid", "agent.log"} {
		if _, err := os.Stat(filepath.Join(wantDir, f)); err != nil {
			t.Errorf("node dir: %v", err)
		}
	}
}

func TestDeleteKillsAgentIgnoringSIGTERMAndRemovesDir(t *testing.T) {
	t.Parallel()
	p := newProvider(t.TempDir())(t)
	handle, err := p.Create(t.Context(), provider.Spec{NodeID: "n-ignore-term", ServerURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	h := parse(t, handle)
	// Give the stand-in time to install its SIGTERM handler; before that the
	// default action would end it, which proves nothing.
	waitFor(t, func() bool { return strings.Contains(readProc(t, h.PID, "status"), "SigIgn:\t0000000000004000") })
	grace := 200 * time.Millisecond
	start := time.Now()
	if err := p.Delete(t.Context(), handle, grace); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < grace {
		t.Errorf("Delete returned after %v, before the grace period %v", d, grace)
	}
	if ok, _ := p.Alive(t.Context(), handle); ok {
		t.Error("agent alive after Delete")
	}
	if _, err := os.Stat(h.Dir); !os.IsNotExist(err) {
		t.Errorf("node dir after Delete: %v, want not exist", err)
	}
}

// TestPreemptRemovesDir: an evicted node leaves nothing on disk, as an
// evicted cloud VM's disk is gone (the run's outputs were uploaded).
func TestPreemptRemovesDir(t *testing.T) {
	t.Parallel()
	p := newProvider(t.TempDir())(t)
	handle, err := p.Create(t.Context(), provider.Spec{NodeID: "n-preempt", ServerURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Delete(t.Context(), handle, time.Second) })
	if err := p.Preempt(t.Context(), handle, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(parse(t, handle).Dir); !os.IsNotExist(err) {
		t.Errorf("node dir after Preempt: %v; want it gone", err)
	}
	if ok, err := p.Alive(t.Context(), handle); err != nil || ok {
		t.Errorf("Alive after Preempt = %v, %v", ok, err)
	}
}

func TestAliveRefusesReusedPID(t *testing.T) {
	t.Parallel()
	p := newProvider(t.TempDir())(t)
	// Our own pid is alive but is not the agent of node n-reused.
	h := local.Handle{PID: os.Getpid(), Dir: t.TempDir(), Node: "n-reused"}
	b, _ := json.Marshal(h)
	if ok, err := p.Alive(t.Context(), string(b)); err != nil || ok {
		t.Errorf("Alive(reused pid) = %v, %v; want false, nil", ok, err)
	}
	// Delete must not signal the unrelated process.
	if err := p.Delete(t.Context(), string(b), time.Second); err != nil {
		t.Errorf("Delete(reused pid) = %v", err)
	}
}

func TestCreateReplacesStalePIDFile(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	dir := filepath.Join(dataDir, "nodes", "n-stale")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "agent.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newProvider(dataDir)(t)
	handle, err := p.Create(t.Context(), provider.Spec{NodeID: "n-stale", ServerURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Delete(t.Context(), handle, time.Second) })
	if pid := parse(t, handle).PID; pid == os.Getpid() {
		t.Fatal("Create adopted an unrelated process from a stale pid file")
	}
	if ok, _ := p.Alive(t.Context(), handle); !ok {
		t.Error("new agent not alive")
	}
}

func TestDeleteRemovesReadOnlyDirs(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	p := newProvider(dataDir)(t)
	handle, err := p.Create(t.Context(), provider.Spec{NodeID: "n-ro", ServerURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	// What the agent leaves behind: read-only inputs in an attempt dir.
	ro := filepath.Join(parse(t, handle).Dir, "attempts", "a-1", "inputs", "data")
	if err := os.MkdirAll(ro, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ro, "f.csv"), []byte("x"), 0o444); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{ro, filepath.Dir(ro)} {
		if err := os.Chmod(d, 0o555); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Delete(t.Context(), handle, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(parse(t, handle).Dir); !os.IsNotExist(err) {
		t.Errorf("node dir after Delete: %v", err)
	}
}

func TestCreateRefusesBadSpec(t *testing.T) {
	t.Parallel()
	p := newProvider(t.TempDir())(t)
	for _, spec := range []provider.Spec{
		{NodeID: "", ServerURL: "http://x"},
		{NodeID: "../escape", ServerURL: "http://x"},
		{NodeID: "-flag", ServerURL: "http://x"},
		{NodeID: "ok", ServerURL: ""},
	} {
		if h, err := p.Create(t.Context(), spec); err == nil {
			t.Errorf("Create(%+v) = %q, want an error", spec, h)
			_ = p.Delete(t.Context(), h, time.Second)
		}
	}
	if _, err := p.Alive(t.Context(), "not json"); err == nil {
		t.Error("Alive(bad handle) = nil error")
	}
}

func parse(t *testing.T, handle string) local.Handle {
	t.Helper()
	var h local.Handle
	if err := json.Unmarshal([]byte(handle), &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func readProc(t *testing.T, pid int, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond (a process state we cannot be notified of) until it
// holds or the test's deadline nears.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
