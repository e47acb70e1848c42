package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/graph.golden")

func TestRenderGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "golist.txt"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := Parse(bytes.NewReader(in), "example.com/m")
	if err != nil {
		t.Fatal(err)
	}
	got := Render(g, "example.com/m") + "\n"
	golden := filepath.Join("testdata", "graph.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("Render differs from %s (go test -update to refresh):\n%s", golden, got)
	}
}

func TestReduce(t *testing.T) {
	tests := []struct {
		name string
		g    Graph
		want Graph
	}{
		{"chain keeps its edges", Graph{"a": {"b"}, "b": {"c"}, "c": {}}, Graph{"a": {"b"}, "b": {"c"}, "c": {}}},
		{"shortcut dropped", Graph{"a": {"b", "c"}, "b": {"c"}, "c": {}}, Graph{"a": {"b"}, "b": {"c"}, "c": {}}},
		{"long shortcut dropped", Graph{"a": {"b", "d"}, "b": {"c"}, "c": {"d"}, "d": {}}, Graph{"a": {"b"}, "b": {"c"}, "c": {"d"}, "d": {}}},
		{"diamond kept", Graph{"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": {}}, Graph{"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.g.Reduce()
			for p, want := range tt.want {
				if !slices.Equal(got[p], want) {
					t.Errorf("%s -> %v, want %v", p, got[p], want)
				}
			}
		})
	}
}

func TestParse(t *testing.T) {
	g, err := Parse(strings.NewReader("m m/a m/b os\nm/a m/b m/a\n\nm/b\n"), "m")
	if err != nil {
		t.Fatal(err)
	}
	want := Graph{rootName: {"a", "b"}, "a": {"b"}, "b": {}}
	for p, deps := range want {
		if !slices.Equal(g[p], deps) {
			t.Errorf("%s -> %v, want %v", p, g[p], deps)
		}
	}
	if len(g) != len(want) {
		t.Errorf("packages %v, want %d", g.Packages(), len(want))
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, module, want string }{
		{"m/a\n", "", "empty module"},
		{"", "m", "no packages"},
		{"m/a\nother/b m/a\n", "m", "line 2: package \"other/b\" is outside module m"},
		{"m/a\nm/a\n", "m", "line 2: package \"m/a\" listed twice"},
		{"mx/a\n", "m", "outside module"},
	}
	for _, tt := range tests {
		_, err := Parse(strings.NewReader(tt.in), tt.module)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q): error %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestSplice(t *testing.T) {
	doc := "intro\n" + BeginMarker + "\nold\n" + EndMarker + "\ntail\n"
	got, err := Splice(doc, BeginMarker+"\nnew\n"+EndMarker)
	if err != nil {
		t.Fatal(err)
	}
	if want := "intro\n" + BeginMarker + "\nnew\n" + EndMarker + "\ntail\n"; got != want {
		t.Errorf("Splice = %q, want %q", got, want)
	}
	for _, bad := range []string{"no markers", EndMarker + BeginMarker, BeginMarker + EndMarker + BeginMarker + EndMarker} {
		if _, err := Splice(bad, "x"); err == nil {
			t.Errorf("Splice(%q): no error", bad)
		}
	}
}

func TestRunCheck(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "arch.md")
	if err := os.WriteFile(doc, []byte("# A\n"+BeginMarker+"\n"+EndMarker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := "m m/a\nm/a\n"
	args := []string{"-module", "m", "-w", doc}
	if err := run(append(args, "-check"), strings.NewReader(in), nil); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("check of a stale file: %v", err)
	}
	if err := run(args, strings.NewReader(in), nil); err != nil {
		t.Fatal(err)
	}
	if err := run(append(args, "-check"), strings.NewReader(in), nil); err != nil {
		t.Fatalf("check after rewrite: %v", err)
	}
	b, _ := os.ReadFile(doc)
	if !strings.Contains(string(b), "root --> a") || !strings.HasPrefix(string(b), "# A\n") {
		t.Errorf("rewritten file:\n%s", b)
	}
}
