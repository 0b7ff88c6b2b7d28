// Package problem carries user-facing errors from deep in the server to the
// API edge: each has a code, the field the user wrote, a message saying the
// rule, and an optional hint (usually a command to try). The HTTP layer maps
// the code to a status; everything else is an internal error and is logged,
// never sent.
package problem

import (
	"errors"
	"fmt"
	"strings"
)

// Code is the machine-readable kind of a problem; it decides the HTTP status.
type Code string

// Codes, with the HTTP status the API uses for each.
const (
	InvalidField  Code = "InvalidField"         // 400
	BadRequest    Code = "BadRequest"           // 400
	Unauthorized  Code = "Unauthorized"         // 401
	Forbidden     Code = "Forbidden"            // 403
	NotFound      Code = "NotFound"             // 404
	Conflict      Code = "Conflict"             // 409
	TooLarge      Code = "TooLarge"             // 413
	Unsupported   Code = "UnsupportedMediaType" // 415
	Unprocessable Code = "Unprocessable"        // 422
	TooMany       Code = "TooManyRequests"      // 429
)

// Error is one user-facing problem.
type Error struct {
	Code    Code   `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
	// Details holds further problems when several fields are wrong at once.
	Details []*Error `json:"details,omitempty"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// Field returns an InvalidField problem for field.
func Field(field, format string, args ...any) *Error {
	return &Error{Code: InvalidField, Field: field, Message: fmt.Sprintf(format, args...)}
}

// New returns a problem with the given code and no field.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithHint returns e with a hint set.
func (e *Error) WithHint(hint string) *Error { e.Hint = hint; return e }

// WithField returns e with a field set.
func (e *Error) WithField(f string) *Error { e.Field = f; return e }

// List collects validation problems so all of them can be reported at once.
type List struct{ items []*Error }

// Add records a field problem.
func (l *List) Add(field, format string, args ...any) {
	l.items = append(l.items, Field(field, format, args...))
}

// AddErr records an existing problem.
func (l *List) AddErr(e *Error) { l.items = append(l.items, e) }

// Len is the number of problems recorded.
func (l *List) Len() int { return len(l.items) }

// Err returns nil when nothing was recorded, the single problem when there is
// one, or the first problem carrying the rest in Details (its message joins
// them all, so a CLI printing only the message still shows every field).
func (l *List) Err() error {
	switch len(l.items) {
	case 0:
		return nil
	case 1:
		return l.items[0]
	}
	first := *l.items[0]
	var parts []string
	for _, it := range l.items {
		parts = append(parts, it.Error())
	}
	first.Message = first.Message + " (and: " + strings.Join(parts[1:], "; ") + ")"
	first.Details = l.items
	return &first
}

// As returns the problem inside err, if any.
func As(err error) (*Error, bool) {
	var p *Error
	if errors.As(err, &p) {
		return p, true
	}
	return nil, false
}
