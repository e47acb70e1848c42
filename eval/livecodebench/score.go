package livecodebench

import (
	"sort"
	"strings"

	"github.com/snapeval/snapeval/stats"

	"github.com/snapeval/snapeval/eval"
)

// PassAtK is the unbiased estimator 1 - C(n-c, k)/C(n, k) of n samples with c correct (the official
// estimate_pass_at_k). It is 1 when n-c < k and NaN-free for k <= n; k > n gives 0 (undefined: callers skip it).
func PassAtK(n, c, k int) float64 {
	v, err := stats.PassAtK(n, c, k)
	if err != nil {
		return 0 // undefined (k > n, no samples): callers skip such items
	}
	return v
}

// Score is pass@k over the problems of a set of records.
type Score struct {
	Problems int     `json:"problems"` // problems scored (with at least k graded samples)
	Samples  int     `json:"samples"`  // graded samples
	Correct  int     `json:"correct"`  // correct samples
	Errors   int     `json:"errors"`   // error records (not graded, never counted as wrong)
	Short    int     `json:"short"`    // problems skipped for having fewer than k graded samples
	PassAtK  float64 `json:"pass_at_k"`
}

// Scores computes pass@k (k = 1: the mean over problems of passed/n) over records of one policy.
// Records are grouped by item; error records are counted apart and excluded from n.
func Scores(recs []eval.Record, k int) Score {
	type nc struct{ n, c int }
	per := map[string]*nc{}
	var s Score
	var order []string
	for _, r := range recs {
		x := per[r.ItemID]
		if x == nil {
			x = &nc{}
			per[r.ItemID] = x
			order = append(order, r.ItemID)
		}
		if r.IsError() {
			s.Errors++
			continue
		}
		x.n++
		s.Samples++
		if r.Correct {
			x.c++
			s.Correct++
		}
	}
	sort.Strings(order)
	sum := 0.0
	for _, id := range order {
		x := per[id]
		if x.n < k || x.n == 0 {
			s.Short++
			continue
		}
		s.Problems++
		sum += PassAtK(x.n, x.c, k)
	}
	if s.Problems > 0 {
		s.PassAtK = sum / float64(s.Problems)
	}
	return s
}

// Breakdown computes Scores per value of a tag ("difficulty", "platform") read from the records' Tags.
func Breakdown(recs []eval.Record, k int, tag string) map[string]Score {
	groups := map[string][]eval.Record{}
	for _, r := range recs {
		groups[tagValue(r.Tags, tag)] = append(groups[tagValue(r.Tags, tag)], r)
	}
	out := map[string]Score{}
	for v, g := range groups {
		out[v] = Scores(g, k)
	}
	return out
}

// tagValue reads key from "k1=v1;k2=v2" ("" when absent).
func tagValue(tags, key string) string {
	for _, kv := range strings.Split(tags, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}
