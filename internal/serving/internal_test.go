package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hangar-ml/hangar/internal/clock"
)

func TestLocateJSONError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body              string
		offset, line, col int
	}{
		{`{"data": x}`, 9, 1, 10},
		{"{\n  \"a\": [1,,2]\n}", 12, 2, 11},
		{`{"data": [1, 2`, 14, 1, 15},
		{``, 0, 1, 1},
		{`{} {}`, 3, 1, 4},
		{"{\"ü\": \"é\", x}", 13, 1, 12}, // columns count characters
		{"\n\n  ]", 4, 3, 3},
	} {
		pos := locateJSONError([]byte(tc.body))
		if pos.Offset != tc.offset || pos.Line != tc.line || pos.Column != tc.col {
			t.Errorf("%q: %+v, want offset %d line %d column %d", tc.body, pos, tc.offset, tc.line, tc.col)
		}
	}
}

func FuzzLocateJSONError(f *testing.F) {
	for _, s := range []string{`{"data": x}`, "{\n  \"a\": [1,,2]\n}", `{"data": [1, 2`, ``, `{} {}`, `"\xff"`, "[1,\n2,\n\x00]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if json.Valid(body) {
			return
		}
		pos := locateJSONError(body)
		if pos.Offset < 0 || pos.Offset > len(body) || pos.Line < 1 || pos.Column < 1 || pos.Reason == "" {
			t.Fatalf("%q: %+v", body, pos)
		}
		if want := bytes.Count(body[:pos.Offset], []byte("\n")) + 1; pos.Line != want {
			t.Fatalf("%q: line %d, want %d", body, pos.Line, want)
		}
		if pos.Column > utf8.RuneCount(body[:pos.Offset])+1 {
			t.Fatalf("%q: column %d past the offset", body, pos.Column)
		}
	})
}

func TestClassifyContentType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ct         []string
		json, okay bool
	}{
		{nil, true, true},
		{[]string{""}, true, true},
		{[]string{"application/json"}, true, true},
		{[]string{" Application/JSON ; charset=utf-8"}, true, true},
		{[]string{"application/problem+json"}, true, true},
		{[]string{"text/plain"}, false, true},
		{[]string{"text/plain;charset=latin-1"}, false, true},
		{[]string{"+json"}, false, false},
		{[]string{"text/html"}, false, false},
		{[]string{"application/x-www-form-urlencoded"}, false, false},
	} {
		j, ok := classifyContentType(tc.ct)
		if j != tc.json || ok != tc.okay {
			t.Errorf("%q: json %t ok %t, want %t %t", tc.ct, j, ok, tc.json, tc.okay)
		}
	}
}

func FuzzClassifyContentType(f *testing.F) {
	for _, s := range []string{"application/json", "text/plain; charset=utf-8", "a/b+json", "+json", ";", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ct string) {
		isJSON, ok := classifyContentType([]string{ct})
		if isJSON && !ok {
			t.Fatalf("%q: JSON but refused", ct)
		}
	})
}

func TestKeyEqual(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		got, want string
		eq        int
	}{
		{"abc", "abc", 1},
		{"abd", "abc", 0},
		{"ab", "abc", 0},
		{"", "", 0}, // an empty key never matches
	} {
		if eq := keyEqual(tc.got, tc.want); eq != tc.eq {
			t.Errorf("keyEqual(%q, %q) = %d", tc.got, tc.want, eq)
		}
	}
}

func TestLineRing(t *testing.T) {
	t.Parallel()
	var r lineRing
	if got := r.last(5); len(got) != 0 {
		t.Errorf("empty ring: %q", got)
	}
	for i := range tailLines + 3 {
		r.add(fmt.Sprint(i))
	}
	got := r.last(3)
	if strings.Join(got, ",") != fmt.Sprintf("%d,%d,%d", tailLines, tailLines+1, tailLines+2) {
		t.Errorf("last 3: %q", got)
	}
	if all := r.last(100); len(all) != tailLines || all[0] != "3" {
		t.Errorf("all: %q", all)
	}
}

func TestCallQueue(t *testing.T) {
	t.Parallel()
	var q callQueue
	cs := make([]*call, 5)
	for i := range cs {
		cs[i] = &call{n: i}
		q.push(cs[i])
	}
	if q.pop() != cs[0] || !q.remove(cs[2]) || q.remove(cs[2]) || q.len() != 3 {
		t.Fatal("pop/remove")
	}
	for _, want := range []int{1, 3, 4} {
		if c := q.pop(); c == nil || c.n != want {
			t.Fatalf("pop: %+v, want %d", c, want)
		}
	}
	if q.pop() != nil || q.len() != 0 {
		t.Fatal("not empty")
	}
	q.push(cs[0]) // reuses the storage
	if q.len() != 1 || q.head != 0 {
		t.Fatalf("after reuse: len %d head %d", q.len(), q.head)
	}
}

func TestNewUUID(t *testing.T) {
	t.Parallel()
	a, b := newUUID(), newUUID()
	if a == b || len(a) != 36 || a[14] != '4' || !strings.ContainsRune("89ab", rune(a[19])) || strings.Count(a, "-") != 4 {
		t.Errorf("uuids %s %s", a, b)
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkHandler calls ServeHTTP directly, one request at a time, to
// count the front end's own allocations per request (net/http's are not
// included).
func BenchmarkHandler(b *testing.B) {
	py, err := exec.LookPath("python3")
	if err != nil {
		b.Skip("python3 not on PATH")
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "score.py"), []byte("def run(raw_data):\n    return 1\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Config{Name: "bench", Addr: "127.0.0.1:0", Pool: PoolConfig{Python: py, SourceDir: dir, EntryScript: "score.py"}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Stop(ctx)
	if st := s.WaitSettled(ctx); st.State != Healthy {
		b.Fatalf("%+v", st)
	}
	body := []byte(`{"data": [[1, 2, 3]]}`)
	rd := bytes.NewReader(body)
	req, err := http.NewRequest("POST", "/score", io.NopCloser(rd))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(body))
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		clear(w.h)
		s.ServeHTTP(w, req)
	}
}

func TestServiceLogRotates(t *testing.T) {
	t.Parallel()
	const max = 1000
	path := filepath.Join(t.TempDir(), "logs", "service.log")
	// An earlier run left more than the cap: it is rotated at open.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Repeat([]byte("old\n"), max), 0o644); err != nil {
		t.Fatal(err)
	}
	l := newServiceLog(clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), max)
	if err := l.open(path); err != nil {
		t.Fatal(err)
	}
	const line = "0123456789012345678901234567890123456789012345678\n" // 50 bytes
	for i := range 100 {
		l.output([]byte(fmt.Sprintf("%02d%s", i, line[2:])))
		if i%10 == 0 {
			l.event("event %d", i)
		}
	}
	l.close()
	cur, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	prev, err := os.ReadFile(path + ".1")
	if err != nil {
		t.Fatal(err)
	}
	longest := len("2026-01-01T00:00:00.000Z hangar: event 90\n")
	if len(cur) > max+longest || len(prev) > max+longest || len(prev) <= max {
		t.Errorf("sizes %d and %d (.1), cap %d", len(cur), len(prev), max)
	}
	if bytes.Contains(prev, []byte("old\n")) {
		t.Error("the earlier run's log survived two rotations")
	}
	if !bytes.HasSuffix(cur, []byte("99"+line[2:])) {
		t.Errorf("the last line is not at the end of the log:\n%s", cur)
	}
	// Every line is whole, in one file or the other, in order.
	all := string(prev) + string(cur)
	if !strings.Contains(all, "80"+line[2:]) || strings.Index(all, "80"+line[2:]) > strings.Index(all, "99"+line[2:]) {
		t.Errorf("lines lost or out of order:\n%s", all)
	}
}

func TestServiceLogUncapped(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "service.log")
	l := newServiceLog(clock.Real{}, -1)
	if err := l.open(path); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		l.output([]byte("some output\n"))
	}
	l.close()
	if _, err := os.Stat(path + ".1"); !os.IsNotExist(err) {
		t.Errorf("rotated without a cap: %v", err)
	}
}
