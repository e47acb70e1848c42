// Package contract is what the contract suites (backends/backendtest, eval/benchtest) share: T, the part of
// *testing.T that a suite uses, so that a suite runs both under `go test` (Wrap) and under a Recorder, which
// captures which of the suite's checks failed. The suites' own tests run them on deliberately broken
// implementations under a Recorder and assert that the check aimed at each planted fault reports it.
package contract

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

// T is the part of *testing.T that the contract suites use. Run's f receives a T, not a *testing.T.
type T interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Failed() bool
	Cleanup(f func())
	// Context is cancelled just before the Cleanup functions run.
	Context() context.Context
	// Run runs f as a subtest named name and reports whether it passed.
	Run(name string, f func(T)) bool
}

// Wrap adapts a *testing.T to T.
func Wrap(t *testing.T) T { return testT{t} }

type testT struct{ *testing.T }

func (w testT) Run(name string, f func(T)) bool {
	return w.T.Run(name, func(t *testing.T) { f(testT{t}) })
}

// Recorder is a T that records instead of reporting: which subtests failed and with what messages. Fatalf and
// Skipf end the calling goroutine (runtime.Goexit), as testing does; a panic in a test function is recorded as
// a failure of that test. It is safe for concurrent use (Errorf from several goroutines).
type Recorder struct {
	name   string
	parent *Recorder
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	failed   bool
	skipped  bool
	msgs     []string // Errorf, Fatalf and Skipf messages (and panics), in order
	logs     []string
	subs     []*Recorder
	cleanups []func()
}

// Capture runs f as a top-level test on a fresh Recorder and returns the Recorder once f, its subtests and its
// cleanups have finished.
func Capture(f func(T)) *Recorder {
	r := newRecorder("", nil)
	r.run(f)
	return r
}

func newRecorder(name string, parent *Recorder) *Recorder {
	r := &Recorder{name: name, parent: parent}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// run calls f on its own goroutine, so that Fatalf and Skipf can end it, then cancels the context and runs the
// cleanups (last registered first).
func (r *Recorder) run(f func(T)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer r.finish()
		defer func() {
			if p := recover(); p != nil {
				r.record(true, fmt.Sprintf("panic: %v", p))
			}
		}()
		f(r)
	}()
	<-done
}

func (r *Recorder) finish() {
	r.cancel()
	r.mu.Lock()
	cs := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.record(true, fmt.Sprintf("panic in cleanup: %v", p))
				}
			}()
			cs[i]()
		}()
	}
}

func (r *Recorder) record(fail bool, msg string) {
	r.mu.Lock()
	r.msgs = append(r.msgs, msg)
	r.mu.Unlock()
	if fail {
		r.markFailed()
	}
}

// markFailed marks r and its ancestors failed (a failed subtest fails its parent, as in testing).
func (r *Recorder) markFailed() {
	for x := r; x != nil; x = x.parent {
		x.mu.Lock()
		x.failed = true
		x.mu.Unlock()
	}
}

// Helper does nothing: a Recorder reports no file and line.
func (r *Recorder) Helper() {}

// Logf records a log line.
func (r *Recorder) Logf(format string, args ...any) {
	r.mu.Lock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// Errorf records a failure.
func (r *Recorder) Errorf(format string, args ...any) { r.record(true, fmt.Sprintf(format, args...)) }

// Fatalf records a failure and ends the calling goroutine.
func (r *Recorder) Fatalf(format string, args ...any) {
	r.record(true, fmt.Sprintf(format, args...))
	runtime.Goexit()
}

// Skipf records a skip and ends the calling goroutine.
func (r *Recorder) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.skipped = true
	r.mu.Unlock()
	r.record(false, "skip: "+fmt.Sprintf(format, args...))
	runtime.Goexit()
}

// Failed reports whether r or one of its subtests failed.
func (r *Recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// Cleanup registers f to run when the test ends.
func (r *Recorder) Cleanup(f func()) {
	r.mu.Lock()
	r.cleanups = append(r.cleanups, f)
	r.mu.Unlock()
}

// Context is cancelled when the test ends, before its cleanups run.
func (r *Recorder) Context() context.Context { return r.ctx }

// Run runs f as a subtest and waits for it.
func (r *Recorder) Run(name string, f func(T)) bool {
	c := newRecorder(name, r)
	r.mu.Lock()
	r.subs = append(r.subs, c)
	r.mu.Unlock()
	c.run(f)
	return !c.Failed()
}

// path is r's name under the root ("a/b"), "" for the root.
func (r *Recorder) path() string {
	if r.parent == nil {
		return ""
	}
	if p := r.parent.path(); p != "" {
		return p + "/" + r.name
	}
	return r.name
}

func (r *Recorder) walk(fn func(*Recorder)) {
	fn(r)
	r.mu.Lock()
	subs := slices.Clone(r.subs)
	r.mu.Unlock()
	for _, s := range subs {
		s.walk(fn)
	}
}

// FailedTests lists, in order, the tests (by path from the root, "" for the root itself) that reported a
// failure themselves, not only through a subtest.
func (r *Recorder) FailedTests() []string {
	var out []string
	r.walk(func(x *Recorder) {
		x.mu.Lock()
		own := false
		for _, m := range x.msgs {
			own = own || !strings.HasPrefix(m, "skip: ")
		}
		x.mu.Unlock()
		if own {
			out = append(out, x.path())
		}
	})
	return out
}

// Report is everything recorded, one line per message, for a test's log when an assertion on r fails.
func (r *Recorder) Report() string {
	var b strings.Builder
	r.walk(func(x *Recorder) {
		x.mu.Lock()
		defer x.mu.Unlock()
		status := "ok"
		switch {
		case x.failed:
			status = "FAIL"
		case x.skipped:
			status = "SKIP"
		}
		fmt.Fprintf(&b, "--- %s %q\n", status, x.path())
		for _, l := range x.logs {
			fmt.Fprintf(&b, "    log: %s\n", l)
		}
		for _, m := range x.msgs {
			fmt.Fprintf(&b, "    %s\n", m)
		}
	})
	return b.String()
}

// ModuleRoot is the directory of the go.mod above the working directory (a test's package directory).
func ModuleRoot() (string, error) {
	dir, err := filepath.Abs(".")
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("contract: no go.mod above the working directory")
		}
		dir = up
	}
}

// PackagesWith returns the directories under root (slash-separated, relative to root) holding a Go file that
// contains text: among the test files (_test.go) when tests is true, else among the other Go files. Hidden
// directories, testdata and vendor are skipped. The suites' coverage tests use it to find every implementation
// (a package that calls backends.Register or eval.RegisterBenchmark) and check that it runs its suite.
func PackagesWith(root, text string, tests bool) (map[string]bool, error) {
	found := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") != tests {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), text) {
			rel, err := filepath.Rel(root, filepath.Dir(p))
			if err != nil {
				return err
			}
			found[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	return found, err
}
