package torch

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/datasets"
)

// shapeFiles holds the config.json of the model shapes BenchShapes names (random weights are made on the device
// from it: no download).
//
//go:embed shapes/*/config.json
var shapeFiles embed.FS

// BenchShapes names the model shapes `snapeval bench --backend torch --shape` knows.
func BenchShapes() []string {
	ents, _ := fs.ReadDir(shapeFiles, "shapes")
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// BenchOptions configure Bench.
type BenchOptions struct {
	// Model is a checkpoint directory (its weights are loaded); empty: Shape with random weights.
	Model string
	// Shape is a named model shape (BenchShapes) whose random weights are made on the device (default llama3.1-8b).
	Shape string
	// Quick uses small sizes (a smoke test of the whole path in a minute or two).
	Quick bool
	// KVBudgetBytes is Table 5's KV memory, the same for both sides (default 32 GiB; quick: two full sequences).
	KVBudgetBytes int64
	// Deadline bounds the worker's whole run, model load included: figures that would start too late are skipped
	// (default 520 s; the process is killed 60 s after it).
	Deadline time.Duration
	// Figures, when set, runs only these figures (ids of BenchFigures).
	Figures []string
	// Backend holds the worker options that apply: Python, Device, DType, DecodeAttn, NoCUDAGraphs, and Command
	// and Env for tests.
	Backend Options
	// Raw is where the worker writes its result (rewritten after every figure, so a killed run keeps what it
	// measured); default a temporary file.
	Raw string
	// Log receives the worker's progress lines.
	Log io.Writer
}

// BenchFigures are the figures of a bench run, in the order they run.
var BenchFigures = []string{"bandwidth", "decode", "flat", "table5", "vs_transformers", "prefill_32k", "profile", "prefill_128k"}

// benchShape is what the spec needs of the model's config.json.
type benchShape struct {
	Layers, QHeads, KVHeads, HeadDim, Vocab, MaxPositions int
}

// parseShape reads the attention shape of a Hugging Face config.json (a text_config block when present).
func parseShape(name string, b []byte) (benchShape, error) {
	var raw struct {
		Layers     int             `json:"num_hidden_layers"`
		Heads      int             `json:"num_attention_heads"`
		KVHeads    int             `json:"num_key_value_heads"`
		HeadDim    int             `json:"head_dim"`
		Hidden     int             `json:"hidden_size"`
		Vocab      int             `json:"vocab_size"`
		MaxPos     int             `json:"max_position_embeddings"`
		TextConfig json.RawMessage `json:"text_config"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return benchShape{}, fmt.Errorf("%s: %v", name, err)
	}
	if len(raw.TextConfig) > 0 && raw.Layers == 0 {
		return parseShape(name+" text_config", raw.TextConfig)
	}
	s := benchShape{Layers: raw.Layers, QHeads: raw.Heads, KVHeads: raw.KVHeads, HeadDim: raw.HeadDim, Vocab: raw.Vocab, MaxPositions: raw.MaxPos}
	if s.KVHeads == 0 {
		s.KVHeads = s.QHeads
	}
	if s.HeadDim == 0 && s.QHeads > 0 {
		s.HeadDim = raw.Hidden / s.QHeads
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"num_hidden_layers", s.Layers}, {"num_attention_heads", s.QHeads}, {"num_key_value_heads", s.KVHeads},
		{"head_dim", s.HeadDim}, {"vocab_size", s.Vocab}} {
		if f.v <= 0 {
			return benchShape{}, fmt.Errorf("%s: field %s: want a positive integer, got %d", name, f.name, f.v)
		}
	}
	if s.QHeads%s.KVHeads != 0 {
		return benchShape{}, fmt.Errorf("%s: field num_key_value_heads: %d does not divide num_attention_heads %d", name, s.KVHeads, s.QHeads)
	}
	return s, nil
}

// benchSizes are the problem sizes of a run.
type benchSizes struct {
	BandwidthMiB, BandwidthReps                        int
	DecodeContext, DecodeSteps, DecodeRounds           int
	FlatPolicy                                         string
	FlatShort, FlatLong, FlatRounds, FlatSteps         int
	Table5Policy                                       string
	Table5Prompt, Table5MaxNew, Table5Rounds           int
	Table5Steps                                        int
	VsConfigs                                          [][2]int // batch, context
	VsSteps, VsRounds, VsWarmup                        int
	PrefillPolicy                                      string
	PrefillShort, PrefillLong, PrefillRounds           int
	PrefillLongRounds                                  int
	ProfileDecodeContext, ProfilePrefill               int
	Warmup                                             int
	LimitsS                                            map[string]float64
	MinS                                               map[string]float64
	DefaultKVBudget                                    int64
	DefaultKVBudgetFullSeqs                            int
	DecodeMaxNewSlack, FlatMaxNew, ProfileDecodeMaxNew int
}

func sizesFor(quick bool) benchSizes {
	if quick {
		return benchSizes{BandwidthMiB: 64, BandwidthReps: 3, DecodeContext: 512, DecodeSteps: 4, DecodeRounds: 2,
			FlatPolicy: "snapstream:budget=256", FlatShort: 512, FlatLong: 2048, FlatRounds: 2, FlatSteps: 3,
			Table5Policy: "snapstream:budget=256", Table5Prompt: 2048, Table5MaxNew: 32, Table5Rounds: 2, Table5Steps: 3,
			VsConfigs: [][2]int{{1, 512}, {4, 512}}, VsSteps: 4, VsRounds: 2, VsWarmup: 1,
			PrefillPolicy: "snapstream:budget=256", PrefillShort: 1024, PrefillLong: 2048, PrefillRounds: 2, PrefillLongRounds: 2,
			ProfileDecodeContext: 512, ProfilePrefill: 1024, Warmup: 2, DefaultKVBudgetFullSeqs: 2,
			DecodeMaxNewSlack: 4, FlatMaxNew: 32, ProfileDecodeMaxNew: 16,
			LimitsS: map[string]float64{"bandwidth": 30, "decode": 60, "flat": 60, "table5": 60, "vs_transformers": 90,
				"prefill_32k": 60, "profile": 60, "prefill_128k": 60},
			MinS: map[string]float64{}}
	}
	return benchSizes{BandwidthMiB: 1024, BandwidthReps: 10, DecodeContext: 4096, DecodeSteps: 16, DecodeRounds: 3,
		FlatPolicy: "snapstream:budget=8192", FlatShort: 8192, FlatLong: 131008, FlatRounds: 5, FlatSteps: 8,
		Table5Policy: "snapstream:budget=32768", Table5Prompt: 130944, Table5MaxNew: 128, Table5Rounds: 5, Table5Steps: 8,
		VsConfigs: [][2]int{{1, 4096}, {8, 4096}, {1, 32768}, {8, 32768}}, VsSteps: 32, VsRounds: 2, VsWarmup: 2,
		PrefillPolicy: "snapstream:budget=8192", PrefillShort: 32768, PrefillLong: 131008, PrefillRounds: 3, PrefillLongRounds: 2,
		ProfileDecodeContext: 4096, ProfilePrefill: 32768, Warmup: 3, DefaultKVBudget: 32 << 30,
		DecodeMaxNewSlack: 4, FlatMaxNew: 64, ProfileDecodeMaxNew: 16,
		LimitsS: map[string]float64{"bandwidth": 30, "decode": 60, "flat": 60, "table5": 120, "vs_transformers": 200,
			"prefill_32k": 100, "profile": 60, "prefill_128k": 150},
		MinS: map[string]float64{"vs_transformers": 40, "prefill_32k": 25, "profile": 15, "prefill_128k": 70}}
}

// specFigure is one figure of the worker's spec (snapworker/bench.py reads the fields it needs).
type specFigure map[string]any

// benchSpec is the worker's input.
type benchSpec struct {
	Model         string       `json:"model"`
	RandomWeights bool         `json:"random_weights"`
	DType         string       `json:"dtype"`
	Device        string       `json:"device"`
	Seed          int          `json:"seed"`
	DeadlineS     float64      `json:"deadline_s"`
	MLPChunk      int          `json:"mlp_chunk"`
	Figures       []specFigure `json:"figures"`
}

// planFor lays out a prompt of n tokens and maxNew new tokens under spec.
func planFor(spec string, n, maxNew, layers int) (wirePlan, compress.Plan, error) {
	pol, err := compress.Parse(spec)
	if err != nil {
		return wirePlan{}, compress.Plan{}, err
	}
	p, err := pol.Plan(n, maxNew)
	if err != nil {
		return wirePlan{}, compress.Plan{}, err
	}
	return toWire(p, layers), p, nil
}

// buildSpec lays out every figure for a model of shape s with elemBytes-byte K/V elements.
func buildSpec(s benchShape, elemBytes int, o BenchOptions) (benchSpec, error) {
	sz := sizesFor(o.Quick)
	kvBytes := func(capacity int) int64 {
		return compress.KVBytes(capacity, s.Layers, s.KVHeads, s.HeadDim, elemBytes)
	}
	var figs []specFigure
	var firstErr error
	plan := func(spec string, n, maxNew int) wirePlan {
		w, _, err := planFor(spec, n, maxNew, s.Layers)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("bench spec: %s at %d tokens: %w", spec, n, err)
		}
		return w
	}
	common := func(id, kind string) specFigure {
		f := specFigure{"id": id, "kind": kind, "limit_s": sz.LimitsS[id], "min_s": sz.MinS[id], "warmup": sz.Warmup,
			"cuda_graphs": !o.Backend.NoCUDAGraphs, "decode_attn": o.Backend.DecodeAttn}
		if f["decode_attn"] == "" {
			f["decode_attn"] = "auto"
		}
		return f
	}
	add := func(f specFigure) {
		if len(o.Figures) == 0 || slices.Contains(o.Figures, f["id"].(string)) {
			figs = append(figs, f)
		}
	}
	f := common("bandwidth", "bandwidth")
	f["mib"], f["reps"], f["samples"] = sz.BandwidthMiB, sz.BandwidthReps, 3
	add(f)

	f = common("decode", "decode")
	decodeNew := sz.Warmup + sz.DecodeSteps*sz.DecodeRounds + sz.DecodeMaxNewSlack
	f["plan"], f["steps"], f["rounds"] = plan("full", sz.DecodeContext, decodeNew), sz.DecodeSteps, sz.DecodeRounds
	add(f)

	f = common("flat", "flat")
	f["policy"], f["steps"], f["rounds"] = sz.FlatPolicy, sz.FlatSteps, sz.FlatRounds
	f["contexts"] = []map[string]any{{"plan": plan(sz.FlatPolicy, sz.FlatShort, sz.FlatMaxNew)},
		{"plan": plan(sz.FlatPolicy, sz.FlatLong, sz.FlatMaxNew)}}
	add(f)

	f = common("table5", "table5")
	_, fullPlan, err := planFor("full", sz.Table5Prompt, sz.Table5MaxNew, s.Layers)
	if err != nil {
		return benchSpec{}, err
	}
	_, snapPlan, err := planFor(sz.Table5Policy, sz.Table5Prompt, sz.Table5MaxNew, s.Layers)
	if err != nil {
		return benchSpec{}, err
	}
	budget := o.KVBudgetBytes
	if budget == 0 {
		budget = sz.DefaultKVBudget
		if budget == 0 {
			budget = int64(sz.DefaultKVBudgetFullSeqs) * kvBytes(fullPlan.Capacity)
		}
	}
	fullBatch, snapBatch := int(budget/kvBytes(fullPlan.Capacity)), int(budget/kvBytes(snapPlan.Capacity))
	if fullBatch < 1 {
		return benchSpec{}, fmt.Errorf("bench: a KV budget of %.2f GiB holds no full-cache sequence of %d slots (%.2f GiB); raise --kv-budget-mb",
			float64(budget)/(1<<30), fullPlan.Capacity, float64(kvBytes(fullPlan.Capacity))/(1<<30))
	}
	f["kv_budget_bytes"], f["steps"], f["rounds"], f["policy"] = budget, sz.Table5Steps, sz.Table5Rounds, sz.Table5Policy
	f["sides"] = []map[string]any{{"side": "full", "batch": fullBatch, "plan": toWire(fullPlan, s.Layers)},
		{"side": "snapstream", "batch": snapBatch, "plan": toWire(snapPlan, s.Layers), "policy": sz.Table5Policy}}
	add(f)

	f = common("vs_transformers", "vs_transformers")
	var cfgs []map[string]any
	for _, c := range sz.VsConfigs {
		cfgs = append(cfgs, map[string]any{"batch": c[0], "plan": plan("full", c[1], sz.VsWarmup+sz.VsSteps+2)})
	}
	f["configs"], f["steps"], f["rounds"], f["warmup"] = cfgs, sz.VsSteps, sz.VsRounds, sz.VsWarmup
	add(f)

	for _, p := range []struct {
		id             string
		n, rounds, wup int
		hf             bool
	}{{"prefill_32k", sz.PrefillShort, sz.PrefillRounds, 1, true}, {"profile", 0, 0, 0, false}, {"prefill_128k", sz.PrefillLong, sz.PrefillLongRounds, 0, false}} {
		if p.id == "profile" {
			f = common("profile", "profile")
			f["decode_plan"] = plan("full", sz.ProfileDecodeContext, sz.ProfileDecodeMaxNew)
			f["prefill_plan"] = plan(sz.PrefillPolicy, sz.ProfilePrefill, 1)
			add(f)
			continue
		}
		f = common(p.id, "prefill")
		f["prompt"], f["rounds"], f["warmup"], f["transformers"] = p.n, p.rounds, p.wup, p.hf
		f["plans"] = map[string]any{"full": plan("full", p.n, 1), "snapstream": plan(sz.PrefillPolicy, p.n, 1)}
		f["policy"] = sz.PrefillPolicy
		add(f)
	}
	if firstErr != nil {
		return benchSpec{}, firstErr
	}
	if len(figs) == 0 {
		return benchSpec{}, fmt.Errorf("bench: no figure selected (known: %s)", strings.Join(BenchFigures, ", "))
	}
	deadline := o.Deadline
	if deadline == 0 {
		deadline = 520 * time.Second
	}
	return benchSpec{DType: o.Backend.DType, Device: o.Backend.Device, DeadlineS: deadline.Seconds(), MLPChunk: 32768, Figures: figs}, nil
}

// Bench runs `snapeval bench --backend torch`: it lays out every figure (plans from package compress), runs the
// worker's bench (snapworker/bench.py) in one process and computes the report from its raw timings.
func Bench(ctx context.Context, o BenchOptions) (*BenchResult, error) {
	o.Backend = o.Backend.withDefaults()
	for _, id := range o.Figures {
		if !slices.Contains(BenchFigures, id) {
			return nil, fmt.Errorf("bench: unknown figure %q (known: %s)", id, strings.Join(BenchFigures, ", "))
		}
	}
	dir, name, random, cleanup, err := benchModel(o)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	shape, err := parseShape(filepath.Join(dir, "config.json"), cfg)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	elem := 2
	if o.Backend.DType == "float32" {
		elem = 4
	}
	spec, err := buildSpec(shape, elem, o)
	if err != nil {
		return nil, err
	}
	spec.Model, spec.RandomWeights = dir, random
	tmp, err := os.MkdirTemp("", "snapeval-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	specPath := filepath.Join(tmp, "spec.json")
	b, _ := json.MarshalIndent(spec, "", " ")
	if err := os.WriteFile(specPath, b, 0o644); err != nil {
		return nil, err
	}
	raw := o.Raw
	if raw == "" {
		raw = filepath.Join(tmp, "result.json")
	}
	os.Remove(raw)
	runErr := runBenchWorker(ctx, o, spec, specPath, raw)
	rb, err := os.ReadFile(raw)
	if err != nil {
		if runErr != nil {
			return nil, runErr
		}
		return nil, fmt.Errorf("bench: the worker wrote no result: %w", err)
	}
	res, err := BenchReport(rb, name)
	if err != nil {
		return nil, err
	}
	if runErr != nil {
		res.Errors["worker"] = runErr.Error()
	}
	return res, nil
}

// benchModel is the model directory: the checkpoint, or a temporary directory holding the shape's config.json.
func benchModel(o BenchOptions) (dir, name string, random bool, cleanup func(), err error) {
	cleanup = func() {}
	if o.Model != "" {
		st, err := os.Stat(o.Model)
		if err != nil || !st.IsDir() {
			return "", "", false, cleanup, fmt.Errorf("bench: --model %s is not a checkpoint directory", o.Model)
		}
		return o.Model, o.Model, o.Backend.RandomWeights, cleanup, nil
	}
	shape := o.Shape
	if shape == "" {
		shape = "llama3.1-8b"
	}
	cfg, err := fs.ReadFile(shapeFiles, "shapes/"+shape+"/config.json")
	if err != nil {
		return "", "", false, cleanup, fmt.Errorf("bench: unknown shape %q for the torch backend (known: %s)", shape, strings.Join(BenchShapes(), ", "))
	}
	d, err := os.MkdirTemp("", "snapeval-shape-")
	if err != nil {
		return "", "", false, cleanup, err
	}
	if err := os.WriteFile(filepath.Join(d, "config.json"), cfg, 0o644); err != nil {
		os.RemoveAll(d)
		return "", "", false, cleanup, err
	}
	return d, shape + " (random weights made on the device)", true, func() { os.RemoveAll(d) }, nil
}

// runBenchWorker runs python -m snapworker bench (or the test command) with a time limit of the deadline plus
// a minute; its stderr goes to o.Log and its tail into the error.
func runBenchWorker(ctx context.Context, o BenchOptions, spec benchSpec, specPath, raw string) error {
	args := []string{"bench", "--spec", specPath, "--out", raw}
	var argv, env []string
	if len(o.Backend.Command) > 0 {
		argv = append(append([]string{}, o.Backend.Command...), args...)
		env = o.Backend.Env
	} else {
		wd, err := workerDir(datasets.CacheDir())
		if err != nil {
			return err
		}
		argv = append([]string{o.Backend.Python, "-m", "snapworker"}, args...)
		pp := wd
		if old := os.Getenv("PYTHONPATH"); old != "" {
			pp += string(os.PathListSeparator) + old
		}
		env = append([]string{"PYTHONPATH=" + pp, "PYTHONUNBUFFERED=1"}, o.Backend.Env...)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(spec.DeadlineS*float64(time.Second))+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	tl := newTail(30)
	var logw io.Writer = io.Discard
	if o.Log != nil {
		logw = o.Log
	}
	w := io.MultiWriter(logw, lineWriter{tl}) // one writer for both: they share one pipe
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		var ee *exec.Error
		var pe *fs.PathError
		if errors.As(err, &ee) || errors.As(err, &pe) {
			return &SetupError{Msg: fmt.Sprintf("cannot run %s: %v: install Python 3.10+ with PyTorch and transformers, or point --backend-opt python=PATH at one", argv[0], err)}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("bench worker: stopped after the deadline (%v): %v; last output: %s", ctx.Err(), err, tl.String())
		}
		return fmt.Errorf("bench worker: %v; last output: %s", err, tl.String())
	}
	return nil
}

// lineWriter feeds a tail line by line.
type lineWriter struct{ t *tail }

func (w lineWriter) Write(p []byte) (int, error) {
	for _, l := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		if len(l) > 0 {
			w.t.add(string(l))
		}
	}
	return len(p), nil
}

// median returns the median of x (NaN when empty).
func median(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
