package model

import (
	"fmt"
	"math"
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
}

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
	logitRows                     []float32
	lastRows                      []int
	mbuf                          [][]float32
	sbuf                          [][]float32
	mm                            matmulJob
	aj                            attnJob
}

// NewWorkspace returns a workspace that runs kernels on pool.
func NewWorkspace(pool *Pool) *Workspace {
	return &Workspace{pool: pool, mbuf: make([][]float32, pool.Workers()), sbuf: make([][]float32, pool.Workers())}
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
	for i := range w.mbuf {
		w.mbuf[i] = grow(w.mbuf[i], rowBlock*mat.Cols)
	}
	w.mm = matmulJob{w: mat, bias: bias, x: x[:rows*mat.Cols], y: y, rows: rows, ldy: ldy, buf: w.mbuf}
	w.pool.parallel(&w.mm, mat.Rows, rowBlock)
	w.mm = matmulJob{}
}

// Forward runs the segments through the model: K/V of every token is written to its sequence's cache
// slot, queries attend causally over their own sequence's cache, and the logits of each segment's last
// token go to Segment.Logits. Weights are read once per call for all rows of all segments.
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
			if slot < 0 || slot >= s.Seq.Cap {
				return fmt.Errorf("model: slot %d for position %d outside the cache capacity %d", slot, p, s.Seq.Cap)
			}
			ws.rowSeg[r], ws.rowPos[r], ws.rowSlot[r] = i, p, slot
			e := m.Embed.W[tok*H : (tok+1)*H]
			x := ws.x[r*H : (r+1)*H]
			for k, h := range e {
				x[k] = bf16(h)
			}
			for k, f := range m.invFreq {
				sn, cs := math.Sincos(float64(p) * f)
				ws.cos[r*d/2+k] = float32(cs)
				ws.sin[r*d/2+k] = float32(sn)
			}
			r++
		}
		if s.Logits != nil {
			ws.lastRows = append(ws.lastRows, r-1)
		}
	}
	eps := float32(c.RMSNormEps)
	for l := range m.Layers {
		L := &m.Layers[l]
		rmsnorm(ws.xn, ws.x, L.AttnNorm, R, H, eps)
		ws.matmul(ws.qkv, qkvDim, ws.xn, R, &L.QKV, L.QKVBias)
		for r := 0; r < R; r++ {
			row := ws.qkv[r*qkvDim : (r+1)*qkvDim]
			cs, sn := ws.cos[r*d/2:(r+1)*d/2], ws.sin[r*d/2:(r+1)*d/2]
			for h := 0; h < nQ+nKV; h++ {
				rope(row[h*d:(h+1)*d], cs, sn)
			}
			s := &segs[ws.rowSeg[r]]
			off := ws.rowSlot[r] * nKV * d
			copy(s.Seq.K[l][off:off+nKV*d], row[nQ*d:(nQ+nKV)*d])
			copy(s.Seq.V[l][off:off+nKV*d], row[(nQ+nKV)*d:])
			if s.Seq.Q != nil {
				if qi := ws.rowPos[r] - s.Seq.QFrom; qi >= 0 && (qi+1)*nQ*d <= len(s.Seq.Q[l]) {
					copy(s.Seq.Q[l][qi*nQ*d:(qi+1)*nQ*d], row[:nQ*d])
				}
			}
		}
		ws.attention(m, l, segs, R)
		ws.matmul(ws.tmp, H, ws.att, R, &L.O, nil)
		add(ws.x[:R*H], ws.tmp[:R*H])
		rmsnorm(ws.xn, ws.x, L.MLPNorm, R, H, eps)
		I := c.Intermediate
		ws.matmul(ws.gu, 2*I, ws.xn, R, &L.GateUp, nil)
		for r := 0; r < R; r++ {
			g := ws.gu[r*2*I : r*2*I+I]
			u := ws.gu[r*2*I+I : (r+1)*2*I]
			a := ws.act[r*I : (r+1)*I]
			for k := range a {
				a[k] = g[k] / (1 + float32(math.Exp(float64(-g[k])))) * u[k]
			}
		}
		ws.matmul(ws.tmp, H, ws.act, R, &L.Down, nil)
		add(ws.x[:R*H], ws.tmp[:R*H])
	}
	nl := len(ws.lastRows)
	if nl == 0 {
		return nil
	}
	for i, r := range ws.lastRows {
		copy(ws.tmp[i*H:(i+1)*H], ws.x[r*H:(r+1)*H])
	}
	rmsnorm(ws.xn, ws.tmp, m.Norm, nl, H, eps)
	ws.logitRows = grow(ws.logitRows, nl*c.Vocab)
	ws.matmul(ws.logitRows, c.Vocab, ws.xn, nl, &m.LMHead, nil)
	j := 0
	for i := range segs {
		if segs[i].Logits != nil {
			copy(segs[i].Logits, ws.logitRows[j*c.Vocab:(j+1)*c.Vocab])
			j++
		}
	}
	return nil
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

// attnJob computes attention for (row, kv head) units.
type attnJob struct {
	m    *Model
	l    int
	segs []Segment
	ws   *Workspace
}

func (w *Workspace) attention(m *Model, l int, segs []Segment, R int) {
	maxCap := 0
	for i := range segs {
		maxCap = max(maxCap, segs[i].Seq.Cap)
	}
	g := m.Cfg.Heads / m.Cfg.KVHeads
	for i := range w.sbuf {
		w.sbuf[i] = grow(w.sbuf[i], g*maxCap)
	}
	w.aj = attnJob{m: m, l: l, segs: segs, ws: w}
	w.pool.parallel(&w.aj, R*m.Cfg.KVHeads, 1)
	w.aj = attnJob{}
}

func (a *attnJob) run(lo, hi, worker int) {
	c := &a.m.Cfg
	d, nQ, nKV := c.HeadDim, c.Heads, c.KVHeads
	g := nQ / nKV
	qkvDim := (nQ + 2*nKV) * d
	scale := float32(1 / math.Sqrt(float64(d)))
	ws := a.ws
	for u := lo; u < hi; u++ {
		r, kvh := u/nKV, u%nKV
		seq := a.segs[ws.rowSeg[r]].Seq
		p := ws.rowPos[r]
		K, V := seq.K[a.l], seq.V[a.l]
		n := seq.Cap
		if seq.Live == nil {
			n = p + 1
		}
		sc := ws.sbuf[worker][:g*n]
		q := ws.qkv[r*qkvDim+kvh*g*d : r*qkvDim+(kvh+1)*g*d]
		s := 0
		live := seq.Live
		// Four keys at a time where all four are visible (four independent accumulation chains, each in
		// dot1's order, so scores do not depend on the blocking); the rest one by one below.
		for ; s+3 < n; s += 4 {
			if live != nil && !(visible(live[s], p) && visible(live[s+1], p) && visible(live[s+2], p) && visible(live[s+3], p)) {
				for t := s; t < s+4; t++ {
					a.score1(sc, q, K, live, t, n, p, kvh, scale)
				}
				continue
			}
			{
				b := (s*nKV + kvh) * d
				st := nKV * d
				k0, k1, k2, k3 := K[b:b+d], K[b+st:b+st+d], K[b+2*st:b+2*st+d], K[b+3*st:b+3*st+d]
				for h := 0; h < g; h++ {
					a := dot1x4(q[h*d:(h+1)*d], k0, k1, k2, k3)
					row := sc[h*n+s : h*n+s+4]
					row[0], row[1], row[2], row[3] = a[0]*scale, a[1]*scale, a[2]*scale, a[3]*scale
				}
			}
		}
		for ; s < n; s++ {
			a.score1(sc, q, K, live, s, n, p, kvh, scale)
		}
		out := ws.att[r*nQ*d+kvh*g*d : r*nQ*d+(kvh+1)*g*d]
		for i := range out {
			out[i] = 0
		}
		for h := 0; h < g; h++ {
			row := sc[h*n : (h+1)*n]
			mx := row[0]
			for _, v := range row {
				mx = max(mx, v)
			}
			var sum float32
			for s, v := range row {
				e := expf(v - mx)
				row[s] = e
				sum += e
			}
			inv := 1 / sum
			o := out[h*d : (h+1)*d]
			st := nKV * d
			s := 0
			// Four values at a time: one pass over o per four slots.
			for ; s+3 < n; s += 4 {
				p0, p1, p2, p3 := row[s]*inv, row[s+1]*inv, row[s+2]*inv, row[s+3]*inv
				if p0 == 0 && p1 == 0 && p2 == 0 && p3 == 0 {
					continue
				}
				b := (s*nKV + kvh) * d
				v0, v1, v2, v3 := V[b:b+d], V[b+st:b+st+d], V[b+2*st:b+2*st+d], V[b+3*st:b+3*st+d]
				v0, v1, v2, v3 = v0[:len(o)], v1[:len(o)], v2[:len(o)], v3[:len(o)]
				for i := range o {
					o[i] += p0*v0[i] + p1*v1[i] + p2*v2[i] + p3*v3[i]
				}
			}
			for ; s < n; s++ {
				pr := row[s] * inv
				if pr == 0 {
					continue
				}
				vv := V[(s*nKV+kvh)*d : (s*nKV+kvh+1)*d]
				vv = vv[:len(o)]
				for i := range o {
					o[i] += pr * vv[i]
				}
			}
		}
	}
}

// visible reports whether a slot holding absolute position lp is seen by a query at position p.
func visible(lp int32, p int) bool { return lp >= 0 && int(lp) <= p }

// score1 writes the scaled scores of slot s for every query head of the group (-Inf when not visible).
func (a *attnJob) score1(sc, q, K []float32, live []int32, s, n, p, kvh int, scale float32) {
	c := &a.m.Cfg
	d, nKV := c.HeadDim, c.KVHeads
	g := c.Heads / nKV
	if live != nil && !visible(live[s], p) {
		for h := 0; h < g; h++ {
			sc[h*n+s] = float32(math.Inf(-1))
		}
		return
	}
	k := K[(s*nKV+kvh)*d : (s*nKV+kvh+1)*d]
	for h := 0; h < g; h++ {
		sc[h*n+s] = dot1(q[h*d:(h+1)*d], k) * scale
	}
}
