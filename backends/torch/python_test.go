package torch

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
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

// workerTests is a run of the worker's own tests (python -m unittest in worker/).
type workerTests struct {
	py     string
	cmd    *exec.Cmd
	out    bytes.Buffer
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

// startWorkerTests starts the worker's tests with py in the background.
func startWorkerTests(py string) *workerTests {
	ctx, cancel := context.WithCancel(context.Background())
	w := &workerTests{py: py, done: make(chan struct{}), cancel: cancel}
	w.cmd = exec.CommandContext(ctx, py, "-m", "unittest", "discover", "-s", "tests", "-t", ".")
	w.cmd.Dir = filepath.Join("worker")
	w.cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
	if w.err = w.cmd.Start(); w.err != nil {
		close(w.done)
		return w
	}
	go func() {
		w.err = w.cmd.Wait()
		close(w.done)
	}()
	return w
}

// early is the worker's test run that TestMain starts before the package's tests when TestPythonWorker is among
// them, so that its ~20 s (mostly the tensor-parallel worker's processes) overlap the Go tests; TestPythonWorker
// takes it (once: a second run, -count 2, starts its own).
var early struct {
	sync.Mutex
	run *workerTests
}

// startEarlyWorkerTests is TestMain's: it starts the run when -test.run selects TestPythonWorker.
func startEarlyWorkerTests() {
	flag.Parse()
	if !selected("TestPythonWorker") {
		return
	}
	if py := pythonWithTorch(); py != "" {
		early.run = startWorkerTests(py)
	}
}

// stopEarlyWorkerTests ends the early run if no test took it.
func stopEarlyWorkerTests() {
	early.Lock()
	defer early.Unlock()
	if early.run != nil {
		early.run.cancel()
		<-early.run.done
		early.run = nil
	}
}

// selected says whether the -test.run and -test.skip flags select the top-level test name (a pattern's part
// before the first slash is matched against it, as go test does).
func selected(name string) bool {
	match := func(flagName string) (set, ok bool) {
		f := flag.Lookup(flagName)
		if f == nil || f.Value.String() == "" {
			return false, false
		}
		top, _, _ := strings.Cut(f.Value.String(), "/")
		ok, err := regexp.MatchString(top, name)
		return true, err == nil && ok
	}
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return false
	}
	if set, ok := match("test.skip"); set && ok {
		return false
	}
	set, ok := match("test.run")
	return !set || ok
}

// TestPythonWorker runs the worker's own tests (worker/tests, unittest): slot formula and plans against
// testdata/plans.json, SnapKV selection against the selection fixture, both conformance models through the engine
// and a plain-torch model in float32 (every policy alone and all in flight together), the static decode over the
// KV pool, the scheduler, sampling, the line protocol, and tensor parallelism over two processes with gloo. They
// need a Python with torch (CI installs Debian's python3-torch) and no transformers. The run starts before the
// package's other tests (TestMain) and this test, parallel, waits for it after them.
func TestPythonWorker(t *testing.T) {
	t.Parallel()
	early.Lock()
	run := early.run
	early.run = nil
	early.Unlock()
	if run == nil {
		py := pythonWithTorch()
		if py == "" {
			t.Skip("no Python with torch and numpy here (apt-get install python3-torch, or set SNAPEVAL_TEST_PYTHON): the worker's tests did not run")
		}
		run = startWorkerTests(py)
	}
	<-run.done
	if run.err != nil {
		t.Fatalf("%s -m unittest in worker/: %v\n%s", run.py, run.err, run.out.Bytes())
	}
	t.Logf("%s", run.out.Bytes())
}
