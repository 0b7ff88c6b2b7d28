package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hangar-ml/hangar/internal/agentproto"
)

func command(id, cmd string, args ...string) agentproto.Assignment {
	return agentproto.Assignment{
		AttemptID: id,
		RunID:     "run-" + id,
		Number:    1,
		Workspace: "default",
		Command:   cmd,
		Args:      args,
		Env:       map[string]string{},
	}
}

func TestRunsShellCommandInSnapshot(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	runAgent(t, s, nil)

	asg := command("a-sh", `echo "hello $1"; cat data.txt; echo oops >&2; exit 3`, "world")
	asg.SnapshotDigest = s.addBlob(tarGz(t, map[string]string{"data.txt": "from snapshot\n"}))
	s.assign(asg)

	got := s.waitFinish("a-sh")
	wantLog := "hello world\nfrom snapshot\noops\n"
	if string(got.log) != wantLog {
		t.Errorf("log = %q, want %q", got.log, wantLog)
	}
	want := agentproto.Finish{ExitCode: 3, ErrorTail: "hello world\nfrom snapshot\noops", LogBytes: int64(len(wantLog))}
	if diff := cmp.Diff(want, *got.finish); diff != "" {
		t.Errorf("finish (-want +got):\n%s", diff)
	}
	if got.starts != 1 || got.finishes != 1 {
		t.Errorf("starts = %d, finishes = %d; want 1, 1", got.starts, got.finishes)
	}
}

func TestRunsPythonScript(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	s := newFakeServer(t)
	runAgent(t, s, nil)

	script := `import os, sys
print("args", sys.argv[1:])
print("unbuffered", os.environ["PYTHONUNBUFFERED"])
with open("outputs/model.txt", "w") as f:
    f.write("weights")
`
	asg := agentproto.Assignment{
		AttemptID:      "a-py",
		RunID:          "run-py",
		Script:         "train.py",
		Args:           []string{"--epochs", "2"},
		SnapshotDigest: s.addBlob(tarGz(t, map[string]string{"train.py": script})),
	}
	s.assign(asg)

	got := s.waitFinish("a-py")
	wantLog := "args ['--epochs', '2']\nunbuffered 1\n"
	if string(got.log) != wantLog || got.finish.ExitCode != 0 {
		t.Errorf("log = %q, exit %d; want %q, 0", got.log, got.finish.ExitCode, wantLog)
	}
	if m := string(got.files["outputs/model.txt"]); m != "weights" {
		t.Errorf("outputs/model.txt = %q, want %q", m, "weights")
	}
}

func TestLogShippingResumesAfterServerOutage(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	a, _ := runAgent(t, s, nil)

	// The process waits for a file the test creates while the server is
	// down, so lines are written during the outage.
	s.assign(command("a-logs", `echo first; while [ ! -f go ]; do sleep 0.02; done; for i in 1 2 3 4 5; do echo "line $i"; done; exit 1`))
	s.waitLog("a-logs", "first\n")

	s.setDown(true)
	if err := os.WriteFile(filepath.Join(a.cfg.Dir, "attempts", "a-logs", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Let the agent fail a few times (logs, finish, heartbeats, polls).
	s.waitFor("the agent to hit the outage", func() bool { return s.rejected >= 10 })
	s.setDown(false)

	got := s.waitFinish("a-logs")
	wantLog := "first\nline 1\nline 2\nline 3\nline 4\nline 5\n"
	if string(got.log) != wantLog {
		t.Errorf("log = %q, want %q", got.log, wantLog)
	}
	if got.finish.LogBytes != int64(len(wantLog)) || got.finish.ExitCode != 1 {
		t.Errorf("finish = %+v, want log_bytes %d, exit 1", got.finish, len(wantLog))
	}
	s.mu.Lock()
	gaps := s.logGaps
	s.mu.Unlock()
	if gaps != 0 {
		t.Errorf("%d log posts skipped past the stored end", gaps)
	}
}

func TestFencedAttemptIsKilledAndNotFinished(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	_, stop := runAgent(t, s, nil)

	s.assign(command("a-fence", `echo "pid $$"; while :; do echo tick; sleep 0.05; done`))
	s.waitLog("a-fence", "tick")
	pid := pidFromLog(t, s.read("a-fence").log)
	s.fence("a-fence")

	waitGone(t, pid)
	s.waitFor("heartbeat without the fenced attempt", func() bool { return !slices.Contains(s.running, "a-fence") })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := s.read("a-fence"); got.finish != nil {
		t.Errorf("fenced attempt was finished: %+v", got.finish)
	}
}

func TestFencedStartNeverRuns(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	a, stop := runAgent(t, s, nil)
	s.fence("a-stale")
	s.assign(command("a-stale", `touch ran`))
	// The agent forgets a refused attempt; once it is gone from the agent
	// the decision was made.
	waitUntil(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.seen["a-stale"] && a.attempts["a-stale"] == nil
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(a.cfg.Dir, "attempts", "a-stale")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("working dir of a refused attempt: %v, want none", err)
	}
	if got := s.read("a-stale"); got.finish != nil || got.starts != 0 {
		t.Errorf("refused attempt: starts %d, finish %+v", got.starts, got.finish)
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		cmd      string
		wantCode int
		wantLog  string
	}{
		{"exits on SIGTERM", `trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done`, 7, "ready\ngot-term\n"},
		{"ignores SIGTERM", `trap '' TERM; echo ready; while :; do sleep 0.05; done`, -1, "ready\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newFakeServer(t)
			runAgent(t, s, func(c *Config) { c.KillGrace = 300 * time.Millisecond })
			s.assign(command("a-cancel", tc.cmd))
			s.waitLog("a-cancel", "ready\n")
			s.waitFor("heartbeat listing the attempt", func() bool { return slices.Contains(s.running, "a-cancel") })
			s.cancel("a-cancel")

			got := s.waitFinish("a-cancel")
			// The shell may add a line about the child the signal killed
			// ("Terminated"); the rest is exact.
			log := strings.ReplaceAll(string(got.log), "Terminated\n", "")
			if log != tc.wantLog {
				t.Errorf("log = %q, want %q", got.log, tc.wantLog)
			}
			want := agentproto.Finish{ExitCode: tc.wantCode, Reason: "canceled", ErrorTail: strings.TrimSuffix(string(got.log), "\n"), LogBytes: int64(len(got.log))}
			if diff := cmp.Diff(want, *got.finish); diff != "" {
				t.Errorf("finish (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMaxDuration(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	runAgent(t, s, nil)
	asg := command("a-max", `echo "pid $$"; sleep 60`)
	asg.MaxDurationSeconds = 1
	s.assign(asg)

	got := s.waitFinish("a-max")
	if got.finish.Reason != "max run duration exceeded" || got.finish.ExitCode != -1 {
		t.Errorf("finish = %+v, want reason %q, exit -1", got.finish, "max run duration exceeded")
	}
}

func TestShutdownPreemptsAttempts(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"signal", "server"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			s := newFakeServer(t)
			a := newTestAgent(t, s, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()

			s.assign(command("a-pre", `trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done`))
			s.waitLog("a-pre", "ready\n")
			if how == "signal" {
				cancel()
			} else {
				s.askShutdown()
			}
			if err := <-done; err != nil {
				t.Fatalf("Run = %v", err)
			}
			got := s.read("a-pre")
			if got.finish == nil || got.finish.Reason != "preempted" {
				t.Fatalf("finish = %+v, want reason preempted", got.finish)
			}
			if log := strings.ReplaceAll(string(got.log), "Terminated\n", ""); log != "ready\nbye\n" {
				t.Errorf("log = %q", got.log)
			}
		})
	}
}

func TestEnvironmentAllowList(t *testing.T) {
	// Not parallel: it sets the test process's environment, which the
	// agent reads as its own.
	parentVar := "HANGAR_TEST_PARENT_" + strconv.Itoa(os.Getpid())
	t.Setenv(parentVar, "leaked")
	t.Setenv(agentproto.TokenEnv, "hangar_node_secret")
	t.Setenv("LANG", "C.UTF-8")

	s := newFakeServer(t)
	a, _ := runAgent(t, s, func(c *Config) { c.ExtraPythonPath = "/opt/hangar/python" })

	dirInput := s.addBlob(tarGz(t, map[string]string{"a.csv": "1,2\n", "sub/b.csv": "3,4\n"}))
	// The process reports the inputs' modes itself: the attempt's working
	// dir is removed once its finish is acknowledged.
	asg := command("a-env", `env | sort; stat -c 'MODE %a %n' inputs/labels/labels.txt inputs/train-data/a.csv inputs/train-data/sub inputs; cat "$HANGAR_INPUT_TRAIN_DATA/sub/b.csv" "$HANGAR_INPUT_LABELS"`)
	asg.Env = map[string]string{"MY_VAR": "mine", "PYTHONPATH": "src", "HANGAR_RUN_ID": "run-a-env"}
	asg.Inputs = []agentproto.Input{
		{Name: "train-data", Digest: dirInput, Dir: true},
		{Name: "labels", Digest: s.addBlob([]byte("cat,dog\n")), FileName: "labels.txt"},
	}
	s.assign(asg)
	got := s.waitFinish("a-env")
	if got.finish.ExitCode != 0 {
		t.Fatalf("exit %d, log:\n%s", got.finish.ExitCode, got.log)
	}

	env := map[string]string{}
	for _, line := range strings.Split(string(got.log), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	work := filepath.Join(a.cfg.Dir, "attempts", "a-env")
	for k, want := range map[string]string{
		"MY_VAR":                  "mine",
		"HANGAR_RUN_ID":           "run-a-env",
		"LANG":                    "C.UTF-8",
		"PYTHONUNBUFFERED":        "1",
		"PYTHONPATH":              "/opt/hangar/python:src",
		"HANGAR_INPUT_TRAIN_DATA": filepath.Join(work, "inputs", "train-data"),
		"HANGAR_INPUT_LABELS":     filepath.Join(work, "inputs", "labels", "labels.txt"),
	} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	for _, k := range []string{parentVar, agentproto.TokenEnv} {
		if v, ok := env[k]; ok {
			t.Errorf("attempt sees the agent's %s=%q", k, v)
		}
	}
	for k := range env {
		if !slices.Contains(parentEnvAllowed, k) && asg.Env[k] == "" &&
			!slices.Contains([]string{"PYTHONUNBUFFERED", "PYTHONPATH", "PWD", "SHLVL", "OLDPWD", "_"}, k) &&
			!strings.HasPrefix(k, "HANGAR_INPUT_") {
			t.Errorf("unexpected variable %s in the attempt's environment", k)
		}
	}
	if !strings.HasSuffix(string(got.log), "3,4\ncat,dog\n") {
		t.Errorf("inputs not readable; log ends %q", got.log[max(0, len(got.log)-40):])
	}
	modes := map[string]string{}
	for _, line := range strings.Split(string(got.log), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "MODE" {
			modes[f[2]] = f[1]
		}
	}
	for _, p := range []string{"inputs/labels/labels.txt", "inputs/train-data/a.csv", "inputs/train-data/sub", "inputs"} {
		mode, err := strconv.ParseUint(modes[p], 8, 32)
		if err != nil {
			t.Fatalf("no mode of %s in the log: %v", p, err)
		}
		if mode&0o222 != 0 {
			t.Errorf("%s has mode %o, want read-only", p, mode)
		}
	}
	// The agent frees the working dir once the server acknowledged the
	// finish (just after the fake server recorded it): wait for that.
	for i := 0; ; i++ {
		if _, err := os.Stat(work); os.IsNotExist(err) {
			break
		} else if i == 500 {
			t.Errorf("attempt dir still there after the finish: %v", err)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOutputsUpload(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	a, _ := runAgent(t, s, nil)
	asg := command("a-out", `echo a > outputs/a.txt; echo l > logs/l.txt; echo ready
while [ ! -f go ]; do sleep 0.02; done
echo b > outputs/b.txt; mkdir -p outputs/sub; echo c > outputs/sub/c.txt; ln -s /etc/passwd outputs/link`)
	asg.OutputsIntervalSeconds = 1
	asg.SnapshotDigest = s.addBlob(tarGz(t, map[string]string{"src.py": "print()\n"}))
	s.assign(asg)

	// A periodic upload arrives while the process still runs.
	s.waitFor("a periodic upload", func() bool {
		a := s.attempts["a-out"]
		return a != nil && a.files["outputs/a.txt"] != nil && a.files["logs/l.txt"] != nil
	})
	if err := os.WriteFile(filepath.Join(a.cfg.Dir, "attempts", "a-out", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := s.waitFinish("a-out")

	wantFiles := map[string][]byte{
		"outputs/a.txt":     []byte("a\n"),
		"outputs/b.txt":     []byte("b\n"),
		"outputs/sub/c.txt": []byte("c\n"),
		"logs/l.txt":        []byte("l\n"),
	}
	if diff := cmp.Diff(wantFiles, got.files); diff != "" {
		t.Errorf("files on the server (-want +got):\n%s", diff)
	}
	final := got.uploads[len(got.uploads)-1]
	if diff := cmp.Diff([]string{"logs/l.txt", "outputs/a.txt", "outputs/b.txt", "outputs/sub/c.txt"}, final); diff != "" {
		t.Errorf("final upload is not complete (-want +got):\n%s", diff)
	}
	if len(got.uploads) < 2 {
		t.Errorf("uploads = %v, want periodic ones before the final one", got.uploads)
	}
}

func TestSetupFailureIsReported(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	runAgent(t, s, nil)
	asg := command("a-nosnap", "true")
	asg.SnapshotDigest = "sha256:" + strings.Repeat("0", 64) // the server does not have it
	s.assign(asg)

	got := s.waitFinish("a-nosnap")
	if got.finish.Reason != "setup failed" || got.finish.ExitCode != -1 || !strings.Contains(got.finish.ErrorTail, "404") {
		t.Errorf("finish = %+v, want reason %q, exit -1 and the cause", got.finish, "setup failed")
	}
	if !bytes.HasPrefix(got.log, []byte("hangar: setup failed: snapshot:")) {
		t.Errorf("log = %q", got.log)
	}
}

func TestSlotsLimitConcurrency(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	runAgent(t, s, func(c *Config) { c.Slots = 1 })
	for i := range 3 {
		s.assign(command(fmt.Sprintf("a-slot-%d", i), "sleep 0.2"))
	}
	for i := range 3 {
		if got := s.waitFinish(fmt.Sprintf("a-slot-%d", i)); got.finish.ExitCode != 0 {
			t.Errorf("a-slot-%d: exit %d", i, got.finish.ExitCode)
		}
	}
	if s.maxActive != 1 {
		t.Errorf("%d attempts ran at once, want 1", s.maxActive)
	}
}

func TestRestartedAgentDoesNotRerun(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	first, stop := runAgent(t, s, nil)
	asg := command("a-once", "echo once")
	s.assign(asg)
	s.waitFinish("a-once")
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	second := newTestAgent(t, s, func(c *Config) { c.Dir = first.cfg.Dir })
	startAgent(t, second)
	s.assign(asg) // the server hands it out again
	s.waitFor("the agent to take the assignment", func() bool { return len(s.pending) == 0 })
	polls := s.workPolls
	s.waitFor("the agent to poll again", func() bool { return s.workPolls > polls })
	if got := s.read("a-once"); got.starts != 1 || string(got.log) != "once\n" {
		t.Errorf("after restart: starts %d, log %q; want 1, %q", got.starts, got.log, "once\n")
	}
}

// TestStartLatency logs how long an attempt takes from the agent receiving
// it to its process running, on a warm node (snapshot cached). It asserts
// nothing about time; the number is for docs/BENCHMARKS.md.
func TestStartLatency(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	lat := make(chan time.Duration, 10)
	a := newTestAgent(t, s, nil)
	a.onStarted = func(_ string, received time.Time) { lat <- time.Since(received) }
	startAgent(t, a)
	snap := s.addBlob(tarGz(t, map[string]string{"train.py": "print(1)\n", "lib/util.py": "x = 1\n"}))
	var all []time.Duration
	var cold time.Duration
	for i := range 11 {
		asg := command(fmt.Sprintf("a-lat-%d", i), "true")
		asg.SnapshotDigest = snap
		s.assign(asg)
		d := <-lat
		if i == 0 {
			cold = d // downloads the snapshot
		} else {
			all = append(all, d)
		}
		s.waitFinish(asg.AttemptID)
	}
	slices.Sort(all)
	t.Logf("receipt to process start: cold %v; warm min %v, median %v, max %v", cold, all[0], all[len(all)/2], all[len(all)-1])
}

func BenchmarkAssignmentToStart(b *testing.B) {
	s := newFakeServer(b)
	lat := make(chan time.Duration, 1)
	a := newTestAgent(b, s, func(c *Config) { c.Logger = nil })
	a.onStarted = func(_ string, received time.Time) { lat <- time.Since(received) }
	startAgent(b, a)
	snap := s.addBlob(tarGz(b, map[string]string{"train.py": "print(1)\n"}))
	warm := command("a-warm", "true")
	warm.SnapshotDigest = snap
	s.assign(warm)
	<-lat
	s.waitFinish("a-warm")

	var total time.Duration
	b.ResetTimer()
	for i := range b.N {
		asg := command(fmt.Sprintf("a-bench-%d", i), "true")
		asg.SnapshotDigest = snap
		s.assign(asg)
		total += <-lat
		s.waitFinish(asg.AttemptID)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs-to-start/op")
}

func pidFromLog(t *testing.T, log []byte) int {
	t.Helper()
	for _, line := range strings.Split(string(log), "\n") {
		if p, ok := strings.CutPrefix(line, "pid "); ok {
			pid, err := strconv.Atoi(p)
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("no pid in log %q", log)
	return 0
}

// waitGone polls until pid no longer runs: it does not exist, or it is a
// zombie (an orphan waiting for an init that may never reap it).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	waitUntil(t, func() bool {
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			return true
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		i := bytes.LastIndexByte(stat, ')')
		return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
	})
}

// waitUntil polls cond, for states nothing notifies about.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
