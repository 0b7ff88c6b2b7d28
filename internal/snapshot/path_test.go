package snapshot

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// runFiles looks like a run's files on the server: outputs/ and logs/.
var runFiles = tree{
	"outputs/model.pkl":          "pickle",
	"outputs/model/weights.bin":  "weights",
	"outputs/model/conf/a.json*": "{}",
	"outputs/model/.gitignore":   "*.bin\n",
	"outputs/model/link.json":    "-> conf/a.json",
	"outputs/model/empty/":       "",
	"outputs/dangling":           "-> nope",
	"outputs/out.pkl":            "-> ../logs/secret",
	"outputs/dirlink":            "-> model",
	"outputs/bad/x":              "-> ../../logs/secret",
	"logs/secret":                "not for models",
}

func TestWritePath(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	makeTree(t, src, runFiles)
	tests := []struct {
		name string
		want tree // the extracted archive
	}{
		{"outputs/model.pkl", tree{"model.pkl": "pickle"}},
		// A folder keeps its name; ignore files do not apply; a symlink to
		// a file inside is archived as the file.
		{"outputs/model", tree{
			"model/":             "",
			"model/weights.bin":  "weights",
			"model/conf/":        "",
			"model/conf/a.json*": "{}",
			"model/.gitignore":   "*.bin\n",
			"model/link.json*":   "{}", // the file it links to is executable
			"model/empty/":       "",
		}},
		{"logs/secret", tree{"secret": "not for models"}},
		{"logs", tree{"logs/": "", "logs/secret": "not for models"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			info, err := WritePath(src, tc.name, Limits{}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			dst := t.TempDir()
			if err := Extract(bytes.NewReader(buf.Bytes()), dst); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, readTree(t, dst)); d != "" {
				t.Errorf("extracted (-want +got):\n%s", d)
			}
			files, size, err := ListArchive(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != info.Files || size != info.Bytes {
				t.Errorf("ListArchive = %d files, %d bytes; WritePath said %+v", len(files), size, info)
			}
			var again bytes.Buffer
			if _, err := WritePath(src, tc.name, Limits{}, &again); err != nil || !bytes.Equal(again.Bytes(), buf.Bytes()) {
				t.Errorf("a second pack differs (err %v)", err)
			}
		})
	}
}

func TestWritePathRefuses(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	makeTree(t, src, runFiles)
	tests := []struct {
		name     string
		fragment string
	}{
		{"outputs/nope.pkl", "no such file"},
		{"outputs/dangling", "symlink dangling -> nope is dangling or leads outside"},
		{"outputs/out.pkl", "symlink out.pkl -> ../logs/secret is dangling or leads outside"},
		{"outputs/dirlink", "leads to a directory"},
		{"outputs/bad", "symlink bad/x -> ../../logs/secret"},
		{"../etc/passwd", "not a path inside"},
		{"/etc/passwd", "not a path inside"},
		{".", "not a path inside"},
		{"outputs/../../x", "not a path inside"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := WritePath(src, tc.name, Limits{}, &buf)
			if err == nil || !strings.Contains(err.Error(), tc.fragment) {
				t.Fatalf("err = %v, want one containing %q", err, tc.fragment)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
	_, err := WritePath(src, "outputs/nope", Limits{}, io.Discard)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing path: err = %v, want fs.ErrNotExist", err)
	}
	_, err = WritePath(filepath.Join(src, "outputs"), "model", Limits{MaxFiles: 2}, io.Discard)
	var le *LimitError
	if !errors.As(err, &le) || le.Files != 4 || le.Dir != "model" || len(le.Largest) == 0 || !strings.HasPrefix(le.Largest[0].Path, "model/") {
		t.Errorf("over the limit: err = %#v", err)
	}
}

func TestListArchiveRefuses(t *testing.T) {
	t.Parallel()
	for name, data := range map[string][]byte{
		"not gzip":  []byte("plain text"),
		"absolute":  gzipBytes(t, rawTar(t, tarEntry{name: "/etc/passwd", body: "x"})),
		"dot-dot":   gzipBytes(t, rawTar(t, tarEntry{name: "a/../../x", body: "x"})),
		"hard link": gzipBytes(t, rawTar(t, tarEntry{name: "a", typ: '1', linkname: "b"})),
		"dot file":  gzipBytes(t, rawTar(t, tarEntry{name: ".", body: "x"})),
	} {
		if _, _, err := ListArchive(bytes.NewReader(data)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzListArchive checks ListArchive never panics and only lists names
// Extract would accept.
func FuzzListArchive(f *testing.F) {
	src := f.TempDir()
	makeTree(f, src, tree{"m/a.json": "{}", "m/w/b.bin": "bb"})
	var buf bytes.Buffer
	if _, err := WritePath(src, "m", Limits{}, &buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(gzipBytes(f, rawTar(f, tarEntry{name: "../x", body: "x"})))
	f.Add([]byte("plain"))
	f.Fuzz(func(t *testing.T, data []byte) {
		files, size, err := ListArchive(bytes.NewReader(data))
		if err != nil {
			return
		}
		if size < 0 {
			t.Fatalf("size %d", size)
		}
		for _, name := range files {
			if _, err := cleanName(name); err != nil || name == "." {
				t.Fatalf("listed %q", name)
			}
		}
	})
}
