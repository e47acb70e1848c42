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
