package snapshot

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var testExtractOptions = extractOptions{maxBytes: 1 << 20, maxEntries: 100}

// attackCases are archives Extract must refuse. They seed FuzzExtract.
var attackCases = []struct {
	name    string
	entries []tarEntry
	wantErr string
}{
	{"absolute path", []tarEntry{{name: "/tmp/evil", body: "x"}}, "absolute path"},
	{"dot dot", []tarEntry{{name: "../outside/secret", body: "pwned"}}, `".." in path`},
	{"inner dot dot", []tarEntry{{name: "a/../../outside/secret", body: "pwned"}}, `".." in path`},
	{"harmless dot dot is refused too", []tarEntry{{name: "a/../b", body: "x"}}, `".." in path`},
	{"symlink absolute", []tarEntry{{name: "l", typ: tar.TypeSymlink, linkname: "/etc"}}, "symlink to absolute path"},
	{"symlink up", []tarEntry{{name: "l", typ: tar.TypeSymlink, linkname: "../outside"}}, "leads outside"},
	{"symlink up from nested", []tarEntry{{name: "a/b/l", typ: tar.TypeSymlink, linkname: "../../../outside/secret"}}, "leads outside"},
	{"empty symlink", []tarEntry{{name: "l", typ: tar.TypeSymlink}}, "empty target"},
	{
		"write through a chained symlink",
		[]tarEntry{
			{name: "a/", typ: tar.TypeDir},
			{name: "a/l", typ: tar.TypeSymlink, linkname: ".."},   // the root: fine
			{name: "b", typ: tar.TypeSymlink, linkname: "a/l/.."}, // lexically "a", really the parent
			{name: "b/outside/secret", body: "pwned"},
		},
		"escapes",
	},
	{
		"chained symlink left behind",
		[]tarEntry{
			{name: "a/", typ: tar.TypeDir},
			{name: "a/l", typ: tar.TypeSymlink, linkname: ".."},
			{name: "b", typ: tar.TypeSymlink, linkname: "a/l/../outside"},
		},
		"symlinks lead outside the directory: b -> a/l/../outside",
	},
	{
		"symlink made to escape by a later entry",
		[]tarEntry{
			{name: "b", typ: tar.TypeSymlink, linkname: "a/x/../../outside"}, // a/x does not exist yet
			{name: "a/x", typ: tar.TypeSymlink, linkname: "."},
		},
		"symlinks lead outside the directory: b -> a/x/../../outside",
	},
	{"hard link", []tarEntry{{name: "h", typ: tar.TypeLink, linkname: "../outside/secret"}}, "unsupported type hard link"},
	{"char device", []tarEntry{{name: "null", typ: tar.TypeChar}}, "unsupported type character device"},
	{"block device", []tarEntry{{name: "sda", typ: tar.TypeBlock}}, "unsupported type block device"},
	{"fifo", []tarEntry{{name: "p", typ: tar.TypeFifo}}, "unsupported type FIFO"},
	{"duplicate file", []tarEntry{{name: "x", body: "1"}, {name: "x", body: "2"}}, "file exists"},
	{"symlink over file", []tarEntry{{name: "x", body: "1"}, {name: "x", typ: tar.TypeSymlink, linkname: "y"}}, "file exists"},
	{"file under file", []tarEntry{{name: "x", body: "1"}, {name: "x/y", body: "2"}}, "mkdirat x: file exists"},
	{"file named as root", []tarEntry{{name: ".", body: ""}}, "names the target directory"},
	{"too big", []tarEntry{{name: "big", body: strings.Repeat("x", 1<<20+1)}}, "archive holds more than 1.0 MB"},
}

// setupOutside makes base/outside/secret and returns base/dst.
func setupOutside(t testing.TB, base string) string {
	t.Helper()
	makeTree(t, base, tree{"outside/secret": "secret"})
	return filepath.Join(base, "dst")
}

// checkOutside fails if anything under base other than dst changed.
func checkOutside(t testing.TB, base string) {
	t.Helper()
	got := readTree(t, base)
	for k := range got {
		if k == "dst/" || strings.HasPrefix(k, "dst/") {
			delete(got, k)
		}
	}
	want := tree{"outside/": "", "outside/secret": "secret"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("files outside the target changed (-want +got):\n%s", diff)
	}
}

func TestExtractRefuses(t *testing.T) {
	t.Parallel()
	for _, tt := range attackCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			dst := setupOutside(t, base)
			data := gzipBytes(t, rawTar(t, tt.entries...))
			err := extract(bytes.NewReader(data), dst, testExtractOptions)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "extract to "+dst) {
				t.Errorf("err = %v, want it to name %s", err, dst)
			}
			checkOutside(t, base)
			checkLinksInside(t, dst)
		})
	}
}

func TestExtractRefusesMalformedStreams(t *testing.T) {
	t.Parallel()
	valid := gzipBytes(t, rawTar(t, tarEntry{name: "a", body: "hello"}))
	badCRC := bytes.Clone(valid)
	badCRC[len(badCRC)-8] ^= 0xff
	var trailing bytes.Buffer
	trailing.Write(rawTar(t, tarEntry{name: "a", body: "hello"}))
	trailing.Write(bytes.Repeat([]byte{0}, maxTrailing+1))

	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"not gzip", []byte("PK\x03\x04 a zip file"), "not a gzip stream"},
		{"empty", nil, "not a gzip stream"},
		{"bad checksum", badCRC, "checksum"},
		{"truncated", valid[:len(valid)-10], "unexpected EOF"},
		{"trailing data", gzipBytes(t, trailing.Bytes()), "unexpected data after the end of the archive"},
		{"not tar", gzipBytes(t, []byte(strings.Repeat("not a tar header ", 64))), "read archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Extract(bytes.NewReader(tt.data), t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestExtractEntryLimit(t *testing.T) {
	t.Parallel()
	data := gzipBytes(t, rawTar(t, tarEntry{name: "a/", typ: tar.TypeDir}, tarEntry{name: "a/b"}, tarEntry{name: "c"}))
	err := extract(bytes.NewReader(data), t.TempDir(), extractOptions{maxBytes: 1 << 20, maxEntries: 2})
	if err == nil || !strings.Contains(err.Error(), "archive has more than 2 entries") {
		t.Errorf("err = %v, want the entry limit", err)
	}
}

func TestExtractAcceptsOtherTars(t *testing.T) {
	t.Parallel()
	// Archives from other tools: "./" prefixes, a root entry, a PAX global
	// header, entries without their directories.
	data := gzipBytes(t, rawTar(t,
		tarEntry{name: "pax_global_header", typ: tar.TypeXGlobalHeader},
		tarEntry{name: "./", typ: tar.TypeDir},
		tarEntry{name: "./src/main.py", body: "print()\n", mode: 0o664},
		tarEntry{name: "deep/er/run.sh", body: "#!/bin/sh\n", mode: 0o775},
		tarEntry{name: "src/", typ: tar.TypeDir},
	))
	dst := t.TempDir()
	if err := Extract(bytes.NewReader(data), dst); err != nil {
		t.Fatal(err)
	}
	want := tree{"src/": "", "src/main.py": "print()\n", "deep/": "", "deep/er/": "", "deep/er/run.sh*": "#!/bin/sh\n"}
	if diff := cmp.Diff(want, readTree(t, dst)); diff != "" {
		t.Errorf("extracted (-want +got):\n%s", diff)
	}
}

func TestExtractDoesNotWriteThroughExistingSymlink(t *testing.T) {
	t.Parallel()
	data := gzipBytes(t, rawTar(t, tarEntry{name: "out.txt", body: "new"}))
	for _, merge := range []bool{false, true} {
		base := t.TempDir()
		dst := setupOutside(t, base)
		// A job could leave a symlink pointing anywhere in its outputs.
		makeTree(t, dst, tree{"out.txt": "-> ../outside/secret"})
		var err error
		if merge {
			err = MergeTree(bytes.NewReader(data), dst)
		} else {
			err = Extract(bytes.NewReader(data), dst)
		}
		checkOutside(t, base)
		if !merge {
			if err == nil || !strings.Contains(err.Error(), "file exists") {
				t.Errorf("Extract err = %v, want file exists", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tree{"out.txt": "new"}, readTree(t, dst)); diff != "" {
			t.Errorf("MergeTree result (-want +got):\n%s", diff)
		}
	}
}

func TestMergeTree(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	makeTree(t, src, tree{
		"metrics.json":      `{"loss": 0.1}`,
		"ckpt/step-2.pt":    "weights 2",
		"bin/eval*":         "#!/bin/sh\n",
		"link-is-skipped":   "-> metrics.json",
		"empty-is-skipped/": "",
	})
	mtime := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(src, "ckpt/step-2.pt"), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := WriteTree(src, &buf, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("WriteTree n = %d, want 3", n)
	}

	dst := t.TempDir()
	makeTree(t, dst, tree{
		"metrics.json":   `{"loss": 0.5}`,
		"ckpt/step-1.pt": "weights 1",
		"stdout.log":     "kept",
	})
	if err := MergeTree(bytes.NewReader(buf.Bytes()), dst); err != nil {
		t.Fatal(err)
	}
	want := tree{
		"metrics.json":   `{"loss": 0.1}`,
		"ckpt/":          "",
		"ckpt/step-1.pt": "weights 1",
		"ckpt/step-2.pt": "weights 2",
		"bin/":           "",
		"bin/eval*":      "#!/bin/sh\n",
		"stdout.log":     "kept",
	}
	if diff := cmp.Diff(want, readTree(t, dst)); diff != "" {
		t.Errorf("merged tree (-want +got):\n%s", diff)
	}
	fi, err := os.Stat(filepath.Join(dst, "ckpt/step-2.pt"))
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(mtime) {
		t.Errorf("merged mtime = %v, want %v", fi.ModTime(), mtime)
	}

	// Merging again is harmless.
	if err := MergeTree(bytes.NewReader(buf.Bytes()), dst); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, readTree(t, dst)); diff != "" {
		t.Errorf("tree after a second merge (-want +got):\n%s", diff)
	}
}

func TestMergeTreeRefusesToReplaceDirectory(t *testing.T) {
	t.Parallel()
	dst := t.TempDir()
	makeTree(t, dst, tree{"ckpt/a": "x"})
	data := gzipBytes(t, rawTar(t, tarEntry{name: "ckpt", body: "a file"}))
	if err := MergeTree(bytes.NewReader(data), dst); err == nil {
		t.Error("MergeTree replaced a directory with a file")
	}
	if diff := cmp.Diff(tree{"ckpt/": "", "ckpt/a": "x"}, readTree(t, dst)); diff != "" {
		t.Errorf("tree after refused merge (-want +got):\n%s", diff)
	}
}

func TestWriteTreeSince(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	makeTree(t, dir, tree{"old.txt": "o", "same.txt": "s", "new/new.txt": "n", "link": "-> new/new.txt"})
	since := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for name, mt := range map[string]time.Time{
		"old.txt":     since.Add(-time.Second),
		"same.txt":    since,
		"new/new.txt": since.Add(time.Hour),
	} {
		if err := os.Chtimes(filepath.Join(dir, name), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		since time.Time
		want  []string
	}{
		{"zero means all", time.Time{}, []string{"new/new.txt", "old.txt", "same.txt"}},
		{"not before since", since, []string{"new/new.txt", "same.txt"}},
		{"nothing new", since.Add(2 * time.Hour), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			n, err := WriteTree(dir, &buf, tt.since)
			if err != nil {
				t.Fatal(err)
			}
			got := archiveNames(t, buf.Bytes())
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("archived (-want +got):\n%s", diff)
			}
			if n != len(tt.want) {
				t.Errorf("n = %d, want %d", n, len(tt.want))
			}
		})
	}
}

// FuzzExtract checks that no archive makes Extract or MergeTree write
// outside the target directory or leave a symlink that leads outside it.
// The fuzzer mutates the uncompressed tar; the harness compresses it.
func FuzzExtract(f *testing.F) {
	for _, tt := range attackCases {
		if tt.name == "too big" {
			continue // a megabyte per input slows the fuzzer to a crawl
		}
		f.Add(rawTar(f, tt.entries...))
	}
	f.Add(rawTar(f,
		tarEntry{name: "a/", typ: tar.TypeDir},
		tarEntry{name: "a/b", body: "hello"},
		tarEntry{name: "l", typ: tar.TypeSymlink, linkname: "a/b"},
		tarEntry{name: "m", typ: tar.TypeSymlink, linkname: "a"},
		tarEntry{name: "m/c", body: "via link"},
	))
	src := f.TempDir()
	makeTree(f, src, sampleTree)
	var snap bytes.Buffer
	zr := must(gzipReader(writeSnapshot(f, src, Limits{})))
	io.Copy(&snap, zr)
	f.Add(snap.Bytes())

	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		dst := setupOutside(t, base)
		gz := gzipBytes(t, data)
		extract(bytes.NewReader(gz), dst, testExtractOptions)
		checkOutside(t, base)
		checkLinksInside(t, dst)
		opt := testExtractOptions
		opt.replace = true
		extract(bytes.NewReader(gz), dst, opt)
		checkOutside(t, base)
		checkLinksInside(t, dst)
		for k := range readTree(t, dst) {
			if strings.Contains(k, ".hangar-tmp-") {
				t.Fatalf("MergeTree left a temporary file: %s", k)
			}
		}
	})
}

// checkLinksInside fails if a symlink under dir resolves outside it.
func checkLinksInside(t testing.TB, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); err != nil {
		return
	}
	realDir := must(filepath.EvalSymlinks(dir))
	root := must(os.OpenRoot(dir))
	defer root.Close()
	for k, v := range readTree(t, dir) {
		target, ok := strings.CutPrefix(v, "-> ")
		if !ok {
			continue
		}
		p := filepath.Join(dir, k)
		if real, err := filepath.EvalSymlinks(p); err == nil {
			if rel, err := filepath.Rel(realDir, real); err != nil || !filepath.IsLocal(rel) && rel != "." {
				t.Fatalf("symlink %s -> %s resolves to %s, outside %s", k, target, real, dir)
			}
			continue
		}
		// Dangling: resolve what exists and the rest lexically.
		if out, err := escapes(root, k, target); err != nil || out {
			t.Fatalf("dangling symlink %s -> %s leads outside %s (err %v)", k, target, dir, err)
		}
	}
}
