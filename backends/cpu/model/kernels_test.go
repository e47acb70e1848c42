package model

import (
	"fmt"
	"math"
	"syscall"
	"testing"
)

func randMat(rows, cols int) Mat {
	w := make([]uint16, rows*cols)
	s := uint32(1)
	for i := range w {
		s = s*1664525 + 1013904223
		w[i] = uint16(math.Float32bits(float32(int32(s>>8)%1000)/1000) >> 16)
	}
	return Mat{W: w, Rows: rows, Cols: cols}
}

func randVec(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32((i*37)%101-50) / 50
	}
	return x
}

// TestMatmulMatchesReference checks every row/column/bias/tail combination against a float64 reference
// and that each output row is bit-identical whatever the number of rows in the call.
func TestMatmulMatchesReference(t *testing.T) {
	bothPaths(t, testMatmulMatchesReference)
	for _, seg := range []int{1 << 30, 16} {
		restore := panelAlways(seg)
		t.Run(fmt.Sprintf("panel/seg=%d", seg), func(t *testing.T) { bothPaths(t, testMatmulMatchesReference) })
		restore()
	}
}

// panelAlways makes matmulRows use float32 panels from 4 input rows, in column segments of seg (a
// multiple of 8) for wider matrices; call the function it returns to restore the thresholds.
func panelAlways(seg int) (restore func()) {
	r, c, l := panelRows, segCols, segLen
	panelRows, segCols, segLen = 4, seg, seg
	return func() { panelRows, segCols, segLen = r, c, l }
}

// TestForwardPanelBits checks that chunked prefills of the fixtures give the same logits, bit for bit,
// with the float32 panels (from 4 rows on) and without them, on every kernel path.
func TestForwardPanelBits(t *testing.T) {
	pool := NewPool(3)
	defer pool.Close()
	bothPaths(t, func(t *testing.T) {
		for _, name := range fixtures {
			m, ref := loadFixture(t, name)
			ws := NewWorkspace(pool)
			want, _ := prefillLogits(t, m, ws, ref.PromptIDs, 13)
			for _, seg := range []int{1 << 30, 16} {
				restore := panelAlways(seg)
				got, _ := prefillLogits(t, m, ws, ref.PromptIDs, 13)
				restore()
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%s: logit %d = %v with panels (segments of %d), %v without", name, i, got[i], seg, want[i])
					}
				}
			}
		}
	})
}

func testMatmulMatchesReference(t *testing.T) {
	pool := NewPool(3)
	defer pool.Close()
	ws := NewWorkspace(pool)
	for _, tc := range []struct{ rows, out, in int }{{1, 7, 5}, {2, 8, 16}, {3, 13, 33}, {5, 64, 64}, {8, 9, 100}, {9, 101, 64}, {4, 50, 576}, {16, 50, 576}, {19, 101, 37}, {21, 49, 1536}, {17, 5, 100}} {
		t.Run(fmt.Sprintf("%dx%dx%d", tc.rows, tc.out, tc.in), func(t *testing.T) {
			m := randMat(tc.out, tc.in)
			x := randVec(tc.rows * tc.in)
			bias := randVec(tc.out)
			y := make([]float32, tc.rows*tc.out)
			ws.matmul(y, tc.out, x, tc.rows, &m, bias)
			for r := 0; r < tc.rows; r++ {
				single := make([]float32, tc.out)
				ws.matmul(single, tc.out, x[r*tc.in:(r+1)*tc.in], 1, &m, bias)
				for j := 0; j < tc.out; j++ {
					var ref float64
					for k := 0; k < tc.in; k++ {
						ref += float64(x[r*tc.in+k]) * float64(bf16(m.W[j*tc.in+k]))
					}
					ref += float64(bias[j])
					got := y[r*tc.out+j]
					if math.Abs(float64(got)-ref) > 1e-4*(1+math.Abs(ref)) {
						t.Fatalf("y[%d][%d] = %v, want %v", r, j, got, ref)
					}
					if got != single[j] {
						t.Fatalf("y[%d][%d] = %v in a batch of %d, %v alone", r, j, got, tc.rows, single[j])
					}
				}
			}
		})
	}
}

// TestPanelKernelsMatchGemv checks, on both paths, that the 4x3 tile from a float32 panel (pack3,
// gemm4x3P) gives the bits of gemm4x3 on the bf16 rows and of gemv, and that matmulRows gives the same
// bits with and without a panel, for odd strides, ranges, tails and row counts.
func TestPanelKernelsMatchGemv(t *testing.T) {
	for _, seg := range []int{1 << 30, 16, 24} {
		restore := panelAlways(seg)
		t.Run(fmt.Sprintf("seg=%d", seg), testPanelKernelsMatchGemv)
		restore()
	}
}

func testPanelKernelsMatchGemv(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		for _, k8 := range []int{8, 16, 72, 576, 1536} {
			ldw, ldx, ldy := k8+5, k8+3, 7
			m := randMat(3, ldw)
			x := randVec(4 * ldx)
			p := make([]float32, 3*k8)
			packRows(p, m.W, ldw, k8, 3)
			got := make([]float32, 4*ldy)
			gemm4x3P(x, ldx, p, k8, got, ldy)
			blk := make([]float32, 4*ldy)
			gemm4x3(x, ldx, m.W, ldw, k8, blk, ldy)
			for r := 0; r < 4; r++ {
				want := make([]float32, 3)
				gemv(x[r*ldx:r*ldx+k8], m.W, ldw, 3, want)
				for j := range want {
					if g := got[r*ldy+j]; g != want[j] || g != blk[r*ldy+j] {
						t.Fatalf("k8=%d: gemm4x3P[%d][%d] = %v, gemm4x3 %v, gemv %v", k8, r, j, g, blk[r*ldy+j], want[j])
					}
				}
			}
		}
		if !simdOn || simd512 { // the 4x6 tile runs only on those paths
			for _, k8 := range []int{8, 72, 576, 1536} {
				ldw, ldx, ldy := k8+5, k8+3, 9
				m := randMat(6, ldw)
				x := randVec(4 * ldx)
				p := make([]float32, 6*k8)
				packRows(p, m.W, ldw, k8, 6)
				got := make([]float32, 4*ldy)
				gemm4x6P(x, ldx, p, k8, got, ldy)
				for r := 0; r < 4; r++ {
					want := make([]float32, 6)
					gemv(x[r*ldx:r*ldx+k8], m.W, ldw, 6, want)
					for j := range want {
						if g := got[r*ldy+j]; g != want[j] {
							t.Fatalf("k8=%d: gemm4x6P[%d][%d] = %v, gemv %v", k8, r, j, g, want[j])
						}
					}
				}
			}
		}
		for _, tc := range []struct{ rows, out, in, lo, hi int }{{16, 50, 576, 0, 50}, {23, 101, 37, 5, 100}, {17, 98, 1536, 1, 98}, {32, 7, 64, 2, 7}, {20, 60, 576, 0, 60}, {16, 101, 100, 3, 101}} {
			m := randMat(tc.out, tc.in)
			x := randVec(tc.rows * tc.in)
			bias := randVec(tc.out)
			a := make([]float32, tc.rows*tc.out)
			b := make([]float32, tc.rows*tc.out)
			matmulRows(&m, bias, x, tc.rows, a, tc.out, tc.lo, tc.hi, nil)
			matmulRows(&m, bias, x, tc.rows, b, tc.out, tc.lo, tc.hi, make([]float32, panelLen(tc.in)))
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("%+v: y[%d] = %v with a panel, %v without", tc, i, b[i], a[i])
				}
			}
		}
	})
}

func TestExpf(t *testing.T) {
	for x := float32(-87); x <= 0; x += 0.01 {
		got, want := float64(expf(x)), math.Exp(float64(x))
		if math.Abs(got-want) > 3e-7*want+1e-38 {
			t.Fatalf("expf(%v) = %v, want %v", x, got, want)
		}
	}
}

func BenchmarkMatmul(b *testing.B) {
	pool := NewPool(0)
	defer pool.Close()
	ws := NewWorkspace(pool)
	m := randMat(1536*2, 576)
	for _, rows := range []int{1, 8, 16, 64, 256} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			x := randVec(rows * 576)
			y := make([]float32, rows*m.Rows)
			var ru0, ru1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			for i := 0; i < b.N; i++ {
				ws.matmul(y, m.Rows, x, rows, &m, nil)
			}
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			cpu := float64(ru1.Utime.Nano()-ru0.Utime.Nano()+ru1.Stime.Nano()-ru0.Stime.Nano()) / 1e9
			b.ReportMetric(float64(b.N)*float64(rows*m.Rows*m.Cols)*2/cpu/1e9, "GFLOP/cpu-s")
			b.ReportMetric(float64(b.N)*float64(rows*m.Rows*m.Cols)*2/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
