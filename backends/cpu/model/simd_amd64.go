//go:build !purego

package model

import (
	"math"
	"os"

	"golang.org/x/sys/cpu"
)

// haveSIMD reports whether this CPU runs the AVX2/FMA kernels of simd_amd64.s.
var haveSIMD = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// have512 reports whether this CPU (and OS) runs the AVX-512F kernel gemm4x6F32Z.
var have512 = haveSIMD && cpu.X86.HasAVX512F

// simd512 selects gemm4x6F32Z for prefill tiles (with simdOn) wherever the CPU has AVX-512F;
// SNAPEVAL_CPU_AVX512=0 turns it off. It passed the package's tests on an Intel Xeon with AVX-512 (the lent
// machine, 2026-12-03) and raised pp512 at 16 threads there from 1992 to 2194 tokens/s (2 threads: 556 vs 550,
// within noise); the tests run it, against gemv bit for bit, wherever the CPU has AVX-512F.
var simd512 = have512 && os.Getenv("SNAPEVAL_CPU_AVX512") != "0"

// simdOn selects the assembly kernels; SNAPEVAL_CPU_GENERIC=1 (or SetSIMD(false)) forces the portable Go ones.
var simdOn = haveSIMD && os.Getenv("SNAPEVAL_CPU_GENERIC") == ""

// expTab holds the constants of expSubF32, one 8-lane vector each (the layout is fixed by the assembly).
var expTab [13][8]float32

func init() {
	vals := []float32{-87, 1.4426950408889634, 0.5, 0.693145751953125, 1.428606765330187e-06,
		1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 1, math.Float32frombits(127), float32(math.Copysign(0, -1))}
	for i, v := range vals {
		for l := range expTab[i] {
			expTab[i][l] = v
		}
	}
}

//go:noescape
func gemvBF16(x *float32, w *uint16, ldw, k8, rows int, y *float32)

//go:noescape
func gemm4x3BF16(x *float32, ldx int, w *uint16, ldw, k8 int, y *float32, ldy int)

//go:noescape
func packBF16(dst *float32, w *uint16, ldw, k8, n int)

//go:noescape
func gemm4x3F32A(x *float32, ldx int, p *float32, k8 int, acc *float32, flags int, y *float32, ldy int)

//go:noescape
func gemm4x6F32Z(x *float32, ldx int, p *float32, k8 int, y *float32, ldy int)

//go:noescape
func gemm4x3F32(x *float32, ldx int, p *float32, k8 int, y *float32, ldy int)

//go:noescape
func dotsF32(q, k *float32, stride, n, d8 int, scale float32, out *float32)

//go:noescape
func wsumF32(out, p, v *float32, stride, n, d8 int)

//go:noescape
func expSubF32(row *float32, n8 int, mx float32) float32

//go:noescape
func dots4x3F32(q *float32, ldq int, k *float32, ldk, d8 int, scale float32, out *float32, ldo int)

//go:noescape
func wsum2F32(out0, out1, p0, p1, v *float32, stride, n, d8 int)

//go:noescape
func maxF32(row *float32, n8 int) float32

//go:noescape
func siluMulF32(gate, u, a *float32, n8 int)

//go:noescape
func dots4xNF32(q *float32, ldq int, k *float32, ldk, d8, n3 int, scale float32, out *float32, ldo int)

//go:noescape
func wsum4F32(o0, o1, o2, o3, p *float32, ldp int, v *float32, stride, n, d8 int)

//go:noescape
func gemmNx4BF16(x *float32, ldx int, w *uint16, ldw, k8 int, y *float32, ldy int, n int)

//go:noescape
func gemvQ8G(x *float32, q *int8, s *float32, ldq, nb, k8, groups int, y *float32)

//go:noescape
func gemvQ81(x *float32, q *int8, s *float32, k8 int) float32

//go:noescape
func packQ8Row(dst *float32, q *int8, s *float32, k8, n int)

//go:noescape
func gemm4x3Q8(x *float32, ldx int, q *int8, ldq int, s0, s1, s2 *float32, k8 int, y *float32, ldy int)

//go:noescape
func gemvSegBF16(x *float32, w *uint16, ldw, k8, rows int, acc *float32, flags int, y *float32)

//go:noescape
func gemm8x4BF16Z(x *float32, ldx int, w *uint16, ldw, k8 int, y *float32, ldy int)
