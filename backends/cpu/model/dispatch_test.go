package model

import (
	"math"
	"testing"
)

// smolShape is SmolLM2-135M's head layout and depth (9 query / 3 KV heads, 30 layers) at a small width:
// how many times a forward step synchronises the workers depends on the layers and the work units, not
// on the matrix sizes (every matrix here still has more than one unit of work per worker).
const smolShape = `{"model_type":"llama","hidden_size":72,"intermediate_size":192,"num_hidden_layers":30,
"num_attention_heads":9,"num_key_value_heads":3,"head_dim":8,"vocab_size":512,"max_position_embeddings":4096,
"rms_norm_eps":1e-5,"rope_theta":100000,"tie_word_embeddings":true}`

// randomModel builds a model of a config with deterministic pseudo-random bf16 weights.
func randomModel(t testing.TB, js string) *Model {
	t.Helper()
	cfg, err := ParseConfig("config.json", []byte(js))
	if err != nil {
		t.Fatal(err)
	}
	c := &cfg
	H, I, d := c.Hidden, c.Intermediate, c.HeadDim
	qkv := (c.Heads + 2*c.KVHeads) * d
	ones := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = 1 + float32(i%7)/50
		}
		return x
	}
	scale := func(m Mat, s float32) Mat {
		for i, w := range m.W {
			m.W[i] = uint16(math.Float32bits(bf16(w)*s) >> 16)
		}
		return m
	}
	m := &Model{Cfg: cfg, invFreq: cfg.InvFreq(), Embed: randMat(c.Vocab, H), Norm: ones(H)}
	m.LMHead = m.Embed
	for l := 0; l < c.Layers; l++ {
		L := Layer{AttnNorm: ones(H), MLPNorm: ones(H), QKV: scale(randMat(qkv, H), 0.3), O: scale(randMat(H, c.Heads*d), 0.3),
			GateUp: scale(randMat(2*I, H), 0.3), Down: scale(randMat(H, I), 0.2)}
		if c.AttentionBias {
			L.QKVBias = randVec(qkv)
		}
		m.Layers = append(m.Layers, L)
	}
	return m
}

// TestDispatchCount counts the pool dispatches of one forward step of SmolLM2-135M's layout: a decode
// step of one sequence, of a batch of eight, and a 64-token prefill chunk.
func TestDispatchCount(t *testing.T) {
	m := randomModel(t, smolShape)
	for _, workers := range []int{2, 16} {
		pool := NewPool(workers)
		ws := NewWorkspace(pool)
		for _, tc := range []struct {
			name      string
			seqs, len int
		}{{"decode 1 seq", 1, 1}, {"decode 8 seqs", 8, 1}, {"prefill 1 x 64", 1, 64}} {
			segs := make([]Segment, tc.seqs)
			for i := range segs {
				seq := m.NewSeq(600)
				toks := make([]int, tc.len)
				for k := range toks {
					toks[k] = (i*31 + k*7) % m.Cfg.Vocab
				}
				pos := 0
				if tc.len == 1 {
					pos = 500 // a decode step at context 500 (the cache content does not matter here)
				}
				segs[i] = Segment{Seq: seq, Tokens: toks, Pos: pos, Logits: make([]float32, m.Cfg.Vocab)}
			}
			before := pool.dispatches
			if err := m.Forward(ws, segs); err != nil {
				t.Fatal(err)
			}
			n := pool.dispatches - before
			t.Logf("%d workers, %s: %d pool dispatches (%d layers)", workers, tc.name, n, m.Cfg.Layers)
			if want := dispatchesPerStep(m.Cfg.Layers); n != want {
				t.Errorf("%d workers, %s: %d dispatches, want %d", workers, tc.name, n, want)
			}
		}
		pool.Close()
	}
}

// dispatchesPerStep is the expected number of dispatches of a forward step of a model with the given
// number of layers.
func dispatchesPerStep(layers int) int64 { return int64(5*layers + 1) }
