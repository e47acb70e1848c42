package model

// Single-row decode overlaps o_proj with attention: instead of waiting at a barrier for every KV head's
// attention, each o_proj chunk runs its weight columns in segments, one per KV head's group of query heads,
// as each group's attention finishes, keeping every output row's eight lane sums between segments. The
// segments run in column order, so each output gets the bits of one gemv over the whole row.

// gemvSeg runs one column segment for weight rows w[j*ldw:], j < rows: x = the segment's inputs (k8 of
// them, a multiple of 8), acc = rows x 8 lane sums (continued when first is false), and, when last, the
// reduced sums into y[:rows] instead of back into acc.
func gemvSeg(x []float32, w []uint16, ldw, k8, rows int, acc []float32, first, last bool, y []float32) {
	_ = x[k8-1]
	_ = w[(rows-1)*ldw+k8-1]
	_ = acc[8*rows-1]
	_ = y[rows-1]
	if simdOn {
		flags := 0
		if !first {
			flags |= 1
		}
		if last {
			flags |= 2
		}
		gemvSegBF16(&x[0], &w[0], ldw, k8, rows, &acc[0], flags, &y[0])
		return
	}
	for j := 0; j < rows; j++ {
		a := acc[8*j : 8*j+8 : 8*j+8]
		if first {
			clear(a)
		}
		wr := w[j*ldw : j*ldw+k8]
		for k := 0; k+8 <= k8; k += 8 {
			xs, ws := x[k:k+8:k+8], wr[k:k+8:k+8]
			for l := range a {
				a[l] += xs[l] * bf16(ws[l])
			}
		}
		if last {
			y[j] = red8(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
		}
	}
}

// oSegments runs o_proj output rows [lo, hi) of layer l for the step's single row into ws.tmp, KV head by
// KV head as each one's attention is done.
func (ws *Workspace) oSegments(l, lo, hi, worker int) {
	c := &ws.m.Cfg
	d, nKV := c.HeadDim, c.KVHeads
	seg := c.Heads / nKV * d
	W := ws.m.Layers[l].O.W
	cols := c.Heads * d
	acc := ws.oacc[worker]
	for g := 0; g < nKV; g++ {
		want := int64(l+1) * ws.kvUnits[g]
		var sp spin
		for ws.attnDone[g].Load() < want {
			sp.relax()
		}
		gemvSeg(ws.att[g*seg:], W[lo*cols+g*seg:], cols, seg, hi-lo, acc, g == 0, g == nKV-1, ws.tmp[lo:hi])
	}
}
