package model

import (
	"math"
)

// Mat is a row-major [Rows][Cols] weight matrix (HF Linear layout: out x in): bfloat16 bit patterns in W,
// or, quantized (Model.Int8), int8 weights in Q with their scales in S (int8.go) and W nil.
type Mat struct {
	W          []uint16
	Q          []int8
	S          []float32
	Rows, Cols int
}

// bf16 converts a bfloat16 bit pattern to float32.
func bf16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// SIMD reports whether the AVX2/FMA assembly kernels are in use (false: the portable Go kernels).
func SIMD() bool { return simdOn }

// SetSIMD switches between the assembly kernels (on, where the CPU has AVX2 and FMA) and the portable Go
// kernels, and returns the previous setting. It must not be called while a Forward runs. The environment
// variable SNAPEVAL_CPU_GENERIC=1 makes the portable kernels the default.
func SetSIMD(on bool) (prev bool) {
	prev = simdOn
	simdOn = on && haveSIMD
	return prev
}

// The kernels below share one accumulation order per dot product: eight lanes (lane l sums the terms
// k = l, l+8, ... of the first k8 = len &^ 7 terms in ascending k), reduced as ((l0+l4)+(l1+l5)) +
// ((l2+l6)+(l3+l7)), then the k8.. tail added one term at a time. A result therefore does not depend on
// how many rows share a call. The assembly kernels fuse multiply and add (FMA), the Go ones do not (unless
// the compiler fuses them, as with GOAMD64=v3), so the two paths differ in the last bits only.

func red8(a0, a1, a2, a3, a4, a5, a6, a7 float32) float32 {
	return ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7))
}

// dotBF8 is the 8-lane dot product of x[:k8] with bf16 weights w[:k8] (k8 a multiple of 8).
func dotBF8(x []float32, w []uint16, k8 int) float32 {
	var a0, a1, a2, a3, a4, a5, a6, a7 float32
	x, w = x[:k8], w[:k8]
	for k := 0; k+8 <= k8; k += 8 {
		xs, ws := x[k:k+8:k+8], w[k:k+8:k+8]
		a0 += xs[0] * bf16(ws[0])
		a1 += xs[1] * bf16(ws[1])
		a2 += xs[2] * bf16(ws[2])
		a3 += xs[3] * bf16(ws[3])
		a4 += xs[4] * bf16(ws[4])
		a5 += xs[5] * bf16(ws[5])
		a6 += xs[6] * bf16(ws[6])
		a7 += xs[7] * bf16(ws[7])
	}
	return red8(a0, a1, a2, a3, a4, a5, a6, a7)
}

func gemvGo(x []float32, w []uint16, ldw, k8, rows int, y []float32) {
	for j := 0; j < rows; j++ {
		y[j] = dotBF8(x, w[j*ldw:], k8)
	}
}

func gemm4x3Go(x []float32, ldx int, w []uint16, ldw, k8 int, y []float32, ldy int) {
	for r := 0; r < 4; r++ {
		for j := 0; j < 3; j++ {
			y[r*ldy+j] = dotBF8(x[r*ldx:], w[j*ldw:], k8)
		}
	}
}

func gemmNx4Go(x []float32, ldx int, w []uint16, ldw, k8 int, y []float32, ldy, n int) {
	for r := 0; r < n; r++ {
		for j := 0; j < 4; j++ {
			y[r*ldy+j] = dotBF8(x[r*ldx:], w[j*ldw:], k8)
		}
	}
}

func dotsGo(q, k []float32, stride, n, d8 int, scale float32, out []float32) {
	q = q[:d8]
	for s := 0; s < n; s++ {
		ks := k[s*stride : s*stride+d8]
		var a0, a1, a2, a3, a4, a5, a6, a7 float32
		for i := 0; i+8 <= d8; i += 8 {
			qs, kk := q[i:i+8:i+8], ks[i:i+8:i+8]
			a0 += qs[0] * kk[0]
			a1 += qs[1] * kk[1]
			a2 += qs[2] * kk[2]
			a3 += qs[3] * kk[3]
			a4 += qs[4] * kk[4]
			a5 += qs[5] * kk[5]
			a6 += qs[6] * kk[6]
			a7 += qs[7] * kk[7]
		}
		out[s] = red8(a0*scale, a1*scale, a2*scale, a3*scale, a4*scale, a5*scale, a6*scale, a7*scale)
	}
}

func wsumGo(out, p, v []float32, stride, n, d8 int) {
	out = out[:d8]
	for s := 0; s < n; s++ {
		ps := p[s]
		vs := v[s*stride : s*stride+d8]
		for i := range out {
			out[i] += ps * vs[i]
		}
	}
}

func expSubGo(row []float32, mx float32) float32 {
	var a [8]float32
	for i := 0; i+8 <= len(row); i += 8 {
		r := row[i : i+8 : i+8]
		for l := range r {
			e := expf(r[l] - mx)
			r[l] = e
			a[l] += e
		}
	}
	return red8(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
}

func dots4x3Go(q []float32, ldq int, k []float32, ldk, d8 int, scale float32, out []float32, ldo int) {
	for i := 0; i < 4; i++ {
		dotsGo(q[i*ldq:], k, ldk, 3, d8, scale, out[i*ldo:])
	}
}

func wsum2Go(out0, out1, p0, p1, v []float32, stride, n, d8 int) {
	wsumGo(out0, p0, v, stride, n, d8)
	wsumGo(out1, p1, v, stride, n, d8)
}

// gemv computes y[j] = x . w[j*ldw:][:cols] for j < rows (bf16 weights, cols = len(x)).
func gemv(x []float32, w []uint16, ldw, rows int, y []float32) {
	if rows <= 0 {
		return
	}
	cols := len(x)
	k8 := cols &^ 7
	_ = w[(rows-1)*ldw+cols-1]
	_ = y[rows-1]
	if k8 > 0 {
		if simdOn {
			gemvBF16(&x[0], &w[0], ldw, k8, rows, &y[0])
		} else {
			gemvGo(x, w, ldw, k8, rows, y[:rows])
		}
	} else {
		clear(y[:rows])
	}
	if k8 < cols {
		for j := 0; j < rows; j++ {
			s := y[j]
			wr := w[j*ldw : j*ldw+cols]
			for k := k8; k < cols; k++ {
				s += x[k] * bf16(wr[k])
			}
			y[j] = s
		}
	}
}

// gemm8x4 computes the 8x4 block y[r*ldy+j] = x[r*ldx:][:k8] . w[j*ldw:][:k8] with the AVX-512 kernel
// (tails are the caller's; only where simd512 is on).
func gemm8x4(x []float32, ldx int, w []uint16, ldw, k8 int, y []float32, ldy int) {
	_ = x[7*ldx+k8-1]
	_ = w[3*ldw+k8-1]
	_ = y[7*ldy+3]
	gemm8x4BF16Z(&x[0], ldx, &w[0], ldw, k8, &y[0], ldy)
}

// gemm4x3 computes the 4x3 block y[r*ldy+j] = x[r*ldx:][:k8] . w[j*ldw:][:k8] (tails are the caller's).
func gemm4x3(x []float32, ldx int, w []uint16, ldw, k8 int, y []float32, ldy int) {
	_ = x[3*ldx+k8-1]
	_ = w[2*ldw+k8-1]
	_ = y[3*ldy+2]
	if simdOn {
		gemm4x3BF16(&x[0], ldx, &w[0], ldw, k8, &y[0], ldy)
	} else {
		gemm4x3Go(x, ldx, w, ldw, k8, y, ldy)
	}
}

// gemmNx4 computes the n x 4 block y[r*ldy+j] = x[r*ldx:][:k8] . w[j*ldw:][:k8], r < n, for n = 2 or 3
// input rows (tails are the caller's): the small-batch tile, each weight row read once for the n rows.
func gemmNx4(x []float32, ldx int, w []uint16, ldw, k8 int, y []float32, ldy, n int) {
	_ = x[(n-1)*ldx+k8-1]
	_ = w[3*ldw+k8-1]
	_ = y[(n-1)*ldy+3]
	if n < 2 || n > 3 {
		panic("model: gemmNx4 takes 2 or 3 rows")
	}
	if simdOn {
		gemmNx4BF16(&x[0], ldx, &w[0], ldw, k8, &y[0], ldy, n)
	} else {
		gemmNx4Go(x, ldx, w, ldw, k8, y, ldy, n)
	}
}

// dots writes out[s] = (q . k[s*stride:][:len(q)]) * scale for s < n.
func dots(q, k []float32, stride, n int, scale float32, out []float32) {
	if n <= 0 {
		return
	}
	d := len(q)
	d8 := d &^ 7
	_ = k[(n-1)*stride+d-1]
	_ = out[n-1]
	if d8 > 0 {
		if simdOn {
			dotsF32(&q[0], &k[0], stride, n, d8, scale, &out[0])
		} else {
			dotsGo(q, k, stride, n, d8, scale, out)
		}
	} else {
		clear(out[:n])
	}
	if d8 < d {
		for s := 0; s < n; s++ {
			ks := k[s*stride : s*stride+d]
			t := out[s]
			for i := d8; i < d; i++ {
				t += q[i] * ks[i] * scale
			}
			out[s] = t
		}
	}
}

// wsum adds sum over s < n of p[s] * v[s*stride:][:len(out)] to out, slots in order.
func wsum(out, p, v []float32, stride, n int) {
	if n <= 0 {
		return
	}
	d := len(out)
	d8 := d &^ 7
	_ = v[(n-1)*stride+d-1]
	_ = p[n-1]
	if d8 > 0 {
		if simdOn {
			wsumF32(&out[0], &p[0], &v[0], stride, n, d8)
		} else {
			wsumGo(out, p, v, stride, n, d8)
		}
	}
	for i := d8; i < d; i++ {
		t := out[i]
		for s := 0; s < n; s++ {
			t += p[s] * v[s*stride+i]
		}
		out[i] = t
	}
}

// dots4x3 writes out[i*ldo+s] = (q[i*ldq:][:d] . k[s*ldk:][:d]) * scale for i < 4 and s < 3: the
// results of dots for four queries and three keys, bit for bit, with the keys loaded once.
func dots4x3(q []float32, ldq int, k []float32, ldk, d int, scale float32, out []float32, ldo int) {
	d8 := d &^ 7
	_ = q[3*ldq+d-1]
	_ = k[2*ldk+d-1]
	_ = out[3*ldo+2]
	if d8 > 0 {
		if simdOn {
			dots4x3F32(&q[0], ldq, &k[0], ldk, d8, scale, &out[0], ldo)
		} else {
			dots4x3Go(q, ldq, k, ldk, d8, scale, out, ldo)
		}
	} else {
		for i := 0; i < 4; i++ {
			clear(out[i*ldo : i*ldo+3])
		}
	}
	if d8 < d {
		for i := 0; i < 4; i++ {
			for s := 0; s < 3; s++ {
				qs, ks := q[i*ldq:i*ldq+d], k[s*ldk:s*ldk+d]
				t := out[i*ldo+s]
				for j := d8; j < d; j++ {
					t += qs[j] * ks[j] * scale
				}
				out[i*ldo+s] = t
			}
		}
	}
}

// dots4xN writes the scores of dots4x3 for the key triples t = 0, 3, ..., n3-3 (n3 a multiple of 3):
// out[i*ldo+t+s] = (q[i*ldq:][:d] . k[(t+s)*ldk:][:d]) * scale for i < 4, bit for bit those of dots. It
// may also write out[i*ldo+n3] (each row needs room for one more float); the caller ignores it or writes
// it later. With head sizes that are multiples of 8 the assembly path runs all triples in one call and
// reduces each triple's 12 sums together.
func dots4xN(q []float32, ldq int, k []float32, ldk, d, n3 int, scale float32, out []float32, ldo int) {
	if n3 <= 0 {
		return
	}
	if simdOn && d >= 8 && d&7 == 0 {
		_ = q[3*ldq+d-1]
		_ = k[(n3-1)*ldk+d-1]
		_ = out[3*ldo+n3]
		dots4xNF32(&q[0], ldq, &k[0], ldk, d, n3, scale, &out[0], ldo)
		return
	}
	for t := 0; t+3 <= n3; t += 3 {
		dots4x3(q, ldq, k[t*ldk:], ldk, d, scale, out[t:], ldo)
	}
}

// wsum2 is wsum for two outputs over the same values (bit for bit), reading each value row once.
func wsum2(out0, out1, p0, p1, v []float32, stride, n int) {
	if n <= 0 {
		return
	}
	d := len(out0)
	d8 := d &^ 7
	_ = out1[d-1]
	_ = v[(n-1)*stride+d-1]
	_ = p0[n-1]
	_ = p1[n-1]
	if d8 > 0 {
		if simdOn {
			wsum2F32(&out0[0], &out1[0], &p0[0], &p1[0], &v[0], stride, n, d8)
		} else {
			wsum2Go(out0, out1, p0, p1, v, stride, n, d8)
		}
	}
	for i := d8; i < d; i++ {
		t0, t1 := out0[i], out1[i]
		for s := 0; s < n; s++ {
			t0 += p0[s] * v[s*stride+i]
			t1 += p1[s] * v[s*stride+i]
		}
		out0[i], out1[i] = t0, t1
	}
}

// wsum4 is wsum for four outputs over the same values (bit for bit), with weights p[a*ldp:][:n] for
// output a, reading each value row once.
func wsum4(o0, o1, o2, o3, p []float32, ldp int, v []float32, stride, n int) {
	if n <= 0 {
		return
	}
	d := len(o0)
	if !simdOn || d < 8 || d&7 != 0 {
		wsum2(o0, o1, p[:n], p[ldp:ldp+n], v, stride, n)
		wsum2(o2, o3, p[2*ldp:2*ldp+n], p[3*ldp:3*ldp+n], v, stride, n)
		return
	}
	_ = o1[d-1]
	_ = o2[d-1]
	_ = o3[d-1]
	_ = p[3*ldp+n-1]
	_ = v[(n-1)*stride+d-1]
	wsum4F32(&o0[0], &o1[0], &o2[0], &o3[0], &p[0], ldp, &v[0], stride, n, d)
}

func maxGo(row []float32) float32 {
	m := row[0]
	for _, v := range row {
		m = max(m, v)
	}
	return m
}

func siluMulGo(g, u, a []float32) {
	u, a = u[:len(g)], a[:len(g)]
	for k, x := range g {
		a[k] = silu(x) * u[k]
	}
}

// rowMax is the largest of row (len(row) > 0, no NaN; -Inf allowed).
func rowMax(row []float32) float32 {
	n8 := len(row) &^ 7
	if n8 == 0 || !simdOn {
		return maxGo(row)
	}
	m := maxF32(&row[0], n8)
	for _, v := range row[n8:] {
		m = max(m, v)
	}
	return m
}

// siluMul writes a[k] = silu(g[k]) * u[k] (the SwiGLU activation).
func siluMul(g, u, a []float32) {
	n := len(g)
	u, a = u[:n], a[:n]
	n8 := n &^ 7
	if n8 > 0 && simdOn {
		siluMulF32(&g[0], &u[0], &a[0], n8)
	} else {
		n8 = 0
	}
	siluMulGo(g[n8:], u[n8:], a[n8:])
}

// expSub replaces row[i] by expf(row[i]-mx) and returns their sum.
func expSub(row []float32, mx float32) float32 {
	n8 := len(row) &^ 7
	var sum float32
	if n8 > 0 {
		if simdOn {
			sum = expSubF32(&row[0], n8, mx)
		} else {
			sum = expSubGo(row[:n8], mx)
		}
	}
	for i := n8; i < len(row); i++ {
		e := expf(row[i] - mx)
		row[i] = e
		sum += e
	}
	return sum
}

// jBlock is the number of weight rows a worker runs through all input rows at a time (a multiple of 3,
// 48 x 576 bf16 = 55 KB, so that the block stays in L2 while the input rows stream past).
const jBlock = 48

// panelRows is the number of input rows from which matmulRows (assembly path) widens each block of
// weight rows to float32 once, into the worker's panel, instead of in every 4x3 tile: the widening costs
// about half a tile's time per 3 weight rows, the tiles then run without it (gemm4x3F32). Matrices wider
// than segCols run in column segments of segLen (gemm4x3F32A, accumulators kept between segments): a
// whole-width tile of a 1536-column matrix from the panel (4 input rows and 3 float32 weight rows, 42 KB)
// does not fit a 32 KB L1 and was slower than the bf16 tile. Both measured on the 2-vCPU AMD EPYC
// (BenchmarkMatmulShapes, BENCH.md). Variables so that tests and benchmarks can change them.
var panelRows, segCols, segLen = 48, 1024, 512

// panelLen is the length of the panel buffer that matmulRows needs for matrices of cols columns: jBlock
// widened rows and the accumulators of jBlock/3 tiles.
func panelLen(cols int) int { return jBlock*(cols&^7) + jBlock/3*96 }

// packBF16Go is packBF16 in Go: dst[(s*n+j)*8+l] = bf16(w[j*ldw+8*s+l]) for j < n, 8*s+l < k8.
func packBF16Go(dst []float32, w []uint16, ldw, k8, n int) {
	dst = dst[:n*k8]
	for j := 0; j < n; j++ {
		wr := w[j*ldw : j*ldw+k8]
		for k := 0; k < k8; k += 8 {
			o := n*k + 8*j
			d, ws := dst[o:o+8:o+8], wr[k:k+8:k+8]
			for l := range d {
				d[l] = bf16(ws[l])
			}
		}
	}
}

// gemmPGo is gemm4x3F32 (n = 3) and gemm4x6F32Z (n = 6) in Go: the 4 x n block of dot products of x's
// rows with the n weight rows of a panel packed by packBF16Go, in the shared order (the sums of gemm4x3Go).
func gemmPGo(x []float32, ldx int, p []float32, n, k8 int, y []float32, ldy int) {
	p = p[:n*k8]
	for r := 0; r < 4; r++ {
		xr := x[r*ldx : r*ldx+k8]
		for j := 0; j < n; j++ {
			var a [8]float32
			for k := 0; k < k8; k += 8 {
				o := n*k + 8*j
				xs, ps := xr[k:k+8:k+8], p[o:o+8:o+8]
				for l := range a {
					a[l] += xs[l] * ps[l]
				}
			}
			y[r*ldy+j] = red8(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
		}
	}
}

// packRows widens weight rows w[j*ldw:][:k8], j < n, into p (packBF16's layout).
func packRows(p []float32, w []uint16, ldw, k8, n int) {
	_ = p[n*k8-1]
	_ = w[(n-1)*ldw+k8-1]
	if simdOn {
		packBF16(&p[0], &w[0], ldw, k8, n)
	} else {
		packBF16Go(p, w, ldw, k8, n)
	}
}

// gemm4x3P is gemm4x3 with the three weight rows taken from a panel packed by packRows (bit-identical).
func gemm4x3P(x []float32, ldx int, p []float32, k8 int, y []float32, ldy int) {
	_ = x[3*ldx+k8-1]
	_ = p[3*k8-1]
	_ = y[3*ldy+2]
	if simdOn {
		gemm4x3F32(&x[0], ldx, &p[0], k8, &y[0], ldy)
	} else {
		gemmPGo(x, ldx, p, 3, k8, y, ldy)
	}
}

// gemm4x3A is gemm4x3F32A (assembly path only) over columns [0, kn) of x and of the panel p, with the
// accumulators in acc (flags: 1 start from acc, 2 reduce into y).
func gemm4x3A(x []float32, ldx int, p []float32, kn int, acc []float32, flags int, y []float32, ldy int) {
	_ = x[3*ldx+kn-1]
	_ = p[3*kn-1]
	_ = acc[95]
	_ = y[3*ldy+2]
	gemm4x3F32A(&x[0], ldx, &p[0], kn, &acc[0], flags, &y[0], ldy)
}

// gemm4x6P is the 4x6 block of six weight rows packed by packRows (n = 6), bit-identical to two
// gemm4x3P; AVX-512 where simd512 is on.
func gemm4x6P(x []float32, ldx int, p []float32, k8 int, y []float32, ldy int) {
	_ = x[3*ldx+k8-1]
	_ = p[6*k8-1]
	_ = y[3*ldy+5]
	if simdOn && simd512 {
		gemm4x6F32Z(&x[0], ldx, &p[0], k8, &y[0], ldy)
	} else {
		gemmPGo(x, ldx, p, 6, k8, y, ldy)
	}
}

// matmulJob computes Y[r][j] = sum_k X[r][k]*W[j][k] (+ bias[j]) for output rows j in a worker's range.
// Every dot product follows the shared order above, so a row's result does not depend on how many rows
// share the call or how the work is split.
type matmulJob struct {
	w      *Mat
	bias   []float32
	x, y   []float32
	rows   int // number of input rows
	ldy    int // row stride of y
	panels [][]float32
}

func (m *matmulJob) run(lo, hi, worker int) {
	var panel []float32
	if worker < len(m.panels) {
		panel = m.panels[worker]
	}
	matmulRows(m.w, m.bias, m.x, m.rows, m.y, m.ldy, lo, hi, panel)
}

// matmulRows computes output rows [lo, hi) of y = x W^T (+ bias) for the rows input rows of x (row
// stride W.Cols) into y (row stride ldy). panel, when it has room for panelLen(W.Cols) values and the
// assembly kernels are on, is the calling worker's scratch for weight rows widened to float32 (used when
// rows >= panelRows: 4x3 tiles, 4x6 with AVX-512, column segments beyond segCols); the results are the
// same bits with or without it, on every path.
func matmulRows(w *Mat, bias, x []float32, rows int, y []float32, ldy, lo, hi int, panel []float32) {
	if w.Q != nil {
		matmulRowsQ8(w, bias, x, rows, y, ldy, lo, hi, panel)
		return
	}
	cols := w.Cols
	k8 := cols &^ 7
	W := w.W
	usePanel := simdOn && rows >= panelRows && k8 > 0 && len(panel) >= panelLen(cols)
	seg := usePanel && k8 > segCols
	if rows == 1 || k8 == 0 {
		for r := 0; r < rows; r++ {
			gemv(x[r*cols:(r+1)*cols], W[lo*cols:], cols, hi-lo, y[r*ldy+lo:r*ldy+hi])
		}
	} else {
		for j0 := lo; j0 < hi; j0 += jBlock {
			j1 := min(j0+jBlock, hi)
			n3 := j0 + (j1-j0)/3*3
			n6 := j0 // [j0, n6) in tiles of 6 rows (AVX-512), [n6, n3) of 3
			if usePanel && simd512 && !seg {
				n6 = j0 + (j1-j0)/6*6
			}
			if usePanel {
				for j := j0; j < n6; j += 6 {
					packRows(panel[(j-j0)*k8:], W[j*cols:], cols, k8, 6)
				}
				for j := n6; j < n3; j += 3 {
					packRows(panel[(j-j0)*k8:], W[j*cols:], cols, k8, 3)
				}
			}
			r := 0
			// Eight rows at a time with AVX-512 (each weight row widened once for eight input rows).
			if simdOn && simd512 && !usePanel {
				n4 := j0 + (j1-j0)/4*4
				for ; r+8 <= rows; r += 8 {
					for j := j0; j < n4; j += 4 {
						gemm8x4(x[r*cols:], cols, W[j*cols:], cols, k8, y[r*ldy+j:], ldy)
					}
					addColTail(x, W, cols, k8, r, r+8, j0, n4, y, ldy)
					for rr := r; rr < r+8 && n4 < j1; rr++ {
						gemv(x[rr*cols:(rr+1)*cols], W[n4*cols:], cols, j1-n4, y[rr*ldy+n4:rr*ldy+j1])
					}
				}
			}
			for ; r+4 <= rows; r += 4 {
				if seg {
					acc := panel[jBlock*k8:]
					for k0 := 0; k0 < k8; k0 += segLen {
						k1 := min(k0+segLen, k8)
						flags := 0
						if k0 > 0 {
							flags |= 1
						}
						if k1 == k8 {
							flags |= 2
						}
						for j := j0; j < n3; j += 3 {
							gemm4x3A(x[r*cols+k0:], cols, panel[(j-j0)*k8+3*k0:], k1-k0, acc[(j-j0)*32:], flags, y[r*ldy+j:], ldy)
						}
					}
				} else if usePanel {
					for j := j0; j < n6; j += 6 {
						gemm4x6P(x[r*cols:], cols, panel[(j-j0)*k8:], k8, y[r*ldy+j:], ldy)
					}
					for j := n6; j < n3; j += 3 {
						gemm4x3P(x[r*cols:], cols, panel[(j-j0)*k8:], k8, y[r*ldy+j:], ldy)
					}
				} else {
					for j := j0; j < n3; j += 3 {
						gemm4x3(x[r*cols:], cols, W[j*cols:], cols, k8, y[r*ldy+j:], ldy)
					}
				}
				addColTail(x, W, cols, k8, r, r+4, j0, n3, y, ldy)
				for rr := r; rr < r+4 && n3 < j1; rr++ {
					gemv(x[rr*cols:(rr+1)*cols], W[n3*cols:], cols, j1-n3, y[rr*ldy+n3:rr*ldy+j1])
				}
			}
			// 2 or 3 rows left: n x 4 tiles, each weight row widened once for all of them.
			if n := rows - r; n >= 2 {
				n4 := j0 + (j1-j0)/4*4
				for j := j0; j < n4; j += 4 {
					gemmNx4(x[r*cols:], cols, W[j*cols:], cols, k8, y[r*ldy+j:], ldy, n)
				}
				addColTail(x, W, cols, k8, r, rows, j0, n4, y, ldy)
				for rr := r; rr < rows && n4 < j1; rr++ {
					gemv(x[rr*cols:(rr+1)*cols], W[n4*cols:], cols, j1-n4, y[rr*ldy+n4:rr*ldy+j1])
				}
				r = rows
			}
			for ; r < rows; r++ {
				gemv(x[r*cols:(r+1)*cols], W[j0*cols:], cols, j1-j0, y[r*ldy+j0:r*ldy+j1])
			}
		}
	}
	if bias != nil {
		for r := 0; r < rows; r++ {
			yr := y[r*ldy+lo : r*ldy+hi]
			for jj := range yr {
				yr[jj] += bias[lo+jj]
			}
		}
	}
}

// expf is exp for float32 arguments <= 0 (softmax after max subtraction): range reduction to
// x = n*ln2 + r, |r| <= ln2/2, and a degree-7 Taylor polynomial; relative error below 2e-7.
func expf(x float32) float32 {
	if !(x >= -87) { // also NaN and -Inf
		return 0
	}
	const log2e = 1.4426950408889634
	const ln2hi = 0.693145751953125
	const ln2lo = 1.428606765330187e-06
	n := float32(math.Floor(float64(x*log2e + 0.5)))
	r := x - n*ln2hi - n*ln2lo
	p := float32(1.0 / 5040)
	p = p*r + 1.0/720
	p = p*r + 1.0/120
	p = p*r + 1.0/24
	p = p*r + 1.0/6
	p = p*r + 0.5
	p = p*r + 1
	p = p*r + 1
	return p * math.Float32frombits(uint32(int32(n)+127)<<23)
}

// silu is x * sigmoid(x), with expf of -|x| so that the argument is never positive.
func silu(x float32) float32 {
	if x >= 0 {
		return x / (1 + expf(-x))
	}
	e := expf(x)
	return x * e / (1 + e)
}

// addColTail adds to y[rr*ldy+j] the columns [k8, cols) that the 8-lane tiles leave out, for the activation
// rows [r0, r1) and the weight rows [j0, j1), in the order gemv uses for them.
func addColTail(x []float32, W []uint16, cols, k8, r0, r1, j0, j1 int, y []float32, ldy int) {
	if k8 >= cols {
		return
	}
	for rr := r0; rr < r1; rr++ {
		xr := x[rr*cols : (rr+1)*cols]
		for j := j0; j < j1; j++ {
			s := y[rr*ldy+j]
			wr := W[j*cols : (j+1)*cols]
			for k := k8; k < cols; k++ {
				s += xr[k] * bf16(wr[k])
			}
			y[rr*ldy+j] = s
		}
	}
}

// Scores fills out[i*ldo+t] = scale * (q_i · k_t) for the nq query rows q_i = q[i*ldq:][:d] and the n key
// rows k_t = k[t*ldk:][:d], with the engine's float32 FMA kernels (four queries over a run of keys per
// call). It serves SnapKV's selection scores (compress.Scratch.Scores); each result has the bits of dots.
func Scores(q []float32, ldq, nq int, k []float32, ldk, d, n int, scale float32, out []float32, ldo int) {
	if nq <= 0 || n <= 0 {
		return
	}
	// dots4xN may write one float past its last key triple; keep that float inside the row (the tail
	// below overwrites it) by leaving at least one key to the tail.
	n3 := n - n%3
	if n3 == n {
		n3 -= 3
	}
	i := 0
	for ; i+4 <= nq; i += 4 {
		dots4xN(q[i*ldq:], ldq, k, ldk, d, n3, scale, out[i*ldo:], ldo)
		for ii := i; ii < i+4 && n3 < n; ii++ {
			dots(q[ii*ldq:ii*ldq+d], k[n3*ldk:], ldk, n-n3, scale, out[ii*ldo+n3:ii*ldo+n])
		}
	}
	for ; i < nq; i++ {
		dots(q[i*ldq:i*ldq+d], k, ldk, n, scale, out[i*ldo:i*ldo+n])
	}
}
