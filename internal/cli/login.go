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
			a.tokenFrom = "--token-file " + tokenFile
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
			// Resolve the settings as every later command will: a config
			// file found first or a HANGAR_* variable may hide this login.
			got, err := a.loadSettings()
			if err != nil {
				a.progress("Warning: later commands will fail: %v\n", err)
				return nil
			}
			for _, w := range shadowed(s, path, got) {
				a.progress("Warning: %s\n", w)
			}
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

// shadowed explains why the settings later commands resolve (got) differ
// from the ones login saved in path: one sentence per environment variable
// or config file that takes precedence. None when they agree.
func shadowed(saved client.Settings, path string, got client.Settings) []string {
	type diff struct{ setting, value, from string }
	var diffs []diff
	if !client.SameURL(got.URL, saved.URL) {
		diffs = append(diffs, diff{"url", got.URL, got.URLFrom})
	}
	if got.Token != saved.Token {
		diffs = append(diffs, diff{"token", "", got.TokenFrom})
	}
	if got.Workspace != saved.Workspace {
		diffs = append(diffs, diff{"workspace", got.Workspace, got.WorkspaceFrom})
	}
	var out []string
	done := map[string]bool{}
	for i := range diffs {
		if diffs[i].from == "" && got.File != "" {
			// The file that won lacks the setting, so the default applies.
			diffs[i].from = got.File
		}
	}
	for _, d := range diffs {
		if done[d.from] {
			continue
		}
		done[d.from] = true
		switch d.from {
		case client.EnvURL, client.EnvToken, client.EnvWorkspace:
			what := d.setting
			if d.value != "" {
				what += " " + d.value
			}
			out = append(out, fmt.Sprintf("%s is set, and later commands use its %s rather than the %s just saved; unset %s to use this login", d.from, what, d.setting, d.from))
		case "":
			// No config file was read: HANGAR_URL names another server
			// (said already), or the home directory is not the same.
			if len(out) == 0 {
				out = append(out, fmt.Sprintf("later commands do not read %s", path))
			}
		default:
			var settings []string
			for _, e := range diffs {
				if e.from == d.from {
					settings = append(settings, e.setting)
				}
			}
			out = append(out, fmt.Sprintf("%s takes precedence over %s, so later commands use another %s; remove it (or run hangar from another directory) to use this login", d.from, path, andList(settings)))
		}
	}
	return out
}

// andList joins words as "a, b and c".
func andList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
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
