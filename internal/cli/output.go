package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gopkg.in/yaml.v3"
)

// emit prints v in the chosen format: the document itself for json and
// yaml, or what table writes for table.
func (a *app) emit(v any, table func(w io.Writer)) error {
	switch a.output {
	case "json":
		return writeJSON(a.stdout, v)
	case "yaml":
		return writeYAML(a.stdout, v)
	}
	tw := newTable(a.stdout)
	table(tw)
	return tw.Flush()
}

// machine reports whether the output is a document (json or yaml), in which
// case stdout carries nothing else.
func (a *app) machine() bool { return a.output == "json" || a.output == "yaml" }

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// row writes one tab-separated table row.
func row(w io.Writer, cells ...any) {
	for i, c := range cells {
		if i > 0 {
			io.WriteString(w, "\t")
		}
		s := fmt.Sprint(c)
		if s == "" {
			s = "-"
		}
		io.WriteString(w, strings.NewReplacer("\t", " ", "\n", " ").Replace(s))
	}
	io.WriteString(w, "\n")
}

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// writeYAML prints v as YAML with the same keys, in the same order, as its
// JSON form (the API types carry JSON tags, not YAML ones).
func writeYAML(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return err
	}
	blockStyle(&n)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return err
	}
	return enc.Close()
}

// blockStyle clears the flow and quoting styles JSON input leaves, so the
// encoder writes plain block YAML (it still quotes strings that would
// otherwise read as another type).
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// flush ends the current block of aligned columns of a table writer, so
// that what follows is aligned on its own.
func flush(w io.Writer) {
	if f, ok := w.(interface{ Flush() error }); ok {
		_ = f.Flush()
	}
}

// kvTable writes "Key:  value" lines, aligned.
type kvTable struct {
	w io.Writer
}

func (t kvTable) add(key string, value any) {
	s := fmt.Sprint(value)
	if s == "" {
		s = "-"
	}
	fmt.Fprintf(t.w, "%s:\t%s\n", key, s)
}

// age says how long ago t was, in one or two units ("5s", "3m10s", "2h5m",
// "4d3h"); "-" for a zero time.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return shortDuration(now.Sub(t))
}

// shortDuration renders d in at most two units, rounded down.
func shortDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return twoUnits(s/60, "m", s%60, "s")
	case s < 86400:
		return twoUnits(s/3600, "h", s%3600/60, "m")
	default:
		return twoUnits(s/86400, "d", s%86400/3600, "h")
	}
}

func twoUnits(a int64, au string, b int64, bu string) string {
	if b == 0 {
		return fmt.Sprintf("%d%s", a, au)
	}
	return fmt.Sprintf("%d%s%d%s", a, au, b, bu)
}

// timestamp renders t in local time to the second; "-" for nil or zero.
func timestamp(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// sortedKV renders a map as "k=v, k2=v2" with keys sorted.
func sortedKV(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ", ")
}

// byteSize renders n bytes in binary units with one decimal ("512 B",
// "3.4 KB", "412.3 MB"; 1 MB = 1024 KB = 1024² bytes), as the snapshot
// limits are given and as their messages render sizes, so that an upload's
// size and the 300 MB limit compare.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"KB", "MB", "GB", "TB"} {
		f /= unit
		if f < unit || u == "TB" {
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return strconv.FormatInt(n, 10) + " B"
}

// money renders an amount with its currency ("$0.12", "0.12 EUR"); small
// amounts keep four decimals so that a few node-minutes do not show as 0.
func money(amount float64, currency string) string {
	prec := 2
	if amount != 0 && amount < 1 && amount > -1 {
		prec = 4
	}
	switch strings.ToUpper(currency) {
	case "", "USD":
		return fmt.Sprintf("$%.*f", prec, amount)
	}
	return fmt.Sprintf("%.*f %s", prec, amount, currency)
}

// intPtr renders an optional int ("-" when nil).
func intPtr(p *int) string {
	if p == nil {
		return "-"
	}
	return strconv.Itoa(*p)
}
