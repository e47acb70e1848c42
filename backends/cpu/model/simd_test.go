package model

import (
	"fmt"
	"math"
	"testing"
)

// bothPaths runs f with the portable kernels and, where the CPU has them, the assembly kernels (with
// AVX2 prefill tiles, and with the AVX-512 ones where the CPU has AVX-512F).
func bothPaths(t *testing.T, f func(t *testing.T)) {
	prev, prev512 := simdOn, simd512
	defer func() { simdOn, simd512 = prev, prev512 }()
	type path struct{ simd, z bool }
	paths := []path{{false, false}}
	if haveSIMD {
		paths = append(paths, path{true, false})
	}
	if have512 {
		paths = append(paths, path{true, true})
	}
	for _, p := range paths {
		simdOn, simd512 = p.simd, p.z
		name := fmt.Sprintf("simd=%v", p.simd)
		if p.z {
			name += "/avx512"
		}
		t.Run(name, f)
	}
}

func close32(a, b float32, tol float64) bool {
	return math.Abs(float64(a)-float64(b)) <= tol*(1+math.Abs(float64(b)))
}

// TestKernelsAgainstReference checks every kernel, on both paths, against float64 references, over
// lengths with and without an 8-element tail.
func TestKernelsAgainstReference(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		for _, k := range []int{3, 8, 16, 37, 64, 100} {
			x := randVec(5 * k)
			m := randMat(11, k)
			y := make([]float32, 11)
			gemv(x[:k], m.W, k, 11, y)
			for j := range y {
				var ref float64
				for i := 0; i < k; i++ {
					ref += float64(x[i]) * float64(bf16(m.W[j*k+i]))
				}
				if !close32(y[j], float32(ref), 1e-5) {
					t.Fatalf("gemv k=%d: y[%d] = %v, want %v", k, j, y[j], ref)
				}
			}
			// dots and wsum over 9 slots with a row stride larger than the head.
			stride := k + 5
			kv := randVec(9 * stride)
			out := make([]float32, 9)
			dots(x[:k], kv, stride, 9, 0.5, out)
			acc := make([]float32, k)
			wsum(acc, out, kv, stride, 9)
			for s := 0; s < 9; s++ {
				var ref float64
				for i := 0; i < k; i++ {
					ref += float64(x[i]) * float64(kv[s*stride+i])
				}
				if !close32(out[s], float32(ref*0.5), 1e-5) {
					t.Fatalf("dots k=%d: out[%d] = %v, want %v", k, s, out[s], ref*0.5)
				}
			}
			for i := 0; i < k; i++ {
				var ref float64
				for s := 0; s < 9; s++ {
					ref += float64(out[s]) * float64(kv[s*stride+i])
				}
				if !close32(acc[i], float32(ref), 1e-5) {
					t.Fatalf("wsum k=%d: acc[%d] = %v, want %v", k, i, acc[i], ref)
				}
			}
		}
		for _, n := range []int{1, 7, 8, 33, 200} {
			row := make([]float32, n)
			for i := range row {
				row[i] = float32(i%23)*-4 + 3
			}
			row[n/2] = float32(math.Inf(-1))
			want := make([]float64, n)
			var wsum float64
			for i, v := range row {
				want[i] = math.Exp(float64(v - 3))
				wsum += want[i]
			}
			sum := expSub(row, 3)
			for i := range row {
				if math.Abs(float64(row[i])-want[i]) > 3e-7*want[i]+1e-38 {
					t.Fatalf("expSub n=%d: row[%d] = %v, want %v", n, i, row[i], want[i])
				}
			}
			if math.Abs(float64(sum)-wsum) > 1e-6*wsum {
				t.Fatalf("expSub n=%d: sum %v, want %v", n, sum, wsum)
			}
		}
	})
}

// TestSIMDMatchesGo compares the two paths on a whole forward pass of each fixture: logits agree to
// float32 rounding (the assembly fuses multiply and add).
func TestSIMDMatchesGo(t *testing.T) {
	if !haveSIMD {
		t.Skip("no AVX2/FMA on this CPU (or purego build): only the portable kernels exist")
	}
	prev := simdOn
	defer func() { simdOn = prev }()
	pool := NewPool(2)
	defer pool.Close()
	for _, name := range fixtures {
		m, ref := loadFixture(t, name)
		ws := NewWorkspace(pool)
		simdOn = false
		a, _ := prefillLogits(t, m, ws, ref.PromptIDs, 7)
		simdOn = true
		b, _ := prefillLogits(t, m, ws, ref.PromptIDs, 7)
		var num, den float64
		for i := range a {
			num = math.Max(num, math.Abs(float64(a[i]-b[i])))
			den = math.Max(den, math.Abs(float64(a[i])))
		}
		t.Logf("%s: max |simd - go| / max |logit| = %.2g", name, num/den)
		if num/den > 1e-5 {
			t.Errorf("%s: SIMD and Go logits differ by %.3g relative", name, num/den)
		}
	}
}
