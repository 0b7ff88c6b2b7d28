package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// parseKVs parses repeated KEY=VALUE flag values into a map; flag names the
// flag for the error. A later key wins over an earlier one. nil for none.
func parseKVs(flag string, values []string) (map[string]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(values))
	for _, v := range values {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, usagef("invalid %s %q: want KEY=VALUE", flag, v)
		}
		m[k] = val
	}
	return m, nil
}

var daysRE = regexp.MustCompile(`([0-9]+(?:\.[0-9]*)?)d`)

// parseDuration accepts Go durations ("90m", "1h30m"), a "d" unit for days
// ("30d", "1d12h") and a bare number of seconds ("3600").
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > int64(time.Duration(1<<63-1)/time.Second) {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	var convErr error
	expanded := daysRE.ReplaceAllStringFunc(s, func(m string) string {
		f, err := strconv.ParseFloat(strings.TrimSuffix(m, "d"), 64)
		if err != nil {
			convErr = err
			return m
		}
		return strconv.FormatFloat(f*24, 'f', -1, 64) + "h"
	})
	if convErr != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	d, err := time.ParseDuration(expanded)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want for example 30d, 12h, 90m or 3600 (seconds)", s)
	}
	return d, nil
}

// decodeFile reads a YAML (or JSON) file into v with decodeStrict, and
// says on stderr which read-only fields of shown it ignored.
func (a *app) decodeFile(path string, v, shown any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	ignored, err := decodeStrict(path, data, v, shown)
	if err != nil {
		return err
	}
	if len(ignored) > 0 {
		a.progress("Ignoring read-only fields in %s: %s\n", path, strings.Join(ignored, ", "))
	}
	return nil
}

// decodeStrict decodes the one YAML (or JSON) document of data, a file
// called name, into v. Every problem is reported at once, as fieldErrors
// naming the key's path as written in the file and its line: keys v has no
// field for (with the keys valid there) and values of the wrong type (a
// fractional or quoted number for a whole one, a list for a string, …);
// nothing is truncated or guessed. A file with more than one document is
// refused.
//
// shown is the document "show -o yaml|json" prints for this kind of thing
// (api.Compute for an api.ComputeSpec), or nil. Its keys that v lacks are
// read-only (status, cost, …): they are dropped and returned rather than
// refused, so that a shown document can be created again.
func decodeStrict(name string, data []byte, v, shown any) (ignored []string, err error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: the file is empty", name)
	} else if err != nil {
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if emptyDocument(&doc) {
		return nil, fmt.Errorf("%s: the file is empty", name)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	} else if err == nil && !emptyDocument(&next) {
		return nil, fmt.Errorf("%s holds more than one YAML document (another begins at line %d); give one per file", name, next.Content[0].Line)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: want a mapping of keys to values at the top level", name)
	}
	var shownType reflect.Type
	if shown != nil {
		shownType = reflect.TypeOf(shown)
	}
	c := docChecker{file: name}
	c.check(root, reflect.TypeOf(v).Elem(), shownType, "")
	if len(c.problems) > 0 {
		return nil, c.problems
	}
	if err := root.Decode(v); err != nil {
		// check catches what Decode refuses; this is a safety net.
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s: %s", name, strings.Join(te.Errors, "; "))
		}
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return c.ignored, nil
}

// emptyDocument reports whether a decoded document holds nothing (a bare
// "---", or only comments).
func emptyDocument(doc *yaml.Node) bool {
	if len(doc.Content) == 0 {
		return true
	}
	n := doc.Content[0]
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" && n.Value == ""
}

// docChecker walks a YAML document against the Go type it decodes into,
// collecting problems and the read-only keys it drops.
type docChecker struct {
	file     string
	problems fieldErrors
	ignored  []string
}

func (c *docChecker) add(n *yaml.Node, path, format string, args ...any) {
	c.problems = append(c.problems, &fieldError{Field: path, Err: fmt.Errorf(format+" (%s line %d)", append(args, c.file, n.Line)...)})
}

// check checks n against t at path. shown is the matching type of the
// shown document (nil when there is none): keys it has and t lacks are
// dropped from n as read-only.
func (c *docChecker) check(n *yaml.Node, t, shown reflect.Type, path string) {
	t, shown = deref(t), deref(shown)
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // leaves the zero value, as an absent key does
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.add(n, path, "must be a mapping of keys to values, not %s", describeNode(n))
			return
		}
		fields := yamlFields(t)
		var shownFields map[string]reflect.Type
		if shown != nil && shown.Kind() == reflect.Struct {
			shownFields = jsonFields(shown)
		}
		kept := make([]*yaml.Node, 0, len(n.Content))
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				if _, readOnly := shownFields[k.Value]; readOnly {
					c.ignored = append(c.ignored, p)
				} else {
					c.problems = append(c.problems, &fieldError{Field: p, Err: fmt.Errorf("unknown key in %s (line %d); valid keys here: %s", c.file, k.Line, strings.Join(sortedKeys(fields), ", "))})
				}
				continue
			}
			kept = append(kept, k, val)
			c.check(val, ft, shownFields[k.Value], p)
		}
		n.Content = kept
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.add(n, path, "must be a mapping of keys to values, not %s", describeNode(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := joinPath(path, k.Value)
			if k.Kind != yaml.ScalarNode {
				c.add(k, p, "a key must be a single value, not %s", describeNode(k))
				continue
			}
			c.check(n.Content[i+1], t.Elem(), elem(shown), p)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.add(n, path, "must be a list, not %s", describeNode(n))
			return
		}
		for i, item := range n.Content {
			c.check(item, t.Elem(), elem(shown), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		c.scalar(n, t, path)
	}
}

// scalar checks a value for a field of a scalar type t.
func (c *docChecker) scalar(n *yaml.Node, t reflect.Type, path string) {
	want := map[reflect.Kind]string{reflect.String: "a string", reflect.Bool: "true or false", reflect.Float32: "a number", reflect.Float64: "a number"}[t.Kind()]
	whole := false
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want, whole = "a whole number", true
	}
	if want == "" {
		want = "a " + t.String()
	}
	if n.Kind != yaml.ScalarNode {
		c.add(n, path, "must be %s, not %s", want, describeNode(n))
		return
	}
	tag := n.ShortTag()
	if whole {
		// yaml.v3 would truncate 1.5 to 1 without a word.
		if tag == "!!float" {
			f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
			if err != nil || f != math.Trunc(f) {
				c.add(n, path, "must be a whole number, not %s", n.Value)
				return
			}
		} else if tag != "!!int" {
			c.add(n, path, "must be a whole number, not %s", describeNode(n))
			return
		}
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		if whole {
			lo, hi := intRange(t)
			c.add(n, path, "(%s) must be between %s and %s", n.Value, lo, hi)
			return
		}
		c.add(n, path, "must be %s, not %s", want, describeNode(n))
	}
}

// intRange is the range of an integer type, for messages.
func intRange(t reflect.Type) (lo, hi string) {
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "0", strconv.FormatUint(1<<t.Bits()-1, 10)
	}
	return strconv.FormatInt(-1<<(t.Bits()-1), 10), strconv.FormatInt(1<<(t.Bits()-1)-1, 10)
}

// describeNode names what a node holds, for "must be X, not Y".
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.ShortTag() == "!!str" {
		return strconv.Quote(n.Value)
	}
	return n.Value
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// elem is the element type of a map or slice type; nil for others.
func elem(t reflect.Type) reflect.Type {
	if t == nil {
		return nil
	}
	switch t.Kind() {
	case reflect.Map, reflect.Slice, reflect.Array:
		return t.Elem()
	}
	return nil
}

// jsonFields maps the JSON keys of a struct type (as encoding/json names
// them, embedded structs included) to their types: the keys of a shown
// document.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			if ft := deref(f.Type); ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					m[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}

// yamlFields maps the YAML keys of a struct type (as yaml.v3 names them,
// inline structs included) to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range yamlFields(ft) {
				m[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}
