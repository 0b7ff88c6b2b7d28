// Package pysdk embeds Hangar's Python SDK (the hangar package in this
// directory) so that the binary can put it on the PYTHONPATH of every run and
// service: `from hangar.core import Run` works there with nothing installed.
package pysdk

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

//go:embed all:hangar
var files embed.FS

// WriteTo writes the hangar package under dir (dir/hangar/…), creating dir
// if needed, so that dir belongs on PYTHONPATH. It is idempotent: files that
// already hold the right bytes are left alone, others are replaced
// atomically, and .py files no longer in the package are removed. Safe to
// call from several processes at once.
func WriteTo(dir string) error {
	want := map[string]bool{}
	err := fs.WalkDir(files, "hangar", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "__pycache__" {
				return fs.SkipDir
			}
			return os.MkdirAll(filepath.Join(dir, filepath.FromSlash(p)), 0o755)
		}
		if path.Ext(p) != ".py" {
			return nil
		}
		want[p] = true
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		return writeFile(filepath.Join(dir, filepath.FromSlash(p)), data)
	})
	if err != nil {
		return fmt.Errorf("write python sdk to %s: %w", dir, err)
	}
	// Remove modules a previous version had and this one has not.
	root := filepath.Join(dir, "hangar")
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".py") {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if !want[filepath.ToSlash(rel)] {
			return os.Remove(p)
		}
		return nil
	})
}

func writeFile(name string, data []byte) error {
	if old, err := os.ReadFile(name); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".pysdk-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
