package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hangar-ml/hangar/internal/blob"
	"github.com/hangar-ml/hangar/internal/pyreq"
	"github.com/hangar-ml/hangar/internal/snapshot"
)

// parentEnvAllowed is the part of the agent's own environment an attempt
// inherits. Nothing else leaks, in particular not agentproto.TokenEnv.
var parentEnvAllowed = []string{
	"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL", "TERM",
	// The machine's numeric-library settings (some hosts need
	// OPENBLAS_CORETYPE for correct results).
	"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
}

// prepare lays out the attempt's working directory and returns the command
// to start, with its output going to the attempt's log file.
func (a *Agent) prepare(ctx context.Context, at *attempt) (*exec.Cmd, error) {
	asg := at.asg
	if asg.Script == "" && asg.Command == "" {
		return nil, errors.New("the assignment has neither a script nor a command")
	}
	if asg.SnapshotDigest != "" {
		path, err := a.fetchBlob(ctx, asg.SnapshotDigest)
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		if err := extractFile(path, at.dir); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
	}
	for _, d := range []string{at.dir, filepath.Join(at.dir, "outputs"), filepath.Join(at.dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	inputs, err := a.placeInputs(ctx, at)
	if err != nil {
		return nil, err
	}

	env := buildEnv(a.environ(), asg.Env, a.cfg.ExtraPythonPath, inputs)
	pathEnv := envValue(env, "PATH")
	var name string
	var args []string
	if asg.Script != "" {
		name = asg.Python
		if name == "" {
			name = "python3"
		}
		args = append([]string{"-u", asg.Script}, asg.Args...)
	} else {
		name = "/bin/sh"
		args = append([]string{"-c", asg.Command, "sh"}, asg.Args...)
	}
	exe, err := lookPath(name, pathEnv, at.dir)
	if err != nil {
		return nil, err
	}
	if len(asg.Requirements) > 0 {
		python := exe
		if asg.Script == "" {
			pyName := asg.Python
			if pyName == "" {
				pyName = "python3"
			}
			if python, err = lookPath(pyName, pathEnv, at.dir); err != nil {
				return nil, err
			}
		}
		if err := pyreq.Check(ctx, python, env, at.dir, asg.Requirements); err != nil {
			return nil, err
		}
	}
	return &exec.Cmd{
		Path:   exe,
		Args:   append([]string{name}, args...),
		Env:    env,
		Dir:    at.dir,
		Stdout: at.logFile,
		Stderr: at.logFile,
	}, nil
}

func extractFile(path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return snapshot.Extract(f, dir)
}

// placeInputs puts each input under inputs/NAME, read-only, and returns the
// path to announce for each name: the file itself for a file input, the
// directory for a folder input.
func (a *Agent) placeInputs(ctx context.Context, at *attempt) (map[string]string, error) {
	if len(at.asg.Inputs) == 0 {
		return nil, nil
	}
	root := filepath.Join(at.dir, "inputs")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for _, in := range at.asg.Inputs {
		if err := checkName(in.Name); err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		if _, dup := paths[in.Name]; dup {
			return nil, fmt.Errorf("input %s: listed twice", in.Name)
		}
		src, err := a.fetchBlob(ctx, in.Digest)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", in.Name, err)
		}
		dst := filepath.Join(root, in.Name)
		if in.Dir {
			if err := extractFile(src, dst); err != nil {
				return nil, fmt.Errorf("input %s: %w", in.Name, err)
			}
			paths[in.Name] = dst
		} else {
			fileName := in.FileName
			if fileName == "" {
				fileName = in.Name
			}
			if err := checkFileName(fileName); err != nil {
				return nil, fmt.Errorf("input %s: %w", in.Name, err)
			}
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return nil, err
			}
			file := filepath.Join(dst, fileName)
			if err := copyFile(src, file); err != nil {
				return nil, fmt.Errorf("input %s: %w", in.Name, err)
			}
			paths[in.Name] = file
		}
		if err := makeReadOnly(dst); err != nil {
			return nil, fmt.Errorf("input %s: %w", in.Name, err)
		}
	}
	if err := os.Chmod(root, 0o555); err != nil {
		return nil, err
	}
	return paths, nil
}

// copyFile copies a cached blob for one attempt. A copy, not a hard link: a
// process running as root could write through a link and corrupt the cache
// for later attempts. io.Copy between files uses copy_file_range on Linux,
// which shares extents on file systems that can.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// makeReadOnly clears the write bits of everything under dir.
func makeReadOnly(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(path, fi.Mode().Perm()&^0o222)
	})
}

// checkFileName accepts one path element: no separators, not "." or "..".
func checkFileName(s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return fmt.Errorf("invalid file name %q", s)
	}
	return nil
}

// fetchBlob returns the path of the cached blob, downloading it first if
// needed.
func (a *Agent) fetchBlob(ctx context.Context, digest string) (string, error) {
	if err := blob.ValidateDigest(digest); err != nil {
		return "", err
	}
	if p, err := a.blobs.Path(digest); err == nil {
		return p, nil
	}
	err := a.retry(ctx, func(ctx context.Context) error { return a.download(ctx, digest) })
	if err != nil {
		return "", err
	}
	return a.blobs.Path(digest)
}

// download fetches one blob into the cache, checking its digest.
func (a *Agent) download(ctx context.Context, digest string) error {
	ctx, cancel := context.WithTimeout(ctx, transferTimeout)
	defer cancel()
	resp, err := a.send(ctx, "download blob "+digest, http.MethodGet, "/blobs/"+url.PathEscape(digest), "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, _, err := a.blobs.Put(resp.Body)
	if err != nil {
		return fmt.Errorf("download blob %s: %w", digest, err)
	}
	if got != digest {
		_ = a.blobs.Delete(got)
		return fmt.Errorf("download blob %s: got %s: %w", digest, got, errBadBlob)
	}
	return nil
}

// buildEnv returns the attempt's environment, sorted: the allow-listed part
// of parent, then the assignment's variables, PYTHONUNBUFFERED=1,
// extraPythonPath before the assignment's PYTHONPATH, and
// HANGAR_INPUT_<NAME> for each input.
func buildEnv(parent []string, user map[string]string, extraPythonPath string, inputs map[string]string) []string {
	m := map[string]string{}
	for _, kv := range parent {
		k, v, ok := strings.Cut(kv, "=")
		if ok && slices.Contains(parentEnvAllowed, k) {
			m[k] = v
		}
	}
	for k, v := range user {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			continue
		}
		m[k] = v
	}
	m["PYTHONUNBUFFERED"] = "1"
	if extraPythonPath != "" {
		if pp := user["PYTHONPATH"]; pp != "" {
			m["PYTHONPATH"] = extraPythonPath + string(os.PathListSeparator) + pp
		} else {
			m["PYTHONPATH"] = extraPythonPath
		}
	}
	for name, path := range inputs {
		m[InputEnv(name)] = path
	}
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// InputEnv is the environment variable that holds an input's path:
// HANGAR_INPUT_ and the name in upper case with every character other
// than a letter or digit replaced by "_" ("train-data" → HANGAR_INPUT_TRAIN_DATA).
func InputEnv(name string) string {
	var b strings.Builder
	b.WriteString("HANGAR_INPUT_")
	for _, r := range strings.ToUpper(name) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// lookPath finds name the way the attempt's shell would: a name with a
// slash is taken as is (relative to dir), otherwise it is searched in the
// attempt's PATH, not the agent's.
func lookPath(name, pathEnv, dir string) (string, error) {
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		if err := executable(name); err != nil {
			return "", err
		}
		return name, nil
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		p := filepath.Join(d, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH %q", name, pathEnv)
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s: not an executable file", path)
	}
	return nil
}
