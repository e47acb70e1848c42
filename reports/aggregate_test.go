package reports

import (
	"bytes"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/eval"
)

// testAggBench registers an aggregate: the mean score per "group" tag, x100, and the number of items seen.
const testAggBench = "reports-test-aggregate"

func init() {
	eval.RegisterAggregate(testAggBench, func(items []eval.ItemScore) []eval.Metric {
		sums := map[string]float64{}
		counts := map[string]int{}
		for _, it := range items {
			sums[it.Tags["group"]] += it.Score
			counts[it.Tags["group"]]++
		}
		var out []eval.Metric
		for _, g := range []string{"b", "a"} {
			if counts[g] > 0 {
				out = append(out, eval.Metric{Name: "group " + g, Value: 100 * sums[g] / float64(counts[g]), Items: counts[g]})
			}
		}
		return append(out, eval.Metric{Name: "items", Value: float64(len(items)), Items: len(items)})
	})
}

func TestAggregates(t *testing.T) {
	rec := func(item, policy string, sample int, score float64, tags string, errKind string) eval.Record {
		return eval.Record{Bench: testAggBench, ItemID: item, Policy: policy, Sample: sample, Score: score, Correct: score == 1, Tags: tags, ErrorKind: errKind}
	}
	recs := []eval.Record{
		rec("1", "full", 0, 1, "group=a", ""),
		rec("1", "full", 1, 0.5, "group=a", ""), // samples average per item: 0.75
		rec("2", "full", 0, 0.25, "group=b", ""),
		rec("1", "streaming:sinks=4,recent=60", 0, 0, "group=a", ""),
		rec("2", "streaming:sinks=4,recent=60", 0, 1, "group=b", "backend"), // errors are left out
		rec("x", "full", 0, 1, "group=a", ""),
	}
	recs[5].Bench = "other" // a benchmark without an aggregate gets none
	r := Build(eval.Manifest{Config: eval.RunConfig{Policies: []string{"full", "streaming:sinks=4,recent=60"}}}, recs, Options{})
	var agg []AggregateRow
	for _, b := range r.Benches {
		if b.Name == "other" && len(b.Aggregates) > 0 {
			t.Errorf("other: aggregates %+v", b.Aggregates)
		}
		if b.Name == testAggBench {
			agg = b.Aggregates
		}
	}
	if len(agg) != 2 || agg[0].Policy != "full" || agg[1].Policy != "streaming:sinks=4,recent=60" {
		t.Fatalf("aggregates %+v", agg)
	}
	want := []eval.Metric{{Name: "group b", Value: 25, Items: 1}, {Name: "group a", Value: 75, Items: 1}, {Name: "items", Value: 2, Items: 2}}
	for i, m := range want {
		if agg[0].Metrics[i] != m {
			t.Errorf("full metric %d: %+v, want %+v", i, agg[0].Metrics[i], m)
		}
	}
	if len(agg[1].Metrics) != 2 || agg[1].Metrics[0] != (eval.Metric{Name: "group a", Value: 0, Items: 1}) {
		t.Errorf("streaming: %+v", agg[1].Metrics)
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"### official aggregate",
		"| policy | group b | group a | items |",
		"| `full` | 25.00 | 75.00 | 2.00 |",
		"| `streaming:sinks=4,recent=60` | – | 0.00 | 1.00 |",
	} {
		if !strings.Contains(md.String(), line+"\n") {
			t.Errorf("report.md lacks %q:\n%s", line, md.String())
		}
	}
}
