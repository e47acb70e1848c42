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
	const capa, P = 333, 1000
	segs := make([]Segment, 2)
	for i := range segs {
		s := m.NewSeq(capa)
		st := uint32(i + 7)
		for l := range s.K {
			for k := range s.K[l] {
				st = st*1664525 + 1013904223
				s.K[l][k] = float32(int32(st>>9)%1024) / 256
				s.V[l][k] = float32(int32(st>>13)%1024) / 4096
			}
		}
		s.Live = make([]int32, capa)
		for k := range s.Live {
			s.Live[k] = int32(k * 3)
			if k%11 == 4 || k >= capa-9 {
				s.Live[k] = -1 // holes, and free slots at the end
			}
		}
		s.Live[capa-9] = P
		segs[i] = Segment{Seq: s, Tokens: []int{(i*13 + 3) % c.Vocab}, Pos: P, Slots: []int{capa - 9}, Logits: make([]float32, c.Vocab)}
	}
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
