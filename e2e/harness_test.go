// Package e2e runs the real `hangar` binary — server, agents and all —
// against a data dir in a temp folder, and drives it through the public
// REST client, as a user would.
package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
	"github.com/hangar-ml/hangar/internal/snapshot"
)

// hangarBin is the binary built once for all tests.
var hangarBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hangar-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hangarBin = filepath.Join(dir, "hangar")
	build := exec.Command("go", "build", "-o", hangarBin, "github.com/hangar-ml/hangar/cmd/hangar")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build hangar:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// serverProc is a `hangar server` child process.
type serverProc struct {
	t       testing.TB
	dataDir string
	addr    string
	cmd     *exec.Cmd
	logMu   sync.Mutex
	log     bytes.Buffer
	done    chan struct{}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startServer starts a server on dataDir and addr and waits until it answers.
func startServer(t testing.TB, dataDir, addr string, extra ...string) *serverProc {
	t.Helper()
	args := append([]string{"server", "--data-dir", dataDir, "--addr", addr}, extra...)
	cmd := exec.Command(hangarBin, args...)
	cmd.Env = append(os.Environ(), "HANGAR_LOG_LEVEL=debug")
	p := &serverProc{t: t, dataDir: dataDir, addr: addr, cmd: cmd, done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.logMu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.logMu.Unlock()
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", p.logs())
		}
	})
	c := client.New("http://"+addr, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if _, err := c.Health(ctx); err == nil {
			break
		}
		select {
		case <-p.done:
			t.Fatalf("server exited early:\n%s", p.logs())
		case <-ctx.Done():
			t.Fatalf("server did not answer on %s:\n%s", addr, p.logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return p
}

func (p *serverProc) logs() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.log.String()
}

// kill9 kills the server process the hard way.
func (p *serverProc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop shuts the server down gracefully (if still running).
func (p *serverProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.kill9()
	}
}

// client returns an admin client of the server.
func (p *serverProc) client(t testing.TB) *client.Client {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(p.dataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	return client.New("http://"+p.addr, strings.TrimSpace(string(tok)))
}

// killNodes kills every agent left by a test (they outlive the server on purpose).
func killNodes(t testing.TB, dataDir string) {
	t.Cleanup(func() {
		pids, _ := filepath.Glob(filepath.Join(dataDir, "nodes", "*", "agent.pid"))
		for _, f := range pids {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			var pid int
			if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
}

// uploadDir snapshots dir and uploads it, returning the digest.
func uploadDir(t testing.TB, c *client.Client, dir string) string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := snapshot.Write(dir, snapshot.DefaultLimits, &buf); err != nil {
		t.Fatal(err)
	}
	b, err := c.BlobUpload(context.Background(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	return b.Digest
}

// waitFor polls cond every 100 ms until it returns true or the deadline passes.
// The deadline is a hang guard, not a performance assertion.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runFiles downloads a run's files and returns name → content.
func runFiles(t testing.TB, c *client.Client, id string) map[string]string {
	t.Helper()
	rc, err := c.RunFiles(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			out[strings.TrimPrefix(h.Name, "./")] = string(b)
		}
	}
	return out
}

func runLog(t testing.TB, c *client.Client, id string) string {
	t.Helper()
	rc, err := c.RunLogs(context.Background(), id, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

func ptr[T any](v T) *T { return &v }

// examplesDir is the repo's examples folder.
func examplesDir(t testing.TB, name string) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Join("..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func submitHello(t testing.TB, c *client.Client, computeName, digest string, env map[string]string) *api.Run {
	t.Helper()
	r, err := c.RunSubmit(context.Background(), api.RunSubmit{Compute: computeName, Experiment: "e2e", Script: "train.py", SnapshotDigest: digest, Env: env, Args: []string{"--lr", "0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}
