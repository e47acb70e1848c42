package model

import (
	"fmt"
	"math"
	"testing"
)

// TestTiledAttentionMatchesPerQuery runs dense prefills of a prompt spanning several key tiles through
// the tiled (online-softmax) attention and the per-query reference, on both kernel paths: the logits
// agree to float rounding, and the tiled result is bit-identical whatever the prefill chunking.
func TestTiledAttentionMatchesPerQuery(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		pool := NewPool(2)
		defer pool.Close()
		for _, name := range fixtures {
			m, ref := loadFixture(t, name)
			ids := make([]int, 0, 5*kTile+7)
			for len(ids) < cap(ids) {
				ids = append(ids, ref.PromptIDs[len(ids)%len(ref.PromptIDs)]+len(ids)%3)
			}
			ws := NewWorkspace(pool)
			flashOff = true
			want, _ := prefillLogits(t, m, ws, ids, len(ids))
			flashOff = false
			var first []float32
			for _, chunk := range []int{len(ids), 37, qTile, 1} {
				got, _ := prefillLogits(t, m, ws, ids, chunk)
				var num, den float64
				for i := range got {
					num = math.Max(num, math.Abs(float64(got[i]-want[i])))
					den = math.Max(den, math.Abs(float64(want[i])))
				}
				if num/den > 1e-5 {
					t.Errorf("%s chunk %d: tiled vs per-query logits differ by %.3g relative", name, chunk, num/den)
				}
				if first == nil {
					first = got
					continue
				}
				for i := range got {
					if got[i] != first[i] {
						t.Fatalf("%s chunk %d: logit %d = %v, %v in one chunk", name, chunk, i, got[i], first[i])
					}
				}
			}
		}
	})
}

// BenchmarkPrefillAttention times the attention of one layer for a dense 2048-token prompt (the last
// 256-token chunk), tiled and per query.
func BenchmarkPrefillAttention(b *testing.B) {
	m, _ := loadFixture(b, "llama-gqa")
	pool := NewPool(0)
	defer pool.Close()
	const P, chunk = 2048, 256
	ids := make([]int, P)
	for i := range ids {
		ids[i] = (i * 7) % m.Cfg.Vocab
	}
	ws := NewWorkspace(pool)
	seq := m.NewSeq(P)
	for p := 0; p < P-chunk; p += chunk {
		if err := m.Forward(ws, []Segment{{Seq: seq, Tokens: ids[p : p+chunk], Pos: p}}); err != nil {
			b.Fatal(err)
		}
	}
	for _, off := range []bool{false, true} {
		b.Run(fmt.Sprintf("perquery=%v", off), func(b *testing.B) {
			flashOff = off
			defer func() { flashOff = false }()
			for i := 0; i < b.N; i++ {
				seg := Segment{Seq: seq, Tokens: ids[P-chunk:], Pos: P - chunk}
				if err := m.Forward(ws, []Segment{seg}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestBlockKernelsMatchSingle checks that dots4x3, dots4xN, wsum2 and wsum4 give the bits of dots and wsum, on both
// paths, for head sizes with and without an 8-element tail.
func TestBlockKernelsMatchSingle(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		for _, d := range []int{5, 8, 16, 32, 37, 64, 72} {
			st := d + 3
			q := randVec(4 * (d + 1))
			k := randVec(3 * st)
			for i := range k {
				k[i] *= 0.7
			}
			got := make([]float32, 4*5)
			dots4x3(q, d+1, k, st, d, 0.3, got, 5)
			for i := 0; i < 4; i++ {
				want := make([]float32, 3)
				dots(q[i*(d+1):i*(d+1)+d], k, st, 3, 0.3, want)
				for s := range want {
					if got[i*5+s] != want[s] {
						t.Fatalf("d=%d: dots4x3[%d][%d] = %v, dots %v", d, i, s, got[i*5+s], want[s])
					}
				}
			}
			// dots4xN over 0 to 7 key triples: the bits of dots, and nothing written past a row but
			// the one float it may use.
			for n3 := 0; n3 <= 21; n3 += 3 {
				ks := randVec((n3 + 1) * st)
				const ldo = 27
				got := make([]float32, 4*ldo)
				for i := range got {
					got[i] = -7
				}
				dots4xN(q, d+1, ks, st, d, n3, 0.3, got, ldo)
				for i := 0; i < 4; i++ {
					want := make([]float32, n3+1)
					dots(q[i*(d+1):i*(d+1)+d], ks, st, n3, 0.3, want)
					for s := 0; s < n3; s++ {
						if got[i*ldo+s] != want[s] {
							t.Fatalf("d=%d n3=%d: dots4xN[%d][%d] = %v, dots %v", d, n3, i, s, got[i*ldo+s], want[s])
						}
					}
					for s := n3 + 1; s < ldo; s++ {
						if got[i*ldo+s] != -7 {
							t.Fatalf("d=%d n3=%d: dots4xN wrote [%d][%d]", d, n3, i, s)
						}
					}
				}
			}
			const n = 11
			v := randVec(n * st)
			p0, p1 := randVec(n), randVec(2 * n)[n:]
			a0, a1 := randVec(d), randVec(2 * d)[d:]
			b0, b1 := append([]float32(nil), a0...), append([]float32(nil), a1...)
			wsum2(a0, a1, p0, p1, v, st, n)
			wsum(b0, p0, v, st, n)
			wsum(b1, p1, v, st, n)
			for i := range a0 {
				if a0[i] != b0[i] || a1[i] != b1[i] {
					t.Fatalf("d=%d: wsum2[%d] = %v, %v; wsum %v, %v", d, i, a0[i], a1[i], b0[i], b1[i])
				}
			}
			// wsum4 with weight rows 13 apart, outputs at odd offsets.
			for _, n := range []int{1, 2, 11} {
				const ldp = 13
				p := randVec(4 * ldp)
				o := randVec(4*d + 3)
				outs := [4][]float32{o[1 : 1+d], o[d+2 : 2*d+2], o[2*d+2 : 3*d+2], o[3*d+3 : 4*d+3]}
				ref := make([][]float32, 4)
				for a := range outs {
					ref[a] = append([]float32(nil), outs[a]...)
					wsum(ref[a], p[a*ldp:a*ldp+n], v, st, n)
				}
				wsum4(outs[0], outs[1], outs[2], outs[3], p, ldp, v, st, n)
				for a := range outs {
					for i := range outs[a] {
						if outs[a][i] != ref[a][i] {
							t.Fatalf("d=%d n=%d: wsum4 out %d [%d] = %v, wsum %v", d, n, a, i, outs[a][i], ref[a][i])
						}
					}
				}
			}
		}
	})
}

// TestRowMaxAndSiluMul checks rowMax and siluMul, on both paths, against scalar references.
func TestRowMaxAndSiluMul(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		for _, n := range []int{1, 7, 8, 9, 64, 131} {
			x := randVec(n)
			for i := range x {
				x[i] = x[i]*9 - float32(i%5)
			}
			x[(n*5)/7] = 40
			want := x[0]
			for _, v := range x {
				want = max(want, v)
			}
			if got := rowMax(x); got != want {
				t.Fatalf("n=%d: rowMax = %v, want %v", n, got, want)
			}
			u := randVec(n)
			a := make([]float32, n)
			siluMul(x, u, a)
			for i := range a {
				ref := float64(x[i]) / (1 + math.Exp(-float64(x[i]))) * float64(u[i])
				if !close32(a[i], float32(ref), 1e-6) {
					t.Fatalf("n=%d: siluMul[%d] (x=%v) = %v, want %v", n, i, x[i], a[i], ref)
				}
			}
		}
	})
}
