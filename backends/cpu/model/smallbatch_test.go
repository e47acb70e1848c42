package model

import (
	"fmt"
	"testing"
)

// TestSmallBatchKernelsMatchGemv checks, on both paths, that the small-batch tile gemmNx4 (2 and 3 input
// rows x 4 weight rows) gives the bits of gemv for odd strides and column counts, and writes nothing
// outside its block.
func TestSmallBatchKernelsMatchGemv(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		for _, k8 := range []int{8, 16, 40, 72, 576, 1536} {
			for _, n := range []int{2, 3} {
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
				gemmNx4(x, ldx, m.W, ldw, k8, got, ldy, n)
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
							t.Fatalf("k8=%d n=%d: gemmNx4[%d][%d] = %v, gemv %v", k8, n, r, j, g, want[j])
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
