package sqlstore

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Times are stored as BIGINT microseconds since the Unix epoch, UTC, with
// NULL for the zero time.Time. Integers keep both engines identical (no
// driver-specific time parsing, no time zone handling) and make the hours
// arithmetic of NodeHoursByCompute plain subtraction.

// micros is the column value of t.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// timeDest scans a micros column into a time.Time, in UTC.
type timeDest struct{ t *time.Time }

func tm(t *time.Time) timeDest { return timeDest{t} }

func (d timeDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.t = time.Time{}
	case int64:
		*d.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("time column holds %T, want integer microseconds", src)
	}
	return nil
}

// encoder turns values into column values, keeping the first error so an
// insert can encode every field and check once.
type encoder struct{ err error }

// json returns v as JSON text. nil maps and slices become "null" and empty
// ones "{}" or "[]", so both round-trip as they were.
func (e *encoder) json(v any) string {
	b, err := json.Marshal(v)
	if err != nil && e.err == nil {
		e.err = fmt.Errorf("encode %T: %w", v, err)
	}
	return string(b)
}

// jsonDest scans a JSON text column into v (a pointer); NULL leaves v alone.
type jsonDest struct{ v any }

func js(v any) jsonDest { return jsonDest{v} }

func (d jsonDest) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("JSON column holds %T", src)
	}
	if err := json.Unmarshal(b, d.v); err != nil {
		return fmt.Errorf("decode %T: %w", d.v, err)
	}
	return nil
}

// text makes free text that may come from a process (reasons, messages,
// metric text) storable on both engines: PostgreSQL TEXT refuses NUL bytes
// and invalid UTF-8, so both are replaced, the same way on SQLite.
func text(s string) string {
	if !strings.ContainsRune(s, 0) && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// floatValue is a metric value's column value. SQLite stores NaN as NULL,
// so NaN is written as NULL on both engines and read back as NaN.
func floatValue(f float64) any {
	if math.IsNaN(f) {
		return nil
	}
	return f
}

func floatFrom(n sql.NullFloat64) float64 {
	if !n.Valid {
		return math.NaN()
	}
	return n.Float64
}
