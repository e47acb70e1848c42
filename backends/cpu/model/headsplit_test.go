package model

import (
	"fmt"
	"testing"
)

// TestHeadSplitDecode steps sequences with slot caches (holes included) on pools of 1, 4 and 12 workers:
// one sequence on 12 workers is split into one attention unit per query head (SmolLM2's grouping, 3 KV
// heads: 4 x 3 <= 12), the other cases keep a unit per KV head, and the logits are bit-identical whatever
// the split.
func TestHeadSplitDecode(t *testing.T) {
	m := randomModel(t, oddGroupShape)
	nKV, g := m.Cfg.KVHeads, m.Cfg.Heads/m.Cfg.KVHeads
	const capa, P = 40, 100
	build := func(i int) *Seq {
		s := m.NewSeq(capa)
		st := uint32(i + 1)
		for l := range s.K {
			for k := range s.K[l] {
				st = st*1664525 + 1013904223
				s.K[l][k] = float32(int32(st>>9)%1024) / 4096
				s.V[l][k] = float32(int32(st>>13)%1024) / 4096
			}
		}
		s.Live = make([]int32, capa)
		for k := range s.Live {
			s.Live[k] = int32(k * 3)
			if k%7 == 5 || k >= capa-4 {
				s.Live[k] = -1 // holes, and free slots at the end
			}
		}
		return s
	}
	step := func(workers int, batch []int) ([][]float32, int) {
		pool := NewPool(workers)
		defer pool.Close()
		ws := NewWorkspace(pool)
		segs := make([]Segment, len(batch))
		for k, i := range batch {
			s := build(i)
			s.Live[capa-4] = P
			segs[k] = Segment{Seq: s, Tokens: []int{(i*13 + 3) % m.Cfg.Vocab}, Pos: P, Slots: []int{capa - 4}, Logits: make([]float32, m.Cfg.Vocab)}
		}
		return forwardLogits(t, m, ws, segs), len(ws.units)
	}
	for _, batch := range [][]int{{0}, {1, 2}} {
		want, _ := step(1, batch)
		for _, workers := range []int{4, 12} {
			t.Run(fmt.Sprintf("batch=%d/workers=%d", len(batch), workers), func(t *testing.T) {
				got, units := step(workers, batch)
				wantUnits := len(batch) * nKV
				if 4*len(batch)*nKV <= workers {
					wantUnits *= g
				}
				if units != wantUnits {
					t.Errorf("%d attention units, want %d", units, wantUnits)
				}
				for k := range batch {
					for i := range got[k] {
						if got[k][i] != want[k][i] {
							t.Fatalf("seq %d: logit %d = %v, %v on one worker", batch[k], i, got[k][i], want[k][i])
						}
					}
				}
			})
		}
	}
}
