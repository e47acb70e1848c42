package torch

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// pythonWithTorch finds an interpreter that imports torch (Debian's python3-torch installs into /usr/bin/python3,
// which may not be the python3 first on PATH).
func pythonWithTorch() string {
	for _, p := range []string{os.Getenv("SNAPEVAL_TEST_PYTHON"), "/usr/bin/python3", "python3"} {
		if p == "" {
			continue
		}
		if exec.Command(p, "-c", "import torch, numpy").Run() == nil {
			return p
		}
	}
	return ""
}

// TestPythonWorker runs the worker's own tests (worker/tests, unittest): slot formula and plans against
// testdata/plans.json, SnapKV selection against the selection fixture, both conformance models through the engine
// and a plain-torch model in float32 (every policy alone and all in flight together), the scheduler, sampling and
// the line protocol. They need a Python with torch (CI installs Debian's python3-torch) and no transformers.
func TestPythonWorker(t *testing.T) {
	py := pythonWithTorch()
	if py == "" {
		t.Skip("no Python with torch and numpy here (apt-get install python3-torch, or set SNAPEVAL_TEST_PYTHON): the worker's tests did not run")
	}
	cmd := exec.Command(py, "-m", "unittest", "discover", "-s", "tests", "-t", ".")
	cmd.Dir = filepath.Join("worker")
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s -m unittest in worker/: %v\n%s", py, err, out)
	}
	t.Logf("%s", out)
}
