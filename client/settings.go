package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hangar-ml/hangar/api"
)

// DefaultURL is the server URL used when neither the environment nor a
// config file names one (where `hangar server` listens by default).
const DefaultURL = "http://127.0.0.1:8265"

// Environment variables read by LoadSettings.
const (
	EnvURL       = "HANGAR_URL"
	EnvToken     = "HANGAR_TOKEN"
	EnvWorkspace = "HANGAR_WORKSPACE"
)

// Settings say which server to call, as whom, in which workspace. The JSON
// form is the config file written by `hangar login` and read by the Python
// SDK: {"url": …, "token": …, "workspace": …}.
type Settings struct {
	URL       string `json:"url"`
	Token     string `json:"token,omitempty"`
	Workspace string `json:"workspace,omitempty"`
	// File is the config file the settings were read from ("" when none).
	File string `json:"-"`
	// URLFrom, TokenFrom and WorkspaceFrom say where each setting came
	// from: its environment variable (EnvURL, EnvToken, EnvWorkspace) or
	// the config File. "" means the default applies (for the token: there
	// is none). LoadSettings sets them; SaveSettings does not write them.
	URLFrom       string `json:"-"`
	TokenFrom     string `json:"-"`
	WorkspaceFrom string `json:"-"`
}

// Client returns a client for s.
func (s Settings) Client(opts ...Option) *Client {
	return New(s.URL, s.Token, append([]Option{WithWorkspace(s.Workspace)}, opts...)...)
}

// ConfigFile is the path of the user's config file, ~/.hangar/config.json.
func ConfigFile() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the home directory: %w", err)
	}
	return filepath.Join(home, ".hangar", "config.json"), nil
}

// LoadSettings resolves the client settings. Each of HANGAR_URL, HANGAR_TOKEN
// and HANGAR_WORKSPACE, when set, wins over the config file. The config file
// is the first of ./config.json, ./.hangar/config.json and
// ~/.hangar/config.json that exists (a ./config.json without "url" or
// "token" belongs to something else and is skipped). What is still unset
// gets DefaultURL and DefaultWorkspace; the token may stay empty. When
// HANGAR_URL names another server than the file, nothing else is taken from
// the file, so its token is never sent to a server it was not made for.
//
// A config file that exists but cannot be read or parsed is an error.
func LoadSettings() (Settings, error) {
	cwd, _ := os.Getwd()
	home, _ := os.UserHomeDir()
	return loadSettings(os.Getenv, cwd, home)
}

func loadSettings(getenv func(string) string, cwd, home string) (Settings, error) {
	type candidate struct {
		path string
		// foreign is set for ./config.json, which may belong to any
		// program: it counts only when it parses and names a URL or token.
		foreign bool
	}
	var candidates []candidate
	if cwd != "" {
		candidates = append(candidates,
			candidate{filepath.Join(cwd, "config.json"), true},
			candidate{filepath.Join(cwd, ".hangar", "config.json"), false})
	}
	if home != "" {
		candidates = append(candidates, candidate{filepath.Join(home, ".hangar", "config.json"), false})
	}
	var s Settings
	for _, c := range candidates {
		fileS, found, err := readSettingsFile(c.path)
		if err != nil {
			if c.foreign {
				continue
			}
			return Settings{}, err
		}
		if !found || (c.foreign && fileS.URL == "" && fileS.Token == "") {
			continue
		}
		s = fileS
		s.URLFrom, s.TokenFrom, s.WorkspaceFrom = fromFile(s.URL, s.File), fromFile(s.Token, s.File), fromFile(s.Workspace, s.File)
		break
	}
	if v := getenv(EnvURL); v != "" {
		if s.URL != "" && normalizeURL(s.URL) != normalizeURL(v) {
			// The file's token belongs to another server: never send it
			// to this one.
			s = Settings{}
		}
		s.URL, s.URLFrom = v, EnvURL
	}
	if v := getenv(EnvToken); v != "" {
		s.Token, s.TokenFrom = v, EnvToken
	}
	if v := getenv(EnvWorkspace); v != "" {
		s.Workspace, s.WorkspaceFrom = v, EnvWorkspace
	}
	if s.URL == "" {
		s.URL = DefaultURL
	}
	if s.Workspace == "" {
		s.Workspace = DefaultWorkspace
	}
	return s, nil
}

// fromFile is the source of a setting read from file: the file when the
// setting is there, else "".
func fromFile(v, file string) string {
	if v == "" {
		return ""
	}
	return file
}

// SameURL reports whether two server URLs name the same server, ignoring a
// trailing slash and a trailing /api/v1.
func SameURL(a, b string) bool { return normalizeURL(a) == normalizeURL(b) }

func normalizeURL(u string) string {
	return strings.TrimSuffix(strings.TrimRight(u, "/"), "/api/"+api.Version)
}

// readSettingsFile reads one config file; found is false when it does not exist.
func readSettingsFile(path string) (s Settings, found bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Settings{}, false, nil
	}
	if err != nil {
		return Settings{}, false, fmt.Errorf("read config file: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return Settings{}, false, fmt.Errorf("config file %s: %w", path, err)
	}
	s.File = path
	return s, true, nil
}

// SaveSettings writes s as a config file at path, creating its directory
// with mode 0700 and the file with mode 0600 (the token is a secret). The
// file is replaced atomically.
func SaveSettings(path string, s Settings) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create config directory: %w", err)
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	tmp, err := os.CreateTemp(dir, ".config-*.json")
	if err != nil {
		return fmt.Errorf("write config file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write config file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write config file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write config file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write config file: %w", err)
	}
	return nil
}
