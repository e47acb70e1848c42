package torch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/llm"
)

// wordsBench is a test benchmark: item i asks the model to continue "item i"; the grade checks nothing useful.
type wordsBench struct{ n int }

func (b wordsBench) Name() string { return "words" }
func (b wordsBench) Items(ctx context.Context, tok llm.Tokenizer) ([]eval.Item, error) {
	items := make([]eval.Item, b.n)
	for i := range items {
		items[i] = eval.Item{ID: fmt.Sprintf("w%02d", i), Data: fmt.Sprintf("item %d of the list", i)}
	}
	return items, nil
}
func (b wordsBench) Request(it eval.Item) (llm.Request, error) {
	return llm.Request{Prompt: it.Data.(string), Sampling: llm.Sampling{MaxNew: 12, Temperature: 0.7, Stop: []string{"\n\n"}}}, nil
}
func (b wordsBench) Grade(ctx context.Context, it eval.Item, out string) (eval.Grade, error) {
	ok := strings.Contains(out, "a")
	return eval.Grade{Extracted: out, Correct: ok, Score: map[bool]float64{true: 1}[ok]}, nil
}
func (b wordsBench) Defaults() eval.Defaults { return eval.Defaults{Samples: 2} }

// runRecords runs the benchmark under three policies on a fake worker and returns the stored records.
func runRecords(t *testing.T, env ...string) ([]eval.Record, int) {
	t.Helper()
	b := openFake(t, env...)
	bench := wordsBench{n: 8}
	items, _ := bench.Items(context.Background(), nil)
	policies := []string{"full", "snapstream:budget=32", "streaming:sinks=4,recent=16"}
	tasks, err := eval.BuildTasks([]eval.LoadedBench{{Bench: bench, Items: items}}, policies, 7, eval.Shard{}, eval.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := eval.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := &eval.Runner{Backend: b, Store: st, RunID: "r", BackendID: b.Identity(), Concurrency: 6, GradeConcurrency: 2}
	sum, err := r.Run(context.Background(), tasks)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Errors != 0 {
		t.Errorf("%d error records", sum.Errors)
	}
	recs := st.Records()
	eval.SortRecords(recs, []string{"words"}, policies)
	if len(recs) != len(tasks) {
		t.Fatalf("%d records for %d tasks", len(recs), len(tasks))
	}
	return recs, b.Restarts()
}

// TestCrashMidRunLosesNoRecord: a worker killed in the middle of a run (after 40 tokens, several requests in
// flight) is restarted, its requests are retried, and the run ends with the same records as an undisturbed one.
func TestCrashMidRunLosesNoRecord(t *testing.T) {
	calm, restarts := runRecords(t)
	if restarts != 0 {
		t.Fatalf("undisturbed run restarted %d times", restarts)
	}
	mark := filepath.Join(t.TempDir(), "crashed")
	crashed, restarts := runRecords(t, "FAKE_CRASH_AFTER=40", "FAKE_MARK="+mark)
	if _, err := os.Stat(mark); err != nil || restarts != 1 {
		t.Fatalf("no crash happened (restarts %d): the test proves nothing", restarts)
	}
	if !reflect.DeepEqual(calm, crashed) {
		for i := range calm {
			if !reflect.DeepEqual(calm[i], crashed[i]) {
				t.Errorf("record %d differs:\n calm %+v\n crashed %+v", i, calm[i], crashed[i])
			}
		}
	}
}
