package agent

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBuildEnv(t *testing.T) {
	t.Parallel()
	parent := []string{"PATH=/usr/bin", "HOME=/root", "HANGAR_AGENT_TOKEN=secret", "AWS_SECRET_ACCESS_KEY=x", "TERM=xterm", "BROKEN"}
	for _, tc := range []struct {
		name   string
		user   map[string]string
		extra  string
		inputs map[string]string
		want   []string
	}{
		{
			name: "allow-list only",
			want: []string{"HOME=/root", "PATH=/usr/bin", "PYTHONUNBUFFERED=1", "TERM=xterm"},
		},
		{
			name: "user overrides the agent's",
			user: map[string]string{"PATH": "/venv/bin:/usr/bin", "A": "1", "PYTHONUNBUFFERED": "0"},
			want: []string{"A=1", "HOME=/root", "PATH=/venv/bin:/usr/bin", "PYTHONUNBUFFERED=1", "TERM=xterm"},
		},
		{
			name:  "extra python path first",
			user:  map[string]string{"PYTHONPATH": "src:lib"},
			extra: "/opt/hangar",
			want:  []string{"HOME=/root", "PATH=/usr/bin", "PYTHONPATH=/opt/hangar:src:lib", "PYTHONUNBUFFERED=1", "TERM=xterm"},
		},
		{
			name:  "extra python path alone",
			extra: "/opt/hangar",
			want:  []string{"HOME=/root", "PATH=/usr/bin", "PYTHONPATH=/opt/hangar", "PYTHONUNBUFFERED=1", "TERM=xterm"},
		},
		{
			name:   "inputs",
			inputs: map[string]string{"train-data": "/w/inputs/train-data", "x.1": "/w/inputs/x.1/f"},
			want: []string{"HANGAR_INPUT_TRAIN_DATA=/w/inputs/train-data", "HANGAR_INPUT_X_1=/w/inputs/x.1/f",
				"HOME=/root", "PATH=/usr/bin", "PYTHONUNBUFFERED=1", "TERM=xterm"},
		},
		{
			name: "malformed user names dropped",
			user: map[string]string{"": "x", "A=B": "x", "N": "bad\x00value"},
			want: []string{"HOME=/root", "PATH=/usr/bin", "PYTHONUNBUFFERED=1", "TERM=xterm"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := buildEnv(parent, tc.user, tc.extra, tc.inputs)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("buildEnv (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLookPathUsesAttemptPATH(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "venv", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	py := filepath.Join(bin, "python3")
	if err := os.WriteFile(py, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "notexec"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
		wantErr          bool
	}{
		{"python3", bin + ":/nonexistent", py, false},
		{"python3", "venv/bin", py, false}, // relative PATH entries are relative to the working dir
		{"venv/bin/python3", "", py, false},
		{py, "", py, false},
		{"python3", "/nonexistent", "", true},
		{"notexec", bin, "", true},
	} {
		got, err := lookPath(tc.name, tc.path, dir)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("lookPath(%q, %q) = %q, %v; want %q, error %v", tc.name, tc.path, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestErrorTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "log")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var b strings.Builder
	for i := range 100 {
		b.WriteString(strings.Repeat("x", i%7) + "\n")
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if got, want := errorTail(write(b.String()), 30), strings.Join(lines[70:], "\n"); got != want {
		t.Errorf("tail of 100 lines = %q, want %q", got, want)
	}
	if got := errorTail(write("one\ntwo"), 30); got != "one\ntwo" {
		t.Errorf("tail = %q", got)
	}
	long := strings.Repeat("y", 20000) + "\nlast\n"
	if got := errorTail(write(long), 30); got != "last" {
		t.Errorf("tail of a huge line = %q, want %q", got, "last")
	}
	if got := errorTail(filepath.Join(dir, "missing"), 30); got != "" {
		t.Errorf("tail of a missing log = %q", got)
	}
}

func TestWriteOutputTreeSince(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	files := map[string]bool{ // name → old
		"outputs/old.txt":       true,
		"outputs/new.txt":       false,
		"outputs/deep/new.bin":  false,
		"logs/train.log":        false,
		"notoutputs/secret.txt": false,
		"src.py":                false,
	}
	for name, isOld := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		if isOld {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "outputs", "link")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		since time.Time
		want  []string
	}{
		{time.Time{}, []string{"logs/train.log", "outputs/deep/new.bin", "outputs/new.txt", "outputs/old.txt"}},
		{old.Add(time.Minute), []string{"logs/train.log", "outputs/deep/new.bin", "outputs/new.txt"}},
		{time.Now().Add(time.Hour), nil},
	} {
		var buf bytes.Buffer
		n, err := writeOutputTree(dir, &buf, tc.since)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readTarGz(&buf)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for name, b := range got {
			names = append(names, name)
			if string(b) != name {
				t.Errorf("%s holds %q", name, b)
			}
		}
		slices.Sort(names)
		if n != len(tc.want) {
			t.Errorf("since %v: n = %d, want %d", tc.since, n, len(tc.want))
		}
		if diff := cmp.Diff(tc.want, names); diff != "" {
			t.Errorf("since %v (-want +got):\n%s", tc.since, diff)
		}
	}
}

func TestRetryClassification(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err         error
		retry, perm bool
		description string
	}{
		{errors.New("connection refused"), true, false, "network"},
		{&statusError{code: http.StatusServiceUnavailable}, true, false, "503"},
		{&statusError{code: http.StatusTooManyRequests}, true, false, "429"},
		{&statusError{code: http.StatusBadRequest}, false, true, "400"},
		{&statusError{code: http.StatusNotFound}, false, true, "404"},
		{errFenced, false, false, "409"},
		{errBadBlob, false, false, "bad blob"},
	} {
		if got := retryable(tc.err); got != tc.retry {
			t.Errorf("%s: retryable = %v, want %v", tc.description, got, tc.retry)
		}
		if got := permanent(tc.err); got != tc.perm {
			t.Errorf("%s: permanent = %v, want %v", tc.description, got, tc.perm)
		}
	}
}

func TestBackoffCapped(t *testing.T) {
	t.Parallel()
	var b backoff
	prev := time.Duration(0)
	for i := range 30 {
		d := b.next()
		if d <= 0 || d > backoffMax*6/5 {
			t.Fatalf("step %d: %v out of (0, %v]", i, d, backoffMax*6/5)
		}
		if i < 4 && d < prev/2 {
			t.Errorf("step %d: %v does not grow from %v", i, d, prev)
		}
		prev = d
	}
}

func TestInputEnvAndNames(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"train-data": "HANGAR_INPUT_TRAIN_DATA", "x.1": "HANGAR_INPUT_X_1", "Ab_c": "HANGAR_INPUT_AB_C"} {
		if got := InputEnv(in); got != want {
			t.Errorf("InputEnv(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a b", strings.Repeat("a", 201)} {
		if checkName(bad) == nil {
			t.Errorf("checkName(%q) = nil, want an error", bad)
		}
	}
}
