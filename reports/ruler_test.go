package reports

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/eval"
)

// rulerRecords: two tasks at two lengths; niah_single_1 has depth tags. Under full every score is 1 except
// vt at 8192 (0.5 on average); under streaming niah at depth 0 fails.
func rulerRecords() []eval.Record {
	var recs []eval.Record
	for _, p := range []string{"full", "streaming:sinks=4,recent=252"} {
		for _, l := range []string{"4096", "8192"} {
			for i := range 4 {
				d := []string{"0", "50"}[i%2]
				s := 1.0
				if p != "full" && d == "0" {
					s = 0
				}
				recs = append(recs, eval.Record{Bench: "ruler", ItemID: fmt.Sprintf("niah_single_1/%s/%03d", l, i), Policy: p,
					Score: s, Correct: s == 1, Tags: "depth=" + d + ";length=" + l + ";task=niah_single_1"})
				vs := 1.0
				if l == "8192" && i < 2 {
					vs = 0
				}
				recs = append(recs, eval.Record{Bench: "ruler", ItemID: fmt.Sprintf("vt/%s/%03d", l, i), Policy: p,
					Score: vs, Correct: vs == 1, Tags: "length=" + l + ";task=vt"})
			}
		}
	}
	return recs
}

func TestRulerDepthGrids(t *testing.T) {
	r := Build(eval.Manifest{RunID: "r", Config: eval.RunConfig{Policies: []string{"streaming:sinks=4,recent=252"}}}, rulerRecords(), Options{})
	var md bytes.Buffer
	if err := WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"[ruler-depth.png](ruler-depth.png)",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, md.String())
		}
	}
	g := r.depthGrids()
	if len(g) != 2 || fmt.Sprint(g[1].Acc) != "[[0 100] [0 100]]" {
		t.Errorf("grids %+v", g)
	}
	d1, d2 := t.TempDir(), t.TempDir()
	for _, d := range []string{d1, d2} {
		if _, err := WriteFiles(d, Build(eval.Manifest{RunID: "r"}, rulerRecords(), Options{})); err != nil {
			t.Fatal(err)
		}
	}
	if p := os.Getenv("SNAPEVAL_HEATMAP_OUT"); p != "" {
		b, _ := os.ReadFile(filepath.Join(d1, HeatmapPNG))
		os.WriteFile(p, b, 0o644)
	}
	for _, f := range []string{HeatmapPNG, HeatmapSVG, "report.md"} {
		a, err1 := os.ReadFile(filepath.Join(d1, f))
		b, err2 := os.ReadFile(filepath.Join(d2, f))
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) || len(a) == 0 {
			t.Errorf("%s not written identically (%v %v)", f, err1, err2)
		}
	}
}
