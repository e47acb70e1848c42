package stats

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// exactMcNemar computes min(1, 2 * sum_{i<=min(b,c)} C(n,i) / 2^n) with exact rationals, building each
// binomial coefficient from the previous one.
func exactMcNemar(b, c int) float64 {
	n := b + c
	if n == 0 {
		return 1
	}
	sum, term := new(big.Int), big.NewInt(1)
	for i := 0; i <= min(b, c); i++ {
		if i > 0 {
			term.Mul(term, big.NewInt(int64(n-i+1)))
			term.Div(term, big.NewInt(int64(i)))
		}
		sum.Add(sum, term)
	}
	r := new(big.Rat).SetFrac(new(big.Int).Mul(sum, big.NewInt(2)), new(big.Int).Lsh(big.NewInt(1), uint(n)))
	f, _ := r.Float64()
	return math.Min(1, f)
}

// TestExactMcNemarReference checks the test's reference against big.Int.Binomial on small n.
func TestExactMcNemarReference(t *testing.T) {
	for n := int64(1); n <= 40; n++ {
		for k := int64(0); 2*k < n; k++ {
			sum := new(big.Int)
			for i := int64(0); i <= k; i++ {
				sum.Add(sum, new(big.Int).Binomial(n, i))
			}
			want, _ := new(big.Rat).SetFrac(new(big.Int).Mul(sum, big.NewInt(2)), new(big.Int).Lsh(big.NewInt(1), uint(n))).Float64()
			if got := exactMcNemar(int(k), int(n-k)); got != math.Min(1, want) {
				t.Fatalf("reference(%d, %d) = %g, want %g", k, n-k, got, want)
			}
		}
	}
}

func TestMcNemarExactKnownValues(t *testing.T) {
	tests := []struct {
		b, c int
		want float64
	}{
		{0, 0, 1},
		{5, 5, 1},
		{1, 9, 0.021484375},  // 2*(1+10)/1024
		{9, 1, 0.021484375},  // symmetric
		{3, 7, 0.34375},      // 2*(1+10+45+120)/1024
		{0, 5, 0.0625},       // 2/32
		{0, 1, 1},            // 2*0.5 = 1
		{2, 3, 1},            // 2*(1+5+10)/32 = 1
		{0, 10, 0.001953125}, // 2/1024
		{2, 8, 0.109375},     // 2*(1+10+45)/1024
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d_%d", tt.b, tt.c), func(t *testing.T) {
			got := McNemarExact(tt.b, tt.c)
			if math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("McNemarExact(%d, %d) = %.10g, want %.10g", tt.b, tt.c, got, tt.want)
			}
		})
	}
}

func TestMcNemarMatchesExactRationals(t *testing.T) {
	for b := 0; b <= 60; b += 3 {
		for c := 0; c <= 60; c += 4 {
			got, want := McNemarExact(b, c), exactMcNemar(b, c)
			if got != want {
				t.Errorf("McNemarExact(%d, %d) = %.15g, exact %.15g", b, c, got, want)
			}
			if got != McNemarExact(c, b) {
				t.Errorf("McNemarExact not symmetric at (%d, %d)", b, c)
			}
			if got <= 0 || got > 1 {
				t.Errorf("McNemarExact(%d, %d) = %g outside (0, 1]", b, c, got)
			}
		}
	}
}

// TestMcNemarLargeN checks the gonum path above the exact limit against the exact sum just below and above it.
func TestMcNemarLargeN(t *testing.T) {
	for _, bc := range [][2]int{{9900, 10101}, {9950, 10200}, {10050, 10100}} {
		got, want := McNemarExact(bc[0], bc[1]), exactMcNemar(bc[0], bc[1])
		if bc[0]+bc[1] <= exactLimit && got != want {
			t.Errorf("McNemarExact%v = %g, exact %g", bc, got, want)
		}
		if math.Abs(got-want) > 1e-9*want {
			t.Errorf("McNemarExact%v = %.15g, exact %.15g", bc, got, want)
		}
	}
}

func TestPassAtK(t *testing.T) {
	tests := []struct {
		n, c, k int
		want    float64
	}{
		{10, 0, 1, 0},
		{10, 10, 5, 1},
		{10, 3, 1, 0.3},
		{5, 2, 2, 1 - 3.0/10}, // 1 - C(3,2)/C(5,2)
		{64, 16, 8, -1},       // -1: computed below from exact binomials
		{4, 1, 4, 1},          // n - c < k
		{100, 1, 10, 0.1},     // 1 - C(99,10)/C(100,10) = 10/100
	}
	for _, tt := range tests {
		want := tt.want
		if want < 0 {
			r := new(big.Rat).SetFrac(new(big.Int).Binomial(int64(tt.n-tt.c), int64(tt.k)), new(big.Int).Binomial(int64(tt.n), int64(tt.k)))
			f, _ := r.Float64()
			want = 1 - f
		}
		got, err := PassAtK(tt.n, tt.c, tt.k)
		if err != nil {
			t.Fatalf("PassAtK(%d,%d,%d): %v", tt.n, tt.c, tt.k, err)
		}
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("PassAtK(%d,%d,%d) = %.15g, want %.15g", tt.n, tt.c, tt.k, got, want)
		}
	}
}

func TestPassAtKProperties(t *testing.T) {
	for n := 1; n <= 20; n++ {
		for c := 0; c <= n; c++ {
			prev := -1.0
			for k := 1; k <= n; k++ {
				p, err := PassAtK(n, c, k)
				if err != nil {
					t.Fatal(err)
				}
				if k == 1 && math.Abs(p-float64(c)/float64(n)) > 1e-12 {
					t.Errorf("pass@1(n=%d,c=%d) = %g, want c/n", n, c, p)
				}
				if p < prev-1e-12 || p < 0 || p > 1 {
					t.Errorf("pass@%d(n=%d,c=%d) = %g not monotone in [0,1] (prev %g)", k, n, c, p, prev)
				}
				prev = p
			}
		}
	}
}

func TestPassAtKErrors(t *testing.T) {
	for _, tt := range [][3]int{{0, 0, 1}, {5, 6, 1}, {5, -1, 1}, {5, 2, 0}, {5, 2, 6}} {
		if _, err := PassAtK(tt[0], tt[1], tt[2]); err == nil {
			t.Errorf("PassAtK%v: want an error", tt)
		}
	}
}

func TestMajorityVoteAndConsAtK(t *testing.T) {
	tests := []struct {
		name    string
		answers []string
		correct []bool
		k       int
		want    string
		ok      bool
	}{
		{"plain majority", []string{"1", "2", "2"}, []bool{false, true, true}, 3, "2", true},
		{"tie to first seen", []string{"a", "b", "b", "a"}, []bool{true, false, false, true}, 4, "a", true},
		{"empty answers do not vote", []string{"", "", "7"}, []bool{false, false, false}, 3, "7", false},
		{"no answer", []string{"", ""}, []bool{false, false}, 2, "", false},
		{"only first k", []string{"1", "2", "2"}, []bool{true, false, false}, 1, "1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := ConsAtK(tt.answers, tt.correct, tt.k)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || ok != tt.ok {
				t.Errorf("ConsAtK = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	if _, _, err := ConsAtK([]string{"a"}, []bool{true, false}, 1); err == nil {
		t.Error("mismatched lengths: want an error")
	}
	if _, _, err := ConsAtK([]string{"a"}, []bool{true}, 2); err == nil {
		t.Error("k > n: want an error")
	}
}

func TestCompare(t *testing.T) {
	base := []Obs{
		{"a", 0, 1, true}, {"a", 1, 1, true},
		{"b", 0, 1, true}, {"b", 1, 0, false},
		{"c", 0, 0, false}, {"c", 1, 0, false},
		{"only-base", 0, 1, true},
	}
	pol := []Obs{
		{"a", 0, 0, false}, {"a", 1, 1, true},
		{"b", 0, 0, false}, {"b", 1, 0, false},
		{"c", 0, 1, true}, // sample 1 missing (an error record)
		{"only-pol", 0, 1, true}, {"only-pol2", 0, 0, false},
	}
	c := Compare(base, pol, Options{Resamples: 2000})
	if c.Items != 3 || c.BaseOnly != 1 || c.PolicyOnly != 2 {
		t.Errorf("items/baseOnly/policyOnly = %d/%d/%d, want 3/1/2", c.Items, c.BaseOnly, c.PolicyOnly)
	}
	// base item means a=1, b=.5, c=0; policy a=.5, b=0, c=1
	if math.Abs(c.Base-0.5) > 1e-12 || math.Abs(c.Policy-0.5) > 1e-12 || math.Abs(c.Delta) > 1e-12 {
		t.Errorf("base/policy/delta = %g/%g/%g, want .5/.5/0", c.Base, c.Policy, c.Delta)
	}
	if c.Pairs != 5 || c.BaseWins != 2 || c.PolicyWins != 1 {
		t.Errorf("pairs/baseWins/policyWins = %d/%d/%d, want 5/2/1", c.Pairs, c.BaseWins, c.PolicyWins)
	}
	if c.P != 1 {
		t.Errorf("p = %g, want 1", c.P)
	}
	if !(c.Lo <= c.Delta && c.Delta <= c.Hi) || c.Lo < -1 || c.Hi > 1 {
		t.Errorf("CI [%g, %g] does not hold delta %g inside [-1, 1]", c.Lo, c.Hi, c.Delta)
	}
	empty := Compare(base, nil, Options{})
	if empty.Items != 0 || !math.IsNaN(empty.Delta) || !math.IsNaN(empty.Lo) || empty.P != 1 {
		t.Errorf("no policy items: got %+v", empty)
	}
}

func TestBootstrapDeterministic(t *testing.T) {
	x := []float64{0, 1, -1, 0.5, 0, 1, 1, 0.25, -1, 1, -0.75, 0.125}
	lo1, hi1 := BootstrapMeanCI(x, Options{})
	lo2, hi2 := BootstrapMeanCI(x, Options{})
	if lo1 != lo2 || hi1 != hi2 {
		t.Fatalf("same seed, different CI: [%g,%g] vs [%g,%g]", lo1, hi1, lo2, hi2)
	}
	lo3, hi3 := BootstrapMeanCI(x, Options{Seed: 7})
	if lo3 == lo1 && hi3 == hi1 {
		t.Errorf("seeds %d and 7 gave the same interval [%g, %g]: the seed is not used", DefaultSeed, lo1, hi1)
	}
	// constant differences: the interval collapses onto the value
	lo, hi := BootstrapMeanCI([]float64{0.25, 0.25, 0.25}, Options{Resamples: 100})
	if lo != 0.25 || hi != 0.25 {
		t.Errorf("constant data: CI [%g, %g], want [0.25, 0.25]", lo, hi)
	}
}

// TestCompareCoverage checks on synthetic paired data with a known true delta that Compare's 95% interval covers
// it in about 95% of replicates (300 replicates: accept 0.92 to 0.98; stats/coverage checks the grid).
func TestCompareCoverage(t *testing.T) {
	const (
		reps   = 300
		nItems = 100
		pBase  = 0.7
		pPol   = 0.6 // true delta -0.1
	)
	rng := rand.New(rand.NewPCG(1, 2))
	covered := 0
	for r := 0; r < reps; r++ {
		var base, pol []Obs
		for i := 0; i < nItems; i++ {
			id := fmt.Sprintf("item%03d", i)
			u := rng.Float64() // correlated outcomes: the same uniform decides both sides
			base = append(base, Obs{Item: id, Score: b2f(u < pBase), Correct: u < pBase})
			pol = append(pol, Obs{Item: id, Score: b2f(u < pPol), Correct: u < pPol})
		}
		c := Compare(base, pol, Options{Resamples: 1000, Seed: uint64(r + 1)})
		if c.Lo <= pPol-pBase+1e-12 && pPol-pBase-1e-12 <= c.Hi {
			covered++
		}
	}
	cov := float64(covered) / reps
	t.Logf("coverage %.3f over %d replicates", cov, reps)
	if cov < 0.92 || cov > 0.98 {
		t.Errorf("95%% CI covered the true delta in %.3f of replicates", cov)
	}
}

func TestBounded(t *testing.T) {
	src := rand.NewPCG(3, 4)
	var counts [7]int
	for i := 0; i < 70000; i++ {
		counts[bounded(src, 7)]++
	}
	for i, c := range counts {
		if c < 9000 || c > 11000 {
			t.Errorf("bounded(7) value %d drawn %d times of 70000", i, c)
		}
	}
}

func TestAccuracy(t *testing.T) {
	obs := []Obs{{"a", 0, 1, true}, {"a", 1, 0, false}, {"b", 0, 1, true}}
	if got := Accuracy(obs); math.Abs(got-0.75) > 1e-12 {
		t.Errorf("Accuracy = %g, want 0.75 (mean of item means .5 and 1)", got)
	}
	if !math.IsNaN(Accuracy(nil)) {
		t.Error("Accuracy(nil) should be NaN")
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func BenchmarkBootstrap1000Items(b *testing.B) {
	x := make([]float64, 1000)
	for i := range x {
		x[i] = float64(i%3 - 1)
	}
	for b.Loop() {
		BootstrapMeanCI(x, Options{})
	}
}
