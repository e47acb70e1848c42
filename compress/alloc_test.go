package compress

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestPyramidTopK(t *testing.T) {
	tests := []struct {
		t, c, w, beta, n int
		want             []int
	}{
		// KVCache-Factory's example shape: 224 top-K slots (256 - window 32), beta 20, 4 layers: lo 11, hi 437,
		// a step of 142, as the official code's max_num - layer_idx * steps.
		{224, 5000, 32, 20, 4, []int{437, 295, 153, 11}},
		// A step of 426/4 = 106.5: exact counts 437, 330.5, 224, 117.5, 11, rounded by the largest remainder
		// (the tie to the lower layer).
		{224, 5000, 32, 20, 5, []int{437, 331, 224, 117, 11}},
		{224, 5000, 32, 10, 5, []int{426, 325, 224, 123, 22}},
		// Few candidates: hi is clamped to them and lo = 2t - c.
		{100, 170, 32, 20, 3, []int{170, 100, 30}},
		{100, 150, 32, 20, 3, []int{100, 100, 100}},
		// c + w < 2t (the official code's q_len < 2 (capacity - window)) or c <= t: uniform.
		{100, 160, 32, 20, 4, []int{100, 100, 100, 100}},
		{100, 90, 32, 20, 4, []int{100, 100, 100, 100}},
		{100, 5000, 32, 20, 1, []int{100}},
		{0, 5000, 32, 20, 3, []int{0, 0, 0}},
		{5, 5000, 32, 1, 3, []int{5, 5, 5}},
	}
	for _, tt := range tests {
		if got := PyramidTopK(tt.t, tt.c, tt.w, tt.beta, tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("PyramidTopK(%d, %d, %d, %d, %d) = %v, want %v", tt.t, tt.c, tt.w, tt.beta, tt.n, got, tt.want)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		tk, c, w, beta, n := rng.IntN(300), rng.IntN(1000), 1+rng.IntN(64), 1+rng.IntN(30), 1+rng.IntN(40)
		got := PyramidTopK(tk, c, w, beta, n)
		sum := 0
		for l, k := range got {
			sum += k
			if k < 0 || l > 0 && k > got[l-1] || k > max(c, tk) {
				t.Fatalf("PyramidTopK(%d, %d, %d, %d, %d) = %v: not a non-increasing schedule within the candidates", tk, c, w, beta, n, got)
			}
		}
		if sum != n*tk {
			t.Fatalf("PyramidTopK(%d, %d, %d, %d, %d) = %v sums to %d, want %d", tk, c, w, beta, n, got, sum, n*tk)
		}
		// Within one slot of the exact arithmetic sequence.
		if got[0] != got[n-1] {
			lo, hi := float64(got[n-1]), float64(got[0])
			for l, k := range got {
				if exact := hi - float64(l)*(hi-lo)/float64(n-1); math.Abs(float64(k)-exact) >= 1 {
					t.Fatalf("PyramidTopK(%d, %d, %d, %d, %d) = %v: layer %d is %d, exact %.2f", tk, c, w, beta, n, got, l, k, exact)
				}
			}
		}
	}
}

func TestLayerPlans(t *testing.T) {
	pl := mustPlan(t, "pyramidkv:budget=256", 5000, 16)
	layers := pl.Layers(4)
	total := 0
	for l, lp := range layers {
		total += lp.Capacity
		if lp.TopK != []int{437, 295, 153, 11}[l] || lp.ValidTopK != lp.TopK || !lp.NeedScores || lp.Ring != 32 || lp.Capacity != 32+lp.TopK+16 {
			t.Errorf("layer %d: %+v", l, lp)
		}
	}
	if total != 4*pl.Capacity {
		t.Errorf("capacities sum to %d, want %d", total, 4*pl.Capacity)
	}
	// On snapstream, the sinks and the ring are the same in every layer; the candidates bound the top K.
	pl = mustPlan(t, "pyramidkv:base=snapstream,budget=64", 200, 16) // S 4, R 32, K 28, candidates 164
	for _, lp := range pl.Layers(3) {
		if lp.Sinks != 4 || lp.Ring != 32 || lp.Capacity != 36+lp.TopK || lp.Lo != 4 || lp.Hi != 168 {
			t.Errorf("%+v", lp)
		}
	}
	// Other policies: the same plan for every layer.
	pl = mustPlan(t, "adakv:budget=64", 200, 16)
	for _, lp := range pl.Layers(3) {
		if lp != pl {
			t.Errorf("adakv layer plan %+v differs from %+v", lp, pl)
		}
	}
}

// TestSelectAdaKV checks the per-head allocation on random inputs: the counts sum to kvHeads x K, each head
// keeps at least the safeguard, a head's kept set is its own best candidates (SelectTopK's choice with that many
// slots), and no candidate outside the safeguards that was left out scores above one that was taken.
func TestSelectAdaKV(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	var s Scratch
	checked := 0
	for iter := range 200 {
		kv, g, hd := 1+rng.IntN(4), 1+rng.IntN(3), 1+rng.IntN(8)
		nq := kv * g
		L := 10 + rng.IntN(120)
		W, K := 1+rng.IntN(16), rng.IntN(30)
		safe := []int{0, 20, 50, 100}[rng.IntN(4)]
		pol := Policy{Method: MethodAdaKV, Base: MethodSnapKV, TopK: K, Window: W, Kernel: 1 + 2*rng.IntN(3), Budget: K + W, Safeguard: safe}
		if iter%3 == 0 {
			pol = Policy{Method: MethodAdaKV, Base: MethodSnapStream, Sinks: rng.IntN(5), Recent: 1 + rng.IntN(20), TopK: K, Window: W,
				Kernel: 3, Safeguard: safe}
			pol.Budget = pol.Sinks + pol.Recent + pol.TopK
		}
		if err := pol.Validate(); err != nil {
			t.Fatal(err)
		}
		pl, err := pol.Plan(L, 4)
		if err != nil {
			t.Fatal(err)
		}
		w := min(W, L)
		queries := make([]float32, w*nq*hd)
		keys := make([]float32, L*kv*hd)
		for i := range queries {
			queries[i] = float32(rng.NormFloat64() * 2)
		}
		for i := range keys {
			keys[i] = float32(rng.NormFloat64())
		}
		got := SelectAdaKV(pl, queries, keys, nq, kv, hd, &s)
		if !pl.NeedScores {
			want := SelectTopK(pl, nil, nil, nq, kv, hd, &s)
			if !slices.EqualFunc(got, want, slices.Equal) {
				t.Fatalf("iter %d: no scores needed: %v, want %v", iter, got, want)
			}
			continue
		}
		checked++
		m := K * safe / 100
		sum, capSum := 0, 0
		for h, kept := range got {
			sum += len(kept)
			hp := pl.HeadPlan(len(kept))
			capSum += hp.Capacity
			if len(kept) < m || len(kept) != hp.ValidTopK {
				t.Fatalf("iter %d: head %d keeps %d (safeguard %d, head plan %+v)", iter, h, len(kept), m, hp)
			}
			own := SelectTopK(hp, queries, keys, nq, kv, hd, &s)[h]
			if !slices.Equal(kept, own) {
				t.Fatalf("iter %d: head %d keeps %v, its own best %d are %v", iter, h, kept, len(kept), own)
			}
		}
		if sum != kv*K || capSum != kv*pl.Capacity {
			t.Fatalf("iter %d: %d kept and %d slots, want %d and %d", iter, sum, capSum, kv*K, kv*pl.Capacity)
		}
		if safe == 100 {
			if want := SelectTopK(pl, queries, keys, nq, kv, hd, &s); !slices.EqualFunc(got, want, slices.Equal) {
				t.Fatalf("iter %d: safeguard 100 differs from SelectTopK", iter)
			}
		}
		// Pooled choice: the worst score taken beyond a head's safeguard is no lower than the best one left out.
		worstTaken, bestLeft := math.Inf(1), math.Inf(-1)
		for h := range kv {
			groupScores(pl, queries, keys, nq, kv, hd, h, &s)
			sc := slices.Clone(s.group)
			order := make([]int, len(sc))
			for i := range order {
				order[i] = i
			}
			slices.SortStableFunc(order, func(a, b int) int { return rank(sc[a], a, sc[b], b) })
			for r, j := range order {
				switch {
				case r < m:
				case r < len(got[h]):
					worstTaken = min(worstTaken, sc[j])
				default:
					bestLeft = max(bestLeft, sc[j])
				}
			}
		}
		if bestLeft > worstTaken {
			t.Fatalf("iter %d: a candidate of score %v was left out while one of %v was taken", iter, bestLeft, worstTaken)
		}
	}
	if checked < 100 {
		t.Fatalf("only %d selections needed scores", checked)
	}
}

func TestHeadPlanOtherPolicies(t *testing.T) {
	for _, spec := range []string{"snapkv:budget=64", "pyramidkv:budget=64", "adakv:budget=64"} {
		pl := mustPlan(t, spec, 40, 4) // 8 candidates for 32 top-K slots: no scores
		if hp := pl.HeadPlan(3); hp != pl {
			t.Errorf("%s: HeadPlan(3) = %+v, want the layer's plan", spec, hp)
		}
	}
}

// TestSelectAdaKVTiesToLowerHead: KV heads 0 and 1 are identical, so every candidate scores the same in both;
// head 2 attends uniformly and scores lower. Nine slots for three heads (safeguard 0) take the five best candidates
// of head 0 and the four best of head 1: the tie at the boundary goes to the lower head.
func TestSelectAdaKVTiesToLowerHead(t *testing.T) {
	const L, hd, kv = 40, 4, 3
	pl := mustPlan(t, "adakv:topk=3,window=4,kernel=1,safeguard=0", L, 1)
	rng := rand.New(rand.NewPCG(11, 12))
	keys := make([]float32, L*kv*hd)
	queries := make([]float32, 4*kv*hd)
	for p := range L {
		for x := range hd {
			v := float32(rng.NormFloat64())
			keys[(p*kv+0)*hd+x], keys[(p*kv+1)*hd+x], keys[(p*kv+2)*hd+x] = v, v, 1
		}
	}
	for i := range 4 {
		for x := range hd {
			v := float32(4 * rng.NormFloat64())
			queries[(i*kv+0)*hd+x], queries[(i*kv+1)*hd+x], queries[(i*kv+2)*hd+x] = v, v, 1
		}
	}
	got := SelectAdaKV(pl, queries, keys, kv, kv, hd, nil)
	if len(got[0]) != 5 || len(got[1]) != 4 || len(got[2]) != 0 {
		t.Fatalf("kept %v, want 5, 4 and 0 positions", got)
	}
	if !slices.Equal(got[1], SelectTopK(pl.HeadPlan(4), queries, keys, kv, kv, hd, nil)[0]) {
		t.Fatalf("head 1 keeps %v, not head 0's best four", got[1])
	}
}
