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

// depthGridsOf computes needle accuracy by length and depth bin per policy from graded records (error records
// are left out, as accuracy does); records without length and depth tags are left out. RULER's score itself is
// the benchmark's registered aggregate (eval/ruler).
func depthGridsOf(recs []eval.Record, order []string) []DepthGrid {
	type dkey struct{ policy, length, depth string }
	dsum, dn := map[dkey]float64{}, map[dkey]int{}
	lengths, depths := map[string]bool{}, map[string]bool{}
	for _, r := range recs {
		if r.ErrorKind != "" {
			continue
		}
		tags := eval.ParseTags(r.Tags)
		l, d := tags["length"], tags["depth"]
		_, hasDepth := tags["depth"]
		if l == "" || !hasDepth {
			continue
		}
		lengths[l], depths[d] = true, true
		dsum[dkey{r.Policy, l, d}] += r.Score
		dn[dkey{r.Policy, l, d}]++
	}
	if len(lengths) == 0 {
		return nil
	}
	ls := numericOrder(sortedKeys(lengths))
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
	return grids
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
