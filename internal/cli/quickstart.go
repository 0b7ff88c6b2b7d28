package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/hangar-ml/hangar/internal/quickstart"
)

func (a *app) quickstartCmd() *cobra.Command {
	var opt quickstart.Options
	cmd := &cobra.Command{
		Use:   "quickstart",
		Short: "Run the main job end to end: train on the digits data set on a cluster, deploy, score",
		Long: `Starts an embedded server in a data dir (a temp dir unless --data-dir is given),
creates the cluster cpu-cluster (0..2 nodes), trains a scikit-learn classifier on the bundled
digits data set on it, registers the model, deploys it as a web service with key auth, scores
the held-out digits over HTTP, shows the cluster scaling back to 0 and stops everything it
started. The last line is the deployed service's held-out accuracy.

It needs a python3 with scikit-learn (Debian: apt-get install python3-sklearn); set
HANGAR_PYTHON to choose the interpreter.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opt.Out, opt.Err = a.stdout, a.stderr
			if exe, err := os.Executable(); err == nil {
				opt.Executable = exe
			}
			return quickstart.Run(cmd.Context(), opt)
		},
	}
	cmd.Flags().StringVar(&opt.DataDir, "data-dir", "", "keep the server's data here (default: a temp dir, removed at the end)")
	cmd.Flags().StringVar(&opt.Python, "python", "", "interpreter with scikit-learn (default: search $HANGAR_PYTHON, /usr/bin/python3, python3)")
	cmd.Flags().IntVar(&opt.IdleSeconds, "idle-seconds", 10, "the cluster's idle time before scale-down")
	return cmd
}
