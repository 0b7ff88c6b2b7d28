// Package cli is the hangar command line: the command tree, its flags, and
// how results and errors are shown. Results go to stdout (a table, or with
// -o json|yaml exactly the API documents); progress and messages go to
// stderr. Exit codes: 0 ok, 1 error, 2 usage error.
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

	settings *client.Settings
	cl       *client.Client
}

func newApp(stdout, stderr io.Writer) *app {
	return &app{
		stdout:       stdout,
		stderr:       stderr,
		output:       "table",
		loadSettings: client.LoadSettings,
		now:          time.Now,
		pollInterval: 250 * time.Millisecond,
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
	a.cl = s.Client(client.WithUserAgent("hangar-cli/" + clientVersion()))
	return a.cl, nil
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
	var unreachable *client.UnreachableError
	var apiErr *api.Error
	var fe *fieldError
	var fes fieldErrors
	switch {
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
// every invalid field at once) and the hint.
func (a *app) printAPIError(e *api.Error) {
	if len(e.Details) > 0 {
		for _, d := range e.Details {
			fmt.Fprintf(a.stderr, "Error: %s\n", d.Error())
		}
	} else {
		fmt.Fprintf(a.stderr, "Error: %s\n", e.Error())
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
	if hint == "" && e.Status == 401 {
		hint = "hangar login --url URL --token-file FILE (or set HANGAR_TOKEN)"
	}
	if hint != "" {
		fmt.Fprintf(a.stderr, "Try: %s\n", hint)
	}
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
