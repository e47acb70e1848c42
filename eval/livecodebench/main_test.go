package livecodebench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/sandbox"
)

// TestMain runs the tests with TMPDIR set to a directory of their own and fails the run if a test leaves anything
// there or leaves a sandbox open (issue 18, item 7).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "livecodebench-test-tmp-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Setenv("TMPDIR", dir)
	code := m.Run()
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, filepath.Join(dir, e.Name()))
	}
	if n := sandbox.Open(); n != 0 {
		left = append(left, fmt.Sprintf("%d sandboxes not closed", n))
	}
	if len(left) > 0 && code == 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the tests left behind: %s\n", strings.Join(left, ", "))
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}
