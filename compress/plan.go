package compress

import (
	"fmt"
)

// Plan is the static layout of one sequence under one policy, fixed at admission (docs/policies.md §5-6).
// It is the same for every layer and KV head, only the chosen top-K positions differing between them, except
// under pyramidkv (a plan per layer: Layers) and adakv (a plan per KV head: HeadPlan), whose capacities average
// to Capacity, and h2o and tova (Evict), whose kept positions change at every decode step.
//
// The physical layout of a layer and KV head is [ sinks: Sinks | ring: Ring | top-K: TopK | append: MaxNew ],
// the append block existing only for snapkv (AppendDecode). For full, Sinks == Capacity and slot(p) = p.
type Plan struct {
	Policy            Policy
	PromptLen, MaxNew int
	// Capacity is the number of slots per layer per KV head.
	Capacity int
	// Sinks, Ring and TopK are the slot counts of the three blocks: S, the effective R (adaptive applied;
	// for snapkv the observation window W) and K (adaptive: ValidTopK).
	Sinks, Ring, TopK int
	// Lo and Hi bound the candidates: prompt positions [Lo, Hi). Sinks are [0, Lo), the ring (snapkv: the
	// window) is [Hi, PromptLen).
	Lo, Hi int
	// ValidTopK = min(Hi-Lo, K) top-K slots are used; the rest stay masked for the life of the sequence.
	ValidTopK int
	// NeedScores is true when there are more candidates than top-K slots, so SnapKV scores must be computed.
	NeedScores bool
	// Window and Kernel are the SnapKV observation window W and pooling kernel k (0 for full and streaming).
	Window, Kernel int
	// AppendDecode is true for snapkv: decoded tokens go to the append block, never evicted.
	AppendDecode bool
	// Evict is true for the decode-time eviction policies (h2o, tova): the slots of each layer and KV head are
	// kept by an Evictor, not by Slots; Ring is then h2o's recent window R, TopK its heavy hitters H (tova: B),
	// and [Lo, Hi) the prompt positions that compete for the TopK slots at the end of prefill.
	Evict bool
}

// Plan lays out a sequence of promptLen prompt tokens and up to maxNew decoded tokens.
//
// It fails when the policy is invalid, the prompt is empty, maxNew is negative, the sizes overflow, or
// decoded tokens would have no slot (a zero ring while positions beyond the sinks are to be decoded).
//
// With Adaptive, the prompt is partitioned with the configured R, then the unused top-K slots go to the
// ring: Ring = B - S - ValidTopK and TopK = ValidTopK [choice: the candidates kept are the same as without
// adaptive, and stay in the never-evicted top-K block].
func (p Policy) Plan(promptLen, maxNew int) (Plan, error) {
	if err := p.Validate(); err != nil {
		return Plan{}, fmt.Errorf("policy %s: %w", p, err)
	}
	if promptLen < 1 {
		return Plan{}, fmt.Errorf("policy %s: prompt length %d must be positive", p, promptLen)
	}
	if maxNew < 0 {
		return Plan{}, fmt.Errorf("policy %s: max new tokens %d must not be negative", p, maxNew)
	}
	if promptLen > maxValue || maxNew > maxValue || promptLen+maxNew > maxValue {
		return Plan{}, fmt.Errorf("policy %s: prompt %d + max new %d exceeds %d positions", p, promptLen, maxNew, maxValue)
	}
	L := promptLen
	pl := Plan{Policy: p, PromptLen: L, MaxNew: maxNew, Window: p.Window, Kernel: p.Kernel}
	switch p.Method {
	case MethodFull, MethodKVQuant:
		pl.Sinks = L + maxNew
		pl.Lo, pl.Hi = L, L
	case MethodKNorm:
		pl.TopK = p.TopK
		pl.Hi = L
		pl.AppendDecode = true
	case MethodH2O, MethodTOVA:
		return evictPlan(pl, p), nil
	case MethodPyramidKV, MethodAdaKV:
		b, err := p.base().Plan(L, maxNew)
		if err != nil {
			return Plan{}, fmt.Errorf("policy %s: %w", p, err)
		}
		b.Policy = p
		return b, nil
	case MethodSnapKV:
		pl.Ring = p.Window
		pl.TopK = p.TopK
		pl.Hi = max(0, L-p.Window)
		pl.AppendDecode = true
	case MethodStreaming, MethodSnapStream:
		pl.Sinks, pl.Ring, pl.TopK = p.Sinks, p.Recent, p.TopK
		pl.Lo = min(p.Sinks, L)
		pl.Hi = max(pl.Lo, L-p.Recent)
	}
	c := pl.Hi - pl.Lo
	pl.ValidTopK = min(c, pl.TopK)
	pl.NeedScores = pl.TopK > 0 && c > pl.TopK // streaming (K = 0) never scores
	if p.Adaptive {
		pl.Ring = p.Budget - p.Sinks - pl.ValidTopK
		pl.TopK = pl.ValidTopK
	}
	pl.Capacity = pl.Sinks + pl.Ring + pl.TopK
	if pl.AppendDecode {
		pl.Capacity += maxNew
		if pl.Capacity > maxValue {
			return Plan{}, fmt.Errorf("policy %s: capacity %d exceeds %d", p, pl.Capacity, maxValue)
		}
	}
	if pl.Ring == 0 && !pl.AppendDecode && maxNew > 0 && L+maxNew > pl.Sinks {
		return Plan{}, fmt.Errorf("policy %s: recent=0 leaves no ring slot for decoded tokens (max new %d); recent=0 is for prefill-only use", p, maxNew)
	}
	return pl, nil
}

// SlotOf returns slot(p) of docs/policies.md §6 for a position that is not a top-K position: p for a sink
// (p < Sinks), Sinks + ((p - Sinks) mod Ring) for a ring position, and for snapkv's decoded tokens
// (p >= PromptLen) Sinks + Ring + TopK + (p - PromptLen). It returns -1 when p has no such slot
// (p < 0, a zero ring, or past the append block). Top-K slots depend on the selection: see Slots.Prefill.
func SlotOf(plan Plan, p int) int { return slotOf(&plan, p) }

// slotOf is SlotOf without copying the plan (Slots.Decode runs it for every token).
func slotOf(plan *Plan, p int) int {
	switch {
	case p < 0:
		return -1
	case p < plan.Sinks:
		return p
	case plan.AppendDecode && p >= plan.PromptLen:
		if p-plan.PromptLen >= plan.MaxNew {
			return -1
		}
		return plan.Sinks + plan.Ring + plan.TopK + (p - plan.PromptLen)
	case plan.Ring == 0:
		return -1
	}
	return plan.Sinks + (p-plan.Sinks)%plan.Ring
}

// KVBytes returns the KV-cache memory of one sequence (docs/policies.md §10):
// 2 (K and V) x layers x kvHeads x headDim x capacity x elemBytes.
func KVBytes(capacity, layers, kvHeads, headDim, elemBytes int) int64 {
	return 2 * int64(layers) * int64(kvHeads) * int64(headDim) * int64(capacity) * int64(elemBytes)
}

// evictPlan is the plan of h2o and tova (docs/policies.md §18-19): Capacity = B slots that fill in order and are
// then recycled one eviction per decode step. h2o keeps the R most recent prompt positions [Hi, L) and ranks
// [0, Hi) for its H heavy slots; tova ranks the whole prompt for its B slots. NeedScores is set when the prompt
// must be cut at the end of prefill (L > B) or an eviction can happen during decode (L + maxNew - 1 > B, the last
// sampled token never being written).
func evictPlan(pl Plan, p Policy) Plan {
	L := pl.PromptLen
	pl.Evict = true
	pl.Capacity = p.Budget
	pl.TopK, pl.Ring = p.Budget, 0
	if p.Method == MethodH2O {
		pl.TopK, pl.Ring = p.TopK, p.Recent
	}
	pl.Hi = max(0, L-pl.Ring)
	pl.ValidTopK = min(pl.Hi, pl.TopK)
	pl.NeedScores = L > p.Budget || L+pl.MaxNew-1 > p.Budget
	return pl
}

// QueryRows is the number of last prompt positions whose queries (every query head) the prompt scores need:
// min(W, L) for SnapKV's observation window (snapkv, snapstream, pyramidkv, adakv), every prompt position for
// h2o (attention accumulated over the whole prompt), the last one for tova, none for the others or when
// NeedScores is false.
func (pl Plan) QueryRows() int {
	switch {
	case !pl.NeedScores:
		return 0
	case pl.Policy.Method == MethodH2O:
		return pl.PromptLen
	case pl.Policy.Method == MethodTOVA:
		return 1
	}
	return min(pl.Window, pl.PromptLen)
}

// withTopK returns the plan with k top-K slots (a layer's or a KV head's share of a pyramidkv or adakv
// allocation): the partition is unchanged, ValidTopK = min(candidates, k), and the capacity follows.
func (pl Plan) withTopK(k int) Plan {
	pl.Capacity += k - pl.TopK
	pl.TopK = k
	c := pl.Hi - pl.Lo
	pl.ValidTopK = min(c, k)
	pl.NeedScores = k > 0 && c > k
	return pl
}

// Layers returns the plan of each of n layers. Every layer has the sequence's plan, except under pyramidkv,
// whose layers get the top-K counts of PyramidTopK (docs/policies.md §20); their capacities sum to n times
// the sequence's.
func (pl Plan) Layers(n int) []Plan {
	out := make([]Plan, n)
	ks := []int(nil)
	if pl.Policy.Method == MethodPyramidKV {
		ks = PyramidTopK(pl.TopK, pl.Hi-pl.Lo, pl.Window, pl.Policy.Beta, n)
	}
	for l := range out {
		out[l] = pl
		if ks != nil {
			out[l] = pl.withTopK(ks[l])
		}
	}
	return out
}

// PyramidTopK returns the top-K counts of n layers that share n*t top-K slots under PyramidKV (Cai et al. 2024,
// KVCache-Factory's PyramidKVCluster; docs/policies.md §20), with c candidates per layer, observation window w and
// slope beta:
//
//   - c <= t (every candidate fits) or c + w < 2t (the official code's "q_len < 2 * (capacity - window)"): t for
//     every layer;
//   - otherwise lo = t / beta and hi = 2t - lo, clamped to hi = c, lo = 2t - c when hi >= c; layer l gets
//     hi - l (hi - lo) / (n - 1), rounded by the largest remainder [choice] so that the counts sum to exactly n*t
//     (remainder ties to the lower layer): the counts never increase with depth.
func PyramidTopK(t, c, w, beta, n int) []int {
	out := make([]int, n)
	if n == 1 || c <= t || c+w < 2*t {
		for l := range out {
			out[l] = t
		}
		return out
	}
	lo := t / beta
	hi := 2*t - lo
	if hi >= c {
		hi, lo = c, 2*t-c
	}
	span, den := hi-lo, n-1
	sum := 0
	frac := make([]int, n) // fractional part of layer l's exact count, in units of 1/den
	for l := range out {
		q, r := l*span/den, l*span%den
		out[l] = hi - q
		if r > 0 {
			out[l]--
			frac[l] = den - r
		}
		sum += out[l]
	}
	for d := n*t - sum; d > 0; d-- {
		best := -1
		for l := range out {
			if frac[l] > 0 && (best < 0 || frac[l] > frac[best]) {
				best = l
			}
		}
		out[best]++
		frac[best] = 0
	}
	return out
}
