package compress

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestPlan(t *testing.T) {
	tests := []struct {
		spec                       string
		L, maxNew                  int
		capacity, sinks, ring, top int
		lo, hi, valid              int
		needScores, appendDecode   bool
	}{
		{"full", 160, 24, 184, 184, 0, 0, 160, 160, 0, false, false},
		{"streaming:sinks=4,recent=32", 160, 24, 36, 4, 32, 0, 4, 128, 0, false, false},
		{"streaming:sinks=4,recent=32", 20, 24, 36, 4, 32, 0, 4, 4, 0, false, false},
		{"streaming:sinks=4,recent=32", 2, 24, 36, 4, 32, 0, 2, 2, 0, false, false},
		{"snapkv:topk=48,window=16,kernel=5", 160, 24, 88, 0, 16, 48, 0, 144, 48, true, true},
		{"snapkv:topk=48,window=16,kernel=5", 50, 24, 88, 0, 16, 48, 0, 34, 34, false, true},
		{"snapkv:topk=48,window=16,kernel=5", 10, 0, 64, 0, 16, 48, 0, 0, 0, false, true},
		{"snapstream:sinks=4,recent=16,topk=24,window=8,kernel=5", 160, 24, 44, 4, 16, 24, 4, 144, 24, true, false},
		{"snapstream:sinks=4,recent=64,topk=200,window=8,kernel=5", 160, 24, 268, 4, 64, 200, 4, 96, 92, false, false},
		{"snapstream:sinks=4,recent=16,topk=8,window=8,kernel=3", 12, 0, 28, 4, 16, 8, 4, 4, 0, false, false},
		{"snapstream:sinks=4,recent=16,topk=8,window=8,kernel=3", 3, 0, 28, 4, 16, 8, 3, 3, 0, false, false},
		{"snapstream:sinks=4,recent=0,topk=50,window=64,kernel=9", 200, 0, 54, 4, 0, 50, 4, 200, 50, true, false},
		// adaptive: a short prompt gives the unused top-K slots to the ring.
		{"snapstream:budget=4096,adaptive=true", 100, 8000, 4096, 4, 4092, 0, 4, 4, 0, false, false},
		{"snapstream:sinks=4,recent=16,topk=24,window=8,kernel=5,adaptive=true", 30, 100, 44, 4, 30, 10, 4, 14, 10, false, false},
		{"snapstream:sinks=4,recent=16,topk=24,window=8,kernel=5,adaptive=true", 160, 100, 44, 4, 16, 24, 4, 144, 24, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			p := MustParse(tt.spec)
			pl, err := p.Plan(tt.L, tt.maxNew)
			if err != nil {
				t.Fatal(err)
			}
			got := []int{pl.Capacity, pl.Sinks, pl.Ring, pl.TopK, pl.Lo, pl.Hi, pl.ValidTopK}
			want := []int{tt.capacity, tt.sinks, tt.ring, tt.top, tt.lo, tt.hi, tt.valid}
			if !slices.Equal(got, want) {
				t.Errorf("capacity, sinks, ring, topk, lo, hi, valid = %v, want %v", got, want)
			}
			if pl.NeedScores != tt.needScores || pl.AppendDecode != tt.appendDecode {
				t.Errorf("NeedScores %v AppendDecode %v, want %v %v", pl.NeedScores, pl.AppendDecode, tt.needScores, tt.appendDecode)
			}
			if pl.Capacity != p.Capacity(tt.L, tt.maxNew) {
				t.Errorf("Plan.Capacity %d != Policy.Capacity %d", pl.Capacity, p.Capacity(tt.L, tt.maxNew))
			}
		})
	}
}

func TestPlanErrors(t *testing.T) {
	tests := []struct {
		p         Policy
		L, maxNew int
		wantErr   string
	}{
		{MustParse("snapstream:budget=64"), 0, 1, "prompt length 0 must be positive"},
		{MustParse("snapstream:budget=64"), 10, -1, "must not be negative"},
		{MustParse("snapstream:sinks=4,recent=0,topk=8"), 100, 1, "recent=0 leaves no ring slot"},
		{MustParse("full"), 1 << 30, 1 << 30, "exceeds"},
		{Policy{Method: MethodSnapStream, Sinks: 4, Recent: 4, TopK: 4, Window: 8, Kernel: 4, Budget: 12}, 10, 1, "kernel=4"},
	}
	for _, tt := range tests {
		t.Run(tt.wantErr, func(t *testing.T) {
			_, err := tt.p.Plan(tt.L, tt.maxNew)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	// recent=0 is fine when every decoded token still lands in a sink slot.
	if _, err := MustParse("snapstream:sinks=8,recent=0,topk=4").Plan(5, 3); err != nil {
		t.Fatal(err)
	}
}

func TestSlotOf(t *testing.T) {
	ss := mustPlan(t, "snapstream:sinks=4,recent=16,topk=24,window=8,kernel=5", 160, 24)
	kv := mustPlan(t, "snapkv:topk=48,window=16,kernel=5", 160, 24)
	full := mustPlan(t, "full", 160, 24)
	tests := []struct {
		name string
		plan Plan
		p    int
		want int
	}{
		{"sink", ss, 3, 3},
		{"ring first", ss, 4, 4},
		{"ring wraps", ss, 20, 4},
		{"last prompt", ss, 159, 4 + 155%16},
		{"first decoded overwrites oldest ring entry", ss, 160, 4 + 156%16},
		{"negative", ss, -1, -1},
		{"snapkv window", kv, 150, 150 % 16},
		{"snapkv first decoded", kv, 160, 64},
		{"snapkv last decoded", kv, 183, 87},
		{"snapkv past max new", kv, 184, -1},
		{"full", full, 170, 170},
		{"full past capacity", full, 184, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SlotOf(tt.plan, tt.p); got != tt.want {
				t.Fatalf("SlotOf(%d) = %d, want %d", tt.p, got, tt.want)
			}
		})
	}
}

func mustPlan(t testing.TB, spec string, L, maxNew int) Plan {
	t.Helper()
	pl, err := MustParse(spec).Plan(L, maxNew)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// randomTopK picks ValidTopK ascending candidates at random, as SelectTopK could.
func randomTopK(rng *rand.Rand, pl Plan) []int {
	perm := rng.Perm(pl.Hi - pl.Lo)[:pl.ValidTopK]
	for i := range perm {
		perm[i] += pl.Lo
	}
	slices.Sort(perm)
	return perm
}

func randomPolicy(rng *rand.Rand) Policy {
	for {
		var p Policy
		switch rng.IntN(5) {
		case 0:
			p = Policy{Method: MethodFull}
		case 1:
			p = Policy{Method: MethodStreaming, Sinks: rng.IntN(8), Recent: 1 + rng.IntN(40), Rerotate: rng.IntN(2) == 0}
		case 4:
			p = Policy{Method: MethodKNorm, TopK: 1 + rng.IntN(60)}
		case 2:
			p = Policy{Method: MethodSnapKV, TopK: rng.IntN(50), Window: 1 + rng.IntN(40), Kernel: 1 + 2*rng.IntN(4)}
		default:
			p = Policy{Method: MethodSnapStream, Sinks: rng.IntN(8), Recent: 1 + rng.IntN(40), TopK: rng.IntN(50),
				Window: 1 + rng.IntN(40), Kernel: 1 + 2*rng.IntN(4), Adaptive: rng.IntN(3) == 0, Rerotate: rng.IntN(2) == 0}
		}
		p = p.Normalized()
		if p.Validate() == nil {
			return p
		}
	}
}

// TestSlotsProperties checks, over random policies and lengths: the partition tiles the prompt; capacity
// is never exceeded and slots are never shared; sinks and top-K never change during decode; after every
// decode step the ring holds exactly the most recent positions it can (snapkv: nothing decoded is evicted);
// Reset reuses the bookkeeping for another sequence.
func TestSlotsProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	s := &Slots{}
	for iter := range 3000 {
		p := randomPolicy(rng)
		L := 1 + rng.IntN(120)
		maxNew := rng.IntN(100)
		pl, err := p.Plan(L, maxNew)
		if err != nil {
			t.Fatalf("iter %d %s L=%d new=%d: %v", iter, p, L, maxNew, err)
		}
		// Partition: [0,Lo) [Lo,Hi) [Hi,L) tile the prompt.
		if pl.Lo < 0 || pl.Lo > pl.Hi || pl.Hi > L || pl.ValidTopK != min(pl.Hi-pl.Lo, pl.TopK) {
			t.Fatalf("iter %d %s L=%d: bad partition %+v", iter, p, L, pl)
		}
		if pl.Lo > pl.Sinks || L-pl.Hi > pl.Ring {
			t.Fatalf("iter %d %s L=%d: sinks or ring overflow %+v", iter, p, L, pl)
		}
		s.Reset(pl)
		top := randomTopK(rng, pl)
		if !pl.NeedScores && rng.IntN(2) == 0 {
			top = nil // Prefill fills in every candidate
		}
		assign := s.Prefill(top)
		wantKept := make([]int, 0, L)
		for q := range pl.Lo {
			wantKept = append(wantKept, q)
		}
		if top == nil {
			for q := pl.Lo; q < pl.Lo+pl.ValidTopK; q++ {
				wantKept = append(wantKept, q)
			}
		} else {
			wantKept = append(wantKept, top...)
		}
		for q := pl.Hi; q < L; q++ {
			wantKept = append(wantKept, q)
		}
		if got := s.Kept(); !slices.Equal(got, wantKept) {
			t.Fatalf("iter %d %s L=%d: kept after prefill %v, want %v", iter, p, L, got, wantKept)
		}
		seen := map[int]bool{}
		for i, a := range assign {
			if a.Slot < 0 || a.Slot >= pl.Capacity || seen[a.Slot] || int(s.Pos[a.Slot]) != a.Pos || a.Pos != wantKept[i] {
				t.Fatalf("iter %d %s L=%d: bad assignment %d %+v", iter, p, L, i, a)
			}
			seen[a.Slot] = true
		}
		fixed := map[int]int32{} // sink and top-K slots filled at prefill
		for slot, q := range s.Pos {
			if q >= 0 && (slot < pl.Sinks || (slot >= pl.Sinks+pl.Ring && slot < pl.Sinks+pl.Ring+pl.TopK)) {
				fixed[slot] = q
			}
		}
		var base []int // what is never evicted: sinks and top-K of the prompt
		for _, q := range wantKept {
			if q < pl.Hi {
				base = append(base, q)
			}
		}
		for q := L; q < L+maxNew; q++ {
			slot := s.Decode(q)
			if slot < 0 || slot >= pl.Capacity || int(s.Pos[slot]) != q {
				t.Fatalf("iter %d %s: Decode(%d) = slot %d", iter, p, q, slot)
			}
			for fs, fq := range fixed {
				if s.Pos[fs] != fq {
					t.Fatalf("iter %d %s: Decode(%d) changed fixed slot %d", iter, p, q, fs)
				}
			}
			// Beyond sinks and top-K, the cache holds exactly the most recent positions: those written to
			// sink slots (p < Sinks), every one for snapkv (appended), else the last Ring ring positions.
			want := slices.Clone(base)
			for x := pl.Hi; x <= q; x++ {
				if x < pl.Sinks || pl.AppendDecode || x > q-pl.Ring {
					want = append(want, x)
				}
			}
			if got := s.Kept(); !slices.Equal(got, want) {
				t.Fatalf("iter %d %s L=%d: after Decode(%d) cache holds %v, want %v", iter, p, L, q, got, want)
			}
		}
	}
}

// TestCoveringBudgetEqualsFull: a policy whose slots cover the whole sequence keeps, and attends to,
// exactly what full does at every step.
func TestCoveringBudgetEqualsFull(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for iter := range 500 {
		L := 1 + rng.IntN(200)
		maxNew := rng.IntN(100)
		n := L + maxNew
		s := rng.IntN(8)
		var specs []Policy
		// streaming and adaptive snapstream with a budget that covers the sequence;
		// plain snapstream with a ring that covers everything past the sinks; snapkv with K >= L - W.
		specs = append(specs,
			Policy{Method: MethodStreaming, Sinks: s, Recent: max(1, n-s+rng.IntN(5))}.Normalized(),
			Policy{Method: MethodSnapStream, Sinks: s, Recent: 1 + rng.IntN(n+1), TopK: n + rng.IntN(5), Window: 1 + rng.IntN(40), Kernel: 3, Adaptive: true}.Normalized(),
			Policy{Method: MethodSnapStream, Sinks: s, Recent: max(1, n-s+rng.IntN(3)), TopK: rng.IntN(10), Window: 8, Kernel: 5}.Normalized(),
			Policy{Method: MethodSnapKV, TopK: L + rng.IntN(3), Window: 1 + rng.IntN(40), Kernel: 5}.Normalized(),
			Policy{Method: MethodKNorm, TopK: L + rng.IntN(3)}.Normalized(),
			Policy{Method: MethodStreaming, Sinks: s, Recent: max(1, n-s+rng.IntN(5)), Rerotate: true}.Normalized(),
		)
		full := NewSlots(mustPlan(t, "full", L, maxNew))
		full.Prefill(nil)
		fullKept := [][]int{full.Kept()}
		for q := L; q < n; q++ {
			full.Decode(q)
			fullKept = append(fullKept, full.Kept())
		}
		for _, p := range specs {
			if err := p.Validate(); err != nil {
				continue // e.g. adaptive with a budget not above the sinks
			}
			pl, err := p.Plan(L, maxNew)
			if err != nil {
				t.Fatalf("%s L=%d new=%d: %v", p, L, maxNew, err)
			}
			if pl.NeedScores {
				t.Fatalf("%s L=%d: covering budget needs scores", p, L)
			}
			sl := NewSlots(pl)
			sl.Prefill(nil)
			if got := sl.Kept(); !slices.Equal(got, fullKept[0]) {
				t.Fatalf("iter %d %s L=%d: prefill kept %v, full %v", iter, p, L, got, fullKept[0])
			}
			for q := L; q < n; q++ {
				sl.Decode(q)
				if got := sl.Kept(); !slices.Equal(got, fullKept[q-L+1]) {
					t.Fatalf("iter %d %s L=%d: after Decode(%d) attends %v, full %v", iter, p, L, q, got, fullKept[q-L+1])
				}
			}
		}
	}
}

// TestDecodeDoesNotAllocate: one decoded token costs no allocation.
func TestDecodeDoesNotAllocate(t *testing.T) {
	for _, spec := range []string{"full", "streaming:sinks=4,recent=64", "snapkv:topk=48,window=16", "snapstream:budget=128"} {
		pl := mustPlan(t, spec, 300, 1000)
		s := NewSlots(pl)
		s.Prefill(randomTopK(rand.New(rand.NewPCG(1, 1)), pl))
		q := 300
		allocs := testing.AllocsPerRun(500, func() {
			s.Decode(q)
			q++
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Decode", spec, allocs)
		}
		s.Reset(pl)
		allocs = testing.AllocsPerRun(10, func() { s.Reset(pl) })
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Reset", spec, allocs)
		}
	}
}

func TestSlotsPanicsOnContractViolation(t *testing.T) {
	pl := mustPlan(t, "snapstream:sinks=4,recent=16,topk=24,window=8,kernel=5", 160, 2)
	for name, f := range map[string]func(){
		"short top-K":     func() { NewSlots(pl).Prefill([]int{5, 6}) },
		"nil when scored": func() { NewSlots(pl).Prefill(nil) },
		"not ascending":   func() { top := randomTopK(rand.New(rand.NewPCG(1, 1)), pl); top[3] = top[2]; NewSlots(pl).Prefill(top) },
		"outside":         func() { top := randomTopK(rand.New(rand.NewPCG(1, 1)), pl); top[23] = 150; NewSlots(pl).Prefill(top) },
		"decode prompt":   func() { NewSlots(pl).Decode(100) },
		"full past end":   func() { NewSlots(mustPlan(t, "full", 10, 2)).Decode(12) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

// TestReferenceKeptPartition checks the model conformance fixtures (kept lists after prefill of a 160-token
// prompt) against the plan: every case keeps exactly the sinks, ValidTopK candidates and the ring; the cases
// that need no scores are reproduced exactly.
func TestReferenceKeptPartition(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "reference_kept.json"))
	if err != nil {
		t.Fatal(err)
	}
	var models map[string]struct {
		PromptLen int `json:"prompt_len"`
		Cases     []struct {
			Policy struct {
				Method                              Method
				Sinks, Recent, TopK, Window, Kernel int
			} `json:"policy"`
			Kept [][][]int `json:"kept"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &models); err != nil {
		t.Fatalf("testdata/reference_kept.json: %v", err)
	}
	exact := 0
	for name, m := range models {
		for _, c := range m.Cases {
			rp := c.Policy
			p := Policy{Method: rp.Method, Sinks: rp.Sinks, Recent: rp.Recent, TopK: rp.TopK, Window: rp.Window, Kernel: rp.Kernel}.Normalized()
			pl, err := p.Plan(m.PromptLen, 24)
			if err != nil {
				t.Fatalf("%s %s: %v", name, p, err)
			}
			for layer, heads := range c.Kept {
				for g, kept := range heads {
					var sinks, cand, ring int
					for _, q := range kept {
						switch {
						case q < pl.Lo:
							sinks++
						case q < pl.Hi:
							cand++
						default:
							ring++
						}
					}
					if sinks != pl.Lo || cand != pl.ValidTopK || ring != m.PromptLen-pl.Hi {
						t.Errorf("%s %s layer %d head %d: %d sinks, %d top-K, %d ring; plan wants %d, %d, %d",
							name, p, layer, g, sinks, cand, ring, pl.Lo, pl.ValidTopK, m.PromptLen-pl.Hi)
					}
					if !pl.NeedScores {
						s := NewSlots(pl)
						s.Prefill(nil)
						if !slices.Equal(s.Kept(), kept) {
							t.Errorf("%s %s layer %d head %d: kept %v, want %v", name, p, layer, g, s.Kept(), kept)
						}
						exact++
					}
				}
			}
		}
	}
	if exact == 0 {
		t.Fatal("no case was checked exactly")
	}
}
