package snapshot

import (
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestIgnorePatternMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		path    string
		isDir   bool
		want    bool
	}{
		{"*.pyc", "a.pyc", false, true},
		{"*.pyc", "deep/er/a.pyc", false, true},
		{"*.pyc", "a.py", false, false},
		{"build/", "build", true, true},
		{"build/", "build", false, false},
		{"build/", "src/build", true, true},
		{"build", "src/build", false, true},
		{"/build", "src/build", true, false},
		{"/build", "build", true, true},
		{"docs/gen", "docs/gen", true, true},
		{"docs/gen", "sub/docs/gen", true, false}, // an inner slash anchors
		{"docs/*.html", "docs/a.html", false, true},
		{"docs/*.html", "docs/ppc/a.html", false, false},
		{"file?.txt", "file1.txt", false, true},
		{"file?.txt", "file10.txt", false, false},
		{"c++", "c++", false, true},
		{"foo(bar)", "foo(bar)", false, true},
		{"[!a]b", "cb", false, true},
		{"[!a]b", "ab", false, false},
		{"[^a]b", "cb", false, true},
		{"**/cache", "cache", true, true},
		{"**/cache", "x/y/cache", true, true},
		{"a/**/b", "a/b", false, true},
		{"a/**/b", "a/x/y/b", false, true},
		{"a/**/b", "x/a/b", false, false},
		{"a/**", "a", true, false},
		{"a/**", "a/x/y", false, true},
		{"a/**/**/b", "a/b", false, true},
		{`\#hash`, "#hash", false, true},
		{`\!bang`, "!bang", false, true},
		{"trailing   ", "trailing", false, true},
		{`space\ `, "space ", false, true},
		{"crlf\r", "crlf", false, true},
		{"a**b", "axxb", false, true},
		{"unclosed[", "unclosed[", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.path, func(t *testing.T) {
			t.Parallel()
			list := &ignoreList{patterns: parseIgnore([]byte(tt.pattern))}
			if got := ignored([]*ignoreList{list}, tt.path, tt.isDir); got != tt.want {
				t.Errorf("pattern %q, path %q (dir %v): ignored = %v, want %v", tt.pattern, tt.path, tt.isDir, got, tt.want)
			}
		})
	}
}

func TestParseIgnoreSkipsNonPatterns(t *testing.T) {
	t.Parallel()
	got := parseIgnore([]byte("\xef\xbb\xbf# comment\n\n   \n/\n!\nreal\n"))
	if len(got) != 1 || got[0].base != "real" {
		t.Errorf("parseIgnore = %+v, want just \"real\"", got)
	}
}

func TestWriteIgnoreRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		tree tree
		want []string
	}{{
		name: "pyc anywhere",
		tree: tree{".gitignore": "*.pyc\n", "a.py": "", "a.pyc": "", "sub/b.pyc": "", "sub/b.py": ""},
		want: []string{".gitignore", "a.py", "sub/b.py"},
	}, {
		name: "directory pattern matches directories only",
		tree: tree{".gitignore": "build/\n", "build/x": "", "sub/build/y": "", "other/build": "a file", "build2": ""},
		want: []string{".gitignore", "build2", "other/build"},
	}, {
		name: "negation",
		tree: tree{".gitignore": "*.log\n!keep.log\n", "a.log": "", "keep.log": "", "sub/keep.log": "", "sub/b.log": ""},
		want: []string{".gitignore", "keep.log", "sub/keep.log"},
	}, {
		name: "no re-include inside an excluded directory",
		tree: tree{".gitignore": "data/\n!data/keep.txt\n", "data/keep.txt": "", "data/big.bin": ""},
		want: []string{".gitignore"},
	}, {
		name: "re-include when only the contents are excluded",
		tree: tree{".gitignore": "data/*\n!data/keep.txt\n", "data/keep.txt": "", "data/big.bin": ""},
		want: []string{".gitignore", "data/keep.txt"},
	}, {
		name: "nested ignore file is relative to its directory",
		tree: tree{
			"sub/.gitignore":         "/only-here.txt\n*.tmp\n",
			"only-here.txt":          "",
			"sub/only-here.txt":      "",
			"sub/deep/only-here.txt": "",
			"x.tmp":                  "",
			"sub/deep/x.tmp":         "",
		},
		want: []string{"only-here.txt", "sub/.gitignore", "sub/deep/only-here.txt", "x.tmp"},
	}, {
		name: "nested negation overrides the parent",
		tree: tree{".gitignore": "*.csv\n", "keep.csv": "", "sub/.gitignore": "!keep.csv\n", "sub/keep.csv": "", "sub/drop.csv": ""},
		want: []string{".gitignore", "sub/.gitignore", "sub/keep.csv"},
	}, {
		name: "ignore file in an excluded directory is not read",
		tree: tree{".gitignore": "vendor/\n", "vendor/.gitignore": "!*\n", "vendor/x.go": ""},
		want: []string{".gitignore"},
	}, {
		name: "hangarignore adds to gitignore",
		tree: tree{".gitignore": "*.pyc\n", ".hangarignore": "data/\n", "a.pyc": "", "data/x": "", "train.py": ""},
		want: []string{".gitignore", ".hangarignore", "train.py"},
	}, {
		name: "hangarignore re-includes what gitignore excludes",
		tree: tree{".gitignore": "*.bin\n", ".hangarignore": "!model.bin\n", "model.bin": "", "other.bin": ""},
		want: []string{".gitignore", ".hangarignore", "model.bin"},
	}, {
		name: "amlignore",
		tree: tree{".amlignore": "outputs/\nlogs/\n", "outputs/m.pt": "", "logs/x": "", "train.py": ""},
		want: []string{".amlignore", "train.py"},
	}, {
		name: "amlignore and hangarignore in a subdirectory",
		tree: tree{"sub/.amlignore": "a\n", "sub/.hangarignore": "b\n", "sub/a": "", "sub/b": "", "sub/c": "", "a": "", "b": ""},
		want: []string{"a", "b", "sub/.amlignore", "sub/.hangarignore", "sub/c"},
	}, {
		name: "an ignore file can exclude itself",
		tree: tree{".hangarignore": ".hangarignore\n", "x": ""},
		want: []string{"x"},
	}, {
		name: ".git is always skipped",
		tree: tree{".git/config": "", ".git/objects/ab/cd": "", "sub/.git": "gitdir: ../.git/modules/sub", "sub/x": "", ".gitmodules": ""},
		want: []string{".gitmodules", "sub/x"},
	}, {
		name: "double star",
		tree: tree{".gitignore": "**/cache/\na/**/z.txt\n", "cache/x": "", "p/q/cache/y": "", "a/z.txt": "", "a/b/c/z.txt": "", "b/a/z.txt": ""},
		want: []string{".gitignore", "b/a/z.txt"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			makeTree(t, dir, tt.tree)
			got := archiveNames(t, writeSnapshot(t, dir, Limits{}))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("archived files (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWriteMatchesGit compares the files Write includes with the files git
// considers untracked and not ignored, on a tree with many kinds of
// pattern. Only .gitignore files are used, since git reads no others.
func TestWriteMatchesGit(t *testing.T) {
	t.Parallel()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	home := t.TempDir()
	makeTree(t, dir, tree{
		".gitignore": strings.Join([]string{
			"# build outputs", "*.py[co]", "__pycache__/", "/dist", "build/", "*.log", "!important.log",
			"docs/_build", "data/*", "!data/README.md", "**/tmp/**", "notes?.txt", "!notes1.txt",
			`\#weird`, "trailing.txt   ", "a/**/deep.bin", "*.tar.gz", "!keep/*.tar.gz", "node_modules",
			"[!m]odel.ckpt", "c++.o", "/root-only.txt", "cfg/*.local.yaml", "space\\ ",
		}, "\n"),
		"train.py": "", "train.pyc": "", "pkg/__pycache__/m.pyc": "", "pkg/m.py": "", "pkg/m.pyo": "",
		"dist/x.whl": "", "pkg/dist/keep.txt": "", "build/a": "", "pkg/build/b": "", "build.txt": "",
		"run.log": "", "important.log": "", "pkg/important.log": "", "pkg/other.log": "",
		"docs/_build/index.html": "", "docs/index.md": "", "x/docs/_build/keep.html": "",
		"data/big.bin": "", "data/README.md": "", "data/sub/x": "", "pkg/data/y": "",
		"tmp/a": "", "x/tmp/b": "", "x/tmp/c/d": "", "tmp.txt": "",
		"notes1.txt": "", "notes2.txt": "", "notes10.txt": "", "#weird": "", "trailing.txt": "",
		"a/deep.bin": "", "a/b/c/deep.bin": "", "z/a/deep.bin": "",
		"out.tar.gz": "", "keep/out.tar.gz": "", "keep/sub/out.tar.gz": "",
		"node_modules/lib/index.js": "", "web/node_modules/x.js": "",
		"model.ckpt": "", "xodel.ckpt": "", "c++.o": "", "root-only.txt": "", "sub/root-only.txt": "",
		"cfg/app.local.yaml": "", "cfg/app.yaml": "", "cfg/x/app.local.yaml": "", "space ": "", "space": "",
		"nested/.gitignore": "*.csv\n!keep.csv\n/anchored.txt\nsub/\n",
		"nested/a.csv":      "", "nested/keep.csv": "", "nested/anchored.txt": "", "nested/deeper/anchored.txt": "",
		"nested/deeper/b.csv": "", "nested/sub/x": "", "nested/deeper/sub/y": "", "nested/subfile": "",
		"nested/deeper/.gitignore": "!b.csv\n", "a.csv": "",
		"link": "-> train.py", "pkg/link.log": "-> ../run.log",
	})

	// Keep the user's and the system's git configuration (a global
	// excludesFile) out of it.
	git := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(gitPath, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	git("init", "-q") // also checks that .git/ stays out of the snapshot
	out := git("ls-files", "-z", "--others", "--exclude-standard")
	want := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	sort.Strings(want)

	got := archiveNames(t, writeSnapshot(t, dir, Limits{}))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files in snapshot differ from git's untracked files (-git +snapshot):\n%s", diff)
	}
}
