//go:build !purego

package perf

import "golang.org/x/sys/cpu"

//go:noescape
func sumAVX2(x *float32, n32 int) float32

// sum reads x with 32-float AVX2 loads where the CPU has them.
func sum(x []float32) float32 {
	n32 := len(x) &^ 31
	if !cpu.X86.HasAVX2 || n32 == 0 {
		return sumGo(x)
	}
	return sumAVX2(&x[0], n32) + sumGo(x[n32:])
}
