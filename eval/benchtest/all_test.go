package benchtest_test

import (
	"go/parser"
	"go/token"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/snapeval/snapeval/eval"
	_ "github.com/snapeval/snapeval/eval/aime" // every benchmark: TestEveryBenchmarkIsImported checks that none is missing
	"github.com/snapeval/snapeval/eval/benchtest"
	_ "github.com/snapeval/snapeval/eval/infinitebench"
	_ "github.com/snapeval/snapeval/eval/livecodebench"
	_ "github.com/snapeval/snapeval/eval/longbench"
	_ "github.com/snapeval/snapeval/eval/longbench1"
	_ "github.com/snapeval/snapeval/eval/ruler"
	_ "github.com/snapeval/snapeval/eval/synthetic"
	"github.com/snapeval/snapeval/internal/contract"
	"github.com/snapeval/snapeval/llm"
)

// byteTokenizer is a tokenizer of one token per byte, so that benchmarks that size or truncate prompts by tokens
// do so on the fixtures.
type byteTokenizer struct{}

func (byteTokenizer) Encode(s string) []int {
	ids := make([]int, len(s))
	for i := range len(s) {
		ids[i] = int(s[i])
	}
	return ids
}

func (byteTokenizer) Decode(ids []int) string {
	b := make([]byte, len(ids))
	for i, id := range ids {
		b[i] = byte(id)
	}
	return string(b)
}

// variant is one configuration of a registered benchmark on its fixture.
type variant struct {
	name string // subtest name ("" for the default configuration)
	opts eval.BenchOptions
	tok  llm.Tokenizer
	rows []string // fixture files whose rows a RowParser must read
	// chained: the configuration asks twice.
	chained bool
	// needs is a program the grader runs ("" for none); the variant is skipped where it is not installed.
	needs string
}

const (
	aimeFixture      = "../aime/testdata/excerpt.jsonl"
	lcbFixture       = "../livecodebench/testdata/rows.jsonl"
	longbenchFixture = "../longbench/testdata/sample.jsonl"
	rulerPrepared    = "../ruler/testdata/prepared"
	rulerRows        = "../ruler/testdata/prepared_rows.jsonl"
	lb1Fixture       = "../longbench1/testdata/rows.jsonl"
	ibFixture        = "../infinitebench/testdata/rows.jsonl"
	lb1EFixture      = "../longbench1/testdata/rows_e.jsonl"
)

// variants opens every registered benchmark on its small testdata fixture, in each configuration that changes
// what it renders or how it grades. A benchmark registered without an entry fails TestEveryBenchmark.
var variants = map[string][]variant{
	"aime24": {
		{opts: eval.BenchOptions{Files: []string{aimeFixture}}, rows: []string{aimeFixture}},
		{name: "qwen", opts: eval.BenchOptions{Files: []string{aimeFixture}, Options: map[string]string{"grader": "qwen"}}, rows: []string{aimeFixture}},
		{name: "lenient", opts: eval.BenchOptions{Files: []string{aimeFixture}, Options: map[string]string{"grader": "lenient"}}, rows: []string{aimeFixture}},
	},
	"infinitebench": {
		{opts: eval.BenchOptions{Files: []string{ibFixture}}, rows: []string{ibFixture}},
		{name: "gpt4", opts: eval.BenchOptions{Files: []string{ibFixture}, Options: map[string]string{"template": "gpt4"}}, rows: []string{ibFixture}},
		{name: "truncated", opts: eval.BenchOptions{Files: []string{ibFixture}, Options: map[string]string{"max_len": "150"}},
			tok: byteTokenizer{}, rows: []string{ibFixture}},
	},
	"livecodebench": {
		{opts: eval.BenchOptions{Files: []string{lcbFixture}, Options: map[string]string{"timeout": "10"}}, rows: []string{lcbFixture}, needs: "python3"},
	},
	"longbench-v2": {
		{opts: eval.BenchOptions{Files: []string{longbenchFixture}}, rows: []string{longbenchFixture}},
		{name: "truncated", opts: eval.BenchOptions{Files: []string{longbenchFixture}, Options: map[string]string{"max_len": "400"}},
			tok: byteTokenizer{}, rows: []string{longbenchFixture}},
		{name: "cot", opts: eval.BenchOptions{Files: []string{longbenchFixture}, Options: map[string]string{"mode": "0shot_cot"}},
			rows: []string{longbenchFixture}, chained: true},
		{name: "no_context", opts: eval.BenchOptions{Files: []string{longbenchFixture}, Options: map[string]string{"mode": "0shot_no_context"}},
			rows: []string{longbenchFixture}},
	},
	"longbench": {
		{opts: eval.BenchOptions{Files: []string{lb1Fixture}}, rows: []string{lb1Fixture}},
		{name: "truncated", opts: eval.BenchOptions{Files: []string{lb1Fixture}, Options: map[string]string{"max_len": "120"}},
			tok: byteTokenizer{}, rows: []string{lb1Fixture}},
		{name: "e", opts: eval.BenchOptions{Files: []string{lb1EFixture}, Options: map[string]string{"e": "true"}}, rows: []string{lb1EFixture}},
		{name: "levenshtein_rouge100", opts: eval.BenchOptions{Files: []string{lb1Fixture},
			Options: map[string]string{"code_sim": "levenshtein", "rouge": "1.0.0", "rouge_depth": "0"}}, rows: []string{lb1Fixture}},
	},
	"synth": {
		{opts: eval.BenchOptions{Seed: 7, Options: map[string]string{"lengths": "256", "n": "2"}}},
		{name: "tokenized", opts: eval.BenchOptions{Seed: 3, Options: map[string]string{"lengths": "1024", "n": "1"}}, tok: byteTokenizer{}},
	},
	"ruler": {
		// Generated items need a tokenizer, which the row-parser contract runs without: eval/ruler's own tests
		// cover generation (against CPython); the contract runs on prepare.py's rows.
		{opts: eval.BenchOptions{DataDir: rulerPrepared}, rows: []string{rulerRows}},
	},
}

// TestEveryBenchmark runs the contract suite over every registered benchmark, in each of its variants.
func TestEveryBenchmark(t *testing.T) {
	names := eval.BenchmarkNames()
	if len(names) < len(variants) {
		t.Errorf("registered benchmarks %q, fewer than the %d with fixtures", names, len(variants))
	}
	for _, name := range names {
		vs, ok := variants[name]
		if !ok {
			t.Errorf("benchmark %q has no fixture variant in eval/benchtest/all_test.go: add one", name)
			continue
		}
		for _, v := range vs {
			sub := name
			if v.name != "" {
				sub += "/" + v.name
			}
			t.Run(sub, func(t *testing.T) {
				if v.needs != "" {
					if _, err := exec.LookPath(v.needs); err != nil {
						t.Skipf("%s is not installed", v.needs)
					}
				}
				var rows [][]byte
				if len(v.rows) > 0 {
					rows = benchtest.ReadRows(t, v.rows...)
				}
				benchtest.Run(t, benchtest.Case{
					Name:      name,
					Open:      func() (eval.Benchmark, error) { return eval.OpenBenchmark(name, v.opts) },
					Tokenizer: v.tok,
					Rows:      rows,
					Chained:   v.chained,
				})
			})
		}
	}
}

// TestEveryBenchmarkIsImported finds every package that registers a benchmark (calls eval.RegisterBenchmark
// outside its tests) and checks that this file imports it, so that TestEveryBenchmark sees it.
func TestEveryBenchmarkIsImported(t *testing.T) {
	root, err := contract.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	registering, err := contract.PackagesWith(root, "eval.RegisterBenchmark(", false)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "all_test.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	imported := map[string]bool{}
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		imported[p] = true
	}
	var dirs []string
	for d := range registering {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	if !slices.Contains(dirs, "eval/synthetic") {
		t.Fatalf("the scan of %s found no registration in eval/synthetic (found %q): the scan is broken", root, dirs)
	}
	for _, d := range dirs {
		if !imported["github.com/snapeval/snapeval/"+d] {
			t.Errorf("%s registers a benchmark but eval/benchtest/all_test.go does not import it", d)
		}
	}
}
