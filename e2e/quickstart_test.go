package e2e

import (
	"bytes"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestQuickstart runs `hangar quickstart` as a user would, from an empty
// directory: it must train, deploy, score and exit 0 with the accuracy as
// its last line, leaving no process behind.
func TestQuickstart(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import sklearn").Run() != nil {
		t.Fatal("/usr/bin/python3 lacks scikit-learn: apt-get install python3-sklearn (.ci/run installs it)")
	}
	dataDir := t.TempDir()
	killNodes(t, dataDir)
	cmd := exec.Command(hangarBin, "quickstart", "--data-dir", dataDir)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("quickstart: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := lines[len(lines)-1]
	m := regexp.MustCompile(`^accuracy: (0\.\d{3})$`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q, want accuracy: 0.NNN\nstdout:\n%s", last, stdout.String())
	}
	if m[1] < "0.900" {
		t.Errorf("held-out accuracy %s is implausibly low for digits", m[1])
	}
	if !strings.Contains(stdout.String(), "digit   0: predicted") {
		t.Errorf("no predictions against labels printed:\n%s", stdout.String())
	}
	for _, want := range []string{"cpu-cluster: 0 node(s)", "Healthy", "Registering the model"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, stderr.String())
		}
	}
	if out, _ := exec.Command("pgrep", "-f", "agent --server .* --dir "+dataDir).Output(); len(out) > 0 {
		t.Errorf("quickstart left agent processes: %s", out)
	}
}

// TestQuickstartWithoutSklearn: an interpreter without scikit-learn is
// refused with how to install it, and a non-zero exit.
func TestQuickstartWithoutSklearn(t *testing.T) {
	cmd := exec.Command(hangarBin, "quickstart", "--python", "/bin/false")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("quickstart succeeded without scikit-learn:\n%s", out)
	}
	if !strings.Contains(string(out), "apt-get install python3-sklearn") {
		t.Errorf("output lacks the install hint:\n%s", out)
	}
}
