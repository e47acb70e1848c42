package backendtest

import (
	"slices"
	"sort"
	"testing"

	"github.com/snapeval/snapeval/internal/contract"
)

// TestEveryBackendRunsTheSuite finds every package that registers a backend (calls backends.Register outside
// its tests) and checks that its tests call backendtest.Run: a backend lands only with its contract test.
func TestEveryBackendRunsTheSuite(t *testing.T) {
	root, err := contract.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	registering, err := contract.PackagesWith(root, "backends.Register(", false)
	if err != nil {
		t.Fatal(err)
	}
	running, err := contract.PackagesWith(root, "backendtest.Run(", true)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for d := range registering {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, want := range []string{"backends/cpu", "backends/openai", "backends/sn40l"} {
		if !slices.Contains(dirs, want) {
			t.Errorf("the scan of %s found no registration in %s (found %q): the scan is broken", root, want, dirs)
		}
	}
	for _, d := range dirs {
		if !running[d] {
			t.Errorf("%s registers a backend but no test of it calls backendtest.Run (see backends/backendtest)", d)
		}
	}
}
