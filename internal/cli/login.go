package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-ml/hangar/client"
)

func (a *app) loginCmd() *cobra.Command {
	var s client.Settings
	var tokenFile string
	cmd := &cobra.Command{
		Use:   "login --url URL --token-file FILE [--workspace W]",
		Short: "Save the server URL and token in ~/.hangar/config.json",
		Long: `Check that the server answers and accepts the token, then save the URL,
token and workspace in ~/.hangar/config.json (mode 0600) for later commands
and the Python SDK. HANGAR_URL, HANGAR_TOKEN and HANGAR_WORKSPACE, when set,
win over the file. The token file of a local server is DATA_DIR/admin-token;
"-" reads the token from stdin.`,
		Example: "  hangar login --url http://127.0.0.1:8265 --token-file ~/.hangar/data/admin-token",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tok, err := readToken(tokenFile)
			if err != nil {
				return &fieldError{Field: "--token-file", Err: err}
			}
			s.Token = tok
			if s.Workspace == "" {
				s.Workspace = client.DefaultWorkspace
			}
			cl := s.Client(client.WithUserAgent("hangar-cli/" + clientVersion()))
			ctx := cmd.Context()
			if _, err := cl.Health(ctx); err != nil {
				return err
			}
			// An authenticated call in the workspace checks the token and
			// that the workspace exists.
			if _, err := cl.ComputeList(ctx); err != nil {
				return err
			}
			path, err := client.ConfigFile()
			if err != nil {
				return err
			}
			if err := client.SaveSettings(path, s); err != nil {
				return err
			}
			a.progress("Logged in to %s (workspace %s); settings saved in %s\n", cl.BaseURL(), s.Workspace, path)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&s.URL, "url", "", "the server URL, e.g. http://127.0.0.1:8265")
	fl.StringVar(&tokenFile, "token-file", "", "a file holding the token (\"-\" for stdin)")
	fl.StringVar(&s.Workspace, "workspace", client.DefaultWorkspace, "the workspace")
	_ = cmd.MarkFlagRequired("url")
	_ = cmd.MarkFlagRequired("token-file")
	return cmd
}

// readToken reads a token from a file (or stdin for "-"), trimming spaces.
func readToken(path string) (string, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<16))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", errors.New("the token file is empty")
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("the token file holds more than one word")
	}
	return tok, nil
}
