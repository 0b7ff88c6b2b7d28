package snapshot

import (
	"bytes"
	"path"
	"strings"
)

// ignoreFileNames are the ignore files read in every directory, in the order
// their patterns apply: a later file overrides an earlier one, so a
// .hangarignore can re-include ("!data/small") what .gitignore excludes.
var ignoreFileNames = []string{".gitignore", ".amlignore", ".hangarignore"}

// An ignoreList is the patterns of the ignore files in one directory.
type ignoreList struct {
	dir      string // slash path of that directory relative to the snapshot root; "" for the root
	patterns []ignorePattern
}

// An ignorePattern is one line of an ignore file, parsed as git does
// (gitignore(5)): "!" negates, a trailing "/" matches only directories, a
// pattern without an inner "/" matches a name at any depth, and any other
// pattern matches the path relative to the ignore file's directory, with "*"
// and "?" not crossing "/" and "**" spanning directories.
type ignorePattern struct {
	negate  bool
	dirOnly bool
	base    string   // glob matched against the last path element; set when segs is nil
	segs    []string // globs matched element by element; "**" spans zero or more elements
}

// parseIgnore parses the content of an ignore file. Malformed globs (an
// unclosed "[") match nothing, as in git.
func parseIgnore(data []byte) []ignorePattern {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var out []ignorePattern
	for line := range strings.SplitSeq(string(data), "\n") {
		if p, ok := parseIgnoreLine(line); ok {
			out = append(out, p)
		}
	}
	return out
}

func parseIgnoreLine(line string) (ignorePattern, bool) {
	var p ignorePattern
	// Git keeps a trailing CR as part of the pattern; we drop it so files
	// written on Windows work.
	line = strings.TrimSuffix(line, "\r")
	if line == "" || line[0] == '#' {
		return p, false
	}
	line = trimTrailingSpaces(line)
	if line != "" && line[0] == '!' {
		p.negate = true
		line = line[1:]
	}
	if strings.HasSuffix(line, "/") {
		p.dirOnly = true
		line = line[:len(line)-1]
	}
	if line == "" {
		return p, false
	}
	if !strings.Contains(line, "/") {
		p.base = fixClass(line)
		if !validGlob(p.base) {
			return p, false
		}
		return p, true
	}
	line = strings.TrimPrefix(line, "/")
	for seg := range strings.SplitSeq(line, "/") {
		if seg == "**" && len(p.segs) > 0 && p.segs[len(p.segs)-1] == "**" {
			continue // "a/**/**/b" is "a/**/b"
		}
		seg = fixClass(seg)
		if seg != "**" && !validGlob(seg) {
			return p, false
		}
		p.segs = append(p.segs, seg)
	}
	return p, true
}

// trimTrailingSpaces removes trailing spaces not escaped by a backslash, as
// git's trim_trailing_spaces does.
func trimTrailingSpaces(s string) string {
	lastSpace := -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ':
			if lastSpace < 0 {
				lastSpace = i
			}
		case '\\':
			i++
			if i == len(s) {
				return s
			}
			lastSpace = -1
		default:
			lastSpace = -1
		}
	}
	if lastSpace >= 0 {
		return s[:lastSpace]
	}
	return s
}

// fixClass rewrites git's "[!...]" class negation to path.Match's "[^...]".
func fixClass(glob string) string {
	if !strings.Contains(glob, "[!") {
		return glob
	}
	var b strings.Builder
	for i := 0; i < len(glob); i++ {
		c := glob[i]
		b.WriteByte(c)
		switch {
		case c == '\\' && i+1 < len(glob):
			i++
			b.WriteByte(glob[i])
		case c == '[' && i+1 < len(glob) && glob[i+1] == '!':
			b.WriteByte('^')
			i++
		}
	}
	return b.String()
}

func validGlob(g string) bool {
	_, err := path.Match(g, "")
	return err == nil
}

// match reports whether the pattern matches rel, a slash path relative to
// the directory of the pattern's ignore file.
func (p *ignorePattern) match(rel string, isDir bool) bool {
	if p.dirOnly && !isDir {
		return false
	}
	if p.segs == nil {
		ok, _ := path.Match(p.base, path.Base(rel))
		return ok
	}
	return matchSegs(p.segs, strings.Split(rel, "/"))
}

func matchSegs(pat, elems []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			if len(pat) == 1 {
				// A trailing "/**" matches everything inside, not the
				// directory itself.
				return len(elems) > 0
			}
			for i := 0; i <= len(elems); i++ {
				if matchSegs(pat[1:], elems[i:]) {
					return true
				}
			}
			return false
		}
		if len(elems) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], elems[0]); !ok {
			return false
		}
		pat, elems = pat[1:], elems[1:]
	}
	return len(elems) == 0
}

// ignored reports whether rel (a slash path relative to the snapshot root)
// is excluded by the ignore lists of its ancestors, given outermost first.
// As in git, the last matching pattern wins and deeper files override
// shallower ones. Callers do not descend into ignored directories, so
// nothing under an ignored directory can be re-included.
func ignored(lists []*ignoreList, rel string, isDir bool) bool {
	for i := len(lists) - 1; i >= 0; i-- {
		l := lists[i]
		sub := rel
		if l.dir != "" {
			sub = rel[len(l.dir)+1:]
		}
		for j := len(l.patterns) - 1; j >= 0; j-- {
			p := &l.patterns[j]
			if p.match(sub, isDir) {
				return !p.negate
			}
		}
	}
	return false
}
