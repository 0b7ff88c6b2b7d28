package model

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/hangar-ml/hangar/internal/problem"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// ValidateName checks the model name rules: 1–255 letters, digits, '_',
// '-' and '.', starting with a letter or digit.
func ValidateName(name string) *problem.Error {
	switch {
	case name == "":
		return problem.Field("name", "is required")
	case len(name) > 255:
		return problem.Field("name", "must be at most 255 characters long (it has %d)", len(name))
	case !nameRE.MatchString(name):
		return problem.Field("name", "%q must contain only letters, digits, '_', '-' and '.', starting with a letter or digit", name)
	}
	return nil
}

// ParseRef splits "name" (version 0: the latest) or "name:version".
func ParseRef(ref string) (name string, version int, err error) {
	name, v, ok := strings.Cut(ref, ":")
	if name == "" {
		return "", 0, fmt.Errorf("%q does not name a model (want NAME or NAME:VERSION)", ref)
	}
	if !ok {
		return name, 0, nil
	}
	version, err = strconv.Atoi(v)
	if err != nil || version < 1 {
		return "", 0, fmt.Errorf("version in %q must be a positive integer", ref)
	}
	return name, version, nil
}
