package model

import "testing"

// TestGemvSegBits checks, on both paths, that running a row's columns in segments with gemvSeg gives the
// bits of gemv over the whole row.
func TestGemvSegBits(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		for _, sh := range []struct{ rows, cols, seg int }{{16, 576, 192}, {72, 576, 64}, {8, 24, 8}, {24, 1536, 512}} {
			m := randMat(sh.rows, sh.cols)
			x := randVec(sh.cols)
			want := make([]float32, sh.rows)
			gemv(x, m.W, sh.cols, sh.rows, want)
			got := make([]float32, sh.rows)
			acc := make([]float32, 8*sh.rows)
			for k0 := 0; k0 < sh.cols; k0 += sh.seg {
				gemvSeg(x[k0:], m.W[k0:], sh.cols, sh.seg, sh.rows, acc, k0 == 0, k0+sh.seg == sh.cols, got)
			}
			for j := range want {
				if got[j] != want[j] {
					t.Fatalf("%dx%d in segments of %d: row %d = %v, gemv %v", sh.rows, sh.cols, sh.seg, j, got[j], want[j])
				}
			}
		}
	})
}
