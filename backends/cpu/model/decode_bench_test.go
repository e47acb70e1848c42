package model

import (
	"fmt"
	"sync"
	"testing"
)

// smolFull is SmolLM2-135M's full shape (random weights; vocab as the engine benchmark's).
const smolFull = `{"model_type":"llama","hidden_size":576,"intermediate_size":1536,"num_hidden_layers":30,
"num_attention_heads":9,"num_key_value_heads":3,"head_dim":64,"vocab_size":49152,"max_position_embeddings":32768,
"rms_norm_eps":1e-5,"rope_theta":100000,"tie_word_embeddings":true}`

var (
	smolFullOnce  sync.Once
	smolFullModel *Model
)

// BenchmarkDecodeBatch runs decode steps of seqs sequences (one token each) at ctx tokens of dense
// context on the pool (GOMAXPROCS workers): the batched-decode step of SmolLM2-135M's shape. The caches
// hold random keys and values (no prefill is run); the step writes slot ctx and attends over ctx+1 slots.
func BenchmarkDecodeBatch(b *testing.B) {
	if testing.Short() {
		b.Skip("benchmark model skipped in -short mode")
	}
	smolFullOnce.Do(func() { smolFullModel = randomModel(b, smolFull) })
	benchDecode(b, smolFullModel)
}

// BenchmarkDecodeBatchInt8 is BenchmarkDecodeBatch with the projections and lm_head in int8 (Model.Int8).
func BenchmarkDecodeBatchInt8(b *testing.B) {
	if testing.Short() {
		b.Skip("benchmark model skipped in -short mode")
	}
	smolFullOnce.Do(func() { smolFullModel = randomModel(b, smolFull) })
	benchDecode(b, smolFullModel.Int8())
}

func benchDecode(b *testing.B, m *Model) {
	pool := NewPool(0)
	defer pool.Close()
	for _, ctx := range []int{512} {
		for _, n := range []int{1, 2, 3, 4, 8, 16} {
			b.Run(fmt.Sprintf("seqs=%d/ctx=%d", n, ctx), func(b *testing.B) {
				ws := NewWorkspace(pool)
				segs := make([]Segment, n)
				for i := range segs {
					s := m.NewSeq(ctx + 1)
					for l := range s.K {
						copy(s.K[l], randVec(len(s.K[l])))
						copy(s.V[l], randVec(len(s.V[l])))
					}
					segs[i] = Segment{Seq: s, Tokens: []int{(i*7919 + 11) % m.Cfg.Vocab}, Pos: ctx, Logits: make([]float32, m.Cfg.Vocab)}
				}
				if err := m.Forward(ws, segs); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := m.Forward(ws, segs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "tok/s")
			})
		}
	}
}
