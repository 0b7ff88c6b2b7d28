package pysdk

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestWriteToIsIdempotent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for range 2 {
		if err := WriteTo(dir); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"hangar/__init__.py", "hangar/core/run.py", "hangar/core/compute/amlcompute.py", "hangar/_client.py"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	// A module the package no longer has is removed; an edited one restored.
	stale := filepath.Join(dir, "hangar", "gone.py")
	if err := os.WriteFile(stale, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "hangar", "core", "run.py")
	if err := os.WriteFile(run, []byte("broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteTo(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale module kept: %v", err)
	}
	want, _ := files.ReadFile("hangar/core/run.py")
	if got, _ := os.ReadFile(run); string(got) != string(want) {
		t.Error("edited module not restored")
	}
}

// TestPythonSuite runs the SDK's unittest suite (sdk/python/tests) against a
// real server built from this tree; it fails when unittest does.
func TestPythonSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	bin := filepath.Join(t.TempDir(), "hangar")
	build := exec.Command("go", "build", "-o", bin, "github.com/hangar-ml/hangar/cmd/hangar")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build hangar: %v\n%s", err, out)
	}
	cmd := exec.Command(py, "-m", "unittest", "discover", "-s", "tests", "-t", "tests")
	cmd.Env = append(os.Environ(), "HANGAR_BIN="+bin)
	for _, k := range []string{"HANGAR_URL", "HANGAR_TOKEN", "HANGAR_WORKSPACE", "HANGAR_RUN_ID"} {
		cmd.Env = append(cmd.Env, k+"=")
	}
	out, err := cmd.CombinedOutput()
	t.Logf("python3 -m unittest discover -s sdk/python/tests:\n%s", out)
	if err != nil {
		t.Fatalf("python unittest failed: %v", err)
	}
}
