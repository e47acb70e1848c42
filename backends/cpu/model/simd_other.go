//go:build !amd64 || purego

package model

import "unsafe"

// haveSIMD is false: this build has no assembly kernels, the portable Go ones always run.
var haveSIMD = false

var simdOn = false

// The functions below stand in for the assembly kernels of simd_amd64.s so that the dispatch code
// compiles everywhere; they are never called while simdOn is false, and compute what the Go kernels do.

func gemvBF16(x *float32, w *uint16, ldw, k8, rows int, y *float32) {
	n := 0
	if rows > 0 {
		n = (rows-1)*ldw + k8
	}
	gemvGo(unsafe.Slice(x, k8), unsafe.Slice(w, n), ldw, k8, rows, unsafe.Slice(y, rows))
}

func gemm4x3BF16(x *float32, ldx int, w *uint16, ldw, k8 int, y *float32, ldy int) {
	gemm4x3Go(unsafe.Slice(x, 3*ldx+k8), ldx, unsafe.Slice(w, 2*ldw+k8), ldw, k8, unsafe.Slice(y, 3*ldy+3), ldy)
}

var have512, simd512 = false, false

func packBF16(dst *float32, w *uint16, ldw, k8, n int) {
	packBF16Go(unsafe.Slice(dst, n*k8), unsafe.Slice(w, (n-1)*ldw+k8), ldw, k8, n)
}

func gemm4x3F32(x *float32, ldx int, p *float32, k8 int, y *float32, ldy int) {
	gemmPGo(unsafe.Slice(x, 3*ldx+k8), ldx, unsafe.Slice(p, 3*k8), 3, k8, unsafe.Slice(y, 3*ldy+3), ldy)
}

func gemm4x3F32A(x *float32, ldx int, p *float32, k8 int, acc *float32, flags int, y *float32, ldy int) {
	panic("model: gemm4x3F32A without the assembly kernels")
}

func gemm4x6F32Z(x *float32, ldx int, p *float32, k8 int, y *float32, ldy int) {
	gemmPGo(unsafe.Slice(x, 3*ldx+k8), ldx, unsafe.Slice(p, 6*k8), 6, k8, unsafe.Slice(y, 3*ldy+6), ldy)
}

func dotsF32(q, k *float32, stride, n, d8 int, scale float32, out *float32) {
	m := 0
	if n > 0 {
		m = (n-1)*stride + d8
	}
	dotsGo(unsafe.Slice(q, d8), unsafe.Slice(k, m), stride, n, d8, scale, unsafe.Slice(out, n))
}

func wsumF32(out, p, v *float32, stride, n, d8 int) {
	m := 0
	if n > 0 {
		m = (n-1)*stride + d8
	}
	wsumGo(unsafe.Slice(out, d8), unsafe.Slice(p, n), unsafe.Slice(v, m), stride, n, d8)
}

func expSubF32(row *float32, n8 int, mx float32) float32 {
	return expSubGo(unsafe.Slice(row, n8), mx)
}

func dots4x3F32(q *float32, ldq int, k *float32, ldk, d8 int, scale float32, out *float32, ldo int) {
	dots4x3Go(unsafe.Slice(q, 3*ldq+d8), ldq, unsafe.Slice(k, 2*ldk+d8), ldk, d8, scale, unsafe.Slice(out, 3*ldo+3), ldo)
}

func dots4xNF32(q *float32, ldq int, k *float32, ldk, d8, n3 int, scale float32, out *float32, ldo int) {
	for t := 0; t+3 <= n3; t += 3 {
		dots4x3F32(q, ldq, (*float32)(unsafe.Add(unsafe.Pointer(k), 4*t*ldk)), ldk, d8, scale, (*float32)(unsafe.Add(unsafe.Pointer(out), 4*t)), ldo)
	}
}

func wsum4F32(o0, o1, o2, o3, p *float32, ldp int, v *float32, stride, n, d8 int) {
	for a, o := range []*float32{o0, o1, o2, o3} {
		wsumF32(o, (*float32)(unsafe.Add(unsafe.Pointer(p), 4*a*ldp)), v, stride, n, d8)
	}
}

func wsum2F32(out0, out1, p0, p1, v *float32, stride, n, d8 int) {
	m := 0
	if n > 0 {
		m = (n-1)*stride + d8
	}
	wsum2Go(unsafe.Slice(out0, d8), unsafe.Slice(out1, d8), unsafe.Slice(p0, n), unsafe.Slice(p1, n), unsafe.Slice(v, m), stride, n, d8)
}

func maxF32(row *float32, n8 int) float32 { return maxGo(unsafe.Slice(row, n8)) }

func siluMulF32(g, u, a *float32, n8 int) {
	siluMulGo(unsafe.Slice(g, n8), unsafe.Slice(u, n8), unsafe.Slice(a, n8))
}

func gemmNx4BF16(x *float32, ldx int, w *uint16, ldw, k8 int, y *float32, ldy int, n int) {
	gemmNx4Go(unsafe.Slice(x, (n-1)*ldx+k8), ldx, unsafe.Slice(w, 3*ldw+k8), ldw, k8, unsafe.Slice(y, (n-1)*ldy+4), ldy, n)
}

func gemvQ8G(x *float32, q *int8, s *float32, ldq, nb, k8, groups int, y *float32) {
	panic("model: gemvQ8G without assembly")
}

func gemvQ81(x *float32, q *int8, s *float32, k8 int) float32 {
	panic("model: gemvQ81 without assembly")
}

func packQ8Row(dst *float32, q *int8, s *float32, k8, n int) {
	panic("model: packQ8Row without assembly")
}

func gemm4x3Q8(x *float32, ldx int, q *int8, ldq int, s0, s1, s2 *float32, k8 int, y *float32, ldy int) {
	panic("model: gemm4x3Q8 without assembly")
}

func gemvSegBF16(x *float32, w *uint16, ldw, k8, rows int, acc *float32, flags int, y *float32) {
	panic("model: gemvSegBF16 without assembly")
}

func gemm8x4BF16Z(x *float32, ldx int, w *uint16, ldw, k8 int, y *float32, ldy int) {
	panic("model: gemm8x4BF16Z without the AVX-512 kernels")
}
