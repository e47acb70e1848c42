package model

import (
	"fmt"
	"math"
)

// Int8 weights (an option; bf16 is the default).
//
// A quantized matrix keeps one int8 per weight and one float32 scale per row and block of q8Block
// columns (symmetric, like llama.cpp's Q8_0): s = max|w| / 127 over the block, q = round(w / s). Every
// kernel computes with the dequantized weight w' = float32(q) * s, rounded to float32, in the shared
// accumulation order of the bf16 kernels (kernels.go), so a result does not depend on how many rows share a
// call here either. The scales are stored by groups of eight rows: the scale of row r and block b is
// S[((r/8)*nb + b)*8 + r%8] with nb = ceil(Cols/q8Block), so that the eight rows of a kernel's group read
// their scales from one 32-byte line.

// q8Block is the number of columns that share a scale.
const q8Block = 32

// q8Blocks is the number of scale blocks of a row of cols columns.
func q8Blocks(cols int) int { return (cols + q8Block - 1) / q8Block }

// quantizeMat returns m (bf16) quantized to int8; an int8 m is returned as it is.
func quantizeMat(m Mat) Mat {
	if m.Q != nil {
		return m
	}
	nb := q8Blocks(m.Cols)
	groups := (m.Rows + 7) / 8
	out := Mat{Rows: m.Rows, Cols: m.Cols, Q: make([]int8, m.Rows*m.Cols), S: make([]float32, groups*nb*8)}
	for r := 0; r < m.Rows; r++ {
		w := m.W[r*m.Cols : (r+1)*m.Cols]
		q := out.Q[r*m.Cols : (r+1)*m.Cols]
		for b := 0; b < nb; b++ {
			k0, k1 := b*q8Block, min((b+1)*q8Block, m.Cols)
			var mx float32
			for _, h := range w[k0:k1] {
				mx = max(mx, float32(math.Abs(float64(bf16(h)))))
			}
			s := mx / 127
			out.S[((r>>3)*nb+b)*8+(r&7)] = s
			if s == 0 {
				continue // q stays 0
			}
			for k := k0; k < k1; k++ {
				v := math.Round(float64(bf16(w[k])) / float64(s))
				q[k] = int8(max(-127, min(127, v)))
			}
		}
	}
	return out
}

// q8Scales returns the scales of row r from block 0 on: the scale of block b is at index 8*b.
func (m *Mat) q8Scales(r int) []float32 {
	nb := q8Blocks(m.Cols)
	base := (r>>3)*nb*8 + r&7
	return m.S[base : base+8*(nb-1)+1]
}

// deq is a dequantized weight.
func deq(q int8, s float32) float32 { return float32(q) * s }

// Int8 returns a copy of m whose projection matrices and output head are int8 (Embed stays bf16: a row
// lookup reads 2 bytes per weight of one row). m is unchanged; the copy shares its norms and biases (and
// its int8 matrices, when m is int8 already).
func (m *Model) Int8() *Model {
	q := *m
	q.Layers = make([]Layer, len(m.Layers))
	for i, L := range m.Layers {
		L.QKV, L.O, L.GateUp, L.Down = quantizeMat(L.QKV), quantizeMat(L.O), quantizeMat(L.GateUp), quantizeMat(L.Down)
		q.Layers[i] = L
	}
	q.LMHead = quantizeMat(m.LMHead)
	return &q
}

// Weights names the weight format of m's projections: "bf16" or "int8".
func (m *Model) Weights() string {
	if m.LMHead.Q != nil {
		return "int8"
	}
	return "bf16"
}

// ParseWeights checks a weight-format name ("" means bf16).
func ParseWeights(s string) (string, error) {
	switch s {
	case "", "bf16":
		return "bf16", nil
	case "int8":
		return "int8", nil
	}
	return "", fmt.Errorf("weights %q: want bf16 (the checkpoint's, the default) or int8 (per-32-column-block scales)", s)
}

// dotQ8Go is the 8-lane dot product of x[:k8] with the int8 row q (scales s, block b at s[8*b]).
func dotQ8Go(x []float32, q []int8, s []float32, k8 int) float32 {
	var a [8]float32
	x, q = x[:k8], q[:k8]
	for k := 0; k+8 <= k8; k += 8 {
		sc := s[(k/q8Block)*8]
		xs, qs := x[k:k+8:k+8], q[k:k+8:k+8]
		for l := range a {
			w := deq(qs[l], sc)
			a[l] += xs[l] * w
		}
	}
	return red8(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
}

// gemvQ8 computes y[j-lo] = x . row j of the int8 matrix w, for lo <= j < hi (len(x) = w.Cols).
func gemvQ8(x []float32, w *Mat, lo, hi int, y []float32) {
	cols := w.Cols
	k8 := cols &^ 7
	nb := q8Blocks(cols)
	_ = y[hi-lo-1]
	j := lo
	if k8 > 0 {
		for ; j < hi; j++ {
			if simdOn && j&7 == 0 && j+8 <= hi {
				g := (hi - j) / 8
				gemvQ8G(&x[0], &w.Q[j*cols], &w.S[(j>>3)*nb*8], cols, nb, k8, g, &y[j-lo])
				j += 8*g - 1
				continue
			}
			if simdOn {
				y[j-lo] = gemvQ81(&x[0], &w.Q[j*cols], &w.q8Scales(j)[0], k8)
			} else {
				y[j-lo] = dotQ8Go(x, w.Q[j*cols:], w.q8Scales(j), k8)
			}
		}
	} else {
		clear(y[:hi-lo])
	}
	if k8 < cols {
		for j := lo; j < hi; j++ {
			s := y[j-lo]
			qr, sc := w.Q[j*cols:(j+1)*cols], w.q8Scales(j)
			for k := k8; k < cols; k++ {
				s += x[k] * deq(qr[k], sc[(k/q8Block)*8])
			}
			y[j-lo] = s
		}
	}
}

// packQ8 writes weight rows j0 .. j0+n-1 of the int8 matrix w, dequantized, into p in packRows' layout:
// p[(s*n+j)*8+l] = w'[j0+j][8*s+l] for 8*s+l < k8.
func packQ8(p []float32, w *Mat, j0, k8, n int) {
	p = p[:n*k8]
	if simdOn {
		_ = w.Q[(j0+n-1)*w.Cols+k8-1]
		for j := 0; j < n; j++ {
			packQ8Row(&p[8*j], &w.Q[(j0+j)*w.Cols], &w.q8Scales(j0 + j)[0], k8, n)
		}
		return
	}
	for j := 0; j < n; j++ {
		qr, sc := w.Q[(j0+j)*w.Cols:], w.q8Scales(j0+j)
		for k := 0; k < k8; k += 8 {
			o := n*k + 8*j
			s := sc[(k/q8Block)*8]
			d, qs := p[o:o+8:o+8], qr[k:k+8:k+8]
			for l := range d {
				d[l] = deq(qs[l], s)
			}
		}
	}
}

// matmulRowsQ8 is matmulRows for an int8 matrix: gemvQ8 for one to three input rows (or on the portable
// path); from 4 rows on (assembly path) 4x3 tiles that dequantize each weight once for four input rows
// (gemm4x3Q8); from q8PanelRows rows on, with a panel, the float32 panel tiles over weight rows dequantized
// once per block. All give every output the bits of gemvQ8 on its row alone.
func matmulRowsQ8(w *Mat, bias, x []float32, rows int, y []float32, ldy, lo, hi int, panel []float32) {
	cols := w.Cols
	k8 := cols &^ 7
	switch {
	case !simdOn || rows < 4 || k8 == 0:
		for r := 0; r < rows; r++ {
			gemvQ8(x[r*cols:(r+1)*cols], w, lo, hi, y[r*ldy+lo:r*ldy+hi])
		}
	case rows >= q8PanelRows && len(panel) >= panelLen(cols):
		for j0 := lo; j0 < hi; j0 += jBlock {
			j1 := min(j0+jBlock, hi)
			n3 := j0 + (j1-j0)/3*3
			n6 := j0
			if simd512 {
				n6 = j0 + (j1-j0)/6*6
			}
			for j := j0; j < n6; j += 6 {
				packQ8(panel[(j-j0)*k8:], w, j, k8, 6)
			}
			for j := n6; j < n3; j += 3 {
				packQ8(panel[(j-j0)*k8:], w, j, k8, 3)
			}
			r := 0
			for ; r+4 <= rows; r += 4 {
				for j := j0; j < n6; j += 6 {
					gemm4x6P(x[r*cols:], cols, panel[(j-j0)*k8:], k8, y[r*ldy+j:], ldy)
				}
				for j := n6; j < n3; j += 3 {
					gemm4x3P(x[r*cols:], cols, panel[(j-j0)*k8:], k8, y[r*ldy+j:], ldy)
				}
				w.addColTailQ8(x, r, r+4, j0, n3, y, ldy)
				for rr := r; rr < r+4 && n3 < j1; rr++ {
					gemvQ8(x[rr*cols:(rr+1)*cols], w, n3, j1, y[rr*ldy+n3:rr*ldy+j1])
				}
			}
			for ; r < rows; r++ {
				gemvQ8(x[r*cols:(r+1)*cols], w, j0, j1, y[r*ldy+j0:r*ldy+j1])
			}
		}
	default:
		n3 := lo + (hi-lo)/3*3
		r := 0
		for ; r+4 <= rows; r += 4 {
			for j := lo; j < n3; j += 3 {
				_ = x[(r+3)*cols+k8-1]
				_ = w.Q[(j+2)*cols+k8-1]
				_ = y[(r+3)*ldy+j+2]
				gemm4x3Q8(&x[r*cols], cols, &w.Q[j*cols], cols, &w.q8Scales(j)[0], &w.q8Scales(j + 1)[0], &w.q8Scales(j + 2)[0], k8, &y[r*ldy+j], ldy)
			}
			w.addColTailQ8(x, r, r+4, lo, n3, y, ldy)
			for rr := r; rr < r+4 && n3 < hi; rr++ {
				gemvQ8(x[rr*cols:(rr+1)*cols], w, n3, hi, y[rr*ldy+n3:rr*ldy+hi])
			}
		}
		for ; r < rows; r++ {
			gemvQ8(x[r*cols:(r+1)*cols], w, lo, hi, y[r*ldy+lo:r*ldy+hi])
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

// q8PanelRows is the number of input rows from which matmulRowsQ8 dequantizes each block of weight rows
// once into the worker's panel (Forward grows the panels from this many rows on for an int8 model) instead
// of once per 4-row tile. Dev box, 2 threads, SmolLM2-135M shape, ms a decode step with the panel from 4 /
// from 8 / never: 4 sequences 18.5-18.8 / 17.0-17.3 / 16.9-17.1, 8: 26.0-26.4 / 26.3-27.2 / 28.8-29.2, 16:
// 43.0-46.7 / 52.3-52.6 / 53.0-53.9 (noisy; 8 is the compromise).
var q8PanelRows = 8

// addColTailQ8 adds the columns past k8 (cols mod 8 of them) of weight rows [j0, j1) to the outputs of
// input rows [r0, r1) that a tile computed over the first k8 columns (in gemvQ8's order).
func (w *Mat) addColTailQ8(x []float32, r0, r1, j0, j1 int, y []float32, ldy int) {
	cols := w.Cols
	k8 := cols &^ 7
	if k8 == cols {
		return
	}
	for r := r0; r < r1; r++ {
		for j := j0; j < j1; j++ {
			s := y[r*ldy+j]
			qr, sc := w.Q[j*cols:(j+1)*cols], w.q8Scales(j)
			for k := k8; k < cols; k++ {
				s += x[r*cols+k] * deq(qr[k], sc[(k/q8Block)*8])
			}
			y[r*ldy+j] = s
		}
	}
}
