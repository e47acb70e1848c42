package compress

import (
	"fmt"
	"slices"
)

// SlotAssign says that the K/V of the prompt position Pos go to slot Slot.
type SlotAssign struct {
	Pos, Slot int
}

// Slots is the slot bookkeeping of one layer and KV head of one sequence.
// Pos[slot] is the absolute position held by the slot, -1 when the slot is empty or masked: it drives the
// attention mask of a decode query (attend to every slot with Pos >= 0; the current token is written
// before it attends, so it attends to itself).
//
// A Slots is not safe for concurrent use.
type Slots struct {
	Pos    []int32
	plan   Plan
	assign []SlotAssign
}

// NewSlots returns empty bookkeeping for plan (every slot -1).
func NewSlots(plan Plan) *Slots {
	s := &Slots{}
	s.Reset(plan)
	return s
}

// Reset empties s for a new sequence with plan, reusing its memory when it is large enough.
func (s *Slots) Reset(plan Plan) {
	s.plan = plan
	if cap(s.Pos) < plan.Capacity {
		s.Pos = make([]int32, plan.Capacity)
	}
	s.Pos = s.Pos[:plan.Capacity]
	for i := range s.Pos {
		s.Pos[i] = -1
	}
	s.assign = s.assign[:0]
}

// Plan returns the plan s was last reset with.
func (s *Slots) Plan() Plan { return s.plan }

// Prefill places the kept prompt positions: sinks [0, Lo) at slot p, the given top-K positions (ascending,
// within [Lo, Hi), len == ValidTopK) at slots Sinks, Sinks+1, ... of the top-K block after the ring, and the
// ring/window positions [Hi, PromptLen) at SlotOf. It returns, for each kept prompt position in ascending
// order, the slot it is written to; the slice is reused by the next Prefill or Reset.
// When the plan needs no scores, topK may be nil: every candidate is kept (none for streaming).
// Prefill panics when topK breaks this contract (a programming error, not bad outside input).
func (s *Slots) Prefill(topK []int) []SlotAssign {
	pl := s.plan
	if topK == nil && !pl.NeedScores {
		topK = make([]int, 0, pl.ValidTopK)
		for p := pl.Lo; p < pl.Lo+pl.ValidTopK; p++ {
			topK = append(topK, p)
		}
	}
	if len(topK) != pl.ValidTopK {
		panic(fmt.Sprintf("compress: Prefill got %d top-K positions, plan %s wants %d", len(topK), pl.Policy, pl.ValidTopK))
	}
	a := s.assign[:0]
	put := func(p, slot int) {
		s.Pos[slot] = int32(p)
		a = append(a, SlotAssign{Pos: p, Slot: slot})
	}
	for p := 0; p < pl.Lo; p++ {
		put(p, p)
	}
	base := pl.Sinks + pl.Ring
	for i, p := range topK {
		if p < pl.Lo || p >= pl.Hi || (i > 0 && p <= topK[i-1]) {
			panic(fmt.Sprintf("compress: Prefill top-K position %d (index %d) is not ascending within candidates [%d, %d)", p, i, pl.Lo, pl.Hi))
		}
		put(p, base+i)
	}
	for p := pl.Hi; p < pl.PromptLen; p++ {
		put(p, SlotOf(pl, p))
	}
	s.assign = a
	return a
}

// Decode returns the slot where the token at absolute position p (p >= PromptLen) is written and records
// it in Pos, overwriting the oldest ring entry once the ring is full. It does not allocate.
// It panics when p has no slot (p < PromptLen, or past MaxNew for full and snapkv).
func (s *Slots) Decode(p int) int {
	pl := &s.plan
	slot := slotOf(pl, p)
	if p < pl.PromptLen || slot < 0 || slot >= len(s.Pos) {
		panic(fmt.Sprintf("compress: Decode(%d): no slot for this position (prompt %d, max new %d, policy %s)", p, pl.PromptLen, pl.MaxNew, pl.Policy))
	}
	s.Pos[slot] = int32(p)
	return slot
}

// Kept returns the sorted positions currently held.
func (s *Slots) Kept() []int {
	return s.AppendKept(nil)
}

// AppendKept appends the sorted positions currently held to dst.
func (s *Slots) AppendKept(dst []int) []int {
	n := len(dst)
	for _, p := range s.Pos {
		if p >= 0 {
			dst = append(dst, int(p))
		}
	}
	slices.Sort(dst[n:])
	return dst
}
