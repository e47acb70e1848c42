package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/snapeval/snapeval/backends/cpu/model"
	"github.com/snapeval/snapeval/backends/cpu/sample"
	"github.com/snapeval/snapeval/compress"
)

// Synthetic is a batch of sequences whose caches are filled directly, as after the prefill of a
// ctxLen-token prompt under a policy (every slot of the plan live: the sinks, ValidTopK top-K slots and
// the ring, or all ctxLen positions for full), with deterministic pseudo-random keys and values. It runs
// the engine's real decode steps (one batched forward per step, greedy sampling) without running the
// prefill, to measure decode at long contexts. Its tokens mean nothing. Not safe for concurrent use.
type Synthetic struct {
	s     *scheduler
	plan  compress.Plan
	kv    int64
	room  int
	steps int
	live  int
}

// NewSynthetic prepares n sequences of context ctxLen under policy, each with room decode steps.
func NewSynthetic(m *model.Model, opts Options, n, ctxLen, room int, policy compress.Policy) (*Synthetic, error) {
	if n <= 0 || ctxLen <= 0 || room <= 0 {
		return nil, fmt.Errorf("engine: synthetic batch needs n, context and room > 0 (got %d, %d, %d)", n, ctxLen, room)
	}
	opts.Slots = n
	opts.PrefixCacheBytes = -1
	opts = opts.withDefaults()
	plan, err := policy.Plan(ctxLen, room+1)
	if err != nil {
		return nil, err
	}
	c := &m.Cfg
	s := newScheduler(m, opts)
	y := &Synthetic{s: s, plan: plan, room: room, kv: policy.KVBytes(plan.Capacity, c.Layers, c.KVHeads, c.HeadDim, ElemBytes)}
	for i := 0; i < n; i++ {
		j := Job{Prompt: []int{0}, Policy: policy, MaxNew: room + 1}
		r := &request{ctx: context.Background(), job: j, plan: plan, out: make(chan reply, 1)}
		q := &sequence{req: r, mem: s.free[len(s.free)-1], smp: sample.New(sample.Params{})}
		s.free = s.free[:len(s.free)-1]
		s.bindMem(q)
		if headed(plan) {
			y.live = synthHeads(q, plan)
		} else {
			var topK []int
			for p := plan.Lo; p < plan.Lo+plan.ValidTopK; p++ {
				topK = append(topK, p)
			}
			q.slots.Prefill(topK)
		}
		st := uint32(2654435761 * uint32(i+1))
		fill := func(K, V []float32) {
			for k := range K {
				st = st*1664525 + 1013904223
				K[k] = float32(int32(st>>9)%1024) / 4096
				V[k] = float32(int32(st>>13)%1024) / 4096
			}
		}
		for l := range q.kv.K {
			fill(q.kv.K[l], q.kv.V[l])
		}
		if q.kv.Quant != nil { // the same pseudo-random prompt, quantized
			n := ctxLen * c.KVHeads * c.HeadDim
			K, V := make([]float32, n), make([]float32, n)
			for l := 0; l < c.Layers; l++ {
				fill(K, V)
				q.kv.Quant.Load(l, K, V, ctxLen)
			}
		}
		if !headed(plan) {
			q.kv.Live = q.slots.Pos
			y.live = 0
			for _, p := range q.slots.Pos {
				if p >= 0 {
					y.live++
				}
			}
		}
		q.pos, q.next = ctxLen, 1
		q.res.Tokens = make([]int, 0, room+1)
		s.active = append(s.active, q)
	}
	return y, nil
}

// synthHeads fills the per-head bookkeeping of a headed sequence as after its prefill (the first candidates kept,
// equal per-head counts; an Evictor ranks all-zero prompt scores) and returns the positions its first head holds.
func synthHeads(q *sequence, plan compress.Plan) int {
	hs := &q.mem.hs
	var scores []float64
	if plan.NeedScores {
		scores = make([]float64, plan.PromptLen)
	}
	for i := range hs.heads {
		if plan.Evict {
			hs.evs[i].Prefill(scores)
			continue
		}
		pl := hs.slots[i].Plan()
		topK := make([]int, 0, pl.ValidTopK)
		for p := pl.Lo; p < pl.Lo+pl.ValidTopK; p++ {
			topK = append(topK, p)
		}
		hs.slots[i].Prefill(topK)
	}
	if plan.Evict {
		return hs.evs[0].Len()
	}
	return len(hs.slots[0].Kept())
}

// ErrNoRoom is returned by Step once the sequences have used the decode steps they were built with.
var ErrNoRoom = errors.New("engine: synthetic sequences have no decode room left")

// Step runs one decode step of every sequence.
func (y *Synthetic) Step() error {
	if y.steps >= y.room {
		return ErrNoRoom
	}
	n := len(y.s.active)
	y.s.step()
	y.steps++
	if len(y.s.active) != n {
		return fmt.Errorf("engine: synthetic batch lost %d sequences in step %d", n-len(y.s.active), y.steps)
	}
	return nil
}

// Plan is the sequences' cache plan.
func (y *Synthetic) Plan() compress.Plan { return y.plan }

// KVBytes is the cache memory of one sequence (float32 K and V of every slot of the plan, or the packed size of a
// kvquant cache).
func (y *Synthetic) KVBytes() int64 { return y.kv }

// LiveSlots is the number of live slots of each sequence as built (before any decode step): what the
// first decode step attends to, besides the token it writes.
func (y *Synthetic) LiveSlots() int { return y.live }

// Close stops the workers.
func (y *Synthetic) Close() { y.s.pool.Close() }
