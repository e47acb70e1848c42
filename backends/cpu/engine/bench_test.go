package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/snapeval/snapeval/backends/cpu/model"
	"github.com/snapeval/snapeval/backends/cpu/safetensors"
	"github.com/snapeval/snapeval/compress"
)

// smolConfig is SmolLM2-135M's shape.
const smolConfig = `{"model_type":"llama","hidden_size":576,"intermediate_size":1536,"num_hidden_layers":30,
"num_attention_heads":9,"num_key_value_heads":3,"head_dim":64,"vocab_size":49152,"max_position_embeddings":32768,
"rms_norm_eps":1e-5,"rope_theta":100000,"tie_word_embeddings":true,"torch_dtype":"bfloat16"}`

var (
	smolOnce  sync.Once
	smolModel *model.Model
	smolErr   error
)

// randomSmol builds a random bf16 checkpoint of SmolLM2-135M's shape (through safetensors, as a real one loads).
func randomSmol(b *testing.B) *model.Model {
	if testing.Short() {
		b.Skip("benchmark model skipped in -short mode")
	}
	smolOnce.Do(func() {
		cfg, err := model.ParseConfig("smol config.json", []byte(smolConfig))
		if err != nil {
			smolErr = err
			return
		}
		state := uint64(1)
		rnd := func(name string, scale float64, shape ...int) *safetensors.Tensor {
			n := 1
			for _, d := range shape {
				n *= d
			}
			data := make([]byte, 2*n)
			for i := 0; i < n; i++ {
				state = state*6364136223846793005 + 1442695040888963407
				u := float64(state>>40)/float64(1<<24)*2 - 1 // uniform in [-1, 1)
				binary.LittleEndian.PutUint16(data[2*i:], safetensors.F32ToBF16(float32(u*scale)))
			}
			return &safetensors.Tensor{Name: name, DType: safetensors.BF16, Shape: shape, Data: data}
		}
		ones := func(name string, n int) *safetensors.Tensor {
			t := rnd(name, 0, n)
			for i := 0; i < n; i++ {
				binary.LittleEndian.PutUint16(t.Data[2*i:], 0x3f80)
			}
			return t
		}
		H, I, d := cfg.Hidden, cfg.Intermediate, cfg.HeadDim
		ts := []*safetensors.Tensor{rnd("model.embed_tokens.weight", 1, cfg.Vocab, H), ones("model.norm.weight", H)}
		for l := 0; l < cfg.Layers; l++ {
			p := fmt.Sprintf("model.layers.%d.", l)
			s := math.Sqrt(3.0 / float64(H))
			ts = append(ts, ones(p+"input_layernorm.weight", H), ones(p+"post_attention_layernorm.weight", H),
				rnd(p+"self_attn.q_proj.weight", s, cfg.Heads*d, H), rnd(p+"self_attn.k_proj.weight", s, cfg.KVHeads*d, H),
				rnd(p+"self_attn.v_proj.weight", s, cfg.KVHeads*d, H), rnd(p+"self_attn.o_proj.weight", s, H, cfg.Heads*d),
				rnd(p+"mlp.gate_proj.weight", s, I, H), rnd(p+"mlp.up_proj.weight", s, I, H),
				rnd(p+"mlp.down_proj.weight", math.Sqrt(3.0/float64(I)), H, I))
		}
		enc, err := safetensors.Encode(ts, nil)
		if err != nil {
			smolErr = err
			return
		}
		ck, err := safetensors.FromBytes("smol.safetensors", enc)
		if err != nil {
			smolErr = err
			return
		}
		smolModel, smolErr = model.Load(cfg, ck)
	})
	if smolErr != nil {
		b.Fatal(smolErr)
	}
	return smolModel
}

func prompt(n, salt int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = (i*7919 + salt*104729) % 49152
	}
	return ids
}

// BenchmarkMemBandwidth sums a 256 MiB float32 array on all cores: the memory-bandwidth ceiling.
func BenchmarkMemBandwidth(b *testing.B) {
	if testing.Short() {
		b.Skip()
	}
	x := make([]float32, 64<<20)
	for i := range x {
		x[i] = float32(i & 7)
	}
	w := runtime.GOMAXPROCS(0)
	b.SetBytes(int64(4 * len(x)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		sums := make([]float32, w)
		for k := 0; k < w; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				part := x[k*len(x)/w : (k+1)*len(x)/w]
				var s0, s1, s2, s3 float32
				for j := 0; j+3 < len(part); j += 4 {
					s0 += part[j]
					s1 += part[j+1]
					s2 += part[j+2]
					s3 += part[j+3]
				}
				sums[k] = s0 + s1 + s2 + s3
			}()
		}
		wg.Wait()
	}
}

// BenchmarkPrefill reports prefill tokens/s for one 256-token prompt, one 512-token prompt (llama-bench's
// pp512; two 256-token chunks), 4 concurrent 64-token prompts and one
// 2048-token and one 4096-token prompt (long enough for attention to matter).
func BenchmarkPrefill(b *testing.B) {
	m := randomSmol(b)
	for _, tc := range []struct{ seqs, n int }{{1, 256}, {1, 512}, {4, 64}, {1, 2048}, {1, 4096}} {
		b.Run(fmt.Sprintf("seqs=%d/len=%d", tc.seqs, tc.n), func(b *testing.B) {
			e := New(m, Options{Slots: tc.seqs, PrefixCacheBytes: -1, PrefillChunk: 256})
			defer e.Close()
			b.ResetTimer()
			start, c0 := time.Now(), cpuTime()
			for i := 0; i < b.N; i++ {
				var wg sync.WaitGroup
				for s := 0; s < tc.seqs; s++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := e.Generate(context.Background(), Job{Prompt: prompt(tc.n, i*tc.seqs+s), Policy: compress.MustParse("full"), MaxNew: 1}); err != nil {
							b.Error(err)
						}
					}()
				}
				wg.Wait()
			}
			b.ReportMetric(float64(b.N*tc.seqs*tc.n)/time.Since(start).Seconds(), "tok/s")
			b.ReportMetric(float64(b.N*tc.seqs*tc.n)/(cpuTime()-c0).Seconds(), "tok/cpu-s")
		})
	}
}

// decodeRoom is the number of decode steps a benchmark sequence has room for.
const decodeRoom = 256

// cpuTime is the process's user+system CPU time: on a shared machine, throughput per CPU-second is the
// number that does not depend on what else runs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// steps runs b.N decode steps (at most decodeRoom) of y and reports wall and CPU time per step.
func steps(b *testing.B, y *Synthetic) {
	if b.N > decodeRoom-2 {
		b.N = decodeRoom - 2
	}
	if err := y.Step(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if err := y.Step(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-c0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

func synthetic(b *testing.B, m *model.Model, n, ctxLen int, spec string) *Synthetic {
	y, err := NewSynthetic(m, Options{}, n, ctxLen, decodeRoom, compress.MustParse(spec))
	if err != nil {
		b.Fatal(err)
	}
	return y
}

// BenchmarkDecode reports decode tokens/s with 1 and 8 concurrent sequences at 512 tokens of context.
func BenchmarkDecode(b *testing.B) {
	m := randomSmol(b)
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("seqs=%d/ctx=512", n), func(b *testing.B) {
			y := synthetic(b, m, n, 512, "full")
			defer y.Close()
			steps(b, y)
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*n)/sec, "tok/s")
			b.ReportMetric(float64(m.WeightBytes())*float64(b.N)/sec/1e9, "weightGB/s")
		})
	}
}

// BenchmarkDecodeStep reports the time of one decode step of one sequence at 1k and 16k context under full,
// snapstream:budget=1024 and the quantized full cache (kvquant 8 and 4 bits), and at 16k under the per-head caches
// of budget 1024 (h2o and tova evicting at every step, pyramidkv's per-layer sizes).
func BenchmarkDecodeStep(b *testing.B) {
	m := randomSmol(b)
	for _, ctx := range []int{1024, 16384} {
		for _, spec := range []string{"full", "snapstream:budget=1024", "kvquant:bits=8", "kvquant:bits=4",
			"h2o:budget=1024", "tova:budget=1024", "pyramidkv:base=snapstream,budget=1024"} {
			if ctx == 1024 && spec != "full" && spec != "snapstream:budget=1024" && !strings.HasPrefix(spec, "kvquant") {
				continue
			}
			b.Run(fmt.Sprintf("ctx=%d/%s", ctx, spec), func(b *testing.B) {
				y := synthetic(b, m, 1, ctx, spec)
				defer y.Close()
				steps(b, y)
			})
		}
	}
}
