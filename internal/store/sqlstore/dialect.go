package sqlstore

import (
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is everything that differs between SQLite and PostgreSQL. Queries
// are written once, with ? placeholders and the portable subset of SQL both
// engines share (RETURNING, ON CONFLICT, partial and expression indexes);
// the schema uses the {{…}} tokens below for the few types that differ.
type dialect struct {
	name string
	// dollar rewrites ? placeholders as $1, $2, … (PostgreSQL).
	dollar bool
	ddl    *strings.Replacer
}

var (
	sqliteDialect = &dialect{
		name: "sqlite",
		ddl: strings.NewReplacer(
			"{{serial}}", "INTEGER PRIMARY KEY AUTOINCREMENT",
			"{{blob}}", "BLOB",
			"{{float}}", "REAL",
		),
	}
	postgresDialect = &dialect{
		name:   "postgres",
		dollar: true,
		ddl: strings.NewReplacer(
			"{{serial}}", "BIGSERIAL PRIMARY KEY",
			"{{blob}}", "BYTEA",
			"{{float}}", "DOUBLE PRECISION",
		),
	}
)

// rebind turns the ? placeholders of q into the dialect's. Queries in this
// package never contain a literal '?'.
func (d *dialect) rebind(q string) string {
	if !d.dollar || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// isUniqueViolation reports whether err is a duplicate key (primary key or
// unique index) from either engine.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" // unique_violation
	}
	return false
}

// isForeignKeyViolation reports whether err is a reference to a missing row.
func isForeignKeyViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23503" // foreign_key_violation
	}
	return false
}

// placeholders returns "?, ?, …" with n marks, for IN lists.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}
