// Package stats holds the paired statistics snapeval reports: accuracy, the delta of a compressed cache policy
// against the full-cache baseline on the same items, a score-type confidence interval of that delta (Tango's
// interval for right/wrong items, on design-effect-scaled counts for partial scores and several samples per
// item; see PairedCI and docs/statistics.md), the number of items a gate would need (PlanItems), the exact
// McNemar test on discordant (item, sample) pairs, and the pass@k and cons@k estimators.
//
// Everything is deterministic: the intervals are closed-form up to a bisection, and the percentile bootstrap
// kept for comparison (BootstrapMeanCI) draws from a seeded PCG generator, so the same inputs and options always
// give the same numbers, bit for bit.
package stats

import (
	"math"
	"math/big"
	"math/bits"
	"math/rand/v2"
	"sort"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Defaults of Options.
const (
	DefaultResamples = 10000
	DefaultSeed      = 20251103
	DefaultLevel     = 0.95
)

// Obs is one graded sample of one item under one policy.
type Obs struct {
	Item   string
	Sample int
	// Score in [0,1]: 1/0 for exact tasks, partial credit otherwise.
	Score float64
	// Correct is the binary verdict McNemar's test uses.
	Correct bool
}

// Options configures the intervals. Zero fields take the defaults.
type Options struct {
	// Resamples is the number of resamples B of BootstrapMeanCI (default 10000); Compare does not resample.
	Resamples int
	// Seed seeds BootstrapMeanCI's generator (default DefaultSeed); the same seed gives the same interval.
	Seed uint64
	// Level is the confidence level of the interval (default 0.95).
	Level float64
}

func (o Options) withDefaults() Options {
	if o.Resamples <= 0 {
		o.Resamples = DefaultResamples
	}
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	if o.Level <= 0 || o.Level >= 1 {
		o.Level = DefaultLevel
	}
	return o
}

// Comparison is a policy compared with the baseline on the items both have.
// Accuracies and the delta are fractions in [0,1] (multiply by 100 for percentage points).
type Comparison struct {
	// Items is the number of paired items (graded on both sides); BaseOnly and PolicyOnly count the items
	// graded on one side only, which are excluded from every number below.
	Items, BaseOnly, PolicyOnly int
	// Base and Policy are the mean over paired items of the per-item mean score.
	Base, Policy float64
	// Delta is Policy - Base; Lo and Hi bound its confidence interval (NaN without items), CI.Lo and CI.Hi.
	Delta, Lo, Hi float64
	// CI is the interval with its method, the summed per-item losses and gains and the design effect.
	CI Interval
	// Pairs is the number of (item, sample) pairs graded on both sides.
	Pairs int
	// BaseWins counts pairs the baseline got right and the policy wrong; PolicyWins the reverse.
	BaseWins, PolicyWins int
	// P is the exact two-sided McNemar p-value over the discordant pairs (1 when there are none).
	P float64
}

// Mean returns the arithmetic mean of x (NaN for an empty slice).
func Mean(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	return stat.Mean(x, nil)
}

// ItemMeans returns the per-item mean score of obs and the item ids in sorted order.
func ItemMeans(obs []Obs) (ids []string, means map[string]float64) {
	sum := map[string]float64{}
	n := map[string]int{}
	for _, o := range obs {
		sum[o.Item] += o.Score
		n[o.Item]++
	}
	means = make(map[string]float64, len(sum))
	for id, s := range sum {
		means[id] = s / float64(n[id])
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids, means
}

// Accuracy is the mean over items of the per-item mean score (pass@1 when items have several samples).
func Accuracy(obs []Obs) float64 {
	ids, means := ItemMeans(obs)
	x := make([]float64, len(ids))
	for i, id := range ids {
		x[i] = means[id]
	}
	return Mean(x)
}

// Compare compares policy with base on the items graded on both sides: the per-item mean scores are paired,
// the interval of their mean difference computed by PairedCI, and the binary verdicts of (item, sample) pairs
// fed to McNemar's test.
func Compare(base, policy []Obs, opt Options) Comparison {
	bIDs, bMean := ItemMeans(base)
	_, pMean := ItemMeans(policy)
	var c Comparison
	var diffs, bx, px []float64
	for _, id := range bIDs {
		pm, ok := pMean[id]
		if !ok {
			c.BaseOnly++
			continue
		}
		bx = append(bx, bMean[id])
		px = append(px, pm)
		diffs = append(diffs, pm-bMean[id])
	}
	c.Items = len(diffs)
	c.PolicyOnly = len(pMean) - c.Items
	c.Base, c.Policy, c.Delta = Mean(bx), Mean(px), Mean(diffs)
	c.CI = PairedCI(diffs, opt.Level)
	c.Lo, c.Hi = c.CI.Lo, c.CI.Hi

	type key struct {
		item   string
		sample int
	}
	bc := make(map[key]bool, len(base))
	for _, o := range base {
		bc[key{o.Item, o.Sample}] = o.Correct
	}
	for _, o := range policy {
		bOK, ok := bc[key{o.Item, o.Sample}]
		if !ok {
			continue
		}
		c.Pairs++
		switch {
		case bOK && !o.Correct:
			c.BaseWins++
		case !bOK && o.Correct:
			c.PolicyWins++
		}
	}
	c.P = McNemarExact(c.BaseWins, c.PolicyWins)
	return c
}

// BootstrapMeanCI returns the percentile bootstrap confidence interval of the mean of x, resampling the
// elements of x with replacement opt.Resamples times. For paired data pass the per-item differences.
// It returns NaN, NaN for an empty x. Reports used it before PairedCI; it undercovers with few changed items and
// collapses to zero width when none changed, and is kept for the coverage comparison in docs/statistics.md.
func BootstrapMeanCI(x []float64, opt Options) (lo, hi float64) {
	if len(x) == 0 {
		return math.NaN(), math.NaN()
	}
	opt = opt.withDefaults()
	src := rand.NewPCG(opt.Seed, 0x736e61706576131) // "snapeva1"
	n := uint64(len(x))
	means := make([]float64, opt.Resamples)
	for b := range means {
		var s float64
		for range x {
			s += x[bounded(src, n)]
		}
		means[b] = s / float64(n)
	}
	sort.Float64s(means)
	alpha := (1 - opt.Level) / 2
	return stat.Quantile(alpha, stat.LinInterp, means, nil), stat.Quantile(1-alpha, stat.LinInterp, means, nil)
}

// bounded returns a uniform integer in [0, n) from src (Lemire's multiply-shift with rejection), so the
// stream of indices depends only on the PCG algorithm, which is fixed, and not on math/rand's helpers.
func bounded(src *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(src.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(src.Uint64(), n)
		}
	}
	return hi
}

// exactLimit is the largest number of discordant pairs for which McNemarExact sums the binomial tail with exact
// integers; above it gonum's regularized incomplete beta is used (relative error around 1e-14).
const exactLimit = 20000

// McNemarExact returns the exact two-sided McNemar p-value for b and c discordant pairs:
// min(1, 2 * P[X <= min(b, c)]) with X ~ Binomial(b+c, 1/2). It is 1 when b + c == 0.
// Up to 20000 discordant pairs the tail is summed with exact integers and rounded once, so that
// e.g. (1, 3) gives exactly 0.625.
func McNemarExact(b, c int) float64 {
	n := b + c
	if n <= 0 || b < 0 || c < 0 {
		return 1
	}
	k := min(b, c)
	if 2*k >= n {
		return 1
	}
	if n > exactLimit {
		return math.Min(1, 2*distuv.Binomial{N: float64(n), P: 0.5}.CDF(float64(k)))
	}
	// 2 * sum_{i<=k} C(n, i) / 2^n, with C(n, i+1) = C(n, i) * (n-i) / (i+1)
	term, sum := big.NewInt(1), big.NewInt(1)
	for i := 0; i < k; i++ {
		term.Mul(term, big.NewInt(int64(n-i)))
		term.Quo(term, big.NewInt(int64(i+1)))
		sum.Add(sum, term)
	}
	p, _ := new(big.Rat).SetFrac(sum, new(big.Int).Lsh(big.NewInt(1), uint(n-1))).Float64()
	return math.Min(1, p)
}
