package snapshot

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// WritePath writes to w a deterministic tar.gz of the file or directory
// name (a slash path inside dir), its entries named after name's last
// element: a file "outputs/model.pkl" gives the single entry "model.pkl";
// a directory "outputs/model" gives "model/" and everything below it as
// "model/…". Extracting the archive into a directory D therefore gives
// D/model.pkl or D/model/…, the original names kept. This is how a
// registered model's files are packed.
//
// Entries are deterministic as Write's (sorted, epoch times, 0644/0755).
// Unlike Write, ignore files have no effect: a model is what its owner
// names, whole. A symlink is followed when it leads to a regular file
// inside the directory being packed (or, for a single file, inside its
// parent), and archived as that file under the link's name; a symlink to a
// directory, one leading outside, or a dangling one is an error naming it.
// Sockets, FIFOs and devices are skipped. Nothing is written when name is
// missing or the tree is over lim (zero fields take DefaultLimits); the
// error is then a *LimitError, or wraps fs.ErrNotExist when name is
// missing.
func WritePath(dir, name string, lim Limits, w io.Writer) (Info, error) {
	if !fs.ValidPath(name) || name == "." {
		return Info{}, fmt.Errorf("pack %s: not a path inside %s", name, dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Info{}, fmt.Errorf("pack %s: %w", name, err)
	}
	defer root.Close()
	parent, base := path.Split(name)
	if parent != "" {
		sub, err := root.OpenRoot(strings.TrimSuffix(parent, "/"))
		if err != nil {
			return Info{}, fmt.Errorf("pack %s: %w", name, err)
		}
		defer sub.Close()
		root = sub
	}
	fi, err := root.Lstat(base)
	if err != nil {
		return Info{}, fmt.Errorf("pack %s: %w", name, err)
	}

	pk := &packer{tally: newTally(lim), name: name}
	if fi.IsDir() {
		tree, err := root.OpenRoot(base)
		if err != nil {
			return Info{}, fmt.Errorf("pack %s: %w", name, err)
		}
		defer tree.Close()
		pk.root, pk.prefix = tree, base+"/"
		pk.entries = append(pk.entries, entry{rel: "", kind: fs.ModeDir})
		if err := pk.walk(""); err != nil {
			return Info{}, err
		}
	} else {
		pk.root = root
		ok, err := pk.file(base, fi)
		if err != nil {
			return Info{}, err
		}
		if !ok {
			return Info{}, fmt.Errorf("pack %s: not a regular file or directory", name)
		}
	}
	if err := pk.limitErr(name); err != nil {
		return Info{}, err
	}
	info, err := pk.writeArchive(w, pk.writeEntry)
	if err != nil {
		return Info{}, fmt.Errorf("pack %s: %w", name, err)
	}
	return info, nil
}

// LinkError is a symlink WritePath cannot pack.
type LinkError struct {
	Name    string // the path given to WritePath
	Link    string // the symlink, as named in the archive
	Target  string
	Problem string // "is dangling or leads outside …", "leads to a directory…"
}

func (e *LinkError) Error() string {
	return fmt.Sprintf("pack %s: symlink %s -> %s %s", e.Name, e.Link, e.Target, e.Problem)
}

// packer collects the entries of WritePath. Entry paths are relative to
// root; the archive names them prefix + path.
type packer struct {
	tally
	name string // as given, for messages
	root *os.Root
}

func (pk *packer) walk(rel string) error {
	names, err := readDirNames(pk.root, rel)
	if err != nil {
		return fmt.Errorf("pack %s: %w", pk.name, err)
	}
	for _, n := range names {
		p := path.Join(rel, n)
		fi, err := pk.root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since listed
		}
		if err != nil {
			return fmt.Errorf("pack %s: %w", pk.name, err)
		}
		if fi.IsDir() {
			pk.add(entry{rel: p, kind: fs.ModeDir})
			if err := pk.walk(p); err != nil {
				return err
			}
			continue
		}
		if _, err := pk.file(p, fi); err != nil {
			return err
		}
	}
	return nil
}

// file adds the regular file or symlink to one at rel; it reports false
// for what it skips (special files).
func (pk *packer) file(rel string, fi fs.FileInfo) (bool, error) {
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := pk.root.Readlink(rel)
		ti, err := pk.root.Stat(rel) // follows links inside the root only
		switch {
		case err != nil:
			return false, &LinkError{Name: pk.name, Link: pk.prefix + rel, Target: target, Problem: "is dangling or leads outside " + pk.name}
		case ti.IsDir():
			return false, &LinkError{Name: pk.name, Link: pk.prefix + rel, Target: target, Problem: "leads to a directory; copy the directory instead"}
		}
		fi = ti
	}
	if !fi.Mode().IsRegular() {
		return false, nil
	}
	pk.add(entry{rel: rel, exec: fi.Mode()&0o111 != 0, size: fi.Size()})
	return true, nil
}

func (pk *packer) writeEntry(tw *tar.Writer, e entry) error {
	name := pk.prefix + e.rel
	if e.kind == fs.ModeDir {
		if e.rel != "" {
			name += "/"
		}
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch})
	}
	f, err := pk.root.Open(e.rel)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() != e.size {
		return fmt.Errorf("%s changed while it was packed", name)
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: e.size, ModTime: epoch}
	if e.exec {
		hdr.Mode = 0o755
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, e.size); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s changed while it was packed", name)
		}
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// ListArchive reads a tar.gz and returns the names of its regular files
// (cleaned, slash-separated) and their total size, for checking an
// uploaded archive before using it. Symlinks count as files of size 0.
// It refuses what Extract would: absolute names, ".." elements, hard
// links, devices, and archives over MaxExtractBytes or MaxExtractEntries.
func ListArchive(r io.Reader) (files []string, size int64, err error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, 0, fmt.Errorf("not a gzip'ed tar archive: %w", err)
	}
	tr := tar.NewReader(zr)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return files, size, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("not a valid tar archive: %w", err)
		}
		if n >= MaxExtractEntries {
			return nil, 0, fmt.Errorf("archive has more than %d entries", MaxExtractEntries)
		}
		name, err := cleanName(h.Name)
		if err != nil {
			return nil, 0, err
		}
		if name == "." && h.Typeflag != tar.TypeDir {
			return nil, 0, fmt.Errorf("archive entry %q names the directory itself", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
		case tar.TypeReg:
			size += h.Size
			if size > MaxExtractBytes {
				return nil, 0, fmt.Errorf("archive holds more than %d bytes", MaxExtractBytes)
			}
			files = append(files, name)
		case tar.TypeSymlink:
			files = append(files, name)
		default:
			return nil, 0, fmt.Errorf("archive entry %s is a %s, which is not allowed", name, typeName(h.Typeflag))
		}
	}
}
