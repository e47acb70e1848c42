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
// for a few row counts: bf16 tiles (no panel), float32 panels over the whole width (panel), and panels
// in column segments of 512 (seg).
func BenchmarkMatmulShapes(b *testing.B) {
	pool := NewPool(0)
	defer pool.Close()
	ws := NewWorkspace(pool)
	prev, prevSeg, prevLen := panelRows, segCols, segLen
	defer func() { panelRows, segCols, segLen = prev, prevSeg, prevLen }()
	for _, sh := range []struct {
		name    string
		out, in int
	}{{"qkv", 832, 576}, {"gateup", 3072, 576}, {"o", 576, 576}, {"down", 576, 1536}} {
		m := randMat(sh.out, sh.in)
		for _, rows := range []int{16, 32, 64, 128, 256} {
			x := randVec(rows * sh.in)
			y := make([]float32, rows*sh.out)
			for _, mode := range []string{"bf16", "panel", "seg", "seg256", "seg384", "seg768"} {
				b.Run(fmt.Sprintf("%s/rows=%d/%s", sh.name, rows, mode), func(b *testing.B) {
					switch mode {
					case "bf16":
						panelRows = 1 << 30
					case "panel":
						panelRows, segCols = 16, 1<<30
					default:
						n := 512
						fmt.Sscanf(mode, "seg%d", &n)
						panelRows, segCols, segLen = 16, 512, n
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
