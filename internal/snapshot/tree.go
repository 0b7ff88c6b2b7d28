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
	"slices"
	"time"
)

// WriteTree writes to w a tar.gz of the regular files under dir whose
// modification time is not before since, and returns how many it wrote.
// A zero since includes every file. Comparing "not before" rather than
// "after" means a file written in the same clock tick as the previous call
// is sent again rather than missed; the node agent passes the time it
// started the previous call. Symlinks, directories and special files are
// left out; ignore files have no effect. Entries keep their modification
// times (to the second) and executable bits.
//
// Files may change while WriteTree runs: a file removed after the directory
// was listed is skipped, and a file that shrinks while it is read is padded
// with zeros. Such a file has a new modification time, so the next call
// sends it again. With n == 0 the archive is empty and need not be sent.
func WriteTree(dir string, w io.Writer, since time.Time) (n int, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, fmt.Errorf("archive %s: %w", dir, err)
	}
	defer root.Close()

	var files []string
	if err := listFiles(root, "", since, &files); err != nil {
		return 0, fmt.Errorf("archive %s: %w", dir, err)
	}
	slices.Sort(files)

	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	for _, rel := range files {
		ok, err := writeTreeFile(root, tw, rel)
		if err != nil {
			return n, fmt.Errorf("archive %s: %w", dir, err)
		}
		if ok {
			n++
		}
	}
	if err := tw.Close(); err != nil {
		return n, fmt.Errorf("archive %s: %w", dir, err)
	}
	if err := zw.Close(); err != nil {
		return n, fmt.Errorf("archive %s: %w", dir, err)
	}
	return n, nil
}

func listFiles(root *os.Root, rel string, since time.Time, out *[]string) error {
	names, err := readDirNames(root, rel)
	if errors.Is(err, fs.ErrNotExist) && rel != "" {
		return nil // removed since its parent was listed
	}
	if err != nil {
		return err
	}
	for _, name := range names {
		p := path.Join(rel, name)
		fi, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			if err := listFiles(root, p, since, out); err != nil {
				return err
			}
		case fi.Mode().IsRegular() && !fi.ModTime().Before(since):
			*out = append(*out, p)
		}
	}
	return nil
}

// writeTreeFile archives one file; it reports false if the file vanished.
func writeTreeFile(root *os.Root, tw *tar.Writer, rel string) (bool, error) {
	f, err := root.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // removed since listed
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	// Root follows a symlink put in the file's place since it was listed;
	// skip the file then rather than send another file's content.
	if li, err := root.Lstat(rel); err != nil || !fi.Mode().IsRegular() || !os.SameFile(fi, li) {
		return false, nil
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     rel,
		Mode:     0o644,
		Size:     fi.Size(),
		ModTime:  fi.ModTime().Truncate(time.Second),
	}
	if fi.Mode()&0o111 != 0 {
		hdr.Mode = 0o755
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return false, err
	}
	n, err := io.CopyN(tw, f, hdr.Size)
	if errors.Is(err, io.EOF) {
		_, err = io.CopyN(tw, zeros{}, hdr.Size-n)
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", rel, err)
	}
	return true, nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
