package compress

import (
	"fmt"
	"slices"
)

// SelectAdaKV is SelectTopK for adakv (docs/policies.md §21): per KV head, the kept top-K candidates of one layer,
// ascending, whose counts differ between the heads and sum to numKVHeads * plan.ValidTopK. Inputs are
// SelectTopK's; every head's candidates are scored as SelectTopK scores them (G of §8). With
// m = floor(TopK * Safeguard / 100), every head keeps its own m best candidates, and the remaining
// numKVHeads * (TopK - m) slots go to the best of all the other candidates of the layer pooled over the heads
// (score descending, then lower position, then lower head; NaN lowest). A head's kept set is therefore its own
// best candidates, as many as it won. When the plan needs no scores every head keeps every candidate.
func SelectAdaKV(plan Plan, queries, keys []float32, numQHeads, numKVHeads, headDim int, s *Scratch) [][]int {
	if plan.Policy.Method != MethodAdaKV {
		panic(fmt.Sprintf("compress: SelectAdaKV for policy %s", plan.Policy))
	}
	if !plan.NeedScores {
		return SelectTopK(plan, nil, nil, numQHeads, numKVHeads, headDim, s)
	}
	if numKVHeads < 1 || numQHeads < numKVHeads || numQHeads%numKVHeads != 0 {
		panic(fmt.Sprintf("compress: SelectAdaKV: %d query heads is not a positive multiple of %d KV heads", numQHeads, numKVHeads))
	}
	c := plan.Hi - plan.Lo
	s = prepareScoring(s, "SelectAdaKV", &plan, queries, keys, numQHeads, numKVHeads, headDim)
	// Per head: its candidates' scores and their order (best first).
	scores := make([][]float64, numKVHeads)
	order := make([][]int32, numKVHeads)
	for g := range numKVHeads {
		groupScores(plan, queries, keys, numQHeads, numKVHeads, headDim, g, s)
		sc := slices.Clone(s.group)
		o := make([]int32, c)
		for j := range o {
			o[j] = int32(j)
		}
		slices.SortFunc(o, func(a, b int32) int { return rank(sc[a], int(a), sc[b], int(b)) })
		scores[g], order[g] = sc, o
	}
	K := plan.TopK
	m := K * plan.Policy.Safeguard / 100
	// The pool: every head's candidates past its safeguard, best first over the layer.
	type entry struct {
		g    int
		rank int // index in order[g]
	}
	pool := make([]entry, 0, numKVHeads*(c-m))
	for g := range numKVHeads {
		for r := m; r < c; r++ {
			pool = append(pool, entry{g, r})
		}
	}
	slices.SortFunc(pool, func(a, b entry) int {
		ja, jb := order[a.g][a.rank], order[b.g][b.rank]
		if r := rank(scores[a.g][ja], int(ja), scores[b.g][jb], int(jb)); r != 0 {
			return r
		}
		return a.g - b.g
	})
	counts := make([]int, numKVHeads)
	for g := range counts {
		counts[g] = m
	}
	for _, e := range pool[:numKVHeads*(K-m)] {
		counts[e.g]++
	}
	out := make([][]int, numKVHeads)
	for g := range out {
		kept := make([]int, counts[g])
		for i := range kept {
			kept[i] = plan.Lo + int(order[g][i])
		}
		slices.Sort(kept)
		out[g] = kept
	}
	return out
}

// HeadPlan returns the plan of one KV head of a layer under adakv that keeps n top-K candidates (n = len of its
// SelectAdaKV result): the layer's plan with n top-K slots, so that the heads' capacities sum to the layer's.
// Under any other policy, or when the layer needs no scores, it returns the layer's plan.
func (pl Plan) HeadPlan(n int) Plan {
	if pl.Policy.Method != MethodAdaKV || !pl.NeedScores {
		return pl
	}
	return pl.withTopK(n)
}
