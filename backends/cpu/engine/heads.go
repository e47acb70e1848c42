package engine

import (
	"slices"

	"github.com/snapeval/snapeval/backends/cpu/model"
	"github.com/snapeval/snapeval/compress"
)

// Per-head caches: the policies whose capacities or kept positions differ between layers and KV heads
// (pyramidkv, adakv: per-layer and per-head top-K at prefill; h2o, tova: one eviction per layer and KV head at
// every decode step) give each layer and KV head its own cache region, mask and write slot (model.Seq.Heads),
// kept by a compress.Slots (pyramidkv, adakv) or a compress.Evictor (h2o, tova) per layer and KV head. A layer's
// regions lie one after the other in the batch slot's memory of that layer; the layers' totals sum to
// layers x KV heads x Plan.Capacity, the memory the KV bytes count.

// headed reports whether a plan keeps a cache per layer and KV head.
func headed(p compress.Plan) bool {
	m := p.Policy.Method
	return p.Evict || m == compress.MethodPyramidKV || m == compress.MethodAdaKV
}

// headState is the per-head bookkeeping of a batch slot, reused between the sequences it serves.
type headState struct {
	heads   []model.HeadCache
	slots   []compress.Slots
	evs     []compress.Evictor
	weights []float32 // the Evictors' attention weights: G x Capacity floats per layer and KV head
	layers  []compress.Plan
}

// bytes is the memory of the bookkeeping that grows with the capacity (the weights; the masks and scores are
// counted with them as the same order).
func (h *headState) bytes() int64 {
	n := int64(cap(h.weights)) * 4
	for i := range h.slots {
		n += int64(cap(h.slots[i].Pos)) * 4
	}
	for i := range h.evs {
		n += int64(cap(h.evs[i].Pos))*4 + int64(cap(h.evs[i].Score))*8
	}
	return n
}

// weightBytes is the memory of the attention weights an Evictor plan needs besides its K and V.
func weightBytes(sh *modelShape, plan compress.Plan) int64 {
	if !plan.Evict {
		return 0
	}
	return int64(sh.Layers) * int64(sh.Heads) * int64(plan.Capacity) * 4
}

// bindHeads points a headed sequence's cache view at its slot memory, grown to the plan's per-layer sizes: each
// layer's KV heads get equal regions of the layer's plan capacity (adakv's are laid out again at the end of
// prefill, when its per-head counts are known).
func (s *scheduler) bindHeads(q *sequence) {
	c := &s.m.Cfg
	plan := q.req.plan
	d, nKV, g := c.HeadDim, c.KVHeads, c.Heads/c.KVHeads
	mem := q.mem
	hs := &mem.hs
	hs.layers = plan.Layers(c.Layers)
	if mem.logits == nil {
		mem.logits = make([]float32, c.Vocab)
	}
	mem.quant = nil // a slot keeps one kind of cache at a time (bindMem)
	if len(mem.k) == 0 {
		mem.k = make([][]float32, c.Layers)
		mem.v = make([][]float32, c.Layers)
	}
	q.kv = model.Seq{K: make([][]float32, c.Layers), V: make([][]float32, c.Layers)}
	nh := c.Layers * nKV
	if len(hs.heads) != nh {
		hs.heads = make([]model.HeadCache, nh)
		hs.slots = make([]compress.Slots, nh)
		hs.evs = make([]compress.Evictor, nh)
	}
	if plan.Evict {
		hs.weights = slices.Grow(hs.weights[:0], nh*g*plan.Capacity)[:nh*g*plan.Capacity]
	}
	for l := range mem.k {
		lp := hs.layers[l]
		n := nKV * lp.Capacity * d
		if cap(mem.k[l]) < n {
			mem.k[l] = make([]float32, n)
			mem.v[l] = make([]float32, n)
		}
		q.kv.K[l], q.kv.V[l] = mem.k[l][:n], mem.v[l][:n]
		q.kv.Cap = max(q.kv.Cap, lp.Capacity)
		for h := range nKV {
			i := l*nKV + h
			hc := model.HeadCache{Off: h * lp.Capacity, Cap: lp.Capacity}
			if plan.Evict {
				hs.evs[i].Reset(lp)
				hc.Live = hs.evs[i].Pos
				hc.Weights = hs.weights[i*g*lp.Capacity : (i+1)*g*lp.Capacity]
			} else {
				hs.slots[i].Reset(lp)
				hc.Live = hs.slots[i].Pos
			}
			hs.heads[i] = hc
		}
	}
	q.kv.Heads = hs.heads
}

// finishHeads is finishPrefill's compression for a headed plan: the kept prompt positions of every layer and KV
// head (Evictor.Prefill from PromptScores; Slots.Prefill from SelectTopK per layer plan, or SelectAdaKV and its
// per-head plans), copied into the heads' regions.
func (s *scheduler) finishHeads(q *sequence) {
	c := &s.m.Cfg
	plan := q.req.plan
	t := q.task
	hs := &q.mem.hs
	d, nKV, nQ := c.HeadDim, c.KVHeads, c.Heads
	L := plan.PromptLen
	w := qNeed(plan)
	adakv := plan.Policy.Method == compress.MethodAdaKV
	// Scores of all layers in parallel, one Scratch per worker.
	topKs := make([][][]int, c.Layers)
	scores := make([][][]float64, c.Layers)
	if plan.NeedScores {
		s.pool.For(c.Layers, func(lo, hi, worker int) {
			for l := lo; l < hi; l++ {
				queries := t.seq.Q[l][(t.qRows-w)*nQ*d:]
				keys := t.seq.K[l][:L*nKV*d]
				lp := hs.layers[l]
				switch {
				case plan.Evict:
					scores[l] = compress.PromptScores(lp, queries, keys, nQ, nKV, d, &s.scratch[worker])
				case adakv:
					topKs[l] = compress.SelectAdaKV(lp, queries, keys, nQ, nKV, d, &s.scratch[worker])
				case lp.NeedScores:
					topKs[l] = compress.SelectTopK(lp, queries, keys, nQ, nKV, d, &s.scratch[worker])
				}
			}
		})
	}
	if q.req.job.WantKept {
		q.res.Kept = make([][][]int, c.Layers)
	}
	q.kv.Cap = 0
	for l := 0; l < c.Layers; l++ {
		lp := hs.layers[l]
		if q.req.job.WantKept {
			q.res.Kept[l] = make([][]int, nKV)
		}
		off := 0
		for h := range nKV {
			i := l*nKV + h
			hc := &hs.heads[i]
			var assign []compress.SlotAssign
			if plan.Evict {
				var sc []float64
				if scores[l] != nil {
					sc = scores[l][h]
				}
				assign = hs.evs[i].Prefill(sc)
			} else {
				var tk []int
				hp := lp
				if topKs[l] != nil {
					tk = topKs[l][h]
					hp = lp.HeadPlan(len(tk))
				}
				// adakv's regions follow its per-head counts; the others keep equal regions.
				hc.Off, hc.Cap = off, hp.Capacity
				hs.slots[i].Reset(hp)
				hc.Live = hs.slots[i].Pos
				assign = hs.slots[i].Prefill(tk)
			}
			off += hc.Cap
			q.kv.Cap = max(q.kv.Cap, hc.Cap)
			for _, a := range assign {
				src := (a.Pos*nKV + h) * d
				dst := (hc.Off + a.Slot) * d
				copy(q.kv.K[l][dst:dst+d], t.seq.K[l][src:src+d])
				copy(q.kv.V[l][dst:dst+d], t.seq.V[l][src:src+d])
			}
			if q.req.job.WantKept {
				if plan.Evict {
					q.res.Kept[l][h] = hs.evs[i].Kept(nil)
				} else {
					q.res.Kept[l][h] = hs.slots[i].Kept()
				}
			}
		}
	}
	if q.req.job.WantEvicted {
		q.res.Evicted = make([][][]int, 0, q.req.job.MaxNew)
	}
}

// decodeHeads gives every layer and KV head of a headed sequence the slot of the token at position p (an
// Evictor evicting once its cache is full), recording the evictions when the job asks for them.
func (s *scheduler) decodeHeads(q *sequence, p int) {
	hs := &q.mem.hs
	var ev [][]int
	if q.req.job.WantEvicted && q.req.plan.Evict {
		nKV := s.m.Cfg.KVHeads
		ev = make([][]int, s.m.Cfg.Layers)
		for l := range ev {
			ev[l] = make([]int, nKV)
		}
		defer func() { q.res.Evicted = append(q.res.Evicted, ev) }()
	}
	for i := range hs.heads {
		if q.req.plan.Evict {
			hs.heads[i].Slot = hs.evs[i].Decode(p)
			if ev != nil {
				ev[i/len(ev[0])][i%len(ev[0])] = hs.evs[i].Evicted()
			}
			continue
		}
		hs.heads[i].Slot = hs.slots[i].Decode(p)
	}
}

// observeHeads passes the step's attention weights of an Evictor sequence to its Evictors.
func (s *scheduler) observeHeads(q *sequence) {
	if !q.req.plan.Evict {
		return
	}
	g := s.m.Cfg.Heads / s.m.Cfg.KVHeads
	hs := &q.mem.hs
	for i := range hs.heads {
		hs.evs[i].Observe(hs.heads[i].Weights, g, hs.heads[i].Cap)
	}
}
