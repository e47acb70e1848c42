package longbench1

import (
	"math"
	"testing"

	"github.com/snapeval/snapeval/eval"
)

func TestAggregate(t *testing.T) {
	it := func(task string, score float64, length string) eval.ItemScore {
		tags := map[string]string{"task": task}
		if length != "" {
			tags["length"] = length
		}
		return eval.ItemScore{ID: task, Tags: tags, Score: score}
	}
	items := []eval.ItemScore{
		it("narrativeqa", 0.2, ""), it("narrativeqa", 0.4, ""), // task 30
		it("qasper", 0.5, ""),                          // task 50 -> Single-Doc (en) 40
		it("hotpotqa", 0.6, ""),                        // Multi-Doc (en) 60
		it("lcc", 0.7, ""), it("repobench-p", 0.5, ""), // Code 60
		it("multifieldqa_zh", 0.9, ""), // zh Single-Doc 90
		it("unknown", 1, ""),           // ignored
	}
	got := map[string]eval.Metric{}
	var names []string
	for _, m := range Aggregate(items) {
		got[m.Name] = m
		names = append(names, m.Name)
	}
	want := map[string]float64{
		"Single-Doc QA": 40, "Multi-Doc QA": 60, "Code Completion": 60, "Avg": (40 + 60 + 60) / 3.0,
		"zh Single-Doc QA": 90, "zh Code Completion": 60, "zh Avg": 75,
		"All tasks": (30 + 50 + 60 + 70 + 50 + 90) / 6.0,
	}
	if len(got) != len(want) {
		t.Fatalf("metrics %v", names)
	}
	for n, v := range want {
		if m, ok := got[n]; !ok || math.Abs(m.Value-v) > 1e-9 {
			t.Errorf("%s = %+v, want %v", n, m, v)
		}
	}
	if got["Single-Doc QA"].Items != 3 || got["All tasks"].Items != 7 {
		t.Errorf("items: %+v %+v", got["Single-Doc QA"], got["All tasks"])
	}
	order := []string{"Single-Doc QA", "Multi-Doc QA", "Code Completion", "Avg", "zh Single-Doc QA", "zh Code Completion", "zh Avg", "All tasks"}
	for i, n := range order {
		if names[i] != n {
			t.Fatalf("order %v, want %v", names, order)
		}
	}
	// LongBench-E: per-task interval scores averaged over tasks
	e := Aggregate([]eval.ItemScore{
		it("hotpotqa", 1, "0-4k"), it("hotpotqa", 0, "0-4k"), it("hotpotqa", 0, "8k+"),
		it("trec", 1, "0-4k"), it("trec", 1, "4-8k"),
	})
	eg := map[string]float64{}
	for _, m := range e {
		eg[m.Name] = m.Value
	}
	if eg["0-4k"] != 75 || eg["4-8k"] != 100 || eg["8k+"] != 0 || math.Abs(eg["All tasks"]-(100.0/3+100)/2) > 1e-9 {
		t.Fatalf("E metrics %+v", e)
	}
	if len(Aggregate(nil)) != 0 {
		t.Fatal("no items: want no metrics")
	}
}
