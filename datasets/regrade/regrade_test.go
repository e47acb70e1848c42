package regrade

import (
	"bytes"
	"context"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/eval/aime"
	"github.com/snapeval/snapeval/eval/infinitebench"
	"github.com/snapeval/snapeval/eval/longbench"
	"github.com/snapeval/snapeval/eval/longbench1"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestRunGolden(t *testing.T) {
	tests := []struct{ bench, input, golden string }{
		{aime.Name, "testdata/aime_outputs.jsonl", "testdata/aime_graded.golden"},
		{longbench.Name, "testdata/longbench_outputs.jsonl", "testdata/longbench_graded.golden"},
		{longbench1.Name, "testdata/longbench1_outputs.jsonl", "testdata/longbench1_graded.golden"},
		{infinitebench.Name, "testdata/infinitebench_outputs.jsonl", "testdata/infinitebench_graded.golden"},
	}
	for _, tc := range tests {
		b, err := eval.OpenBenchmark(tc.bench, eval.BenchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		in, err := os.Open(tc.input)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		st, err := Run(context.Background(), b, in, &out)
		in.Close()
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			os.WriteFile(tc.golden, out.Bytes(), 0o644)
		}
		want, _ := os.ReadFile(tc.golden)
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("%s:\n%s\nwant\n%s", tc.bench, out.Bytes(), want)
		}
		if st.Lines != 3 || st.Correct != 1 {
			t.Errorf("%s: stats %+v", tc.bench, st)
		}
	}
}

func TestRunErrorsNameTheLine(t *testing.T) {
	b, _ := eval.OpenBenchmark(aime.Name, eval.BenchOptions{})
	tests := []struct{ in, want string }{
		{"{\"id\":1,\"problem\":\"p\",\"answer\":\"5\",\"output\":\"x\"}\n{\"id\":2,\"problem\":\"p\",\"answer\":\"5\"}\n", "line 2: no \"output\""},
		{"{\"id\":1,\"problem\":\"p\",\"answer\":\"five\",\"output\":\"x\"}\n", "line 1: aime row"},
		{"{\"id\":1,\"problem\":\"p\",\"answer\":\"5\",\"output\":3}\n", "line 1: field output"},
		{"nope\n", "line 1: invalid JSON"},
	}
	for _, tc := range tests {
		_, err := Run(context.Background(), b, strings.NewReader(tc.in), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}

type noParser struct{ eval.Benchmark }

func (noParser) Name() string { return "x" }

func TestRunNeedsRowParser(t *testing.T) {
	if _, err := Run(context.Background(), noParser{}, strings.NewReader(""), &bytes.Buffer{}); err == nil {
		t.Fatal("want error")
	}
}
