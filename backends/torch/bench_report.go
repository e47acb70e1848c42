package torch

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/snapeval/snapeval/backends/cpu/perf"
	"github.com/snapeval/snapeval/compress"
)

// BenchResult is the report of `snapeval bench --backend torch`: the keys the cpu bench has where they apply
// (weight_bytes, bandwidth_gbs, decode_step_ms, decode_bandwidth_fraction, steps, table5, ...), what only a GPU run
// has (prefill against transformers' forward, decode against transformers' generate, peak device memory, profiles),
// and the targets with their verdicts.
type BenchResult struct {
	Model        string  `json:"model"`
	GPU          string  `json:"gpu"`
	Torch        string  `json:"torch"`
	Transformers string  `json:"transformers"`
	CUDA         string  `json:"cuda"`
	DType        string  `json:"dtype"`
	Params       int64   `json:"params"`
	LoadS        float64 `json:"load_s"`
	ElapsedS     float64 `json:"elapsed_s"`
	// WeightBytes is what one decode step reads of the weights (all but an untied input embedding).
	WeightBytes         int64     `json:"weight_bytes"`
	DeviceMemoryBytes   int64     `json:"device_memory_bytes"`
	BandwidthGBs        float64   `json:"bandwidth_gbs"`
	BandwidthSamplesGBs []float64 `json:"bandwidth_samples_gbs"`
	// Single-sequence decode: the engine's step (host work included) at DecodeContext, and the CUDA graph's replay
	// alone; DecodeBytesPerStep is weights plus the live K/V.
	DecodeContext           int     `json:"decode_context"`
	DecodeStepMs            float64 `json:"decode_step_ms"`
	DecodeReplayMs          float64 `json:"decode_replay_ms"`
	DecodeTokS              float64 `json:"decode_tok_s"`
	DecodeBytesPerStep      int64   `json:"decode_bytes_per_step"`
	DecodeBandwidthFraction float64 `json:"decode_bandwidth_fraction"`
	// Static is how the decode step ran: CUDA graphs (or why not), the attention kernel per batch size.
	Static map[string]any `json:"static"`
	// Steps is the flat-decode sweep: one sequence under the compressed policy per context.
	Steps           []perf.StepRow `json:"steps"`
	FlatRatio       *float64       `json:"flat_ratio_128k_8k"`
	FlatRoundRatios []float64      `json:"flat_round_ratios"`
	Table5          *perf.Table5   `json:"table5"`
	// Table5ThroughputRatio is Table5.Ratio (null when not measured).
	Table5ThroughputRatio *float64     `json:"table5_throughput_ratio"`
	Prefill               []PrefillRow `json:"prefill"`
	VsTransformers        []VsRow      `json:"vs_transformers"`
	Memory                []MemoryRow  `json:"memory"`
	Peaks                 []PeakRow    `json:"peak_memory"`
	Targets               []Target     `json:"targets"`
	// Profiles are torch.profiler tables (top operators and kernels by device time) per profiled run.
	Profiles map[string]Profile `json:"profiles"`
	// Errors are the figures that failed or were skipped, with why.
	Errors map[string]string `json:"errors"`
	// Raw is the worker's own result.
	Raw json.RawMessage `json:"raw"`
}

// PrefillRow is one prompt length's prefill times (medians of alternating rounds).
type PrefillRow struct {
	ID           string    `json:"id"`
	Prompt       int       `json:"prompt"`
	Policy       string    `json:"policy"`
	FullMs       float64   `json:"full_ms"`
	SnapMs       float64   `json:"snapstream_ms"`
	Overhead     float64   `json:"overhead"`
	OverheadRnds []float64 `json:"overhead_round_ratios"`
	FullTokS     float64   `json:"full_tok_s"`
	// Transformers: transformers' own forward (sdpa, no cache, last logits only); 0 when not measured.
	TransformersMs   float64   `json:"transformers_ms"`
	TransformersTokS float64   `json:"transformers_tok_s"`
	Speed            float64   `json:"speed_ratio"`
	SpeedRnds        []float64 `json:"speed_round_ratios"`
}

// VsRow is decode throughput against transformers' generate at one batch and context.
type VsRow struct {
	Batch            int       `json:"batch"`
	Context          int       `json:"context"`
	SnapevalStepMs   float64   `json:"snapeval_step_ms"`
	SnapevalTokS     float64   `json:"snapeval_tok_s"`
	TransformersMs   float64   `json:"transformers_step_ms"`
	TransformersTokS float64   `json:"transformers_tok_s"`
	Ratio            float64   `json:"ratio"`
	RoundRatios      []float64 `json:"round_ratios"`
	Error            string    `json:"error,omitempty"`
}

// MemoryRow checks the KV bytes a sequence held in the engine against docs/policies.md §10's formula.
type MemoryRow struct {
	Config   string `json:"config"`
	Capacity int    `json:"capacity"`
	Engine   int64  `json:"kv_bytes_engine"`
	Formula  int64  `json:"kv_bytes_formula"`
	Equal    bool   `json:"equal"`
}

// PeakRow is the device's peak allocated memory during one configuration.
type PeakRow struct {
	Config string `json:"config"`
	Bytes  int64  `json:"peak_bytes"`
}

// Target is one claim of issue #21 with its measured value and verdict (Met nil: not measured).
type Target struct {
	Claim  string   `json:"claim"`
	Figure string   `json:"figure"`
	Target string   `json:"target"`
	Value  *float64 `json:"value"`
	Met    *bool    `json:"met"`
	Note   string   `json:"note,omitempty"`
}

// Profile is one profiled run: the profiler's table and its top entries.
type Profile struct {
	Table string       `json:"table"`
	Top   []ProfileTop `json:"top"`
}

// ProfileTop is one operator or kernel of a profile, per step.
type ProfileTop struct {
	Name         string  `json:"name"`
	Count        int     `json:"count"`
	SelfDeviceUs float64 `json:"self_device_us"`
	CPUUs        float64 `json:"cpu_us"`
}

// rawBench is the worker's result file.
type rawBench struct {
	Info     rawInfo                    `json:"info"`
	Figures  map[string]json.RawMessage `json:"figures"`
	Order    []string                   `json:"order"`
	ElapsedS float64                    `json:"elapsed_s"`
	LoadS    float64                    `json:"load_s"`
	Fatal    string                     `json:"fatal"`
}

type rawInfo struct {
	Torch, Transformers, CUDA, GPU, DType string
	Python                                string
	Layers, KVHeads, HeadDim, ElemBytes   int
	Params, WeightBytes, WeightBytesRead  int64
	DeviceMemoryBytes                     int64
}

func (i *rawInfo) UnmarshalJSON(b []byte) error {
	var r struct {
		Torch             string `json:"torch"`
		Transformers      string `json:"transformers"`
		CUDA              string `json:"cuda"`
		GPU               string `json:"gpu"`
		DType             string `json:"dtype"`
		Python            string `json:"python"`
		Layers            int    `json:"layers"`
		KVHeads           int    `json:"kv_heads"`
		HeadDim           int    `json:"head_dim"`
		ElemBytes         int    `json:"elem_bytes"`
		Params            int64  `json:"params"`
		WeightBytes       int64  `json:"weight_bytes"`
		WeightBytesRead   int64  `json:"weight_bytes_read"`
		DeviceMemoryBytes int64  `json:"device_memory_bytes"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	*i = rawInfo{Torch: r.Torch, Transformers: r.Transformers, CUDA: r.CUDA, GPU: r.GPU, DType: r.DType, Python: r.Python,
		Layers: r.Layers, KVHeads: r.KVHeads, HeadDim: r.HeadDim, ElemBytes: r.ElemBytes, Params: r.Params,
		WeightBytes: r.WeightBytes, WeightBytesRead: r.WeightBytesRead, DeviceMemoryBytes: r.DeviceMemoryBytes}
	return nil
}

type rawCommon struct {
	OK        bool           `json:"ok"`
	Error     string         `json:"error"`
	Skipped   bool           `json:"skipped"`
	PeakBytes int64          `json:"peak_bytes"`
	Spec      map[string]any `json:"spec"`
}

// BenchReport computes the report from the worker's result file (raw) for a model described by name.
func BenchReport(raw []byte, name string) (*BenchResult, error) {
	var rb rawBench
	if err := json.Unmarshal(raw, &rb); err != nil {
		return nil, fmt.Errorf("bench: the worker's result is not JSON: %v", err)
	}
	if rb.Fatal != "" {
		return nil, &SetupError{Msg: rb.Fatal}
	}
	in := rb.Info
	r := &BenchResult{Model: name, GPU: in.GPU, Torch: in.Torch, Transformers: in.Transformers, CUDA: in.CUDA, DType: in.DType,
		Params: in.Params, WeightBytes: in.WeightBytesRead, DeviceMemoryBytes: in.DeviceMemoryBytes, LoadS: rb.LoadS,
		ElapsedS: rb.ElapsedS, Errors: map[string]string{}, Profiles: map[string]Profile{}, Raw: json.RawMessage(raw)}
	fig := func(id string, v any) bool {
		b, ok := rb.Figures[id]
		if !ok {
			return false
		}
		var c rawCommon
		if err := json.Unmarshal(b, &c); err != nil {
			r.Errors[id] = "bad result: " + err.Error()
			return false
		}
		if !c.OK {
			r.Errors[id] = c.Error
			if r.Errors[id] == "" {
				r.Errors[id] = "failed"
			}
			return false
		}
		if err := json.Unmarshal(b, v); err != nil {
			r.Errors[id] = "bad result: " + err.Error()
			return false
		}
		if c.PeakBytes > 0 {
			r.Peaks = append(r.Peaks, PeakRow{Config: id, Bytes: c.PeakBytes})
		}
		return true
	}
	kvFormula := func(capacity int) int64 {
		return compress.KVBytes(capacity, in.Layers, in.KVHeads, in.HeadDim, in.ElemBytes)
	}

	var bw struct {
		GBs []float64 `json:"gbs"`
	}
	if fig("bandwidth", &bw) && len(bw.GBs) > 0 {
		r.BandwidthSamplesGBs = bw.GBs
		r.BandwidthGBs = slicesMax(bw.GBs)
	}

	var dec struct {
		Context   int            `json:"context"`
		StepMs    []float64      `json:"step_ms"`
		ReplayMs  float64        `json:"replay_ms"`
		Live      float64        `json:"live_slots_mean"`
		SlotBytes int64          `json:"slot_bytes"`
		Static    map[string]any `json:"static"`
	}
	if fig("decode", &dec) && len(dec.StepMs) > 0 {
		r.DecodeContext, r.DecodeStepMs, r.DecodeReplayMs, r.Static = dec.Context, median(dec.StepMs), dec.ReplayMs, dec.Static
		r.DecodeTokS = 1000 / r.DecodeStepMs
		r.DecodeBytesPerStep = in.WeightBytesRead + int64(dec.Live*float64(dec.SlotBytes))
		if r.BandwidthGBs > 0 {
			r.DecodeBandwidthFraction = float64(r.DecodeBytesPerStep) / (r.DecodeStepMs / 1000) / (r.BandwidthGBs * 1e9)
		}
	}

	var flat struct {
		Contexts []int                `json:"contexts"`
		Capacity []int                `json:"capacity"`
		KVBytes  []int64              `json:"kv_bytes"`
		Rounds   []map[string]float64 `json:"rounds"`
		Spec     map[string]any       `json:"spec"`
	}
	if fig("flat", &flat) && len(flat.Contexts) == 2 && len(flat.Capacity) == 2 && len(flat.KVBytes) == 2 {
		pol, _ := flat.Spec["policy"].(string)
		var meds []float64
		for i, c := range flat.Contexts {
			m := median(column(flat.Rounds, strconv.Itoa(c)))
			meds = append(meds, m)
			r.Steps = append(r.Steps, perf.StepRow{Policy: pol, Context: c, LiveSlots: flat.Capacity[i], KVBytes: flat.KVBytes[i], StepMs: m})
			r.Memory = append(r.Memory, memRow(fmt.Sprintf("flat %s at %d", pol, c), flat.Capacity[i], flat.KVBytes[i], kvFormula))
		}
		r.FlatRatio = ratioPtr(meds[1], meds[0])
		r.FlatRoundRatios = roundRatios(flat.Rounds, strconv.Itoa(flat.Contexts[1]), strconv.Itoa(flat.Contexts[0]))
	}

	var t5 struct {
		Rounds []map[string]float64 `json:"rounds"`
		Sides  []struct {
			Side     string `json:"side"`
			Batch    int    `json:"batch"`
			Capacity int    `json:"capacity"`
			Prompt   int    `json:"prompt"`
			KVBytes  int64  `json:"kv_bytes_seq"`
		} `json:"sides"`
		Spec map[string]any `json:"spec"`
	}
	if fig("table5", &t5) && len(t5.Sides) == 2 {
		t := &perf.Table5{Prompt: t5.Sides[0].Prompt}
		t.KVBudgetBytes = int64(num(t5.Spec["kv_budget_bytes"]))
		for _, s := range t5.Sides {
			m := median(column(t5.Rounds, s.Side))
			r.Memory = append(r.Memory, memRow("table 5 "+s.Side, s.Capacity, s.KVBytes, kvFormula))
			if s.Side == "full" {
				t.FullSeqBytes, t.FullBatch, t.FullStepMs, t.FullTokS = s.KVBytes, s.Batch, m, float64(s.Batch)*1000/m
			} else {
				t.SnapSeqBytes, t.SnapBatch, t.SnapStepMs, t.SnapTokS = s.KVBytes, s.Batch, m, float64(s.Batch)*1000/m
			}
		}
		t.Policy, _ = t5.Spec["policy"].(string)
		if t.Policy == "" {
			t.Policy = "snapstream"
		}
		t.Ratio = t.SnapTokS / t.FullTokS
		for _, rd := range t5.Rounds {
			if f, s := rd["full"], rd["snapstream"]; f > 0 && s > 0 {
				t.RoundRatios = append(t.RoundRatios, (float64(t.SnapBatch)/s)/(float64(t.FullBatch)/f))
			}
		}
		r.Table5 = t
		r.Table5ThroughputRatio = ratioPtr(t.SnapTokS, t.FullTokS)
	}

	var vs struct {
		Configs []struct {
			Batch     int                  `json:"batch"`
			Context   int                  `json:"context"`
			Rounds    []map[string]float64 `json:"rounds"`
			Peak      map[string]int64     `json:"peak_bytes"`
			Error     string               `json:"error"`
			HFError   string               `json:"transformers_error"`
			StaticRun map[string]any       `json:"static"`
		} `json:"configs"`
	}
	if fig("vs_transformers", &vs) {
		for _, c := range vs.Configs {
			row := VsRow{Batch: c.Batch, Context: c.Context, Error: strings.TrimSpace(c.Error + " " + c.HFError)}
			row.SnapevalStepMs = median(column(c.Rounds, "snapeval_ms"))
			row.TransformersMs = median(column(c.Rounds, "transformers_ms"))
			row.SnapevalTokS = finite(float64(c.Batch) * 1000 / row.SnapevalStepMs)
			row.TransformersTokS = finite(float64(c.Batch) * 1000 / row.TransformersMs)
			row.SnapevalStepMs, row.TransformersMs = finite(row.SnapevalStepMs), finite(row.TransformersMs)
			if row.SnapevalTokS > 0 && row.TransformersTokS > 0 {
				row.Ratio = row.SnapevalTokS / row.TransformersTokS
			}
			row.RoundRatios = roundRatios(c.Rounds, "transformers_ms", "snapeval_ms")
			for side, p := range c.Peak {
				r.Peaks = append(r.Peaks, PeakRow{Config: fmt.Sprintf("vs_transformers %s batch %d at %d", side, c.Batch, c.Context), Bytes: p})
			}
			r.VsTransformers = append(r.VsTransformers, row)
		}
	}

	for _, id := range []string{"prefill_32k", "prefill_128k"} {
		var pf struct {
			Prompt   int                  `json:"prompt"`
			Rounds   []map[string]float64 `json:"rounds"`
			Peak     map[string]int64     `json:"side_peak_bytes"`
			KVBytes  map[string]int64     `json:"kv_bytes"`
			Capacity map[string]int       `json:"capacity"`
			Spec     map[string]any       `json:"spec"`
			HFError  string               `json:"transformers_error"`
		}
		if !fig(id, &pf) {
			continue
		}
		if pf.HFError != "" {
			r.Errors[id+" transformers"] = pf.HFError
		}
		row := PrefillRow{ID: id, Prompt: pf.Prompt}
		row.Policy, _ = pf.Spec["policy"].(string)
		row.FullMs, row.SnapMs = median(column(pf.Rounds, "full")), median(column(pf.Rounds, "snapstream"))
		row.Overhead = finite(row.SnapMs / row.FullMs)
		row.OverheadRnds = roundRatios(pf.Rounds, "snapstream", "full")
		row.FullTokS = finite(float64(pf.Prompt) * 1000 / row.FullMs)
		if hf := column(pf.Rounds, "transformers"); len(hf) > 0 {
			row.TransformersMs = median(hf)
			row.TransformersTokS = float64(pf.Prompt) * 1000 / row.TransformersMs
			row.Speed = finite(row.TransformersMs / row.FullMs)
			row.SpeedRnds = roundRatios(pf.Rounds, "transformers", "full")
		}
		r.Prefill = append(r.Prefill, row)
		for _, side := range sortedKeys(pf.Peak) {
			r.Peaks = append(r.Peaks, PeakRow{Config: fmt.Sprintf("%s %s", id, side), Bytes: pf.Peak[side]})
		}
		for _, side := range sortedKeys(pf.KVBytes) {
			r.Memory = append(r.Memory, memRow(fmt.Sprintf("%s %s", id, side), pf.Capacity[side], pf.KVBytes[side], kvFormula))
		}
	}

	var prof map[string]json.RawMessage
	if fig("profile", &prof) {
		for k, v := range prof {
			var p Profile
			if json.Unmarshal(v, &p) == nil && p.Table != "" {
				r.Profiles[k] = p
			}
		}
	}
	for _, id := range BenchFigures {
		if _, ok := rb.Figures[id]; !ok {
			if _, failed := r.Errors[id]; !failed {
				r.Errors[id] = "not measured (the run ended before it, or it was not selected)"
			}
		}
	}
	r.Targets = r.targets()
	return r, nil
}

func memRow(config string, capacity int, engine int64, formula func(int) int64) MemoryRow {
	f := formula(capacity)
	return MemoryRow{Config: config, Capacity: capacity, Engine: engine, Formula: f, Equal: engine == f}
}

// targets are issue #21's claims against this run.
func (r *BenchResult) targets() []Target {
	var out []Target
	add := func(claim, figure, target string, v float64, ok bool, met func(float64) bool, note string) {
		t := Target{Claim: claim, Figure: figure, Target: target, Note: note}
		if ok && !math.IsNaN(v) && !math.IsInf(v, 0) && v > 0 {
			t.Value = &v
			m := met(v)
			t.Met = &m
		}
		out = append(out, t)
	}
	le := func(x float64) func(float64) bool { return func(v float64) bool { return v <= x } }
	ge := func(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
	for _, id := range []string{"prefill_32k", "prefill_128k"} {
		var row *PrefillRow
		for i := range r.Prefill {
			if r.Prefill[i].ID == id {
				row = &r.Prefill[i]
			}
		}
		note := r.Errors[id]
		if row != nil {
			note = "rounds " + ratioRange(row.OverheadRnds)
			add("prefill overhead of compression (paper: 2-5%)", fmt.Sprintf("%s prefill / full prefill, %d-token prompt", row.Policy, row.Prompt),
				"<= 1.05", row.Overhead, true, le(1.05), note)
		} else {
			add("prefill overhead of compression (paper: 2-5%)", "SnapStream prefill / full prefill, "+strings.TrimPrefix(id, "prefill_"), "<= 1.05", 0, false, le(1.05), note)
		}
	}
	var speed *PrefillRow
	for i := range r.Prefill {
		if r.Prefill[i].TransformersMs > 0 {
			speed = &r.Prefill[i]
		}
	}
	if speed != nil {
		add("prefill speed", fmt.Sprintf("snapeval full-cache prefill tok/s / transformers forward (sdpa), %d tokens", speed.Prompt), ">= 1.0",
			speed.Speed, true, ge(1.0), fmt.Sprintf("rounds %s; %.0f vs %.0f ms (the prefill profile shows where it goes)",
				ratioRange(speed.SpeedRnds), speed.FullMs, speed.TransformersMs))
	} else {
		add("prefill speed", "snapeval full-cache prefill tok/s / transformers forward (sdpa), 32k", ">= 1.0", 0, false, ge(1.0),
			strings.TrimSpace(r.Errors["prefill_32k"]+" "+r.Errors["prefill_32k transformers"]))
	}
	note := r.Errors["decode"]
	if note == "" && r.BandwidthGBs == 0 {
		note = "no bandwidth measurement: " + r.Errors["bandwidth"]
	} else if note == "" && r.DecodeStepMs > 0 {
		note = fmt.Sprintf("step %.2f ms, of which the graph's replay %.2f ms (the rest is the engine's host work)", r.DecodeStepMs, r.DecodeReplayMs)
		if on, _ := r.Static["cuda_graphs"].(bool); !on {
			why, _ := r.Static["graph_error"].(string)
			if why == "" {
				why = "not on a GPU, or cuda_graphs=false"
			}
			note = fmt.Sprintf("step %.2f ms without CUDA graphs (%s)", r.DecodeStepMs, why)
		}
	}
	add("single-sequence decode", fmt.Sprintf("(weights + live KV) / step time / copy bandwidth, batch 1, %d context", r.DecodeContext), ">= 70%",
		r.DecodeBandwidthFraction, r.DecodeBandwidthFraction > 0, ge(0.70), note)
	if len(r.VsTransformers) == 0 {
		add("decode against the reference engine", "snapeval decode tok/s / transformers generate tok/s", ">= 2.0", 0, false, ge(2.0), r.Errors["vs_transformers"])
	}
	for _, v := range r.VsTransformers {
		n := fmt.Sprintf("rounds %s; %.2f vs %.2f ms a step", ratioRange(v.RoundRatios), v.SnapevalStepMs, v.TransformersMs)
		if v.Error != "" {
			n = v.Error
		}
		add("decode against the reference engine", fmt.Sprintf("snapeval / transformers generate tok/s, batch %d, %d context", v.Batch, v.Context),
			">= 2.0", v.Ratio, v.Ratio > 0, ge(2.0), n)
	}
	if r.FlatRatio != nil && len(r.Steps) == 2 {
		add("flat decode under a fixed budget", fmt.Sprintf("%s step time at %d / at %d context", r.Steps[0].Policy, r.Steps[1].Context, r.Steps[0].Context),
			"<= 1.1", *r.FlatRatio, true, le(1.1), "rounds "+ratioRange(r.FlatRoundRatios))
	} else {
		add("flat decode under a fixed budget", "SnapStream (budget 8192) step time at 128k / at 8k", "<= 1.1", 0, false, le(1.1), r.Errors["flat"])
	}
	if t := r.Table5; t != nil {
		add("Table 5 on a GPU", fmt.Sprintf("%s batch %d / full batch %d in %.1f GiB of KV, %d-token context: decode tok/s", t.Policy, t.SnapBatch, t.FullBatch,
			float64(t.KVBudgetBytes)/(1<<30), t.Prompt), ">= 3.5", t.Ratio, true, ge(3.5), "rounds "+ratioRange(t.RoundRatios))
	} else {
		add("Table 5 on a GPU", "SnapStream (budget 32k) batch / full batch in the same KV memory, 128k context", ">= 3.5", 0, false, ge(3.5), r.Errors["table5"])
	}
	mt := Target{Claim: "memory", Figure: "KV bytes of each sequence held = 2 x layers x kv_heads x head_dim x capacity x bytes", Target: "exact"}
	if len(r.Memory) > 0 {
		eq := true
		for _, m := range r.Memory {
			eq = eq && m.Equal
		}
		mt.Met = &eq
		mt.Note = fmt.Sprintf("%d sequences checked; peak device memory per configuration below", len(r.Memory))
	} else {
		mt.Note = "not measured"
	}
	return append(out, mt)
}

// WriteTable prints the report as aligned tables.
func (r *BenchResult) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	gb := func(b int64) string { return fmt.Sprintf("%.2f GB", float64(b)/1e9) }
	gib := func(b int64) string { return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30)) }
	p("model\t%s, %s (%.2fB parameters; a decode step reads %s of weights)", r.Model, r.DType, float64(r.Params)/1e9, gb(r.WeightBytes))
	p("machine\t%s (%s), torch %s, CUDA %s, transformers %s; model loaded in %.0f s, run %.0f s", orNA(r.GPU), gib(r.DeviceMemoryBytes), orNA(r.Torch), orNA(r.CUDA),
		orNA(r.Transformers), r.LoadS, r.ElapsedS)
	if len(r.BandwidthSamplesGBs) > 0 {
		p("copy bandwidth\t%.0f GB/s (device-to-device copy, bytes read + written; highest of %s)", r.BandwidthGBs, floats(r.BandwidthSamplesGBs, "%.0f"))
	}
	if r.DecodeStepMs > 0 {
		p("decode, 1 sequence\t%d context: %.2f ms/step (%.1f tok/s; the CUDA graph's replay alone %s ms); %s read per step = %.0f%% of the copy bandwidth",
			r.DecodeContext, r.DecodeStepMs, r.DecodeTokS, optF(r.DecodeReplayMs, "%.2f"), gb(r.DecodeBytesPerStep), 100*r.DecodeBandwidthFraction)
	}
	if r.Static != nil {
		g := fmt.Sprintf("CUDA graphs %v", r.Static["cuda_graphs"])
		if e, _ := r.Static["graph_error"].(string); e != "" {
			g += " (" + e + ")"
		}
		g += fmt.Sprintf("; attention kernel per batch size %v", r.Static["decode_attn"])
		if ms, _ := r.Static["decode_attn_ms"].(map[string]any); len(ms) > 0 {
			g += fmt.Sprintf(" (ms a layer: %v)", ms)
		}
		if tc, _ := r.Static["triton_check"].(map[string]any); len(tc) > 0 {
			g += fmt.Sprintf("; triton's startup check against sdpa per batch size %v", tc)
		}
		p("static decode\t%s", g)
	}
	p("")
	p("target\tfigure\twant\tmeasured\tverdict")
	for _, t := range r.Targets {
		v, verdict := "-", "not measured"
		if t.Value != nil {
			v = fmt.Sprintf("%.3g", *t.Value)
			if strings.HasSuffix(t.Target, "%") {
				v = fmt.Sprintf("%.0f%%", 100**t.Value)
			}
		}
		if t.Met != nil {
			verdict = map[bool]string{true: "met", false: "MISSED"}[*t.Met]
		}
		p("%s\t%s\t%s\t%s\t%s %s", t.Claim, t.Figure, t.Target, v, verdict, t.Note)
	}
	if len(r.Prefill) > 0 {
		p("")
		p("prefill\tprompt\tfull ms\tsnapstream ms\toverhead\tfull tok/s\ttransformers ms\ttransformers tok/s\tspeed")
		for _, x := range r.Prefill {
			p("\t%d\t%.0f\t%.0f\t%.3f\t%.0f\t%s\t%s\t%s", x.Prompt, x.FullMs, x.SnapMs, x.Overhead, x.FullTokS, optF(x.TransformersMs, "%.0f"),
				optF(x.TransformersTokS, "%.0f"), optF(x.Speed, "%.2f"))
		}
	}
	if len(r.VsTransformers) > 0 {
		p("")
		p("decode vs generate\tbatch\tcontext\tsnapeval ms/step\ttok/s\ttransformers ms/step\ttok/s\tratio")
		for _, x := range r.VsTransformers {
			p("\t%d\t%d\t%.2f\t%.1f\t%s\t%s\t%s %s", x.Batch, x.Context, x.SnapevalStepMs, x.SnapevalTokS, optF(x.TransformersMs, "%.2f"),
				optF(x.TransformersTokS, "%.1f"), optF(x.Ratio, "%.2fx"), x.Error)
		}
	}
	if len(r.Steps) > 0 {
		p("")
		p("flat decode\tpolicy\tcontext\tslots\tKV/seq\tstep ms")
		for _, s := range r.Steps {
			p("\t%s\t%d\t%d\t%s\t%.2f", s.Policy, s.Context, s.LiveSlots, gib(s.KVBytes), s.StepMs)
		}
	}
	if t := r.Table5; t != nil {
		p("")
		p("table 5\tKV budget %s, %d-token context, %s", gib(t.KVBudgetBytes), t.Prompt, t.Policy)
		p("  full\tbatch %d (%s/seq)\t%.2f ms/step\t%.1f tok/s", t.FullBatch, gib(t.FullSeqBytes), t.FullStepMs, t.FullTokS)
		p("  snapstream\tbatch %d (%s/seq)\t%.2f ms/step\t%.1f tok/s", t.SnapBatch, gib(t.SnapSeqBytes), t.SnapStepMs, t.SnapTokS)
		p("  throughput ratio\t%.2fx (rounds %s)", t.Ratio, ratioRange(t.RoundRatios))
	}
	if len(r.Memory) > 0 {
		p("")
		p("KV bytes\tconfiguration\tcapacity\tengine\tformula\tequal")
		for _, m := range r.Memory {
			p("\t%s\t%d\t%d\t%d\t%v", m.Config, m.Capacity, m.Engine, m.Formula, m.Equal)
		}
	}
	if len(r.Peaks) > 0 {
		p("")
		p("peak device memory\tconfiguration\tallocated")
		for _, x := range r.Peaks {
			p("\t%s\t%s", x.Config, gib(x.Bytes))
		}
	}
	for _, name := range sortedKeys(r.Profiles) {
		p("")
		p("profile %s\ttop by device time per step (full tables in the JSON)", name)
		for i, t := range r.Profiles[name].Top {
			if i == 8 {
				break
			}
			p("\t%.0f us\tx%d\t%s", t.SelfDeviceUs, t.Count, truncate(t.Name, 90))
		}
	}
	if len(r.Errors) > 0 {
		p("")
		for _, id := range sortedKeys(r.Errors) {
			p("not measured: %s\t%s", id, truncate(r.Errors[id], 300))
		}
	}
	return tw.Flush()
}

func column(rounds []map[string]float64, key string) []float64 {
	var out []float64
	for _, rd := range rounds {
		if v, ok := rd[key]; ok && v > 0 {
			out = append(out, v)
		}
	}
	return out
}

func roundRatios(rounds []map[string]float64, num, den string) []float64 {
	var out []float64
	for _, rd := range rounds {
		if a, b := rd[num], rd[den]; a > 0 && b > 0 {
			out = append(out, a/b)
		}
	}
	return out
}

func ratioPtr(a, b float64) *float64 {
	x := a / b
	if math.IsNaN(x) || math.IsInf(x, 0) || x <= 0 {
		return nil
	}
	return &x
}

func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

func slicesMax(x []float64) float64 {
	m := x[0]
	for _, v := range x[1:] {
		m = math.Max(m, v)
	}
	return m
}

func ratioRange(v []float64) string {
	if len(v) == 0 {
		return "n/a"
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return fmt.Sprintf("%.3f-%.3f", lo, hi)
}

func floats(v []float64, f string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf(f, x)
	}
	return strings.Join(s, ", ")
}

func optF(x float64, f string) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf(f, x)
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
