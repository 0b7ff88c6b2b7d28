package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hangar-ml/hangar/internal/server"
)

func (a *app) serverCmd() *cobra.Command {
	var cfg server.Config
	cmd := &cobra.Command{
		Use:   "server [--data-dir DIR] [--addr HOST:PORT] [--database URL] [--vm-sizes FILE]",
		Short: "Run the Hangar server (REST API, controllers, local nodes)",
		Long: `Run the Hangar server until interrupted (SIGINT or SIGTERM).

State lives in an embedded SQLite database in the data dir unless --database
names a PostgreSQL database. On first start the server creates the workspace
"default" and an admin token in DATA_DIR/admin-token (mode 0600). Nodes of
clusters are "hangar agent" processes that keep running across restarts of
the server and are re-adopted when it starts again.`,
		Example: `  hangar server
  hangar server --data-dir /var/lib/hangar --addr 0.0.0.0:8265
  hangar server --database postgres://hangar@localhost/hangar`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
				return usagef("--addr: %s; give HOST:PORT, e.g. 127.0.0.1:8265 (port 0 picks a free one)", unwrapAddrErr(err))
			}
			if cfg.DataDir == "" {
				home, err := os.UserHomeDir()
				if err != nil {
					return usagef("cannot find the home directory (%v); give --data-dir", err)
				}
				cfg.DataDir = filepath.Join(home, ".hangar", "data")
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the hangar executable for nodes: %w", err)
			}
			cfg.AgentExecutable = exe
			cfg.Logger = a.logger()
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			err = srv.Run(ctx)
			switch {
			case err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()):
				return nil
			case errors.Is(err, syscall.EADDRINUSE):
				return &hintError{Err: err, Hint: "is another hangar server running? stop it, or give another --addr (port 0 picks a free one)"}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.DataDir, "data-dir", "", "directory of the database, blobs, run files and node dirs (default ~/.hangar/data)")
	fl.StringVar(&cfg.Addr, "addr", server.DefaultAddr, "listen address (port 0 picks a free port)")
	fl.StringVar(&cfg.DatabaseURL, "database", "", "PostgreSQL URL (postgres://…); default: SQLite in the data dir")
	fl.StringVar(&cfg.VMSizesFile, "vm-sizes", "", "YAML or JSON `FILE` replacing the built-in VM size catalog")
	fl.Int64Var(&cfg.MaxLogMiB, "max-log-mib", 100, "keep at most this many MiB of each run attempt's log")
	return cmd
}

// unwrapAddrErr drops the *net.AddrError wrapper's repetition of the address.
func unwrapAddrErr(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return fmt.Sprintf("%q: %s", ae.Addr, ae.Err)
	}
	return err.Error()
}

// logger is the slog logger of long-running roles (server, agent): text on
// stderr at the level HANGAR_LOG_LEVEL names (debug, info, warn, error;
// default info).
func (a *app) logger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(os.Getenv("HANGAR_LOG_LEVEL"))); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
}
