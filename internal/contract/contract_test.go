package contract

import (
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestRecorder(t *testing.T) {
	tests := []struct {
		name       string
		f          func(T)
		wantFailed bool
		wantTests  []string
		wantReport []string // substrings of Report
	}{
		{"pass", func(t T) { t.Run("a", func(T) {}) }, false, nil, []string{`--- ok "a"`}},
		{"error in a subtest fails the parent", func(t T) {
			t.Run("a", func(t T) { t.Errorf("bad %d", 1) })
			t.Run("b", func(T) {})
		}, true, []string{"a"}, []string{`--- FAIL "a"`, "bad 1", `--- ok "b"`}},
		{"fatal ends the test", func(t T) {
			t.Run("a", func(t T) {
				t.Fatalf("stop")
				t.Errorf("not reached")
			})
		}, true, []string{"a"}, []string{"stop"}},
		{"skip is not a failure", func(t T) {
			t.Run("a", func(t T) {
				t.Skipf("no %s", "tokenizer")
				t.Errorf("not reached")
			})
		}, false, nil, []string{`--- SKIP "a"`, "skip: no tokenizer"}},
		{"panic is a failure", func(t T) { t.Run("a", func(T) { panic("boom") }) }, true, []string{"a"}, []string{"panic: boom"}},
		{"nested paths", func(t T) {
			t.Run("a", func(t T) { t.Run("b", func(t T) { t.Errorf("x") }) })
		}, true, []string{"a/b"}, nil},
		{"errors from goroutines", func(t T) {
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() { defer wg.Done(); t.Errorf("g") }()
			}
			wg.Wait()
		}, true, []string{""}, nil},
		{"failure at the root", func(t T) { t.Errorf("root") }, true, []string{""}, []string{`--- FAIL ""`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Capture(tt.f)
			if r.Failed() != tt.wantFailed {
				t.Errorf("Failed() = %v, want %v", r.Failed(), tt.wantFailed)
			}
			if got := r.FailedTests(); !slices.Equal(got, tt.wantTests) {
				t.Errorf("FailedTests() = %q, want %q", got, tt.wantTests)
			}
			rep := r.Report()
			for _, w := range tt.wantReport {
				if !strings.Contains(rep, w) {
					t.Errorf("report lacks %q:\n%s", w, rep)
				}
			}
			if strings.Contains(rep, "not reached") {
				t.Errorf("code after Fatalf/Skipf ran:\n%s", rep)
			}
		})
	}
}

func TestRecorderRunResultAndCleanup(t *testing.T) {
	var order []string
	var ok1, ok2 bool
	ctxDoneAtCleanup := false
	Capture(func(t T) {
		t.Cleanup(func() { order = append(order, "root cleanup") })
		ok1 = t.Run("pass", func(t T) {
			t.Cleanup(func() { order = append(order, "first") })
			t.Cleanup(func() {
				ctxDoneAtCleanup = t.Context().Err() != nil
				order = append(order, "second")
			})
		})
		ok2 = t.Run("fail", func(t T) { t.Errorf("x") })
		order = append(order, "body end")
	})
	if !ok1 || ok2 {
		t.Errorf("Run returned %v, %v; want true, false", ok1, ok2)
	}
	if want := []string{"second", "first", "body end", "root cleanup"}; !slices.Equal(order, want) {
		t.Errorf("order %q, want %q", order, want)
	}
	if !ctxDoneAtCleanup {
		t.Error("the context was still live when the cleanups ran")
	}
}

// TestWrap checks that Wrap's Run passes subtests through to testing.
func TestWrap(t *testing.T) {
	ran := false
	if !Wrap(t).Run("sub", func(t T) { ran = t.Context().Err() == nil }) || !ran {
		t.Error("the wrapped subtest did not run, or ran with a dead context")
	}
}
