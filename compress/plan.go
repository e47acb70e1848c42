package compress

import (
	"fmt"
)

// Plan is the static layout of one sequence under one policy, fixed at admission (docs/policies.md §5-6).
// It is the same for every layer and KV head; only the chosen top-K positions differ between them.
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
func SlotOf(plan Plan, p int) int {
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
