// Package quickstart is `hangar quickstart`: the main job, end to end on
// real data, with nothing but the binary. It starts an embedded server in a
// data dir, creates an autoscaling cluster, trains a classifier on
// scikit-learn's bundled digits data set on it, registers the model,
// deploys it as a web service with key auth, scores the held-out digits
// over HTTP, watches the cluster scale back to zero, and stops everything
// it started. Everything goes through the public REST API, as a user's
// scripts would.
package quickstart

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
	"github.com/hangar-ml/hangar/examples"
	"github.com/hangar-ml/hangar/internal/server"
	"github.com/hangar-ml/hangar/internal/snapshot"
)

// Options configure a quickstart.
type Options struct {
	// DataDir is the server's data dir; "" = a temp dir removed at the end.
	DataDir string
	// Python is the interpreter with scikit-learn; "" = search for one.
	Python string
	// Executable is the hangar binary nodes run ("" = this executable).
	Executable string
	// Out gets the results (predictions, the final accuracy line); Err gets progress.
	Out, Err io.Writer
	// IdleSeconds is the cluster's idle time before scale-down (default 10).
	IdleSeconds int
}

// ErrNoSklearn is returned when no Python with scikit-learn was found.
var ErrNoSklearn = errors.New("no python3 with scikit-learn found")

// FindPython returns the first interpreter that imports sklearn among
// $HANGAR_PYTHON, Debian's /usr/bin/python3 (where python3-sklearn installs)
// and python3 on PATH.
func FindPython() (string, error) {
	var tried []string
	for _, cand := range []string{os.Getenv("HANGAR_PYTHON"), "/usr/bin/python3", "python3", "/usr/local/bin/python3"} {
		if cand == "" {
			continue
		}
		path, err := exec.LookPath(cand)
		if err != nil {
			continue
		}
		tried = append(tried, path)
		if exec.Command(path, "-c", "import sklearn").Run() == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("%w (tried %s); install it — on Debian or Ubuntu: apt-get install python3-sklearn — or set HANGAR_PYTHON to an interpreter that has it", ErrNoSklearn, strings.Join(tried, ", "))
}

// Run performs the quickstart.
func Run(ctx context.Context, opt Options) (err error) {
	if opt.Out == nil {
		opt.Out = os.Stdout
	}
	if opt.Err == nil {
		opt.Err = os.Stderr
	}
	if opt.IdleSeconds == 0 {
		opt.IdleSeconds = 10
	}
	say := func(format string, args ...any) { fmt.Fprintf(opt.Err, format+"\n", args...) }
	step := func(format string, args ...any) { fmt.Fprintf(opt.Err, "\n== "+format+"\n", args...) }

	python := opt.Python
	if python == "" {
		if python, err = FindPython(); err != nil {
			return err
		}
	} else if err := exec.Command(python, "-c", "import sklearn").Run(); err != nil {
		return fmt.Errorf("%w: %s cannot import sklearn (%v); install it — on Debian or Ubuntu: apt-get install python3-sklearn — or leave out --python to search for one", ErrNoSklearn, python, err)
	}
	dataDir := opt.DataDir
	if dataDir == "" {
		if dataDir, err = os.MkdirTemp("", "hangar-quickstart-"); err != nil {
			return err
		}
		defer os.RemoveAll(dataDir)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(dataDir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()

	step("Starting an embedded Hangar server (data in %s, log in server.log there)", dataDir)
	srv, err := server.New(server.Config{DataDir: dataDir, Addr: "127.0.0.1:0", AgentExecutable: opt.Executable,
		Logger: slog.New(slog.NewTextHandler(logFile, nil))})
	if err != nil {
		return err
	}
	srvCtx, stopServer := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(srvCtx) }()
	defer func() {
		stopServer()
		if serr := <-srvDone; err == nil && serr != nil {
			err = serr
		}
	}()
	select {
	case <-srv.Ready():
	case err := <-srvDone:
		srvDone <- err
		return fmt.Errorf("server did not start: %w (see %s)", err, logFile.Name())
	}
	tok, err := os.ReadFile(server.AdminTokenPath(dataDir))
	if err != nil {
		return err
	}
	c := client.New(srv.URL(), strings.TrimSpace(string(tok)))
	say("listening at %s", srv.URL())

	src := filepath.Join(dataDir, "quickstart", "digits")
	if err := writeExample(src); err != nil {
		return err
	}

	step("Creating cluster cpu-cluster (STANDARD_D2_V2, 0..2 nodes, idle %ds before scale-down)", opt.IdleSeconds)
	if _, err := c.ComputeCreate(ctx, api.ComputeSpec{Name: "cpu-cluster", Type: "amlcompute", Properties: api.ComputeProperties{
		VMSize: "STANDARD_D2_V2", ScaleSettings: &api.ScaleSettings{MinNodes: ptr(0), MaxNodes: ptr(2), IdleSecondsBeforeScaledown: ptr(opt.IdleSeconds)},
	}}); err != nil {
		return err
	}
	// Whatever happens next, leave no node behind.
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.ComputeDelete(dctx, "cpu-cluster", true)
		for dctx.Err() == nil {
			if _, err := c.ComputeGet(dctx, "cpu-cluster"); client.IsNotFound(err) {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()

	step("Training on scikit-learn's digits data set (with %s)", python)
	digest, err := upload(ctx, c, src)
	if err != nil {
		return err
	}
	env := &api.EnvironmentSpec{Python: python, Requirements: []string{"scikit-learn"}, Variables: map[string]string{"OMP_NUM_THREADS": "1"}}
	r, err := c.RunSubmit(ctx, api.RunSubmit{Compute: "cpu-cluster", Experiment: "quickstart", Script: "train.py", SnapshotDigest: digest, EnvironmentSpec: env})
	if err != nil {
		return err
	}
	say("run %s submitted", r.ID)
	if r, err = follow(ctx, c, r.ID, opt.Err); err != nil {
		return err
	}
	if r.Status != "Completed" {
		msg := r.Status
		if r.Error != nil {
			msg += ": " + r.Error.Message + "\n" + r.Error.Details
		}
		return fmt.Errorf("training run %s ended %s", r.ID, msg)
	}
	if ms, err := c.RunMetrics(ctx, r.ID); err == nil {
		for _, m := range ms {
			if m.Value != nil {
				say("metric %s = %.4f", m.Name, *m.Value)
			}
		}
	}

	step("Registering the model from the run's outputs/model.pkl")
	mdl, err := c.ModelRegister(ctx, api.ModelRegister{Name: "digits-classifier", RunID: r.ID, Path: "outputs/model.pkl", Description: "LogisticRegression on scikit-learn's digits"})
	if err != nil {
		return err
	}
	say("model %s version %d", mdl.Name, mdl.Version)

	step("Deploying score.py as the web service digits-svc (key auth)")
	svc, err := c.ServiceDeploy(ctx, api.ServiceDeploy{Name: "digits-svc", Models: []string{fmt.Sprintf("%s:%d", mdl.Name, mdl.Version)},
		EntryScript: "score.py", SourceDigest: digest, EnvironmentSpec: env, Auth: "key", Workers: 1})
	if err != nil {
		return err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.ServiceDelete(dctx, "digits-svc")
		for dctx.Err() == nil {
			if _, err := c.ServiceGet(dctx, "digits-svc"); client.IsNotFound(err) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	for svc.State == "Transitioning" || svc.ObservedGeneration < svc.Generation {
		time.Sleep(200 * time.Millisecond)
		if svc, err = c.ServiceGet(ctx, "digits-svc"); err != nil {
			return err
		}
	}
	if svc.State != "Healthy" {
		return fmt.Errorf("service digits-svc is %s: %s", svc.State, svc.Error)
	}
	say("%s is %s at %s", svc.Name, svc.State, svc.ScoringURI)
	keys, err := c.ServiceKeys(ctx, "digits-svc")
	if err != nil {
		return err
	}

	step("Scoring the held-out digits over HTTP")
	held, err := heldout(ctx, c, r.ID)
	if err != nil {
		return err
	}
	correct := 0
	const batch = 50
	for i := 0; i < len(held.Data); i += batch {
		end := min(i+batch, len(held.Data))
		body, _ := json.Marshal(map[string]any{"data": held.Data[i:end]})
		status, resp, err := c.Score(ctx, svc.ScoringURI, keys.PrimaryKey, body)
		if err != nil {
			return err
		}
		if status != 200 {
			return fmt.Errorf("scoring answered %d: %s", status, resp)
		}
		var preds []int
		if err := json.Unmarshal(resp, &preds); err != nil {
			return fmt.Errorf("scoring answer %q: %w", resp, err)
		}
		for j, p := range preds {
			if p == held.Labels[i+j] {
				correct++
			}
			if i+j < 10 {
				fmt.Fprintf(opt.Out, "digit %3d: predicted %d, label %d\n", i+j, p, held.Labels[i+j])
			}
		}
	}
	fmt.Fprintf(opt.Out, "... %d held-out digits scored, %d correct\n", len(held.Data), correct)

	step("Waiting for cpu-cluster to scale back to 0 nodes")
	last := -1
	for {
		cp, err := c.ComputeGet(ctx, "cpu-cluster")
		if err != nil {
			return err
		}
		if n := cp.Status.CurrentNodeCount; n != last {
			say("cpu-cluster: %d node(s)", n)
			last = n
		}
		if last == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	if evs, err := c.Events(ctx, "cpu-cluster", 20); err == nil {
		for i := len(evs) - 1; i >= 0; i-- {
			if e := evs[i]; e.Type == "ScaleUp" || e.Type == "ScaleDown" {
				say("  %s %s", e.Time.Local().Format("15:04:05"), e.Message)
			}
		}
	}
	fmt.Fprintf(opt.Out, "accuracy: %.3f\n", float64(correct)/float64(len(held.Data)))
	return nil
}

func ptr[T any](v T) *T { return &v }

// writeExample writes the embedded digits example to dir.
func writeExample(dir string) error {
	return fs.WalkDir(examples.Digits, "digits", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := examples.Digits.ReadFile(path)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, strings.TrimPrefix(path, "digits/"))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
}

func upload(ctx context.Context, c *client.Client, dir string) (string, error) {
	var buf bytes.Buffer
	if _, err := snapshot.Write(dir, snapshot.DefaultLimits, &buf); err != nil {
		return "", err
	}
	b, err := c.BlobUpload(ctx, &buf)
	if err != nil {
		return "", err
	}
	return b.Digest, nil
}

// follow streams a run's log to w, with status changes, until it ends.
func follow(ctx context.Context, c *client.Client, id string, w io.Writer) (*api.Run, error) {
	var offset int64
	lastStatus := ""
	for {
		r, err := c.RunGet(ctx, id)
		if err != nil {
			return nil, err
		}
		if status := r.Status + " " + r.StatusReason; status != lastStatus {
			fmt.Fprintf(w, "  [%s] %s\n", r.Status, r.StatusReason)
			lastStatus = status
		}
		if rc, err := c.RunLogs(ctx, id, offset, false); err == nil {
			n, _ := io.Copy(prefixWriter{w}, rc)
			rc.Close()
			offset += n
		}
		switch r.Status {
		case "Completed", "Failed", "Canceled":
			return r, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

type prefixWriter struct{ w io.Writer }

func (p prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			fmt.Fprint(p.w, "  | "+line)
		}
	}
	return len(b), nil
}

type heldoutSet struct {
	Data   [][]int `json:"data"`
	Labels []int   `json:"labels"`
}

// heldout reads outputs/heldout.json of the training run.
func heldout(ctx context.Context, c *client.Client, runID string) (*heldoutSet, error) {
	dir, err := os.MkdirTemp("", "hangar-heldout-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	rc, err := c.RunFiles(ctx, runID)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if err := snapshot.Extract(rc, dir); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "outputs", "heldout.json"))
	if err != nil {
		return nil, fmt.Errorf("the training run wrote no outputs/heldout.json: %w", err)
	}
	var h heldoutSet
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, err
	}
	if len(h.Data) == 0 || len(h.Data) != len(h.Labels) {
		return nil, errors.New("outputs/heldout.json has no data or mismatched labels")
	}
	return &h, nil
}
