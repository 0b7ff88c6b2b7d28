package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
)

func (a *app) environmentCmd() *cobra.Command {
	c := group("environment", "Register and list run environments (interpreter, requirements, variables)", "env")
	c.AddCommand(a.environmentCreateCmd(), a.environmentListCmd(), a.environmentShowCmd())
	return c
}

func environmentRows(w io.Writer, es []api.Environment) {
	row(w, "NAME", "VERSION", "PYTHON", "REQUIREMENTS", "CREATED")
	for _, e := range es {
		row(w, e.Name, e.Version, e.Python, strings.Join(e.Requirements, " "), timestamp(&e.CreatedOn))
	}
}

func (a *app) environmentCreateCmd() *cobra.Command {
	var file, name string
	cmd := &cobra.Command{
		Use:   "create -f FILE [--name NAME]",
		Short: "Register a new version of an environment from a YAML file",
		Long: `Register a new version of an environment from a YAML (or JSON) file with
the keys name, python, requirements and variables. --name overrides the
file's name. Runs use it with --environment NAME or NAME:VERSION.`,
		Example: `  cat env.yml
  name: sklearn
  python: /usr/bin/python3
  requirements: [scikit-learn==1.5.2]
  variables: {OMP_NUM_THREADS: "1"}

  hangar environment create -f env.yml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var spec api.EnvironmentSpec
			if err := a.decodeFile(file, &spec, api.Environment{}); err != nil {
				return err
			}
			if cmd.Flags().Changed("name") {
				spec.Name = name
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			e, err := cl.EnvironmentCreate(cmd.Context(), spec)
			if err != nil {
				return err
			}
			a.progress("Registered environment %s version %d\n", e.Name, e.Version)
			return a.emit(e, func(w io.Writer) { environmentRows(w, []api.Environment{*e}) })
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the environment `FILE` (YAML or JSON)")
	cmd.Flags().StringVar(&name, "name", "", "name of the environment (overrides the file)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func (a *app) environmentListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List registered environments",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAndEmit(a, func(cl *client.Client) ([]api.Environment, error) { return cl.EnvironmentList(cmd.Context()) }, environmentRows)
		},
	}
}

func (a *app) environmentShowCmd() *cobra.Command {
	var version int
	cmd := &cobra.Command{
		Use:   "show NAME [--version V]",
		Short: "Show an environment (the latest version unless --version is given)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("version") && version < 1 {
				return usagef("--version must be >= 1, not %d", version)
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			ctx, name := cmd.Context(), args[0]
			e, err := cl.EnvironmentGet(ctx, name, version)
			if client.IsNotFound(err) {
				if msg, latest, ok := missingVersion(ctx, cl, name, version); ok {
					return &hintError{Err: errors.New(msg), Hint: fmt.Sprintf("hangar environment show %s --version %d", name, latest)}
				}
			}
			if err != nil {
				return err
			}
			return a.emit(e, func(w io.Writer) { environmentDetail(w, e) })
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "the version to show (default: the latest)")
	return cmd
}

func environmentDetail(w io.Writer, e *api.Environment) {
	kv := kvTable{w}
	kv.add("Name", e.Name)
	kv.add("Version", e.Version)
	kv.add("Python", e.Python)
	kv.add("Created", timestamp(&e.CreatedOn))
	if len(e.Requirements) == 0 {
		kv.add("Requirements", "")
	}
	for i, r := range e.Requirements {
		key := ""
		if i == 0 {
			key = "Requirements"
		}
		fmt.Fprintf(w, "%s\t%s\n", keyCol(key), r)
	}
	if len(e.Variables) > 0 {
		kv.add("Variables", sortedKV(e.Variables))
	}
}

// splitEnvironmentRef splits a registered environment's NAME or
// NAME:VERSION; ok is false for "" and for a version that is not a
// positive number (left for the server to refuse).
func splitEnvironmentRef(ref string) (name string, version int, ok bool) {
	name, v, hasVersion := strings.Cut(ref, ":")
	if name == "" {
		return "", 0, false
	}
	if !hasVersion {
		return name, 0, true
	}
	version, err := strconv.Atoi(v)
	if err != nil || version < 1 {
		return "", 0, false
	}
	return name, version, true
}

// missingVersion explains a 404 for version of environment name when the
// environment exists in other versions: the message lists them, and latest
// is the newest. ok is false when that is not the case (or the list fails:
// the caller's error stands).
func missingVersion(ctx context.Context, cl *client.Client, name string, version int) (msg string, latest int, ok bool) {
	if version < 1 {
		return "", 0, false
	}
	es, err := cl.EnvironmentList(ctx)
	if err != nil {
		return "", 0, false
	}
	var versions []string
	for _, e := range es {
		if e.Name == name {
			versions = append(versions, strconv.Itoa(e.Version))
			latest = max(latest, e.Version)
		}
	}
	if len(versions) == 0 {
		return "", 0, false
	}
	return fmt.Sprintf("version %d of environment %s does not exist; its versions: %s", version, name, strings.Join(versions, ", ")), latest, true
}

// keyCol renders a key column cell: "Key:" or empty for a continuation line.
func keyCol(key string) string {
	if key == "" {
		return ""
	}
	return key + ":"
}
