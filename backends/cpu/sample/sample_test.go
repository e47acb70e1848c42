package sample

import (
	"math"
	"testing"
)

func TestArgmax(t *testing.T) {
	tests := []struct {
		in   []float32
		want int
	}{
		{[]float32{1, 3, 2}, 1},
		{[]float32{5, 5, 1}, 0},
		{[]float32{float32(math.NaN()), -1, -2}, 1},
	}
	for _, tc := range tests {
		if got := Argmax(tc.in); got != tc.want {
			t.Errorf("Argmax(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestFilters(t *testing.T) {
	logits := []float32{0, 3, 2.9, 1, -1}
	tests := []struct {
		name    string
		p       Params
		allowed map[int]bool
	}{
		{"greedy", Params{}, map[int]bool{1: true}},
		{"topk2", Params{Temperature: 1, TopK: 2}, map[int]bool{1: true, 2: true}},
		{"topk1", Params{Temperature: 5, TopK: 1}, map[int]bool{1: true}},
		{"topp small", Params{Temperature: 1, TopP: 0.1}, map[int]bool{1: true}},
		{"topp 0.6", Params{Temperature: 1, TopP: 0.6}, map[int]bool{1: true, 2: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.p)
			seen := map[int]bool{}
			for i := 0; i < 500; i++ {
				tok := s.Sample(logits)
				if !tc.allowed[tok] {
					t.Fatalf("sampled %d, allowed %v", tok, tc.allowed)
				}
				seen[tok] = true
			}
			if len(seen) != len(tc.allowed) {
				t.Errorf("saw %v, want all of %v", seen, tc.allowed)
			}
		})
	}
}

func TestSeededAndDistribution(t *testing.T) {
	logits := []float32{0, float32(math.Log(3))} // probabilities 1/4, 3/4
	a, b, c := New(Params{Temperature: 1, Seed: 7}), New(Params{Temperature: 1, Seed: 7}), New(Params{Temperature: 1, Seed: 8})
	same, ones := true, 0
	n := 20000
	for i := 0; i < n; i++ {
		x, y, z := a.Sample(logits), b.Sample(logits), c.Sample(logits)
		if x != y {
			t.Fatal("same seed gave different tokens")
		}
		same = same && x == z
		ones += x
	}
	if same {
		t.Error("different seeds gave identical streams")
	}
	if f := float64(ones) / float64(n); math.Abs(f-0.75) > 0.02 {
		t.Errorf("P(token 1) = %.3f, want 0.75", f)
	}
}

func TestTemperatureSharpens(t *testing.T) {
	logits := []float32{0, 1}
	count := func(temp float64) int {
		s := New(Params{Temperature: temp, Seed: 1})
		n := 0
		for i := 0; i < 5000; i++ {
			n += s.Sample(logits)
		}
		return n
	}
	if hot, cold := count(2), count(0.25); !(cold > hot) {
		t.Errorf("low temperature picked token 1 %d times, high %d", cold, hot)
	}
}

func TestNoAllocs(t *testing.T) {
	logits := make([]float32, 1000)
	for i := range logits {
		logits[i] = float32(i%17) * 0.3
	}
	s := New(Params{Temperature: 0.7, TopP: 0.9, TopK: 50, Seed: 3})
	s.Sample(logits)
	if a := testing.AllocsPerRun(100, func() { s.Sample(logits) }); a != 0 {
		t.Errorf("Sample allocates %.1f times per call", a)
	}
}
