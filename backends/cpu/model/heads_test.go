package model

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// perHead returns a copy of a slot-cache segment (slotSegs) laid out as per-head caches: layer l's KV head h holds
// the same slots in the same order at region h*Cap, with the same mask and write slot, and the weights of every
// head captured.
func perHead(m *Model, seg Segment) Segment {
	c := &m.Cfg
	d, nKV, g := c.HeadDim, c.KVHeads, c.Heads/c.KVHeads
	src := seg.Seq
	capa := src.Cap
	s := &Seq{Cap: capa, K: make([][]float32, c.Layers), V: make([][]float32, c.Layers), Heads: make([]HeadCache, c.Layers*nKV)}
	for l := range s.K {
		s.K[l] = make([]float32, len(src.K[l]))
		s.V[l] = make([]float32, len(src.V[l]))
		for h := range nKV {
			for slot := range capa {
				copy(s.K[l][(h*capa+slot)*d:][:d], src.K[l][(slot*nKV+h)*d:])
				copy(s.V[l][(h*capa+slot)*d:][:d], src.V[l][(slot*nKV+h)*d:])
			}
			s.Heads[l*nKV+h] = HeadCache{Off: h * capa, Cap: capa, Live: slices.Clone(src.Live), Slot: seg.Slots[0],
				Weights: make([]float32, g*capa)}
		}
	}
	return Segment{Seq: s, Tokens: seg.Tokens, Pos: seg.Pos, Logits: make([]float32, c.Vocab)}
}

func cloneSlotSeg(seg Segment) Segment {
	s := *seg.Seq
	s.K, s.V = make([][]float32, len(s.K)), make([][]float32, len(s.V))
	for l := range s.K {
		s.K[l], s.V[l] = slices.Clone(seg.Seq.K[l]), slices.Clone(seg.Seq.V[l])
	}
	seg.Seq = &s
	seg.Logits = make([]float32, len(seg.Logits))
	return seg
}

// TestPerHeadCaches: a decode step over per-head caches (Seq.Heads) that hold the slots of a slot cache in the
// same order gives the slot cache's logits bit for bit (split or not, heads split across units or not, both
// kernel paths), writes the token's key and value to each head's Slot, and captures weights that are the
// attention's probabilities: 0 on masked slots, summing to 1, and giving the last layer's attention output.
func TestPerHeadCaches(t *testing.T) {
	m := randomModel(t, oddGroupShape)
	c := &m.Cfg
	d, nQ, nKV := c.HeadDim, c.Heads, c.KVHeads
	g := nQ / nKV
	// Small queries, so that the softmax spreads its weight over the slots (a peaked one would hide a weight
	// left unnormalised).
	for l := range m.Layers {
		qkv := &m.Layers[l].QKV
		for i := range nQ * d * qkv.Cols {
			qkv.W[i] = uint16(math.Float32bits(bf16(qkv.W[i])/256) >> 16)
		}
	}
	defer func(saved int) { splitMinBytes = saved }(splitMinBytes)
	splitMinBytes = 1 << 10
	defer SetSIMD(SetSIMD(false))
	for _, simd := range []bool{false, true} {
		if simd && !haveSIMD {
			continue
		}
		SetSIMD(simd)
		for _, tc := range []struct{ seqs, capa, workers int }{{1, 700, 2}, {2, 300, 4}, {1, 1500, 16}, {3, 64, 16}} {
			t.Run(fmt.Sprintf("simd=%v/seqs=%d/cap=%d/workers=%d", simd, tc.seqs, tc.capa, tc.workers), func(t *testing.T) {
				pool := NewPool(tc.workers)
				defer pool.Close()
				ws := NewWorkspace(pool)
				segs := slotSegs(m, tc.seqs, tc.capa, 5000, 1.0/256)
				heads := make([]Segment, len(segs))
				for i := range segs {
					heads[i] = perHead(m, segs[i])
					segs[i] = cloneSlotSeg(segs[i])
				}
				forwardLogits(t, m, ws, segs)
				if err := m.Forward(ws, heads); err != nil {
					t.Fatal(err)
				}
				if ws.split {
					t.Fatal("a step over per-head caches ran split")
				}
				for i := range segs {
					sameBits(t, fmt.Sprintf("seq %d logits", i), heads[i].Logits, segs[i].Logits)
					slot := segs[i].Slots[0]
					for l := range c.Layers {
						for h := range nKV {
							hc := &heads[i].Seq.Heads[l*nKV+h]
							sameBits(t, "written key", heads[i].Seq.K[l][(hc.Off+slot)*d:][:d], segs[i].Seq.K[l][(slot*nKV+h)*d:][:d])
							sameBits(t, "written value", heads[i].Seq.V[l][(hc.Off+slot)*d:][:d], segs[i].Seq.V[l][(slot*nKV+h)*d:][:d])
							n := visibleIn(hc.Live, 5000)
							for j := range g {
								w := hc.Weights[j*hc.Cap:][:n]
								var sum, top float64
								for s, x := range w {
									top = max(top, float64(x))
									if hc.Live[s] < 0 && x != 0 || x < 0 {
										t.Fatalf("layer %d head %d/%d: weight %v on slot %d (position %d)", l, h, j, x, s, hc.Live[s])
									}
									sum += float64(x)
								}
								if math.Abs(sum-1) > 1e-5 || top > 0.5 {
									t.Fatalf("layer %d head %d/%d: weights sum to %v, the largest %v", l, h, j, sum, top)
								}
								if l != c.Layers-1 {
									continue
								}
								// The last layer's attention output (still in the workspace) is the weighted sum of values.
								r := i // one row per segment
								for x := range d {
									var o float64
									for s := range w {
										o += float64(w[s]) * float64(heads[i].Seq.V[l][(hc.Off+s)*d+x])
									}
									got := float64(ws.att[r*nQ*d+(h*g+j)*d+x])
									if math.Abs(got-o) > 1e-5*(1+math.Abs(o)) {
										t.Fatalf("layer %d head %d/%d lane %d: attention %v, weighted values %v", l, h, j, x, got, o)
									}
								}
							}
						}
					}
				}
			})
		}
	}
}

func TestPerHeadCachesRefused(t *testing.T) {
	m := randomModel(t, oddGroupShape)
	ws := NewWorkspace(NewPool(1))
	for name, mut := range map[string]func(*Segment){
		"two tokens":   func(s *Segment) { s.Tokens = []int{1, 2} },
		"slots":        func(s *Segment) { s.Slots = []int{0} },
		"slot":         func(s *Segment) { s.Seq.Heads[3].Slot = s.Seq.Heads[3].Cap },
		"region":       func(s *Segment) { s.Seq.Heads[1].Off = 1 << 20 },
		"short mask":   func(s *Segment) { s.Seq.Heads[0].Live = s.Seq.Heads[0].Live[:3] },
		"few weights":  func(s *Segment) { s.Seq.Heads[0].Weights = s.Seq.Heads[0].Weights[:5] },
		"head count":   func(s *Segment) { s.Seq.Heads = s.Seq.Heads[1:] },
		"over the cap": func(s *Segment) { s.Seq.Cap = 10 },
	} {
		seg := perHead(m, slotSegs(m, 1, 64, 500, 1.0/256)[0])
		mut(&seg)
		if err := m.Forward(ws, []Segment{seg}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
