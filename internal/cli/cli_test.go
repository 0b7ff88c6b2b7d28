package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/hangar-ml/hangar/internal/cli"
	"github.com/hangar-ml/hangar/internal/server"
)

// TestMain makes this test binary double as the commands the scripts run:
// "hangar" is the CLI, and "hangar-exit CODE ARGS…" runs the CLI and fails
// unless it exits with CODE (scripts use it to pin exit codes 1 and 2).
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"hangar": func() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) },
		"hangar-exit": func() {
			if len(os.Args) < 2 {
				fmt.Fprintln(os.Stderr, "usage: hangar-exit CODE ARGS...")
				os.Exit(100)
			}
			code := cli.Main(os.Args[2:], os.Stdout, os.Stderr)
			if strconv.Itoa(code) != os.Args[1] {
				fmt.Fprintf(os.Stderr, "hangar-exit: exit code %d, want %s\n", code, os.Args[1])
				os.Exit(100)
			}
			os.Exit(0)
		},
	})
}

// TestScripts runs the CLI transcripts in testdata/script against a real
// in-process server (server-start). HANGAR_UPDATE_GOLDEN=1 rewrites the
// expected output files of "cmp stdout/stderr FILE" in the scripts.
func TestScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("CLI transcripts start servers and agents; skipped with -short")
	}
	agentBin := buildHangar(t)
	testscript.Run(t, testscript.Params{
		Dir:                 filepath.Join("testdata", "script"),
		UpdateScripts:       os.Getenv("HANGAR_UPDATE_GOLDEN") == "1",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// Keep the scripts away from the user's settings and server.
			env.Setenv("HOME", filepath.Join(env.WorkDir, "home"))
			env.Setenv("HANGAR_URL", "http://127.0.0.1:1")
			env.Setenv("HANGAR_TOKEN", "")
			env.Setenv("HANGAR_WORKSPACE", "")
			env.Setenv("TZ", "UTC")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"server-start": func(ts *testscript.TestScript, neg bool, args []string) {
				serverStart(ts, neg, args, agentBin)
			},
			"json-valid": jsonValid,
			"json-get":   jsonGet,
		},
		Condition: func(cond string) (bool, error) {
			if name, ok := strings.CutPrefix(cond, "python:"); ok {
				_, err := exec.LookPath(name)
				return err == nil, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}

// buildHangar builds the hangar binary the server starts as node agents.
func buildHangar(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hangar")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/hangar-ml/hangar/cmd/hangar")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build hangar: %v\n%s", err, out)
	}
	return bin
}

// serverStart starts a server on $WORK/data listening on an ephemeral port,
// waits until it is ready, and points HANGAR_URL and HANGAR_TOKEN at it.
// The server and its nodes are stopped when the script ends. Its log is in
// $WORK/server.log.
func serverStart(ts *testscript.TestScript, neg bool, args []string, agentBin string) {
	if neg || len(args) > 0 {
		ts.Fatalf("usage: server-start")
	}
	dataDir := ts.MkAbs("data")
	logFile, err := os.Create(ts.MkAbs("server.log"))
	ts.Check(err)
	srv, err := server.New(server.Config{
		DataDir:         dataDir,
		Addr:            "127.0.0.1:0",
		AgentExecutable: agentBin,
		Logger:          slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	ts.Check(err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	ts.Defer(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
		killNodes(dataDir)
		logFile.Close()
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		ts.Fatalf("server stopped before it was ready: %v", err)
	case <-time.After(60 * time.Second): // a hang guard, not a timing assertion
		ts.Fatalf("server not ready after 60s")
	}
	tok, err := os.ReadFile(server.AdminTokenPath(dataDir))
	ts.Check(err)
	ts.Setenv("HANGAR_URL", srv.URL())
	ts.Setenv("HANGAR_TOKEN", strings.TrimSpace(string(tok)))
}

// killNodes kills the agents a server left running (nodes outlive their
// server on purpose, to be re-adopted on restart).
func killNodes(dataDir string) {
	pids, _ := filepath.Glob(filepath.Join(dataDir, "nodes", "*", "agent.pid"))
	for _, f := range pids {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// jsonValid checks that a file holds exactly one JSON document and nothing
// else; "json-valid FILE array" also wants it to be an array.
func jsonValid(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: json-valid FILE [array|object]")
	}
	data := []byte(ts.ReadFile(args[0]))
	dec := json.NewDecoder(bytes.NewReader(data))
	var v any
	err := dec.Decode(&v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = fmt.Errorf("more than one JSON document")
		}
	}
	if err == nil && len(args) == 2 {
		switch args[1] {
		case "array":
			if _, ok := v.([]any); !ok {
				err = fmt.Errorf("not a JSON array")
			}
		case "object":
			if _, ok := v.(map[string]any); !ok {
				err = fmt.Errorf("not a JSON object")
			}
		default:
			ts.Fatalf("json-valid: unknown kind %q", args[1])
		}
	}
	switch {
	case err != nil && !neg:
		ts.Fatalf("%s: %v\n%s", args[0], err, data)
	case err == nil && neg:
		ts.Fatalf("%s is valid JSON", args[0])
	}
}

// jsonGet sets an environment variable to a value of a JSON file:
// "json-get VAR FILE PATH" with PATH like "id" or "0.id" (array index).
func jsonGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: json-get VAR FILE PATH")
	}
	var v any
	if err := json.Unmarshal([]byte(ts.ReadFile(args[1])), &v); err != nil {
		ts.Fatalf("%s: %v", args[1], err)
	}
	for _, key := range strings.Split(args[2], ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[key]
		case []any:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(x) {
				ts.Fatalf("json-get: no element %q in %s", key, args[1])
			}
			v = x[i]
		default:
			ts.Fatalf("json-get: %s has no %q", args[1], args[2])
		}
	}
	if v == nil {
		ts.Fatalf("json-get: %s has no %q", args[1], args[2])
	}
	ts.Setenv(args[0], fmt.Sprint(v))
}
