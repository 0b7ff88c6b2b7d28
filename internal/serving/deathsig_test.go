//go:build linux

package serving_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hangar-ml/hangar/internal/serving"
)

// The test binary doubles as a server process for the test that kills it:
// with HANGAR_SERVING_TEST_HELPER=1 it serves the score.py in
// HANGAR_SERVING_TEST_SRC, prints "port N" when Healthy and waits.
func TestMain(m *testing.M) {
	if os.Getenv("HANGAR_SERVING_TEST_HELPER") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		s, err := serving.Start(ctx, serving.Config{Name: "helper", Addr: "127.0.0.1:0", Pool: serving.PoolConfig{
			SourceDir: os.Getenv("HANGAR_SERVING_TEST_SRC"), EntryScript: "score.py", Workers: 2,
		}})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		if st := s.WaitSettled(ctx); st.State != serving.Healthy {
			fmt.Println("error", st.Error)
			os.Exit(1)
		}
		fmt.Println("port", s.Port())
		<-ctx.Done()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const pidScript = `
import os, time
def run(raw_data):
    time.sleep(0.05) # so that concurrent requests reach both workers
    return os.getpid()
`

// workerPIDs asks the service, two requests at a time (sequential ones all
// go to the first idle worker), until it has seen n distinct worker pids.
func workerPIDs(t *testing.T, url string, n int) []int {
	t.Helper()
	seen := map[int]bool{}
	var pids []int
	for i := 0; len(pids) < n; i++ {
		if i == 100 {
			t.Fatalf("saw only pids %v", pids)
		}
		var rs [2]response
		var wg sync.WaitGroup
		for j := range rs {
			wg.Add(1)
			go func() { defer wg.Done(); rs[j] = do(t, "POST", url, "", "1", nil) }()
		}
		wg.Wait()
		for _, r := range rs {
			pid, err := strconv.Atoi(r.body)
			if r.status != 200 || err != nil {
				t.Fatalf("pid: %d %s", r.status, r.body)
			}
			if !seen[pid] {
				seen[pid] = true
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	eventually(t, fmt.Sprintf("pid %d gone", pid), func() bool {
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			return true
		}
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		i := bytes.LastIndexByte(stat, ')')
		return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' // dead, not reaped by our parent
	})
}

func TestWorkersDieWithKilledServer(t *testing.T) {
	t.Parallel()
	pythonOrSkip(t)
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), "HANGAR_SERVING_TEST_HELPER=1",
		"HANGAR_SERVING_TEST_SRC="+scriptDir(t, map[string]string{"score.py": pidScript}))
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	port, ok := strings.CutPrefix(strings.TrimSpace(line), "port ")
	if err != nil || !ok {
		t.Fatalf("helper said %q (%v)", line, err)
	}
	pids := workerPIDs(t, "http://127.0.0.1:"+port+"/score", 2)
	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	for _, pid := range pids {
		waitGone(t, pid)
	}
}

func TestStopEndsWorkers(t *testing.T) {
	t.Parallel()
	pc := poolFor(t, pidScript)
	pc.Workers = 2
	s := healthy(t, serving.Config{Pool: pc})
	pids := workerPIDs(t, scoreURL(s), 2)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			t.Errorf("worker %d still exists after Stop", pid)
		}
	}
	if st := s.Status(); st.Ready || st.State != serving.Failed {
		t.Errorf("status after Stop: %+v", st)
	}
}
