package model

import (
	"fmt"
	"math"
	"testing"
)

// TestSmallBatchKernelsMatchGemv checks, on both paths, that the small-batch tiles gemmNx4 (2 and 3 input
// rows x 4 weight rows) and, with AVX-512, gemm8x4 (8 x 4) give the bits of gemv for odd strides and column
// counts, and write nothing outside their block.
func TestSmallBatchKernelsMatchGemv(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		ns := []int{2, 3}
		if simdOn && simd512 {
			ns = append(ns, 8)
		}
		for _, k8 := range []int{8, 16, 40, 72, 576, 1536} {
			for _, n := range ns {
				ldw, ldx, ldy := k8+5, k8+3, 7
				m := randMat(4, ldw)
				x := randVec(n * ldx)
				for i := range x {
					x[i] += float32(i%13) / 7
				}
				got := make([]float32, n*ldy)
				for i := range got {
					got[i] = -1234
				}
				if n == 8 {
					gemm8x4(x, ldx, m.W, ldw, k8, got, ldy)
				} else {
					gemmNx4(x, ldx, m.W, ldw, k8, got, ldy, n)
				}
				for r := 0; r < n; r++ {
					want := make([]float32, 4)
					gemv(x[r*ldx:r*ldx+k8], m.W, ldw, 4, want)
					for j := 0; j < ldy; j++ {
						g := got[r*ldy+j]
						if j >= 4 {
							if g != -1234 {
								t.Fatalf("k8=%d n=%d: wrote y[%d][%d] outside the block", k8, n, r, j)
							}
							continue
						}
						if g != want[j] {
							t.Fatalf("k8=%d n=%d: tile[%d][%d] = %v, gemv %v", k8, n, r, j, g, want[j])
						}
					}
				}
			}
		}
	})
}

// TestMatmulSmallBatchBits checks, on both paths, that matmulRows gives every output row the bits of
// gemv on that row alone for every batch size 1..16 (the decode batches), odd column counts (tails),
// output ranges that are not multiples of the tiles, with and without a bias.
func TestMatmulSmallBatchBits(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		for _, sh := range []struct{ out, in, lo, hi int }{{50, 576, 0, 50}, {101, 37, 5, 100}, {98, 1536, 1, 98}, {7, 64, 2, 7}, {61, 13, 0, 61}, {16, 8, 3, 16}, {9, 5, 0, 9}} {
			m := randMat(sh.out, sh.in)
			bias := randVec(sh.out)
			for rows := 1; rows <= 16; rows++ {
				t.Run(fmt.Sprintf("%dx%d/rows=%d", sh.out, sh.in, rows), func(t *testing.T) {
					x := randVec(rows * sh.in)
					for i := range x {
						x[i] *= float32(1 + i%5)
					}
					for _, b := range [][]float32{nil, bias} {
						y := make([]float32, rows*sh.out)
						matmulRows(&m, b, x, rows, y, sh.out, sh.lo, sh.hi, nil)
						for r := 0; r < rows; r++ {
							want := make([]float32, sh.out)
							gemv(x[r*sh.in:(r+1)*sh.in], m.W[sh.lo*sh.in:], sh.in, sh.hi-sh.lo, want[sh.lo:sh.hi])
							for j := sh.lo; j < sh.hi; j++ {
								if b != nil {
									want[j] += b[j]
								}
								if got := y[r*sh.out+j]; got != want[j] {
									t.Fatalf("bias=%v: y[%d][%d] = %v, gemv %v", b != nil, r, j, got, want[j])
								}
							}
							for j := 0; j < sh.out; j++ {
								if (j < sh.lo || j >= sh.hi) && y[r*sh.out+j] != 0 {
									t.Fatalf("y[%d][%d] outside [%d, %d) written", r, j, sh.lo, sh.hi)
								}
							}
						}
					}
				})
			}
		}
	})
}

// oddGroupShape has SmolLM2-135M's head grouping (3 query heads per KV head, so a decode row is 3
// query vectors: the tiled attention pads them to 4) at a small width and depth.
const oddGroupShape = `{"model_type":"llama","hidden_size":72,"intermediate_size":96,"num_hidden_layers":3,
"num_attention_heads":9,"num_key_value_heads":3,"head_dim":8,"vocab_size":256,"max_position_embeddings":4096,
"rms_norm_eps":1e-5,"rope_theta":100000,"tie_word_embeddings":true}`

// TestDecodeAttentionOddGroup runs batched dense decode steps of a model with 3 query heads per KV head
// (contexts across key tiles) through the tiled attention and the per-query reference, on both kernel
// paths: the logits agree to float rounding, and each sequence's logits are bit-identical alone and in
// the batch.
func TestDecodeAttentionOddGroup(t *testing.T) {
	m := randomModel(t, oddGroupShape)
	pool := NewPool(2)
	defer pool.Close()
	bothPaths(t, func(t *testing.T) {
		ws := NewWorkspace(pool)
		lens := []int{1, 5, 130, 300}
		seqs := make([]*Seq, len(lens))
		for i, n := range lens {
			seqs[i] = m.NewSeq(320)
			ids := make([]int, n)
			for k := range ids {
				ids[k] = (k*31 + i*7) % m.Cfg.Vocab
			}
			if err := m.Forward(ws, []Segment{{Seq: seqs[i], Tokens: ids}}); err != nil {
				t.Fatal(err)
			}
		}
		clone := func(s *Seq) *Seq {
			c := m.NewSeq(s.Cap)
			for l := range s.K {
				copy(c.K[l], s.K[l])
				copy(c.V[l], s.V[l])
			}
			return c
		}
		step := func(batch []int) [][]float32 {
			segs := make([]Segment, len(batch))
			for k, i := range batch {
				segs[k] = Segment{Seq: clone(seqs[i]), Tokens: []int{(i*13 + 3) % m.Cfg.Vocab}, Pos: lens[i], Logits: make([]float32, m.Cfg.Vocab)}
			}
			return forwardLogits(t, m, ws, segs)
		}
		all := []int{0, 1, 2, 3}
		got := step(all)
		flashOff = true
		want := step(all)
		flashOff = false
		for k := range all {
			var num, den float64
			for i := range got[k] {
				num = math.Max(num, math.Abs(float64(got[k][i]-want[k][i])))
				den = math.Max(den, math.Abs(float64(want[k][i])))
			}
			if num/den > 1e-5 {
				t.Errorf("seq %d (context %d): tiled vs per-query logits differ by %.3g relative", k, lens[k], num/den)
			}
			alone := step([]int{k})[0]
			for i := range alone {
				if alone[i] != got[k][i] {
					t.Fatalf("seq %d: logit %d = %v in the batch, %v alone", k, i, got[k][i], alone[i])
				}
			}
		}
	})
}

// forwardLogits runs one forward step of segs and returns each segment's logits.
func forwardLogits(t *testing.T, m *Model, ws *Workspace, segs []Segment) [][]float32 {
	t.Helper()
	if err := m.Forward(ws, segs); err != nil {
		t.Fatal(err)
	}
	out := make([][]float32, len(segs))
	for k := range segs {
		out[k] = segs[k].Logits
	}
	return out
}
