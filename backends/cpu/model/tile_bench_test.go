package model

import (
	"fmt"
	"testing"
)

// BenchmarkTile runs one 4x3 tile (k8 columns) on hot data: the kernels' ceiling, GFLOP/s of one core.
func BenchmarkTile(b *testing.B) {
	for _, k8 := range []int{576, 1536} {
		m := randMat(3, k8)
		x := randVec(4 * k8)
		p := make([]float32, 3*k8)
		packRows(p, m.W, k8, k8, 3)
		y := make([]float32, 12)
		flops := float64(2 * 12 * k8)
		b.Run(fmt.Sprintf("bf16/k=%d", k8), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				gemm4x3(x, k8, m.W, k8, k8, y, 3)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("panel/k=%d", k8), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				gemm4x3P(x, k8, p, k8, y, 3)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("pack/k=%d", k8), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				packRows(p, m.W, k8, k8, 3)
			}
		})
	}
}

// BenchmarkMatmulShapes runs SmolLM2-135M's prefill matmuls (q|k|v, gate|up, o_proj, down_proj) on the pool
// for a few row counts, with the float32 panels (panel=on) and without (panel=off, the bf16 tiles).
func BenchmarkMatmulShapes(b *testing.B) {
	pool := NewPool(0)
	defer pool.Close()
	ws := NewWorkspace(pool)
	prev, prevCols := panelRows, panelMaxCols
	defer func() { panelRows, panelMaxCols = prev, prevCols }()
	for _, sh := range []struct {
		name    string
		out, in int
	}{{"qkv", 832, 576}, {"gateup", 3072, 576}, {"o", 576, 576}, {"down", 576, 1536}} {
		m := randMat(sh.out, sh.in)
		for _, rows := range []int{16, 32, 64, 128, 256} {
			x := randVec(rows * sh.in)
			y := make([]float32, rows*sh.out)
			for _, on := range []bool{false, true} {
				b.Run(fmt.Sprintf("%s/rows=%d/panel=%v", sh.name, rows, on), func(b *testing.B) {
					panelRows, panelMaxCols = 1<<30, 1<<30
					if on {
						panelRows = 16
					}
					for i := 0; i < b.N; i++ {
						ws.matmul(y, sh.out, x, rows, &m, nil)
					}
					b.ReportMetric(float64(b.N)*float64(rows*sh.out*sh.in)*2/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}
