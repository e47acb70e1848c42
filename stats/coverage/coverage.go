// Package coverage measures how often snapeval's paired confidence intervals cover the true accuracy delta, on
// synthetic paired data whose delta is known: exactly (by enumerating every outcome) for right/wrong items, by
// seeded Monte Carlo for several samples per item and for partial scores. The CI test runs a small grid;
// tools/coverage runs the full grid of docs/statistics.md.
package coverage

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/snapeval/snapeval/stats"
)

// Family is a model of paired outcomes.
type Family string

// The families of the grid.
const (
	// Binary: one right/wrong verdict per item. The baseline is right with probability Base; the policy flips a
	// right answer to wrong with probability Loss and a wrong one to right with probability Gain.
	Binary Family = "binary"
	// Samples: Samples right/wrong samples per item, scored by their mean (pass@1 over samples). Item i's
	// baseline samples are right with probability pi_i ~ Beta(Kappa*Base, Kappa*(1-Base)), so items differ in
	// difficulty. Compression hits a random quarter of the items, and in a hit item each sample flips
	// right->wrong with probability 4*Loss and wrong->right with 4*Gain (so the per-sample rates are Loss and
	// Gain and flips cluster in items, as they do when a needle is evicted).
	Samples Family = "samples"
	// Partial: one partial score per item (recall, F1, ROUGE), s ~ Beta(Kappa*Base, Kappa*(1-Base)); with
	// probability Loss the policy scores s*V, with probability Gain s+(1-s)*V, V ~ U(0,1); otherwise s.
	Partial Family = "partial"
	// Jitter is Partial plus a symmetric change on every item: the policy's score moves by
	// 0.1*min(s', 1-s')*W, W ~ U(-1,1), as sampled text moves ROUGE a little everywhere.
	Jitter Family = "jitter"
)

// Model constants of the families.
const (
	// Kappa is the concentration of the items' Beta-distributed difficulty or score.
	Kappa = 2.0
	// SamplesPerItem is the number of samples of the Samples family.
	SamplesPerItem = 4
	// hitShare is the share of items compression touches in the Samples family.
	hitShare = 0.25
	// jitterScale scales the Jitter family's per-item change.
	jitterScale = 0.1
)

// SparseMass is the expected summed squared change (for right/wrong items: the expected number of discordant
// pairs) below which a cell is sparse. There the data say too little about the variance for any interval to hold
// its coverage down to 97% (for right/wrong items no interval that agrees with the exact McNemar test can, in many
// such cells: McNemarAttainable; docs/statistics.md), so only the lower bound of the band applies.
const SparseMass = 5.0

// Cell is one cell of the grid.
type Cell struct {
	Family Family
	Items  int
	// Base is the baseline's accuracy (or mean score); Loss and Gain are the flip rates.
	Base, Loss, Gain float64
}

func (c Cell) String() string {
	return fmt.Sprintf("%s n=%d base=%.2f loss=%.2f gain=%.2f", c.Family, c.Items, c.Base, c.Loss, c.Gain)
}

// Truth is the cell's true mean paired difference, policy minus baseline.
func (c Cell) Truth() float64 {
	switch c.Family {
	case Partial, Jitter: // E[s(V-1)] = -Base/2, E[(1-s)V] = (1-Base)/2; the jitter has mean 0
		return (c.Gain*(1-c.Base) - c.Loss*c.Base) / 2
	default: // the flips do not depend on the item's difficulty
		return c.Gain*(1-c.Base) - c.Loss*c.Base
	}
}

// Degenerate reports whether nothing can change in the cell: no flips and no jitter, so every difference is 0,
// the truth is 0 and any interval that contains its estimate covers it.
func (c Cell) Degenerate() bool { return c.Loss == 0 && c.Gain == 0 && c.Family != Jitter }

// ExpectedMass is the expected summed squared per-item change of binary cells, the expected number of
// discordant pairs (NaN for the other families, whose mass a run measures).
func (c Cell) ExpectedMass() float64 {
	if c.Family != Binary {
		return math.NaN()
	}
	return float64(c.Items) * (c.Base*c.Loss + (1-c.Base)*c.Gain)
}

// Draw fills d (len(d) = c.Items) with one replicate's per-item differences, policy minus baseline mean score.
func (c Cell) Draw(r *rand.Rand, d []float64) {
	base, pol := c.DrawScores(r, len(d))
	for i := range d {
		d[i] = mean(pol[i]) - mean(base[i])
	}
}

// DrawScores draws one replicate of n items: per item the baseline's and the policy's per-sample scores
// (one sample per item except in the Samples family), paired by sample index.
func (c Cell) DrawScores(r *rand.Rand, n int) (base, pol [][]float64) {
	base, pol = make([][]float64, n), make([][]float64, n)
	beta := distuv.Beta{Alpha: Kappa * c.Base, Beta: Kappa * (1 - c.Base), Src: r}
	for i := range n {
		switch c.Family {
		case Binary:
			b := r.Float64() < c.Base
			p, v := b, r.Float64()
			if b && v < c.Loss || !b && v < c.Gain {
				p = !b
			}
			base[i], pol[i] = []float64{b2f(b)}, []float64{b2f(p)}
		case Samples:
			pi := beta.Rand()
			hit := r.Float64() < hitShare
			base[i], pol[i] = make([]float64, SamplesPerItem), make([]float64, SamplesPerItem)
			for j := range SamplesPerItem {
				b := r.Float64() < pi
				p := b
				if hit {
					v := r.Float64()
					if b && v < c.Loss/hitShare || !b && v < c.Gain/hitShare {
						p = !b
					}
				}
				base[i][j], pol[i][j] = b2f(b), b2f(p)
			}
		case Partial, Jitter:
			s := beta.Rand()
			p, v := s, r.Float64()
			switch {
			case v < c.Loss:
				p = s * r.Float64()
			case v < c.Loss+c.Gain:
				p = s + (1-s)*r.Float64()
			}
			if c.Family == Jitter {
				p += jitterScale * math.Min(p, 1-p) * (2*r.Float64() - 1)
			}
			base[i], pol[i] = []float64{s}, []float64{p}
		default:
			panic("coverage: unknown family " + string(c.Family))
		}
	}
	return base, pol
}

// Method computes an interval (lo, hi) for the mean of per-item differences d.
type Method func(d []float64) (lo, hi float64)

// Result is a cell's measured coverage.
type Result struct {
	Cell
	// Coverage is the share (probability, when exact) of replicates whose interval holds the truth.
	Coverage float64
	// ZeroWidth is the share of replicates whose interval has zero width.
	ZeroWidth float64
	// Mass is the mean over replicates of the summed squared per-item change (for right/wrong items the number
	// of discordant pairs; its expectation when exact).
	Mass float64
	// HalfWidth is the mean half-width.
	HalfWidth float64
	// Reps is the number of replicates (0 when exact).
	Reps int
}

// Sparse reports whether the cell's summed squared change is below SparseMass.
func (r Result) Sparse() bool { return r.Mass < SparseMass }

// Check returns nil when the result meets the band [lo, hi] as docs/statistics.md applies it: a degenerate cell
// must cover always, a sparse one at least lo, any other between lo and hi; no interval may have zero width
// where a change was possible.
func (r Result) Check(lo, hi float64) error {
	switch {
	case r.Degenerate():
		if r.Coverage != 1 {
			return fmt.Errorf("%v: degenerate cell covered %.4f, want 1", r.Cell, r.Coverage)
		}
		return nil
	case r.ZeroWidth > 0:
		return fmt.Errorf("%v: %.4f of intervals have zero width", r.Cell, r.ZeroWidth)
	case r.Coverage < lo:
		return fmt.Errorf("%v: coverage %.4f < %.2f", r.Cell, r.Coverage, lo)
	case !r.Sparse() && r.Coverage > hi:
		return fmt.Errorf("%v: coverage %.4f > %.2f with a summed squared change of %.1f", r.Cell, r.Coverage, hi, r.Mass)
	}
	return nil
}

// MonteCarlo measures m's coverage on reps replicates of c drawn from a PCG seeded with seed.
func MonteCarlo(c Cell, reps int, seed uint64, m Method) Result {
	r := rand.New(rand.NewPCG(seed, uint64(c.Items)))
	d := make([]float64, c.Items)
	truth := c.Truth()
	res := Result{Cell: c, Reps: reps}
	for range reps {
		c.Draw(r, d)
		lo, hi := m(d)
		if covers(lo, hi, truth) {
			res.Coverage++
		}
		if hi <= lo {
			res.ZeroWidth++
		}
		for _, x := range d {
			res.Mass += x * x
		}
		res.HalfWidth += (hi - lo) / 2
	}
	n := float64(reps)
	res.Coverage, res.ZeroWidth, res.Mass, res.HalfWidth = res.Coverage/n, res.ZeroWidth/n, res.Mass/n, res.HalfWidth/n
	return res
}

// ExactBinary computes the exact coverage of m on a Binary cell: the discordant counts (loss, gain) are
// multinomial, and m is evaluated on every pair of counts with probability above 1e-15 (the rest, under 1e-11
// in all, count as misses). m gets the per-item differences as -1, 0, 1 values.
func ExactBinary(c Cell, m Method) Result {
	n := c.Items
	pl, pg := c.Base*c.Loss, (1-c.Base)*c.Gain
	truth := c.Truth()
	res := Result{Cell: c, Mass: c.ExpectedMass()}
	d := make([]float64, n)
	lf := func(k int) float64 { v, _ := math.Lgamma(float64(k + 1)); return v }
	logp := func(x float64, k int) float64 {
		if k == 0 {
			return 0
		}
		return float64(k) * math.Log(x)
	}
	for l := 0; l <= n; l++ {
		if pl == 0 && l > 0 {
			break
		}
		for g := 0; l+g <= n; g++ {
			if pg == 0 && g > 0 {
				break
			}
			rest := n - l - g
			lp := lf(n) - lf(l) - lf(g) - lf(rest) + logp(pl, l) + logp(pg, g) + logp(1-pl-pg, rest)
			if lp < math.Log(1e-15) {
				if float64(g) > float64(n)*pg {
					break // past the mode in g: only smaller terms follow
				}
				continue
			}
			p := math.Exp(lp)
			for i := range d {
				switch {
				case i < l:
					d[i] = -1
				case i < l+g:
					d[i] = 1
				default:
					d[i] = 0
				}
			}
			lo, hi := m(d)
			if covers(lo, hi, truth) {
				res.Coverage += p
			}
			if hi <= lo {
				res.ZeroWidth += p
			}
			res.HalfWidth += p * (hi - lo) / 2
		}
	}
	return res
}

// covers reports whether [lo, hi] holds t, allowing for the rounding of t's own computation.
func covers(lo, hi, t float64) bool { return lo <= t+1e-12 && t-1e-12 <= hi }

// Grid returns the cells of family f over items, baseline accuracies and flip rates (every loss, gain pair).
func Grid(f Family, items []int, bases, rates []float64) []Cell {
	var cells []Cell
	for _, n := range items {
		for _, b := range bases {
			for _, l := range rates {
				for _, g := range rates {
					cells = append(cells, Cell{Family: f, Items: n, Base: b, Loss: l, Gain: g})
				}
			}
		}
	}
	return cells
}

func mean(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Attainable is what McNemarAttainable found.
type Attainable struct {
	// Known is false when the cell has too many outcomes to enumerate the intervals' choices.
	Known bool
	// InBand is true when some consistent interval has its coverage in the band (when Known).
	InBand bool
	// Above is the lowest coverage above the band and Below the highest below it that a consistent interval can
	// have (when Known and not InBand; NaN when there is none), and Forced the probability of the outcomes every
	// consistent interval covers.
	Above, Below, Forced float64
}

// McNemarAttainable decides, for a Binary cell, whether an interval that agrees with the exact McNemar test can
// have its coverage in [lo, hi] at all. Agreeing means: the interval contains its estimate, and contains 0 whenever
// the exact two-sided McNemar test (stats.McNemarExact) does not reject at 1-level. Such an interval must cover the
// truth on every outcome whose estimate lies on the far side of the truth from 0 and whose p-value is above
// 1-level; on the other (free) outcomes it may miss. The coverage is 1 minus the probability of the outcomes it
// misses, so the band is attainable exactly when some set of free outcomes has a probability in [1-hi, 1-lo].
// Outcomes no more probable than the band's width step through it one by one, so only the sets of the more
// probable ones are enumerated, when there are at most 22 of them (else Known is false).
func McNemarAttainable(c Cell, level, lo, hi float64) Attainable {
	a := Attainable{Above: math.NaN(), Below: math.NaN()}
	if c.Family != Binary {
		return a
	}
	n := c.Items
	pl, pg := c.Base*c.Loss, (1-c.Base)*c.Gain
	truth := c.Truth()
	lf := func(k int) float64 { v, _ := math.Lgamma(float64(k + 1)); return v }
	logp := func(x float64, k int) float64 {
		if k == 0 {
			return 0
		}
		return float64(k) * math.Log(x)
	}
	var big []float64 // free outcomes more probable than the band is wide
	small := 0.0      // the total of the others
	for l := 0; l <= n; l++ {
		if pl == 0 && l > 0 {
			break
		}
		for g := 0; l+g <= n; g++ {
			if pg == 0 && g > 0 {
				break
			}
			p := math.Exp(lf(n) - lf(l) - lf(g) - lf(n-l-g) + logp(pl, l) + logp(pg, g) + logp(1-pl-pg, n-l-g))
			est := float64(g-l) / float64(n)
			between := math.Min(0, est) <= truth+1e-12 && truth-1e-12 <= math.Max(0, est)
			switch {
			case between && stats.McNemarExact(l, g) > 1-level:
				a.Forced += p
			case p > hi-lo:
				big = append(big, p)
			default:
				small += p
			}
		}
	}
	if len(big) > 22 {
		return a
	}
	a.Known = true
	// a set of big outcomes with probability s, plus small ones added one at a time, misses anything in
	// [s, s+small] to within the band's width
	for mask := 0; mask < 1<<len(big); mask++ {
		s := 0.0
		for i, p := range big {
			if mask&(1<<i) != 0 {
				s += p
			}
		}
		switch {
		case s <= 1-lo && s+small >= 1-hi:
			a.InBand = true
		case s+small < 1-hi && !(1-(s+small) >= a.Above):
			a.Above = 1 - (s + small)
		case s > 1-lo && !(1-s <= a.Below):
			a.Below = 1 - s
		}
	}
	if a.InBand {
		a.Above, a.Below = math.NaN(), math.NaN()
	}
	return a
}
