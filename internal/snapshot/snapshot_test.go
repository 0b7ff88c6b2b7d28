package snapshot

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var sampleTree = tree{
	".hangarignore":        "outputs/\n",
	"train.py":             "import torch\n",
	"run.sh*":              "#!/bin/sh\npython train.py\n",
	"pkg/__init__.py":      "",
	"pkg/model.py":         "class Model: pass\n",
	"pkg/data/empty/":      "",
	"configs/base.yaml":    "lr: 0.1\n",
	"configs/current.yaml": "-> base.yaml",
	"latest":               "-> configs",
	"outputs/model.pt":     "weights",
}

func sha(b []byte) [32]byte { return sha256.Sum256(b) }

func TestWriteDeterministic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	makeTree(t, dir, sampleTree)
	first := writeSnapshot(t, dir, Limits{})
	second := writeSnapshot(t, dir, Limits{})
	if sha(first) != sha(second) {
		t.Fatal("two snapshots of the same tree differ")
	}

	// The same tree made elsewhere, at another time, in another order.
	other := t.TempDir()
	makeTree(t, other, sampleTree)
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(other, "train.py"), old, old); err != nil {
		t.Fatal(err)
	}
	if sha(writeSnapshot(t, other, Limits{})) != sha(first) {
		t.Error("snapshot depends on where or when the tree was made")
	}

	// Content and executable bits do change it.
	if err := os.Chmod(filepath.Join(other, "train.py"), 0o755); err != nil {
		t.Fatal(err)
	}
	if sha(writeSnapshot(t, other, Limits{})) == sha(first) {
		t.Error("snapshot ignores the executable bit")
	}
	if err := os.WriteFile(filepath.Join(dir, "train.py"), []byte("import jax\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if sha(writeSnapshot(t, dir, Limits{})) == sha(first) {
		t.Error("snapshot ignores file content")
	}
}

func TestWriteHeaders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	makeTree(t, dir, sampleTree)
	if err := os.Chmod(filepath.Join(dir, "train.py"), 0o600); err != nil {
		t.Fatal(err)
	}
	var got []string
	var names []string
	for _, h := range archiveHeaders(t, writeSnapshot(t, dir, Limits{})) {
		names = append(names, h.Name)
		if !h.ModTime.Equal(time.Unix(0, 0)) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %v uid %d gid %d uname %q gname %q, want all zero", h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		line := fmt.Sprintf("%c %o %s", h.Typeflag, h.Mode, h.Name)
		if h.Linkname != "" {
			line += " -> " + h.Linkname
		}
		got = append(got, line)
	}
	want := []string{
		"0 644 .hangarignore",
		"5 755 configs/",
		"0 644 configs/base.yaml",
		"2 777 configs/current.yaml -> base.yaml",
		"2 777 latest -> configs",
		"5 755 pkg/",
		"0 644 pkg/__init__.py",
		"5 755 pkg/data/",
		"5 755 pkg/data/empty/",
		"0 644 pkg/model.py",
		"0 755 run.sh",
		"0 644 train.py",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
}

func TestWriteInfo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	makeTree(t, dir, tree{"a": "12345", "b/c": "678", "l": "-> a", "empty/": ""})
	info, err := Write(dir, Limits{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Info{Files: 3, Bytes: 8}); info != want {
		t.Errorf("Info = %+v, want %+v", info, want)
	}
}

func TestWriteLimits(t *testing.T) {
	t.Parallel()
	tr := tree{
		"data/a.bin":  strings.Repeat("x", 3000),
		"data/b.bin":  strings.Repeat("x", 3000),
		"data/c.bin":  strings.Repeat("x", 3000),
		"ckpt/m.pt":   strings.Repeat("x", 2000),
		"train.py":    "print(1)\n",
		".gitignore":  "*.pyc\n",
		"ignored.pyc": strings.Repeat("x", 1<<20),
	}
	tests := []struct {
		name    string
		lim     Limits
		wantErr string // with DIR for the directory; "" for success
	}{
		{"within", Limits{MaxFiles: 6, MaxBytes: 11015}, ""},
		{"unlimited", Limits{MaxFiles: -1, MaxBytes: -1}, ""},
		{"defaults", Limits{}, ""},
		{
			"too many files", Limits{MaxFiles: 5},
			"snapshot of DIR has 6 files (limit 5); largest: data/ (3 files), .gitignore (1 file), ckpt/ (1 file); exclude files with .hangarignore or .amlignore",
		},
		{
			"too big", Limits{MaxBytes: 10 << 10},
			"snapshot of DIR is 10.8 KB (limit 10.0 KB); largest: data/ (8.8 KB), ckpt/ (2.0 KB), train.py (9 B); exclude files with .hangarignore or .amlignore",
		},
		{
			"both", Limits{MaxFiles: 2, MaxBytes: 1000},
			"snapshot of DIR has 6 files (limit 2) and is 10.8 KB (limit 1000 B); largest: data/ (8.8 KB), ckpt/ (2.0 KB), train.py (9 B); exclude files with .hangarignore or .amlignore",
		},
	}
	dir := t.TempDir()
	makeTree(t, dir, tr)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			info, err := Write(dir, tt.lim, &buf)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if want := (Info{Files: 6, Bytes: 11015}); info != want {
					t.Errorf("Info = %+v, want %+v", info, want)
				}
				return
			}
			var le *LimitError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want *LimitError", err)
			}
			if want := strings.ReplaceAll(tt.wantErr, "DIR", dir); err.Error() != want {
				t.Errorf("message:\n got %s\nwant %s", err, want)
			}
			if le.Files != 6 || le.Bytes != 11015 {
				t.Errorf("LimitError counts = %d files, %d bytes; want 6, 11015", le.Files, le.Bytes)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes despite the limit", buf.Len())
			}
		})
	}
}

func TestLimitErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  LimitError
		want string
	}{{
		LimitError{Dir: "./proj", Files: 2345, Bytes: 1, Limit: DefaultLimits},
		"snapshot of ./proj has 2,345 files (limit 2,000); exclude files with .hangarignore or .amlignore",
	}, {
		LimitError{Dir: "./proj", Files: 10, Bytes: 412_300_000 + 32_000, Limit: DefaultLimits,
			Largest: []Usage{{Path: "data/", Files: 3, Bytes: 400 << 20}}},
		"snapshot of ./proj is 393.2 MB (limit 300.0 MB); largest: data/ (400.0 MB); exclude files with .hangarignore or .amlignore",
	}, {
		LimitError{Dir: "/src", Files: 1, Bytes: 5 << 30, Limit: DefaultLimits},
		"snapshot of /src is 5.0 GB (limit 300.0 MB); exclude files with .hangarignore or .amlignore",
	}}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

func TestFormatCount(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 2345: "2,345", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := formatCount(n); got != want {
			t.Errorf("formatCount(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestWriteSymlinks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		tree    tree
		want    []string // link headers "name -> target"
		wantErr string   // substring, with DIR for the directory
	}{{
		name: "inside",
		tree: tree{"a/b/c.txt": "", "a/link": "-> b/c.txt", "up": "-> a/b/../b", "self": "-> .", "dangling": "-> not/yet"},
		want: []string{"a/link -> b/c.txt", "dangling -> not/yet", "self -> .", "up -> a/b/../b"},
	}, {
		name: "absolute inside is made relative",
		tree: tree{"data/x": "", "sub/abs": "-> DIR/data/x", "top": "-> DIR"},
		want: []string{"sub/abs -> ../data/x", "top -> ."},
	}, {
		name:    "absolute outside",
		tree:    tree{"venv/bin/python": "-> /usr/bin/python3"},
		wantErr: "snapshot of DIR: symlink venv/bin/python -> /usr/bin/python3 leads outside the directory; exclude it with .hangarignore or .amlignore",
	}, {
		name:    "relative outside",
		tree:    tree{"a/up": "-> ../../etc/passwd", "b/ok": "-> ../a", "c": "-> .."},
		wantErr: "snapshot of DIR: 2 symlinks lead outside the directory: a/up -> ../../etc/passwd, c -> ..; exclude them",
	}, {
		name:    "outside through another symlink",
		tree:    tree{"a/b/": "", "a/l": "-> ..", "sneaky": "-> a/l/.."},
		wantErr: "symlink sneaky -> a/l/.. leads outside the directory",
	}, {
		name:    "ignored symlink outside is fine",
		tree:    tree{".hangarignore": "venv/\n", "venv/bin/python": "-> /usr/bin/python3", "x": "-> /etc"},
		wantErr: "symlink x -> /etc leads outside",
	}, {
		name: "loop does not escape",
		tree: tree{"a": "-> b", "b": "-> a"},
		want: []string{"a -> b", "b -> a"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tr := tree{}
			for k, v := range tt.tree {
				tr[k] = strings.ReplaceAll(v, "DIR", dir)
			}
			makeTree(t, dir, tr)
			var buf bytes.Buffer
			_, err := Write(dir, Limits{}, &buf)
			if tt.wantErr != "" {
				want := strings.ReplaceAll(tt.wantErr, "DIR", dir)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want one containing %q", err, want)
				}
				if buf.Len() != 0 {
					t.Errorf("wrote %d bytes despite the error", buf.Len())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, h := range archiveHeaders(t, buf.Bytes()) {
				if h.Typeflag == tar.TypeSymlink {
					got = append(got, h.Name+" -> "+h.Linkname)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("symlinks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteMissingDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nope")
	_, err := Write(dir, Limits{}, io.Discard)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "snapshot of "+dir) {
		t.Errorf("err = %v, want not-exist naming %s", err, dir)
	}
}

func TestWriteExtractRoundTrip(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	makeTree(t, src, sampleTree)
	data := writeSnapshot(t, src, Limits{})
	dst := filepath.Join(t.TempDir(), "run")
	if err := Extract(bytes.NewReader(data), dst); err != nil {
		t.Fatal(err)
	}
	want := readTree(t, src)
	delete(want, "outputs/")
	delete(want, "outputs/model.pt")
	if diff := cmp.Diff(want, readTree(t, dst)); diff != "" {
		t.Errorf("extracted tree (-want +got):\n%s", diff)
	}
	// A second snapshot of the extracted tree is the same snapshot.
	if sha(writeSnapshot(t, dst, Limits{})) != sha(data) {
		t.Error("snapshot of the extracted tree differs from the original")
	}
}

func BenchmarkWrite(b *testing.B) {
	dir := b.TempDir()
	tr := tree{".gitignore": "*.pyc\n__pycache__/\n"}
	for i := range 500 {
		tr[fmt.Sprintf("pkg%02d/mod%03d.py", i%20, i)] = strings.Repeat(fmt.Sprintf("x = %d\n", i), 50)
	}
	makeTree(b, dir, tr)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Write(dir, Limits{}, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
