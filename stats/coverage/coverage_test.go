package coverage

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/snapeval/snapeval/stats"
)

// paired is the interval the reports use.
func paired(d []float64) (float64, float64) {
	iv := stats.PairedCI(d, 0.95)
	return iv.Lo, iv.Hi
}

// TestCoverageBinaryExact: the exact coverage of the right/wrong interval over a small grid stays in 93-97%
// (at least 93% in sparse cells, exactly 1 in degenerate ones) and no interval has zero width.
func TestCoverageBinaryExact(t *testing.T) {
	cells := Grid(Binary, []int{30, 100}, []float64{0.5, 0.9, 0.98}, []float64{0, 0.02, 0.05, 0.1})
	for _, c := range cells {
		r := ExactBinary(c, paired)
		if err := r.Check(0.93, 0.97); err != nil {
			t.Error(err)
		}
	}
}

// TestCoverageMonteCarlo: the same band for several samples per item and for partial scores (seeded, so the
// numbers are the same on every run): at 100 items, mostly sparse cells where the lower bound applies, and at 500
// items with losses and gains of 5-10%, where the whole band does.
func TestCoverageMonteCarlo(t *testing.T) {
	var cells []Cell
	for _, f := range []Family{Samples, Partial, Jitter} {
		cells = append(cells, Grid(f, []int{100}, []float64{0.9}, []float64{0, 0.05, 0.1})...)
		cells = append(cells, Grid(f, []int{500}, []float64{0.5}, []float64{0.05, 0.1})...)
	}
	sparse := 0
	for _, c := range cells {
		r := MonteCarlo(c, 1000, 1, paired)
		t.Logf("%v: coverage %.3f, summed squared change %.1f", c, r.Coverage, r.Mass)
		if err := r.Check(0.93, 0.97); err != nil {
			t.Error(err)
		}
		if r.Sparse() {
			sparse++
		}
	}
	if sparse > len(cells)-9 {
		t.Errorf("%d of %d cells sparse: too few cells test the upper bound", sparse, len(cells))
	}
}

// TestOldBootstrapFails: the percentile bootstrap the reports used undercovers on the second row and
// returns zero-width intervals, which Check must catch (the test above would fail with it).
func TestOldBootstrapFails(t *testing.T) {
	c := Cell{Family: Binary, Items: 30, Base: 0.9, Loss: 0.05}
	boot := func(d []float64) (float64, float64) {
		return stats.BootstrapMeanCI(d, stats.Options{Resamples: 500})
	}
	r := MonteCarlo(c, 300, 1, boot)
	if r.Check(0.93, 0.97) == nil || r.Coverage > 0.9 || r.ZeroWidth < 0.1 {
		t.Errorf("percentile bootstrap: coverage %.3f, zero width %.3f; want it caught as undercovering", r.Coverage, r.ZeroWidth)
	}
}

// TestExactMatchesMonteCarlo checks the enumeration against simulation on one binary cell.
func TestExactMatchesMonteCarlo(t *testing.T) {
	c := Cell{Family: Binary, Items: 100, Base: 0.8, Loss: 0.05, Gain: 0.05}
	ex := ExactBinary(c, paired)
	mc := MonteCarlo(c, 4000, 3, paired)
	if se := math.Sqrt(ex.Coverage * (1 - ex.Coverage) / 4000); math.Abs(ex.Coverage-mc.Coverage) > 4*se {
		t.Errorf("exact coverage %.4f, Monte Carlo %.4f (4 SE = %.4f)", ex.Coverage, mc.Coverage, 4*se)
	}
	if math.Abs(ex.Mass-mc.Mass) > 0.5 {
		t.Errorf("expected discordant pairs %.2f, simulated %.2f", ex.Mass, mc.Mass)
	}
}

// TestTruth checks each family's closed-form delta against a large simulation.
func TestTruth(t *testing.T) {
	for _, f := range []Family{Binary, Samples, Partial, Jitter} {
		c := Cell{Family: f, Items: 200000, Base: 0.7, Loss: 0.1, Gain: 0.05}
		d := make([]float64, c.Items)
		c.Draw(rand.New(rand.NewPCG(5, 6)), d)
		got := mean(d)
		if math.Abs(got-c.Truth()) > 0.003 {
			t.Errorf("%s: simulated delta %.4f, closed form %.4f", f, got, c.Truth())
		}
	}
}

func TestCheck(t *testing.T) {
	c := Cell{Family: Binary, Items: 30, Base: 0.5, Loss: 0.1}
	tests := []struct {
		name string
		r    Result
		ok   bool
	}{
		{"in band", Result{Cell: c, Coverage: 0.95, Mass: 10}, true},
		{"undercovers", Result{Cell: c, Coverage: 0.92, Mass: 10}, false},
		{"overcovers", Result{Cell: c, Coverage: 0.98, Mass: 10}, false},
		{"sparse may overcover", Result{Cell: c, Coverage: 0.99, Mass: 2}, true},
		{"sparse may not undercover", Result{Cell: c, Coverage: 0.92, Mass: 2}, false},
		{"zero width", Result{Cell: c, Coverage: 0.95, Mass: 10, ZeroWidth: 0.01}, false},
		{"degenerate covers", Result{Cell: Cell{Family: Binary, Items: 30}, Coverage: 1, ZeroWidth: 1}, true},
		{"degenerate misses", Result{Cell: Cell{Family: Binary, Items: 30}, Coverage: 0.99}, false},
	}
	for _, tt := range tests {
		if err := tt.r.Check(0.93, 0.97); (err == nil) != tt.ok {
			t.Errorf("%s: Check = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

// TestMcNemarAttainable: in the second and third rows no interval that agrees with the exact McNemar
// test can cover between 93% and 97%; in a cell with a gain of 2.5 pp from 100 items one can.
func TestMcNemarAttainable(t *testing.T) {
	for _, tc := range []struct {
		c             Cell
		known, inBand bool
		above         float64
	}{
		{Cell{Family: Binary, Items: 30, Base: 0.9, Loss: 0.05}, true, false, 0.998},
		{Cell{Family: Binary, Items: 100, Base: 0.95, Loss: 0.02}, true, false, 0.988},
		{Cell{Family: Binary, Items: 30, Base: 0.7, Loss: 0.15, Gain: 0.05}, true, true, math.NaN()},
		{Cell{Family: Binary, Items: 100, Base: 0.5, Gain: 0.05}, true, true, math.NaN()},
	} {
		a := McNemarAttainable(tc.c, 0.95, 0.93, 0.97)
		if a.Known != tc.known || a.InBand != tc.inBand || math.Abs(a.Above-tc.above) > 0.0005 || math.IsNaN(a.Above) != math.IsNaN(tc.above) {
			t.Errorf("%v: %+v, want known %v, in band %v, lowest coverage above %.3f", tc.c, a, tc.known, tc.inBand, tc.above)
		}
		// the interval the reports use covers at least the forced outcomes, and where the band is out of reach
		// it takes the coverage nearest above it
		r := ExactBinary(tc.c, paired)
		if r.Coverage < a.Forced-1e-9 || (a.Known && !a.InBand && math.Abs(r.Coverage-a.Above) > 1e-9) {
			t.Errorf("%v: coverage %.4f; forced %.4f, lowest attainable above the band %.4f", tc.c, r.Coverage, a.Forced, a.Above)
		}
	}
}
