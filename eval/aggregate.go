package eval

import "github.com/snapeval/snapeval/internal/registry"

// ItemScore is one item's graded result as an aggregate sees it: the item's tags and its mean score over its
// graded samples under one policy.
type ItemScore struct {
	ID    string
	Tags  map[string]string
	Score float64
}

// Metric is one named value of a benchmark's official aggregate, in the benchmark's own unit (LongBench's scores
// are x100), over Items items.
type Metric struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Items int     `json:"items"`
}

// Aggregate computes a benchmark's official summary scores from the graded items of one policy, for the summaries
// that item tags alone cannot express (LongBench's category scores are means of per-task means, not of items).
// It returns the metrics in display order; a metric whose items are all absent is left out.
type Aggregate func(items []ItemScore) []Metric

var aggregates = registry.New[Aggregate]("aggregate")

// RegisterAggregate makes f the official aggregate of benchmark bench (reports compute it from records). It
// panics on a duplicate name.
func RegisterAggregate(bench string, f Aggregate) { aggregates.Register(bench, f) }

// AggregateFor returns the aggregate registered for bench, if any.
func AggregateFor(bench string) (Aggregate, bool) {
	f, err := aggregates.Lookup(bench)
	return f, err == nil
}
