package compress

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// cpuMeter reports the process CPU time per op beside the wall time, as "cpu-ns/op": on a shared,
// oversubscribed box the wall time measures the neighbours too. Benchmarks here are single-threaded.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

func startCPU(b *testing.B) cpuMeter {
	b.ResetTimer()
	t, ok := processCPU()
	return cpuMeter{t, ok}
}

func (m cpuMeter) report(b *testing.B) {
	if t, ok := processCPU(); ok && m.ok && b.N > 0 {
		b.ReportMetric(float64(t-m.start)/float64(b.N), "cpu-ns/op")
	}
}

var long = flag.Bool("long", false, "also run the prefill yardsticks at 128k (minutes per op; use -timeout 30m)")

// Realistic shape of one layer's KV head group: head_dim 128, 4 query heads per KV head, W = 32, k = 5.
const (
	benchHeadDim = 128
	benchGroup   = 4
	benchWindow  = 32
)

var benchLengths = []int{4096, 32768, 131072}

func benchInputs(L int) (queries, keys []float32) {
	rng := rand.New(rand.NewPCG(uint64(L), 9))
	queries = make([]float32, benchWindow*benchGroup*benchHeadDim)
	keys = make([]float32, L*benchHeadDim)
	for i := range queries {
		queries[i] = float32(rng.NormFloat64())
	}
	for i := range keys {
		keys[i] = float32(rng.NormFloat64())
	}
	return queries, keys
}

// BenchmarkSelectTopK: SnapKV selection for one layer and one KV head group (4 query heads, 1 KV head)
// with budget L/4 (default split), i.e. the top-K of about L/2 candidates.
func BenchmarkSelectTopK(b *testing.B) {
	for _, L := range benchLengths {
		b.Run(fmt.Sprintf("L=%d", L), func(b *testing.B) {
			plan, err := MustParse(fmt.Sprintf("snapstream:budget=%d", L/4)).Plan(L, 0)
			if err != nil {
				b.Fatal(err)
			}
			queries, keys := benchInputs(L)
			var s Scratch
			b.ReportAllocs()
			m := startCPU(b)
			for b.Loop() {
				SelectTopK(plan, queries, keys, benchGroup, 1, benchHeadDim, &s)
			}
			m.report(b)
		})
	}
}

var sink float32

func skipLong(b *testing.B, L int) {
	if L > 32768 && !*long {
		b.Skipf("L=%d prefill yardstick takes minutes; run with -long -timeout 30m", L)
	}
}

// BenchmarkPrefillScores is the yardstick of the brief: one layer's causal QK^T logits for one query head
// over all L prompt queries, naive float32 (a 4-way unrolled scalar Go loop), L(L+1)/2 dot products of
// head_dim 128. Prefill attention does this for every query head; selection looks at W' rows of 4 heads.
func BenchmarkPrefillScores(b *testing.B) {
	for _, L := range benchLengths {
		b.Run(fmt.Sprintf("L=%d", L), func(b *testing.B) {
			skipLong(b, L)
			_, keys := benchInputs(L)
			queries := keys // any L x head_dim matrix; the values do not change the cost
			row := make([]float32, L)
			scale := float32(1 / math.Sqrt(benchHeadDim))
			m := startCPU(b)
			for b.Loop() {
				for i := range L {
					q := queries[i*benchHeadDim : (i+1)*benchHeadDim]
					t := 0
					for ; t+4 <= i+1; t += 4 {
						o := t * benchHeadDim
						d0, d1, d2, d3 := dot4(q, keys[o:], keys[o+benchHeadDim:], keys[o+2*benchHeadDim:], keys[o+3*benchHeadDim:])
						row[t], row[t+1], row[t+2], row[t+3] = d0*scale, d1*scale, d2*scale, d3*scale
					}
					for ; t <= i; t++ {
						row[t] = dot(q, keys[t*benchHeadDim:]) * scale
					}
					sink += row[i]
				}
			}
			m.report(b)
		})
	}
}

// BenchmarkPrefillScoresGemm is the same causal QK^T computed with the dot kernel SelectTopK uses
// (gonum SGEMM on serial 64-query x 128-key tiles, only the tiles a query block can see): the like-for-like yardstick.
func BenchmarkPrefillScoresGemm(b *testing.B) {
	for _, L := range benchLengths {
		b.Run(fmt.Sprintf("L=%d", L), func(b *testing.B) {
			skipLong(b, L)
			_, keys := benchInputs(L)
			out := make([]float32, rowBlock*L)
			scale := float32(1 / math.Sqrt(benchHeadDim))
			b.ReportAllocs()
			m := startCPU(b)
			for b.Loop() {
				for r0 := 0; r0 < L; r0 += rowBlock {
					A := blas32.General{Rows: rowBlock, Cols: benchHeadDim, Stride: benchHeadDim, Data: keys[r0*benchHeadDim:]}
					for t0 := 0; t0 < r0+rowBlock; t0 += keyBlock {
						nb := min(keyBlock, r0+rowBlock-t0)
						B := blas32.General{Rows: nb, Cols: benchHeadDim, Stride: benchHeadDim, Data: keys[t0*benchHeadDim:]}
						C := blas32.General{Rows: rowBlock, Cols: nb, Stride: L, Data: out[t0:]}
						blas32.Gemm(blas.NoTrans, blas.Trans, scale, A, B, 0, C)
					}
				}
				sink += out[0]
			}
			m.report(b)
		})
	}
}

// BenchmarkDecode is the per-token slot bookkeeping cost.
func BenchmarkDecode(b *testing.B) {
	pl, err := MustParse("snapstream:budget=4096").Plan(100000, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	s := NewSlots(pl)
	s.Prefill(randomTopK(rand.New(rand.NewPCG(1, 2)), pl))
	p := 100000
	b.ReportAllocs()
	for b.Loop() {
		s.Decode(p)
		p++
	}
}

// dot is the float32 dot product of a and b[:len(a)], accumulated in the same order as dot4.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s float32
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

// dot4 returns the dot products of q with four keys of the same length: four independent chains.
func dot4(q, k0, k1, k2, k3 []float32) (s0, s1, s2, s3 float32) {
	n := len(q)
	k0, k1, k2, k3 = k0[:n], k1[:n], k2[:n], k3[:n]
	for i, x := range q {
		s0 += x * k0[i]
		s1 += x * k1[i]
		s2 += x * k2[i]
		s3 += x * k3[i]
	}
	return
}
