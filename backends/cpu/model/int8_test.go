package model

import (
	"fmt"
	"math"
	"testing"
)

// TestQuantizeMat checks the int8 format: each dequantized weight is within half a step of the bf16 one,
// a block's largest weight maps to +-127, and an all-zero block has scale 0.
func TestQuantizeMat(t *testing.T) {
	m := randMat(19, 77)
	for k := 32; k < 64; k++ {
		m.W[3*77+k] = 0 // row 3, block 1
	}
	q := quantizeMat(m)
	if len(q.Q) != 19*77 || len(q.S) != 3*3*8 || q.W != nil {
		t.Fatalf("lengths: Q %d, S %d, W %d", len(q.Q), len(q.S), len(q.W))
	}
	for r := 0; r < m.Rows; r++ {
		sc := q.q8Scales(r)
		for b := 0; b < q8Blocks(m.Cols); b++ {
			s := sc[8*b]
			top := 0
			for k := b * q8Block; k < min((b+1)*q8Block, m.Cols); k++ {
				w, d := float64(bf16(m.W[r*m.Cols+k])), float64(deq(q.Q[r*m.Cols+k], s))
				if math.Abs(w-d) > float64(s)/2*(1+1e-6)+1e-7*math.Abs(w) {
					t.Fatalf("row %d col %d: %v dequantized to %v, scale %v", r, k, w, d, s)
				}
				top = max(top, int(math.Abs(float64(q.Q[r*m.Cols+k]))))
			}
			if r == 3 && b == 1 {
				if s != 0 || top != 0 {
					t.Errorf("zero block: scale %v, largest q %d", s, top)
				}
			} else if top != 127 {
				t.Errorf("row %d block %d: largest |q| = %d, want 127", r, b, top)
			}
		}
	}
}

// TestGemvQ8 checks, on both paths, that gemvQ8 agrees with a float64 dot product of the dequantized
// weights, and gives each row the same bits whatever the row range of the call (eight-row groups, single
// rows, misaligned starts, column tails).
func TestGemvQ8(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		for _, sh := range []struct{ rows, cols, lo, hi int }{{50, 576, 0, 50}, {37, 40, 3, 37}, {21, 13, 1, 20}, {9, 5, 0, 9}, {64, 1536, 8, 64}, {17, 64, 5, 6}} {
			w := quantizeMat(randMat(sh.rows, sh.cols))
			x := randVec(sh.cols)
			y := make([]float32, sh.hi-sh.lo)
			gemvQ8(x, &w, sh.lo, sh.hi, y)
			for j := sh.lo; j < sh.hi; j++ {
				var want float64
				sc := w.q8Scales(j)
				for k := 0; k < sh.cols; k++ {
					want += float64(x[k]) * float64(deq(w.Q[j*sh.cols+k], sc[(k/q8Block)*8]))
				}
				if math.Abs(float64(y[j-sh.lo])-want) > 1e-4*(1+math.Abs(want)) {
					t.Errorf("%dx%d row %d: %v, float64 %v", sh.rows, sh.cols, j, y[j-sh.lo], want)
				}
				one := make([]float32, 1)
				gemvQ8(x, &w, j, j+1, one)
				if one[0] != y[j-sh.lo] {
					t.Fatalf("%dx%d row %d: %v alone, %v in [%d, %d)", sh.rows, sh.cols, j, one[0], y[j-sh.lo], sh.lo, sh.hi)
				}
			}
		}
	})
}

// TestMatmulQ8Bits checks, on both paths, that matmulRows over an int8 matrix gives every output row the
// bits of gemvQ8 on that row alone, for decode batches and for prefill sizes that take the float32 panel
// tiles, with and without a bias.
func TestMatmulQ8Bits(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		for _, sh := range []struct{ out, in, lo, hi int }{{101, 37, 5, 100}, {98, 576, 1, 98}, {56, 1536, 8, 56}, {16, 8, 3, 16}} {
			w := quantizeMat(randMat(sh.out, sh.in))
			bias := randVec(sh.out)
			panel := make([]float32, panelLen(sh.in))
			for _, rows := range []int{1, 2, 3, 4, 5, 8, 16, panelRows, panelRows + 3} {
				t.Run(fmt.Sprintf("%dx%d/rows=%d", sh.out, sh.in, rows), func(t *testing.T) {
					x := randVec(rows * sh.in)
					for _, b := range [][]float32{nil, bias} {
						y := make([]float32, rows*sh.out)
						matmulRows(&w, b, x, rows, y, sh.out, sh.lo, sh.hi, panel)
						for r := 0; r < rows; r++ {
							want := make([]float32, sh.hi-sh.lo)
							gemvQ8(x[r*sh.in:(r+1)*sh.in], &w, sh.lo, sh.hi, want)
							for j := sh.lo; j < sh.hi; j++ {
								wj := want[j-sh.lo]
								if b != nil {
									wj += b[j]
								}
								if got := y[r*sh.out+j]; got != wj {
									t.Fatalf("bias=%v: y[%d][%d] = %v, gemvQ8 %v", b != nil, r, j, got, wj)
								}
							}
						}
					}
				})
			}
		}
	})
}

// TestModelInt8 runs a random model with bf16 and with int8 weights: the int8 logits stay close to the
// bf16 ones, and a sequence's int8 logits are the same bits alone and in a decode batch.
func TestModelInt8(t *testing.T) {
	m := randomModel(t, oddGroupShape)
	q := m.Int8()
	if q.Weights() != "int8" || m.Weights() != "bf16" || m.Layers[0].O.Q != nil {
		t.Fatalf("weights: %s / %s (the original must stay bf16)", q.Weights(), m.Weights())
	}
	if qq := q.Int8(); qq.WeightBytes() != q.WeightBytes() || &qq.LMHead.Q[0] != &q.LMHead.Q[0] {
		t.Error("Int8 of an int8 model quantized again")
	}
	if r := float64(q.WeightBytes()) / float64(m.WeightBytes()); r < 0.55 || r > 0.6 {
		t.Errorf("int8 / bf16 weight bytes = %.3f, want 0.5625 (one byte and 4/32 of a scale per weight)", r)
	}
	pool := NewPool(2)
	defer pool.Close()
	bothPaths(t, func(t *testing.T) {
		ws := NewWorkspace(pool)
		run := func(mm *Model, batch []int) [][]float32 {
			segs := make([]Segment, len(batch))
			for k, i := range batch {
				s := mm.NewSeq(80)
				ids := make([]int, 20+i*13)
				for j := range ids {
					ids[j] = (j*31 + i*7) % mm.Cfg.Vocab
				}
				if err := mm.Forward(ws, []Segment{{Seq: s, Tokens: ids}}); err != nil {
					t.Fatal(err)
				}
				segs[k] = Segment{Seq: s, Tokens: []int{(i*13 + 3) % mm.Cfg.Vocab}, Pos: len(ids), Logits: make([]float32, mm.Cfg.Vocab)}
			}
			return forwardLogits(t, mm, ws, segs)
		}
		all := []int{0, 1, 2, 3}
		got, ref := run(q, all), run(m, all)
		for k := range all {
			var num, den float64
			for i := range got[k] {
				num += sq(float64(got[k][i] - ref[k][i]))
				den += sq(float64(ref[k][i]))
			}
			if e := math.Sqrt(num / den); e > 0.05 || e == 0 {
				t.Errorf("seq %d: int8 logits differ from bf16 by %.4f (relative L2)", k, e)
			}
			alone := run(q, []int{k})[0]
			for i := range alone {
				if alone[i] != got[k][i] {
					t.Fatalf("seq %d: int8 logit %d = %v in the batch, %v alone", k, i, got[k][i], alone[i])
				}
			}
		}
	})
}

func sq(x float64) float64 { return x * x }
