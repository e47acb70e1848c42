package model

import (
	"fmt"
	"math"
	"testing"
)

// forwardStepwise is Forward as it was before a step became one plan on the pool (2d00ceb): one pool
// dispatch per matmul and per attention, the row-wise steps (RMSNorm, RoPE and cache writes, residual
// adds, SiLU * up) on the caller in between. TestForwardMatchesStepwise compares the two bit for bit.
func (m *Model) forwardStepwise(ws *Workspace, segs []Segment) error {
	c := &m.Cfg
	H, d, nQ, nKV := c.Hidden, c.HeadDim, c.Heads, c.KVHeads
	qkvDim := (nQ + 2*nKV) * d
	R := 0
	for i := range segs {
		R += len(segs[i].Tokens)
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
			p := s.Pos + t
			slot := p
			if s.Slots != nil {
				slot = s.Slots[t]
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
		ws.buildUnits(m, segs, R)
		aj := attnJob{m: m, l: l, segs: segs, ws: ws}
		ws.pool.parallel(&aj, len(ws.units), 1)
		ws.matmul(ws.tmp, H, ws.att, R, &L.O, nil)
		add(ws.x[:R*H], ws.tmp[:R*H])
		rmsnorm(ws.xn, ws.x, L.MLPNorm, R, H, eps)
		I := c.Intermediate
		ws.matmul(ws.gu, 2*I, ws.xn, R, &L.GateUp, nil)
		for r := 0; r < R; r++ {
			g := ws.gu[r*2*I : r*2*I+I]
			u := ws.gu[r*2*I+I : (r+1)*2*I]
			siluMul(g, u, ws.act[r*I:(r+1)*I])
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

// stepCase is a scripted sequence of forward steps over a few caches: dense prefills in chunks, dense
// and slot-cache decode steps, mixed batches, segments with and without logits, query capture.
type stepCase struct {
	seqs  []*Seq
	steps [][]Segment
}

func newStepCase(m *Model) *stepCase {
	c := &m.Cfg
	tok := func(i int) int { return (i*7919 + 13) % c.Vocab }
	toks := func(n, salt int) []int {
		ids := make([]int, n)
		for i := range ids {
			ids[i] = tok(i + 31*salt)
		}
		return ids
	}
	const P = 300 // dense prompt: more than two key tiles
	dense := m.NewSeq(P + 8)
	dense.Q = make([][]float32, c.Layers)
	for l := range dense.Q {
		dense.Q[l] = make([]float32, 24*c.Heads*c.HeadDim)
	}
	dense.QFrom = P - 24
	// A slot cache: 40 slots holding scattered positions of a 200-token context, some empty.
	slot := m.NewSeq(40)
	slot.Live = make([]int32, 40)
	for s := range slot.Live {
		slot.Live[s] = int32(s * 5)
		if s%7 == 3 {
			slot.Live[s] = -1
		}
	}
	st := uint32(7)
	for l := range slot.K {
		for k := range slot.K[l] {
			st = st*1664525 + 1013904223
			slot.K[l][k] = float32(int32(st>>9)%1024) / 2048
			slot.V[l][k] = float32(int32(st>>13)%1024) / 2048
		}
	}
	other := m.NewSeq(64)
	cs := &stepCase{seqs: []*Seq{dense, slot, other}}
	logits := func() []float32 { return make([]float32, c.Vocab) }
	// Prefill of the dense prompt in uneven chunks, the last one with logits.
	ids := toks(P, 0)
	for p, n := 0, 0; p < P; p += n {
		n = min([]int{1, 37, 150, 16}[len(cs.steps)%4], P-p)
		seg := Segment{Seq: dense, Tokens: ids[p : p+n], Pos: p}
		if p+n == P {
			seg.Logits = logits()
		}
		cs.steps = append(cs.steps, []Segment{seg})
	}
	// Decode of the dense sequence alone, then batches mixing decode on the dense and the slot cache
	// with a prefill chunk of a third sequence (no logits).
	cs.steps = append(cs.steps, []Segment{{Seq: dense, Tokens: []int{tok(1)}, Pos: P, Logits: logits()}})
	for i := 0; i < 3; i++ {
		slotOf := (i*11 + 3) % 40
		cs.steps = append(cs.steps, []Segment{
			{Seq: dense, Tokens: []int{tok(i + 2)}, Pos: P + 1 + i, Logits: logits()},
			{Seq: other, Tokens: toks(20, i+1), Pos: 20 * i},
			{Seq: slot, Tokens: []int{tok(i + 5)}, Pos: 200 + i, Slots: []int{slotOf}, Logits: logits()},
		})
	}
	cs.steps = append(cs.steps, []Segment{{Seq: slot, Tokens: []int{tok(9)}, Pos: 204, Slots: []int{0}, Logits: logits()}})
	return cs
}

// clone deep-copies the case (caches and logits buffers) so that two forwards run on equal inputs.
func (cs *stepCase) clone() *stepCase {
	out := &stepCase{}
	m := map[*Seq]*Seq{}
	for _, s := range cs.seqs {
		n := &Seq{Cap: s.Cap, QFrom: s.QFrom}
		if s.Live != nil {
			n.Live = append([]int32(nil), s.Live...)
		}
		for l := range s.K {
			n.K = append(n.K, append([]float32(nil), s.K[l]...))
			n.V = append(n.V, append([]float32(nil), s.V[l]...))
		}
		for l := range s.Q {
			n.Q = append(n.Q, append([]float32(nil), s.Q[l]...))
		}
		m[s] = n
		out.seqs = append(out.seqs, n)
	}
	for _, st := range cs.steps {
		var segs []Segment
		for _, g := range st {
			g.Seq = m[g.Seq]
			if g.Logits != nil {
				g.Logits = make([]float32, len(g.Logits))
			}
			segs = append(segs, g)
		}
		out.steps = append(out.steps, segs)
	}
	return out
}

func sameBits(t *testing.T, what string, a, b []float32) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: lengths %d, %d", what, len(a), len(b))
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("%s[%d] = %v, stepwise %v", what, i, a[i], b[i])
		}
	}
}

// TestForwardMatchesStepwise runs the same steps through Forward (one plan per step) and the stepwise
// reference on pools of 1, 2, 3 and 5 workers, on both kernel paths and with the per-query attention
// reference: logits, K/V caches and captured queries are bit-identical. The fixtures cover 2 and 4
// query heads per KV head and q/k/v biases; SmolLM2-135M's layout (30 layers, 3 query heads per KV
// head) runs on 2 and 5 workers.
func TestForwardMatchesStepwise(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		models := map[string]*Model{"smol-layout": randomModel(t, smolShape)}
		for _, name := range fixtures {
			models[name], _ = loadFixture(t, name)
		}
		for _, name := range []string{"llama-gqa", "qwen2-tied", "smol-layout"} {
			m := models[name]
			for _, workers := range []int{1, 2, 3, 5} {
				for _, perQuery := range []bool{false, true} {
					// The 30-layer model (9 query heads per 3 KV heads) on two pool sizes, tiled only.
					if name == "smol-layout" && (workers == 1 || workers == 3 || perQuery || testing.Short()) {
						continue
					}
					t.Run(fmt.Sprintf("%s/workers=%d/perquery=%v", name, workers, perQuery), func(t *testing.T) {
						flashOff = perQuery
						defer func() { flashOff = false }()
						pool := NewPool(workers)
						defer pool.Close()
						ws, wr := NewWorkspace(pool), NewWorkspace(pool)
						a := newStepCase(m)
						b := a.clone()
						for i := range a.steps {
							if err := m.Forward(ws, a.steps[i]); err != nil {
								t.Fatal(err)
							}
							if err := m.forwardStepwise(wr, b.steps[i]); err != nil {
								t.Fatal(err)
							}
							for k := range a.steps[i] {
								if a.steps[i][k].Logits != nil {
									sameBits(t, fmt.Sprintf("step %d segment %d logits", i, k), a.steps[i][k].Logits, b.steps[i][k].Logits)
								}
							}
						}
						for s := range a.seqs {
							for l := range a.seqs[s].K {
								sameBits(t, fmt.Sprintf("seq %d layer %d K", s, l), a.seqs[s].K[l], b.seqs[s].K[l])
								sameBits(t, fmt.Sprintf("seq %d layer %d V", s, l), a.seqs[s].V[l], b.seqs[s].V[l])
							}
							for l := range a.seqs[s].Q {
								sameBits(t, fmt.Sprintf("seq %d layer %d Q", s, l), a.seqs[s].Q[l], b.seqs[s].Q[l])
							}
						}
					})
				}
			}
		}
	})
}
