package model

import (
	"fmt"
	"math"
	"sync/atomic"
)

// Seq is the KV cache of one sequence: for every layer, Cap slots of KVHeads x HeadDim keys (post-RoPE)
// and values. With Live nil the cache is dense and causal (slot = absolute position, a query at p sees
// slots 0..p); otherwise Live[s] is the absolute position held by slot s (-1 empty) and a query at p sees
// every slot with 0 <= Live[s] <= p.
type Seq struct {
	Cap  int
	K, V [][]float32
	Live []int32
	// Q, when non-nil, captures the post-RoPE queries ([Heads][HeadDim] per position) of the positions
	// QFrom, QFrom+1, ... for each layer (len(Q[l]) / (Heads*HeadDim) positions).
	Q     [][]float32
	QFrom int
	// RawK, when non-nil, receives every key written to the cache before RoPE too (same layout as K), so
	// that a cache that re-indexes positions (compress.Policy.Rerotate) can rotate it again for a new position.
	RawK [][]float32
	// Quant, when non-nil, holds the cache quantized instead of K and V (compress.MethodKVQuant): segments on
	// it take one token a step, at slot = position.
	Quant *QuantKV
	// Heads, when non-nil (len Layers*KVHeads, layer l's KV head h at l*KVHeads+h), gives every layer and KV head
	// a cache of its own, for the policies whose capacities or kept positions differ between layers and heads
	// (compress: pyramidkv, adakv, h2o, tova): see HeadCache. Live is then unused, and Cap must be at least every
	// head's Cap (it sizes the attention scratch). Only single-token segments without Slots may use such a cache.
	Heads []HeadCache
}

// HeadCache is the cache of one layer and KV head of a Seq with per-head caches.
type HeadCache struct {
	// Off and Cap place the head's Cap slots in its layer's K and V: slot s's key is K[l][(Off+s)*HeadDim:][:HeadDim]
	// (the head's keys one after the other, stride HeadDim; likewise its values).
	Off, Cap int
	// Live[s] is the absolute position held by slot s, -1 when empty: a query at p sees the slots with
	// 0 <= Live[s] <= p, as with Seq.Live.
	Live []int32
	// Slot is the slot the segment's token writes its key and value to.
	Slot int
	// Weights, when non-nil (at least G*Cap floats for the G query heads of the KV head), receives the post-softmax
	// attention weights of the segment's query: the weight of slot s for query head j of the group at
	// Weights[j*Cap+s], for the slots up to the last visible one (0 for the invisible ones among them).
	Weights []float32
}

// dense reports whether s is a dense causal cache (slot = position), attended in tiles.
func (s *Seq) dense() bool { return s.Live == nil && s.Heads == nil && s.Quant == nil }

// NewSeq allocates a cache of capacity slots for every layer.
func (m *Model) NewSeq(capacity int) *Seq {
	n := capacity * m.Cfg.KVHeads * m.Cfg.HeadDim
	s := &Seq{Cap: capacity, K: make([][]float32, m.Cfg.Layers), V: make([][]float32, m.Cfg.Layers)}
	for l := range s.K {
		s.K[l] = make([]float32, n)
		s.V[l] = make([]float32, n)
	}
	return s
}

// Segment is a run of consecutive tokens of one sequence processed in a forward step.
type Segment struct {
	Seq    *Seq
	Tokens []int
	Pos    int   // absolute position of Tokens[0]
	Slots  []int // cache slot of each token; nil means slot = position
	// Logits, when non-nil (length Vocab), receives the logits of the segment's last token.
	Logits []float32
}

// Workspace holds the scratch buffers of Forward. It grows when needed and is reused, so that a
// steady-state decode step allocates nothing. A Workspace is not safe for concurrent use.
type Workspace struct {
	pool                          *Pool
	x, xn, qkv, att, gu, act, tmp []float32
	cos, sin                      []float32
	rowSeg, rowPos, rowSlot       []int
	rowTok                        []int
	logitRows                     []float32
	lastRows                      []int
	sbuf                          [][]float32
	pbuf                          [][]float32 // per worker: weight panels widened to float32 (matmulRows)
	qbuf                          [][]float32 // per worker: a dequantized tile and a key group's parameters (rowQuant)
	mm                            matmulJob
	units                         []attnUnit
	// The forward step being run (set by Forward for its plan's jobs, cleared after).
	m    *Model
	segs []Segment
	R    int
	plan []phase
	jobs []stepJob
	// ready[h] is the number of layers whose q|k|v head h (rows h*HeadDim.. of the fused matrix) is
	// computed, rotated and in the cache, for every row of the step.
	ready []atomic.Int64
	// With overlapO (single-row steps, oseg.go), o_proj runs by KV-head segment as attention finishes:
	// attnDone[kvh] counts the attention units of KV head kvh done in this step (kvUnits of them a
	// layer), oacc holds each worker's lane sums between segments.
	overlapO bool
	// small is set for a step of fewer than panelRows rows on a pool of at most smallPool workers: its
	// projections run in one chunk per worker, without the o_proj overlap.
	small    bool
	attnDone []atomic.Int64
	kvUnits  []int64
	oacc     [][]float32
	// With split (split.go), attention runs in score, softmax and value phases over parts of the rows.
	split                  bool
	srows                  []splitRow
	sparts, hparts, vparts []splitPart
	sscore, smax, sinv     []float32
}

// NewWorkspace returns a workspace that runs kernels on pool.
func NewWorkspace(pool *Pool) *Workspace {
	n := pool.Workers()
	return &Workspace{pool: pool, sbuf: make([][]float32, n), pbuf: make([][]float32, n)}
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

func growInt(b []int, n int) []int {
	if cap(b) < n {
		return make([]int, n)
	}
	return b[:n]
}

func (w *Workspace) matmul(y []float32, ldy int, x []float32, rows int, mat *Mat, bias []float32) {
	if rows >= panelRows || rows >= q8PanelRows && mat.Q != nil {
		w.growPanels(mat.Cols)
	}
	w.mm = matmulJob{w: mat, bias: bias, x: x[:rows*mat.Cols], y: y, rows: rows, ldy: ldy, panels: w.pbuf}
	w.pool.parallel(&w.mm, mat.Rows, 8)
	w.mm = matmulJob{}
}

// growPanels makes every worker's panel large enough for matrices of cols columns.
func (w *Workspace) growPanels(cols int) {
	for i := range w.pbuf {
		w.pbuf[i] = grow(w.pbuf[i], max(len(w.pbuf[i]), panelLen(cols)))
	}
}

// Forward runs the segments through the model: K/V of every token is written to its sequence's cache
// slot, queries attend causally over their own sequence's cache, and the logits of each segment's last
// token go to Segment.Logits. Weights are read once per call for all rows of all segments.
//
// The whole step is one plan on the pool (one dispatch): per layer, the q|k|v projections by head (each
// head rotated and written to the cache by the worker that computed it), attention (each unit starts as
// soon as its heads are done), o_proj with the residual add, gate|up with SiLU * up, down_proj with the
// residual add; the RMSNorms are folded into the step before them when there is one row, separate
// steps over the rows otherwise.
func (m *Model) Forward(ws *Workspace, segs []Segment) error {
	c := &m.Cfg
	H, d, nQ, nKV := c.Hidden, c.HeadDim, c.Heads, c.KVHeads
	qkvDim := (nQ + 2*nKV) * d
	R := 0
	for i := range segs {
		s := &segs[i]
		if len(s.Tokens) == 0 {
			return fmt.Errorf("model: segment %d has no tokens", i)
		}
		if s.Slots != nil && len(s.Slots) != len(s.Tokens) {
			return fmt.Errorf("model: segment %d has %d slots for %d tokens", i, len(s.Slots), len(s.Tokens))
		}
		if s.Logits != nil && len(s.Logits) != c.Vocab {
			return fmt.Errorf("model: segment %d logits buffer has length %d, want %d", i, len(s.Logits), c.Vocab)
		}
		R += len(s.Tokens)
	}
	if R == 0 {
		return nil
	}
	ws.x = grow(ws.x, R*H)
	ws.xn = grow(ws.xn, R*H)
	ws.tmp = grow(ws.tmp, R*H)
	ws.qkv = grow(ws.qkv, R*qkvDim)
	ws.att = grow(ws.att, R*nQ*d)
	ws.gu = grow(ws.gu, R*2*c.Intermediate)
	ws.act = grow(ws.act, R*c.Intermediate)
	ws.cos = grow(ws.cos, R*d/2)
	ws.sin = grow(ws.sin, R*d/2)
	ws.rowSeg = growInt(ws.rowSeg, R)
	ws.rowPos = growInt(ws.rowPos, R)
	ws.rowSlot = growInt(ws.rowSlot, R)
	ws.rowTok = growInt(ws.rowTok, R)
	ws.lastRows = ws.lastRows[:0]
	r := 0
	for i := range segs {
		s := &segs[i]
		for t, tok := range s.Tokens {
			if tok < 0 || tok >= c.Vocab {
				return fmt.Errorf("model: token id %d outside the vocabulary of %d", tok, c.Vocab)
			}
			p := s.Pos + t
			slot := p
			if s.Slots != nil {
				slot = s.Slots[t]
			}
			if s.Seq.Heads != nil {
				if err := checkHeads(m, s); err != nil {
					return fmt.Errorf("model: segment %d: %w", i, err)
				}
				slot = -1
			} else if slot < 0 || slot >= s.Seq.Cap {
				return fmt.Errorf("model: slot %d for position %d outside the cache capacity %d", slot, p, s.Seq.Cap)
			}
			if s.Seq.Quant != nil && (len(s.Tokens) != 1 || slot != p) {
				return fmt.Errorf("model: segment %d: a quantized cache takes one token a step at slot = position (got %d tokens, slot %d for position %d)",
					i, len(s.Tokens), slot, p)
			}
			ws.rowSeg[r], ws.rowPos[r], ws.rowSlot[r], ws.rowTok[r] = i, p, slot, tok
			r++
		}
		if s.Logits != nil {
			ws.lastRows = append(ws.lastRows, r-1)
		}
	}
	nl := len(ws.lastRows)
	if nl > 1 {
		ws.logitRows = grow(ws.logitRows, nl*c.Vocab)
	}
	if R >= panelRows || R >= q8PanelRows && m.LMHead.Q != nil {
		ws.growPanels(max(H, c.Intermediate, nQ*d))
	}
	ws.m, ws.segs, ws.R = m, segs, R
	ws.buildUnits(m, segs, R)
	ws.planSplit(m, segs, R)
	if len(ws.ready) < nQ+2*nKV {
		ws.ready = make([]atomic.Int64, nQ+2*nKV)
	}
	for h := range ws.ready {
		ws.ready[h].Store(0)
	}
	// o_proj overlaps attention for a single row when its column segments (one KV head's query heads) are
	// whole 8-lane steps and, on the assembly path, its chunks whole 8-row groups; bf16 weights only.
	g := nQ / nKV
	ws.small = ws.pool.Workers() <= smallPool && R < panelRows
	ws.overlapO = R == 1 && !ws.small && !ws.split && len(m.Layers) > 0 && (g*d)%8 == 0 && (!simdOn || H%8 == 0) && m.Layers[0].O.Q == nil
	if ws.overlapO {
		if len(ws.attnDone) < nKV {
			ws.attnDone = make([]atomic.Int64, nKV)
			ws.kvUnits = make([]int64, nKV)
		}
		for h := range ws.attnDone {
			ws.attnDone[h].Store(0)
			ws.kvUnits[h] = 0
		}
		for _, u := range ws.units {
			ws.kvUnits[u.kvh]++
		}
		if len(ws.oacc) != len(ws.pbuf) {
			ws.oacc = make([][]float32, len(ws.pbuf))
		}
		for i := range ws.oacc {
			ws.oacc[i] = grow(ws.oacc[i], 8*H)
		}
	}
	ws.buildPlan(R, nl)
	ws.pool.run(ws.plan)
	for i := range ws.plan {
		ws.plan[i] = phase{}
	}
	ws.m, ws.segs = nil, nil
	return nil
}

// checkHeads validates a segment over a cache with per-head caches (Seq.Heads).
func checkHeads(m *Model, s *Segment) error {
	c := &m.Cfg
	if len(s.Tokens) != 1 || s.Slots != nil {
		return fmt.Errorf("a cache with per-head caches takes one token and no slots (got %d tokens)", len(s.Tokens))
	}
	if len(s.Seq.Heads) != c.Layers*c.KVHeads {
		return fmt.Errorf("%d per-head caches for %d layers x %d KV heads", len(s.Seq.Heads), c.Layers, c.KVHeads)
	}
	g := c.Heads / c.KVHeads
	for i := range s.Seq.Heads {
		hc := &s.Seq.Heads[i]
		l := i / c.KVHeads
		switch {
		case hc.Slot < 0 || hc.Slot >= hc.Cap:
			return fmt.Errorf("layer %d KV head %d: slot %d outside its capacity %d", l, i%c.KVHeads, hc.Slot, hc.Cap)
		case hc.Cap > s.Seq.Cap || len(hc.Live) < hc.Cap || hc.Off < 0 || (hc.Off+hc.Cap)*c.HeadDim > min(len(s.Seq.K[l]), len(s.Seq.V[l])):
			return fmt.Errorf("layer %d KV head %d: slots [%d, %d) (mask of %d) outside its layer's cache", l, i%c.KVHeads, hc.Off, hc.Off+hc.Cap, len(hc.Live))
		case hc.Weights != nil && len(hc.Weights) < g*hc.Cap:
			return fmt.Errorf("layer %d KV head %d: %d weights for %d query heads x %d slots", l, i%c.KVHeads, len(hc.Weights), g, hc.Cap)
		}
	}
	return nil
}

// smallPool is the largest pool that runs the projections of a decode step (fewer than panelRows rows) in one
// chunk per worker and without the o_proj overlap. Four chunks per worker let the others take over the share
// of a worker the machine slows down, and the overlap lets o_proj start as each KV head's attention ends;
// on 2 workers (the 2-vCPU dev box) both cost more than they save: a decode step of one sequence took
// 6.2 / 7.4 ms at 16 / 512 context with one chunk per worker against 7.2 / 8.1 ms with both (see BENCH.md).
var smallPool = 4

// Kinds of step of a forward plan.
const (
	stEmbed       = iota // embedding, RoPE angles and the first layer's attention norm, by row
	stAttnNorm           // attention RMSNorm of layer l, by row
	stMLPNorm            // MLP RMSNorm of layer l, by row
	stFinalNorm          // final RMSNorm of the rows that give logits
	stQKV                // q|k|v projections, RoPE and cache writes, by head
	stAttn               // attention, by unit
	stAttnScore          // split attention: scores, by part
	stAttnSoftmax        // split attention: softmax, by query head
	stAttnValue          // split attention: value sums, by part
	stO                  // o_proj and the residual add, by output row
	stGateUp             // gate|up projections and SiLU * up, by intermediate index
	stDown               // down_proj and the residual add, by output row
	stLogits             // lm_head, by vocabulary row
)

// stepJob is one step of a forward plan (kind) for layer l; it runs on the workspace's current step.
type stepJob struct {
	ws   *Workspace
	kind int
	l    int
}

// buildPlan lays out the plan of the current step: R rows, nl of which give logits.
func (ws *Workspace) buildPlan(R, nl int) {
	m := ws.m
	c := &m.Cfg
	L := len(m.Layers)
	need := 2 + 9*L
	if cap(ws.jobs) < need {
		ws.jobs = make([]stepJob, need)
		ws.plan = make([]phase, 0, need)
	}
	ws.jobs = ws.jobs[:need]
	ws.plan = ws.plan[:0]
	nj := 0
	job := func(kind, l int) *stepJob {
		j := &ws.jobs[nj]
		nj++
		*j = stepJob{ws: ws, kind: kind, l: l}
		return j
	}
	add := func(f phase) { ws.plan = append(ws.plan, f) }
	// norm folds a norm over rows into the last phase when there is one row, or adds it as a phase.
	norm := func(kind, l, rows int) {
		if rows == 1 {
			last := &ws.plan[len(ws.plan)-1]
			last.final, last.finalN = job(kind, l), 1
			return
		}
		add(phase{j: job(kind, l), n: rows, align: 1, barrier: true})
	}
	add(phase{j: job(stEmbed, 0), n: R, align: 1, barrier: true})
	nh := c.Heads + 2*c.KVHeads
	qc, mc := nh, 0 // chunks of the q|k|v phase and of the other projections (0: four per worker)
	if ws.small {
		qc, mc = ws.pool.Workers(), ws.pool.Workers()
	}
	for l := 0; l < L; l++ {
		add(phase{j: job(stQKV, l), n: nh, align: 1, chunks: qc, barrier: true})
		if ws.split {
			add(phase{j: job(stAttnScore, l), n: len(ws.sparts), align: 1, chunks: len(ws.sparts)})
			add(phase{j: job(stAttnSoftmax, l), n: len(ws.hparts), align: 1, chunks: len(ws.hparts), barrier: true})
			add(phase{j: job(stAttnValue, l), n: len(ws.vparts), align: 1, chunks: len(ws.vparts), barrier: true})
		} else {
			add(phase{j: job(stAttn, l), n: len(ws.units), align: 1})
		}
		// With overlapO the o_proj chunks wait for attention themselves (by KV head) instead of at a barrier.
		add(phase{j: job(stO, l), n: c.Hidden, align: 8, chunks: mc, barrier: !ws.overlapO})
		norm(stMLPNorm, l, R)
		add(phase{j: job(stGateUp, l), n: c.Intermediate, align: 8, chunks: mc, barrier: true})
		add(phase{j: job(stDown, l), n: c.Hidden, align: 8, chunks: mc, barrier: true})
		if l+1 < L {
			norm(stAttnNorm, l+1, R)
		} else if nl > 0 {
			norm(stFinalNorm, 0, nl)
		}
	}
	if nl > 0 {
		add(phase{j: job(stLogits, 0), n: c.Vocab, align: 8, chunks: mc, barrier: true})
	}
}

func (j *stepJob) run(lo, hi, worker int) {
	ws := j.ws
	m := ws.m
	c := &m.Cfg
	H, I, R := c.Hidden, c.Intermediate, ws.R
	eps := float32(c.RMSNormEps)
	switch j.kind {
	case stEmbed:
		d := c.HeadDim
		for r := lo; r < hi; r++ {
			e := m.Embed.W[ws.rowTok[r]*H : (ws.rowTok[r]+1)*H]
			x := ws.x[r*H : (r+1)*H]
			for k, h := range e {
				x[k] = bf16(h)
			}
			p := ws.rowPos[r]
			for k, f := range m.invFreq {
				sn, cs := math.Sincos(float64(p) * f)
				ws.cos[r*d/2+k] = float32(cs)
				ws.sin[r*d/2+k] = float32(sn)
			}
		}
		rmsnorm(ws.xn[lo*H:], ws.x[lo*H:], m.Layers[0].AttnNorm, hi-lo, H, eps)
	case stAttnNorm:
		rmsnorm(ws.xn[lo*H:], ws.x[lo*H:], m.Layers[j.l].AttnNorm, hi-lo, H, eps)
	case stMLPNorm:
		rmsnorm(ws.xn[lo*H:], ws.x[lo*H:], m.Layers[j.l].MLPNorm, hi-lo, H, eps)
	case stFinalNorm:
		for i := lo; i < hi; i++ {
			r := ws.lastRows[i]
			rmsnorm(ws.xn[i*H:], ws.x[r*H:], m.Norm, 1, H, eps)
		}
	case stQKV:
		ws.qkvHeads(j.l, lo, hi, worker)
	case stAttn:
		a := attnJob{m: m, l: j.l, segs: ws.segs, ws: ws, wait: true}
		a.run(lo, hi, worker)
	case stAttnScore:
		ws.splitScores(j.l, lo, hi)
	case stAttnSoftmax:
		ws.splitSoftmax(lo, hi)
	case stAttnValue:
		ws.splitValues(j.l, lo, hi)
	case stO:
		if ws.overlapO {
			ws.oSegments(j.l, lo, hi, worker)
		} else {
			matmulRows(&m.Layers[j.l].O, nil, ws.att, R, ws.tmp, H, lo, hi, ws.pbuf[worker])
		}
		for r := 0; r < R; r++ {
			add(ws.x[r*H+lo:r*H+hi], ws.tmp[r*H+lo:r*H+hi])
		}
	case stGateUp:
		L := &m.Layers[j.l]
		matmulRows(&L.GateUp, nil, ws.xn, R, ws.gu, 2*I, lo, hi, ws.pbuf[worker])
		matmulRows(&L.GateUp, nil, ws.xn, R, ws.gu, 2*I, I+lo, I+hi, ws.pbuf[worker])
		for r := 0; r < R; r++ {
			g := ws.gu[r*2*I:]
			siluMul(g[lo:hi], g[I+lo:I+hi], ws.act[r*I+lo:r*I+hi])
		}
	case stDown:
		matmulRows(&m.Layers[j.l].Down, nil, ws.act, R, ws.tmp, H, lo, hi, ws.pbuf[worker])
		for r := 0; r < R; r++ {
			add(ws.x[r*H+lo:r*H+hi], ws.tmp[r*H+lo:r*H+hi])
		}
	case stLogits:
		V := c.Vocab
		nl := len(ws.lastRows)
		if nl == 1 {
			for i := range ws.segs {
				if ws.segs[i].Logits != nil {
					matmulRows(&m.LMHead, nil, ws.xn, 1, ws.segs[i].Logits, V, lo, hi, ws.pbuf[worker])
				}
			}
			return
		}
		matmulRows(&m.LMHead, nil, ws.xn, nl, ws.logitRows, V, lo, hi, ws.pbuf[worker])
		k := 0
		for i := range ws.segs {
			if ws.segs[i].Logits != nil {
				copy(ws.segs[i].Logits[lo:hi], ws.logitRows[k*V+lo:k*V+hi])
				k++
			}
		}
	}
}

// qkvHead is the q|k|v head computed by unit u of a layer's projections: group by group (the query
// heads of KV head 0, then its key and value heads, then KV head 1's ...), so that attention of the
// first groups can start while the later ones are computed.
func qkvHead(c *Config, u int) int {
	g := c.Heads / c.KVHeads
	grp, i := u/(g+2), u%(g+2)
	switch {
	case i < g:
		return grp*g + i
	case i == g:
		return c.Heads + grp
	default:
		return c.Heads + c.KVHeads + grp
	}
}

// qkvHeads computes the q|k|v heads of units [lo, hi) of layer l for every row: projection (and bias),
// RoPE for query and key heads, key and value heads written to their cache slots, query heads to the
// capture buffer where a sequence has one; then marks each head ready.
func (ws *Workspace) qkvHeads(l, lo, hi, worker int) {
	m := ws.m
	c := &m.Cfg
	d, nQ, nKV := c.HeadDim, c.Heads, c.KVHeads
	qkvDim := (nQ + 2*nKV) * d
	L := &m.Layers[l]
	var rawBuf [maxRawHeadDim]float32
	raw := rawBuf[:]
	if d > maxRawHeadDim {
		raw = make([]float32, d)
	}
	for u := lo; u < hi; u++ {
		h := qkvHead(c, u)
		matmulRows(&L.QKV, L.QKVBias, ws.xn, ws.R, ws.qkv, qkvDim, h*d, (h+1)*d, ws.pbuf[worker])
		for r := 0; r < ws.R; r++ {
			v := ws.qkv[r*qkvDim+h*d : r*qkvDim+(h+1)*d]
			if h >= nQ && h < nQ+nKV && ws.segs[ws.rowSeg[r]].Seq.RawK != nil {
				copy(raw[:d], v)
			}
			if h < nQ+nKV {
				rope(v, ws.cos[r*d/2:(r+1)*d/2], ws.sin[r*d/2:(r+1)*d/2])
			}
			s := ws.segs[ws.rowSeg[r]].Seq
			switch {
			case h < nQ:
				if s.Q != nil {
					if qi := ws.rowPos[r] - s.QFrom; qi >= 0 && (qi+1)*nQ*d <= len(s.Q[l]) {
						copy(s.Q[l][qi*nQ*d+h*d:qi*nQ*d+(h+1)*d], v)
					}
				}
			case s.Quant != nil && h < nQ+nKV:
				s.Quant.putKey(l, ws.rowSlot[r], h-nQ, v)
			case s.Quant != nil:
				s.Quant.putValue(l, ws.rowSlot[r], h-nQ-nKV, v)
			case h < nQ+nKV:
				off := s.kvOffset(l, h-nQ, ws.rowSlot[r], nKV, d)
				copy(s.K[l][off:off+d], v)
				if s.RawK != nil {
					copy(s.RawK[l][off:off+d], raw[:d])
				}
			default:
				off := s.kvOffset(l, h-nQ-nKV, ws.rowSlot[r], nKV, d)
				copy(s.V[l][off:off+d], v)
			}
		}
		ws.ready[h].Store(int64(l + 1))
	}
}

// kvOffset is the offset in K[l] and V[l] of KV head kvh's key and value in slot (of a cache without per-head
// caches; with them, in the head's own Slot).
func (s *Seq) kvOffset(l, kvh, slot, nKV, d int) int {
	if s.Heads != nil {
		hc := &s.Heads[l*nKV+kvh]
		return (hc.Off + hc.Slot) * d
	}
	return (slot*nKV + kvh) * d
}

// awaitHeads waits until the query heads [kvh*g+h0, kvh*g+h1) and the key and value heads of KV head
// kvh of layer l are done.
func (ws *Workspace) awaitHeads(l, kvh, h0, h1 int) {
	c := &ws.m.Cfg
	g := c.Heads / c.KVHeads
	want := int64(l + 1)
	wait := func(h int) {
		var sp spin
		for ws.ready[h].Load() < want {
			sp.relax()
		}
	}
	for h := kvh*g + h0; h < kvh*g+h1; h++ {
		wait(h)
	}
	wait(c.Heads + kvh)
	wait(c.Heads + c.KVHeads + kvh)
}

func add(x, y []float32) {
	y = y[:len(x)]
	for i := range x {
		x[i] += y[i]
	}
}

// rmsnorm writes weight * x / sqrt(mean(x^2) + eps) for each of rows rows (sum of squares in float64).
func rmsnorm(out, x, weight []float32, rows, n int, eps float32) {
	for r := 0; r < rows; r++ {
		xr := x[r*n : (r+1)*n]
		or := out[r*n : (r+1)*n]
		var ss float64
		for _, v := range xr {
			ss += float64(v) * float64(v)
		}
		inv := float32(1 / math.Sqrt(ss/float64(n)+float64(eps)))
		for i, v := range xr {
			or[i] = weight[i] * (v * inv)
		}
	}
}

// maxRawHeadDim bounds the stack buffer of a pre-RoPE key copy (Seq.RawK); wider heads allocate.
const maxRawHeadDim = 256

// RotateKey writes into dst the key head raw (pre-RoPE, HeadDim floats) rotated for position pos, with
// the float32 arithmetic of Forward: the result has the bits a key computed at pos would have.
func (m *Model) RotateKey(dst, raw []float32, pos int) {
	d := m.Cfg.HeadDim
	var cs, sn [maxRawHeadDim / 2]float32
	cos, sin := cs[:], sn[:]
	if d > maxRawHeadDim {
		cos, sin = make([]float32, d/2), make([]float32, d/2)
	}
	for k, f := range m.invFreq {
		s, c := math.Sincos(float64(pos) * f)
		cos[k], sin[k] = float32(c), float32(s)
	}
	copy(dst[:d], raw[:d])
	rope(dst[:d], cos, sin)
}

// rope rotates one head vector in place with the rotate_half convention of Hugging Face:
// (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) with x1 the first half and x2 the second.
func rope(x, cos, sin []float32) {
	h := len(x) / 2
	x1, x2 := x[:h], x[h:2*h]
	cos, sin = cos[:h], sin[:h]
	for i := range x1 {
		a, b := x1[i], x2[i]
		x1[i] = a*cos[i] - b*sin[i]
		x2[i] = b*cos[i] + a*sin[i]
	}
}

// Attention tiles: a dense causal (prefill) segment is attended in tiles of qTile consecutive queries
// of one KV head over key tiles of kTile keys, aligned to absolute positions, with an online softmax
// (running max and sum, the output rescaled when the max grows). Each key tile is read once per query
// tile instead of once per query. A query's result depends only on its position and the cache (the
// key tiles are fixed by absolute position), not on how the prompt is chunked or batched.
const (
	qTile = 16
	kTile = 128
	ldS   = kTile + 8 // row stride of a tile's scores: room for the float past a row that dots4xN may write
)

// attnUnit is a unit of attention work: rows [r0, r0+nr) of one segment and one KV head.
type attnUnit struct {
	r0, nr, kvh int32
	h0, h1      int16 // query heads [h0, h1) of the KV head's group (per-query units only)
}

// attnJob computes attention for its units.
type attnJob struct {
	m    *Model
	l    int
	segs []Segment
	ws   *Workspace
	wait bool // wait for each unit's heads (ws.ready) before attending
}

// flashOff, set by tests, makes dense segments take the per-query path (the reference of the tiles).
var flashOff bool

// buildUnits lays out the attention units of a step (the same for every layer) and sizes the
// workers' score buffers.
func (w *Workspace) buildUnits(m *Model, segs []Segment, R int) {
	maxCap := 0
	for i := range segs {
		maxCap = max(maxCap, segs[i].Seq.Cap)
	}
	g := m.Cfg.Heads / m.Cfg.KVHeads
	for i := range w.sbuf {
		w.sbuf[i] = grow(w.sbuf[i], max(g*maxCap, qTile*g*(ldS+m.Cfg.HeadDim+2)))
	}
	for i := range segs {
		if segs[i].Seq.Quant != nil {
			if len(w.qbuf) != len(w.sbuf) {
				w.qbuf = make([][]float32, len(w.sbuf))
			}
			for k := range w.qbuf {
				w.qbuf[k] = grow(w.qbuf[k], (rowTile+2)*m.Cfg.HeadDim)
			}
			break
		}
	}
	nKV := m.Cfg.KVHeads
	w.units = w.units[:0]
	for r := 0; r < R; {
		seg := &segs[w.rowSeg[r]]
		n := len(seg.Tokens)
		tile := 1
		if seg.Seq.dense() && !flashOff {
			tile = qTile
		}
		// Per-query units of a small decode batch are split by query head when the workers are at least
		// four times the rows' KV heads (one sequence of SmolLM2-135M, 3 KV heads, on 12 or more workers),
		// and a KV head's keys and values are at most 1 MiB. Each head's unit then reads them again, on
		// another worker: that pays only where most workers would otherwise idle. On the Xeon (16 workers),
		// 8 sequences of 1,152 slots stepped in 20-22 ms split into 72 units and 11-12 ms in 24 (the split
		// used to apply below 4x as many KV heads as workers); at 4 workers one sequence took 9.6-9.8 ms
		// split and 8.9 whole, at 16 workers 5.6-6.0 split and 5.9-6.7 whole. Each head's result is the
		// same either way.
		hs := g
		if tile == 1 && 4*R*nKV <= w.pool.Workers() && 2*seg.Seq.Cap*m.Cfg.HeadDim*4 <= 1<<20 {
			hs = 1
		}
		// Rows of a segment are consecutive: r is its first row.
		for t := 0; t < n; t += tile {
			nr := min(tile, n-t)
			for h := 0; h < nKV; h++ {
				for h0 := 0; h0 < g; h0 += hs {
					w.units = append(w.units, attnUnit{r0: int32(r + t), nr: int32(nr), kvh: int32(h), h0: int16(h0), h1: int16(h0 + hs)})
				}
			}
		}
		r += n
	}
}

func (a *attnJob) run(lo, hi, worker int) {
	for _, u := range a.ws.units[lo:hi] {
		if a.wait {
			a.ws.awaitHeads(a.l, int(u.kvh), int(u.h0), int(u.h1))
		}
		seq := a.segs[a.ws.rowSeg[u.r0]].Seq
		switch {
		case seq.Quant != nil:
			for r := u.r0; r < u.r0+u.nr; r++ {
				a.rowQuant(int(r), int(u.kvh), int(u.h0), int(u.h1), worker)
			}
		case seq.dense() && !flashOff:
			a.tiled(int(u.r0), int(u.nr), int(u.kvh), worker)
		default:
			for r := u.r0; r < u.r0+u.nr; r++ {
				a.row(int(r), int(u.kvh), int(u.h0), int(u.h1), worker)
			}
		}
		if a.ws.overlapO {
			a.ws.attnDone[u.kvh].Add(1)
		}
	}
}

// tiled attends rows [r0, r0+nr) (consecutive positions of one dense causal segment) for KV head kvh,
// key tile by key tile with an online softmax. The scores of a key tile come four queries by three keys
// at a time (dots4x3) and the value sums two queries at a time (wsum2); both give the bits of dots and
// wsum, so a query's result does not depend on which queries share its tile.
func (a *attnJob) tiled(r0, nr, kvh, worker int) {
	c := &a.m.Cfg
	d, nQ, nKV := c.HeadDim, c.Heads, c.KVHeads
	g := nQ / nKV
	qkvDim := (nQ + 2*nKV) * d
	scale := float32(1 / math.Sqrt(float64(d)))
	st := nKV * d
	ws := a.ws
	seq := a.segs[ws.rowSeg[r0]].Seq
	K, V := seq.K[a.l][kvh*d:], seq.V[a.l][kvh*d:]
	J := nr * g // query vectors j = i*g + h
	buf := ws.sbuf[worker]
	S := buf[:J*ldS]                      // scores of the current key tile, row j at j*ldS
	Q := buf[J*ldS : J*(ldS+d)]           // the tile's queries, contiguous
	mx := buf[J*(ldS+d) : J*(ldS+d+1)]    // running max per query
	sum := buf[J*(ldS+d+1) : J*(ldS+d+2)] // running sum of weights per query
	out := func(j int) []float32 {
		o := (r0+j/g)*nQ*d + (kvh*g+j%g)*d
		return ws.att[o : o+d]
	}
	for j := 0; j < J; j++ {
		mx[j] = float32(math.Inf(-1))
		sum[j] = 0
		clear(out(j))
		q := (r0+j/g)*qkvDim + (kvh*g+j%g)*d
		copy(Q[j*d:(j+1)*d], ws.qkv[q:q+d])
	}
	pLast := ws.rowPos[r0+nr-1]
	i0 := 0
	for k0 := 0; k0 <= pLast; k0 += kTile {
		for ws.rowPos[r0+i0] < k0 {
			i0++
		}
		nAll := min(kTile, pLast+1-k0)
		Kt, Vt := K[k0*st:], V[k0*st:]
		j := i0 * g
		n3 := nAll - nAll%3
		for ; j+4 <= J; j += 4 {
			dots4xN(Q[j*d:], d, Kt, st, d, n3, scale, S[j*ldS:], ldS)
			if n3 < nAll {
				for jj := j; jj < j+4; jj++ {
					dots(Q[jj*d:(jj+1)*d], Kt[n3*st:], st, nAll-n3, scale, S[jj*ldS+n3:jj*ldS+nAll])
				}
			}
		}
		for ; j < J; j++ {
			dots(Q[j*d:(j+1)*d], Kt, st, nAll, scale, S[j*ldS:j*ldS+nAll])
		}
		// Softmax update of each query over its visible keys of the tile.
		for j := i0 * g; j < J; j++ {
			n := min(kTile, ws.rowPos[r0+j/g]+1-k0)
			row := S[j*ldS : j*ldS+n]
			m := rowMax(row)
			if m > mx[j] {
				if sum[j] != 0 {
					f := expf(mx[j] - m)
					sum[j] *= f
					o := out(j)
					for t := range o {
						o[t] *= f
					}
				}
				mx[j] = m
			}
			sum[j] += expSub(row, mx[j])
		}
		for j := i0 * g; j < J; {
			n := min(kTile, ws.rowPos[r0+j/g]+1-k0)
			// n grows with j: four (or two) queries of the same n are those whose last one has it.
			if j+3 < J && min(kTile, ws.rowPos[r0+(j+3)/g]+1-k0) == n {
				wsum4(out(j), out(j+1), out(j+2), out(j+3), S[j*ldS:], ldS, Vt, st, n)
				j += 4
				continue
			}
			if j+1 < J && min(kTile, ws.rowPos[r0+(j+1)/g]+1-k0) == n {
				wsum2(out(j), out(j+1), S[j*ldS:j*ldS+n], S[(j+1)*ldS:(j+1)*ldS+n], Vt, st, n)
				j += 2
				continue
			}
			wsum(out(j), S[j*ldS:j*ldS+n], Vt, st, n)
			j++
		}
	}
	for j := 0; j < J; j++ {
		inv := 1 / sum[j]
		o := out(j)
		for t := range o {
			o[t] *= inv
		}
	}
}

// row attends one query row r for the query heads [h0, h1) of KV head kvh over its whole visible cache
// (two passes: scores, then softmax and value sums). Both passes walk the slots in tiles of rowTile, every
// query head of the group taking its turn on a tile, so that a tile's keys and values come from memory once
// per unit and from L1 for the other heads; each score is one dots and each value sum runs its slots in
// order, so the tiles leave the bits of whole-row calls.
func (a *attnJob) row(r, kvh, h0, h1, worker int) {
	c := &a.m.Cfg
	d, nQ, nKV := c.HeadDim, c.Heads, c.KVHeads
	g := nQ / nKV
	qkvDim := (nQ + 2*nKV) * d
	scale := float32(1 / math.Sqrt(float64(d)))
	st := nKV * d
	ws := a.ws
	seq := a.segs[ws.rowSeg[r]].Seq
	p := ws.rowPos[r]
	K, V := seq.K[a.l][kvh*d:], seq.V[a.l][kvh*d:]
	live := seq.Live
	var hc *HeadCache
	if seq.Heads != nil {
		hc = &seq.Heads[a.l*nKV+kvh]
		K, V, st, live = seq.K[a.l][hc.Off*d:], seq.V[a.l][hc.Off*d:], d, hc.Live[:hc.Cap]
	}
	n := visibleIn(live, p)
	sc := ws.sbuf[worker][:g*n]
	q := ws.qkv[r*qkvDim+kvh*g*d : r*qkvDim+(kvh+1)*g*d]
	for s0 := 0; s0 < n; s0 += rowTile {
		m := min(rowTile, n-s0)
		for h := h0; h < h1; h++ {
			dots(q[h*d:(h+1)*d], K[s0*st:], st, m, scale, sc[h*n+s0:h*n+s0+m])
		}
	}
	maskInvisible(sc, live, n, p, h0, h1)
	out := ws.att[r*nQ*d+kvh*g*d : r*nQ*d+(kvh+1)*g*d]
	clear(out[h0*d : h1*d])
	// Unnormalised weights (invisible slots have weight 0), normalised once at the end.
	var inv [maxRowHeads]float32
	for b0 := h0; b0 < h1; b0 += maxRowHeads {
		b1 := min(h1, b0+maxRowHeads)
		for h := b0; h < b1; h++ {
			row := sc[h*n : (h+1)*n]
			inv[h-b0] = 1 / expSub(row, rowMax(row))
		}
		for s0 := 0; s0 < n; s0 += rowTile {
			m := min(rowTile, n-s0)
			for h := b0; h < b1; h++ {
				wsum(out[h*d:(h+1)*d], sc[h*n+s0:h*n+s0+m], V[s0*st:], st, m)
			}
		}
		for h := b0; h < b1; h++ {
			o := out[h*d : (h+1)*d]
			for i := range o {
				o[i] *= inv[h-b0]
			}
			if hc != nil && hc.Weights != nil {
				wt := hc.Weights[h*hc.Cap : h*hc.Cap+n]
				for s, e := range sc[h*n : (h+1)*n] {
					wt[s] = e * inv[h-b0]
				}
			}
		}
	}
}

// rowQuant is row over a quantized cache (Seq.Quant): each tile of keys and then of values is dequantized into
// the worker's qbuf before the same dots and wsum calls, so the result has the bits of row over a float32 cache
// holding the dequantized keys and values.
func (a *attnJob) rowQuant(r, kvh, h0, h1, worker int) {
	c := &a.m.Cfg
	d, nQ, nKV := c.HeadDim, c.Heads, c.KVHeads
	g := nQ / nKV
	qkvDim := (nQ + 2*nKV) * d
	scale := float32(1 / math.Sqrt(float64(d)))
	ws := a.ws
	seq := a.segs[ws.rowSeg[r]].Seq
	qc := seq.Quant
	p := ws.rowPos[r]
	n := visibleSlots(seq, p)
	sc := ws.sbuf[worker][:g*n]
	tile, par := ws.qbuf[worker][:rowTile*d], ws.qbuf[worker][rowTile*d:(rowTile+2)*d]
	q := ws.qkv[r*qkvDim+kvh*g*d : r*qkvDim+(kvh+1)*g*d]
	for s0 := 0; s0 < n; s0 += rowTile {
		m := min(rowTile, n-s0)
		qc.keys(tile, par, a.l, kvh, s0, m, p+1)
		for h := h0; h < h1; h++ {
			dots(q[h*d:(h+1)*d], tile, d, m, scale, sc[h*n+s0:h*n+s0+m])
		}
	}
	maskInvisible(sc, seq.Live, n, p, h0, h1)
	out := ws.att[r*nQ*d+kvh*g*d : r*nQ*d+(kvh+1)*g*d]
	clear(out[h0*d : h1*d])
	var inv [maxRowHeads]float32
	for b0 := h0; b0 < h1; b0 += maxRowHeads {
		b1 := min(h1, b0+maxRowHeads)
		for h := b0; h < b1; h++ {
			row := sc[h*n : (h+1)*n]
			inv[h-b0] = 1 / expSub(row, rowMax(row))
		}
		for s0 := 0; s0 < n; s0 += rowTile {
			m := min(rowTile, n-s0)
			qc.values(tile, a.l, kvh, s0, m)
			for h := b0; h < b1; h++ {
				wsum(out[h*d:(h+1)*d], sc[h*n+s0:h*n+s0+m], tile, d, m)
			}
		}
		for h := b0; h < b1; h++ {
			o := out[h*d : (h+1)*d]
			for i := range o {
				o[i] *= inv[h-b0]
			}
		}
	}
}

// rowTile is the slots of one tile of row: 128 slots of a 128-wide head's keys are 64 KiB (a variable so
// that a test can compare tile sizes).
var rowTile = 128

// maxRowHeads is the query heads whose value sums row interleaves tile by tile.
const maxRowHeads = 16

// visible reports whether a slot holding absolute position lp is seen by a query at position p.
func visible(lp int32, p int) bool { return lp >= 0 && int(lp) <= p }

// maskInvisible sets to -Inf the scores of heads [h0, h1) (rows of n slots in sc) at the slots that live (nil: every
// slot is visible) marks as not visible from position p.
func maskInvisible(sc []float32, live []int32, n, p, h0, h1 int) {
	if live == nil {
		return
	}
	for s, lp := range live[:n] {
		if !visible(lp, p) {
			for h := h0; h < h1; h++ {
				sc[h*n+s] = float32(math.Inf(-1))
			}
		}
	}
}
