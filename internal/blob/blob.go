package blob

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// ErrNotFound is returned when no blob has the requested digest.
var ErrNotFound = errors.New("blob not found")

// ErrInvalidDigest is returned for a digest that is not "sha256:" followed by
// 64 lowercase hex digits.
var ErrInvalidDigest = errors.New("invalid blob digest")

const (
	algo      = "sha256"
	prefix    = algo + ":"
	digestLen = len(prefix) + 2*sha256.Size
)

// ValidateDigest reports whether d is a well-formed digest: "sha256:"
// followed by exactly 64 lowercase hex digits. The error wraps
// ErrInvalidDigest.
func ValidateDigest(d string) error {
	if len(d) != digestLen || d[:len(prefix)] != prefix {
		return fmt.Errorf("%w %s: want sha256:<64 lowercase hex digits>", ErrInvalidDigest, quote(d))
	}
	for i := len(prefix); i < len(d); i++ {
		c := d[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%w %s: want sha256:<64 lowercase hex digits>", ErrInvalidDigest, quote(d))
		}
	}
	return nil
}

// quote quotes a user-supplied string for an error message, shortening
// anything absurdly long.
func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strconv.Quote(s)
}

// Store is a blob store rooted at one directory. It is safe for concurrent
// use by multiple goroutines and by multiple processes sharing the directory.
type Store struct {
	dir string
}

// New returns a store rooted at dir. It touches nothing on disk: dir and its
// subdirectories are created by the first Put.
func New(dir string) *Store {
	return &Store{dir: dir}
}

// Dir returns the store's root directory.
func (s *Store) Dir() string { return s.dir }

// path returns the file name for a digest already validated.
func (s *Store) path(d string) string {
	hexd := d[len(prefix):]
	return filepath.Join(s.dir, algo, hexd[:2], hexd[2:])
}

// Put copies r into the store and returns its digest and size. Putting
// content that is already stored is a no-op that returns the same digest.
// If r fails, nothing is stored and the error is returned.
func (s *Store) Put(r io.Reader) (digest string, size int64, err error) {
	tmpDir := filepath.Join(s.dir, "tmp")
	if err := os.MkdirAll(tmpDir, 0o755); err != nil {
		return "", 0, fmt.Errorf("put blob: %w", err)
	}
	f, err := os.CreateTemp(tmpDir, "put-*")
	if err != nil {
		return "", 0, fmt.Errorf("put blob: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()

	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(f, h), r)
	if err != nil {
		return "", 0, fmt.Errorf("put blob: %w", err)
	}
	if err := f.Chmod(0o444); err != nil {
		return "", 0, fmt.Errorf("put blob: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", 0, fmt.Errorf("put blob: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", 0, fmt.Errorf("put blob: %w", err)
	}
	digest = prefix + hex.EncodeToString(h.Sum(nil))

	final := s.path(digest)
	if _, err := os.Stat(final); err == nil {
		os.Remove(tmp)
		return digest, size, nil
	}
	fanout := filepath.Dir(final)
	if err := mkdirSynced(filepath.Dir(fanout)); err != nil {
		return "", 0, fmt.Errorf("put blob %s: %w", digest, err)
	}
	if err := mkdirSynced(fanout); err != nil {
		return "", 0, fmt.Errorf("put blob %s: %w", digest, err)
	}
	// A concurrent Put of the same content may rename first; rename replaces
	// its file with an identical one, which readers cannot tell apart.
	if err := os.Rename(tmp, final); err != nil {
		return "", 0, fmt.Errorf("put blob %s: %w", digest, err)
	}
	if err := syncDir(fanout); err != nil {
		return "", 0, fmt.Errorf("put blob %s: %w", digest, err)
	}
	return digest, size, nil
}

// mkdirSynced creates dir if it does not exist and, when it did create it,
// fsyncs the parent so the new entry survives a crash.
func mkdirSynced(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Open returns a reader for the blob with the given digest. The caller must
// close it. A blob deleted while open stays readable until closed.
func (s *Store) Open(digest string) (io.ReadCloser, error) {
	if err := ValidateDigest(digest); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open blob %s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", digest, err)
	}
	return f, nil
}

// Has reports whether the blob is stored. It is false for a malformed digest.
func (s *Store) Has(digest string) bool {
	if ValidateDigest(digest) != nil {
		return false
	}
	fi, err := os.Stat(s.path(digest))
	return err == nil && fi.Mode().IsRegular()
}

// Path returns the file holding the blob, for callers that need a file name
// (bind mounts, sendfile). The file must not be modified. It returns
// ErrNotFound if the blob is not stored.
func (s *Store) Path(digest string) (string, error) {
	if err := ValidateDigest(digest); err != nil {
		return "", err
	}
	p := s.path(digest)
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("blob %s: %w", digest, ErrNotFound)
	} else if err != nil {
		return "", fmt.Errorf("blob %s: %w", digest, err)
	}
	return p, nil
}

// Delete removes the blob. Deleting a blob that is not stored returns nil,
// so Delete may be retried. Readers that already opened it are unaffected.
// A Put of the same content that runs concurrently may report success for a
// blob Delete then removes; a garbage collector must not delete blobs that
// can still be referenced.
func (s *Store) Delete(digest string) error {
	if err := ValidateDigest(digest); err != nil {
		return err
	}
	err := os.Remove(s.path(digest))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", digest, err)
	}
	return nil
}
