package compress

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"testing"
)

// selectionCase is one case of the conformance fixture selection.json.
type selectionCase struct {
	Heads     int           `json:"heads"`
	KVHeads   int           `json:"kv_heads"`
	HeadDim   int           `json:"head_dim"`
	PromptLen int           `json:"prompt_len"`
	Sinks     int           `json:"sinks"`
	Recent    int           `json:"recent"`
	TopK      int           `json:"topk"`
	Window    int           `json:"window"`
	Kernel    int           `json:"kernel"`
	Queries   [][][]float64 `json:"queries"`
	Keys      [][][]float64 `json:"keys"`
	Kept      [][]int       `json:"kept"`
}

func loadSelection(t *testing.T) []selectionCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "selection.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []selectionCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatalf("testdata/selection.json: %v", err)
	}
	return cases
}

func flatten(x [][][]float64) []float32 {
	var out []float32
	for _, a := range x {
		for _, b := range a {
			for _, v := range b {
				out = append(out, float32(v))
			}
		}
	}
	return out
}

// TestSelectionConformance reproduces every case of the conformance fixture selection.json exactly:
// the kept set after prefill (sinks, top-K and ring) per KV head.
func TestSelectionConformance(t *testing.T) {
	cases := loadSelection(t)
	if len(cases) != 8 {
		t.Fatalf("selection.json has %d cases, want 8", len(cases))
	}
	for _, sc := range scoreHooks {
		var s Scratch // shared on purpose: stale scratch must not leak between cases
		s.Scores = sc.fn
		for n, c := range cases {
			t.Run(fmt.Sprintf("%s/case%d_L%d_S%d_R%d_K%d_W%d_k%d", sc.name, n, c.PromptLen, c.Sinks, c.Recent, c.TopK, c.Window, c.Kernel), func(t *testing.T) {
				pol := Policy{Method: MethodSnapStream, Sinks: c.Sinks, Recent: c.Recent, TopK: c.TopK,
					Window: c.Window, Kernel: c.Kernel, Budget: c.Sinks + c.Recent + c.TopK}
				plan, err := pol.Plan(c.PromptLen, 0)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := len(c.Queries), min(c.Window, c.PromptLen); got != want {
					t.Fatalf("fixture has %d queries, want %d", got, want)
				}
				top := SelectTopK(plan, flatten(c.Queries), flatten(c.Keys), c.Heads, c.KVHeads, c.HeadDim, &s)
				if len(top) != c.KVHeads {
					t.Fatalf("got %d KV heads, want %d", len(top), c.KVHeads)
				}
				for g := range c.KVHeads {
					slots := NewSlots(plan)
					slots.Prefill(top[g])
					if got := slots.Kept(); !slices.Equal(got, c.Kept[g]) {
						t.Errorf("kv head %d:\n got %v\nwant %v", g, got, c.Kept[g])
					}
				}
			})
		}
	}
}

// scoreHooks are the two ways SelectTopK computes its logits: gonum's SGEMM (Scores unset) and a
// Scratch.Scores function (here a plain loop, k ascending: another float32 summation order than gonum's).
var scoreHooks = []struct {
	name string
	fn   func(q []float32, ldq, nq int, k []float32, ldk, d, n int, scale float32, out []float32, ldo int)
}{
	{"gonum", nil},
	{"hook", func(q []float32, ldq, nq int, k []float32, ldk, d, n int, scale float32, out []float32, ldo int) {
		for i := range nq {
			for t := range n {
				var sum float32
				for j := range d {
					sum += q[i*ldq+j] * k[t*ldk+j]
				}
				out[i*ldo+t] = scale * sum
			}
		}
	}},
}

// TestSelectionRejectsRecentZeroWithDecode: the fixture's recent=0 case is prefill-only.
func TestSelectionRejectsRecentZeroWithDecode(t *testing.T) {
	p := MustParse("snapstream:sinks=4,recent=0,topk=50,window=64,kernel=9")
	if _, err := p.Plan(200, 0); err != nil {
		t.Fatalf("prefill-only plan: %v", err)
	}
	if _, err := p.Plan(200, 1); err == nil {
		t.Fatal("recent=0 with decoding: want an error")
	}
}

// refSelect is an independent, deliberately naive float64 implementation of docs/policies.md §8 for one
// KV head: it also returns the selection margin (relative gap between the last kept and the first
// rejected score) so that random tests can skip near-ties that float32 may legitimately order differently.
func refSelect(L, w, S, R, K, k int, q func(i, h, d int) float64, key func(t, d int) float64, heads []int, headDim int) ([]int, float64) {
	group := make([]float64, L)
	for _, h := range heads {
		score := make([]float64, L)
		for i := L - w; i < L; i++ {
			logit := make([]float64, i+1)
			m := math.Inf(-1)
			for t := 0; t <= i; t++ {
				var d float64
				for x := range headDim {
					d += q(i-(L-w), h, x) * key(t, x)
				}
				logit[t] = d / math.Sqrt(float64(headDim))
				m = math.Max(m, logit[t])
			}
			var z float64
			for t := range logit {
				z += math.Exp(logit[t] - m)
			}
			for t := range logit {
				score[t] += math.Exp(logit[t]-m) / z
			}
		}
		padded := make([]float64, L+k-1)
		copy(padded[k/2:], score)
		for j := range L {
			var sum float64
			for x := range k {
				sum += padded[j+x]
			}
			group[j] += sum / float64(k) / float64(len(heads))
		}
	}
	lo := min(S, L)
	hi := max(lo, L-R)
	cand := make([]int, 0, hi-lo)
	for p := lo; p < hi; p++ {
		cand = append(cand, p)
	}
	sort.SliceStable(cand, func(a, b int) bool { return group[cand[a]] > group[cand[b]] })
	n := min(K, len(cand))
	margin := math.Inf(1)
	if n < len(cand) && n > 0 {
		margin = (group[cand[n-1]] - group[cand[n]]) / math.Abs(group[cand[n-1]])
	}
	kept := slices.Clone(cand[:n])
	slices.Sort(kept)
	return kept, margin
}

// TestSelectTopKMatchesReference compares SelectTopK with refSelect over random shapes, lengths and
// policies, including GQA groups, windows longer than the prompt and kernels wider than the prompt.
func TestSelectTopKMatchesReference(t *testing.T) {
	for _, sc := range scoreHooks {
		t.Run(sc.name, func(t *testing.T) { testSelectTopKMatchesReference(t, sc.fn) })
	}
}

func testSelectTopKMatchesReference(t *testing.T, scores func(q []float32, ldq, nq int, k []float32, ldk, d, n int, scale float32, out []float32, ldo int)) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := Scratch{Scores: scores}
	checked := 0
	for iter := range 300 {
		kv := 1 + rng.IntN(3)
		g := 1 + rng.IntN(3)
		nq := kv * g
		hd := 1 + rng.IntN(12)
		L := 1 + rng.IntN(150)
		S, R, K := rng.IntN(6), rng.IntN(30), rng.IntN(40)
		W := 1 + rng.IntN(40)
		if iter%7 == 0 {
			W += 60 // observation windows of more than one row block (rowBlock)
		}
		k := 1 + 2*rng.IntN(5)
		pol := Policy{Method: MethodSnapStream, Sinks: S, Recent: R, TopK: K, Window: W, Kernel: k, Budget: S + R + K}
		if pol.Validate() != nil {
			continue
		}
		plan, err := pol.Plan(L, 0)
		if err != nil {
			t.Fatal(err)
		}
		w := min(W, L)
		amp := 0.5 + 3*rng.Float64() // peaky or flat attention
		queries := make([]float32, w*nq*hd)
		keys := make([]float32, L*kv*hd)
		for i := range queries {
			queries[i] = float32(rng.NormFloat64() * amp)
		}
		for i := range keys {
			keys[i] = float32(rng.NormFloat64())
		}
		got := SelectTopK(plan, queries, keys, nq, kv, hd, &s)
		for gi := range kv {
			heads := make([]int, g)
			for j := range heads {
				heads[j] = gi*g + j
			}
			want, margin := refSelect(L, w, S, R, K, k,
				func(i, h, d int) float64 { return float64(queries[(i*nq+h)*hd+d]) },
				func(tt, d int) float64 { return float64(keys[(tt*kv+gi)*hd+d]) },
				heads, hd)
			if len(got[gi]) != plan.ValidTopK {
				t.Fatalf("iter %d: got %d positions, ValidTopK %d", iter, len(got[gi]), plan.ValidTopK)
			}
			if margin < 1e-5 {
				continue // a near-tie: float32 may order it either way
			}
			checked++
			if !slices.Equal(got[gi], want) {
				t.Errorf("iter %d (L=%d S=%d R=%d K=%d W=%d k=%d heads %d/%d dim %d) kv %d:\n got %v\nwant %v",
					iter, L, S, R, K, W, k, nq, kv, hd, gi, got[gi], want)
			}
		}
	}
	if checked < 200 {
		t.Fatalf("only %d comparisons had a clear margin", checked)
	}
}

// TestSelectTopKTiesToLowerPosition: identical keys give identical scores away from the edges; the lower
// positions must win.
func TestSelectTopKTiesToLowerPosition(t *testing.T) {
	const L, hd = 40, 4
	plan, err := MustParse("snapstream:sinks=2,recent=4,topk=5,window=4,kernel=1").Plan(L, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]float32, L*hd)
	for i := range keys {
		keys[i] = 1
	}
	queries := make([]float32, 4*hd)
	for i := range queries {
		queries[i] = 0.5
	}
	got := SelectTopK(plan, queries, keys, 1, 1, hd, nil)
	if want := []int{2, 3, 4, 5, 6}; !slices.Equal(got[0], want) {
		t.Fatalf("got %v, want %v", got[0], want)
	}
}

// TestSelectTopKNoScores: when every candidate fits, all are kept without looking at queries or keys.
func TestSelectTopKNoScores(t *testing.T) {
	plan, err := MustParse("snapstream:sinks=4,recent=8,topk=30,window=8,kernel=5").Plan(30, 10)
	if err != nil {
		t.Fatal(err)
	}
	if plan.NeedScores {
		t.Fatal("NeedScores with C <= K")
	}
	got := SelectTopK(plan, nil, nil, 8, 2, 8, nil)
	want := []int{4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21}
	for g := range got {
		if !slices.Equal(got[g], want) {
			t.Fatalf("kv %d: got %v, want %v", g, got[g], want)
		}
	}
}

// TestSelectTopKScratchAllocs: with a warm Scratch only the result slices are allocated.
func TestSelectTopKScratchAllocs(t *testing.T) {
	const L, hd, nq, kv = 512, 16, 4, 2
	plan, err := MustParse("snapstream:sinks=4,recent=64,topk=100,window=32,kernel=5").Plan(L, 16)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	queries := make([]float32, 32*nq*hd)
	keys := make([]float32, L*kv*hd)
	for i := range queries {
		queries[i] = float32(rng.NormFloat64())
	}
	for i := range keys {
		keys[i] = float32(rng.NormFloat64())
	}
	var s Scratch
	SelectTopK(plan, queries, keys, nq, kv, hd, &s)
	allocs := testing.AllocsPerRun(5, func() { SelectTopK(plan, queries, keys, nq, kv, hd, &s) })
	if allocs > 1+kv { // the outer slice and one per KV head
		t.Fatalf("%v allocations per call with a warm Scratch, want <= %d", allocs, 1+kv)
	}
}

func TestSelectTopKBadShapesPanic(t *testing.T) {
	plan, err := MustParse("snapstream:sinks=1,recent=2,topk=2,window=4,kernel=3").Plan(20, 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(){
		"groups":  func() { SelectTopK(plan, make([]float32, 4*3*2), make([]float32, 20*2*2), 3, 2, 2, nil) },
		"queries": func() { SelectTopK(plan, make([]float32, 5), make([]float32, 20*2), 1, 1, 2, nil) },
		"keys":    func() { SelectTopK(plan, make([]float32, 4*2), make([]float32, 7), 1, 1, 2, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic on mismatched shapes")
				}
			}()
			f()
		})
	}
}

// TestSelectionFixtureCopyIsCurrent: testdata/selection.json is a verbatim copy of the shared fixture
// (skipped where the shared folder is absent).
func TestSelectionFixtureCopyIsCurrent(t *testing.T) {
	shared, err := os.ReadFile(filepath.Join("..", "..", "shared", "conformance", "selection.json"))
	if err != nil {
		t.Skipf("shared conformance fixtures not available: %v", err)
	}
	local, err := os.ReadFile(filepath.Join("testdata", "selection.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(shared) != string(local) {
		t.Fatal("testdata/selection.json differs from ../shared/conformance/selection.json: copy it again")
	}
}

// TestSelectKNorm: knorm keeps, per KV head, the prompt keys of lowest L2 norm, ties to the lower
// position, in ascending order, and ignores queries.
func TestSelectKNorm(t *testing.T) {
	// 6 positions, 2 KV heads, headDim 2. Head 0 norms^2: 25 1 4 1 9 0; head 1: 1 1 1 1 1 1 (all tie).
	keys := []float32{
		3, 4, 1, 0,
		1, 0, 0, 1,
		0, 2, 1, 0,
		0, -1, 0, -1,
		3, 0, 1, 0,
		0, 0, 0, 1,
	}
	pl, err := MustParse("knorm:budget=3").Plan(6, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !pl.NeedScores || pl.Capacity != 7 || pl.ValidTopK != 3 {
		t.Fatalf("plan %+v", pl)
	}
	got := SelectTopK(pl, nil, keys, 4, 2, 2, nil)
	want := [][]int{{1, 3, 5}, {0, 1, 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	s := NewSlots(pl)
	s.Prefill(got[0])
	if slot := s.Decode(6); slot != 3 {
		t.Fatalf("first decoded token to slot %d, want 3 (after the 3 kept)", slot)
	}
	if k := s.Kept(); !reflect.DeepEqual(k, []int{1, 3, 5, 6}) {
		t.Fatalf("kept %v", k)
	}
}
