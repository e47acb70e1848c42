package torch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeBenchOptions(t *testing.T, env ...string) BenchOptions {
	t.Helper()
	t.Setenv("SNAPEVAL_CACHE", t.TempDir())
	return BenchOptions{Backend: Options{Command: []string{os.Args[0]}, Env: append([]string{"SNAPEVAL_FAKE_WORKER=1"}, env...)}}
}

// TestShapeIsTheSessionsShape keeps the embedded llama3.1-8b config identical to the one the GPU session scripts use.
func TestShapeIsTheSessionsShape(t *testing.T) {
	a, err := shapeFiles.ReadFile("shapes/llama3.1-8b/config.json")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "tools", "gpu", "llama31-8b-shape", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("shapes/llama3.1-8b/config.json differs from tools/gpu/llama31-8b-shape/config.json")
	}
	if got := BenchShapes(); len(got) != 1 || got[0] != "llama3.1-8b" {
		t.Errorf("BenchShapes = %v", got)
	}
}

func TestParseShape(t *testing.T) {
	for _, c := range []struct {
		json, want, err string
	}{
		{`{"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"hidden_size":32,"vocab_size":9}`, "{2 4 2 8 9 0}", ""},
		{`{"text_config":{"num_hidden_layers":3,"num_attention_heads":4,"head_dim":16,"vocab_size":9,"max_position_embeddings":64}}`, "{3 4 4 16 9 64}", ""},
		{`{"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":3,"head_dim":8,"vocab_size":9}`, "", "num_key_value_heads"},
		{`{"num_hidden_layers":0,"num_attention_heads":4,"head_dim":8,"vocab_size":9}`, "", "num_hidden_layers"},
		{`{"num_hidden_layers":1,"num_attention_heads":4,"head_dim":8}`, "", "vocab_size"},
		{`[1]`, "", "cfg.json"},
	} {
		s, err := parseShape("cfg.json", []byte(c.json))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "cfg.json") {
				t.Errorf("parseShape(%s) = %v, want an error naming %s and the file", c.json, err, c.err)
			}
			continue
		}
		if err != nil || strings.Trim(strings.ReplaceAll(jsonish(s), ",", " "), " ") != c.want {
			t.Errorf("parseShape(%s) = %v %v, want %s", c.json, jsonish(s), err, c.want)
		}
	}
}

func jsonish(s benchShape) string {
	b := []int{s.Layers, s.QHeads, s.KVHeads, s.HeadDim, s.Vocab, s.MaxPositions}
	out, _ := json.Marshal(b)
	return "{" + strings.Trim(string(out), "[]") + "}"
}

// TestSpecOf8B checks the sizes of the full run for Llama-3.1-8B's shape: Table 5 fits 2 full-cache and 8 snapstream
// (budget 32k) sequences of a 128k context into 32 GiB, every context stays within 131072 positions.
func TestSpecOf8B(t *testing.T) {
	cfg, _ := shapeFiles.ReadFile("shapes/llama3.1-8b/config.json")
	sh, err := parseShape("8b", cfg)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := buildSpec(sh, 2, BenchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	byID := map[string]specFigure{}
	for _, f := range spec.Figures {
		ids = append(ids, f["id"].(string))
		byID[f["id"].(string)] = f
	}
	if strings.Join(ids, " ") != strings.Join(BenchFigures, " ") {
		t.Errorf("figures %v, want %v", ids, BenchFigures)
	}
	sides := byID["table5"]["sides"].([]map[string]any)
	full, snap := sides[0]["plan"].(wirePlan), sides[1]["plan"].(wirePlan)
	if sides[0]["batch"] != 2 || sides[1]["batch"] != 8 || full.Capacity != 131072 || snap.Capacity != 32768 {
		t.Errorf("table 5: full batch %v of %d slots, snapstream batch %v of %d", sides[0]["batch"], full.Capacity, sides[1]["batch"], snap.Capacity)
	}
	flat := byID["flat"]["contexts"].([]map[string]any)
	short, long := flat[0]["plan"].(wirePlan), flat[1]["plan"].(wirePlan)
	if short.Capacity != 8192 || long.Capacity != 8192 || long.PromptLen+long.MaxNew > sh.MaxPositions || short.PromptLen != 8192 {
		t.Errorf("flat: %+v / %+v", short, long)
	}
	p128 := byID["prefill_128k"]["plans"].(map[string]any)["full"].(wirePlan)
	if p128.PromptLen+p128.MaxNew > sh.MaxPositions || p128.PromptLen < 131000 {
		t.Errorf("128k prefill: %+v", p128)
	}
	dec := byID["decode"]["plan"].(wirePlan)
	if dec.PromptLen != 4096 || dec.MaxNew < 3+16*3 {
		t.Errorf("decode plan %+v: too few new tokens for warm-up and rounds", dec)
	}
	if spec.DeadlineS != 520 {
		t.Errorf("deadline %v", spec.DeadlineS)
	}
	if _, err := buildSpec(sh, 2, BenchOptions{KVBudgetBytes: 1 << 30}); err == nil || !strings.Contains(err.Error(), "kv-budget") {
		t.Errorf("a budget below one full sequence: %v", err)
	}
	if spec, err := buildSpec(sh, 2, BenchOptions{Figures: []string{"decode", "table5"}}); err != nil || len(spec.Figures) != 2 {
		t.Errorf("selected figures: %v %v", spec.Figures, err)
	}
}

// TestGoldenBenchSpec keeps testdata/bench-spec-mini.json (the quick spec for testdata/mini-shape, read by the
// worker's tests) equal to what buildSpec writes today (-update rewrites it).
func TestGoldenBenchSpec(t *testing.T) {
	dir := filepath.Join("testdata", "mini-shape")
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	sh, err := parseShape("mini", cfg)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := buildSpec(sh, 4, BenchOptions{Quick: true, Backend: Options{DType: "float32", Device: "cpu"}})
	if err != nil {
		t.Fatal(err)
	}
	spec.Model = dir
	b, _ := json.MarshalIndent(spec, "", " ")
	b = append(b, '\n')
	golden(t, "bench-spec-mini.json", b)
}

func TestBenchOnFakeWorker(t *testing.T) {
	o := fakeBenchOptions(t)
	o.Raw = filepath.Join(t.TempDir(), "raw.json")
	r, err := Bench(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	near := func(name string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	near("bandwidth", r.BandwidthGBs, 2500)
	near("decode step", r.DecodeStepMs, 10)
	if want := int64(900000000 + 4106*131072); r.DecodeBytesPerStep != want {
		t.Errorf("decode bytes %d, want %d", r.DecodeBytesPerStep, want)
	}
	near("decode fraction", r.DecodeBandwidthFraction, float64(900000000+4106*131072)/0.010/2500e9)
	near("flat", *r.FlatRatio, 1.02)
	near("table 5", *r.Table5ThroughputRatio, (8/22.0)/(2/20.0))
	if r.Table5.FullBatch != 2 || r.Table5.SnapBatch != 8 || r.Table5.KVBudgetBytes != 32<<30 || r.Table5.Policy != "snapstream:budget=32768" {
		t.Errorf("table 5 = %+v", r.Table5)
	}
	if len(r.VsTransformers) != 4 {
		t.Fatalf("vs transformers rows %+v", r.VsTransformers)
	}
	near("vs transformers", r.VsTransformers[3].Ratio, 30/11.0)
	if len(r.Prefill) != 2 || r.Prefill[0].Prompt != 32768 || r.Prefill[1].Prompt != 131008 {
		t.Fatalf("prefill rows %+v", r.Prefill)
	}
	near("overhead", r.Prefill[0].Overhead, 1.035)
	near("speed", r.Prefill[0].Speed, 0.91)
	if r.Prefill[1].TransformersMs != 0 {
		t.Errorf("128k has no transformers side: %+v", r.Prefill[1])
	}
	verdicts := map[string]string{}
	for _, tg := range r.Targets {
		v := "none"
		if tg.Met != nil {
			v = map[bool]string{true: "met", false: "missed"}[*tg.Met]
		}
		verdicts[tg.Claim+" | "+tg.Figure] += v + " "
	}
	want := map[string]string{
		"prefill overhead of compression (paper: 2-5%) | snapstream:budget=8192 prefill / full prefill, 32768-token prompt":  "met ",
		"prefill overhead of compression (paper: 2-5%) | snapstream:budget=8192 prefill / full prefill, 131008-token prompt": "met ",
		"prefill speed | snapeval full-cache prefill tok/s / transformers forward (sdpa), 32768 tokens":                      "missed ",
		"single-sequence decode | (weights + live KV) / step time / copy bandwidth, batch 1, 4096 context":                   "missed ",
		"decode against the reference engine | snapeval / transformers generate tok/s, batch 8, 32768 context":               "met ",
		"flat decode under a fixed budget | snapstream:budget=8192 step time at 131008 / at 8192 context":                    "met ",
		"memory | KV bytes of each sequence held = 2 x layers x kv_heads x head_dim x capacity x bytes":                      "met ",
	}
	for k, v := range want {
		if verdicts[k] != v {
			t.Errorf("target %q: %q, want %q (all: %v)", k, verdicts[k], v, verdicts)
		}
	}
	if len(r.Targets) != 11 || len(r.Errors) != 0 || len(r.Memory) != 8 || len(r.Profiles) != 2 {
		t.Errorf("%d targets, errors %v, %d memory rows, %d profiles", len(r.Targets), r.Errors, len(r.Memory), len(r.Profiles))
	}
	var tab bytes.Buffer
	if err := r.WriteTable(&tab); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Fake GPU", "copy bandwidth", "MISSED", "met", "table 5", "decode vs generate", "profile decode_graph", "gemv_kernel",
		"attention kernel per batch size map[1:triton]", "triton's startup check against sdpa per batch size map[1:map[max_err:0.004 ok:true tol:0.02]]"} {
		if !strings.Contains(tab.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, tab.String())
		}
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"bandwidth_gbs"`, `"decode_bandwidth_fraction"`, `"table5_throughput_ratio"`, `"steps"`, `"weight_bytes"`, `"raw"`, `"targets"`} {
		if !bytes.Contains(js, []byte(k)) {
			t.Errorf("JSON lacks %s", k)
		}
	}
	raw, err := os.ReadFile(o.Raw)
	if err != nil {
		t.Fatal(err)
	}
	again, err := BenchReport(raw, r.Model)
	if err != nil || again.DecodeStepMs != r.DecodeStepMs || len(again.Targets) != len(r.Targets) {
		t.Errorf("the report from the kept raw file differs: %v", err)
	}
}

func TestBenchFailuresAreReported(t *testing.T) {
	r, err := Bench(context.Background(), fakeBenchOptions(t, "FAKE_BENCH_FAIL=table5", "FAKE_BENCH_KV=2", "FAKE_BENCH_EXIT=1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Errors["table5"], "out of memory") || !strings.Contains(r.Errors["worker"], "exit status 1") {
		t.Errorf("errors %v", r.Errors)
	}
	for _, tg := range r.Targets {
		switch tg.Claim {
		case "Table 5 on a GPU":
			if tg.Met != nil || !strings.Contains(tg.Note, "out of memory") {
				t.Errorf("table 5 target %+v", tg)
			}
		case "memory":
			if tg.Met == nil || *tg.Met {
				t.Errorf("KV bytes off by 2 passed: %+v", tg)
			}
		}
	}
	if r.DecodeStepMs != 10 {
		t.Error("a failed figure lost the others")
	}
	o := fakeBenchOptions(t)
	o.Figures = []string{"decode"}
	r, err = Bench(context.Background(), o)
	if err != nil || r.DecodeStepMs != 10 || !strings.Contains(r.Errors["table5"], "not measured") {
		t.Errorf("one figure: %v %v", r.Errors, err)
	}
	if _, err := Bench(context.Background(), fakeBenchOptions(t, "FAKE_BENCH_FATAL=torch sees no CUDA device")); !errors.As(err, new(*SetupError)) ||
		!strings.Contains(err.Error(), "no CUDA") {
		t.Errorf("fatal: %v", err)
	}
	o = fakeBenchOptions(t)
	o.Figures = []string{"nope"}
	if _, err := Bench(context.Background(), o); err == nil || !strings.Contains(err.Error(), "unknown figure") {
		t.Errorf("unknown figure: %v", err)
	}
	o = fakeBenchOptions(t)
	o.Shape = "gpt-5"
	if _, err := Bench(context.Background(), o); err == nil || !strings.Contains(err.Error(), "llama3.1-8b") {
		t.Errorf("unknown shape: %v", err)
	}
	o = fakeBenchOptions(t)
	o.Backend.Command = []string{filepath.Join(t.TempDir(), "no-python")}
	if _, err := Bench(context.Background(), o); !errors.As(err, new(*SetupError)) {
		t.Errorf("no interpreter: %v", err)
	}
	if _, err := BenchReport([]byte("{"), "m"); err == nil {
		t.Error("BenchReport accepted a broken file")
	}
}

// TestBenchOnTheMiniModel runs the whole path on this CPU: Go lays out the quick spec for testdata/mini-shape,
// the worker's Bench runs every figure on the tests' plain-torch model (worker/tests/bench_mini.py: transformers is
// not needed) and Go computes the report. It needs a Python with torch.
func TestBenchOnTheMiniModel(t *testing.T) {
	py := pythonWithTorch()
	if py == "" {
		t.Skip("no Python with torch here (apt-get install python3-torch): the bench's Python side did not run")
	}
	t.Parallel() // with the worker's Python tests and the tensor-parallel one: ~6 s each of one core
	worker, _ := filepath.Abs("worker")
	var log bytes.Buffer
	r, err := Bench(context.Background(), BenchOptions{Model: filepath.Join("testdata", "mini-shape"), Quick: true, Log: &log,
		Backend: Options{Command: []string{py, "-m", "tests.bench_mini"}, Env: []string{"PYTHONPATH=" + worker, "PYTHONDONTWRITEBYTECODE=1"},
			Device: "cpu", DType: "float32"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for id, e := range r.Errors {
		if !strings.HasSuffix(id, " transformers") {
			t.Errorf("figure %s: %s", id, e)
		}
	}
	if !strings.Contains(r.Errors["prefill_32k transformers"], "not installed") {
		t.Errorf("the transformers side of the 32k prefill: %q", r.Errors["prefill_32k transformers"])
	}
	if r.DecodeStepMs <= 0 || r.BandwidthGBs <= 0 || r.Table5 == nil || r.Table5.FullBatch != 2 || r.Table5.SnapBatch != 16 {
		t.Errorf("decode %v ms, bandwidth %v, table 5 %+v", r.DecodeStepMs, r.BandwidthGBs, r.Table5)
	}
	if len(r.Memory) != 8 {
		t.Errorf("memory rows %+v", r.Memory)
	}
	for _, m := range r.Memory {
		if !m.Equal {
			t.Errorf("KV bytes %+v", m)
		}
	}
	if len(r.Prefill) != 2 || r.Prefill[0].Overhead <= 0 || len(r.VsTransformers) != 2 || r.VsTransformers[0].SnapevalTokS <= 0 ||
		!strings.Contains(r.VsTransformers[0].Error, "not installed") {
		t.Errorf("prefill %+v, vs %+v", r.Prefill, r.VsTransformers)
	}
	if _, ok := r.Profiles["prefill"]; !ok {
		t.Errorf("profiles %v", r.Profiles)
	}
	if !strings.Contains(log.String(), "bench: table5") {
		t.Errorf("no progress lines:\n%s", log.String())
	}
}
