package reports

import (
	"bytes"
	"flag"
	"fmt"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/plot"

	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/llm"
	"github.com/snapeval/snapeval/stats"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test ./reports -update if the change is intended)\ngot:\n%s", name, firstLines(got, 60))
	}
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

func render(t *testing.T, r *Report, write func(*bytes.Buffer, *Report) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := write(&buf, r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var writers = []struct {
	file  string
	write func(*bytes.Buffer, *Report) error
}{
	{"report.md", func(b *bytes.Buffer, r *Report) error { return WriteMarkdown(b, r) }},
	{"report.csv", func(b *bytes.Buffer, r *Report) error { return WriteCSV(b, r) }},
	{"report.json", func(b *bytes.Buffer, r *Report) error { return WriteJSON(b, r) }},
	{"report.svg", func(b *bytes.Buffer, r *Report) error { return WriteSVG(b, r) }},
	{"report-kv.svg", func(b *bytes.Buffer, r *Report) error { return WriteKVSVG(b, r) }},
}

func TestGolden(t *testing.T) {
	m, recs := synthRun()
	r := Build(m, recs, Options{})
	for _, w := range writers {
		t.Run(w.file, func(t *testing.T) { golden(t, w.file, render(t, r, w.write)) })
	}
}

// TestDeterministic renders every format twice, the second time from shuffled records, and compares bytes.
func TestDeterministic(t *testing.T) {
	m, recs := synthRun()
	shuffled := append([]eval.Record(nil), recs...)
	rand.New(rand.NewPCG(9, 9)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	r1, r2 := Build(m, recs, Options{}), Build(m, shuffled, Options{})
	all := append(writers[:len(writers):len(writers)], struct {
		file  string
		write func(*bytes.Buffer, *Report) error
	}{"report.png", func(b *bytes.Buffer, r *Report) error { return WritePNG(b, r) }},
		struct {
			file  string
			write func(*bytes.Buffer, *Report) error
		}{"report-kv.png", func(b *bytes.Buffer, r *Report) error { return WriteKVPNG(b, r) }})
	for _, w := range all {
		a, b := render(t, r1, w.write), render(t, r2, w.write)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two renderings of the same records differ", w.file)
		}
	}
	img, err := png.Decode(bytes.NewReader(render(t, r1, func(b *bytes.Buffer, r *Report) error { return WritePNG(b, r) })))
	if err != nil {
		t.Fatalf("report.png does not decode: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 500 || b.Dy() < 700 {
		t.Errorf("report.png is %dx%d, want at least 500x700 for two panels", b.Dx(), b.Dy())
	}
}

func TestBuildInvariants(t *testing.T) {
	m, recs := synthRun()
	r := Build(m, recs, Options{})
	if len(r.Benches) != 2 || r.Benches[0].Name != "longbench" || r.Benches[1].Name != "aime24" {
		t.Fatalf("benches not in manifest order: %+v", r.Benches)
	}
	// manifest order (canonicalised) within each family: full, prefill-time selection, ring/streaming, quantized
	wantOrder := []string{"full", "snapkv:topk=992,window=32,kernel=5", "streaming:sinks=4,recent=1020", "snapstream:budget=1024",
		"snapstream:budget=4096", "snapstream:budget=2048,adaptive=true", "kvquant:bits=8,group=32", "kvquant:bits=4,group=32"}
	for _, b := range r.Benches {
		if len(b.Rows) != len(wantOrder) {
			t.Fatalf("%s: %d rows, want %d", b.Name, len(b.Rows), len(wantOrder))
		}
		for i, row := range b.Rows {
			if row.Policy != wantOrder[i] {
				t.Errorf("%s row %d = %s, want %s (manifest order, canonicalised, by family)", b.Name, i, row.Policy, wantOrder[i])
			}
			if row.Baseline != (i == 0) {
				t.Errorf("%s row %d baseline = %v", b.Name, i, row.Baseline)
			}
		}
	}
	aime := r.Benches[1]
	if aime.PassK != 4 {
		t.Errorf("aime PassK = %d, want 4", aime.PassK)
	}
	// recompute the snapkv row of aime24 by hand from the records
	var base, pol []stats.Obs
	errs, n := 0, 0
	for _, rec := range recs {
		if rec.Bench != "aime24" {
			continue
		}
		o := stats.Obs{Item: rec.ItemID, Sample: rec.Sample, Score: rec.Score, Correct: rec.Correct}
		switch rec.Policy {
		case "full":
			base = append(base, o)
		case "snapkv:topk=992,window=32,kernel=5":
			n++
			if rec.IsError() {
				errs++
				continue
			}
			pol = append(pol, o)
		}
	}
	c := stats.Compare(base, pol, stats.Options{})
	row := aime.Rows[1]
	if row.Errors != errs || errs != 1 || row.Records != n || row.ErrorKinds[llm.ErrKindTimeout] != 1 {
		t.Errorf("snapkv errors/records = %d/%d (%v), want %d/%d timeout", row.Errors, row.Records, row.ErrorKinds, errs, n)
	}
	if math.Abs(float64(row.Delta)-100*c.Delta) > 1e-9 || row.P != Num(c.P) || row.Paired != 12 || row.Pairs != 47 {
		t.Errorf("snapkv delta/p/paired/pairs = %v/%v/%d/%d, want %v/%v/12/47", row.Delta, row.P, row.Paired, row.Pairs, 100*c.Delta, c.P)
	}
	if !(row.Lo <= row.Delta && row.Delta <= row.Hi) {
		t.Errorf("CI [%v, %v] does not contain delta %v", row.Lo, row.Hi, row.Delta)
	}
	if !(row.Strict < row.Accuracy) {
		t.Errorf("strict %v should be below graded accuracy %v with an error record", row.Strict, row.Accuracy)
	}
	// streaming on longbench: errors on long items; the long group of the length breakdown must show them
	lb := r.Benches[0]
	// one sample per item: an item whose only record is an error has no graded record and is excluded, counted
	if st := lb.Rows[2]; st.Errors != 4 || st.Unpaired != 4 || st.Paired != 36 {
		t.Errorf("streaming errors/unpaired/paired = %d/%d/%d, want 4/4/36", st.Errors, st.Unpaired, st.Paired)
	}
	var keys []string
	for _, bd := range lb.Breakdowns {
		keys = append(keys, bd.Key)
		total := 0
		for _, g := range bd.Groups {
			total += g.Rows[0].Records
		}
		if total != lb.Rows[0].Records {
			t.Errorf("breakdown %s covers %d baseline records of %d", bd.Key, total, lb.Rows[0].Records)
		}
	}
	if strings.Join(keys, ",") != "difficulty,length" {
		t.Errorf("breakdown keys %v", keys)
	}
}

// TestMissingItemsAndBaseline checks unpaired items are excluded and counted, and a bench without baseline has no deltas.
func TestMissingItemsAndBaseline(t *testing.T) {
	rec := func(bench, item, policy string, correct bool) eval.Record {
		r := eval.Record{Bench: bench, ItemID: item, Policy: policy, Correct: correct}
		if correct {
			r.Score = 1
		}
		return r
	}
	recs := []eval.Record{
		rec("a", "1", "full", true), rec("a", "2", "full", true), rec("a", "3", "full", false),
		rec("a", "1", "snapstream:budget=64", false), rec("a", "2", "snapstream:budget=64", true),
		rec("a", "4", "snapstream:budget=64", true),
		rec("b", "1", "snapstream:budget=64", true),
	}
	r := Build(eval.Manifest{}, recs, Options{Stats: stats.Options{Resamples: 200}})
	a := r.Benches[0].Rows[1]
	if a.Paired != 2 || a.Unpaired != 2 || a.Delta != -50 {
		t.Errorf("paired/unpaired/delta = %d/%d/%v, want 2/2/-50", a.Paired, a.Unpaired, a.Delta)
	}
	if math.Abs(float64(a.Accuracy)-100*2.0/3) > 1e-9 {
		t.Errorf("accuracy %v, want 66.67 (over all of the policy's items)", a.Accuracy)
	}
	b := r.Benches[1]
	if b.HasBaseline || b.Rows[0].Delta.OK() {
		t.Errorf("bench without baseline: HasBaseline %v, delta %v", b.HasBaseline, b.Rows[0].Delta)
	}
	r.Shard = "2/4"
	var md bytes.Buffer
	if err := WriteMarkdown(&md, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 (2 excluded)", "no `full` baseline records for this benchmark", "**shard 2/4 only**"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}

func TestParseSplit(t *testing.T) {
	tests := []struct {
		spec    string
		want    Split
		wantErr bool
	}{
		{"full", Split{Method: "full"}, false},
		{"snapstream:budget=4096", Split{Method: "snapstream", Budget: 4096, Sinks: 4, TopK: 2044, Recent: 2048, Window: 32, Kernel: 5}, false},
		{"snapstream:sinks=4,recent=16,topk=24,window=8,kernel=5,adaptive=true",
			Split{Method: "snapstream", Budget: 44, Sinks: 4, TopK: 24, Recent: 16, Window: 8, Kernel: 5, Adaptive: true}, false},
		{"streaming:sinks=4,recent=1024", Split{Method: "streaming", Budget: 1028, Sinks: 4, Recent: 1024}, false},
		{"snapkv:topk=2048,window=32,kernel=5", Split{Method: "snapkv", Budget: 2080, TopK: 2048, Window: 32, Kernel: 5}, false},
		{"pyramidkv:budget=256,base=snapstream", Split{Method: "pyramidkv", Base: "snapstream", Budget: 256, Sinks: 4, TopK: 124, Recent: 128, Window: 32, Kernel: 5}, false},
		{"h2o:budget=256", Split{Method: "h2o", Budget: 256, TopK: 128, Recent: 128}, false},
		{"quest:budget=9", Split{Method: "quest"}, true},
		{"snapstream:budget=x", Split{Method: "snapstream"}, true},
	}
	for _, tt := range tests {
		got, err := ParseSplit(tt.spec)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseSplit(%q) = %+v, %v; want %+v, err %v", tt.spec, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzParseSplit: policy specs come from records on disk; parsing never panics and a parsed split adds up.
func FuzzParseSplit(f *testing.F) {
	for _, s := range []string{"full", "snapstream:budget=4096", "streaming:sinks=4,recent=1024", "snapkv:topk=1,window=1,kernel=1",
		"snapstream:sinks=4,recent=16,topk=24,window=8,kernel=5,adaptive=true", ":", "x:y=z", "snapstream:budget=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseSplit(spec)
		if err != nil {
			return
		}
		var sum int
		switch s.Method {
		case "snapstream":
			sum = s.Sinks + s.TopK + s.Recent
		case "streaming":
			sum = s.Sinks + s.Recent
		case "snapkv":
			sum = s.TopK + s.Window
		}
		if sum != s.Budget {
			t.Errorf("ParseSplit(%q) = %+v: budget is not the sum of its parts", spec, s)
		}
	})
}

func BenchmarkBuild(b *testing.B) {
	m, recs := synthRun()
	for b.Loop() {
		Build(m, recs, Options{})
	}
}

func TestWriteFiles(t *testing.T) {
	m, recs := synthRun()
	r := Build(m, recs, Options{})
	dir := filepath.Join(t.TempDir(), "sub")
	paths, err := WriteFiles(dir, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(Files) {
		t.Fatalf("wrote %v", paths)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "report.md", md)
	left, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// FuzzBuild: records come from disk; whatever their policy, tags, scores and error kinds, building and writing
// the report never panics and the markdown names every policy.
func FuzzBuild(f *testing.F) {
	f.Add("snapstream:budget=64", "a=b;c=d", 1.0, "", 2)
	f.Add("weird|policy`", "=;;k=", 0.5, llm.ErrKindTimeout, 1)
	f.Add("full", "", math.NaN(), "", 3)
	f.Fuzz(func(t *testing.T, policy, tags string, score float64, errKind string, samples int) {
		samples = 1 + (samples%4+4)%4
		var recs []eval.Record
		for i := range 3 {
			for s := range samples {
				for _, p := range []string{"full", policy} {
					recs = append(recs, eval.Record{Bench: "b", ItemID: fmt.Sprint(i), Policy: p, Sample: s, Score: score,
						Correct: score == 1, ErrorKind: errKind, Tags: tags})
				}
			}
		}
		r := Build(eval.Manifest{}, recs, Options{Stats: stats.Options{Resamples: 50}})
		var md bytes.Buffer
		for _, w := range []func(io.Writer, *Report) error{WriteMarkdown, WriteCSV, WriteJSON} {
			if err := w(&md, r); err != nil {
				t.Fatal(err)
			}
		}
		if len(r.Benches) != 1 || len(r.Benches[0].Rows) == 0 {
			t.Fatalf("no rows for %d records", len(recs))
		}
		_, _ = Gate(r, GateOptions{MaxDrop: 1})
	})
}

// TestMethodNote: the note under a table names every interval's method: "every row" with one method, the
// policies of each in a benchmark's table, where each applies in a breakdown.
func TestMethodNote(t *testing.T) {
	tango := Row{Policy: "a", CIMethod: stats.MethodTango, Design: 1}
	de := func(p string, d float64) Row { return Row{Policy: p, CIMethod: stats.MethodTangoDE, Design: Num(d)} }
	base := Row{Policy: "full", Baseline: true, Design: nan()}
	tests := []struct {
		name   string
		groups []Group
		want   string
	}{
		{"none", []Group{{Rows: []Row{base}}}, ""},
		{"one method", []Group{{Rows: []Row{base, tango, {Policy: "b", CIMethod: stats.MethodTango, Design: 1}}}},
			"\nCI method: `tango` (Tango's score interval on right/wrong items): every row.\n"},
		{"one design effect", []Group{{Rows: []Row{base, de("a", 0.5)}}}, "D = 0.50): every row.\n"},
		{"mixed table", []Group{{Rows: []Row{base, tango, de("b", 0.3), de("c", 0.61)}}},
			"`tango` (Tango's score interval on right/wrong items): `a`; `tango-de` (Tango's score interval on counts divided by a design effect D, for partial scores or several samples per item, D 0.30–0.61): `b`, `c`.\n"},
		{"mixed breakdown", []Group{{Rows: []Row{base, tango}}, {Rows: []Row{base, de("a", 0.4)}}},
			"`tango` (Tango's score interval on right/wrong items) where every item of the row is right or wrong; `tango-de` (Tango's score interval on counts divided by a design effect D, for partial scores or several samples per item, D = 0.40) in the other rows (each row's in the `ci_method` column of report.csv and report.json).\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		writeMethods(&b, tt.groups)
		if got := b.String(); (tt.want == "") != (got == "") || !strings.HasSuffix(got, tt.want) {
			t.Errorf("%s: note %q, want it to end with %q", tt.name, got, tt.want)
		}
	}
}

func TestFamilyOf(t *testing.T) {
	for _, c := range []struct{ method, family string }{
		{"full", FamilyFull}, {"snapkv", FamilyPrefill}, {"knorm", FamilyPrefill}, {"pyramidkv", FamilyPrefill},
		{"adakv", FamilyPrefill}, {"streaming", FamilyRing}, {"snapstream", FamilyRing}, {"h2o", FamilyEviction},
		{"tova", FamilyEviction}, {"rkv", FamilyEviction}, {"kvquant", FamilyQuant}, {"vendor-policy", FamilyOther}, {"", FamilyOther},
	} {
		if got := FamilyOf(c.method); got != c.family {
			t.Errorf("FamilyOf(%q) = %q, want %q", c.method, got, c.family)
		}
	}
}

// TestPolicyOrderByFamily: the baseline first, then families in order; within a family the manifest's order,
// then policies the manifest does not list (by method, budget, spec); a baseline other than full stays first.
func TestPolicyOrderByFamily(t *testing.T) {
	recs := func(specs ...string) []eval.Record {
		var out []eval.Record
		for _, s := range specs {
			out = append(out, eval.Record{Policy: s})
		}
		return out
	}
	all := recs("full", "kvquant:bits=4,group=32", "streaming:sinks=4,recent=60", "snapkv:topk=32,window=32,kernel=5",
		"snapstream:budget=64", "vendor:x", "knorm:budget=64", "kvquant:bits=8,group=32")
	config := []string{"kvquant:bits=4", "snapstream:budget=64", "full", "streaming:budget=64", "snapkv:topk=32"}
	got := policyOrder(config, all, "full")
	want := []string{"full", "snapkv:topk=32,window=32,kernel=5", "knorm:budget=64", "snapstream:budget=64",
		"streaming:sinks=4,recent=60", "kvquant:bits=4,group=32", "kvquant:bits=8,group=32", "vendor:x"}
	if !slices.Equal(got, want) {
		t.Errorf("order\n got %v\nwant %v", got, want)
	}
	got = policyOrder(config, all, "snapstream:budget=64")
	if got[0] != "snapstream:budget=64" || got[1] != "full" {
		t.Errorf("with baseline snapstream: %v", got)
	}
}

func TestByteTicks(t *testing.T) {
	for _, c := range []struct {
		lo, hi float64
		want   []string
	}{
		{300 << 10, 2 << 20, []string{"256 KiB", "512 KiB", "1 MiB", "2 MiB"}},
		{1000, 1000, []string{"512 B", "1 KiB"}},
		{100, 3 << 30, []string{"16 B", "256 B", "4 KiB", "64 KiB", "1 MiB", "16 MiB", "256 MiB", "4 GiB"}},
	} {
		var got []string
		for _, tk := range byteTicks(c.lo, c.hi) {
			got = append(got, tk.Label)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("byteTicks(%v, %v) = %v, want %v", c.lo, c.hi, got, c.want)
		}
	}
}

// TestKVPlot: the KV plot has a panel per benchmark and leaves out rows without KV bytes; with none at all it
// still draws (only the baseline line).
func TestKVPlot(t *testing.T) {
	m, recs := synthRun()
	r := Build(m, recs, Options{})
	plots, err := KVPlots(r)
	if err != nil || len(plots) != 2 {
		t.Fatalf("%d plots, %v", len(plots), err)
	}
	if _, log := plots[0].X.Scale.(plot.LogScale); !log {
		t.Error("the KV axis is not logarithmic")
	}
	// full (8192 slots, float) is the largest cache, kvquant:bits=4 the smallest.
	kv4 := compress.MustParse("kvquant:bits=4").KVBytes(8192, 4, 2, 64, 2)
	full := compress.KVBytes(8192, 4, 2, 64, 2)
	if plots[0].X.Min > float64(kv4) || plots[0].X.Max < float64(full) {
		t.Errorf("x range [%v, %v] does not cover %d .. %d", plots[0].X.Min, plots[0].X.Max, kv4, full)
	}
	for i := range recs {
		recs[i].KVBytes = 0
	}
	r = Build(m, recs, Options{})
	var buf bytes.Buffer
	if err := WriteKVSVG(&buf, r); err != nil || buf.Len() == 0 {
		t.Errorf("without KV bytes: %v", err)
	}
}
