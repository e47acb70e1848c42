package aime

import (
	"sort"

	"github.com/snapeval/snapeval/stats"

	"github.com/snapeval/snapeval/eval"
)

// PassAtK is the unbiased estimator of pass@k for one problem with n samples of which c are correct:
// 1 - C(n-c, k) / C(n, k), computed as a stable product. It is 0 when n < k or n == 0.
func PassAtK(n, c, k int) float64 {
	v, err := stats.PassAtK(n, c, k)
	if err != nil {
		return 0 // undefined (k > n, no samples): callers skip such items
	}
	return v
}

// Metric is a score over problems with the counts behind it.
type Metric struct {
	// Value in [0,1]: the mean over the problems that have graded samples.
	Value float64
	// Items with at least one graded sample; Samples graded; Errors error records (never graded, never hidden);
	// Skipped items that had no graded sample (or fewer than k for pass@k).
	Items, Samples, Errors, Skipped int
}

type itemSamples struct {
	graded []eval.Record
	errors int
}

func groupByItem(records []eval.Record, policy string) (map[string]*itemSamples, []string) {
	by := map[string]*itemSamples{}
	var ids []string
	for _, r := range records {
		if (r.Bench != "" && r.Bench != Name) || (policy != "" && r.Policy != policy) {
			continue
		}
		s := by[r.ItemID]
		if s == nil {
			s = &itemSamples{}
			by[r.ItemID] = s
			ids = append(ids, r.ItemID)
		}
		if r.IsError() {
			s.errors++
		} else {
			s.graded = append(s.graded, r)
		}
	}
	sort.Strings(ids)
	for _, s := range by {
		sort.SliceStable(s.graded, func(i, j int) bool { return s.graded[i].Sample < s.graded[j].Sample })
	}
	return by, ids
}

// PassAtKRecords averages the unbiased pass@k over problems, from the records of one policy ("" = all).
// pass@1 is the mean fraction of correct samples (the R1 report's pass@1).
func PassAtKRecords(records []eval.Record, policy string, k int) Metric {
	by, ids := groupByItem(records, policy)
	var m Metric
	sum := 0.0
	for _, id := range ids {
		s := by[id]
		m.Errors += s.errors
		n := len(s.graded)
		if n == 0 || n < k {
			m.Skipped++
			continue
		}
		c := 0
		for _, r := range s.graded {
			if r.Correct {
				c++
			}
		}
		m.Items++
		m.Samples += n
		sum += PassAtK(n, c, k)
	}
	if m.Items > 0 {
		m.Value = sum / float64(m.Items)
	}
	return m
}

// ConsAtK is the majority vote over the first k graded samples of each problem (by sample index): the most
// frequent non-empty extracted answer wins, a tie goes to the answer seen first; the problem counts as solved
// when the winning answer was graded correct. Problems with fewer than k graded samples vote with what they have.
func ConsAtK(records []eval.Record, policy string, k int) Metric {
	by, ids := groupByItem(records, policy)
	var m Metric
	solved := 0
	for _, id := range ids {
		s := by[id]
		m.Errors += s.errors
		g := s.graded
		if len(g) > k {
			g = g[:k]
		}
		if len(g) == 0 {
			m.Skipped++
			continue
		}
		m.Items++
		m.Samples += len(g)
		count := map[string]int{}
		first := map[string]int{}
		right := map[string]bool{}
		for i, r := range g {
			if r.Extracted == "" {
				continue
			}
			if _, ok := first[r.Extracted]; !ok {
				first[r.Extracted] = i
			}
			count[r.Extracted]++
			right[r.Extracted] = right[r.Extracted] || r.Correct
		}
		best := ""
		for a, c := range count {
			if best == "" || c > count[best] || (c == count[best] && first[a] < first[best]) {
				best = a
			}
		}
		if best != "" && right[best] {
			solved++
		}
	}
	if m.Items > 0 {
		m.Value = float64(solved) / float64(m.Items)
	}
	return m
}

// PolicyMetrics is the R1 summary of one policy: pass@1 (mean over samples) and cons@k (majority vote).
type PolicyMetrics struct {
	Policy string
	K      int
	Pass1  Metric
	ConsK  Metric
}

// MetricsByPolicy computes pass@1 and cons@k for every policy in records, "full" first, then by name.
func MetricsByPolicy(records []eval.Record, k int) []PolicyMetrics {
	pols := eval.PoliciesOf(records, Name)
	out := make([]PolicyMetrics, len(pols))
	for i, p := range pols {
		out[i] = PolicyMetrics{Policy: p, K: k, Pass1: PassAtKRecords(records, p, 1), ConsK: ConsAtK(records, p, k)}
	}
	return out
}
