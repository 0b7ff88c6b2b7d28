package service

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hangar-ml/hangar/internal/problem"
)

// Limits and defaults of a deployment.
const (
	// TargetLocal runs the service on the server's host; the only target
	// so far.
	TargetLocal = "local"
	// MaxWorkers bounds the worker processes of one service.
	MaxWorkers = 16
	// DefaultRequestTimeout bounds one /score request when none is given.
	DefaultRequestTimeout = 60 * time.Second
	// MaxRequestTimeout is the longest request timeout allowed.
	MaxRequestTimeout = time.Hour
	// MinPort and MaxPort bound a port chosen by the user; 0 asks the API
	// to pick a free one.
	MinPort = 1024
	MaxPort = 65535
)

// Targets lists the deployment targets that exist.
var Targets = []string{TargetLocal}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// ValidateName checks the service name rules (Azure ML's): 3–32
// characters, lowercase letters, digits and '-', starting with a letter
// and not ending with '-'.
func ValidateName(name string) *problem.Error {
	n := utf8.RuneCountInString(name)
	switch {
	case name == "":
		return problem.Field("name", "is required")
	case n < 3 || n > 32:
		return problem.Field("name", "%q must be 3 to 32 characters long (it has %d)", name, n)
	case !nameRE.MatchString(name):
		return problem.Field("name", "%q must start with a lowercase letter and contain only lowercase letters, digits and '-'", name)
	case strings.HasSuffix(name, "-"):
		return problem.Field("name", "%q must not end with '-'", name)
	}
	return nil
}
