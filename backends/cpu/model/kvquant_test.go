package model

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/compress/kvquant"
)

// quantShape has a 16-wide head (two 8-lane steps) and two KV heads.
const quantShape = `{"model_type":"llama","hidden_size":64,"intermediate_size":96,"num_hidden_layers":2,
"num_attention_heads":4,"num_key_value_heads":2,"head_dim":16,"vocab_size":256,"max_position_embeddings":4096,
"rms_norm_eps":1e-5,"rope_theta":10000,"tie_word_embeddings":true}`

// TestQuantKVMatchesFloatCache decodes through a quantized cache (Seq.Quant: quantize on write, dequantize on
// read) and, at every step, through a float32 cache holding what the quantized one dequantizes to (the
// current token written to an invisible slot, so that attention reads the quantized copy): the logits are the
// same bits, on both kernel paths, with and without attention units split by query head, for formats whose
// groups are narrower, wider and not a divisor of the head, over contexts past a row tile. The quantized cache
// holds Format.Bytes, and the logits differ from an unquantized decode's.
func TestQuantKVMatchesFloatCache(t *testing.T) {
	for _, shape := range []string{quantShape, oddGroupShape} {
		m := randomModel(t, shape)
		c := &m.Cfg
		for _, workers := range []int{1, 8} {
			pool := NewPool(workers)
			defer pool.Close()
			for _, f := range []kvquant.Format{{Bits: 8, Group: 32}, {Bits: 4, Group: 5}, {Bits: 2, Group: 3}, {Bits: 4, Group: 64}} {
				name := fmt.Sprintf("d=%d/workers=%d/bits=%d,group=%d", c.HeadDim, workers, f.Bits, f.Group)
				t.Run(name, func(t *testing.T) {
					bothPaths(t, func(t *testing.T) { testQuantKV(t, m, NewWorkspace(pool), f) })
				})
			}
		}
	}
}

func testQuantKV(t *testing.T, m *Model, ws *Workspace, f kvquant.Format) {
	c := &m.Cfg
	const L, steps = 140, 12
	ids := make([]int, L)
	for i := range ids {
		ids[i] = (i*37 + 11) % c.Vocab
	}
	dense := m.NewSeq(L + steps)
	first := make([]float32, c.Vocab)
	if err := m.Forward(ws, []Segment{{Seq: dense, Tokens: ids, Logits: first}}); err != nil {
		t.Fatal(err)
	}
	capacity := L + steps
	qc := m.NewQuantKV(f, capacity)
	if got, want := qc.Bytes(), f.Bytes(capacity, c.Layers, c.KVHeads, c.HeadDim, 4); got != want {
		t.Fatalf("the quantized cache holds %d bytes, Format.Bytes says %d", got, want)
	}
	for l := 0; l < c.Layers; l++ {
		qc.Load(l, dense.K[l], dense.V[l], L)
	}
	live := make([]int32, capacity)
	for s := range live {
		live[s] = -1
		if s < L {
			live[s] = int32(s)
		}
	}
	sq := &Seq{Cap: capacity, Quant: qc, Live: live}
	sf := m.NewSeq(capacity + 1) // the last slot takes the new token's float32 K/V, invisible
	sf.Live = make([]int32, capacity+1)
	d, nKV := c.HeadDim, c.KVHeads
	tmp := make([]float32, (capacity+2)*d)
	lq, lf, lu := make([]float32, c.Vocab), make([]float32, c.Vocab), make([]float32, c.Vocab)
	tok, differ := argmax(first), false
	for step := 0; step < steps; step++ {
		p := L + step
		live[p] = int32(p)
		if err := m.Forward(ws, []Segment{{Seq: sq, Tokens: []int{tok}, Pos: p, Slots: []int{p}, Logits: lq}}); err != nil {
			t.Fatal(err)
		}
		if err := m.Forward(ws, []Segment{{Seq: dense, Tokens: []int{tok}, Pos: p, Logits: lu}}); err != nil {
			t.Fatal(err)
		}
		for l := 0; l < c.Layers; l++ {
			for h := 0; h < nKV; h++ {
				qc.keys(tmp, tmp[(p+1)*d:], l, h, 0, p+1, p+1)
				for s := 0; s <= p; s++ {
					copy(sf.K[l][(s*nKV+h)*d:(s*nKV+h+1)*d], tmp[s*d:(s+1)*d])
				}
				qc.values(tmp, l, h, 0, p+1)
				for s := 0; s <= p; s++ {
					copy(sf.V[l][(s*nKV+h)*d:(s*nKV+h+1)*d], tmp[s*d:(s+1)*d])
				}
			}
		}
		// Layer 0's keys and values do not depend on the cache: those the quantized cache holds must be the dense
		// cache's quantized independently (complete key groups per channel, the rest as written; every value row).
		rb := f.RowBytes(d)
		codes, par := make([]byte, f.Group*rb), make([]uint16, 2*max(d, f.ValueGroups(d)))
		sc, zr, row := make([]float32, d), make([]float32, d), make([]float32, d)
		for h := 0; h < nKV; h++ {
			for s := 0; s <= p; s++ {
				want := dense.K[0][(s*nKV+h)*d : (s*nKV+h+1)*d]
				if g := s / f.Group; (g+1)*f.Group <= p+1 {
					f.QuantizeKeys(codes, rb, par, dense.K[0][(g*f.Group*nKV+h)*d:], nKV*d, f.Group, d)
					kvquant.Widen(sc, zr, par)
					f.DequantizeKey(row, codes[(s%f.Group)*rb:], sc, zr)
					want = row
				}
				if got := sf.K[0][(s*nKV+h)*d : (s*nKV+h+1)*d]; !slices.Equal(got, want) {
					t.Fatalf("step %d: layer 0 key %d head %d = %v, the dense key quantized %v", step, s, h, got, want)
				}
				f.QuantizeValue(codes, par, dense.V[0][(s*nKV+h)*d:(s*nKV+h+1)*d])
				f.DequantizeValue(row, codes, par)
				if got := sf.V[0][(s*nKV+h)*d : (s*nKV+h+1)*d]; !slices.Equal(got, row) {
					t.Fatalf("step %d: layer 0 value %d head %d = %v, the dense value quantized %v", step, s, h, got, row)
				}
			}
		}
		for s := range sf.Live {
			sf.Live[s] = -1
			if s <= p {
				sf.Live[s] = int32(s)
			}
		}
		if err := m.Forward(ws, []Segment{{Seq: sf, Tokens: []int{tok}, Pos: p, Slots: []int{capacity}, Logits: lf}}); err != nil {
			t.Fatal(err)
		}
		for i := range lq {
			if math.Float32bits(lq[i]) != math.Float32bits(lf[i]) {
				t.Fatalf("step %d: logit %d = %v through the quantized cache, %v through its float32 copy", step, i, lq[i], lf[i])
			}
		}
		for i := range lq {
			differ = differ || lq[i] != lu[i]
		}
		tok = argmax(lq)
	}
	if !differ {
		t.Error("the quantized cache's logits equal the float32 cache's: nothing was quantized")
	}
}

// TestQuantKVRefusals: a quantized cache takes one token a step at slot = position.
func TestQuantKVRefusals(t *testing.T) {
	m := randomModel(t, quantShape)
	pool := NewPool(1)
	defer pool.Close()
	ws := NewWorkspace(pool)
	q := &Seq{Cap: 8, Quant: m.NewQuantKV(kvquant.Format{Bits: 4, Group: 4}, 8), Live: make([]int32, 8)}
	for _, seg := range []Segment{{Seq: q, Tokens: []int{1, 2}}, {Seq: q, Tokens: []int{1}, Pos: 2, Slots: []int{3}}} {
		err := m.Forward(ws, []Segment{seg})
		if err == nil || !strings.Contains(err.Error(), "one token a step at slot = position") {
			t.Errorf("%d tokens at %d: %v", len(seg.Tokens), seg.Pos, err)
		}
	}
}
