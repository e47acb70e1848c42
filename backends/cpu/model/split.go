package model

import (
	"math"
)

// Split decode attention. A decode step of few rows over long caches has few attention units (one per
// row and KV head): one sequence of SmolLM2-135M's shape gives 3, so 13 of 16 workers would wait while
// three stream the whole cache. Such a step instead runs attention in three phases whose parts spread
// over the workers:
//
//   - scores: each part takes a range of slots of one (row, KV head) and computes the scores of all its
//     query heads there (tile by tile, as row does), masks the invisible slots, and keeps each head's
//     maximum over its range;
//   - softmax: one part per (row, query head) takes the maximum of its parts' maxima and turns the
//     scores into weights with expSub over the whole row;
//   - values: each part takes a range of the head dimensions of one (row, KV head) and sums the values
//     of all slots, in slot order, for each query head, then normalises.
//
// Every score is one dots, the maximum does not depend on the order it is taken in, expSub runs over the
// whole row and each output lane sums its slots in order: the bits are those of row.

// splitRow is one (row, KV head) of a split step: n visible slots, its scores at off in sscore (g rows
// of n), its score parts p0 .. p0+np-1 of sparts.
type splitRow struct {
	r, kvh, n, off, p0, np int
}

// splitPart is a part of a split phase: a range [lo, hi) of slots (scores) or of head dimensions
// (values) of split row sr, or query head lo of split row sr (softmax).
type splitPart struct {
	sr, lo, hi int32
}

// splitMinBytes is the smallest cache (one KV head's keys and values, float32) that makes a step split
// (a variable so that tests can split small caches).
var splitMinBytes = 1 << 20

// planSplit decides whether the step's attention runs split, and lays out its parts. A step is split
// when every row decodes over a slot cache, some row's KV head holds at least splitMinBytes, and its
// units (rows x KV heads) would leave at least half the workers idle. Where fewer are idle the split
// costs more than it saves: on the 2-worker dev box, one sequence's three units took 15.3 ms a step at
// 4k slots and 70 ms at 32k unsplit, 18.3 and 87 ms split (two more waits a layer, the scores kept in
// memory between phases, each value part reading its own lanes of every value row).
func (w *Workspace) planSplit(m *Model, segs []Segment, R int) {
	w.split = false
	W := w.pool.Workers()
	c := &m.Cfg
	d, nKV := c.HeadDim, c.KVHeads
	g := c.Heads / nKV
	if W < 2 || splitOff || 2*R*nKV > W {
		return
	}
	big := false
	total := 0
	for r := 0; r < R; r++ {
		seg := &segs[w.rowSeg[r]]
		if len(seg.Tokens) != 1 || seg.Seq.Live == nil || seg.Seq.Quant != nil || seg.Seq.Heads != nil {
			return // rowQuant dequantizes whole rows; per-head caches are attended row by row (row)
		}
		n := visibleSlots(seg.Seq, w.rowPos[r])
		big = big || 2*n*d*4 >= splitMinBytes
		total += n
	}
	if !big {
		return
	}
	w.split = true
	// Score parts of about a 2W-th of all slots (at least 256), equal within a row.
	chunk := max(256, (total*nKV+2*W-1)/(2*W))
	// Value parts 16 lanes wide (one cache line of float32), 8 where that leaves workers idle.
	width := 16
	if R*nKV*((d+15)/16) < W {
		width = 8
	}
	w.srows, w.sparts, w.hparts, w.vparts = w.srows[:0], w.sparts[:0], w.hparts[:0], w.vparts[:0]
	off := 0
	for r := 0; r < R; r++ {
		n := visibleSlots(segs[w.rowSeg[r]].Seq, w.rowPos[r])
		for h := 0; h < nKV; h++ {
			sr := int32(len(w.srows))
			p0 := len(w.sparts)
			np := (n + chunk - 1) / chunk
			for k := 0; k < np; k++ {
				lo, hi := k*n/np&^7, (k+1)*n/np&^7
				if k == np-1 {
					hi = n
				}
				w.sparts = append(w.sparts, splitPart{sr: sr, lo: int32(lo), hi: int32(hi)})
			}
			for q := 0; q < g; q++ {
				w.hparts = append(w.hparts, splitPart{sr: sr, lo: int32(q)})
			}
			for lo := 0; lo < d; lo += width {
				w.vparts = append(w.vparts, splitPart{sr: sr, lo: int32(lo), hi: int32(min(d, lo+width))})
			}
			w.srows = append(w.srows, splitRow{r: r, kvh: h, n: n, off: off, p0: p0, np: len(w.sparts) - p0})
			off += g * n
		}
	}
	w.sscore = grow(w.sscore, off)
	w.smax = grow(w.smax, len(w.sparts)*g)
	w.sinv = grow(w.sinv, len(w.srows)*g)
}

// splitOff, set by tests, turns split steps off (the reference of their bits).
var splitOff bool

// visibleSlots is the number of slots a query at position p attends over: all positions up to p in a
// dense cache; in a slot cache, the slots up to the last visible one (those past it, not yet written or
// ahead of p, are skipped rather than masked).
func visibleSlots(seq *Seq, p int) int {
	if seq.Live == nil {
		return p + 1
	}
	return visibleIn(seq.Live[:seq.Cap], p)
}

// visibleIn is visibleSlots for a slot cache's mask live (len: its capacity); a nil mask is dense.
func visibleIn(live []int32, p int) int {
	if live == nil {
		return p + 1
	}
	n := len(live)
	for n > 1 && !visible(live[n-1], p) {
		n--
	}
	return n
}

// splitScores runs score parts [lo, hi) of layer l.
func (w *Workspace) splitScores(l, lo, hi int) {
	c := &w.m.Cfg
	d, nQ, nKV := c.HeadDim, c.Heads, c.KVHeads
	g := nQ / nKV
	qkvDim := (nQ + 2*nKV) * d
	st := nKV * d
	scale := float32(1 / math.Sqrt(float64(d)))
	for pi := lo; pi < hi; pi++ {
		pt := w.sparts[pi]
		sr := &w.srows[pt.sr]
		w.awaitHeads(l, sr.kvh, 0, g)
		seq := w.segs[w.rowSeg[sr.r]].Seq
		p := w.rowPos[sr.r]
		K := seq.K[l][sr.kvh*d:]
		q := w.qkv[sr.r*qkvDim+sr.kvh*g*d : sr.r*qkvDim+(sr.kvh+1)*g*d]
		n := sr.n
		sc := w.sscore[sr.off : sr.off+g*n]
		a, b := int(pt.lo), int(pt.hi)
		for s0 := a; s0 < b; s0 += rowTile {
			m := min(rowTile, b-s0)
			for h := 0; h < g; h++ {
				dots(q[h*d:(h+1)*d], K[s0*st:], st, m, scale, sc[h*n+s0:h*n+s0+m])
			}
		}
		for s, lp := range seq.Live[a:b] {
			if !visible(lp, p) {
				for h := 0; h < g; h++ {
					sc[h*n+a+s] = float32(math.Inf(-1))
				}
			}
		}
		for h := 0; h < g; h++ {
			w.smax[pi*g+h] = rowMax(sc[h*n+a : h*n+b])
		}
	}
}

// splitSoftmax runs softmax parts [lo, hi): the weights of one query head of a split row, unnormalised,
// and the inverse of their sum.
func (w *Workspace) splitSoftmax(lo, hi int) {
	c := &w.m.Cfg
	g := c.Heads / c.KVHeads
	for _, pt := range w.hparts[lo:hi] {
		sr := &w.srows[pt.sr]
		h := int(pt.lo)
		mx := float32(math.Inf(-1))
		for pi := sr.p0; pi < sr.p0+sr.np; pi++ {
			mx = max(mx, w.smax[pi*g+h])
		}
		row := w.sscore[sr.off+h*sr.n : sr.off+(h+1)*sr.n]
		w.sinv[int(pt.sr)*g+h] = 1 / expSub(row, mx)
	}
}

// splitValues runs value parts [lo, hi) of layer l.
func (w *Workspace) splitValues(l, lo, hi int) {
	c := &w.m.Cfg
	d, nQ, nKV := c.HeadDim, c.Heads, c.KVHeads
	g := nQ / nKV
	st := nKV * d
	for _, pt := range w.vparts[lo:hi] {
		sr := &w.srows[pt.sr]
		seq := w.segs[w.rowSeg[sr.r]].Seq
		V := seq.V[l][sr.kvh*d:]
		n := sr.n
		sc := w.sscore[sr.off : sr.off+g*n]
		a, b := int(pt.lo), int(pt.hi)
		out := w.att[sr.r*nQ*d+sr.kvh*g*d : sr.r*nQ*d+(sr.kvh+1)*g*d]
		for h := 0; h < g; h++ {
			clear(out[h*d+a : h*d+b])
		}
		for s0 := 0; s0 < n; s0 += rowTile {
			m := min(rowTile, n-s0)
			for h := 0; h < g; h++ {
				wsum(out[h*d+a:h*d+b], sc[h*n+s0:h*n+s0+m], V[s0*st+a:], st, m)
			}
		}
		for h := 0; h < g; h++ {
			inv := w.sinv[int(pt.sr)*g+h]
			o := out[h*d+a : h*d+b]
			for i := range o {
				o[i] *= inv
			}
		}
	}
}
