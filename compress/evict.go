package compress

import (
	"fmt"
	"math"
	"slices"
)

// Evictor is the slot bookkeeping of one layer and KV head of one sequence under a decode-time eviction policy
// (h2o, tova; docs/policies.md §18-19). Pos[slot] is the absolute position a slot holds, -1 when empty, and drives
// the attention mask as Slots.Pos does; Score[slot] is the slot's eviction score (h2o: attention accumulated since
// the position entered the cache; tova: the last query's attention, group mean). Slots fill in order 0, 1, ...;
// once all Capacity slots hold a position every Decode evicts one, so the slots in use are always [0, Len()).
//
// An Evictor is not safe for concurrent use.
type Evictor struct {
	Pos     []int32
	Score   []float64
	plan    Plan
	n       int
	evicted int
	assign  []SlotAssign
	idx     []int32
}

// NewEvictor returns empty bookkeeping for plan (every slot -1); plan.Evict must be set.
func NewEvictor(plan Plan) *Evictor {
	e := &Evictor{}
	e.Reset(plan)
	return e
}

// Reset empties e for a new sequence with plan, reusing its memory when it is large enough.
// It panics when plan is not a decode-time eviction plan (a programming error).
func (e *Evictor) Reset(plan Plan) {
	if !plan.Evict {
		panic(fmt.Sprintf("compress: Evictor for policy %s, which does not evict during decode", plan.Policy))
	}
	e.plan = plan
	if cap(e.Pos) < plan.Capacity {
		e.Pos = make([]int32, plan.Capacity)
		e.Score = make([]float64, plan.Capacity)
	}
	e.Pos, e.Score = e.Pos[:plan.Capacity], e.Score[:plan.Capacity]
	for i := range e.Pos {
		e.Pos[i], e.Score[i] = -1, 0
	}
	e.n, e.evicted = 0, -1
	e.assign = e.assign[:0]
}

// Len is the number of slots in use: they are [0, Len()).
func (e *Evictor) Len() int { return e.n }

// Evicted is the position the last Decode evicted, -1 when it took an empty slot.
func (e *Evictor) Evicted() int { return e.evicted }

// Prefill places the kept prompt positions at the end of prefill and returns, in ascending position order, the
// slot each one is copied to (slot i holds the i-th kept position; the slice is reused by the next Prefill or
// Reset). scores holds the prompt score of every prompt position (len PromptLen, from PromptScores) and may be nil
// when the plan needs none. Kept: every position when the prompt fits (L <= B); otherwise for h2o the R most recent
// positions and the H others of highest score, for tova the B positions of highest score (ties to the lower
// position, NaN lowest). Each kept slot's Score starts at its prompt score.
// Prefill panics when scores are needed but missing or of the wrong length (a programming error).
func (e *Evictor) Prefill(scores []float64) []SlotAssign {
	pl := e.plan
	L := pl.PromptLen
	if scores != nil && len(scores) != L || scores == nil && pl.NeedScores {
		panic(fmt.Sprintf("compress: Evictor.Prefill got %d scores for a %d-token prompt (policy %s, scores needed: %v)", len(scores), L, pl.Policy, pl.NeedScores))
	}
	a := e.assign[:0]
	put := func(p int) {
		s := len(a)
		e.Pos[s] = int32(p)
		if scores != nil {
			e.Score[s] = scores[p]
		}
		a = append(a, SlotAssign{Pos: p, Slot: s})
	}
	if pl.Hi-pl.Lo <= pl.TopK {
		for p := 0; p < L; p++ {
			put(p)
		}
	} else {
		e.idx = grow(e.idx, pl.Hi)
		for i := range e.idx {
			e.idx[i] = int32(i)
		}
		slices.SortFunc(e.idx, func(x, y int32) int { return rank(scores[x], int(x), scores[y], int(y)) })
		kept := e.idx[:pl.TopK]
		slices.Sort(kept)
		for _, p := range kept {
			put(int(p))
		}
		for p := pl.Hi; p < L; p++ {
			put(p)
		}
	}
	e.n = len(a)
	e.assign = a
	return a
}

// rank orders two (score, position) pairs best first: the higher score, then the lower position; NaN lowest.
func rank(sa float64, pa int, sb float64, pb int) int {
	na, nb := math.IsNaN(sa), math.IsNaN(sb)
	switch {
	case na != nb:
		if na {
			return 1
		}
		return -1
	case !na && sa > sb:
		return -1
	case !na && sa < sb:
		return 1
	}
	return pa - pb
}

// Decode returns the slot where the token at absolute position p (p >= PromptLen, increasing by one each step)
// is written, and records it in Pos with Score 0. While a slot is empty it takes the next one; once the cache is
// full it evicts the slot that ranks last (lowest score, ties to the higher position, NaN lowest) among the
// candidates: for h2o the held positions at most p - R (the R - 1 before p stay, with p the recent window), for
// tova every held position. It does not allocate.
func (e *Evictor) Decode(p int) int {
	pl := &e.plan
	if p < pl.PromptLen {
		panic(fmt.Sprintf("compress: Evictor.Decode(%d) inside the prompt (%d tokens, policy %s)", p, pl.PromptLen, pl.Policy))
	}
	var slot int
	if e.n < len(e.Pos) {
		slot, e.evicted = e.n, -1
		e.n++
	} else {
		limit := int32(p - pl.Ring) // h2o: positions above it are in the recent window; tova: Ring = 0, every one
		slot = -1
		for s, q := range e.Pos {
			if q > limit {
				continue
			}
			if slot < 0 || rank(e.Score[s], int(q), e.Score[slot], int(e.Pos[slot])) > 0 {
				slot = s
			}
		}
		if slot < 0 {
			panic(fmt.Sprintf("compress: Evictor.Decode(%d): no slot to evict (policy %s)", p, pl.Policy))
		}
		e.evicted = int(e.Pos[slot])
	}
	e.Pos[slot] = int32(p)
	e.Score[slot] = 0
	return slot
}

// Observe takes the post-softmax attention weights of the step's query over the slots in use, for the g query
// heads of the KV head's group (head j's weight of slot s at w[j*ld+s], s < Len()), and updates the scores:
// h2o adds the group's sum to each slot's accumulated score, tova sets each slot's score to the group's mean.
// The sum over the group is taken in float64, in head order. It does not allocate.
func (e *Evictor) Observe(w []float32, g, ld int) {
	tova := e.plan.Policy.Method == MethodTOVA
	for s := 0; s < e.n; s++ {
		var t float64
		for j := 0; j < g; j++ {
			t += float64(w[j*ld+s])
		}
		if tova {
			e.Score[s] = t / float64(g)
		} else {
			e.Score[s] += t
		}
	}
}

// Kept appends the sorted positions currently held to dst.
func (e *Evictor) Kept(dst []int) []int {
	n := len(dst)
	for _, p := range e.Pos[:e.n] {
		dst = append(dst, int(p))
	}
	slices.Sort(dst[n:])
	return dst
}

// PromptScores returns, per KV head, the prompt score of every prompt position (len PromptLen) that h2o's and
// tova's Evictor.Prefill rank and start from (docs/policies.md §18-19), or nil when the plan needs none:
//
//   - h2o: the attention each position received during prefill, accumulated: the full-row causal softmax
//     probabilities of every prompt query (all L rows), summed over the rows and over the group's query heads;
//   - tova: the last prompt query's probabilities (one row), averaged over the group's query heads.
//
// queries are the post-RoPE queries of the last plan.QueryRows() prompt positions, flat [rows][numQHeads][headDim];
// keys the post-RoPE keys of all L prompt positions, flat [L][numKVHeads][headDim]. Probabilities are computed as
// SelectTopK's (float32 dot products, float64 exponentials and sums). It panics when the shapes do not match.
func PromptScores(plan Plan, queries, keys []float32, numQHeads, numKVHeads, headDim int, s *Scratch) [][]float64 {
	if !plan.Evict {
		panic(fmt.Sprintf("compress: PromptScores for policy %s, which does not evict during decode", plan.Policy))
	}
	if !plan.NeedScores {
		return nil
	}
	if numKVHeads < 1 || numQHeads < numKVHeads || numQHeads%numKVHeads != 0 {
		panic(fmt.Sprintf("compress: PromptScores: %d query heads is not a positive multiple of %d KV heads", numQHeads, numKVHeads))
	}
	L, w := plan.PromptLen, plan.QueryRows()
	if headDim < 1 || len(queries) != w*numQHeads*headDim || len(keys) != L*numKVHeads*headDim {
		panic(fmt.Sprintf("compress: PromptScores: got %d query and %d key floats, want %d x %d x %d and %d x %d x %d",
			len(queries), len(keys), w, numQHeads, headDim, L, numKVHeads, headDim))
	}
	if s == nil {
		s = &Scratch{}
	}
	g := numQHeads / numKVHeads
	s.q = grow(s.q, min(w, rowBlock)*headDim)
	s.logits = grow(s.logits, min(w, rowBlock)*L)
	s.ex = grow(s.ex, L)
	s.score = grow(s.score, L)
	out := make([][]float64, numKVHeads)
	for kv := range out {
		sum := make([]float64, L)
		for j := range g {
			headScores(s, queries, numQHeads, kv*g+j, keys, L, w, numKVHeads, kv, headDim)
			for t, v := range s.score {
				sum[t] += v
			}
		}
		if plan.Policy.Method == MethodTOVA {
			for t := range sum {
				sum[t] /= float64(g)
			}
		}
		out[kv] = sum
	}
	return out
}
