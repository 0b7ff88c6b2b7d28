// Package cli is the hangar command line: the command tree, its flags, and
// how results and errors are shown. Results go to stdout (a table, or with
// -o json|yaml exactly the API documents); progress and messages go to
// stderr. Exit codes: 0 ok, 1 error, 2 usage error, 130 interrupted while
// following a run (which goes on on the server).
//
// The CLI speaks to the server only through package client, like every
// other client; `hangar server` and `hangar agent` hand over to
// internal/server and internal/agent.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
)

// Exit codes of Main.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
	// ExitInterrupted is the exit code of a command stopped by Ctrl-C while
	// it followed something that goes on on the server (128 + SIGINT, as
	// shells report it).
	ExitInterrupted = 130
)

// Main runs the hangar command with args (without the program name),
// writing to stdout and stderr, and returns the exit code. It cancels the
// command's context on SIGINT and SIGTERM.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := newApp(stdout, stderr)
	return a.run(ctx, args)
}

// app is one invocation of the CLI: its streams, global flags and the
// client, made on first use.
type app struct {
	stdout, stderr io.Writer
	// output is the -o value: table, json or yaml.
	output string
	// started is set once cobra has parsed flags and arguments and the
	// command's own code runs; an error before that is a usage error.
	started bool

	loadSettings func() (client.Settings, error)
	now          func() time.Time
	// pollInterval is how often long operations poll for progress.
	pollInterval time.Duration
	// followGiveUp is how long a follow (run logs -f, --stream, service
	// logs -f) keeps retrying a server it reached before and then lost.
	followGiveUp time.Duration

	settings *client.Settings
	cl       *client.Client
	// tokenFrom says where the token sent came from, for the hint of a
	// 401: an environment variable, a config file or a flag; "" before
	// the settings are resolved.
	tokenFrom string
	// flagFor maps an API field to the flag the user typed for it, for the
	// fields whose names differ (vcpus_limit is --vcpus). Commands that
	// have such flags set it; nil maps nothing.
	flagFor func(field string) (flag string, ok bool)
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{
		stdout:       stdout,
		stderr:       stderr,
		output:       "table",
		loadSettings: client.LoadSettings,
		now:          time.Now,
		pollInterval: 250 * time.Millisecond,
		followGiveUp: 60 * time.Second,
	}
}

func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	return a.report(cmd, err)
}

// client returns the API client, resolving the settings on first use.
func (a *app) client() (*client.Client, error) {
	if a.cl != nil {
		return a.cl, nil
	}
	s, err := a.loadSettings()
	if err != nil {
		return nil, err
	}
	a.settings = &s
	a.tokenFrom = s.TokenFrom
	if s.Token == "" {
		a.tokenFrom = noToken
	}
	a.cl = s.Client(client.WithUserAgent("hangar-cli/" + clientVersion()))
	return a.cl, nil
}

// callAndEmit is the body of the many commands that make one call and
// print its answer (list, show, …): call asks the server, and table writes
// the answer for -o table; json and yaml print it as it is (see emit).
// It is a function, not a method, because methods cannot take type
// parameters.
func callAndEmit[T any](a *app, call func(*client.Client) (T, error), table func(io.Writer, T)) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	v, err := call(cl)
	if err != nil {
		return err
	}
	return a.emit(v, func(w io.Writer) { table(w, v) })
}

// usageError is a mistake in how the command was called (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// fieldError is a client-side problem with one field or flag, shown as
// "Error: <field>: <message>".
type fieldError struct {
	Field string
	Err   error
	Hint  string
}

func (e *fieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *fieldError) Unwrap() error { return e.Err }

// fieldErrors are several field problems, reported together.
type fieldErrors []*fieldError

func (e fieldErrors) Error() string {
	parts := make([]string, len(e))
	for i, fe := range e {
		parts[i] = fe.Error()
	}
	return strings.Join(parts, "; ")
}

// hintError is an error with a command to try, shown as "Error: <err>"
// and "Try: <hint>".
type hintError struct {
	Err  error
	Hint string
}

func (e *hintError) Error() string { return e.Err.Error() }
func (e *hintError) Unwrap() error { return e.Err }

// interruptedError ends a command stopped by Ctrl-C while something goes on
// on the server: it says so, and how to pick it up again (exit 130). With
// What empty it says nothing (Ctrl-C was the way to stop).
type interruptedError struct {
	What string // "run run-x goes on on the server"
	Hint string // "hangar run logs run-x -f"
}

func (e *interruptedError) Error() string { return "interrupted: " + e.What }

// errSilent ends the command with exit 1 after it has already said why.
var errSilent = errors.New("command failed")

// report prints err the CLI way and returns the exit code.
func (a *app) report(cmd *cobra.Command, err error) int {
	var ue *usageError
	if errors.As(err, &ue) || !a.started {
		fmt.Fprintf(a.stderr, "Error: %s\n", strings.TrimSpace(err.Error()))
		path := "hangar"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(a.stderr, "Try: %s --help\n", path)
		return ExitUsage
	}
	if errors.Is(err, errSilent) {
		return ExitError
	}
	var interrupted *interruptedError
	if errors.As(err, &interrupted) {
		if interrupted.What != "" {
			fmt.Fprintf(a.stderr, "Interrupted: %s\n", interrupted.What)
			fmt.Fprintf(a.stderr, "Try: %s\n", interrupted.Hint)
		}
		return ExitInterrupted
	}
	var unreachable *client.UnreachableError
	var apiErr *api.Error
	var fe *fieldError
	var fes fieldErrors
	var he *hintError
	switch {
	case errors.As(err, &he):
		fmt.Fprintf(a.stderr, "Error: %s\n", he.Err)
		fmt.Fprintf(a.stderr, "Try: %s\n", he.Hint)
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(a.stderr, "Error: interrupted")
	case errors.As(err, &unreachable):
		fmt.Fprintf(a.stderr, "Error: cannot reach the Hangar server at %s%s\n", unreachable.URL, unreachableCause(unreachable.Err))
		fmt.Fprintf(a.stderr, "Try: %s\n", unreachableHint(unreachable.URL))
	case errors.As(err, &apiErr):
		a.printAPIError(apiErr)
	case errors.As(err, &fes):
		for _, fe := range fes {
			fmt.Fprintf(a.stderr, "Error: %s\n", fe.Error())
		}
	case errors.As(err, &fe):
		fmt.Fprintf(a.stderr, "Error: %s\n", fe.Error())
		if fe.Hint != "" {
			fmt.Fprintf(a.stderr, "Try: %s\n", fe.Hint)
		}
	default:
		fmt.Fprintf(a.stderr, "Error: %s\n", err)
	}
	return ExitError
}

// printAPIError prints one "Error:" line per problem (the server reports
// every invalid field at once), each field named as the user gave it, and
// the hint.
func (a *app) printAPIError(e *api.Error) {
	if len(e.Details) > 0 {
		for _, d := range e.Details {
			fmt.Fprintf(a.stderr, "Error: %s\n", a.problem(d))
		}
	} else {
		fmt.Fprintf(a.stderr, "Error: %s\n", a.problem(e))
	}
	hint := e.Hint
	if hint == "" {
		for _, d := range e.Details {
			if d.Hint != "" {
				hint = d.Hint
				break
			}
		}
	}
	if e.Status == 401 {
		// The CLI knows better than the server where the token came from.
		hint = a.unauthorizedHint()
	}
	if hint != "" {
		fmt.Fprintf(a.stderr, "Try: %s\n", hint)
	}
}

// problem is one API problem as "field: message", the field renamed to the
// flag the user typed when the command maps it.
func (a *app) problem(e *api.Error) string {
	field := e.Field
	if a.flagFor != nil && field != "" {
		if f, ok := a.flagFor(field); ok {
			field = f
		}
	}
	if field == "" {
		return e.Message
	}
	return field + ": " + e.Message
}

// noToken is app.tokenFrom when the settings hold no token.
const noToken = "(none)"

// unauthorizedHint says where the refused token came from and what to do.
func (a *app) unauthorizedHint() string {
	const login = "hangar login --url URL --token-file FILE"
	switch src := a.tokenFrom; {
	case src == "":
		return login + " (or set HANGAR_TOKEN)"
	case src == noToken:
		return login + " (no token was sent: none is set in HANGAR_TOKEN or a config file)"
	case src == client.EnvToken:
		return "check HANGAR_TOKEN (the token sent comes from it), or unset it and run " + login
	case strings.HasPrefix(src, "--"):
		return "check " + src + " (a local server's admin token is in DATA_DIR/admin-token)"
	}
	if home, err := client.ConfigFile(); err == nil && home != a.tokenFrom {
		return fmt.Sprintf("fix or remove %s: the token sent comes from it, and it takes precedence over %s, which hangar login writes", a.tokenFrom, home)
	}
	return fmt.Sprintf("%s (the token sent comes from %s)", login, a.tokenFrom)
}

// unreachableCause names the cause of a failed connection, except the
// common "connection refused" that the message already implies.
func unreachableCause(err error) string {
	if err == nil || errors.Is(err, syscall.ECONNREFUSED) {
		return ""
	}
	return " (" + err.Error() + ")"
}

// unreachableHint suggests starting a server when the URL is on this
// machine, and checking the settings otherwise.
func unreachableHint(base string) string {
	if u, err := url.Parse(base); err == nil {
		host := u.Hostname()
		if host == "localhost" {
			return "hangar server"
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return "hangar server"
		}
	}
	return "check HANGAR_URL, or hangar login --url URL --token-file FILE"
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "hangar",
		Short: "Hangar: a self-hosted control plane for machine-learning compute",
		Long: `Hangar runs training on compute targets you own: create an autoscaling
cluster, submit runs of your scripts to it, follow their logs and download
their outputs.

Settings come from HANGAR_URL, HANGAR_TOKEN and HANGAR_WORKSPACE, else from
the config file written by "hangar login".`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          groupArgs,
		RunE:          groupRun,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			// cobra checks required flags and flag groups after this hook;
			// check them here so that they count as usage errors.
			if err := cmd.ValidateRequiredFlags(); err != nil {
				return &usageError{msg: err.Error()}
			}
			if err := checkFlagGroups(cmd); err != nil {
				return err
			}
			if err := cmd.ValidateFlagGroups(); err != nil {
				return &usageError{msg: err.Error()}
			}
			switch a.output {
			case "table", "json", "yaml":
			default:
				return usagef("invalid value %q for -o/--output: want table, json or yaml", a.output)
			}
			a.started = true
			return nil
		},
	}
	root.PersistentFlags().StringVarP(&a.output, "output", "o", "table", "output format: table, json or yaml")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{msg: err.Error()}
	})
	root.CompletionOptions.HiddenDefaultCmd = false
	root.AddCommand(
		a.serverCmd(),
		a.agentCmd(),
		a.loginCmd(),
		a.computeCmd(),
		a.quotaCmd(),
		a.runCmd(),
		a.environmentCmd(),
		a.modelCmd(),
		a.serviceCmd(),
		a.eventsCmd(),
		a.versionCmd(),
	)
	root.AddCommand(a.quickstartCmd())
	return root
}

// groupArgs accepts anything so that groupRun can name an unknown
// subcommand; cobra itself only checks subcommands of the root.
func groupArgs(cmd *cobra.Command, args []string) error { return nil }

// groupRun is the RunE of commands that only group others: without
// arguments they print their help; with one they name the unknown command.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
	}
	return &usageError{msg: msg}
}

// group returns a command that only groups subcommands.
func group(use, short string, aliases ...string) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Aliases: aliases, Args: groupArgs, RunE: groupRun}
}

// exactArgs is cobra.ExactArgs with a message naming what is missing.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return usagef("missing %s", strings.Join(names[len(args):], " and "))
		case len(args) > len(names):
			return usagef("unexpected argument %q (%s takes %d)", args[len(names)], cmd.CommandPath(), len(names))
		}
		return nil
	}
}

// noArgs refuses positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q (%s takes none)", args[0], cmd.CommandPath())
	}
	return nil
}

// flagMap makes an app.flagFor from a map of API fields to flags.
func flagMap(m map[string]string) func(string) (string, bool) {
	return func(field string) (string, bool) {
		f, ok := m[field]
		return f, ok
	}
}

// Annotations of cobra commands holding flag groups, one group per line
// (flag names separated by spaces).
const (
	annotExclusive   = "hangar/exclusive"
	annotOneRequired = "hangar/one-required"
)

// markExclusive is cmd.MarkFlagsMutuallyExclusive (which also guides shell
// completion), reported in plain words: "give --a or --b, not both".
func markExclusive(cmd *cobra.Command, flags ...string) {
	cmd.MarkFlagsMutuallyExclusive(flags...)
	annotate(cmd, annotExclusive, flags)
}

// markOneRequired is cmd.MarkFlagsOneRequired, reported in plain words:
// "give --a or --b".
func markOneRequired(cmd *cobra.Command, flags ...string) {
	cmd.MarkFlagsOneRequired(flags...)
	annotate(cmd, annotOneRequired, flags)
}

func annotate(cmd *cobra.Command, key string, flags []string) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	if cmd.Annotations[key] != "" {
		cmd.Annotations[key] += "\n"
	}
	cmd.Annotations[key] += strings.Join(flags, " ")
}

// checkFlagGroups checks the groups of markExclusive and markOneRequired,
// returning a usage error in plain words.
func checkFlagGroups(cmd *cobra.Command) error {
	changed := cmd.Flags().Changed
	for _, g := range strings.Split(cmd.Annotations[annotOneRequired], "\n") {
		flags := strings.Fields(g)
		if len(flags) > 0 && !slices.ContainsFunc(flags, changed) {
			return usagef("give %s", flagList(flags, "or"))
		}
	}
	for _, g := range strings.Split(cmd.Annotations[annotExclusive], "\n") {
		flags := strings.Fields(g)
		var set []string
		for _, f := range flags {
			if changed(f) {
				set = append(set, f)
			}
		}
		switch {
		case len(set) < 2:
		case len(flags) == 2:
			return usagef("give %s, not both", flagList(flags, "or"))
		default:
			return usagef("give only one of %s, not %s", flagList(flags, "or"), flagList(set, "and"))
		}
	}
	return nil
}

// flagList writes flag names as "--a, --b or --c".
func flagList(flags []string, conj string) string {
	dashed := make([]string, len(flags))
	for i, f := range flags {
		dashed[i] = "--" + f
	}
	if len(dashed) == 1 {
		return dashed[0]
	}
	return strings.Join(dashed[:len(dashed)-1], ", ") + " " + conj + " " + dashed[len(dashed)-1]
}

// progress writes progress text to stderr.
func (a *app) progress(format string, args ...any) {
	fmt.Fprintf(a.stderr, format, args...)
}

// wait sleeps for the poll interval or until ctx is done.
func (a *app) wait(ctx context.Context) error {
	t := time.NewTimer(a.pollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
