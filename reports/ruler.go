package reports

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/snapeval/snapeval/eval"
)

// RulerBench is the benchmark whose records get RULER's aggregate and the needle heat map.
const RulerBench = "ruler"

// Heat-map files written beside the report when a run has needle records with a depth tag.
const (
	HeatmapSVG = "ruler-depth.svg"
	HeatmapPNG = "ruler-depth.png"
)

// TaskAverage is RULER's aggregate: per policy and length, the mean over tasks of each task's mean score (x100),
// and the mean of those over lengths (the "Avg." of RULER's tables).
type TaskAverage struct {
	Lengths []string         `json:"lengths"`
	Rows    []TaskAverageRow `json:"rows"`
}

// TaskAverageRow is one policy's RULER scores.
type TaskAverageRow struct {
	Policy   string `json:"policy"`
	ByLength []Num  `json:"by_length"`
	Average  Num    `json:"average"`
}

// DepthGrid is needle accuracy (x100) by length and depth bin for one policy.
type DepthGrid struct {
	Policy  string   `json:"policy"`
	Lengths []string `json:"lengths"`
	Depths  []string `json:"depths"`
	// Acc[i][j] is the mean score at Lengths[i], Depths[j] (NaN where no record).
	Acc [][]Num `json:"acc"`
}

func numericOrder(xs []string) []string {
	slices.SortFunc(xs, func(a, b string) int {
		x, ex := strconv.Atoi(a)
		y, ey := strconv.Atoi(b)
		if ex == nil && ey == nil {
			return x - y
		}
		return cmpStr(a, b)
	})
	return xs
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rulerAggregates computes TaskAverage and the depth grids from graded records (error records are left out,
// as accuracy does).
func rulerAggregates(recs []eval.Record, order []string) (*TaskAverage, []DepthGrid) {
	type key struct{ policy, length, task string }
	sum, n := map[key]float64{}, map[key]int{}
	type dkey struct{ policy, length, depth string }
	dsum, dn := map[dkey]float64{}, map[dkey]int{}
	lengths, depths := map[string]bool{}, map[string]bool{}
	for _, r := range recs {
		if r.ErrorKind != "" {
			continue
		}
		tags := eval.ParseTags(r.Tags)
		l, t := tags["length"], tags["task"]
		if l == "" || t == "" {
			continue
		}
		lengths[l] = true
		sum[key{r.Policy, l, t}] += r.Score
		n[key{r.Policy, l, t}]++
		if d, ok := tags["depth"]; ok {
			depths[d] = true
			dsum[dkey{r.Policy, l, d}] += r.Score
			dn[dkey{r.Policy, l, d}]++
		}
	}
	if len(lengths) == 0 {
		return nil, nil
	}
	ls := numericOrder(sortedKeys(lengths))
	ta := &TaskAverage{Lengths: ls}
	for _, p := range order {
		row := TaskAverageRow{Policy: p}
		var total float64
		var nl int
		for _, l := range ls {
			var s float64
			var nt int
			for k, c := range n {
				if k.policy == p && k.length == l {
					s += sum[k] / float64(c)
					nt++
				}
			}
			if nt == 0 {
				row.ByLength = append(row.ByLength, nan())
				continue
			}
			v := 100 * s / float64(nt)
			row.ByLength = append(row.ByLength, Num(v))
			total += v
			nl++
		}
		if nl == 0 {
			continue
		}
		row.Average = Num(total / float64(nl))
		ta.Rows = append(ta.Rows, row)
	}
	if len(depths) == 0 {
		return ta, nil
	}
	ds := numericOrder(sortedKeys(depths))
	var grids []DepthGrid
	for _, p := range order {
		g := DepthGrid{Policy: p, Lengths: ls, Depths: ds}
		any := false
		for _, l := range ls {
			var row []Num
			for _, d := range ds {
				k := dkey{p, l, d}
				if dn[k] == 0 {
					row = append(row, nan())
					continue
				}
				any = true
				row = append(row, Num(100*dsum[k]/float64(dn[k])))
			}
			g.Acc = append(g.Acc, row)
		}
		if any {
			grids = append(grids, g)
		}
	}
	return ta, grids
}

func writeTaskAverage(p func(string, ...any), ta *TaskAverage) {
	p("\n### RULER score (mean over tasks of each task's mean score, x100; avg over lengths)\n\n| policy |")
	for _, l := range ta.Lengths {
		p(" %s |", mdText(l))
	}
	p(" avg |\n|---|")
	for range ta.Lengths {
		p("---:|")
	}
	p("---:|\n")
	for _, r := range ta.Rows {
		p("| `%s` |", mdCode(r.Policy))
		for _, v := range r.ByLength {
			p(" %s |", fix(v, 2))
		}
		p(" %s |\n", fix(r.Average, 2))
	}
}

// grid adapts a DepthGrid to plotter.GridXYZ (columns: depth bins, rows: lengths).
type grid struct{ g DepthGrid }

func (g grid) Dims() (int, int)   { return len(g.g.Depths), len(g.g.Lengths) }
func (g grid) Z(c, r int) float64 { return float64(g.g.Acc[r][c]) }
func (g grid) X(c int) float64    { return float64(c) }
func (g grid) Y(r int) float64    { return float64(r) }
func (g grid) Min() float64       { return 0 }
func (g grid) Max() float64       { return 100 }

type ticks []string

func (t ticks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	for i, s := range t {
		out = append(out, plot.Tick{Value: float64(i), Label: s})
	}
	return out
}

func heatPlots(grids []DepthGrid) ([]*plot.Plot, error) {
	var out []*plot.Plot
	pal := moreland.SmoothBlueRed().Palette(101)
	for _, g := range grids {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("ruler needles: %s (accuracy %%)", g.Policy)
		p.X.Label.Text = "needle depth (%, bin start)"
		p.Y.Label.Text = "length (tokens)"
		h := plotter.NewHeatMap(grid{g}, pal)
		h.Min, h.Max = 0, 100
		h.NaN = plotter.DefaultLineStyle.Color
		p.Add(h)
		p.X.Tick.Marker = ticks(g.Depths)
		p.Y.Tick.Marker = ticks(g.Lengths)
		p.X.Min, p.X.Max = -0.5, float64(len(g.Depths))-0.5
		p.Y.Min, p.Y.Max = -0.5, float64(len(g.Lengths))-0.5
		for r := range g.Lengths {
			for c := range g.Depths {
				v := float64(g.Acc[r][c])
				if math.IsNaN(v) {
					continue
				}
				l, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: float64(c), Y: float64(r)}}, Labels: []string{strconv.Itoa(int(math.Round(v)))}})
				if err != nil {
					return nil, err
				}
				l.Offset.X = -4
				p.Add(l)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// WriteHeatmapSVG draws the needle heat maps of every policy (ruler-depth.svg).
func WriteHeatmapSVG(w io.Writer, r *Report) error {
	plots, err := heatPlots(r.depthGrids())
	if err != nil {
		return err
	}
	c := vgsvg.New(plotWidth, panelH*vg.Length(max(1, len(plots))))
	drawPanels(draw.New(c), plots)
	_, err = c.WriteTo(w)
	return err
}

// WriteHeatmapPNG draws the needle heat maps of every policy (ruler-depth.png).
func WriteHeatmapPNG(w io.Writer, r *Report) error {
	plots, err := heatPlots(r.depthGrids())
	if err != nil {
		return err
	}
	c := vgimg.NewWith(vgimg.UseWH(plotWidth, panelH*vg.Length(max(1, len(plots)))), vgimg.UseDPI(pngDPI))
	drawPanels(draw.New(c), plots)
	_, err = vgimg.PngCanvas{Canvas: c}.WriteTo(w)
	return err
}

func (r *Report) depthGrids() []DepthGrid {
	for _, b := range r.Benches {
		if b.Name == RulerBench {
			return b.DepthGrids
		}
	}
	return nil
}
