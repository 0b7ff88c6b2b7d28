package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-ml/hangar/client"
)

func TestShadowed(t *testing.T) {
	t.Parallel()
	const path = "/home/u/.hangar/config.json"
	saved := client.Settings{URL: "http://127.0.0.1:8265", Token: "new", Workspace: "default"}
	fromFile := func(file string) client.Settings {
		s := saved
		s.File, s.URLFrom, s.TokenFrom, s.WorkspaceFrom = file, file, file, file
		return s
	}
	tests := []struct {
		name string
		got  client.Settings
		want []string
	}{
		{name: "later commands read what was saved", got: fromFile(path)},
		{name: "the same values from the environment are fine", got: func() client.Settings {
			s := fromFile(path)
			s.URL, s.URLFrom, s.TokenFrom = "http://127.0.0.1:8265/", client.EnvURL, client.EnvToken
			return s
		}()},
		{name: "a file in the current dir takes precedence", got: func() client.Settings {
			s := fromFile("/work/.hangar/config.json")
			s.Token = "old"
			return s
		}(), want: []string{"/work/.hangar/config.json takes precedence over /home/u/.hangar/config.json, so later commands use another token; remove it (or run hangar from another directory) to use this login"}},
		{name: "a file with another server and workspace", got: func() client.Settings {
			s := fromFile("/work/config.json")
			s.URL, s.Token, s.Workspace = "http://other:1", "old", "ws"
			return s
		}(), want: []string{"/work/config.json takes precedence over /home/u/.hangar/config.json, so later commands use another url, token and workspace; remove it (or run hangar from another directory) to use this login"}},
		{name: "a file without url: the default URL is not the one saved", got: func() client.Settings {
			s := fromFile("/work/config.json")
			s.URL, s.URLFrom, s.Token = client.DefaultURL+"0", "", "old"
			return s
		}(), want: []string{"/work/config.json takes precedence over /home/u/.hangar/config.json, so later commands use another url and token; remove it (or run hangar from another directory) to use this login"}},
		{name: "HANGAR_TOKEN", got: func() client.Settings {
			s := fromFile(path)
			s.Token, s.TokenFrom = "old", client.EnvToken
			return s
		}(), want: []string{"HANGAR_TOKEN is set, and later commands use its token rather than the token just saved; unset HANGAR_TOKEN to use this login"}},
		{name: "HANGAR_URL names another server: the file is not read at all", got: client.Settings{URL: "http://other:1", URLFrom: client.EnvURL, Workspace: "default"},
			want: []string{"HANGAR_URL is set, and later commands use its url http://other:1 rather than the url just saved; unset HANGAR_URL to use this login"}},
		{name: "HANGAR_WORKSPACE", got: func() client.Settings {
			s := fromFile(path)
			s.Workspace, s.WorkspaceFrom = "ws", client.EnvWorkspace
			return s
		}(), want: []string{"HANGAR_WORKSPACE is set, and later commands use its workspace ws rather than the workspace just saved; unset HANGAR_WORKSPACE to use this login"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, shadowed(saved, path, tt.got)); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}
