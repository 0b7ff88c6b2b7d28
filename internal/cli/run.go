package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
	"github.com/hangar-ml/hangar/internal/agent"
	"github.com/hangar-ml/hangar/internal/snapshot"
)

func (a *app) runCmd() *cobra.Command {
	c := group("run", "Submit training runs and follow, inspect, cancel and download them")
	c.AddCommand(
		a.runSubmitCmd(),
		a.runListCmd(),
		a.runShowCmd(),
		a.runLogsCmd(),
		a.runCancelCmd(),
		a.runDownloadCmd(),
		a.runMetricsCmd(),
	)
	return c
}

// submitFlags are the flags of run submit.
type submitFlags struct {
	compute              string
	experiment           string
	sourceDir            string
	script               string
	command              string
	environment          string
	python               string
	maxRunDuration       string
	env                  []string
	inputs               []string
	tags                 []string
	nodeCount            int
	maxRetries           int
	maxPreemptionRetries int
	stream               bool
}

// inputArg is one --input NAME=PATH.
type inputArg struct {
	Name, Path string
}

func (a *app) runSubmitCmd() *cobra.Command {
	var f submitFlags
	cmd := &cobra.Command{
		Use:   "submit --compute NAME (--script FILE | --command CMD) [flags] [-- ARGS...]",
		Short: "Snapshot a source directory and run a script or command on a compute",
		Long: `Snapshot the source directory (honouring .gitignore, .amlignore and
.hangarignore; at most 300 MB and 2000 files), upload it unless the server
already has it, upload the inputs, and queue the run. Arguments after "--"
are passed to the script or command.

--environment takes a file (ending in .yml, .yaml or .json) with python,
requirements and variables, or the name of a registered environment
(NAME or NAME:VERSION).

--input NAME=PATH uploads a file or folder; the run finds it read-only under
inputs/NAME, with HANGAR_INPUT_NAME pointing to it.

--stream follows the log on stdout and exits 0 if the run Completed, 1
otherwise. With -o json or yaml the log goes to stderr and the final run
document to stdout.`,
		Example: `  hangar run submit --compute cpu-cluster --script train.py -- --epochs 3
  hangar run submit --compute cpu-cluster --command "python -m pkg.train" -e SEED=1 --stream
  hangar run submit --compute local --script score.py --input data=./digits.csv --environment env.yml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); dash > 0 || (dash < 0 && len(args) > 0) {
				return usagef("unexpected argument %q; put the arguments of your script after --", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runSubmit(cmd.Context(), f, args, cmd.Flags().Changed)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.compute, "compute", "", "the compute to run on (see hangar compute list)")
	fl.StringVar(&f.experiment, "experiment", "default", "the experiment the run belongs to")
	fl.StringVar(&f.sourceDir, "source-dir", ".", "the directory to snapshot; the run's working directory")
	fl.StringVar(&f.script, "script", "", "a Python script in the source dir to run")
	fl.StringVar(&f.command, "command", "", "a shell command to run in the source dir")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "environment variable `KEY=VALUE` of the run (repeatable)")
	fl.StringVar(&f.environment, "environment", "", "environment `FILE` (.yml/.yaml/.json) or registered NAME[:VERSION]")
	fl.StringVar(&f.python, "python", "", "the Python interpreter (default: the environment's, the compute's, or python3)")
	fl.StringArrayVar(&f.inputs, "input", nil, "input `NAME=PATH`, a local file or folder (repeatable)")
	fl.IntVar(&f.nodeCount, "node-count", 1, "nodes the run needs")
	fl.IntVar(&f.maxRetries, "max-retries", 0, "times a run whose code failed is retried")
	fl.IntVar(&f.maxPreemptionRetries, "max-preemption-retries", 3, "times a preempted run is requeued")
	fl.StringVar(&f.maxRunDuration, "max-run-duration", "30d", "the run is canceled after this long (e.g. 30d, 12h, 90m)")
	fl.StringArrayVar(&f.tags, "tag", nil, "tag `KEY=VALUE` (repeatable)")
	fl.BoolVar(&f.stream, "stream", false, "follow the log and exit with the run's outcome")
	_ = cmd.MarkFlagRequired("compute")
	markExclusive(cmd, "script", "command")
	markOneRequired(cmd, "script", "command")
	markExclusive(cmd, "environment", "python")
	return cmd
}

// buildRunSubmit makes the submit body from the flags (without the snapshot
// and input digests, which need uploads) and returns the inputs to upload.
// Numbers and durations are sent only when their flag was given, so the
// server applies its defaults to the rest.
func (a *app) buildRunSubmit(f submitFlags, args []string, changed func(string) bool) (api.RunSubmit, []inputArg, error) {
	s := api.RunSubmit{
		Experiment: f.experiment,
		Compute:    f.compute,
		Script:     f.script,
		Command:    f.command,
		Python:     f.python,
		Args:       args,
	}
	var err error
	if s.Env, err = parseKVs("-e", f.env); err != nil {
		return s, nil, err
	}
	if s.Tags, err = parseKVs("--tag", f.tags); err != nil {
		return s, nil, err
	}
	if changed("node-count") {
		if f.nodeCount < 1 {
			return s, nil, usagef("--node-count must be >= 1, not %d", f.nodeCount)
		}
		s.NodeCount = f.nodeCount
	}
	if changed("max-retries") {
		v := f.maxRetries
		s.MaxRetries = &v
	}
	if changed("max-preemption-retries") {
		v := f.maxPreemptionRetries
		s.MaxPreemptionRetries = &v
	}
	if changed("max-run-duration") {
		d, err := parseDuration(f.maxRunDuration)
		if err != nil {
			return s, nil, usagef("--max-run-duration: %v", err)
		}
		if d < time.Second {
			return s, nil, usagef("--max-run-duration: %q must be at least 1s", f.maxRunDuration)
		}
		s.MaxRunDurationSecs = int64((d + time.Second - 1) / time.Second)
	}
	if f.environment != "" {
		if s.Environment, s.EnvironmentSpec, err = a.environmentFlag(f.environment); err != nil {
			return s, nil, err
		}
	}
	var inputs []inputArg
	byEnv := map[string]string{} // HANGAR_INPUT_X → the name that maps to it
	for _, in := range f.inputs {
		name, path, ok := strings.Cut(in, "=")
		if !ok || name == "" || path == "" {
			return s, nil, usagef("invalid --input %q: want NAME=PATH", in)
		}
		env := agent.InputEnv(name)
		switch other, dup := byEnv[env]; {
		case dup && other == name:
			return s, nil, usagef("--input %s is given twice", name)
		case dup:
			return s, nil, usagef("--input %s and --input %s both set %s (and name the same folder on a case-insensitive disk); give names that differ in more than case", other, name, env)
		}
		byEnv[env] = name
		inputs = append(inputs, inputArg{Name: name, Path: path})
	}
	return s, inputs, nil
}

// isEnvironmentFile tells an environment file from a registered name.
func isEnvironmentFile(s string) bool {
	switch strings.ToLower(filepath.Ext(s)) {
	case ".yml", ".yaml", ".json":
		return true
	}
	return false
}

func (a *app) runSubmit(ctx context.Context, f submitFlags, args []string, changed func(string) bool) error {
	req, inputs, err := a.buildRunSubmit(f, args, changed)
	if err != nil {
		return err
	}
	src := f.sourceDir
	if err := checkSource(src, "script", req.Script); err != nil {
		return err
	}
	dirs := map[string]bool{}
	for _, in := range inputs {
		fi, err := os.Stat(in.Path)
		if err != nil {
			return &fieldError{Field: "--input " + in.Name, Err: fmt.Errorf("%s does not exist", in.Path)}
		}
		dirs[in.Name] = fi.IsDir()
	}
	a.flagFor = submitFlagFor(inputs)
	cl, err := a.client()
	if err != nil {
		return err
	}
	// A misspelt compute or environment is reported before the snapshot
	// (up to 300 MB) is uploaded, not after.
	if err := checkRefs(ctx, cl, req.Compute, req.Environment); err != nil {
		return err
	}
	if req.SnapshotDigest, err = a.uploadDir(ctx, cl, src, "source_dir", "snapshot"); err != nil {
		return err
	}
	for _, in := range inputs {
		ri := api.RunInput{Name: in.Name, Dir: dirs[in.Name]}
		if ri.Dir {
			ri.Digest, err = a.uploadDir(ctx, cl, in.Path, "--input "+in.Name, "input "+in.Name)
		} else {
			// The run finds the file under its own name: inputs/NAME/FILE.
			ri.FileName = filepath.Base(in.Path)
			ri.Digest, err = a.uploadFile(ctx, cl, in.Path, "input "+in.Name)
		}
		if err != nil {
			return err
		}
		req.Inputs = append(req.Inputs, ri)
	}
	r, err := cl.RunSubmit(ctx, req)
	if err != nil {
		return err
	}
	if !f.stream {
		a.progress("Submitted run %s to %s; follow it with: hangar run logs %s -f\n", r.ID, r.Compute, r.ID)
		return a.emit(r, func(w io.Writer) { a.runRows(w, []api.Run{*r}, false) })
	}
	a.progress("Submitted run %s to %s; streaming its log\n", r.ID, r.Compute)
	logs := a.stdout
	if a.machine() {
		logs = a.stderr
	} else {
		if err := a.emit(r, func(w io.Writer) { a.runRows(w, []api.Run{*r}, false) }); err != nil {
			return err
		}
	}
	final, err := a.followLogs(ctx, cl, r.ID, logs, true)
	if err != nil {
		return err
	}
	if a.machine() {
		if err := a.emit(final, nil); err != nil {
			return err
		}
	}
	return a.reportOutcome(final)
}

// submitFlagFor maps the fields the server names in its answer to run
// submit to the flags the user typed, where they differ.
func submitFlagFor(inputs []inputArg) func(string) (string, bool) {
	return func(field string) (string, bool) {
		if rest, ok := strings.CutPrefix(field, "inputs["); ok {
			if i, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, ']'), 0)]); err == nil && i >= 0 && i < len(inputs) {
				return "--input " + inputs[i].Name, true
			}
			return "--input", true
		}
		if k, ok := strings.CutPrefix(field, "env."); ok {
			return "-e " + k, true
		}
		if k, ok := strings.CutPrefix(field, "tags."); ok {
			return "--tag " + k, true
		}
		if field == "environment_spec" || strings.HasPrefix(field, "environment_spec.") {
			return "--environment", true
		}
		flag, ok := map[string]string{
			"snapshot_digest":          "--source-dir",
			"max_run_duration_seconds": "--max-run-duration",
			"inputs":                   "--input",
			"env":                      "-e",
			"tags":                     "--tag",
		}[field]
		return flag, ok
	}
}

// checkRefs asks the server whether the compute and the registered
// environment (NAME or NAME:VERSION; "" for none) exist, so that a
// misspelt name is reported before anything is uploaded. Every missing one
// is reported, as the server would report it at submit.
func checkRefs(ctx context.Context, cl *client.Client, compute, environment string) error {
	var missing []*api.Error
	if _, err := cl.ComputeGet(ctx, compute); client.IsNotFound(err) {
		missing = append(missing, &api.Error{Code: "InvalidField", Field: "compute",
			Message: fmt.Sprintf("compute %q not found in workspace %s", compute, cl.Workspace()), Hint: "hangar compute list"})
	} else if err != nil {
		return err
	}
	if name, version, ok := splitEnvironmentRef(environment); ok {
		if _, err := cl.EnvironmentGet(ctx, name, version); client.IsNotFound(err) {
			e := &api.Error{Code: "InvalidField", Field: "environment",
				Message: fmt.Sprintf("environment %q not found in workspace %s", environment, cl.Workspace()), Hint: "hangar environment list"}
			if msg, latest, ok := missingVersion(ctx, cl, name, version); ok {
				e.Message, e.Hint = msg, fmt.Sprintf("use --environment %s:%d (the latest)", name, latest)
			}
			missing = append(missing, e)
		} else if err != nil {
			return err
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &api.Error{Code: "InvalidField", Message: missing[0].Message, Status: 400, Details: missing}
}

// reportOutcome says on stderr how a run ended; errSilent unless Completed.
func (a *app) reportOutcome(r *api.Run) error {
	a.progress("Run %s %s\n", r.ID, runStatus(r, r.Error == nil))
	if r.Status == "Completed" {
		return nil
	}
	if e := r.Error; e != nil {
		if e.Code != "" {
			fmt.Fprintf(a.stderr, "Error: %s: %s\n", e.Code, e.Message)
		} else {
			fmt.Fprintf(a.stderr, "Error: %s\n", e.Message)
		}
		if d := strings.TrimRight(e.Details, "\n"); d != "" {
			fmt.Fprintln(a.stderr, d)
		}
	}
	return errSilent
}

// uploadDir snapshots dir (a tar.gz, as snapshot.Write makes it) and
// uploads it unless the server has it; field names the flag for errors and
// what the thing for progress.
func (a *app) uploadDir(ctx context.Context, cl *client.Client, dir, field, what string) (string, error) {
	return a.uploadArchive(ctx, cl, func(w io.Writer) (string, error) {
		info, err := snapshot.Write(dir, snapshot.DefaultLimits, w)
		if err != nil {
			hint := ""
			var le *snapshot.LimitError
			if errors.As(err, &le) {
				hint = "list what to leave out in " + filepath.Join(dir, ".hangarignore")
			}
			return "", &fieldError{Field: field, Err: err, Hint: hint}
		}
		return fmt.Sprintf("%s of %s (%s, %s)", what, dir, fileCount(info.Files), byteSize(info.Bytes)), nil
	})
}

// uploadArchive packs an archive into a temporary file, hashing it on the
// way, so that its digest is known before anything is sent, and uploads
// it unless the server has it. pack writes the archive and describes it
// for progress.
func (a *app) uploadArchive(ctx context.Context, cl *client.Client, pack func(io.Writer) (desc string, err error)) (string, error) {
	tmp, err := os.CreateTemp("", "hangar-upload-*.tar.gz")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	desc, err := pack(io.MultiWriter(tmp, h))
	if err != nil {
		return "", err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", err
	}
	return a.upload(ctx, cl, tmp, "sha256:"+hex.EncodeToString(h.Sum(nil)), size, desc)
}

// uploadFile uploads one file unless the server has it.
func (a *app) uploadFile(ctx context.Context, cl *client.Client, path, what string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	desc := fmt.Sprintf("%s %s (%s)", what, path, byteSize(size))
	return a.upload(ctx, cl, f, "sha256:"+hex.EncodeToString(h.Sum(nil)), size, desc)
}

// upload sends f (from its start) unless the server already stores digest,
// and returns the digest the server knows it by.
func (a *app) upload(ctx context.Context, cl *client.Client, f *os.File, digest string, size int64, desc string) (string, error) {
	has, err := cl.BlobHas(ctx, digest)
	if err != nil {
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status >= 500 || ae.Status == 401 || ae.Status == 403 {
			return "", err
		}
		has = false // the server does not know this digest form; just upload
	}
	if has {
		a.progress("Using stored %s\n", desc)
		return digest, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	a.progress("Uploading %s…", desc)
	b, err := cl.BlobUpload(ctx, io.LimitReader(f, size))
	if err != nil {
		a.progress("\n")
		return "", err
	}
	a.progress(" done\n")
	if b.Digest == "" {
		return digest, nil
	}
	return b.Digest, nil
}

func fileCount(n int) string {
	if n == 1 {
		return "1 file"
	}
	return fmt.Sprintf("%d files", n)
}

// runStatus is the status with its reason when the reason says more
// (withReason false leaves it out, e.g. when an error line follows).
func runStatus(r *api.Run, withReason bool) string {
	if !withReason || r.StatusReason == "" || strings.EqualFold(r.StatusReason, r.Status) {
		return r.Status
	}
	return r.Status + " (" + r.StatusReason + ")"
}

// terminalStatus reports whether a run has ended.
func terminalStatus(s string) bool {
	return s == "Completed" || s == "Failed" || s == "Canceled"
}

// followLogs copies the run's log to w until the run ends and returns the
// final run. It resumes from the last byte after a dropped connection
// (within the limits of followRetry; reached says whether the server has
// already answered this command). Ctrl-C and a lost server end it with an
// error saying that the run goes on and how to follow it again.
func (a *app) followLogs(ctx context.Context, cl *client.Client, id string, w io.Writer, reached bool) (*api.Run, error) {
	r, err := a.followRunLogs(ctx, cl, id, w, reached)
	if err != nil {
		return nil, stopFollowing(ctx, err, "run "+id, "hangar run logs "+id+" -f")
	}
	return r, nil
}

func (a *app) followRunLogs(ctx context.Context, cl *client.Client, id string, w io.Writer, reached bool) (*api.Run, error) {
	p := followRetry{limit: a.followGiveUp, reached: reached}
	var offset int64
	for {
		rc, err := cl.RunLogs(ctx, id, offset, true)
		if err == nil {
			a.followOK(&p)
			var n int64
			n, err = io.Copy(w, rc)
			rc.Close()
			offset += n
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			if stop := a.followFailed(&p, err); stop != nil {
				return nil, stop
			}
		}
		r, err := cl.RunGet(ctx, id)
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			if stop := a.followFailed(&p, err); stop != nil {
				return nil, stop
			}
		case terminalStatus(r.Status):
			// The log may have grown between the end of the stream and
			// the status read.
			if rc, err := cl.RunLogs(ctx, id, offset, false); err == nil {
				_, _ = io.Copy(w, rc)
				rc.Close()
			}
			return r, nil
		default:
			a.followOK(&p)
		}
		if err := a.wait(ctx); err != nil {
			return nil, err
		}
	}
}

// runRows writes the run table; withTimes adds age and duration.
func (a *app) runRows(w io.Writer, rs []api.Run, withTimes bool) {
	if withTimes {
		row(w, "ID", "STATUS", "COMPUTE", "EXPERIMENT", "CREATED", "DURATION")
	} else {
		row(w, "ID", "STATUS", "COMPUTE", "EXPERIMENT")
	}
	now := a.now()
	for _, r := range rs {
		if withTimes {
			row(w, r.ID, r.Status, r.Compute, r.Experiment, age(now, r.CreatedOn)+" ago", runDuration(r, now))
		} else {
			row(w, r.ID, r.Status, r.Compute, r.Experiment)
		}
	}
}

// runDuration is how long a run has run (until now when it has not ended).
func runDuration(r api.Run, now time.Time) string {
	if r.StartedOn == nil {
		return "-"
	}
	end := now
	if r.EndedOn != nil {
		end = *r.EndedOn
	}
	return shortDuration(end.Sub(*r.StartedOn))
}

func (a *app) runListCmd() *cobra.Command {
	var f client.RunFilter
	cmd := &cobra.Command{
		Use:     "list [--experiment E] [--compute C] [--status S]",
		Aliases: []string{"ls"},
		Short:   "List runs, newest first",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAndEmit(a, func(cl *client.Client) ([]api.Run, error) { return cl.RunList(cmd.Context(), f) }, func(w io.Writer, rs []api.Run) { a.runRows(w, rs, true) })
		},
	}
	cmd.Flags().StringVar(&f.Experiment, "experiment", "", "only runs of this experiment")
	cmd.Flags().StringVar(&f.Compute, "compute", "", "only runs on this compute")
	cmd.Flags().StringVar(&f.Status, "status", "", "only runs with this status (e.g. Queued, Running, Failed)")
	return cmd
}

func (a *app) runShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a run: status, error, timestamps and attempts",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAndEmit(a, func(cl *client.Client) (*api.Run, error) { return cl.RunGet(cmd.Context(), args[0]) }, a.runDetail)
		},
	}
}

func (a *app) runDetail(w io.Writer, r *api.Run) {
	now := a.now()
	kv := kvTable{w}
	kv.add("ID", r.ID)
	kv.add("Status", runStatus(r, true))
	kv.add("Compute", r.Compute)
	kv.add("Experiment", r.Experiment)
	what := r.Command
	if r.Script != "" {
		what = r.Script
	}
	if len(r.Args) > 0 {
		what += " " + strings.Join(r.Args, " ")
	}
	if r.Script != "" {
		kv.add("Script", what)
	} else {
		kv.add("Command", what)
	}
	if r.Environment != "" {
		kv.add("Environment", r.Environment)
	}
	if r.Python != "" {
		kv.add("Python", r.Python)
	}
	if len(r.Env) > 0 {
		kv.add("Variables", sortedKV(r.Env))
	}
	for _, in := range r.Inputs {
		kind := "file"
		if in.Dir {
			kind = "folder"
		}
		kv.add("Input "+in.Name, kind+" "+in.Digest)
	}
	kv.add("Node count", r.NodeCount)
	kv.add("Retries", fmt.Sprintf("%d of %d; preemptions %d of %d", r.Retries, r.MaxRetries, r.PreemptionRetries, r.MaxPreemptionRetries))
	if r.MaxRunDurationSecs > 0 {
		kv.add("Max duration", shortDuration(time.Duration(r.MaxRunDurationSecs)*time.Second))
	}
	if len(r.Tags) > 0 {
		kv.add("Tags", sortedKV(r.Tags))
	}
	if r.CreatedBy != "" {
		kv.add("Created by", r.CreatedBy)
	}
	kv.add("Created", timestamp(&r.CreatedOn))
	kv.add("Started", timestamp(r.StartedOn))
	kv.add("Ended", timestamp(r.EndedOn))
	kv.add("Duration", runDuration(*r, now))
	if e := r.Error; e != nil {
		msg := e.Message
		if e.Code != "" {
			msg = e.Code + ": " + msg
		}
		kv.add("Error", msg)
		for _, line := range strings.Split(strings.TrimRight(e.Details, "\n"), "\n") {
			if line != "" {
				fmt.Fprintf(w, "\t%s\n", line)
			}
		}
	}
	if len(r.Attempts) > 0 {
		flush(w)
		fmt.Fprintln(w, "Attempts:")
		fmt.Fprintln(w, "  #\tNODE\tSTATE\tSTART\tEND\tEXIT\tREASON")
		for _, at := range r.Attempts {
			exit := "-"
			if at.ExitCode != nil {
				exit = fmt.Sprint(*at.ExitCode)
			}
			reason := at.Reason
			if reason == "" {
				reason = "-"
			}
			fmt.Fprintf(w, "  %d\t%s\t%s\t%s\t%s\t%s\t%s\n", at.Number, at.Node, at.State, timestamp(at.Start), timestamp(at.End), exit, reason)
		}
	}
}

func (a *app) runLogsCmd() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs ID [-f]",
		Short: "Print a run's log (stdout and stderr of its process)",
		Long: `Print a run's log. With -f, keep printing as the run writes until it ends
(resuming after a dropped connection, for up to 60 s without the server),
then say how it ended on stderr and exit 0 if it Completed, 1 otherwise, as
run submit --stream does. Ctrl-C stops following (exit 130); the run goes
on on the server. The log is raw text whatever -o says.`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if follow {
				r, err := a.followLogs(ctx, cl, args[0], a.stdout, false)
				if err != nil {
					return err
				}
				return a.reportOutcome(r)
			}
			rc, err := cl.RunLogs(ctx, args[0], 0, false)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(a.stdout, rc)
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the log until the run ends")
	return cmd
}

func (a *app) runCancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a run (a run that already ended is left as it is)",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			r, err := cl.RunCancel(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			a.progress("Run %s is %s\n", r.ID, r.Status)
			return a.emit(r, func(w io.Writer) { a.runRows(w, []api.Run{*r}, false) })
		},
	}
}

// downloadResult is the document of `run download -o json`.
type downloadResult struct {
	RunID     string   `json:"run_id"`
	OutputDir string   `json:"output_dir"`
	Files     []string `json:"files"`
}

func (a *app) runDownloadCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "download ID [--output-dir DIR]",
		Short: "Download a run's outputs/ and logs/ into a directory",
		Long: `Download a run's outputs/ and logs/ into DIR (default ./ID). Downloading
again replaces the files the run has since rewritten and keeps the others.
Archive entries that would land outside DIR are refused.`,
		Args: exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if dir == "" {
				dir = id
			} else if err := checkOutputDir(dir); err != nil {
				return err
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			rc, err := cl.RunFiles(cmd.Context(), id)
			if err != nil {
				return err
			}
			defer rc.Close()
			files, err := mergeDownload(rc, dir)
			if err != nil {
				return err
			}
			res := downloadResult{RunID: id, OutputDir: dir, Files: files}
			a.progress("Downloaded the files of run %s to %s\n", id, dir)
			return a.emit(res, func(w io.Writer) { filePaths(w, dir, files) })
		},
	}
	cmd.Flags().StringVar(&dir, "output-dir", "", "where to put the files (default ./ID)")
	return cmd
}

// mergeDownload merges the tar.gz r into dir (snapshot.MergeTree) and
// lists every file then in dir, slash-separated and relative to it: what
// the download commands report, files from an earlier download included.
func mergeDownload(r io.Reader, dir string) ([]string, error) {
	if err := snapshot.MergeTree(r, dir); err != nil {
		return nil, outputDirError(dir, err)
	}
	files := []string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	return files, err
}

// filePaths writes the downloaded files one a line, as paths the user can
// open: dir joined with each.
func filePaths(w io.Writer, dir string, files []string) {
	for _, f := range files {
		fmt.Fprintln(w, filepath.Join(dir, f))
	}
}

// checkOutputDir refuses an --output-dir that cannot be one: it, or the
// nearest of its parents that exists, is not a directory.
func checkOutputDir(dir string) error {
	for p := dir; ; {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				if p == dir {
					return &fieldError{Field: "--output-dir", Err: fmt.Errorf("%s is not a directory", dir)}
				}
				return &fieldError{Field: "--output-dir", Err: fmt.Errorf("%s cannot be made: %s is not a directory", dir, p)}
			}
			return nil
		}
		parent := filepath.Dir(p)
		if parent == p {
			return nil
		}
		p = parent
	}
}

// outputDirError names --output-dir when the download could not write to
// the directory (a *fs.PathError: permission denied, disk full, …).
func outputDirError(dir string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fieldError{Field: "--output-dir", Err: fmt.Errorf("%s: %w", dir, pe)}
	}
	return err
}

func (a *app) runMetricsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "metrics ID",
		Short: "List the metrics a run logged",
		Args:  exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAndEmit(a, func(cl *client.Client) ([]api.Metric, error) { return cl.RunMetrics(cmd.Context(), args[0]) }, metricRows)
		},
	}
}

func metricRows(w io.Writer, ms []api.Metric) {
	row(w, "NAME", "STEP", "VALUE", "TIME")
	for _, m := range ms {
		v := m.Text
		if m.Value != nil {
			v = fmt.Sprintf("%g", *m.Value)
		}
		row(w, m.Name, m.Step, v, timestamp(&m.Time))
	}
}
