package model

import (
	"fmt"
	"slices"
	"testing"
)

// TestRowTiles checks that the slot-cache attention (attnJob.row) gives the bits of whole-row passes
// whatever its tile size: decode rows over caches a few tiles long, with holes and free slots, all query
// heads of a KV head in one unit or one at a time, on the portable and the SIMD kernels. The queries are
// small so that the softmax spreads its weight over many slots (a peaked one would hide the order of the
// value sums).
func TestRowTiles(t *testing.T) {
	m := randomModel(t, oddGroupShape)
	c := &m.Cfg
	d, nQ, nKV := c.HeadDim, c.Heads, c.KVHeads
	g := nQ / nKV
	const capa = 333
	segs := slotSegs(m, 2, capa, 1000, 1.0/256)
	pool := NewPool(1)
	defer pool.Close()
	ws := NewWorkspace(pool)
	forwardLogits(t, m, ws, segs) // sizes the workspace and lays out the rows
	st := uint32(99)
	for i := range ws.qkv {
		st = st*1664525 + 1013904223
		ws.qkv[i] = float32(int32(st>>9)%1024) / 2048
	}
	a := attnJob{m: m, l: 1, segs: segs, ws: ws}
	attend := func(hs int) []float32 {
		for r := range segs {
			for h := 0; h < nKV; h++ {
				for h0 := 0; h0 < g; h0 += hs {
					a.row(r, h, h0, h0+hs, 0)
				}
			}
		}
		return slices.Clone(ws.att[:len(segs)*nQ*d])
	}
	defer func(saved int) { rowTile = saved }(rowTile)
	defer SetSIMD(SetSIMD(false))
	for _, simd := range []bool{false, true} {
		if simd && !haveSIMD {
			continue
		}
		SetSIMD(simd)
		rowTile = 1 << 30
		want := attend(g)
		spread := 0
		for _, w := range ws.sbuf[0][:capa-9] {
			if w > 0.01 {
				spread++
			}
		}
		if spread < 20 {
			t.Fatalf("%d weights above 1%% of the largest: the test needs a spread softmax", spread)
		}
		for _, tile := range []int{7, 64, 128} {
			for _, hs := range []int{1, g} {
				t.Run(fmt.Sprintf("simd=%v/tile=%d/heads=%d", simd, tile, hs), func(t *testing.T) {
					rowTile = tile
					got := attend(hs)
					for i := range got {
						if got[i] != want[i] {
							t.Fatalf("attention output %d = %v, %v with whole rows", i, got[i], want[i])
						}
					}
				})
			}
		}
	}
}
