package model

import (
	"math"
)

// Mat is a row-major [Rows][Cols] weight matrix stored as bfloat16 bit patterns (HF Linear layout: out x in).
type Mat struct {
	W          []uint16
	Rows, Cols int
}

// bf16 converts a bfloat16 bit pattern to float32.
func bf16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// rowBlock is the number of weight rows converted to float32 at a time.
const rowBlock = 4

// matmulJob computes Y[r][j] = sum_k X[r][k]*W[j][k] (+ bias[j]) for output rows j in a worker's range.
// Each dot product is accumulated sequentially in k order into its own accumulator, so a row's result
// does not depend on how many rows share the call or how the work is split.
type matmulJob struct {
	w    *Mat
	bias []float32
	x, y []float32
	rows int // number of input rows
	ldy  int // row stride of y
	buf  [][]float32
}

func (m *matmulJob) run(lo, hi, worker int) {
	cols := m.w.Cols
	wf := m.buf[worker][:rowBlock*cols]
	for j0 := lo; j0 < hi; j0 += rowBlock {
		nb := min(rowBlock, hi-j0)
		src := m.w.W[j0*cols : (j0+nb)*cols]
		if m.rows == 1 && j0+2*rowBlock <= hi {
			src = m.w.W[j0*cols : (j0+2*rowBlock)*cols]
			// One input row: eight weight rows at a time straight from bf16 (no float32 copy).
			a := dot1x8bf(m.x[:cols], src, cols)
			y := m.y[j0 : j0+8]
			copy(y, a[:])
			if m.bias != nil {
				for jj := range y {
					y[jj] += m.bias[j0+jj]
				}
			}
			j0 += rowBlock // the loop adds the other rowBlock
			continue
		}
		if m.rows == 1 && nb == rowBlock {
			// One input row: read the bf16 weights directly (no float32 copy).
			a := dot1x4bf(m.x[:cols], src[:cols], src[cols:2*cols], src[2*cols:3*cols], src[3*cols:4*cols])
			y := m.y[j0 : j0+4]
			copy(y, a[:])
			if m.bias != nil {
				for jj := range y {
					y[jj] += m.bias[j0+jj]
				}
			}
			continue
		}
		for i, h := range src {
			wf[i] = bf16(h)
		}
		if nb == rowBlock {
			w0, w1, w2, w3 := wf[:cols], wf[cols:2*cols], wf[2*cols:3*cols], wf[3*cols:4*cols]
			r := 0
			for ; r+1 < m.rows; r += 2 {
				x0 := m.x[r*cols : (r+1)*cols]
				x1 := m.x[(r+1)*cols : (r+2)*cols]
				a, b := dot2x4(x0, x1, w0, w1, w2, w3)
				y0 := m.y[r*m.ldy+j0 : r*m.ldy+j0+4]
				y1 := m.y[(r+1)*m.ldy+j0 : (r+1)*m.ldy+j0+4]
				copy(y0, a[:])
				copy(y1, b[:])
			}
			for ; r < m.rows; r++ {
				x0 := m.x[r*cols : (r+1)*cols]
				a := dot1x4(x0, w0, w1, w2, w3)
				copy(m.y[r*m.ldy+j0:r*m.ldy+j0+4], a[:])
			}
		} else {
			for jj := 0; jj < nb; jj++ {
				wr := wf[jj*cols : (jj+1)*cols]
				for r := 0; r < m.rows; r++ {
					m.y[r*m.ldy+j0+jj] = dot1(m.x[r*cols:(r+1)*cols], wr)
				}
			}
		}
		if m.bias != nil {
			for r := 0; r < m.rows; r++ {
				y := m.y[r*m.ldy+j0 : r*m.ldy+j0+nb]
				for jj := range y {
					y[jj] += m.bias[j0+jj]
				}
			}
		}
	}
}

// dot1 is a sequential dot product (the reference order every kernel reproduces).
func dot1(x, w []float32) float32 {
	w = w[:len(x)]
	var s float32
	for k, v := range x {
		s += v * w[k]
	}
	return s
}

func dot1x4(x, w0, w1, w2, w3 []float32) (out [4]float32) {
	n := len(x)
	w0, w1, w2, w3 = w0[:n], w1[:n], w2[:n], w3[:n]
	var s0, s1, s2, s3 float32
	for k, v := range x {
		s0 += v * w0[k]
		s1 += v * w1[k]
		s2 += v * w2[k]
		s3 += v * w3[k]
	}
	return [4]float32{s0, s1, s2, s3}
}

// dot1x4bf is dot1x4 over bf16 weights, with the same arithmetic (bf16 to float32 is exact).
func dot1x4bf(x []float32, w0, w1, w2, w3 []uint16) (out [4]float32) {
	n := len(x)
	w0, w1, w2, w3 = w0[:n], w1[:n], w2[:n], w3[:n]
	var s0, s1, s2, s3 float32
	for k, v := range x {
		s0 += v * math.Float32frombits(uint32(w0[k])<<16)
		s1 += v * math.Float32frombits(uint32(w1[k])<<16)
		s2 += v * math.Float32frombits(uint32(w2[k])<<16)
		s3 += v * math.Float32frombits(uint32(w3[k])<<16)
	}
	return [4]float32{s0, s1, s2, s3}
}

// dot1x8bf is eight sequential dot products of x with the consecutive bf16 rows of w (row length cols).
func dot1x8bf(x []float32, w []uint16, cols int) (out [8]float32) {
	n := len(x)
	w0, w1, w2, w3 := w[:n], w[cols:cols+n], w[2*cols:2*cols+n], w[3*cols:3*cols+n]
	w4, w5, w6, w7 := w[4*cols:4*cols+n], w[5*cols:5*cols+n], w[6*cols:6*cols+n], w[7*cols:7*cols+n]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	for k, v := range x {
		s0 += v * math.Float32frombits(uint32(w0[k])<<16)
		s1 += v * math.Float32frombits(uint32(w1[k])<<16)
		s2 += v * math.Float32frombits(uint32(w2[k])<<16)
		s3 += v * math.Float32frombits(uint32(w3[k])<<16)
		s4 += v * math.Float32frombits(uint32(w4[k])<<16)
		s5 += v * math.Float32frombits(uint32(w5[k])<<16)
		s6 += v * math.Float32frombits(uint32(w6[k])<<16)
		s7 += v * math.Float32frombits(uint32(w7[k])<<16)
	}
	return [8]float32{s0, s1, s2, s3, s4, s5, s6, s7}
}

func dot2x4(x0, x1, w0, w1, w2, w3 []float32) (a, b [4]float32) {
	n := len(x0)
	x1, w0, w1, w2, w3 = x1[:n], w0[:n], w1[:n], w2[:n], w3[:n]
	var s0, s1, s2, s3, t0, t1, t2, t3 float32
	for k := 0; k < n; k++ {
		u, v := x0[k], x1[k]
		c0, c1, c2, c3 := w0[k], w1[k], w2[k], w3[k]
		s0 += u * c0
		s1 += u * c1
		s2 += u * c2
		s3 += u * c3
		t0 += v * c0
		t1 += v * c1
		t2 += v * c2
		t3 += v * c3
	}
	return [4]float32{s0, s1, s2, s3}, [4]float32{t0, t1, t2, t3}
}

// expf is exp for float32 arguments <= 0 (softmax after max subtraction): range reduction to
// x = n*ln2 + r, |r| <= ln2/2, and a degree-7 Taylor polynomial; relative error below 2e-7.
func expf(x float32) float32 {
	if x < -87 {
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
