package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/snapeval/snapeval/backends/cpu/model"
	"github.com/snapeval/snapeval/backends/cpu/sample"
	"github.com/snapeval/snapeval/compress"
)

// prefillTask is the full causal prefill of one prompt, shared by every sequence with that prompt.
type prefillTask struct {
	key     string
	ids     []int
	seq     *model.Seq // dense: Cap = len(ids), Q holds the last qRows queries
	qRows   int
	next    int // next prompt position to process
	logits  []float32
	waiters []*sequence
	done    bool
}

func (t *prefillTask) bytes() int64 {
	n := int64(0)
	for l := range t.seq.K {
		n += int64(len(t.seq.K[l])+len(t.seq.V[l])+len(t.seq.Q[l])) * 4
		if t.seq.RawK != nil {
			n += int64(len(t.seq.RawK[l])) * 4
		}
	}
	return n + int64(len(t.logits))*4
}

// slotMem is the cache memory owned by one batch slot: grown to the largest capacity it has served,
// allocated at admission, never during decode.
type slotMem struct {
	k, v   [][]float32
	logits []float32
	// With a rerotate policy: the pre-RoPE keys (layout of k), each slot's rank among the held positions
	// (the mask of a re-indexed cache), the position each slot's key in k is rotated for, and the
	// slots ordered by position (scratch).
	rawK [][]float32
	// With a kvquant policy: the quantized cache (k and v are then unused).
	quant *model.QuantKV
	rank  []int32
	rotAt []int32
	order []int32
	seg   [1]int
	seg2  [1]int
	// With a per-layer or per-head policy (headed): each layer and KV head's cache and bookkeeping.
	hs headState
}

// sequence is one admitted job.
type sequence struct {
	req    *request
	mem    *slotMem
	kv     model.Seq // view of mem with Cap = plan.Capacity and Live = slots.Pos
	slots  *compress.Slots
	task   *prefillTask
	smp    *sample.Sampler
	res    Result
	next   int // token to feed
	pos    int // its position
	t0, t1 time.Time
	fin    bool
}

type scheduler struct {
	m        *model.Model
	opts     Options
	pool     *model.Pool
	ws       *model.Workspace
	waiting  []*request
	active   []*sequence
	free     []*slotMem
	tasks    []*prefillTask // in flight, admission order
	lru      *prefixLRU
	segs     []model.Segment
	owners   []*prefillTask     // task of each prefill segment in segs (nil for decode segments)
	decoders []*sequence        // sequence of each decode segment in segs (nil for prefill segments)
	scratch  []compress.Scratch // per worker
	finished []*sequence
	peak     int64 // the most memory held() right after an admission (for tests)
}

func newScheduler(m *model.Model, opts Options) *scheduler {
	pool := opts.Pool
	if pool == nil {
		pool = model.NewPool(opts.Threads)
	}
	s := &scheduler{m: m, opts: opts, pool: pool, ws: model.NewWorkspace(pool), lru: newPrefixLRU(opts.PrefixCacheBytes),
		scratch: make([]compress.Scratch, pool.Workers())}
	for i := range s.scratch {
		s.scratch[i].Scores = model.Scores // SnapKV's observation logits on the engine's FMA kernels
	}
	for i := 0; i < opts.Slots; i++ {
		s.free = append(s.free, &slotMem{})
	}
	return s
}

func (s *scheduler) idle() bool { return len(s.waiting) == 0 && len(s.active) == 0 }

func (s *scheduler) enqueue(r *request) { s.waiting = append(s.waiting, r) }

func (s *scheduler) failAll(err error) {
	for _, r := range s.waiting {
		r.out <- reply{err: err}
	}
	for _, q := range s.active {
		q.req.out <- reply{err: err}
	}
	s.waiting, s.active = nil, nil
}

func promptKey(ids []int) string {
	b := make([]byte, 4*len(ids))
	for i, t := range ids {
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(t), byte(t>>8), byte(t>>16), byte(t>>24)
	}
	return string(b)
}

// qNeed is the number of last prompt queries a plan's scores need (compress.Plan.QueryRows).
func qNeed(p compress.Plan) int { return p.QueryRows() }

// admit moves waiting requests into free batch slots, in order, while the memory budget allows: a request whose
// cache and prefill do not fit beside the sequences in flight waits for them to finish.
func (s *scheduler) admit() {
	for len(s.waiting) > 0 && len(s.free) > 0 {
		r := s.waiting[0]
		if r.ctx.Err() != nil {
			s.waiting = s.waiting[1:]
			r.out <- reply{err: r.ctx.Err()}
			continue
		}
		key := promptKey(r.job.Prompt)
		need := qNeed(r.plan)
		// The prefill keeps the pre-RoPE keys for rerotate (rotated again during decode) and knorm (ranked by norm).
		raw := r.plan.Policy.Rerotate || r.plan.Policy.Method == compress.MethodKNorm
		serves := func(t *prefillTask) bool { return t != nil && t.serves(need, raw) }
		mem := s.free[len(s.free)-1]
		if !s.reserve(r, mem, s.inFlight(key, need, raw) == nil && !serves(s.lru.peek(key, need))) {
			return
		}
		s.waiting = s.waiting[1:]
		s.free = s.free[:len(s.free)-1]
		q := &sequence{req: r, mem: mem, t0: time.Now(), smp: sample.New(r.job.Sampling)}
		q.res.Plan = r.plan
		c := &s.m.Cfg
		q.res.KVBytes = r.plan.Policy.KVBytes(r.plan.Capacity, c.Layers, c.KVHeads, c.HeadDim, ElemBytes)
		s.bindMem(q)
		task := s.inFlight(key, need, raw)
		if task == nil {
			if t := s.lru.get(key); t != nil && serves(t) {
				task = t
			}
		}
		if task != nil {
			q.res.PrefixReused = true
		} else {
			task = s.newTask(r.job.Prompt, key, need, raw)
			s.tasks = append(s.tasks, task)
		}
		q.task = task
		s.active = append(s.active, q)
		s.peak = max(s.peak, s.held())
		if task.done {
			s.finishPrefill(q)
		} else {
			task.waiters = append(task.waiters, q)
		}
	}
}

// serves reports whether t can be the prefill of a sequence that needs need observation queries and, with
// raw (rerotate, knorm), the pre-RoPE keys.
func (t *prefillTask) serves(need int, raw bool) bool {
	return t.qRows >= need && (!raw || t.seq.RawK != nil)
}

// inFlight returns the prefill in flight of the prompt with key that serves (need, raw), or nil.
func (s *scheduler) inFlight(key string, need int, raw bool) *prefillTask {
	for _, t := range s.tasks {
		if t.key == key && t.serves(need, raw) {
			return t
		}
	}
	return nil
}

// bytes is the memory a batch slot holds.
func (m *slotMem) bytes() int64 {
	n := int64(cap(m.logits)) * 4
	for l := range m.k {
		n += int64(cap(m.k[l])+cap(m.v[l])) * 4
	}
	for l := range m.rawK {
		n += int64(cap(m.rawK[l])) * 4
	}
	if m.quant != nil {
		n += m.quant.Bytes()
	}
	return n + m.hs.bytes()
}

// drop releases a free slot's memory (it is allocated again at its next admission).
func (m *slotMem) drop() {
	m.k, m.v, m.logits, m.rawK, m.quant, m.hs = nil, nil, nil, nil, nil, headState{}
}

// held is the memory of the batch slots and of the prefills in flight.
func (s *scheduler) held() int64 {
	var n int64
	for _, m := range s.free {
		n += m.bytes()
	}
	for _, q := range s.active {
		if q.mem != nil {
			n += q.mem.bytes()
		}
	}
	for _, t := range s.tasks {
		n += t.bytes()
	}
	return n
}

// reserve reports whether r can be admitted into slot mem now (newTask: its prompt needs a prefill of its own)
// within the memory budget, releasing idle slots' memory when that makes it fit. With nothing in flight to wait
// for it always admits: Check has refused every job that does not fit the budget alone.
func (s *scheduler) reserve(r *request, mem *slotMem, newTask bool) bool {
	sh := &modelShape{Layers: s.m.Cfg.Layers, KVHeads: s.m.Cfg.KVHeads, HeadDim: s.m.Cfg.HeadDim, Heads: s.m.Cfg.Heads, Vocab: s.m.Cfg.Vocab}
	want := slotBytes(sh, r.plan.Policy, r.plan.Capacity)
	if r.plan.Policy.Rerotate { // the pre-RoPE key copy
		want += int64(sh.Layers) * int64(r.plan.Capacity) * int64(sh.KVHeads) * int64(sh.HeadDim) * 4
	}
	want += weightBytes(sh, r.plan)
	extra := max(0, want-mem.bytes())
	if newTask {
		L := len(r.job.Prompt)
		extra += taskBytes(sh, L, min(L, max(s.opts.QueryKeep, qNeed(r.plan))))
		if r.plan.Policy.Rerotate {
			extra += int64(sh.Layers) * int64(L) * int64(sh.KVHeads) * int64(sh.HeadDim) * 4
		}
	}
	if extra == 0 || s.held()+extra <= s.opts.MemoryBytes {
		return true
	}
	for _, f := range s.free {
		if f != mem {
			f.drop()
		}
	}
	if s.held()+extra <= s.opts.MemoryBytes {
		return true
	}
	return len(s.active) == 0 && len(s.tasks) == 0
}

func (s *scheduler) newTask(ids []int, key string, need int, raw bool) *prefillTask {
	c := &s.m.Cfg
	L := len(ids)
	qRows := min(L, max(s.opts.QueryKeep, need))
	t := &prefillTask{key: key, ids: slices.Clone(ids), seq: s.m.NewSeq(L), qRows: qRows, logits: make([]float32, c.Vocab)}
	t.seq.QFrom = L - qRows
	t.seq.Q = make([][]float32, c.Layers)
	for l := range t.seq.Q {
		t.seq.Q[l] = make([]float32, qRows*c.Heads*c.HeadDim)
	}
	if raw {
		t.seq.RawK = make([][]float32, c.Layers)
		for l := range t.seq.RawK {
			t.seq.RawK[l] = make([]float32, len(t.seq.K[l]))
		}
	}
	return t
}

// bindMem points the sequence's cache view at its slot memory, growing it to the plan's capacity. A slot keeps
// one kind of cache at a time: binding a kvquant sequence releases its float32 K/V, binding any other its
// quantized cache, and binding a policy without per-head caches the per-head bookkeeping (so that the slot never
// holds more than reserve counted).
func (s *scheduler) bindMem(q *sequence) {
	if headed(q.req.plan) {
		s.bindHeads(q)
		return
	}
	q.mem.hs = headState{}
	c := &s.m.Cfg
	capacity := q.req.plan.Capacity
	n := capacity * c.KVHeads * c.HeadDim
	mem := q.mem
	if mem.logits == nil {
		mem.logits = make([]float32, c.Vocab)
	}
	if pol := q.req.plan.Policy; pol.Method == compress.MethodKVQuant {
		mem.k, mem.v, mem.rawK = nil, nil, nil
		if mem.quant == nil || mem.quant.F != pol.Quant() || mem.quant.Cap < capacity {
			mem.quant = s.m.NewQuantKV(pol.Quant(), capacity)
		}
		q.kv = model.Seq{Cap: capacity, Quant: mem.quant}
		if q.slots == nil {
			q.slots = compress.NewSlots(q.req.plan)
		}
		q.kv.Live = q.slots.Pos
		return
	}
	mem.quant = nil
	if len(mem.k) == 0 {
		mem.k = make([][]float32, c.Layers)
		mem.v = make([][]float32, c.Layers)
	}
	for l := range mem.k { // per layer: a per-head policy may have grown the layers to different sizes
		if cap(mem.k[l]) < n {
			mem.k[l] = make([]float32, n)
			mem.v[l] = make([]float32, n)
		}
	}
	q.kv = model.Seq{Cap: capacity, K: make([][]float32, c.Layers), V: make([][]float32, c.Layers)}
	for l := range mem.k {
		q.kv.K[l] = mem.k[l][:n]
		q.kv.V[l] = mem.v[l][:n]
	}
	if q.req.plan.Policy.Rerotate {
		if len(mem.rawK) == 0 || cap(mem.rawK[0]) < n {
			mem.rawK = make([][]float32, c.Layers)
			for l := range mem.rawK {
				mem.rawK[l] = make([]float32, n)
			}
		}
		if cap(mem.rank) < capacity {
			mem.rank, mem.rotAt, mem.order = make([]int32, capacity), make([]int32, capacity), make([]int32, capacity)
		}
		mem.rank, mem.rotAt, mem.order = mem.rank[:capacity], mem.rotAt[:capacity], mem.order[:capacity]
		q.kv.RawK = make([][]float32, c.Layers)
		for l := range mem.rawK {
			q.kv.RawK[l] = mem.rawK[l][:n]
		}
	}
	if q.slots == nil {
		q.slots = compress.NewSlots(q.req.plan)
	}
	q.kv.Live = q.slots.Pos
}

// rerank re-indexes a rerotate sequence's cache (docs/policies.md §14): every held slot's rank among the
// held positions becomes its position in the mask (q.kv.Live = rank), and every held key whose rank
// differs from the position it is rotated for is rotated again from its pre-RoPE copy. skip is a slot
// whose key the coming forward step writes (the new token, at the last rank), -1 for none. It returns
// the number of held slots. It allocates nothing.
func (s *scheduler) rerank(q *sequence, skip int) int {
	c := &s.m.Cfg
	mem := q.mem
	pos := q.slots.Pos
	order := mem.order[:0]
	for slot, p := range pos {
		mem.rank[slot] = -1
		if p >= 0 {
			order = append(order, int32(slot))
		}
	}
	slices.SortFunc(order, func(a, b int32) int { return int(pos[a]) - int(pos[b]) })
	d, nKV := c.HeadDim, c.KVHeads
	for r, slot := range order {
		mem.rank[slot] = int32(r)
		if int(slot) == skip {
			mem.rotAt[slot] = int32(r)
			continue
		}
		if mem.rotAt[slot] == int32(r) {
			continue
		}
		mem.rotAt[slot] = int32(r)
		for l := range q.kv.K {
			for h := 0; h < nKV; h++ {
				o := (int(slot)*nKV + h) * d
				s.m.RotateKey(q.kv.K[l][o:o+d], q.kv.RawK[l][o:o+d], r)
			}
		}
	}
	q.kv.Live = mem.rank
	return len(order)
}

// finishPrefill compresses the prompt's full K/V into the sequence's slots and samples the first token.
func (s *scheduler) finishPrefill(q *sequence) {
	c := &s.m.Cfg
	plan := q.req.plan
	t := q.task
	d, nKV, nQ := c.HeadDim, c.KVHeads, c.Heads
	L := plan.PromptLen
	w := qNeed(plan)
	if headed(plan) {
		s.finishHeads(q)
		s.firstToken(q)
		return
	}
	if q.req.job.WantKept {
		q.res.Kept = make([][][]int, c.Layers)
	}
	topKs := make([][][]int, c.Layers)
	if plan.NeedScores {
		// SnapKV scores of all layers in parallel, one Scratch per worker.
		s.pool.For(c.Layers, func(lo, hi, worker int) {
			for l := lo; l < hi; l++ {
				queries := t.seq.Q[l][(t.qRows-w)*nQ*d:]
				keys := t.seq.K[l]
				if plan.Policy.Method == compress.MethodKNorm {
					keys = t.seq.RawK[l] // knorm ranks the keys before RoPE (docs/policies.md §15)
				}
				topKs[l] = compress.SelectTopK(plan, queries, keys[:L*nKV*d], nQ, nKV, d, &s.scratch[worker])
			}
		})
	}
	for l := 0; l < c.Layers; l++ {
		topK := topKs[l]
		if q.req.job.WantKept {
			q.res.Kept[l] = make([][]int, nKV)
		}
		for h := 0; h < nKV; h++ {
			q.slots.Reset(plan)
			var tk []int
			if plan.NeedScores {
				tk = topK[h]
			}
			for _, a := range q.slots.Prefill(tk) {
				if q.kv.Quant != nil { // loaded below, all heads at once
					continue
				}
				src := (a.Pos*nKV + h) * d
				dst := (a.Slot*nKV + h) * d
				copy(q.kv.K[l][dst:dst+d], t.seq.K[l][src:src+d])
				copy(q.kv.V[l][dst:dst+d], t.seq.V[l][src:src+d])
				if plan.Policy.Rerotate {
					copy(q.kv.RawK[l][dst:dst+d], t.seq.RawK[l][src:src+d])
				}
			}
			if q.req.job.WantKept {
				q.res.Kept[l][h] = q.slots.Kept()
			}
		}
	}
	if q.kv.Quant != nil {
		// kvquant keeps every prompt position at its own slot (the full cache): quantize the prefill's K/V.
		s.pool.For(c.Layers, func(lo, hi, _ int) {
			for l := lo; l < hi; l++ {
				q.kv.Quant.Load(l, t.seq.K[l], t.seq.V[l], L)
			}
		})
	}
	// Every (layer, head) has the same mask: sinks, ValidTopK top-K slots and the ring; q.slots.Pos
	// (left from the last head) drives attention for all of them.
	q.kv.Live = q.slots.Pos
	if plan.Policy.Rerotate {
		// The copied keys are rotated for their original positions; rerank rotates the others at the first step.
		// q.slots.Pos is the last KV head's: a sink or ring slot holds the same position in every layer and KV head,
		// a top-K slot does not, so its keys are marked for rotation (-1) whatever that head holds there (rotAt
		// is one entry per slot for all layers and heads: taking the last head's position skipped the rotation of
		// every head's key in a top-K slot where that head's position happened to equal the slot's rank).
		for slot, p := range q.slots.Pos {
			q.mem.rotAt[slot] = p
			if slot >= plan.Sinks+plan.Ring && slot < plan.Sinks+plan.Ring+plan.TopK {
				q.mem.rotAt[slot] = -1
			}
		}
	}
	s.firstToken(q)
}

// firstToken ends a sequence's prefill: the prompt logits when asked for, the timings, and the first token.
func (s *scheduler) firstToken(q *sequence) {
	t := q.task
	if q.req.job.WantLogits {
		q.res.PromptLogits = slices.Clone(t.logits)
	}
	q.t1 = time.Now()
	q.res.Prefill = q.t1.Sub(q.t0)
	q.res.Tokens = make([]int, 0, q.req.job.MaxNew)
	q.pos = q.req.plan.PromptLen
	q.task = nil
	if q.req.job.MaxNew == 0 {
		q.finish("length")
		return
	}
	s.emit(q, t.logits, q.smp.Sample(t.logits))
}

// emit records a token sampled from logits and decides whether the sequence ends.
func (s *scheduler) emit(q *sequence, logits []float32, tok int) {
	j := &q.req.job
	if j.WantLogits {
		q.res.LastLogits = append(q.res.LastLogits[:0], logits...)
	}
	if slices.Contains(j.EOS, tok) {
		q.finish("stop")
		return
	}
	q.res.Tokens = append(q.res.Tokens, tok)
	if j.OnToken != nil && j.OnToken(tok) {
		q.finish("stop")
		return
	}
	if len(q.res.Tokens) >= j.MaxNew {
		q.finish("length")
		return
	}
	q.next = tok
}

func (q *sequence) finish(reason string) {
	q.res.Finish = reason
	q.fin = true
}

// step runs one forward pass over every decoding sequence and up to PrefillChunk prompt tokens.
func (s *scheduler) step() {
	s.admit()
	s.reap()
	s.segs = s.segs[:0]
	s.owners = s.owners[:0]
	s.decoders = s.decoders[:0]
	for _, q := range s.active {
		if q.task != nil || q.fin {
			continue
		}
		if q.kv.Heads != nil {
			s.decodeHeads(q, q.pos)
			q.mem.seg[0] = q.next
			s.segs = append(s.segs, model.Segment{Seq: &q.kv, Tokens: q.mem.seg[:], Pos: q.pos, Logits: q.mem.logits})
			s.owners = append(s.owners, nil)
			s.decoders = append(s.decoders, q)
			continue
		}
		slot := q.slots.Decode(q.pos)
		q.mem.seg[0] = q.next
		pos := q.pos
		if q.req.plan.Policy.Rerotate {
			pos = s.rerank(q, slot) - 1 // the new token holds the last rank
		}
		s.segs = append(s.segs, model.Segment{Seq: &q.kv, Tokens: q.mem.seg[:], Pos: pos, Slots: slotArg(q, slot), Logits: q.mem.logits})
		s.owners = append(s.owners, nil)
		s.decoders = append(s.decoders, q)
	}
	budget := s.opts.PrefillChunk
	for _, t := range s.tasks {
		if budget == 0 {
			break
		}
		n := min(budget, len(t.ids)-t.next)
		seg := model.Segment{Seq: t.seq, Tokens: t.ids[t.next : t.next+n], Pos: t.next}
		if t.next+n == len(t.ids) {
			seg.Logits = t.logits
		}
		s.segs = append(s.segs, seg)
		s.owners = append(s.owners, t)
		s.decoders = append(s.decoders, nil)
		budget -= n
	}
	if len(s.segs) == 0 {
		return
	}
	if err := s.m.Forward(s.ws, s.segs); err != nil {
		// A bug, not bad input (jobs are checked before admission): fail every job in the step.
		for _, q := range s.active {
			q.req.out <- reply{err: fmt.Errorf("engine: forward: %w", err)}
			s.release(q)
		}
		clear(s.active)
		clear(s.tasks)
		s.active, s.tasks = s.active[:0], s.tasks[:0]
		return
	}
	for i := range s.segs {
		if t := s.owners[i]; t != nil {
			t.next += len(s.segs[i].Tokens)
		}
	}
	for i := range s.segs {
		q := s.decoders[i]
		if q == nil {
			continue
		}
		if q.kv.Heads != nil {
			s.observeHeads(q)
		}
		q.pos++
		s.emit(q, q.mem.logits, q.smp.Sample(q.mem.logits))
	}
	kept := s.tasks[:0]
	for _, t := range s.tasks {
		if t.next < len(t.ids) {
			kept = append(kept, t)
			continue
		}
		t.done = true
		s.lru.put(t)
		for _, q := range t.waiters {
			if q.req != nil && !q.fin {
				s.finishPrefill(q)
			}
		}
		t.waiters = nil
	}
	clear(s.tasks[len(kept):])
	s.tasks = kept
	s.reap()
}

// slotArg returns the one-element slot slice of a decode segment without allocating.
func slotArg(q *sequence, slot int) []int {
	q.mem.seg2[0] = slot
	return q.mem.seg2[:]
}

// reap returns finished and cancelled sequences' results and frees their slots.
func (s *scheduler) reap() {
	kept := s.active[:0]
	for _, q := range s.active {
		switch {
		case q.req == nil:
		case q.fin:
			q.res.Decode = time.Since(q.t1)
			q.req.out <- reply{res: q.res}
			s.release(q)
		case q.req.ctx.Err() != nil:
			q.req.out <- reply{err: q.req.ctx.Err()}
			s.release(q)
		default:
			kept = append(kept, q)
			continue
		}
	}
	clear(s.active[len(kept):])
	s.active = kept
	// Drop in-flight prefills nobody waits for any more.
	tk := s.tasks[:0]
	for _, t := range s.tasks {
		alive := false
		for _, q := range t.waiters {
			alive = alive || (q.req != nil && !q.fin && q.req.ctx.Err() == nil)
		}
		if alive {
			tk = append(tk, t)
		}
	}
	clear(s.tasks[len(tk):])
	s.tasks = tk
}

func (s *scheduler) release(q *sequence) {
	s.free = append(s.free, q.mem)
	q.mem, q.req, q.task = nil, nil, nil
	q.fin = true
}

// hasPrefill reports whether any admitted or waiting sequence has not finished its prefill.
func (s *scheduler) hasPrefill() bool {
	if len(s.waiting) > 0 {
		return true
	}
	for _, q := range s.active {
		if q.task != nil {
			return true
		}
	}
	return false
}
