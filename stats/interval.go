package stats

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Interval methods, as named in reports (Interval.Method).
const (
	// MethodTango is Tango's asymptotic score interval for the difference of paired proportions
	// (Tango 1998, Stat Med 17:891), used when every paired item scores 0 or 1 on both sides.
	MethodTango = "tango"
	// MethodTangoDE is Tango's interval on counts scaled by a design effect (Rao and Scott 1992, Biometrics
	// 48:577), used for partial scores and for several samples per item; see PairedCI.
	MethodTangoDE = "tango-de"
)

// PseudoMass is the prior weight, in items that changed by a full point, with which PairedCI shrinks its
// design effect towards 1 (the largest variance that differences in [-1, 1] can have). It keeps the interval
// honest when a few small changes are all the sample shows; docs/statistics.md gives the simulation that chose it.
const PseudoMass = 0.5

// Interval is a confidence interval for the mean paired difference (policy minus baseline), with what it was
// computed from.
type Interval struct {
	// Lo and Hi bound the difference (fractions in [-1, 1]); NaN without items.
	Lo, Hi float64
	// Method is MethodTango or MethodTangoDE ("" without items).
	Method string
	// N is the number of paired items.
	N int
	// Loss and Gain are the summed per-item losses and gains: the sums over items of max(-d, 0) and
	// max(d, 0). With right/wrong items they are the discordant counts.
	Loss, Gain float64
	// Design is the design effect D in (0, 1] the counts were divided by (1 for right/wrong items).
	Design float64
	// Level is the confidence level.
	Level float64
}

// HalfWidth is half the interval's width (NaN without items).
func (iv Interval) HalfWidth() float64 { return (iv.Hi - iv.Lo) / 2 }

// TangoCI returns Tango's score confidence interval at level for the difference of paired proportions
// (gain - loss) / n, where gain counts the items right only under the second condition and loss those right
// only under the first, out of n pairs. The counts may be fractional (PairedCI passes scaled counts).
// The limits are the roots of the score statistic at ±z, found by bisection to full float64 precision; the
// interval always contains the estimate and has positive width for n > 0. It returns NaN, NaN when n <= 0,
// a count is negative or gain + loss > n.
func TangoCI(loss, gain, n, level float64) (lo, hi float64) {
	if !(n > 0) || loss < 0 || gain < 0 || loss+gain > n*(1+1e-12) || math.IsInf(n, 0) {
		return math.NaN(), math.NaN()
	}
	z := distuv.UnitNormal.Quantile(1 - (1-level)/2)
	est := (gain - loss) / n
	// Tango's statistic for H0: delta = d, in his orientation (first minus second) with n12 = gain, n21 = loss;
	// it decreases in d.
	stat := func(d float64) float64 {
		b := -gain - loss + (2*n-gain+loss)*d
		c := -loss * d * (1 - d)
		p21 := (math.Sqrt(b*b-8*n*c) - b) / (4 * n)
		num := gain - loss - n*d
		v := n * (2*p21 + d*(1-d))
		if !(v > 0) {
			if num == 0 {
				return 0
			}
			return math.Copysign(math.Inf(1), num)
		}
		return num / math.Sqrt(v)
	}
	lo, hi = -1, 1
	if est > -1 {
		lo = bisect(func(d float64) float64 { return stat(d) - z }, -1, est)
	}
	if est < 1 {
		hi = bisect(func(d float64) float64 { return stat(d) + z }, est, 1)
	}
	return lo, hi
}

// bisect returns the root of a decreasing f in [a, b] (f(a) >= 0 >= f(b)), to the last float64 bit.
func bisect(f func(float64) float64, a, b float64) float64 {
	for range 200 {
		m := a + (b-a)/2
		if m <= a || m >= b {
			break
		}
		if f(m) > 0 {
			a = m
		} else {
			b = m
		}
	}
	return a + (b-a)/2
}

// PairedCI returns the confidence interval at level (0 < level < 1; otherwise DefaultLevel) for the mean of the
// per-item paired differences d (each in [-1, 1]: policy minus baseline mean score of one item).
//
// When every d is -1, 0 or 1 (one right/wrong verdict per item, or samples that all agree) it is Tango's score
// interval on the discordant counts. Otherwise the counts are the summed losses L and gains G. A right/wrong
// model with those counts has the per-item variance (L+G)/n - mean², while the differences have the observed
// variance sum(d²)/n - mean², no larger since d² <= |d| on [-1, 1]. Their ratio is the design effect
//
//	D = (sum(d²) - n·mean² + PseudoMass) / (L + G - n·mean² + PseudoMass),
//
// shrunk towards 1 by PseudoMass so that a few small changes cannot make it tiny. Dividing both counts and n by
// D (Rao and Scott's adjustment for clustered binary data) gives back the observed variance at the estimate
// while keeping the score interval's skew near the bounds and its width when few items change. D = 1 exactly for
// right/wrong items, so the two cases agree where they meet. No change at all gives Tango's interval for zero
// discordant pairs, ±z²/(n+z²): never zero width.
func PairedCI(d []float64, level float64) Interval { return PairedCIShrunk(d, level, PseudoMass) }

// PairedCIShrunk is PairedCI with pseudo in place of PseudoMass (tools/coverage measures what the shrinkage buys;
// pseudo 0 leaves D unshrunk, and an all-equal partial sample then gets D = 0 and a NaN interval).
func PairedCIShrunk(d []float64, level, pseudo float64) Interval {
	if level <= 0 || level >= 1 {
		level = DefaultLevel
	}
	iv := Interval{Lo: math.NaN(), Hi: math.NaN(), N: len(d), Design: math.NaN(), Level: level}
	if len(d) == 0 {
		return iv
	}
	var sq float64
	binary := true
	for _, x := range d {
		if x < 0 {
			iv.Loss -= x
		} else {
			iv.Gain += x
		}
		sq += x * x
		if x != 0 && x != 1 && x != -1 {
			binary = false
		}
	}
	iv.Method, iv.Design = MethodTango, 1
	if !binary {
		n := float64(len(d))
		m2 := sq2(iv.Gain-iv.Loss) / n // n·mean²
		iv.Method = MethodTangoDE
		iv.Design = math.Min(1, (math.Max(0, sq-m2)+pseudo)/(math.Max(0, iv.Loss+iv.Gain-m2)+pseudo))
	}
	iv.Lo, iv.Hi = designCI(iv.Loss, iv.Gain, float64(len(d)), iv.Design, level)
	return iv
}

func sq2(x float64) float64 { return x * x }

// designCI is Tango's interval on the counts and n divided by the design effect D.
func designCI(loss, gain, n, design, level float64) (lo, hi float64) {
	return TangoCI(loss/design, gain/design, n/design, level)
}

// PlanItems returns the number of paired items a run would need for the interval iv describes to have a
// half-width of at most maxDrop (a fraction, e.g. 0.02 for 2 points): the smallest n for which the interval
// computed at iv's observed per-item loss and gain rates and design effect, scaled to n items, is no wider than
// ±maxDrop. With no change observed this is about z²/maxDrop. It returns 0 when iv has no items, counts or
// design effect, or maxDrop is not a positive number, and math.MaxInt when even 2^40 items would not do.
func PlanItems(iv Interval, maxDrop float64) int {
	if iv.N <= 0 || !(maxDrop > 0) || !(iv.Design > 0 && iv.Design <= 1) || !(iv.Loss >= 0) || !(iv.Gain >= 0) {
		return 0
	}
	if !(iv.Level > 0 && iv.Level < 1) {
		iv.Level = DefaultLevel
	}
	n0 := float64(iv.N)
	half := func(n int) float64 {
		k := float64(n) / n0
		lo, hi := designCI(iv.Loss*k, iv.Gain*k, float64(n), iv.Design, iv.Level)
		return (hi - lo) / 2
	}
	const most = 1 << 40
	if half(most) > maxDrop {
		return math.MaxInt
	}
	a, b := 0, most // half(a) > maxDrop (or a = 0), half(b) <= maxDrop
	for b-a > 1 {
		m := a + (b-a)/2
		if half(m) <= maxDrop {
			b = m
		} else {
			a = m
		}
	}
	return b
}
