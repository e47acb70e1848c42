package ruler

import (
	"sort"
	"strconv"

	"github.com/snapeval/snapeval/eval"
)

func init() { eval.RegisterAggregate(Name, Aggregate) }

// Aggregate is RULER's score as its tables print it: for each length, the mean over tasks of each task's mean
// item score, x100 (one metric per length, named by the length in tokens), then "avg", the mean of those over the
// lengths present. Items without a length or task tag are left out.
func Aggregate(items []eval.ItemScore) []eval.Metric {
	type cell struct {
		sum float64
		n   int
	}
	byLen := map[string]map[string]*cell{}
	for _, it := range items {
		l, t := it.Tags["length"], it.Tags["task"]
		if l == "" || t == "" {
			continue
		}
		if byLen[l] == nil {
			byLen[l] = map[string]*cell{}
		}
		c := byLen[l][t]
		if c == nil {
			c = &cell{}
			byLen[l][t] = c
		}
		c.sum += it.Score
		c.n++
	}
	lengths := make([]string, 0, len(byLen))
	for l := range byLen {
		lengths = append(lengths, l)
	}
	sort.Slice(lengths, func(i, j int) bool {
		a, ea := strconv.Atoi(lengths[i])
		b, eb := strconv.Atoi(lengths[j])
		if ea == nil && eb == nil {
			return a < b
		}
		return lengths[i] < lengths[j]
	})
	var out []eval.Metric
	var total float64
	var items0 int
	for _, l := range lengths {
		var s float64
		var n int
		for _, c := range byLen[l] {
			s += c.sum / float64(c.n)
			n += c.n
		}
		v := 100 * s / float64(len(byLen[l]))
		out = append(out, eval.Metric{Name: l, Value: v, Items: n})
		total += v
		items0 += n
	}
	if len(lengths) > 0 {
		out = append(out, eval.Metric{Name: "avg", Value: total / float64(len(lengths)), Items: items0})
	}
	return out
}
