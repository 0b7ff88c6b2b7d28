// Package pyreq checks that a Python interpreter has an environment's
// requirements. Hangar's nodes and services cannot install packages (no
// package index is reachable where they run), so a missing requirement must
// fail early and say which one.
package pyreq

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// requirementsCheck is run by the attempt's interpreter. It reads the
// requirements as JSON on stdin and prints one line per problem. Only an
// exact "==" pin is compared; other specifiers are checked for presence.
const requirementsCheck = `
import json, re, sys
from importlib import metadata
for req in json.load(sys.stdin):
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(==\s*([^\s;,]+))?", req)
    if not m:
        print("cannot parse requirement %r" % req); continue
    name, want = m.group(1), m.group(3)
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        print("%s is not installed" % name); continue
    if want and have != want:
        print("%s %s is installed, %s wanted" % (name, have, want))
`

// Check verifies the interpreter has every requirement. Nodes
// cannot install packages (no package index is reachable), so a missing one
// fails the attempt before the user's code starts, naming what is missing.
func Check(ctx context.Context, python string, env []string, dir string, reqs []string) error {
	if len(reqs) == 0 {
		return nil
	}
	input, err := json.Marshal(reqs)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", requirementsCheck)
	cmd.Env, cmd.Dir, cmd.Stdin = env, dir, bytes.NewReader(input)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("check requirements with %s: %v: %s", python, err, strings.TrimSpace(errOut.String()))
	}
	if problems := strings.TrimSpace(out.String()); problems != "" {
		return fmt.Errorf("requirements not met by %s: %s; nodes cannot install packages, so use an environment whose python: has them (e.g. Debian's /usr/bin/python3 with python3-sklearn)",
			python, strings.ReplaceAll(problems, "\n", "; "))
	}
	return nil
}
