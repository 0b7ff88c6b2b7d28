// Package local is the node provider that runs each node as a `hangar agent`
// process on the server's own host (Linux: liveness is read from /proc).
//
// A node lives in DataDir/nodes/<NodeID>: the agent's working directory, its
// pid file (agent.pid) and its output (agent.log). The agent runs in its own
// session, so a server killed with -9 does not take its nodes down, and a
// restarted server re-adopts them from the handle it persisted.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hangar-ml/hangar/internal/agentproto"
	"github.com/hangar-ml/hangar/internal/provider"
)

// Config configures a Provider.
type Config struct {
	// Executable is the path of the hangar binary started as
	// `Executable agent --server URL --node ID --dir DIR --slots N`.
	// "" means os.Executable() (the running server's own binary).
	Executable string
	// DataDir is the directory under which nodes live (DataDir/nodes/<NodeID>).
	// It is required.
	DataDir string
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
}

// Provider starts nodes as local agent processes. It is safe for concurrent use.
type Provider struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex // serializes Create so two calls for one node never start twins
}

var _ provider.Provider = (*Provider)(nil)

// Files in a node's directory.
const (
	pidFile = "agent.pid"
	logFile = "agent.log"
)

// How often Delete and Preempt look whether the agent has exited, and how
// long they wait after SIGKILL before giving up.
const (
	pollInterval = 20 * time.Millisecond
	killWait     = 5 * time.Second
)

// agentEnv is the part of the server's environment an agent inherits; the
// node token is added, nothing else.
var agentEnv = []string{"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL"}

// New returns a provider. It has no side effects.
func New(cfg Config) *Provider {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{cfg: cfg, log: log.With("component", "provider/local")}
}

// Handle is the persisted identity of a local node, encoded as JSON in the
// opaque handle string.
type Handle struct {
	PID  int    `json:"pid"`
	Dir  string `json:"dir"`
	Node string `json:"node"`
}

func parseHandle(s string) (Handle, error) {
	var h Handle
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return Handle{}, fmt.Errorf("local: parse handle: %w", err)
	}
	if h.PID <= 0 || h.Dir == "" || h.Node == "" {
		return Handle{}, fmt.Errorf("local: handle %q lacks pid, dir or node", s)
	}
	return h, nil
}

func (h Handle) String() string {
	b, _ := json.Marshal(h)
	return string(b)
}

// Name returns "local".
func (*Provider) Name() string { return "local" }

// HasGPUs returns false: local nodes share the host and get no GPUs.
func (*Provider) HasGPUs() bool { return false }

// Create starts the node's agent, or returns the handle of the live agent
// already running for spec.NodeID (checked by pid file and the process's
// command line, so a reused pid is not mistaken for the agent).
func (p *Provider) Create(ctx context.Context, spec provider.Spec) (string, error) {
	if err := checkNodeID(spec.NodeID); err != nil {
		return "", err
	}
	if spec.ServerURL == "" {
		return "", errors.New("local: create: server URL is required")
	}
	if p.cfg.DataDir == "" {
		return "", errors.New("local: create: DataDir is not set")
	}
	exe := p.cfg.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return "", fmt.Errorf("local: find own executable: %w", err)
		}
	}
	dataDir, err := filepath.Abs(p.cfg.DataDir)
	if err != nil {
		return "", fmt.Errorf("local: data dir: %w", err)
	}
	dir := filepath.Join(dataDir, "nodes", spec.NodeID)

	p.mu.Lock()
	defer p.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return "", err
	}

	if pid, err := readPID(filepath.Join(dir, pidFile)); err == nil && alive(pid, spec.NodeID) {
		h := Handle{PID: pid, Dir: dir, Node: spec.NodeID}
		p.log.DebugContext(ctx, "node already running", "node_id", spec.NodeID, "pid", pid)
		return h.String(), nil
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("local: create node %s: %w", spec.NodeID, err)
	}
	out, err := os.OpenFile(filepath.Join(dir, logFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return "", fmt.Errorf("local: create node %s: %w", spec.NodeID, err)
	}
	defer out.Close()

	slots := spec.Slots
	if slots <= 0 {
		slots = 1
	}
	cmd := exec.Command(exe, "agent",
		"--server", spec.ServerURL,
		"--node", spec.NodeID,
		"--dir", dir,
		"--slots", strconv.Itoa(slots))
	cmd.Dir = dir
	cmd.Env = agentEnvironment(os.Environ(), spec.Token)
	cmd.Stdout = out
	cmd.Stderr = out
	// Its own session: signals to the server's process group or terminal
	// (Ctrl-C, kill of the server's group) do not reach the node.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("local: start agent for node %s: %w", spec.NodeID, err)
	}
	pid := cmd.Process.Pid
	// The server is the agent's parent while it runs: reap it when it exits
	// so it does not linger as a zombie.
	go func() { _ = cmd.Wait() }()

	if err := writePID(filepath.Join(dir, pidFile), pid); err != nil {
		_ = cmd.Process.Kill()
		return "", fmt.Errorf("local: create node %s: %w", spec.NodeID, err)
	}
	p.log.InfoContext(ctx, "node started", "node_id", spec.NodeID, "pid", pid, "dir", dir)
	return Handle{PID: pid, Dir: dir, Node: spec.NodeID}.String(), nil
}

// Alive reports whether the handle's agent process is running.
func (p *Provider) Alive(ctx context.Context, handle string) (bool, error) {
	h, err := parseHandle(handle)
	if err != nil {
		return false, err
	}
	return alive(h.PID, h.Node), nil
}

// Delete stops the agent (SIGTERM, then SIGKILL after grace) and removes the
// node's directory. A node already gone is not an error.
func (p *Provider) Delete(ctx context.Context, handle string, grace time.Duration) error {
	h, err := parseHandle(handle)
	if err != nil {
		return err
	}
	if err := p.stop(ctx, h, grace); err != nil {
		return err
	}
	if err := removeAll(h.Dir); err != nil {
		return fmt.Errorf("local: delete node %s: %w", h.Node, err)
	}
	p.log.InfoContext(ctx, "node deleted", "node_id", h.Node)
	return nil
}

// Preempt evicts the node like a cloud evicting a low-priority VM: SIGTERM to
// the agent, grace, SIGKILL. The directory is kept for inspection. A node
// already gone is not an error.
func (p *Provider) Preempt(ctx context.Context, handle string, grace time.Duration) error {
	h, err := parseHandle(handle)
	if err != nil {
		return err
	}
	if err := p.stop(ctx, h, grace); err != nil {
		return err
	}
	// An evicted VM's disk is gone too.
	if err := os.RemoveAll(h.Dir); err != nil {
		return fmt.Errorf("local: remove node dir %s: %w", h.Dir, err)
	}
	p.log.InfoContext(ctx, "node preempted", "node_id", h.Node)
	return nil
}

// stop sends SIGTERM, waits up to grace for the agent to exit, then SIGKILLs
// it and waits for it to be gone. If ctx ends during the grace period the
// agent is killed at once.
func (p *Provider) stop(ctx context.Context, h Handle, grace time.Duration) error {
	if !alive(h.PID, h.Node) {
		return nil
	}
	if err := syscall.Kill(h.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("local: stop node %s: %w", h.Node, err)
	}
	if waitGone(ctx, h, grace) {
		return nil
	}
	// Check identity again right before the kill: the pid may have been reused.
	if !alive(h.PID, h.Node) {
		return nil
	}
	p.log.WarnContext(ctx, "node did not stop within grace; killing", "node_id", h.Node, "grace", grace)
	if err := syscall.Kill(h.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("local: kill node %s: %w", h.Node, err)
	}
	if waitGone(context.WithoutCancel(ctx), h, killWait) {
		return nil
	}
	return fmt.Errorf("local: node %s (pid %d) still alive after SIGKILL", h.Node, h.PID)
}

// waitGone polls until the agent is gone, d has passed or ctx is done.
func waitGone(ctx context.Context, h Handle, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if !alive(h.PID, h.Node) {
			return true
		}
		select {
		case <-timer.C:
			return !alive(h.PID, h.Node)
		case <-ctx.Done():
			return !alive(h.PID, h.Node)
		case <-tick.C:
		}
	}
}

// alive reports whether pid is a live (not zombie) process whose command
// line names the node: `--node ID` or `--node=ID`. A zombie's cmdline is
// empty, so an exited but unreaped agent counts as gone.
func alive(pid int, nodeID string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return false
	}
	args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	for i, a := range args {
		if a == "--node="+nodeID || a == "-node="+nodeID {
			return true
		}
		if (a == "--node" || a == "-node") && i+1 < len(args) && args[i+1] == nodeID {
			return true
		}
	}
	return false
}

func agentEnvironment(parent []string, token string) []string {
	var env []string
	for _, kv := range parent {
		k, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		for _, allowed := range agentEnv {
			if k == allowed {
				env = append(env, kv)
				break
			}
		}
	}
	return append(env, agentproto.TokenEnv+"="+token)
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("local: bad pid file %s", path)
	}
	return pid, nil
}

// writePID writes the pid file atomically (temp file + rename).
func writePID(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// checkNodeID refuses ids that would escape DataDir/nodes or be ambiguous on
// a command line.
func checkNodeID(id string) error {
	if id == "" || id == "." || id == ".." || strings.HasPrefix(id, "-") {
		return fmt.Errorf("local: invalid node id %q", id)
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return fmt.Errorf("local: invalid node id %q", id)
		}
	}
	return nil
}

// removeAll is os.RemoveAll that also removes read-only directories (the
// agent makes each attempt's inputs/ read-only), which a non-root user
// cannot empty without first making them writable again.
func removeAll(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
