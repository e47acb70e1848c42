// Package sample draws the next token from logits: greedy, or temperature with top-k and top-p
// filters, from a per-request random stream (PCG seeded from the request's seed) so that a request's
// tokens do not depend on what else is decoded at the same time.
package sample

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
)

// Params are the sampling parameters. Temperature <= 0 means greedy; TopP outside (0,1) and TopK <= 0
// disable those filters.
type Params struct {
	Temperature float64
	TopP        float64
	TopK        int
	Seed        uint64
}

// Sampler draws tokens for one sequence. It is not safe for concurrent use.
type Sampler struct {
	p     Params
	rng   *rand.Rand
	idx   []int32
	probs []float64
}

// streamConst separates snapeval's PCG streams from other users of the same seed.
const streamConst = 0x736e61706576616c // "snapeval"

// New returns a sampler for p, its random stream seeded from p.Seed.
func New(p Params) *Sampler {
	return &Sampler{p: p, rng: rand.New(rand.NewPCG(p.Seed, streamConst))}
}

// Greedy reports whether the sampler always takes the argmax.
func (s *Sampler) Greedy() bool { return s.p.Temperature <= 0 }

// Argmax returns the index of the largest logit (the lowest index on ties; NaN never wins).
func Argmax(logits []float32) int {
	best := 0
	bv := float32(math.Inf(-1))
	for i, v := range logits {
		if v > bv {
			best, bv = i, v
		}
	}
	return best
}

// Sample returns the next token. It allocates only when the vocabulary grows.
func (s *Sampler) Sample(logits []float32) int {
	if s.p.Temperature <= 0 {
		return Argmax(logits)
	}
	n := len(logits)
	if cap(s.idx) < n {
		s.idx = make([]int32, n)
		s.probs = make([]float64, n)
	}
	idx := s.idx[:n]
	for i := range idx {
		idx[i] = int32(i)
	}
	topP := s.p.TopP > 0 && s.p.TopP < 1
	topK := s.p.TopK > 0 && s.p.TopK < n
	if topP || topK {
		// Highest logit first, lower index first on ties: a total order, so the result is deterministic.
		slices.SortFunc(idx, func(a, b int32) int {
			if c := cmp.Compare(logits[b], logits[a]); c != 0 {
				return c
			}
			return cmp.Compare(a, b)
		})
		if topK {
			idx = idx[:s.p.TopK]
		}
	}
	mx := math.Inf(-1)
	for _, i := range idx {
		mx = math.Max(mx, float64(logits[i]))
	}
	probs := s.probs[:len(idx)]
	inv := 1 / s.p.Temperature
	var sum float64
	for j, i := range idx {
		e := math.Exp((float64(logits[i]) - mx) * inv)
		probs[j] = e
		sum += e
	}
	if topP {
		// Keep the smallest prefix whose probability reaches TopP (at least one token).
		var cum float64
		keep := len(idx)
		for j, e := range probs {
			cum += e / sum
			if cum >= s.p.TopP {
				keep = j + 1
				break
			}
		}
		idx, probs = idx[:keep], probs[:keep]
		sum = 0
		for _, e := range probs {
			sum += e
		}
	}
	u := s.rng.Float64() * sum
	for j, e := range probs {
		u -= e
		if u < 0 {
			return int(idx[j])
		}
	}
	return int(idx[len(idx)-1])
}
