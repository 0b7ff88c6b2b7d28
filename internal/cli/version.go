package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/hangar-ml/hangar/internal/server"
)

// clientVersion is this binary's version. Server and CLI are one binary,
// so they share server.Version (set at build time with -ldflags "-X
// github.com/hangar-ml/hangar/internal/server.Version=…").
func clientVersion() string { return server.Version }

// versionInfo is the document of `hangar version -o json`.
type versionInfo struct {
	Client    string `json:"client"`
	Server    string `json:"server,omitempty"`
	ServerURL string `json:"server_url,omitempty"`
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the client version and, if reachable, the server version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := versionInfo{Client: clientVersion()}
			cl, err := a.client()
			if err == nil {
				v.ServerURL = cl.BaseURL()
				h, herr := cl.Health(cmd.Context())
				if herr == nil {
					v.Server = h.Version
				} else {
					a.progress("Server at %s not reachable: %v\n", cl.BaseURL(), herr)
				}
			} else {
				a.progress("No server settings: %v\n", err)
			}
			return a.emit(v, func(w io.Writer) {
				fmt.Fprintf(w, "Client:\t%s\n", v.Client)
				if v.Server != "" {
					fmt.Fprintf(w, "Server:\t%s (%s)\n", v.Server, v.ServerURL)
				}
			})
		},
	}
}
