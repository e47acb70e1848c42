package model

import (
	"fmt"
	"testing"
)

// BenchmarkAttnTile times the score and value-sum kernels of one prefill attention tile (48 query vectors
// = 16 positions x 3 heads of a KV head, head_dim 64, over a 128-key tile of a cache with 3 KV heads), as
// tiled runs them, on one core. sub is the number of keys per pass of the score loop (128 = one pass, as
// tiled does); dots4x3 and wsum2 are the kernels tiled used before dots4xN and wsum4.
func BenchmarkAttnTile(b *testing.B) {
	const d, st, J, P = 64, 3 * 64, 48, 4096
	Q := randVec(J * d)
	K := randVec(P * st)
	V := randVec(P * st)
	S := make([]float32, J*ldS)
	for i := range S {
		S[i] = 0.01
	}
	out := randVec(J * d)
	for _, sub := range []int{128, 48} {
		b.Run(fmt.Sprintf("dots/sub=%d", sub), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				Kt := K[(i%(P/kTile))*kTile*st:]
				for s0 := 0; s0 < 126; s0 += sub {
					nb := min(sub, 126-s0)
					for j := 0; j+4 <= J; j += 4 {
						dots4xN(Q[j*d:], d, Kt[s0*st:], st, d, nb, 0.125, S[j*ldS+s0:], ldS)
					}
				}
			}
			b.ReportMetric(float64(b.N)*J*126*d*2/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
	b.Run("dots4x3", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Kt := K[(i%(P/kTile))*kTile*st:]
			for j := 0; j+4 <= J; j += 4 {
				for s := 0; s+3 <= 126; s += 3 {
					dots4x3(Q[j*d:], d, Kt[s*st:], st, d, 0.125, S[j*ldS+s:], ldS)
				}
			}
		}
		b.ReportMetric(float64(b.N)*J*126*d*2/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("wsum2", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Vt := V[(i%(P/kTile))*kTile*st:]
			for j := 0; j+2 <= J; j += 2 {
				wsum2(out[j*d:(j+1)*d], out[(j+1)*d:(j+2)*d], S[j*ldS:j*ldS+kTile], S[(j+1)*ldS:(j+1)*ldS+kTile], Vt, st, kTile)
			}
		}
		b.ReportMetric(float64(b.N)*J*kTile*d*2/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("wsum4", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Vt := V[(i%(P/kTile))*kTile*st:]
			for j := 0; j+4 <= J; j += 4 {
				wsum4(out[j*d:(j+1)*d], out[(j+1)*d:(j+2)*d], out[(j+2)*d:(j+3)*d], out[(j+3)*d:(j+4)*d], S[j*ldS:], ldS, Vt, st, kTile)
			}
		}
		b.ReportMetric(float64(b.N)*J*kTile*d*2/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("expSub", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for j := 0; j < J; j++ {
				expSub(S[j*ldS:j*ldS+kTile], 0.5)
			}
		}
	})
}
