package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
)

func (a *app) serviceCmd() *cobra.Command {
	c := group("service", "Deploy models as real-time web services, and call, update and delete them", "webservice")
	c.AddCommand(
		a.serviceDeployCmd(),
		a.serviceListCmd(),
		a.serviceShowCmd(),
		a.serviceLogsCmd(),
		a.serviceKeysCmd(),
		a.serviceRegenKeyCmd(),
		a.serviceInvokeCmd(),
		a.serviceUpdateCmd(),
		a.serviceDeleteCmd(),
	)
	return c
}

// serviceFlags are the flags of service deploy and update.
type serviceFlags struct {
	name           string
	models         []string
	entryScript    string
	sourceDir      string
	environment    string
	python         string
	target         string
	auth           string
	requestTimeout string
	env            []string
	port           int
	workers        int
	overwrite      bool
	noWait         bool
}

// addServiceFlags adds the flags deploy and update share.
func addServiceFlags(cmd *cobra.Command, f *serviceFlags) {
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.models, "model", "m", nil, "model `NAME[:VERSION]` to load (repeatable; default version: the latest)")
	fl.StringVar(&f.entryScript, "entry-script", "", "the scoring script in the source dir, with init() and run(raw_data)")
	fl.StringVar(&f.sourceDir, "source-dir", ".", "the directory to snapshot; the workers' working directory")
	fl.StringVar(&f.environment, "environment", "", "environment `FILE` (.yml/.yaml/.json) or registered NAME[:VERSION]")
	fl.StringVar(&f.python, "python", "", "the Python interpreter (default: the environment's, or python3)")
	fl.IntVar(&f.workers, "workers", 1, "Python worker processes (1-16)")
	fl.StringVar(&f.auth, "auth", "none", "key (callers need a key) or none")
	fl.StringVar(&f.requestTimeout, "request-timeout", "60s", "how long one request may take (e.g. 30s, 2m; at most 1h)")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "environment variable `KEY=VALUE` of the workers (repeatable)")
	fl.BoolVar(&f.noWait, "no-wait", false, "return without waiting for the service to be Healthy or Failed")
	markExclusive(cmd, "environment", "python")
}

func (a *app) serviceDeployCmd() *cobra.Command {
	var f serviceFlags
	cmd := &cobra.Command{
		Use:   "deploy --name NAME --model NAME[:VERSION]... --entry-script score.py [flags]",
		Short: "Deploy models behind an HTTP scoring endpoint and wait until it is Healthy",
		Long: `Deploy models as a real-time web service. The source dir is snapshotted as
for run submit; the entry script's init() runs once per worker and loads the
model (its files are under AZUREML_MODEL_DIR), and run(raw_data) answers each
POST /score with something JSON-serialisable.

Names are 3-32 lowercase letters, digits and '-', starting with a letter.
Without --port a free port is chosen and kept; the scoring URI is
http://127.0.0.1:PORT/score. Auth is off by default for the local target, as
in Azure ML; --auth key requires "Authorization: Bearer KEY" (hangar service
keys NAME). An existing service is replaced only with --overwrite.

Only the flags you give are sent; the server applies the defaults. The
command waits until the service is Healthy or Failed, showing progress on
stderr, and exits 1 if it Failed. --no-wait returns at once.`,
		Example: `  hangar service deploy --name digits-svc --model digits --entry-script score.py
  hangar service deploy --name digits-svc --model digits:3 --entry-script score.py --auth key --workers 2 --overwrite`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.serviceDeploy(cmd.Context(), f, cmd.Flags().Changed)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.name, "name", "n", "", "name of the service (3-32 lowercase letters, digits and -)")
	fl.StringVar(&f.target, "target", "local", "where it runs: local (the server's host)")
	fl.IntVar(&f.port, "port", 0, "port on 127.0.0.1 (default: a free one, kept across restarts)")
	fl.BoolVar(&f.overwrite, "overwrite", false, "replace a service of the same name")
	addServiceFlags(cmd, &f)
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("entry-script")
	return cmd
}

// environmentFlag splits --environment into a registered name or an
// inline spec read from a file.
func (a *app) environmentFlag(e string) (string, *api.EnvironmentSpec, error) {
	if !isEnvironmentFile(e) {
		return e, nil, nil
	}
	var spec api.EnvironmentSpec
	if err := a.decodeFile(e, &spec, api.Environment{}); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil, &fieldError{Field: "--environment", Err: fmt.Errorf("%s does not exist", e)}
		}
		return "", nil, err
	}
	return "", &spec, nil
}

// timeoutSeconds parses --request-timeout into whole seconds, rounded up.
func timeoutSeconds(s string) (int, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, usagef("--request-timeout: %v", err)
	}
	if d <= 0 {
		return 0, usagef("--request-timeout: %q must be at least 1s", s)
	}
	return int((d + time.Second - 1) / time.Second), nil
}

// checkSource checks the source dir and the script in it ("" for none),
// before anything is uploaded; scriptField is the script's field in the
// request (script for a run, entry_script for a service).
func checkSource(dir, scriptField, script string) error {
	if fi, err := os.Stat(dir); err != nil {
		return &fieldError{Field: "source_dir", Err: fmt.Errorf("%s does not exist", dir)}
	} else if !fi.IsDir() {
		return &fieldError{Field: "source_dir", Err: fmt.Errorf("%s is not a directory", dir)}
	}
	if script != "" {
		if _, err := os.Stat(filepath.Join(dir, script)); err != nil {
			return &fieldError{Field: scriptField, Err: fmt.Errorf("%s is not in the source directory %s", script, dir), Hint: "give the script's path relative to --source-dir"}
		}
	}
	return nil
}

// serviceFlagFor maps the fields the server names in its answer to
// service deploy and update to the flags the user typed, where they differ.
func serviceFlagFor(field string) (string, bool) {
	if k, ok := strings.CutPrefix(field, "env."); ok {
		return "-e " + k, true
	}
	if field == "environment_spec" || strings.HasPrefix(field, "environment_spec.") {
		return "--environment", true
	}
	flag, ok := map[string]string{
		"models":                  "--model",
		"source_digest":           "--source-dir",
		"request_timeout_seconds": "--request-timeout",
		"env":                     "-e",
	}[field]
	return flag, ok
}

func (a *app) serviceDeploy(ctx context.Context, f serviceFlags, changed func(string) bool) error {
	a.flagFor = serviceFlagFor
	d := api.ServiceDeploy{Name: f.name, Models: f.models, EntryScript: f.entryScript, Python: f.python, Overwrite: f.overwrite}
	var err error
	if d.Env, err = parseKVs("-e", f.env); err != nil {
		return err
	}
	if f.environment != "" {
		if d.Environment, d.EnvironmentSpec, err = a.environmentFlag(f.environment); err != nil {
			return err
		}
	}
	if changed("target") {
		d.Target = f.target
	}
	if changed("port") {
		d.Port = f.port
	}
	if changed("workers") {
		if f.workers < 1 {
			// 0 on the wire means "the default", so say no here.
			return usagef("--workers (%d) must be between 1 and 16", f.workers)
		}
		d.Workers = f.workers
	}
	if changed("auth") {
		d.Auth = f.auth
	}
	if changed("request-timeout") {
		if d.RequestTimeoutSeconds, err = timeoutSeconds(f.requestTimeout); err != nil {
			return err
		}
	}
	if err := checkSource(f.sourceDir, "entry_script", f.entryScript); err != nil {
		return err
	}
	cl, err := a.client()
	if err != nil {
		return err
	}
	if d.SourceDigest, err = a.uploadDir(ctx, cl, f.sourceDir, "source_dir", "snapshot"); err != nil {
		return err
	}
	s, err := cl.ServiceDeploy(ctx, d)
	if err != nil {
		return err
	}
	if f.noWait {
		a.progress("Deploying %s (not waiting; see: hangar service show %s)\n", s.Name, s.Name)
		return a.emit(s, func(w io.Writer) { serviceRows(w, []api.Service{*s}) })
	}
	return a.waitService(ctx, cl, "Deploying", s)
}

// serviceSettled reports whether the manager has acted on the service's
// latest generation and the service is no longer starting.
func serviceSettled(s *api.Service) bool {
	return s.ObservedGeneration >= s.Generation && s.State != "Transitioning"
}

// waitService polls until the service settles, then prints it. It exits 1
// (after printing the service and the error) when the service Failed or is
// Unhealthy, or when the update failed while the previous version keeps
// serving (Error set).
func (a *app) waitService(ctx context.Context, cl *client.Client, verb string, s *api.Service) error {
	a.progress("%s %s (generation %d)…", verb, s.Name, s.Generation)
	name, shown := s.Name, s.State
	s, err := pollUntil(ctx, a, s, serviceSettled, func(ctx context.Context) (*api.Service, error) {
		next, err := cl.ServiceGet(ctx, name)
		if err == nil && next.State != shown && !serviceSettled(next) {
			a.progress(" %s…", next.State)
			shown = next.State
		}
		return next, err
	})
	if err != nil {
		return err
	}
	a.progress(" %s\n", s.State)
	if err := a.emit(s, func(w io.Writer) { serviceRows(w, []api.Service{*s}) }); err != nil {
		return err
	}
	if s.State == "Healthy" && s.Error == "" {
		return nil
	}
	msg := s.Error
	if msg == "" {
		msg = fmt.Sprintf("service %s is %s", s.Name, s.State)
	}
	// The first line says what happened; the rest (often the last log
	// lines) is shown as it is, as for a failed run.
	first, rest, _ := strings.Cut(strings.TrimRight(msg, "\n"), "\n")
	fmt.Fprintf(a.stderr, "Error: %s\n", first)
	if rest != "" {
		fmt.Fprintln(a.stderr, rest)
	}
	fmt.Fprintf(a.stderr, "Try: hangar service logs %s\n", s.Name)
	return errSilent
}

func modelList(ms []api.ServiceModel) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = fmt.Sprintf("%s:%d", m.Name, m.Version)
	}
	return strings.Join(parts, ",")
}

func authWord(enabled bool) string {
	if enabled {
		return "key"
	}
	return "none"
}

func serviceRows(w io.Writer, ss []api.Service) {
	row(w, "NAME", "STATE", "MODELS", "WORKERS", "AUTH", "SCORING URI")
	for _, s := range ss {
		state := s.State
		if s.DeleteRequested {
			state += " (deleting)"
		}
		row(w, s.Name, state, modelList(s.Models), s.Workers, authWord(s.AuthEnabled), s.ScoringURI)
	}
}

func (a *app) serviceListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the services of the workspace",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAndEmit(a, func(cl *client.Client) ([]api.Service, error) { return cl.ServiceList(cmd.Context()) }, serviceRows)
		},
	}
}

func (a *app) serviceShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "show NAME",
		Short:   "Show a service: state, error, scoring URI, models, workers",
		Example: "  hangar service show digits-svc\n  hangar service show digits-svc -o json",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAndEmit(a, func(cl *client.Client) (*api.Service, error) { return cl.ServiceGet(cmd.Context(), args[0]) }, serviceDetail)
		},
	}
}

func serviceDetail(w io.Writer, s *api.Service) {
	kv := kvTable{w}
	kv.add("Name", s.Name)
	state := s.State
	if s.DeleteRequested {
		state += " (being deleted)"
	} else if s.ObservedGeneration < s.Generation {
		state += fmt.Sprintf(" (generation %d not yet live)", s.Generation)
	}
	kv.add("State", state)
	if s.Error != "" {
		lines := strings.Split(strings.TrimRight(s.Error, "\n"), "\n")
		kv.add("Error", lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "\t%s\n", l)
		}
	}
	kv.add("Scoring URI", s.ScoringURI)
	kv.add("Swagger URI", s.SwaggerURI)
	kv.add("Auth", authWord(s.AuthEnabled))
	kv.add("Models", strings.ReplaceAll(modelList(s.Models), ",", ", "))
	kv.add("Entry script", s.EntryScript)
	kv.add("Workers", s.Workers)
	kv.add("Target", s.Target)
	if s.Environment != "" {
		kv.add("Environment", s.Environment)
	}
	if s.Python != "" {
		kv.add("Python", s.Python)
	}
	if len(s.Env) > 0 {
		kv.add("Variables", sortedKV(s.Env))
	}
	kv.add("Request timeout", shortDuration(time.Duration(s.RequestTimeoutSeconds)*time.Second))
	kv.add("Generation", fmt.Sprintf("%d (observed %d)", s.Generation, s.ObservedGeneration))
	if s.CreatedBy != "" {
		kv.add("Created by", s.CreatedBy)
	}
	kv.add("Created", timestamp(&s.CreatedOn))
	kv.add("Updated", timestamp(&s.UpdatedOn))
}

func (a *app) serviceLogsCmd() *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs NAME [-f]",
		Short: "Print a service's log (its workers' output and lifecycle lines)",
		Long: `Print a service's log. With -f, keep printing as it grows until the service
is deleted or Ctrl-C. The log is raw text whatever -o says.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			ctx, name := cmd.Context(), args[0]
			if !follow {
				rc, err := cl.ServiceLogs(ctx, name, 0, false)
				if err != nil {
					return err
				}
				defer rc.Close()
				_, err = io.Copy(a.stdout, rc)
				return err
			}
			return a.followServiceLogs(ctx, cl, name)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the log until the service is deleted")
	return cmd
}

// followServiceLogs copies the log to stdout until the service is gone,
// resuming from the last byte after a dropped connection (within the
// limits of followRetry). Ctrl-C ends it with exit 130 and nothing more to
// say: it is the usual way to stop.
func (a *app) followServiceLogs(ctx context.Context, cl *client.Client, name string) error {
	err := a.followService(ctx, cl, name)
	if ctx.Err() != nil {
		return &interruptedError{}
	}
	return stopFollowing(ctx, err, "service "+name, "hangar service logs "+name+" -f")
}

func (a *app) followService(ctx context.Context, cl *client.Client, name string) error {
	p := followRetry{limit: a.followGiveUp}
	var offset int64
	for {
		rc, err := cl.ServiceLogs(ctx, name, offset, true)
		if err == nil {
			a.followOK(&p)
			var n int64
			n, err = io.Copy(a.stdout, rc)
			rc.Close()
			offset += n
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if client.IsNotFound(err) {
			if offset == 0 {
				return err
			}
			return nil
		}
		if err != nil {
			if stop := a.followFailed(&p, err); stop != nil {
				return stop
			}
		}
		_, err = cl.ServiceGet(ctx, name)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case client.IsNotFound(err):
			return nil
		case err != nil:
			if stop := a.followFailed(&p, err); stop != nil {
				return stop
			}
		default:
			a.followOK(&p)
		}
		if err := a.wait(ctx); err != nil {
			return err
		}
	}
}

func (a *app) serviceKeysCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "keys NAME",
		Short: "Show a service's primary and secondary keys",
		Long: `Show a service's two keys. With auth on (--auth key), callers of /score send
"Authorization: Bearer KEY" with either. -o json gives
{"primary_key": …, "secondary_key": …}.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			ctx, name := cmd.Context(), args[0]
			s, err := cl.ServiceGet(ctx, name)
			if err != nil {
				return err
			}
			k, err := cl.ServiceKeys(ctx, name)
			if err != nil {
				return err
			}
			if !s.AuthEnabled {
				a.progress("Note: auth is off for %s, so /score needs no key; turn it on with: hangar service update %s --auth key\n", name, name)
			}
			return a.emit(k, func(w io.Writer) { keysDetail(w, k) })
		},
	}
}

func keysDetail(w io.Writer, k *api.ServiceKeys) {
	kv := kvTable{w}
	kv.add("Primary key", k.PrimaryKey)
	kv.add("Secondary key", k.SecondaryKey)
}

func (a *app) serviceRegenKeyCmd() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:   "regen-key NAME --key primary|secondary",
		Short: "Replace one of a service's keys with a new random one",
		Long: `Replace the primary or the secondary key; the other keeps working, so
callers can move to the new key without downtime. The running service takes
the new key within a moment, without a restart.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			k, err := cl.ServiceRegenKey(cmd.Context(), args[0], key)
			if err != nil {
				return err
			}
			a.progress("Regenerated the %s key of %s\n", strings.ToLower(key), args[0])
			return a.emit(k, func(w io.Writer) { keysDetail(w, k) })
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the key to replace: primary or secondary")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func (a *app) serviceInvokeCmd() *cobra.Command {
	var data, dataFile string
	cmd := &cobra.Command{
		Use:   "invoke NAME (--data JSON | --data-file FILE)",
		Short: "Call a service's /score and print the answer",
		Long: `POST the request body to the service's scoring URI (with its primary key
when auth is on) and print the response body on stdout. A non-2xx answer
exits 1 with the body on stderr. --data-file - reads stdin.`,
		Example: `  hangar service invoke digits-svc --data '{"data": [[0, 0, 5, 13, 9, 1, 0, 0]]}'
  hangar service invoke digits-svc --data-file sample.json`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := []byte(data)
			if dataFile != "" {
				var err error
				if dataFile == "-" {
					body, err = io.ReadAll(os.Stdin)
				} else {
					body, err = os.ReadFile(dataFile)
				}
				if err != nil {
					return &fieldError{Field: "--data-file", Err: fmt.Errorf("%s: %w", dataFile, unwrapPathErr(err))}
				}
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			ctx, name := cmd.Context(), args[0]
			s, err := cl.ServiceGet(ctx, name)
			if err != nil {
				return err
			}
			if s.ScoringURI == "" {
				return fmt.Errorf("service %s has no scoring URI yet", name)
			}
			key := ""
			if s.AuthEnabled {
				k, err := cl.ServiceKeys(ctx, name)
				if err != nil {
					return err
				}
				key = k.PrimaryKey
			}
			status, resp, err := cl.Score(ctx, s.ScoringURI, key, body)
			if err != nil {
				return &fieldError{Field: "scoring_uri", Err: err, Hint: "hangar service show " + name}
			}
			if status/100 != 2 {
				fmt.Fprintf(a.stderr, "Error: service %s answered %d %s\n", name, status, http.StatusText(status))
				a.stderr.Write(withNewline(resp))
				return errSilent
			}
			_, err = a.stdout.Write(withNewline(resp))
			return err
		},
	}
	cmd.Flags().StringVarP(&data, "data", "d", "", "the request body (JSON)")
	cmd.Flags().StringVarP(&dataFile, "data-file", "f", "", "read the request body from `FILE` (- for stdin)")
	markExclusive(cmd, "data", "data-file")
	markOneRequired(cmd, "data", "data-file")
	return cmd
}

// withNewline ends b with a newline unless it is empty or has one.
func withNewline(b []byte) []byte {
	if len(b) == 0 || b[len(b)-1] == '\n' {
		return b
	}
	return append(b, '\n')
}

// unwrapPathErr drops the *fs.PathError wrapper, whose text repeats the path.
func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (a *app) serviceUpdateCmd() *cobra.Command {
	var f serviceFlags
	cmd := &cobra.Command{
		Use:   "update NAME [--model NAME[:VERSION]]... [--entry-script F] [--source-dir D] [flags]",
		Short: "Change a service's models, code, workers, auth or environment",
		Long: `Change what is given and redeploy: --model (replaces all models),
--entry-script and --source-dir (a new snapshot of the source dir),
--environment or --python, -e (replaces the variables given before),
--workers, --auth, --request-timeout. If the new version fails to start,
the previous one keeps serving and the command exits 1 with the error.
Keys and port stay.`,
		Example: "  hangar service update digits-svc --model digits:4\n  hangar service update digits-svc --workers 4 --auth key",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.serviceUpdate(cmd.Context(), args[0], f, cmd.Flags().Changed)
		},
	}
	addServiceFlags(cmd, &f)
	return cmd
}

func (a *app) serviceUpdate(ctx context.Context, name string, f serviceFlags, changed func(string) bool) error {
	a.flagFor = serviceFlagFor
	var u api.ServiceUpdate
	set := false
	if changed("model") {
		u.Models, set = f.models, true
	}
	if changed("entry-script") {
		u.EntryScript, set = &f.entryScript, true
	}
	if changed("environment") {
		ref, spec, err := a.environmentFlag(f.environment)
		if err != nil {
			return err
		}
		u.Environment, u.EnvironmentSpec, set = &ref, spec, true
	}
	if changed("python") {
		u.Python, set = &f.python, true
	}
	if changed("env") {
		env, err := parseKVs("-e", f.env)
		if err != nil {
			return err
		}
		if env == nil {
			env = map[string]string{}
		}
		u.Env, set = env, true
	}
	if changed("workers") {
		u.Workers, set = &f.workers, true
	}
	if changed("auth") {
		u.Auth, set = &f.auth, true
	}
	if changed("request-timeout") {
		secs, err := timeoutSeconds(f.requestTimeout)
		if err != nil {
			return err
		}
		u.RequestTimeoutSeconds, set = &secs, true
	}
	newSource := changed("source-dir") || changed("entry-script")
	if !set && !newSource {
		return usagef("nothing to update: give at least one of --model, --entry-script, --source-dir, --environment, --python, -e, --workers, --auth, --request-timeout")
	}
	if newSource {
		if err := checkSource(f.sourceDir, "entry_script", f.entryScript); err != nil {
			return err
		}
	}
	cl, err := a.client()
	if err != nil {
		return err
	}
	if newSource {
		digest, err := a.uploadDir(ctx, cl, f.sourceDir, "source_dir", "snapshot")
		if err != nil {
			return err
		}
		u.SourceDigest = &digest
	}
	s, err := cl.ServiceUpdate(ctx, name, u)
	if err != nil {
		return err
	}
	if f.noWait {
		a.progress("Updating %s (not waiting; see: hangar service show %s)\n", s.Name, s.Name)
		return a.emit(s, func(w io.Writer) { serviceRows(w, []api.Service{*s}) })
	}
	return a.waitService(ctx, cl, "Updating", s)
}

func (a *app) serviceDeleteCmd() *cobra.Command {
	var noWait bool
	cmd := &cobra.Command{
		Use:   "delete NAME [--no-wait]",
		Short: "Stop a service, free its port and delete it",
		Long: `Stop a service's workers, free its port and delete it. The command waits
until the service is gone; --no-wait returns at once.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			ctx, name := cmd.Context(), args[0]
			if err := cl.ServiceDelete(ctx, name); err != nil {
				return err
			}
			if noWait {
				a.progress("Deleting %s (not waiting)\n", name)
				return nil
			}
			return a.waitGone(ctx, name, func(ctx context.Context) error {
				_, err := cl.ServiceGet(ctx, name)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return without waiting for the service to be gone")
	return cmd
}
