package snapshot

import (
	"archive/tar"
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Limits bound the size of a snapshot.
type Limits struct {
	// MaxBytes bounds the total size of the regular files, before
	// compression. Zero means DefaultLimits.MaxBytes; negative means no limit.
	MaxBytes int64
	// MaxFiles bounds the number of regular files and symlinks; directories
	// do not count. Zero means DefaultLimits.MaxFiles; negative means no
	// limit.
	MaxFiles int
}

// DefaultLimits are the limits used for fields left zero.
var DefaultLimits = Limits{MaxBytes: 300 << 20, MaxFiles: 2000}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes == 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxFiles == 0 {
		l.MaxFiles = DefaultLimits.MaxFiles
	}
	return l
}

func (l Limits) exceeded(files int, bytes int64) (tooMany, tooBig bool) {
	return l.MaxFiles >= 0 && files > l.MaxFiles, l.MaxBytes >= 0 && bytes > l.MaxBytes
}

// Info describes a written snapshot.
type Info struct {
	Files int   // regular files and symlinks
	Bytes int64 // total size of the regular files, before compression
}

// LimitError reports a snapshot over its Limits. Nothing was written.
type LimitError struct {
	Dir   string // the directory as given to Write
	Files int    // regular files and symlinks that would be included
	Bytes int64  // their total size
	Limit Limits // the limits in force, defaults applied
	// Largest lists the biggest entries directly under Dir (by bytes when
	// over the byte limit, else by file count), at most three, so the user
	// knows what to exclude.
	Largest []Usage
}

// Usage is the size of one entry directly under a snapshot's directory.
type Usage struct {
	Path  string // slash path; directories end in "/"
	Files int
	Bytes int64
}

func (e *LimitError) Error() string {
	tooMany, tooBig := e.Limit.exceeded(e.Files, e.Bytes)
	var b strings.Builder
	fmt.Fprintf(&b, "snapshot of %s ", e.Dir)
	if tooMany {
		fmt.Fprintf(&b, "has %s (limit %s)", countFiles(e.Files), formatCount(e.Limit.MaxFiles))
	}
	if tooMany && tooBig {
		b.WriteString(" and ")
	}
	if tooBig {
		fmt.Fprintf(&b, "is %s (limit %s)", formatBytes(e.Bytes), formatBytes(e.Limit.MaxBytes))
	}
	for i, u := range e.Largest {
		if i == 0 {
			b.WriteString("; largest: ")
		} else {
			b.WriteString(", ")
		}
		if tooBig {
			fmt.Fprintf(&b, "%s (%s)", u.Path, formatBytes(u.Bytes))
		} else {
			fmt.Fprintf(&b, "%s (%s)", u.Path, countFiles(u.Files))
		}
	}
	b.WriteString("; exclude files with .hangarignore or .amlignore")
	return b.String()
}

func countFiles(n int) string {
	if n == 1 {
		return "1 file"
	}
	return formatCount(n) + " files"
}

// formatCount formats n with thousands separators: 12,345.
func formatCount(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatBytes formats n in binary units with one decimal: 412.3 MB.
func formatBytes(n int64) string {
	const (
		kb = 1 << 10
		mb = 1 << 20
		gb = 1 << 30
	)
	switch {
	case n < kb:
		return fmt.Sprintf("%d B", n)
	case n < mb:
		return fmt.Sprintf("%.1f KB", float64(n)/kb)
	case n < gb:
		return fmt.Sprintf("%.1f MB", float64(n)/mb)
	default:
		return fmt.Sprintf("%.1f GB", float64(n)/gb)
	}
}

// An entry is one path to archive.
type entry struct {
	rel    string // slash path relative to the root
	kind   fs.FileMode
	exec   bool   // regular file with an executable bit
	size   int64  // regular files
	target string // symlinks, always relative
}

type walker struct {
	tally
	root     *os.Root
	dir      string // as given by the caller, for messages
	absDirs  []string
	badLinks []string // "path -> target", the first few
	nBad     int
}

// tally holds the entries of an archive Write or WritePath is making and
// counts its files and bytes, in all and by top-level entry, so that a
// *LimitError can name the largest. Once over lim it only counts, so a
// huge tree costs no memory.
type tally struct {
	lim     Limits
	prefix  string // what the archive puts before each entry's rel
	entries []entry
	files   int
	bytes   int64
	top     map[string]*Usage
}

func newTally(lim Limits) tally {
	return tally{lim: lim.withDefaults(), top: map[string]*Usage{}}
}

func (t *tally) add(e entry) {
	if e.kind != fs.ModeDir {
		t.files++
		t.bytes += e.size
		top, _, isNested := strings.Cut(e.rel, "/")
		if isNested {
			top += "/"
		}
		u := t.top[top]
		if u == nil {
			u = &Usage{Path: t.prefix + top}
			t.top[top] = u
		}
		u.Files++
		u.Bytes += e.size
	}
	if tooMany, tooBig := t.lim.exceeded(t.files, t.bytes); tooMany || tooBig {
		t.entries = nil // only count from now on
		return
	}
	t.entries = append(t.entries, e)
}

// limitErr is the *LimitError of dir (as the caller named it) when the
// tally is over its limits, naming the three largest top-level entries.
func (t *tally) limitErr(dir string) error {
	tooMany, tooBig := t.lim.exceeded(t.files, t.bytes)
	if !tooMany && !tooBig {
		return nil
	}
	var largest []Usage
	for _, u := range t.top {
		largest = append(largest, *u)
	}
	slices.SortFunc(largest, func(a, b Usage) int {
		if tooBig {
			if c := cmp.Compare(b.Bytes, a.Bytes); c != 0 {
				return c
			}
		}
		if c := cmp.Compare(b.Files, a.Files); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	if len(largest) > 3 {
		largest = largest[:3]
	}
	return &LimitError{Dir: dir, Files: t.files, Bytes: t.bytes, Limit: t.lim, Largest: largest}
}

// writeArchive writes the entries, sorted by path so that the same tree
// gives the same bytes, as a tar.gz to w, each with writeEntry.
func (t *tally) writeArchive(w io.Writer, writeEntry func(*tar.Writer, entry) error) (Info, error) {
	slices.SortFunc(t.entries, func(a, b entry) int { return strings.Compare(a.rel, b.rel) })
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	for _, e := range t.entries {
		if err := writeEntry(tw, e); err != nil {
			return Info{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return Info{}, err
	}
	if err := zw.Close(); err != nil {
		return Info{}, err
	}
	return Info{Files: t.files, Bytes: t.bytes}, nil
}

// Write writes a deterministic tar.gz snapshot of dir to w; see the package
// documentation for what it contains. lim's zero fields take DefaultLimits.
// If the snapshot would exceed lim, Write returns a *LimitError before
// writing anything to w; a symlink leading outside dir is also reported
// before anything is written. A file that changes size while Write reads it
// is an error; after an error that late, w holds a truncated archive the
// caller must discard.
func Write(dir string, lim Limits, w io.Writer) (Info, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Info{}, fmt.Errorf("snapshot of %s: %w", dir, err)
	}
	defer root.Close()

	wk := &walker{tally: newTally(lim), root: root, dir: dir}
	if abs, err := filepath.Abs(dir); err == nil {
		wk.absDirs = append(wk.absDirs, abs)
		if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
			wk.absDirs = append(wk.absDirs, real)
		}
	}
	if err := wk.walk("", nil); err != nil {
		return Info{}, fmt.Errorf("snapshot of %s: %w", dir, err)
	}
	if err := errors.Join(wk.limitErr(dir), wk.linkErr()); err != nil {
		return Info{}, err
	}
	info, err := wk.writeArchive(w, func(tw *tar.Writer, e entry) error { return writeEntry(root, tw, e) })
	if err != nil {
		return Info{}, fmt.Errorf("snapshot of %s: %w", dir, err)
	}
	return info, nil
}

// epoch is the modification time of every snapshot entry.
var epoch = time.Unix(0, 0)

func writeEntry(root *os.Root, tw *tar.Writer, e entry) error {
	hdr := &tar.Header{Name: e.rel, ModTime: epoch}
	switch e.kind {
	case fs.ModeDir:
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, e.rel+"/", 0o755
		return tw.WriteHeader(hdr)
	case fs.ModeSymlink:
		hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, e.target, 0o777
		return tw.WriteHeader(hdr)
	}
	hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, e.size
	if e.exec {
		hdr.Mode = 0o755
	}
	f, err := root.Open(e.rel)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() != e.size {
		return fmt.Errorf("%s changed while the snapshot was taken", e.rel)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, e.size); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s changed while the snapshot was taken", e.rel)
		}
		return fmt.Errorf("read %s: %w", e.rel, err)
	}
	return nil
}

// walk visits the directory rel ("" for the root) with the ignore lists of
// its ancestors.
func (wk *walker) walk(rel string, lists []*ignoreList) error {
	names, err := readDirNames(wk.root, rel)
	if err != nil {
		return err
	}
	present := make(map[string]bool, len(names))
	for _, n := range names {
		present[n] = true
	}
	var pats []ignorePattern
	for _, n := range ignoreFileNames {
		if !present[n] {
			continue
		}
		p := path.Join(rel, n)
		fi, err := wk.root.Lstat(p)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			continue // git does not follow symlinked ignore files either
		}
		data, err := wk.root.ReadFile(p)
		if err != nil {
			return err
		}
		pats = append(pats, parseIgnore(data)...)
	}
	if len(pats) > 0 {
		lists = append(lists[:len(lists):len(lists)], &ignoreList{dir: rel, patterns: pats})
	}

	for _, name := range names {
		if name == ".git" {
			continue
		}
		p := path.Join(rel, name)
		fi, err := wk.root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since we listed the directory
		}
		if err != nil {
			return err
		}
		mode := fi.Mode()
		switch {
		case mode.IsDir():
			if ignored(lists, p, true) {
				continue
			}
			wk.add(entry{rel: p, kind: fs.ModeDir})
			if err := wk.walk(p, lists); err != nil {
				return err
			}
		case mode.IsRegular():
			if ignored(lists, p, false) {
				continue
			}
			wk.add(entry{rel: p, exec: mode&0o111 != 0, size: fi.Size()})
		case mode&fs.ModeSymlink != 0:
			if ignored(lists, p, false) {
				continue
			}
			target, err := wk.linkTarget(p)
			if err != nil {
				return err
			}
			wk.add(entry{rel: p, kind: fs.ModeSymlink, target: target})
		}
	}
	return nil
}

// linkTarget returns the target to store for the symlink at rel, rewriting
// an absolute target inside the directory as a relative one. A target
// leading outside is recorded in badLinks.
func (wk *walker) linkTarget(rel string) (string, error) {
	target, err := wk.root.Readlink(rel)
	if err != nil {
		return "", err
	}
	stored := target
	if filepath.IsAbs(target) {
		stored = ""
		for _, abs := range wk.absDirs {
			if in, err := filepath.Rel(abs, target); err == nil && filepath.IsLocal(in) {
				r, err := filepath.Rel(path.Dir(rel), in)
				if err == nil {
					stored = filepath.ToSlash(r)
					break
				}
			}
		}
	}
	if stored != "" {
		out, err := escapes(wk.root, rel, stored)
		if err != nil {
			return "", err
		}
		if !out {
			return stored, nil
		}
	}
	wk.nBad++
	if len(wk.badLinks) < 5 {
		wk.badLinks = append(wk.badLinks, rel+" -> "+target)
	}
	return "", nil
}

func (wk *walker) linkErr() error {
	switch {
	case wk.nBad == 0:
		return nil
	case wk.nBad == 1:
		return fmt.Errorf("snapshot of %s: symlink %s leads outside the directory; exclude it with .hangarignore or .amlignore",
			wk.dir, wk.badLinks[0])
	}
	list := strings.Join(wk.badLinks, ", ")
	if more := wk.nBad - len(wk.badLinks); more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	return fmt.Errorf("snapshot of %s: %d symlinks lead outside the directory: %s; exclude them with .hangarignore or .amlignore",
		wk.dir, wk.nBad, list)
}

// readDirNames returns the names in directory rel of root, sorted.
func readDirNames(root *os.Root, rel string) ([]string, error) {
	if rel == "" {
		rel = "."
	}
	f, err := root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// maxLinkHops is how many symlinks escapes follows, as Linux's ELOOP limit.
const maxLinkHops = 40

// escapes reports whether the symlink at rel with the given target leads
// outside root. It resolves each element as the kernel would, following the
// symlinks it meets, and resolves elements that do not exist lexically,
// since a later file could appear there. A chain too long to resolve does
// not escape: the kernel refuses it too.
func escapes(root *os.Root, rel, target string) (bool, error) {
	if path.IsAbs(target) {
		return true, nil
	}
	pending := append(splitPath(path.Dir(rel)), splitPath(target)...)
	var stack []string
	hops := 0
	for len(pending) > 0 {
		elem := pending[0]
		pending = pending[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return true, nil
			}
			stack = stack[:len(stack)-1]
			continue
		}
		p := path.Join(path.Join(stack...), elem)
		fi, err := root.Lstat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || isNotDir(err) {
				stack = append(stack, elem)
				continue
			}
			return false, err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			stack = append(stack, elem)
			continue
		}
		hops++
		if hops > maxLinkHops {
			return false, nil
		}
		t, err := root.Readlink(p)
		if err != nil {
			return false, err
		}
		if path.IsAbs(t) {
			return true, nil
		}
		pending = append(splitPath(t), pending...)
	}
	return false, nil
}

func isNotDir(err error) bool { return errors.Is(err, syscall.ENOTDIR) }

func splitPath(p string) []string {
	if p == "" || p == "." {
		return nil
	}
	return strings.Split(p, "/")
}
