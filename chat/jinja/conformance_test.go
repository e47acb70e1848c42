package jinja_test

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/snapeval/snapeval/chat/jinja"
	"github.com/snapeval/snapeval/chat/jinja/jinjatest"
)

var update = flag.Bool("update", false, "re-render the golden files with Python's Jinja2 (tools/chattemplates/render.py)")

type snippet struct {
	Name     string          `json:"name"`
	Template string          `json:"template"`
	Vars     json.RawMessage `json:"vars"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// renderGoldens runs tools/chattemplates/render.py, which rewrites every golden file of the corpus.
func renderGoldens(t *testing.T) {
	t.Helper()
	cmd := exec.Command("python3", filepath.Join("..", "..", "tools", "chattemplates", "render.py"))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("-update needs python3 with Jinja2 (apt-get install python3-jinja2): %v", err)
	}
}

// TestSnippets renders testdata/snippets.json, one Jinja construct each, and compares every render with
// Jinja2's, configured as transformers configures it (testdata/snippets.golden.json).
func TestSnippets(t *testing.T) {
	if *update {
		renderGoldens(t)
	}
	var snippets []snippet
	readJSON(t, filepath.Join("testdata", "snippets.json"), &snippets)
	var golden struct {
		Snippets []struct {
			Name string `json:"name"`
			jinjatest.Golden
		} `json:"snippets"`
	}
	readJSON(t, filepath.Join("testdata", "snippets.golden.json"), &golden)
	if len(golden.Snippets) != len(snippets) {
		t.Fatalf("%d snippets, %d goldens: run go test -update", len(snippets), len(golden.Snippets))
	}
	for i, s := range snippets {
		g := golden.Snippets[i]
		if g.Name != s.Name {
			t.Fatalf("snippet %d is %s, golden %s: run go test -update", i, s.Name, g.Name)
		}
		t.Run(s.Name, func(t *testing.T) {
			vars := map[string]any{}
			if len(s.Vars) > 0 {
				v, err := jinja.FromJSON(s.Vars)
				if err != nil {
					t.Fatal(err)
				}
				d := v.(*jinja.Dict)
				for _, k := range d.Keys() {
					vars[k.(string)], _ = d.Get(k)
				}
			}
			got, err := render(s.Name, s.Template, vars)
			if diff := g.Check(got, err); diff != "" {
				t.Errorf("%s\n template %s", diff, jinjatest.Quote(s.Template))
			}
		})
	}
}

func render(name, source string, vars map[string]any) (string, error) {
	tmpl, err := jinja.Parse(name, source)
	if err != nil {
		return "", err
	}
	return tmpl.Render(vars, jinja.Options{Now: func() time.Time { return jinjatest.Clock }})
}
