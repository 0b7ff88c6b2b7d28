//go:build linux

package agent

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"

	"github.com/hangar-ml/hangar/internal/agentproto"
)

// The test binary doubles as an agent process for tests that must kill the
// agent itself: with HANGAR_AGENT_TEST_HELPER=1 it runs an agent against
// HANGAR_AGENT_TEST_SERVER with its Dir in HANGAR_AGENT_TEST_DIR.
func TestMain(m *testing.M) {
	if os.Getenv("HANGAR_AGENT_TEST_HELPER") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		err := New(Config{
			ServerURL: os.Getenv("HANGAR_AGENT_TEST_SERVER"),
			NodeID:    "node-helper",
			Token:     os.Getenv(agentproto.TokenEnv),
			Dir:       os.Getenv("HANGAR_AGENT_TEST_DIR"),
		}).Run(ctx)
		if err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestProcessDiesWithKilledAgent(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	agent := exec.Command(os.Args[0], "-test.run=^$")
	agent.Env = append(os.Environ(),
		"HANGAR_AGENT_TEST_HELPER=1",
		"HANGAR_AGENT_TEST_SERVER="+s.srv.URL,
		"HANGAR_AGENT_TEST_DIR="+t.TempDir(),
		agentproto.TokenEnv+"="+s.token)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })

	s.assign(command("a-orphan", `echo "pid $$"; exec sleep 60`))
	s.waitLog("a-orphan", "pid ")
	pid := pidFromLog(t, s.read("a-orphan").log)

	if err := agent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = agent.Wait()
	// The orphan is reparented and reaped by init (or the nearest
	// subreaper) once the kernel has killed it.
	waitGone(t, pid)
}

func TestRunMakesAgentNonDumpable(t *testing.T) {
	t.Parallel()
	s := newFakeServer(t)
	runAgent(t, s, nil)
	s.waitFor("a heartbeat", func() bool { return s.running != nil })
	const prGetDumpable = 3
	r, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetDumpable, 0, 0)
	if errno != 0 || r != 0 {
		t.Errorf("PR_GET_DUMPABLE = %d (errno %v), want 0", r, errno)
	}
}
