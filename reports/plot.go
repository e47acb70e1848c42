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
func WriteSVG(w io.Writer, r *Report) error {
	plots, err := Plots(r)
	if err != nil {
		return err
	}
	c := vgsvg.New(plotWidth, panelH*vg.Length(max(1, len(plots))))
	drawPanels(draw.New(c), plots)
	_, err = c.WriteTo(w)
	return err
}

// WritePNG draws the accuracy-versus-budget plot (report.png).
func WritePNG(w io.Writer, r *Report) error {
	plots, err := Plots(r)
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

// series is one line of the plot: the policies of one method (and adaptive setting), by budget.
type series struct {
	name   string
	points []point
}

type point struct {
	budget         float64
	acc, low, high float64 // error bar extents below/above acc (0 when unknown)
}

// errPoints adapts points to gonum's YValuer/YErrorer and XYer.
type errPoints []point

func (e errPoints) Len() int                        { return len(e) }
func (e errPoints) XY(i int) (float64, float64)     { return e[i].budget, e[i].acc }
func (e errPoints) YError(i int) (float64, float64) { return e[i].low, e[i].high }

// Plots builds one gonum plot per benchmark: accuracy (graded, %) against cache budget (total slots), one line
// per method, the baseline as a horizontal line, and error bars from the paired CI of the delta drawn around
// each point.
func Plots(r *Report) ([]*plot.Plot, error) {
	splits := map[string]Split{}
	for _, p := range r.Policies {
		splits[p.Spec] = p.Split
	}
	var out []*plot.Plot
	for _, b := range r.Benches {
		p, err := benchPlot(b, splits)
		if err != nil {
			return nil, fmt.Errorf("plot of %s: %w", b.Name, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func benchPlot(b Bench, splits map[string]Split) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = b.Name + ": accuracy vs KV budget (bars: 95% paired CI of the delta vs baseline)"
	p.X.Label.Text = "KV cache budget (total slots per layer and KV head)"
	p.Y.Label.Text = "accuracy over graded records (%)"
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Points(6)
	p.Legend.YOffs = vg.Points(6)

	var lines []*series
	byName := map[string]*series{}
	baseAcc := math.NaN()
	for _, row := range b.Rows {
		s := splits[row.Policy]
		if row.Baseline {
			baseAcc = float64(row.Accuracy)
			continue
		}
		if s.Budget <= 0 || !row.Accuracy.OK() {
			continue
		}
		name := s.Method
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
		pt := point{budget: float64(s.Budget), acc: float64(row.Accuracy)}
		if row.Delta.OK() && row.Lo.OK() && row.Hi.OK() {
			pt.low = math.Max(0, float64(row.Delta-row.Lo))
			pt.high = math.Max(0, float64(row.Hi-row.Delta))
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
	sort.Float64s(budgets)
	xmin, xmax := 0.0, 1.0
	if len(budgets) > 0 {
		xmin, xmax = budgets[0], budgets[len(budgets)-1]
		if budgets[0] > 0 && xmax/xmin >= 8 {
			p.X.Scale = plot.LogScale{}
		}
		ticks := make([]plot.Tick, len(budgets))
		for i, v := range budgets {
			ticks[i] = plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)}
		}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
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
		base, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: baseAcc}, {X: xmax, Y: baseAcc}})
		if err != nil {
			return nil, err
		}
		base.Color = color.Black
		base.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(base)
		p.Legend.Add(baseLegend, base)
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
	}
	// y range: 0..100 unless the data need more room (never: accuracies are percentages)
	p.Y.Min, p.Y.Max = 0, 100
	return p, nil
}
