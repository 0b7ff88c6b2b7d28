package blob_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hangar-ml/hangar/internal/blob"
)

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestNewHasNoSideEffects(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "blobs")
	s := blob.New(dir)
	if s.Has(digestOf(nil)) {
		t.Fatal("empty store has a blob")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("New created %s: stat err = %v", dir, err)
	}
}

func TestPutOpenRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"small", []byte("hello, hangar\n")},
		{"large", bytes.Repeat([]byte("0123456789abcdef"), 1<<16)}, // 1 MiB
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := blob.New(dir)
			d, n, err := s.Put(bytes.NewReader(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if want := digestOf(tt.data); d != want {
				t.Errorf("digest = %s, want %s", d, want)
			}
			if n != int64(len(tt.data)) {
				t.Errorf("size = %d, want %d", n, len(tt.data))
			}
			if !s.Has(d) {
				t.Errorf("Has(%s) = false after Put", d)
			}
			rc, err := s.Open(d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Errorf("Open returned %d bytes, want the %d put", len(got), len(tt.data))
			}
			p, err := s.Path(d)
			if err != nil {
				t.Fatal(err)
			}
			hexd := strings.TrimPrefix(d, "sha256:")
			if want := filepath.Join(dir, "sha256", hexd[:2], hexd[2:]); p != want {
				t.Errorf("Path = %s, want %s", p, want)
			}
			assertNoTemps(t, dir)
		})
	}
}

func TestPutExistingIsNoOp(t *testing.T) {
	t.Parallel()
	s := blob.New(t.TempDir())
	data := []byte("same bytes")
	d1, _, err := s.Put(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Path(d1)
	before, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	d2, n, err := s.Put(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if d2 != d1 || n != int64(len(data)) {
		t.Errorf("second Put = %s, %d; want %s, %d", d2, n, d1, len(data))
	}
	after, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("second Put replaced the stored file")
	}
	assertNoTemps(t, s.Dir())
}

func TestPutConcurrentSameContent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := blob.New(dir)
	data := bytes.Repeat([]byte("concurrent "), 10000)
	want := digestOf(data)

	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	digests := make([]string, n)
	for i := range n {
		wg.Go(func() {
			digests[i], _, errs[i] = s.Put(bytes.NewReader(data))
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Put #%d: %v", i, errs[i])
		}
		if digests[i] != want {
			t.Errorf("Put #%d digest = %s, want %s", i, digests[i], want)
		}
	}
	rc, err := s.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, _ := io.ReadAll(rc)
	if !bytes.Equal(got, data) {
		t.Error("stored content differs from what was put")
	}
	assertNoTemps(t, dir)
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("disk on fire")
	}
	r.n--
	return copy(p, "partial"), nil
}

func TestPutReaderErrorStoresNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := blob.New(dir)
	if _, _, err := s.Put(&failingReader{n: 3}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Put err = %v, want the reader's error", err)
	}
	assertNoTemps(t, dir)
	if entries, _ := os.ReadDir(filepath.Join(dir, "sha256")); len(entries) != 0 {
		t.Errorf("failed Put left %d entries in sha256/", len(entries))
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	s := blob.New(t.TempDir())
	d := digestOf([]byte("never stored"))
	if _, err := s.Open(d); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Open err = %v, want ErrNotFound", err)
	}
	if _, err := s.Path(d); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Path err = %v, want ErrNotFound", err)
	}
	if s.Has(d) {
		t.Error("Has = true for a blob never stored")
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	s := blob.New(t.TempDir())
	d, _, err := s.Put(strings.NewReader("to delete"))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := s.Delete(d); err != nil {
		t.Fatal(err)
	}
	if s.Has(d) {
		t.Error("Has = true after Delete")
	}
	if _, err := s.Open(d); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Open after Delete err = %v, want ErrNotFound", err)
	}
	if got, _ := io.ReadAll(rc); string(got) != "to delete" {
		t.Errorf("reader opened before Delete read %q", got)
	}
	if err := s.Delete(d); err != nil {
		t.Errorf("second Delete = %v, want nil", err)
	}
	// The blob can be stored again.
	if _, _, err := s.Put(strings.NewReader("to delete")); err != nil || !s.Has(d) {
		t.Errorf("Put after Delete: err = %v, Has = %v", err, s.Has(d))
	}
}

var invalidDigests = []struct {
	name, digest string
}{
	{"empty", ""},
	{"no algorithm", strings.Repeat("a", 64)},
	{"other algorithm", "sha512:" + strings.Repeat("a", 64)},
	{"uppercase algorithm", "SHA256:" + strings.Repeat("a", 64)},
	{"uppercase hex", "sha256:" + strings.Repeat("A", 64)},
	{"short", "sha256:" + strings.Repeat("a", 63)},
	{"long", "sha256:" + strings.Repeat("a", 65)},
	{"traversal", "sha256:../../../../etc/passwd" + strings.Repeat("a", 36)},
	{"slash", "sha256:aa/" + strings.Repeat("a", 61)},
	{"non-hex", "sha256:" + strings.Repeat("g", 64)},
	{"nul", "sha256:" + strings.Repeat("a", 63) + "\x00"},
	{"trailing newline", "sha256:" + strings.Repeat("a", 64) + "\n"},
}

func TestInvalidDigest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := blob.New(dir)
	if _, _, err := s.Put(strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range invalidDigests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := blob.ValidateDigest(tt.digest); !errors.Is(err, blob.ErrInvalidDigest) {
				t.Errorf("ValidateDigest err = %v, want ErrInvalidDigest", err)
			}
			if _, err := s.Open(tt.digest); !errors.Is(err, blob.ErrInvalidDigest) {
				t.Errorf("Open err = %v, want ErrInvalidDigest", err)
			}
			if _, err := s.Path(tt.digest); !errors.Is(err, blob.ErrInvalidDigest) {
				t.Errorf("Path err = %v, want ErrInvalidDigest", err)
			}
			if err := s.Delete(tt.digest); !errors.Is(err, blob.ErrInvalidDigest) {
				t.Errorf("Delete err = %v, want ErrInvalidDigest", err)
			}
			if s.Has(tt.digest) {
				t.Error("Has = true")
			}
		})
	}
}

// FuzzValidateDigest checks that any digest accepted maps to a file inside
// the store, since digests reach file names.
func FuzzValidateDigest(f *testing.F) {
	for _, tt := range invalidDigests {
		f.Add(tt.digest)
	}
	f.Add(digestOf(nil))
	dir := f.TempDir()
	s := blob.New(dir)
	f.Fuzz(func(t *testing.T, d string) {
		if blob.ValidateDigest(d) != nil {
			return
		}
		if _, err := s.Path(d); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("Path(%q) err = %v, want ErrNotFound", d, err)
		}
		hexd := d[len("sha256:"):]
		if _, err := hex.DecodeString(hexd); err != nil || len(hexd) != 64 || strings.ToLower(hexd) != hexd {
			t.Fatalf("accepted %q", d)
		}
	})
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("temporary file left behind: %s", e.Name())
	}
}
