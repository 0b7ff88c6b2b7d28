package cli

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/hangar-ml/hangar/internal/agent"
	"github.com/hangar-ml/hangar/internal/agentproto"
	pysdk "github.com/hangar-ml/hangar/sdk/python"
)

func (a *app) agentCmd() *cobra.Command {
	var cfg agent.Config
	cmd := &cobra.Command{
		Use:    "agent --server URL --node ID --dir DIR [--slots N]",
		Short:  "Run a node agent (started by node providers, not by hand)",
		Long:   "Run a node agent. The node token is read from " + agentproto.TokenEnv + ".",
		Hidden: true,
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.Token = os.Getenv(agentproto.TokenEnv)
			if cfg.Token == "" {
				return usagef("%s is not set", agentproto.TokenEnv)
			}
			cfg.Logger = a.logger()
			// The Python SDK goes on every attempt's PYTHONPATH, so
			// `from hangar.core import Run` works with nothing installed.
			sdkDir := filepath.Join(cfg.Dir, "pysdk")
			if err := pysdk.WriteTo(sdkDir); err != nil {
				return err
			}
			cfg.ExtraPythonPath = sdkDir
			err := agent.New(cfg).Run(cmd.Context())
			if err != nil && errors.Is(err, cmd.Context().Err()) {
				return nil
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.ServerURL, "server", "", "the server's base URL")
	fl.StringVar(&cfg.NodeID, "node", "", "this node's id")
	fl.StringVar(&cfg.Dir, "dir", "", "the node's working directory")
	fl.IntVar(&cfg.Slots, "slots", 1, "attempts run at once")
	for _, f := range []string{"server", "node", "dir"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}
