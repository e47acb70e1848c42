package ruler

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/reports"
)

// TestAggregate: the score per length is the mean over tasks of each task's mean (not the mean over items), and
// avg is the mean over lengths.
func TestAggregate(t *testing.T) {
	var items []eval.ItemScore
	add := func(length, task string, scores ...float64) {
		for i, s := range scores {
			items = append(items, eval.ItemScore{ID: fmt.Sprintf("%s/%s/%d", task, length, i),
				Tags: map[string]string{"length": length, "task": task}, Score: s})
		}
	}
	add("8192", "vt", 1, 0)            // task mean 0.5
	add("8192", "niah_single_1", 1)    // task mean 1
	add("4096", "vt", 1, 1, 1, 1)      // 1
	add("4096", "niah_single_1", 0, 1) // 0.5
	items = append(items, eval.ItemScore{ID: "untagged", Score: 1})
	got := Aggregate(items)
	want := []eval.Metric{{Name: "4096", Value: 75, Items: 6}, {Name: "8192", Value: 75, Items: 3}, {Name: "avg", Value: 75, Items: 9}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i].Name != want[i].Name || math.Abs(got[i].Value-want[i].Value) > 1e-12 || got[i].Items != want[i].Items {
			t.Errorf("metric %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if f, ok := eval.AggregateFor(Name); !ok || f == nil {
		t.Error("ruler registers no aggregate")
	}
}

// TestAggregateInReport: the report prints RULER's score from records alone, through the registered aggregate.
func TestAggregateInReport(t *testing.T) {
	var recs []eval.Record
	for _, l := range []string{"4096", "8192"} {
		for i := 0; i < 2; i++ {
			for _, p := range []string{"full", "snapstream:budget=128"} {
				score := 1.0
				if p != "full" && (l == "8192" || i == 0) {
					score = 0
				}
				recs = append(recs, eval.Record{Bench: Name, ItemID: fmt.Sprintf("vt/%s/%03d", l, i), Policy: p,
					Score: score, Correct: score == 1, Tags: "length=" + l + ";task=vt"})
			}
		}
	}
	var md bytes.Buffer
	if err := reports.WriteMarkdown(&md, reports.Build(eval.Manifest{RunID: "r"}, recs, reports.Options{})); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| policy | 4096 | 8192 | avg |", "| `full` | 100.00 | 100.00 | 100.00 |",
		"| `snapstream:budget=128` | 50.00 | 0.00 | 25.00 |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
}
