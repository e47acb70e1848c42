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

// b2w is the barriers a single-row decode step adds on a pool of workers: one per layer (o_proj) where the
// pool is small (smallPool).
func b2w(workers int, L int64) int64 {
	if workers <= smallPool {
		return L
	}
	return 0
}

// TestDispatchCount counts the pool dispatches of one forward step of SmolLM2-135M's layout (a decode
// step of one sequence, of a batch of eight, and a 64-token prefill chunk) and, inside them, the waits
// for every earlier phase (barriers). Before a step became one plan (2d00ceb) it made 151 dispatches of
// one phase each: 5 per layer and lm_head.
func TestDispatchCount(t *testing.T) {
	m := randomModel(t, smolShape)
	L := int64(m.Cfg.Layers)
	for _, workers := range []int{2, 16} {
		pool := NewPool(workers)
		ws := NewWorkspace(pool)
		for _, tc := range []struct {
			name      string
			seqs, len int
			barriers  int64
		}{
			// Per layer: q|k|v, gate|up, down_proj (attention waits only for its heads, o_proj of a single
			// row only for each KV head's attention, oseg.go; the norms of a single row run on the worker
			// that completes the step before them), lm_head. A pool of at most smallPool workers runs
			// o_proj after a barrier instead (no overlap).
			{"decode 1 seq", 1, 1, 3*L + 1 + b2w(workers, L)},
			// Several rows: the MLP norm and the next layer's attention norm are steps of their own (the
			// first layer's runs with the embedding), and so is the final norm when several rows give logits.
			{"decode 8 seqs", 8, 1, 6*L + 1},
			{"prefill 1 x 64", 1, 64, 6 * L},
		} {
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
			d0, b0 := pool.dispatches, pool.barriers
			if err := m.Forward(ws, segs); err != nil {
				t.Fatal(err)
			}
			d, b := pool.dispatches-d0, pool.barriers-b0
			t.Logf("%d workers, %s: %d pool dispatch(es), %d barriers inside (%d layers)", workers, tc.name, d, b, L)
			if d != 1 || b != tc.barriers {
				t.Errorf("%d workers, %s: %d dispatches and %d barriers, want 1 and %d", workers, tc.name, d, b, tc.barriers)
			}
		}
		pool.Close()
	}
}

// TestForwardNoAllocs checks that a decode step allocates nothing once the workspace has grown: one
// sequence (norms folded into the steps before them) and three (norms as steps of their own).
func TestForwardNoAllocs(t *testing.T) {
	m, _ := loadFixture(t, "llama-gqa")
	pool := NewPool(2)
	defer pool.Close()
	ws := NewWorkspace(pool)
	for _, n := range []int{1, 3} {
		segs := make([]Segment, n)
		for i := range segs {
			segs[i] = Segment{Seq: m.NewSeq(300), Tokens: []int{5 + i}, Pos: 100 + i, Logits: make([]float32, m.Cfg.Vocab)}
		}
		step := func() {
			if err := m.Forward(ws, segs); err != nil {
				t.Fatal(err)
			}
		}
		step()
		if a := testing.AllocsPerRun(50, step); a != 0 {
			t.Errorf("%d sequence(s): a decode step allocates %.1f times", n, a)
		}
	}
}

// nopJob does no work: BenchmarkPoolSync times the synchronisation alone.
type nopJob struct{}

func (nopJob) run(lo, hi, worker int) {}

// BenchmarkPoolSync times 151 synchronisations of all workers (a decode step's count before plans) as
// 151 dispatches and as one plan of 151 barrier phases, each over 64 units of no work.
func BenchmarkPoolSync(b *testing.B) {
	pool := NewPool(0)
	defer pool.Close()
	const n = 151
	var j nopJob
	b.Run("dispatches", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for k := 0; k < n; k++ {
				pool.parallel(j, 64, 1)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sync")
	})
	b.Run("plan", func(b *testing.B) {
		ph := make([]phase, n)
		for i := 0; i < b.N; i++ {
			for k := range ph {
				ph[k] = phase{j: j, n: 64, align: 1, barrier: true}
			}
			pool.run(ph)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sync")
	})
}
