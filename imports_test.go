package snapeval

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

const modulePath = "github.com/snapeval/snapeval"

// TestImportGroups checks the import convention of every Go file: standard library first, then third-party
// modules, then this module's packages, each kind in its own group (groups are separated by blank lines) and in
// that order.
func TestImportGroups(t *testing.T) {
	kind := func(path string) int {
		switch {
		case path == modulePath || strings.HasPrefix(path, modulePath+"/"):
			return 2
		case strings.Contains(strings.SplitN(path, "/", 2)[0], "."):
			return 1
		}
		return 0
	}
	names := [...]string{"standard library", "third-party", "snapeval"}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		prevKind, prevLine := -1, 0
		groupKind := -1
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			k, line := kind(p), fset.Position(imp.Pos()).Line
			newGroup := prevLine != 0 && line > prevLine+1
			switch {
			case prevLine == 0 || newGroup:
				if k <= prevKind && prevKind >= 0 && newGroup && k == groupKind {
					t.Errorf("%s:%d: %s imports split over two groups", path, line, names[k])
				}
				if k < prevKind {
					t.Errorf("%s:%d: %s import %q after %s imports", path, line, names[k], p, names[prevKind])
				}
				groupKind = k
			case k != groupKind:
				t.Errorf("%s:%d: %s import %q in a group of %s imports (separate them with a blank line)", path, line, names[k], p, names[groupKind])
			}
			prevKind, prevLine = k, line
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
