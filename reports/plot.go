package reports

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"sort"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Plot geometry: one panel per benchmark, stacked.
const (
	plotWidth  = 6 * vg.Inch
	panelH     = 3.6 * vg.Inch
	pngDPI     = 110
	baseLegend = "full (baseline)"
)

// WriteSVG draws the accuracy-versus-budget plot (report.svg).
func WriteSVG(w io.Writer, r *Report) error { return writeSVG(w, r, Plots) }

// WritePNG draws the accuracy-versus-budget plot (report.png).
func WritePNG(w io.Writer, r *Report) error { return writePNG(w, r, Plots) }

// WriteKVSVG draws the accuracy-versus-KV-bytes plot (report-kv.svg).
func WriteKVSVG(w io.Writer, r *Report) error { return writeSVG(w, r, KVPlots) }

// WriteKVPNG draws the accuracy-versus-KV-bytes plot (report-kv.png).
func WriteKVPNG(w io.Writer, r *Report) error { return writePNG(w, r, KVPlots) }

func writeSVG(w io.Writer, r *Report, build func(*Report) ([]*plot.Plot, error)) error {
	plots, err := build(r)
	if err != nil {
		return err
	}
	c := vgsvg.New(plotWidth, panelH*vg.Length(max(1, len(plots))))
	drawPanels(draw.New(c), plots)
	_, err = c.WriteTo(w)
	return err
}

func writePNG(w io.Writer, r *Report, build func(*Report) ([]*plot.Plot, error)) error {
	plots, err := build(r)
	if err != nil {
		return err
	}
	c := vgimg.NewWith(vgimg.UseWH(plotWidth, panelH*vg.Length(max(1, len(plots)))), vgimg.UseDPI(pngDPI))
	drawPanels(draw.New(c), plots)
	_, err = vgimg.PngCanvas{Canvas: c}.WriteTo(w)
	return err
}

func drawPanels(dc draw.Canvas, plots []*plot.Plot) {
	if len(plots) == 0 {
		p := plot.New()
		p.Title.Text = "no records"
		p.HideAxes()
		p.Draw(dc)
		return
	}
	grid := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		grid[i] = []*plot.Plot{p}
	}
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadTop: 4, PadBottom: 4, PadLeft: 4, PadRight: 4, PadY: 12}
	canvases := plot.Align(grid, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[i][0])
	}
}

// series is one line of the plot: the policies of one method (and adaptive setting), by budget or KV bytes.
type series struct {
	name   string
	points []point
}

type point struct {
	budget         float64 // the x value: budget, or KV bytes
	acc, low, high float64 // error bar extents below/above acc (0 when unknown)
	label          string  // the KV plot's point label: the budget, or kvquant's bits
}

// errPoints adapts points to gonum's YValuer/YErrorer and XYer.
type errPoints []point

func (e errPoints) Len() int                        { return len(e) }
func (e errPoints) XY(i int) (float64, float64)     { return e[i].budget, e[i].acc }
func (e errPoints) YError(i int) (float64, float64) { return e[i].low, e[i].high }

// axis is what distinguishes the two plots: their x value, titles and ticks.
type axis struct {
	title, xLabel string
	// x is the row's x value; ok false leaves the row out.
	x func(row Row, s Split) (v float64, ok bool)
	// kv: log x axis always, byte ticks, the baseline drawn as a point too, points labelled.
	kv bool
}

// budgetAxis is report.svg's: accuracy against the cache budget in slots (policies without a budget left out).
var budgetAxis = &axis{
	title:  ": accuracy vs KV budget (bars: 95% paired CI of the delta vs baseline)",
	xLabel: "KV cache budget (total slots per layer and KV head)",
	x: func(row Row, s Split) (float64, bool) {
		return float64(s.Budget), s.Budget > 0
	},
}

// kvAxis is report-kv.svg's: accuracy against the mean KV bytes per sequence (Row.KVBytes), which puts evicting
// and quantized caches on one axis; rows without KV bytes (remote backends) are left out.
var kvAxis = &axis{
	title:  ": accuracy vs KV memory (bars: 95% paired CI of the delta vs baseline)",
	xLabel: "mean KV-cache memory per sequence (log scale)",
	x: func(row Row, s Split) (float64, bool) {
		return float64(row.KVBytes), row.KVBytes.OK() && row.KVBytes > 0
	},
	kv: true,
}

// Plots builds one gonum plot per benchmark: accuracy (graded, %) against cache budget (total slots), one line
// per method, the baseline as a horizontal line, and error bars from the paired CI of the delta drawn around
// each point.
func Plots(r *Report) ([]*plot.Plot, error) { return plotsOn(r, budgetAxis) }

// KVPlots builds one gonum plot per benchmark: accuracy (graded, %) against the mean KV bytes per sequence on a
// log axis, one line per method (kvquant's points labelled with their bits, the others with their budget), the
// baseline as a point and a horizontal line, and the same error bars as Plots.
func KVPlots(r *Report) ([]*plot.Plot, error) { return plotsOn(r, kvAxis) }

func plotsOn(r *Report, ax *axis) ([]*plot.Plot, error) {
	splits := map[string]Split{}
	for _, p := range r.Policies {
		splits[p.Spec] = p.Split
	}
	var out []*plot.Plot
	for _, b := range r.Benches {
		p, err := benchPlot(b, splits, ax)
		if err != nil {
			return nil, fmt.Errorf("plot of %s: %w", b.Name, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func benchPlot(b Bench, splits map[string]Split, ax *axis) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = b.Name + ax.title
	p.X.Label.Text = ax.xLabel
	p.Y.Label.Text = "accuracy over graded records (%)"
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Points(6)
	p.Legend.YOffs = vg.Points(6)

	var lines []*series
	byName := map[string]*series{}
	baseAcc := math.NaN()
	var base *point
	for _, row := range b.Rows {
		s := splits[row.Policy]
		if row.Baseline {
			baseAcc = float64(row.Accuracy)
			if x, ok := ax.x(row, s); ax.kv && ok && row.Accuracy.OK() {
				base = &point{budget: x, acc: baseAcc}
			}
			continue
		}
		x, ok := ax.x(row, s)
		if !ok || !row.Accuracy.OK() {
			continue
		}
		name := s.Method
		if s.Base != "" {
			name += " on " + s.Base
		}
		if s.Adaptive {
			name += " (adaptive)"
		}
		if s.Rerotate {
			name += " (rerotate)"
		}
		if s.Weights != "" {
			name += ", " + s.Weights
		}
		sr := byName[name]
		if sr == nil {
			sr = &series{name: name}
			byName[name] = sr
			lines = append(lines, sr)
		}
		pt := point{budget: x, acc: float64(row.Accuracy)}
		if row.Delta.OK() && row.Lo.OK() && row.Hi.OK() {
			pt.low = math.Max(0, float64(row.Delta-row.Lo))
			pt.high = math.Max(0, float64(row.Hi-row.Delta))
		}
		if ax.kv {
			switch {
			case s.Bits > 0:
				pt.label = fmt.Sprintf("%d-bit", s.Bits)
			case s.Budget > 0:
				pt.label = strconv.Itoa(s.Budget)
			}
		}
		sr.points = append(sr.points, pt)
	}

	var budgets []float64
	seen := map[float64]bool{}
	for _, sr := range lines {
		sort.SliceStable(sr.points, func(i, j int) bool { return sr.points[i].budget < sr.points[j].budget })
		for _, pt := range sr.points {
			if !seen[pt.budget] {
				seen[pt.budget] = true
				budgets = append(budgets, pt.budget)
			}
		}
	}
	if base != nil && !seen[base.budget] {
		budgets = append(budgets, base.budget)
	}
	sort.Float64s(budgets)
	xmin, xmax := 0.0, 1.0
	if len(budgets) > 0 {
		xmin, xmax = budgets[0], budgets[len(budgets)-1]
		if budgets[0] > 0 && (ax.kv || xmax/xmin >= 8) {
			p.X.Scale = plot.LogScale{}
		}
		if ax.kv {
			p.X.Tick.Marker = plot.ConstantTicks(byteTicks(xmin, xmax))
		} else {
			ticks := make([]plot.Tick, len(budgets))
			for i, v := range budgets {
				ticks[i] = plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)}
			}
			p.X.Tick.Marker = plot.ConstantTicks(ticks)
		}
		if xmin == xmax {
			xmin, xmax = xmin*0.9, xmax*1.1
		}
	}
	// margins so that edge points and their bars stay clear of the axes
	if _, log := p.X.Scale.(plot.LogScale); log {
		xmin, xmax = xmin/1.15, xmax*1.15
	} else {
		pad := 0.06 * (xmax - xmin)
		xmin, xmax = xmin-pad, xmax+pad
	}
	p.X.Min, p.X.Max = xmin, xmax
	// dodge: methods sharing a budget are drawn apart by 1.2% of the axis width each
	_, isLog := p.X.Scale.(plot.LogScale)
	for i, sr := range lines {
		k := 0.012 * (float64(i) - float64(len(lines)-1)/2)
		for j := range sr.points {
			if isLog {
				sr.points[j].budget *= math.Pow(xmax/xmin, k)
			} else {
				sr.points[j].budget += k * (xmax - xmin)
			}
		}
	}

	if !math.IsNaN(baseAcc) {
		line, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: baseAcc}, {X: xmax, Y: baseAcc}})
		if err != nil {
			return nil, err
		}
		line.Color = color.Black
		line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(line)
		if base != nil {
			sc, err := plotter.NewScatter(plotter.XYs{{X: base.budget, Y: base.acc}})
			if err != nil {
				return nil, err
			}
			sc.Color = color.Black
			sc.Shape = draw.BoxGlyph{}
			sc.Radius = vg.Points(3.5)
			p.Add(sc)
			p.Legend.Add(baseLegend, line, sc)
		} else {
			p.Legend.Add(baseLegend, line)
		}
	}
	for i, sr := range lines {
		pts := errPoints(sr.points)
		line, scatter, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		line.Color = plotutil.Color(i)
		scatter.Color = plotutil.Color(i)
		scatter.Shape = plotutil.Shape(i)
		bars, err := plotter.NewYErrorBars(pts)
		if err != nil {
			return nil, err
		}
		bars.Color = plotutil.Color(i)
		p.Add(line, scatter, bars)
		p.Legend.Add(sr.name, line, scatter)
		if ax.kv {
			labels := plotter.XYLabels{}
			for _, pt := range sr.points {
				labels.XYs = append(labels.XYs, plotter.XY{X: pt.budget, Y: pt.acc})
				labels.Labels = append(labels.Labels, pt.label)
			}
			l, err := plotter.NewLabels(labels)
			if err != nil {
				return nil, err
			}
			for j := range l.TextStyle {
				l.TextStyle[j].Font.Size = vg.Points(7)
				l.TextStyle[j].Color = plotutil.Color(i)
			}
			l.Offset = vg.Point{X: vg.Points(4), Y: vg.Points(3)}
			p.Add(l)
		}
	}
	// y range: 0..100 unless the data need more room (never: accuracies are percentages)
	p.Y.Min, p.Y.Max = 0, 100
	return p, nil
}

// byteTicks are the ticks of a log axis of bytes from lo to hi: powers of two, every one or every fourth, eighth
// ... so that at most 8 fall in the range (at least the two around it when none does), labelled in B, KiB, MiB or GiB.
func byteTicks(lo, hi float64) []plot.Tick {
	e0, e1 := int(math.Floor(math.Log2(lo))), int(math.Ceil(math.Log2(hi)))
	step := 1
	for (e1-e0)/step+1 > 8 {
		step *= 2
	}
	e0 -= ((e0 % step) + step) % step
	var ticks []plot.Tick
	for e := e0; e <= e1; e += step {
		v := math.Ldexp(1, e)
		ticks = append(ticks, plot.Tick{Value: v, Label: byteLabel(v)})
	}
	return ticks
}

// byteLabel prints a power-of-two byte count with the largest unit that keeps it at least 1.
func byteLabel(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for i+1 < len(units) && v >= 1024 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + " " + units[i]
}
