package agent

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// outputDirs are the directories of the working directory uploaded to the
// server, with their names as the archive's path prefixes.
var outputDirs = []string{"outputs", "logs"}

// mtimeSlack widens "changed since the last upload": file times come from
// the kernel's coarse clock and can lag the wall clock a little, so a file
// written just after an upload began could otherwise look older than it.
// Files in the slack window are sent twice, which is harmless.
const mtimeSlack = time.Second

// uploadOutputsPeriodically uploads the files of outputs/ and logs/ that
// changed since the last successful upload, every OutputsIntervalSeconds,
// until ctx ends. A failed upload is not retried on its own: the next one
// covers its files, and the final upload covers everything.
func (a *Agent) uploadOutputsPeriodically(ctx context.Context, at *attempt) {
	interval := defaultOutputsInt
	if s := at.asg.OutputsIntervalSeconds; s > 0 {
		interval = time.Duration(s) * time.Second
	}
	var since time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.clock.After(interval):
		}
		began := time.Now() // file times are wall-clock times, whatever a.clock says
		n, err := a.uploadOutputs(ctx, at, since)
		switch {
		case err == nil:
			since = began.Add(-mtimeSlack)
			if n > 0 {
				a.log.Debug("outputs uploaded", keyAttempt, at.id, "files", n)
			}
		case ctx.Err() != nil:
			return
		case errors.Is(err, errFenced):
			at.fence()
			return
		default:
			a.log.Warn("outputs upload failed; the next one covers its files", keyAttempt, at.id, keyErr, err)
		}
	}
}

// uploadOutputs packs the files of outputs/ and logs/ modified at or after
// since and sends them once; with no changed file it sends nothing.
func (a *Agent) uploadOutputs(ctx context.Context, at *attempt, since time.Time) (int, error) {
	archive, n, err := packOutputs(at, since)
	if err != nil {
		return 0, err
	}
	defer os.Remove(archive)
	if n == 0 {
		return 0, nil
	}
	return n, a.putOutputs(ctx, at, archive)
}

// uploadAllOutputs packs every file of outputs/ and logs/ and sends the
// archive, retrying until the server answers.
func (a *Agent) uploadAllOutputs(ctx context.Context, at *attempt) error {
	archive, _, err := packOutputs(at, time.Time{})
	if err != nil {
		return err
	}
	defer os.Remove(archive)
	return a.retry(ctx, func(ctx context.Context) error { return a.putOutputs(ctx, at, archive) })
}

// packOutputs writes the archive next to the working directory and returns
// its path (which the caller removes) and the number of files in it.
func packOutputs(at *attempt, since time.Time) (string, int, error) {
	archive := at.dir + ".files.tar.gz"
	f, err := os.OpenFile(archive, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", 0, fmt.Errorf("pack outputs: %w", err)
	}
	n, err := writeOutputTree(at.dir, f, since)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(archive)
		return "", 0, fmt.Errorf("pack outputs: %w", err)
	}
	return archive, n, nil
}

func (a *Agent) putOutputs(ctx context.Context, at *attempt, archive string) error {
	body := func() (io.Reader, string, error) {
		r, err := os.Open(archive)
		return r, "application/gzip", err
	}
	ctx, cancel := context.WithTimeout(ctx, transferTimeout)
	defer cancel()
	resp, err := a.send(ctx, "upload outputs", http.MethodPut, at.path("files"), "", body)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.Body.Close()
}

// writeOutputTree writes a tar.gz of the regular files under dir/outputs
// and dir/logs modified at or after since, named "outputs/…" and "logs/…",
// and returns how many it wrote. Symlinks are not followed or stored.
func writeOutputTree(dir string, w io.Writer, since time.Time) (int, error) {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return 0, err
	}
	tw := tar.NewWriter(zw)
	n := 0
	for _, sub := range outputDirs {
		m, err := addTree(tw, filepath.Join(dir, sub), sub, since)
		n += m
		if err != nil {
			return n, err
		}
	}
	if err := tw.Close(); err != nil {
		return n, err
	}
	return n, zw.Close()
}

func addTree(tw *tar.Writer, dir, prefix string, since time.Time) (int, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !fi.IsDir() {
		return 0, nil // missing, or replaced by a file or symlink: nothing to send
	}
	if err != nil {
		return 0, err
	}
	// Opening through a Root keeps a file swapped for a symlink during the
	// walk from reading outside the directory.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer root.Close()
	n := 0
	err = fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed during the walk
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		ok, err := addFile(tw, root, rel, prefix+"/"+rel, since)
		if ok {
			n++
		}
		return err
	})
	return n, err
}

// addFile writes one file if it was modified at or after since. A file that
// shrinks while it is read is padded with zeros (the next upload sends it
// again, since its time changed); one that grows is cut at its first size.
func addFile(tw *tar.Writer, root *os.Root, rel, name string, since time.Time) (bool, error) {
	f, err := root.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.ModTime().Before(since) {
		return false, nil
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     int64(fi.Mode().Perm()),
		Size:     fi.Size(),
		ModTime:  fi.ModTime(),
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return false, err
	}
	copied, err := io.CopyN(tw, f, fi.Size())
	if errors.Is(err, io.EOF) {
		_, err = io.CopyN(tw, zeros{}, fi.Size()-copied)
	}
	return true, err
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
