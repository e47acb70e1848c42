package compress

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestEvictPlan(t *testing.T) {
	tests := []struct {
		spec                string
		L, maxNew           int
		capacity, topK, rng int
		hi, validTopK       int
		needScores          bool
		queryRows           int
	}{
		{"h2o:budget=16", 100, 10, 16, 8, 8, 92, 8, true, 100},
		{"h2o:budget=16", 10, 7, 16, 8, 8, 2, 2, false, 0}, // 10 + 7 - 1 = 16 tokens written: never full past 16
		{"h2o:budget=16", 10, 8, 16, 8, 8, 2, 2, true, 10}, // the 17th token evicts
		{"h2o:budget=16", 16, 0, 16, 8, 8, 8, 8, false, 0}, // the prompt fits exactly
		{"h2o:budget=16", 17, 0, 16, 8, 8, 9, 8, true, 17}, // one prompt position too many
		{"h2o:budget=16,recent=16", 3, 100, 16, 0, 16, 0, 0, true, 3},
		{"tova:budget=16", 100, 10, 16, 16, 0, 100, 16, true, 1},
		{"tova:budget=16", 5, 5, 16, 16, 0, 5, 5, false, 0},
	}
	for _, tt := range tests {
		pl := mustPlan(t, tt.spec, tt.L, tt.maxNew)
		if !pl.Evict || pl.Capacity != tt.capacity || pl.TopK != tt.topK || pl.Ring != tt.rng || pl.Lo != 0 || pl.Hi != tt.hi ||
			pl.ValidTopK != tt.validTopK || pl.NeedScores != tt.needScores || pl.QueryRows() != tt.queryRows {
			t.Errorf("%s L=%d new=%d: %+v (query rows %d)", tt.spec, tt.L, tt.maxNew, pl, pl.QueryRows())
		}
	}
}

// naiveEvict is an independent model of docs/policies.md §18-19 over positions: it returns the held set after
// prefill and, for each decode step, the position evicted (-1 none), given each position's score history.
type naiveEvict struct {
	B, R  int // R: h2o's recent window, 0 for tova
	held  []int
	score map[int]float64
}

func (n *naiveEvict) worse(a, b int) bool { // a ranks below b
	sa, sb := n.score[a], n.score[b]
	na, nb := math.IsNaN(sa), math.IsNaN(sb)
	switch {
	case na != nb:
		return na
	case !na && sa != sb:
		return sa < sb
	}
	return a > b
}

func (n *naiveEvict) decode(p int) int {
	ev := -1
	if len(n.held) == n.B {
		for _, q := range n.held {
			if q > p-n.R {
				continue
			}
			if ev < 0 || n.worse(q, ev) {
				ev = q
			}
		}
		n.held = slices.DeleteFunc(n.held, func(q int) bool { return q == ev })
	}
	n.held = append(n.held, p)
	n.score[p] = 0
	return ev
}

// TestEvictorProperties runs random h2o and tova sequences with random scores and attention weights against
// naiveEvict: the same evictions and held sets at every step, never more than B slots, the slots in use always a
// prefix, h2o's recent window always held, no allocation per step, and a budget that covers the sequence
// keeping everything (the full cache).
func TestEvictorProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for iter := range 400 {
		B := 1 + rng.IntN(20)
		pol := Policy{Method: MethodTOVA, Budget: B}
		if iter%2 == 0 {
			r := 1 + rng.IntN(B)
			pol = Policy{Method: MethodH2O, TopK: B - r, Recent: r, Budget: B}
		}
		L, maxNew := 1+rng.IntN(40), rng.IntN(40)
		if iter%10 == 0 { // covering budgets
			pol = Policy{Method: MethodTOVA, Budget: L + maxNew + rng.IntN(3)}
			B = pol.Budget
		}
		pl, err := pol.Plan(L, maxNew)
		if err != nil {
			t.Fatal(err)
		}
		var scores []float64
		n := &naiveEvict{B: B, R: pl.Ring, score: map[int]float64{}}
		if pl.NeedScores {
			scores = make([]float64, L)
			for i := range scores {
				scores[i] = float64(rng.IntN(6)) // ties on purpose
				if rng.IntN(50) == 0 {
					scores[i] = math.NaN()
				}
				n.score[i] = scores[i]
			}
		}
		e := NewEvictor(pl)
		assign := e.Prefill(scores)
		// The naive prefill: everything when it fits, else the recent window and the best of the rest.
		if L <= pl.Capacity {
			for p := range L {
				n.held = append(n.held, p)
			}
		} else {
			cand := make([]int, pl.Hi)
			for i := range cand {
				cand[i] = i
			}
			slices.SortStableFunc(cand, func(a, b int) int {
				if n.worse(a, b) {
					return 1
				}
				if n.worse(b, a) {
					return -1
				}
				return 0
			})
			n.held = slices.Clone(cand[:pl.TopK])
			for p := pl.Hi; p < L; p++ {
				n.held = append(n.held, p)
			}
			slices.Sort(n.held)
		}
		if got := e.Kept(nil); !slices.Equal(got, n.held) {
			t.Fatalf("iter %d %s L=%d: prefill kept %v, want %v", iter, pol, L, got, n.held)
		}
		for i, a := range assign {
			if a.Slot != i || int(e.Pos[i]) != a.Pos {
				t.Fatalf("iter %d: assignment %d = %+v", iter, i, a)
			}
		}
		g := 1 + rng.IntN(3)
		w := make([]float32, g*B)
		for p := L; p < L+maxNew-1; p++ {
			before := slices.Clone(e.Pos)
			slot := e.Decode(p)
			want := n.decode(p)
			if e.Evicted() != want {
				t.Fatalf("iter %d %s L=%d step %d: evicted %d, want %d (held %v, scores %v)", iter, pol, L, p, e.Evicted(), want, before, e.Score)
			}
			if e.Len() > B || slot >= e.Len() || int(e.Pos[slot]) != p {
				t.Fatalf("iter %d: slot %d of %d for %d", iter, slot, e.Len(), p)
			}
			for s := range e.Pos {
				if (s < e.Len()) != (e.Pos[s] >= 0) {
					t.Fatalf("iter %d: slots in use are not a prefix: %v", iter, e.Pos)
				}
			}
			got := e.Kept(nil)
			if !slices.Equal(got, func() []int { h := slices.Clone(n.held); slices.Sort(h); return h }()) {
				t.Fatalf("iter %d step %d: held %v, want %v", iter, p, got, n.held)
			}
			if pol.Method == MethodH2O {
				for q := max(0, p-pl.Ring+1); q <= p; q++ {
					if !slices.Contains(got, q) {
						t.Fatalf("iter %d: recent position %d evicted at step %d (R=%d): %v", iter, q, p, pl.Ring, got)
					}
				}
			}
			// Observe random weights; mirror the score update in the naive model.
			for j := range w {
				w[j] = float32(rng.IntN(4)) / 4
			}
			e.Observe(w, g, B)
			for s := 0; s < e.Len(); s++ {
				var sum float64
				for j := range g {
					sum += float64(w[j*B+s])
				}
				q := int(e.Pos[s])
				if pol.Method == MethodTOVA {
					n.score[q] = sum / float64(g)
				} else {
					n.score[q] += sum
				}
				if e.Score[s] != n.score[q] && !(math.IsNaN(e.Score[s]) && math.IsNaN(n.score[q])) {
					t.Fatalf("iter %d: score of slot %d (position %d) %v, want %v", iter, s, q, e.Score[s], n.score[q])
				}
			}
			if pl.Capacity >= L+maxNew-1 && e.Evicted() >= 0 {
				t.Fatalf("iter %d: a covering budget evicted %d", iter, e.Evicted())
			}
		}
		if pl.Capacity >= L+maxNew-1 {
			if got := e.Kept(nil); len(got) != L+max(0, maxNew-1) {
				t.Fatalf("iter %d: a covering budget holds %v", iter, got)
			}
		}
	}
}

func TestEvictorDecodeDoesNotAllocate(t *testing.T) {
	pl := mustPlan(t, "h2o:budget=64", 100, 1000)
	e := NewEvictor(pl)
	e.Prefill(make([]float64, 100))
	w := make([]float32, 2*64)
	p := 100
	if n := testing.AllocsPerRun(200, func() {
		e.Decode(p)
		e.Observe(w, 2, 64)
		p++
	}); n != 0 {
		t.Fatalf("Decode+Observe allocated %v times per step", n)
	}
}

func TestEvictorPanicsOnContractViolation(t *testing.T) {
	for name, f := range map[string]func(){
		"not an eviction plan": func() { NewEvictor(mustPlan(t, "snapstream:budget=16", 10, 4)) },
		"missing scores":       func() { NewEvictor(mustPlan(t, "tova:budget=4", 10, 4)).Prefill(nil) },
		"short scores":         func() { NewEvictor(mustPlan(t, "tova:budget=4", 10, 4)).Prefill(make([]float64, 9)) },
		"decode in prompt":     func() { NewEvictor(mustPlan(t, "tova:budget=16", 10, 4)).Decode(9) },
		"scores for snapkv": func() {
			PromptScores(mustPlan(t, "snapkv:topk=4,window=2", 10, 4), nil, nil, 1, 1, 1, nil)
		},
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

// TestPromptScoresMatchReference compares PromptScores with a naive float64 computation: h2o sums the causal
// softmax of every prompt row over the rows and the group's heads, tova averages the last row over the group.
func TestPromptScoresMatchReference(t *testing.T) {
	for _, sc := range scoreHooks {
		t.Run(sc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 8))
			s := Scratch{Scores: sc.fn}
			for iter := range 60 {
				kv, g, hd := 1+rng.IntN(2), 1+rng.IntN(3), 1+rng.IntN(9)
				nq := kv * g
				L := 2 + rng.IntN(150) // more than one row block (rowBlock) of h2o rows
				spec := "tova:budget=1"
				if iter%2 == 0 {
					spec = "h2o:budget=2"
				}
				pl := mustPlan(t, spec, L, 1)
				rows := pl.QueryRows()
				amp := 0.5 + 2*rng.Float64()
				queries := make([]float32, rows*nq*hd)
				keys := make([]float32, L*kv*hd)
				for i := range queries {
					queries[i] = float32(rng.NormFloat64() * amp)
				}
				for i := range keys {
					keys[i] = float32(rng.NormFloat64())
				}
				got := PromptScores(pl, queries, keys, nq, kv, hd, &s)
				for gi := range kv {
					want := make([]float64, L)
					for h := gi * g; h < (gi+1)*g; h++ {
						for i := range rows {
							a := L - rows + i
							lg := make([]float64, a+1)
							m := math.Inf(-1)
							for t := range lg {
								var d float64
								for x := range hd {
									d += float64(queries[(i*nq+h)*hd+x]) * float64(keys[(t*kv+gi)*hd+x])
								}
								lg[t] = d / math.Sqrt(float64(hd))
								m = max(m, lg[t])
							}
							var z float64
							for _, v := range lg {
								z += math.Exp(v - m)
							}
							for t, v := range lg {
								want[t] += math.Exp(v-m) / z
							}
						}
					}
					if pl.Policy.Method == MethodTOVA {
						for t := range want {
							want[t] /= float64(g)
						}
					}
					for p := range want {
						if d := math.Abs(got[gi][p] - want[p]); d > 1e-5*(1+math.Abs(want[p])) {
							t.Fatalf("iter %d %s L=%d kv %d position %d: %v, want %v", iter, spec, L, gi, p, got[gi][p], want[p])
						}
					}
				}
			}
		})
	}
}

func TestPromptScoresNone(t *testing.T) {
	if got := PromptScores(mustPlan(t, "h2o:budget=16", 5, 3), nil, nil, 2, 1, 4, nil); got != nil {
		t.Fatalf("got %v for a plan that needs no scores", got)
	}
}
