package snapshot

import (
	"archive/tar"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Bounds on what Extract and MergeTree unpack from one archive.
const (
	// MaxExtractBytes bounds the total size of the regular files.
	MaxExtractBytes int64 = 10 << 30
	// MaxExtractEntries bounds the number of entries of any type.
	MaxExtractEntries = 1 << 20
	// maxTrailing bounds the zero padding accepted after the end of the tar
	// archive (GNU tar pads to 10 KiB records).
	maxTrailing = 1 << 20
)

type extractOptions struct {
	replace    bool // replace existing files and symlinks (MergeTree)
	maxBytes   int64
	maxEntries int
}

// Extract unpacks the tar.gz r into dir, creating dir if needed. It refuses
// entries that could reach outside dir (see the package documentation) and
// never replaces anything: an entry whose path already exists as a file or
// symlink is an error, while existing directories are reused. On error dir
// may hold part of the archive; callers extract into a fresh directory and
// remove it on failure.
func Extract(r io.Reader, dir string) error {
	return extract(r, dir, extractOptions{maxBytes: MaxExtractBytes, maxEntries: MaxExtractEntries})
}

// MergeTree unpacks the tar.gz r (typically from WriteTree) over dir,
// creating dir if needed. Each file or symlink in the archive atomically
// replaces the one at its path, so readers see the old or the new content,
// never a mix; files not in the archive are kept. An entry cannot replace a
// directory with a file or the reverse. The safety rules are Extract's. On
// error, entries already merged stay merged.
func MergeTree(r io.Reader, dir string) error {
	return extract(r, dir, extractOptions{replace: true, maxBytes: MaxExtractBytes, maxEntries: MaxExtractEntries})
}

func extract(r io.Reader, dir string, opt extractOptions) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("extract to %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("extract to %s: %w", dir, err)
	}
	defer root.Close()
	if err := extractRoot(r, root, opt); err != nil {
		return fmt.Errorf("extract to %s: %w", dir, err)
	}
	return nil
}

func extractRoot(r io.Reader, root *os.Root, opt extractOptions) (err error) {
	var links []string
	defer func() {
		// Even when extraction stops early, no symlink leading outside may
		// stay behind.
		if lerr := checkLinks(root, links); lerr != nil && err != nil {
			err = fmt.Errorf("%w; %w", err, lerr)
		} else if lerr != nil {
			err = lerr
		}
	}()
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a gzip stream: %w", err)
	}
	tr := tar.NewReader(zr)
	var (
		total   int64
		entries int
	)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		entries++
		if entries > opt.maxEntries {
			return fmt.Errorf("archive has more than %s entries", formatCount(opt.maxEntries))
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		if name == "." {
			if hdr.Typeflag == tar.TypeDir {
				continue
			}
			return fmt.Errorf("entry %q: not a directory but names the target directory", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			total += hdr.Size
			if total > opt.maxBytes {
				return fmt.Errorf("archive holds more than %s", formatBytes(opt.maxBytes))
			}
			if err := mkdirParent(root, name); err != nil {
				return err
			}
			if err := writeFile(root, name, hdr, tr, opt.replace); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := checkLinkname(name, hdr.Linkname); err != nil {
				return fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
			if err := mkdirParent(root, name); err != nil {
				return err
			}
			if err := makeLink(root, name, hdr.Linkname, opt.replace); err != nil {
				return err
			}
			links = append(links, name)
		default:
			return fmt.Errorf("entry %q: unsupported type %s; archives hold only files, directories and symlinks",
				hdr.Name, typeName(hdr.Typeflag))
		}
	}
	// The tar reader stops at the end-of-archive marker; read the rest so
	// gzip verifies its checksum, and refuse anything but padding.
	n, err := io.Copy(io.Discard, io.LimitReader(zr, maxTrailing+1))
	if err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	if n > maxTrailing {
		return errors.New("read archive: unexpected data after the end of the archive")
	}
	return nil
}

// checkLinks resolves every symlink created, now that the whole tree is in
// place: a later entry can make an earlier symlink lead elsewhere (by
// making an element of its path a symlink). Any that leads outside is
// removed.
func checkLinks(root *os.Root, links []string) error {
	var bad []string
	for _, name := range links {
		fi, err := root.Lstat(name)
		if err == nil && fi.Mode()&fs.ModeSymlink == 0 {
			continue // a later entry replaced it
		}
		target, err := root.Readlink(name)
		if err != nil {
			bad = append(bad, name)
			continue
		}
		if out, err := escapes(root, name, target); err != nil || out {
			bad = append(bad, name+" -> "+target)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	for _, b := range bad {
		name, _, _ := strings.Cut(b, " -> ")
		root.Remove(name)
	}
	return fmt.Errorf("symlinks lead outside the directory: %s", strings.Join(bad, ", "))
}

// cleanName validates an entry name and returns it cleaned; "." names the
// target directory itself.
func cleanName(name string) (string, error) {
	switch {
	case name == "":
		return "", errors.New("empty name")
	case strings.HasPrefix(name, "/"):
		return "", errors.New("absolute path")
	case strings.ContainsRune(name, 0):
		return "", errors.New("NUL in name")
	}
	for elem := range strings.SplitSeq(name, "/") {
		if elem == ".." {
			return "", errors.New(`".." in path`)
		}
	}
	c := path.Clean(name)
	if c != "." && !filepath.IsLocal(c) {
		return "", errors.New("path outside the directory")
	}
	return c, nil
}

// checkLinkname refuses a symlink target that is absolute or leads outside
// lexically. checkLinks later resolves it through the symlinks on its path.
func checkLinkname(name, target string) error {
	switch {
	case target == "":
		return errors.New("symlink with an empty target")
	case path.IsAbs(target):
		return fmt.Errorf("symlink to absolute path %q", target)
	case strings.ContainsRune(target, 0):
		return errors.New("NUL in symlink target")
	}
	if j := path.Join(path.Dir(name), target); j == ".." || strings.HasPrefix(j, "../") {
		return fmt.Errorf("symlink to %q leads outside the directory", target)
	}
	return nil
}

func mkdirParent(root *os.Root, name string) error {
	if d := path.Dir(name); d != "." {
		return root.MkdirAll(d, 0o755)
	}
	return nil
}

// tempName returns an unused-looking name next to name.
func tempName(name string) string {
	return path.Join(path.Dir(name), ".hangar-tmp-"+rand.Text())
}

func writeFile(root *os.Root, name string, hdr *tar.Header, r io.Reader, replace bool) (err error) {
	perm := fs.FileMode(0o644)
	if hdr.Mode&0o111 != 0 {
		perm = 0o755
	}
	dst := name
	if replace {
		dst = tempName(name)
	}
	f, err := root.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && replace {
			root.Remove(dst)
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if hdr.ModTime.After(time.Unix(0, 0)) {
		if err := root.Chtimes(dst, hdr.ModTime, hdr.ModTime); err != nil {
			return err
		}
	}
	if replace {
		// Rename replaces a symlink at name rather than writing through it.
		return root.Rename(dst, name)
	}
	return nil
}

func makeLink(root *os.Root, name, target string, replace bool) error {
	if !replace {
		return root.Symlink(target, name)
	}
	tmp := tempName(name)
	if err := root.Symlink(target, tmp); err != nil {
		return err
	}
	if err := root.Rename(tmp, name); err != nil {
		root.Remove(tmp)
		return err
	}
	return nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	}
	return fmt.Sprintf("%q", t)
}
