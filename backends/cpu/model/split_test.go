package model

import (
	"fmt"
	"slices"
	"testing"
)

// slotSegs builds n decode segments at position P over slot caches of capa slots (holes every eleventh
// slot, free slots at the end) with keys scaled by kScale.
func slotSegs(m *Model, n, capa, P int, kScale float32) []Segment {
	segs := make([]Segment, n)
	for i := range segs {
		s := m.NewSeq(capa)
		st := uint32(i + 7)
		for l := range s.K {
			for k := range s.K[l] {
				st = st*1664525 + 1013904223
				s.K[l][k] = float32(int32(st>>9)%1024) * kScale
				s.V[l][k] = float32(int32(st>>13)%1024) / 4096
			}
		}
		s.Live = make([]int32, capa)
		for k := range s.Live {
			s.Live[k] = int32(k * 3)
			if k%11 == 4 || k >= capa-9 {
				s.Live[k] = -1
			}
		}
		s.Live[capa-9] = int32(P)
		segs[i] = Segment{Seq: s, Tokens: []int{(i*13 + 3) % m.Cfg.Vocab}, Pos: P, Slots: []int{capa - 9}, Logits: make([]float32, m.Cfg.Vocab)}
	}
	return segs
}

// TestSplitAttention checks the split decode attention against row, bit for bit, phase by phase: one and
// two sequences over caches of a few score parts, small queries (so that the softmax spreads its weight:
// a peaked one would hide the order of the value sums), on the portable and the SIMD kernels.
func TestSplitAttention(t *testing.T) {
	m := randomModel(t, oddGroupShape)
	c := &m.Cfg
	d, nQ, nKV := c.HeadDim, c.Heads, c.KVHeads
	g := nQ / nKV
	defer func(saved int) { splitMinBytes = saved }(splitMinBytes)
	splitMinBytes = 1 << 10
	defer SetSIMD(SetSIMD(false))
	for _, simd := range []bool{false, true} {
		if simd && !haveSIMD {
			continue
		}
		SetSIMD(simd)
		for _, tc := range []struct{ seqs, capa, workers int }{{1, 1500, 6}, {1, 2000, 16}, {2, 1333, 16}, {1, 700, 8}} {
			t.Run(fmt.Sprintf("simd=%v/seqs=%d/cap=%d/workers=%d", simd, tc.seqs, tc.capa, tc.workers), func(t *testing.T) {
				segs := slotSegs(m, tc.seqs, tc.capa, 5000, 1.0/256)
				pool := NewPool(tc.workers)
				defer pool.Close()
				ws := NewWorkspace(pool)
				forwardLogits(t, m, ws, segs)
				if !ws.split {
					t.Fatalf("step not split (%d units on %d workers)", len(ws.units), tc.workers)
				}
				if len(ws.sparts) <= len(ws.srows) {
					t.Fatalf("%d score parts for %d rows: the test needs rows of several parts", len(ws.sparts), len(ws.srows))
				}
				st := uint32(99)
				for i := range ws.qkv {
					st = st*1664525 + 1013904223
					ws.qkv[i] = float32(int32(st>>9)%1024) / 2048
				}
				ws.m, ws.segs = m, segs
				defer func() { ws.m, ws.segs = nil, nil }()
				const l = 1
				ws.splitScores(l, 0, len(ws.sparts))
				ws.splitSoftmax(0, len(ws.hparts))
				ws.splitValues(l, 0, len(ws.vparts))
				got := slices.Clone(ws.att[:len(segs)*nQ*d])
				spread := 0
				for _, w := range ws.sscore[:ws.srows[0].n] {
					if w > 0.01 {
						spread++
					}
				}
				if spread < 20 {
					t.Fatalf("%d weights above 1%% of the largest: the test needs a spread softmax", spread)
				}
				a := attnJob{m: m, l: l, segs: segs, ws: ws}
				for r := range segs {
					for h := 0; h < nKV; h++ {
						a.row(r, h, 0, g, 0)
					}
				}
				for i, want := range ws.att[:len(segs)*nQ*d] {
					if got[i] != want {
						t.Fatalf("attention output %d = %v split, %v by row", i, got[i], want)
					}
				}
			})
		}
	}
}

// TestSplitForward checks whole decode steps: a step that splits gives the logits of the same step run
// without splitting, bit for bit, on several pool sizes; steps that must not split do not. The random model's
// own token dominates these softmaxes; TestSplitAttention checks the bits of spread ones.
func TestSplitForward(t *testing.T) {
	m := randomModel(t, oddGroupShape)
	nKV := m.Cfg.KVHeads
	defer func(saved int) { splitMinBytes = saved }(splitMinBytes)
	splitMinBytes = 1 << 10
	step := func(workers, seqs, capa int, off bool) ([][]float32, bool) {
		defer func(saved bool) { splitOff = saved }(splitOff)
		splitOff = off
		pool := NewPool(workers)
		defer pool.Close()
		ws := NewWorkspace(pool)
		out := forwardLogits(t, m, ws, slotSegs(m, seqs, capa, 5000, 1.0/8192))
		return out, ws.split
	}
	for _, tc := range []struct {
		seqs, capa, workers int
		split               bool
	}{
		{1, 1500, 2, false},  // 3 units on 2 workers
		{1, 1500, 5, false},  // 3 units on 5
		{1, 1500, 6, true},   // 3 units on 6: half idle
		{1, 1500, 16, true},  // 3 units on 16
		{2, 1500, 11, false}, // 6 units on 11
		{2, 1500, 12, true},  // 6 units on 12
		{4, 1500, 16, false}, // 12 units on 16
		{1, 20, 16, false},   // a short cache (11 slots: 704 bytes a KV head)
	} {
		t.Run(fmt.Sprintf("seqs=%d/cap=%d/workers=%d", tc.seqs, tc.capa, tc.workers), func(t *testing.T) {
			want, _ := step(tc.workers, tc.seqs, tc.capa, true)
			got, split := step(tc.workers, tc.seqs, tc.capa, false)
			if split != tc.split {
				t.Fatalf("split = %v, want %v (%d units on %d workers)", split, tc.split, tc.seqs*nKV, tc.workers)
			}
			for k := range got {
				for i := range got[k] {
					if got[k][i] != want[k][i] {
						t.Fatalf("seq %d: logit %d = %v, %v without splitting", k, i, got[k][i], want[k][i])
					}
				}
			}
		})
	}
}

// TestSplitNoAllocs checks that a split decode step allocates nothing once the workspace has grown.
func TestSplitNoAllocs(t *testing.T) {
	m := randomModel(t, oddGroupShape)
	defer func(saved int) { splitMinBytes = saved }(splitMinBytes)
	splitMinBytes = 1 << 10
	pool := NewPool(8)
	defer pool.Close()
	ws := NewWorkspace(pool)
	segs := slotSegs(m, 1, 1500, 5000, 1.0/256)
	step := func() {
		if err := m.Forward(ws, segs); err != nil {
			t.Fatal(err)
		}
	}
	step()
	if !ws.split {
		t.Fatal("step not split")
	}
	if a := testing.AllocsPerRun(50, step); a != 0 {
		t.Errorf("a split decode step allocates %.1f times", a)
	}
}
