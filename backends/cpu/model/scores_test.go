package model

import (
	"fmt"
	"math"
	"testing"
)

// TestScoresMatchDots checks Scores (SnapKV's observation logits) against dots row by row, bit for bit,
// over query counts around the 4-query kernel, key counts around its 3-key steps, head sizes with and
// without an 8-lane tail, and padded strides; nothing outside each row's n outputs may be written.
func TestScoresMatchDots(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		for _, d := range []int{8, 12, 64} {
			for _, nq := range []int{1, 3, 4, 5, 8, 9, 32} {
				for _, n := range []int{1, 2, 3, 4, 6, 7, 127, 128, 129} {
					t.Run(fmt.Sprintf("d=%d/nq=%d/n=%d", d, nq, n), func(t *testing.T) {
						ldq, ldk, ldo := d+3, 2*d+5, n+2
						q := randVec(nq * ldq)
						k := randVec(n * ldk)
						out := make([]float32, nq*ldo)
						nan := float32(math.NaN())
						for i := range out {
							out[i] = nan
						}
						const scale = 0.125
						Scores(q, ldq, nq, k, ldk, d, n, scale, out, ldo)
						want := make([]float32, n)
						for i := range nq {
							dots(q[i*ldq:i*ldq+d], k, ldk, n, scale, want)
							for s := range n {
								if got := out[i*ldo+s]; math.Float32bits(got) != math.Float32bits(want[s]) {
									t.Fatalf("row %d key %d: %v, dots gives %v", i, s, got, want[s])
								}
							}
							for s := n; s < ldo; s++ {
								if v := out[i*ldo+s]; !math.IsNaN(float64(v)) {
									t.Fatalf("row %d: wrote %v at %d, past its %d keys", i, v, s, n)
								}
							}
						}
					})
				}
			}
		}
	})
}
