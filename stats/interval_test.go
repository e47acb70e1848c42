package stats

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

var z95 = distuv.UnitNormal.Quantile(0.975)

// scoreByLikelihood is Tango's score statistic for H0: (gain - loss)/n = d computed independently of TangoCI:
// the restricted maximum likelihood of the cell probabilities (q for "right only under the first condition",
// q + d for "only under the second") is found by golden-section search on the multinomial log-likelihood.
func scoreByLikelihood(loss, gain, n, d float64) float64 {
	ll := func(q float64) float64 {
		v := loss*math.Log(q) + gain*math.Log(q+d)
		if r := n - loss - gain; r > 0 {
			v += r * math.Log(1-2*q-d)
		}
		return v
	}
	a, b := math.Max(0, -d), (1-d)/2
	const phi = 0.6180339887498949
	for range 300 {
		x1, x2 := b-phi*(b-a), a+phi*(b-a)
		if ll(x1) < ll(x2) {
			a = x1
		} else {
			b = x2
		}
	}
	q := (a + b) / 2
	return (gain - loss - n*d) / math.Sqrt(n*(2*q+d-d*d))
}

// TestTangoScoreAtLimits: at each limit the score statistic, computed from a numerically maximised likelihood,
// is ±z, so the closed-form restricted MLE and the root finding are both right.
func TestTangoScoreAtLimits(t *testing.T) {
	for _, tc := range [][3]float64{
		{7, 1, 21}, {6, 16, 161}, {4, 0, 30}, {0, 4, 30}, {3, 3, 50}, {1, 0, 30}, {12.5, 3.25, 80.75}, {40, 20, 160},
		{0, 0, 30}, {0, 29, 30},
	} {
		loss, gain, n := tc[0], tc[1], tc[2]
		lo, hi := TangoCI(loss, gain, n, 0.95)
		if s := scoreByLikelihood(loss, gain, n, lo); math.Abs(s-z95) > 1e-5 {
			t.Errorf("TangoCI%v lower limit %.6f: score %.7f, want %.7f", tc, lo, s, z95)
		}
		if s := scoreByLikelihood(loss, gain, n, hi); math.Abs(s+z95) > 1e-5 {
			t.Errorf("TangoCI%v upper limit %.6f: score %.7f, want %.7f", tc, hi, s, -z95)
		}
	}
}

// TestTangoZeroDiscordance: with no discordant pair the interval is ±z²/(n+z²) (the Wilson interval's reach
// from 0), never [0, 0].
func TestTangoZeroDiscordance(t *testing.T) {
	for _, n := range []float64{1, 10, 30, 100, 1000, 1e6} {
		lo, hi := TangoCI(0, 0, n, 0.95)
		want := z95 * z95 / (n + z95*z95)
		if math.Abs(lo+want) > 1e-12 || math.Abs(hi-want) > 1e-12 {
			t.Errorf("n = %g: [%.15g, %.15g], want ±%.15g", n, lo, hi, want)
		}
	}
}

// TestTangoProperties checks every table up to 40 pairs: the interval lies in [-1, 1], holds the estimate
// strictly inside (up to the bound), mirrors when the two conditions swap, and moves down with each extra loss.
func TestTangoProperties(t *testing.T) {
	for n := 1; n <= 40; n++ {
		for l := 0; l <= n; l++ {
			prevLo, prevHi := 2.0, 2.0
			for g := n - l; g >= 0; g-- { // decreasing gain: the interval moves down
				lo, hi := TangoCI(float64(l), float64(g), float64(n), 0.95)
				est := float64(g-l) / float64(n)
				if !(lo >= -1 && hi <= 1 && lo <= est && est <= hi && hi > lo) || (est > -1 && lo == est) || (est < 1 && hi == est) {
					t.Fatalf("TangoCI(%d, %d, %d) = [%g, %g], estimate %g", l, g, n, lo, hi, est)
				}
				mlo, mhi := TangoCI(float64(g), float64(l), float64(n), 0.95)
				if math.Abs(mlo+hi) > 1e-12 || math.Abs(mhi+lo) > 1e-12 {
					t.Fatalf("TangoCI(%d, %d, %d) = [%g, %g] but swapped [%g, %g]", l, g, n, lo, hi, mlo, mhi)
				}
				if lo >= prevLo || hi >= prevHi {
					t.Fatalf("TangoCI(%d, %d, %d) = [%g, %g] not below the interval with one more gain [%g, %g]", l, g, n, lo, hi, prevLo, prevHi)
				}
				prevLo, prevHi = lo, hi
			}
		}
	}
	// a higher level gives a wider interval
	lo90, hi90 := TangoCI(3, 1, 30, 0.90)
	lo99, hi99 := TangoCI(3, 1, 30, 0.99)
	if !(lo99 < lo90 && hi90 < hi99) {
		t.Errorf("90%% [%g, %g] not inside 99%% [%g, %g]", lo90, hi90, lo99, hi99)
	}
}

func TestTangoInvalid(t *testing.T) {
	for _, tc := range [][3]float64{{0, 0, 0}, {-1, 0, 10}, {0, -1, 10}, {6, 5, 10}, {1, 1, math.NaN()}, {1, 1, math.Inf(1)}} {
		if lo, hi := TangoCI(tc[0], tc[1], tc[2], 0.95); !math.IsNaN(lo) || !math.IsNaN(hi) {
			t.Errorf("TangoCI%v = [%g, %g], want NaN", tc, lo, hi)
		}
	}
}

func TestPairedCI(t *testing.T) {
	t.Run("right/wrong items are Tango's interval", func(t *testing.T) {
		d := []float64{-1, -1, -1, 1, 0, 0, 0, 0, 0, 0, 0, 0}
		iv := PairedCI(d, 0.95)
		lo, hi := TangoCI(3, 1, 12, 0.95)
		if iv.Method != MethodTango || iv.Design != 1 || iv.Lo != lo || iv.Hi != hi || iv.Loss != 3 || iv.Gain != 1 || iv.N != 12 {
			t.Errorf("PairedCI = %+v, want Tango [%g, %g]", iv, lo, hi)
		}
	})
	t.Run("no change is never zero width", func(t *testing.T) {
		iv := PairedCI(make([]float64, 30), 0.95)
		if iv.Method != MethodTango || !(iv.Hi > 0.1 && iv.Lo < -0.1) {
			t.Errorf("30 unchanged items: %+v", iv)
		}
	})
	t.Run("partial scores use the design effect", func(t *testing.T) {
		d := []float64{-0.5, -0.25, 0.25, 0, 0, 0, 0, 0, 0, 0}
		iv := PairedCI(d, 0.95)
		nMean2 := 0.5 * 0.5 / 10 // n·mean², mean = -0.05
		wantD := (0.25 + 0.0625 + 0.0625 - nMean2 + PseudoMass) / (1 - nMean2 + PseudoMass)
		lo, hi := TangoCI(0.75/wantD, 0.25/wantD, 10/wantD, 0.95)
		if iv.Method != MethodTangoDE || math.Abs(iv.Design-wantD) > 1e-15 || iv.Lo != lo || iv.Hi != hi {
			t.Errorf("PairedCI = %+v, want D %g, [%g, %g]", iv, wantD, lo, hi)
		}
	})
	t.Run("the same small change everywhere keeps a width", func(t *testing.T) {
		d := make([]float64, 50)
		for i := range d {
			d[i] = -0.01
		}
		iv := PairedCI(d, 0.95)
		if !(iv.Lo < -0.01 && iv.Hi > -0.01 && iv.Hi-iv.Lo > 0.005) {
			t.Errorf("constant -0.01: %+v", iv)
		}
	})
	t.Run("many partial changes: the observed variance", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 1))
		d := make([]float64, 5000)
		var s, s2 float64
		for i := range d {
			d[i] = 0.3 * (r.Float64() - 0.6)
			s += d[i]
		}
		mean := s / float64(len(d))
		for _, x := range d {
			s2 += (x - mean) * (x - mean)
		}
		want := z95 * math.Sqrt(s2/float64(len(d))) / math.Sqrt(float64(len(d)))
		if iv := PairedCI(d, 0.95); math.Abs(iv.HalfWidth()/want-1) > 0.01 || math.Abs((iv.Lo+iv.Hi)/2-mean) > 0.1*want {
			t.Errorf("half-width %g centred on %g, want about %g around %g (the t-interval of a large sample)", iv.HalfWidth(),
				(iv.Lo+iv.Hi)/2, want, mean)
		}
	})
	t.Run("no items", func(t *testing.T) {
		if iv := PairedCI(nil, 0.95); !math.IsNaN(iv.Lo) || !math.IsNaN(iv.Hi) || iv.Method != "" || PlanItems(iv, 0.02) != 0 {
			t.Errorf("PairedCI(nil) = %+v", iv)
		}
	})
}

func TestPlanItems(t *testing.T) {
	// no change: half-width z²/(n+z²) <= m from n = z²/m - z² on
	for _, m := range []float64{0.005, 0.01, 0.02, 0.05, 0.1} {
		n := PlanItems(PairedCI(make([]float64, 30), 0.95), m)
		if want := int(math.Ceil(z95*z95/m - z95*z95)); n != want {
			t.Errorf("max drop %g, no change: %d items, want %d", m, n, want)
		}
	}
	// observed rates: the answer is the smallest n whose scaled interval is narrow enough
	for _, d := range [][]float64{
		{-1, -1, -1, 1, 0, 0, 0, 0, 0, 0, 0, 0},
		{-0.5, -0.25, 0.25, 0, 0, 0, 0, 0, 0, 0},
		{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
	} {
		iv := PairedCI(d, 0.95)
		prev := math.MaxInt
		for _, m := range []float64{0.01, 0.02, 0.05} {
			n := PlanItems(iv, m)
			half := func(n int) float64 {
				k := float64(n) / float64(iv.N)
				lo, hi := TangoCI(iv.Loss*k/iv.Design, iv.Gain*k/iv.Design, float64(n)/iv.Design, 0.95)
				return (hi - lo) / 2
			}
			if !(half(n) <= m && half(n-1) > m) || n >= prev {
				t.Errorf("%v at ±%g: %d items (half-widths %g at n, %g at n-1; %d for a tighter drop)", d, m, n, half(n), half(n-1), prev)
			}
			prev = n
		}
	}
	for _, m := range []float64{0, -1, math.NaN()} {
		if n := PlanItems(PairedCI([]float64{0, -1}, 0.95), m); n != 0 {
			t.Errorf("max drop %g: %d items, want 0", m, n)
		}
	}
	if n := PlanItems(Interval{N: 10, Loss: 1, Design: 0}, 0.02); n != 0 {
		t.Errorf("no design effect: %d items, want 0", n)
	}
}

func ExamplePairedCI() {
	// 30 items, the compressed policy got 4 wrong that the baseline got right and none the other way round
	d := make([]float64, 30)
	for i := range 4 {
		d[i] = -1
	}
	iv := PairedCI(d, 0.95)
	fmt.Printf("%s: [%+.1f, %+.1f] pp; ±2 pp needs %d items\n", iv.Method, 100*iv.Lo, 100*iv.Hi, PlanItems(iv, 0.02))
	// Output: tango: [-29.7, -0.5] pp; ±2 pp needs 1111 items
}
