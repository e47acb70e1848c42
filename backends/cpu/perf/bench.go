package perf

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/snapeval/snapeval/backends/cpu/engine"
	"github.com/snapeval/snapeval/backends/cpu/model"
	"github.com/snapeval/snapeval/compress"
)

// Options configure Run. Zero values take the defaults.
type Options struct {
	Threads int  // kernel workers (default GOMAXPROCS)
	Batch   int  // sequences of the batched prefill and decode measurements (default 4)
	Quick   bool // smaller sizes and fewer repetitions, for a fast check (Sizes says which)
	// Budget is the snapstream budget of the context sweep (default 1024).
	Budget int
	// KVBudgetBytes is Table 5's KV-memory budget (default: two full-cache sequences of the Table 5 prompt).
	KVBudgetBytes int64
	// BandwidthMiB is the buffer size of the bandwidth measurement (default 256).
	BandwidthMiB int
	// Peer limits the run to the measurements that have a llama-bench peer (bandwidth, prefill, decode,
	// tg128) and skips SnapStream's claims (context sweep, Table 5, selection), which take minutes.
	Peer bool
	// Log, when set, receives one line per measurement as it starts.
	Log io.Writer
}

// Sizes records the problem sizes a run used.
type Sizes struct {
	PrefillPrompt int   `json:"prefill_prompt"`
	DecodeContext int   `json:"decode_context"`
	Contexts      []int `json:"contexts"`
	FullContexts  []int `json:"full_contexts"`
	Table5Prompt  int   `json:"table5_prompt"`
	Table5Budget  int   `json:"table5_budget"`
	Table5MaxNew  int   `json:"table5_max_new"`
	// Table5Rounds rounds of Table5RoundSteps decode steps of each side, the two sides alternating, so that
	// a change in the machine's load during the experiment falls on both.
	Table5Rounds     int `json:"table5_rounds"`
	Table5RoundSteps int `json:"table5_round_steps"`
	// SweepRounds rounds of SweepRoundSteps decode steps at each context of the compressed policy's sweep,
	// the contexts alternating (the full-cache sweep, gigabytes at 32k, runs one context after another).
	SweepRounds      int   `json:"sweep_rounds"`
	SweepRoundSteps  int   `json:"sweep_round_steps"`
	SelectionPrompts []int `json:"selection_prompts"`
	PrefillChunk     int   `json:"prefill_chunk"`
	DecodeSteps      int   `json:"decode_steps"`
	RealPrefillLimit int   `json:"real_prefill_limit"`
	// TGTokens and TGReps are the tg measurement's tokens (128, as llama-bench's tg128) and timed runs.
	TGTokens int `json:"tg_tokens"`
	TGReps   int `json:"tg_reps"`
}

// StepRow is one decode-step measurement of the context sweep.
type StepRow struct {
	Policy    string  `json:"policy"`
	Context   int     `json:"context"`
	LiveSlots int     `json:"live_slots"`
	KVBytes   int64   `json:"kv_bytes"`
	StepMs    float64 `json:"step_ms"`
}

// Table5 is the fixed-KV-budget batch experiment.
type Table5 struct {
	KVBudgetBytes int64   `json:"kv_budget_bytes"`
	Prompt        int     `json:"prompt"`
	Policy        string  `json:"policy"`
	FullSeqBytes  int64   `json:"full_seq_bytes"`
	SnapSeqBytes  int64   `json:"snap_seq_bytes"`
	FullBatch     int     `json:"full_batch"`
	SnapBatch     int     `json:"snap_batch"`
	FullStepMs    float64 `json:"full_step_ms"`
	SnapStepMs    float64 `json:"snap_step_ms"`
	FullTokS      float64 `json:"full_tok_s"`
	SnapTokS      float64 `json:"snap_tok_s"`
	Ratio         float64 `json:"ratio"`
	// RoundRatios is the throughput ratio of each round alone (median step of each side in that round): its
	// spread shows how much the machine moved during the experiment. Ratio comes from the medians of all
	// rounds' steps.
	RoundRatios []float64 `json:"round_ratios"`
}

// SelRow is SnapKV selection cost against prefill time at one prompt length.
type SelRow struct {
	Prompt    int     `json:"prompt"`
	PrefillMs float64 `json:"prefill_ms"`
	// PrefillMethod is "measured" (a whole chunked prefill was timed) or "chunks" (three chunks at the
	// start, middle and end were timed and the affine cost per chunk start integrated over all chunks).
	PrefillMethod string  `json:"prefill_method"`
	SelectMs      float64 `json:"select_ms"`
	Share         float64 `json:"share"`
}

// Result is everything a run measured.
type Result struct {
	Model       string `json:"model"`
	WeightBytes int64  `json:"weight_bytes"`
	Threads     int    `json:"threads"`
	CPUs        int    `json:"cpus"`
	SIMD        bool   `json:"simd"`
	GOAMD64     string `json:"goamd64"`
	LoadBefore  string `json:"load_before"`
	LoadAfter   string `json:"load_after"`
	Quick       bool   `json:"quick"`
	// PeerOnly: only the llama-bench peer measurements ran (Options.Peer); the claim keys are null.
	PeerOnly bool  `json:"peer_only"`
	Sizes    Sizes `json:"sizes"`
	// BandwidthGBs is the memory-bandwidth ceiling of the run: the highest of BandwidthSamplesGBs, read tests
	// taken at the start and right before and after the single-sequence decode measurement, so that a busy
	// moment of a shared machine during one read test does not flatter DecodeBandwidthFraction.
	BandwidthGBs        float64   `json:"bandwidth_gbs"`
	BandwidthSamplesGBs []float64 `json:"bandwidth_samples_gbs"`
	// PrefillTokS is one prompt of Sizes.PrefillPrompt tokens: llama-bench's pp512 at full size (512).
	PrefillTokS      float64 `json:"prefill_tok_s"`
	PrefillBatchTokS float64 `json:"prefill_batch_tok_s"`
	DecodeTokS       float64 `json:"decode_tok_s"`
	DecodeStepMs     float64 `json:"decode_step_ms"`
	DecodeBatchTokS  float64 `json:"decode_batch_tok_s"`
	Batch            int     `json:"batch"`
	// TG128TokS mirrors llama-bench's tg128: one sequence, Sizes.TGTokens tokens decoded one at a time
	// from an empty cache (positions 0 .. 127), mean tok/s of Sizes.TGReps runs after a warm-up.
	TG128TokS float64 `json:"tg128_tok_s"`
	// DecodeBytesPerStep is what one single-sequence decode step reads: weights plus the live K/V.
	DecodeBytesPerStep      int64     `json:"decode_bytes_per_step"`
	DecodeBandwidthFraction float64   `json:"decode_bandwidth_fraction"`
	Steps                   []StepRow `json:"steps"`
	// The step-time ratios 32k/1k under snapstream and full; null where a run did not measure both sizes.
	FlatRatio32k1k *float64 `json:"flat_ratio_32k_1k"`
	FullRatio32k1k *float64 `json:"full_ratio_32k_1k"`
	// FlatRoundRatios is the compressed policy's 32k/1k step ratio in each round of its alternating sweep
	// alone (FlatRatio32k1k comes from the medians of all rounds' steps).
	FlatRoundRatios       []float64 `json:"flat_round_ratios"`
	Table5                *Table5   `json:"table5"`
	Table5ThroughputRatio *float64  `json:"table5_throughput_ratio"`
	Selection             []SelRow  `json:"selection"`
	// The selection share at each prompt size the bench knows (8k and 32k in a full run, 2k and 4k in a
	// quick one); null where this run did not measure that size.
	SelectionShare2k  *float64 `json:"selection_share_2k"`
	SelectionShare4k  *float64 `json:"selection_share_4k"`
	SelectionShare8k  *float64 `json:"selection_share_8k"`
	SelectionShare32k *float64 `json:"selection_share_32k"`
	// PrefillCheck compares the chunk-sampled prefill estimate with a measured prefill of the same length.
	PrefillCheck struct {
		Prompt      int     `json:"prompt"`
		MeasuredMs  float64 `json:"measured_ms"`
		EstimatedMs float64 `json:"estimated_ms"`
	} `json:"prefill_check"`
}

func (o Options) withDefaults() Options {
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
	if o.Batch <= 0 {
		o.Batch = 4
	}
	if o.Budget <= 0 {
		o.Budget = 1024
	}
	if o.BandwidthMiB <= 0 {
		o.BandwidthMiB = 256
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

func sizes(quick bool) Sizes {
	if quick {
		return Sizes{PrefillPrompt: 128, DecodeContext: 512, Contexts: []int{1024, 4096, 16384, 32768}, FullContexts: []int{1024, 4096},
			Table5Prompt: 1024, Table5Budget: 256, Table5MaxNew: 64, Table5Rounds: 3, Table5RoundSteps: 2, SweepRounds: 3, SweepRoundSteps: 2,
			SelectionPrompts: []int{2048, 4096}, PrefillChunk: 256,
			DecodeSteps: 3, RealPrefillLimit: 2048, TGTokens: 128, TGReps: 2}
	}
	return Sizes{PrefillPrompt: 512, DecodeContext: 512, Contexts: []int{1024, 4096, 16384, 32768}, FullContexts: []int{1024, 4096, 16384, 32768},
		Table5Prompt: 4096, Table5Budget: 1024, Table5MaxNew: 128, Table5Rounds: 5, Table5RoundSteps: 4, SweepRounds: 5, SweepRoundSteps: 4,
		SelectionPrompts: []int{8192, 32768}, PrefillChunk: 256,
		DecodeSteps: 8, RealPrefillLimit: 8192, TGTokens: 128, TGReps: 3}
}

// Run measures m (described by name) on this machine.
func Run(ctx context.Context, m *model.Model, name string, o Options) (*Result, error) {
	o = o.withDefaults()
	sz := sizes(o.Quick)
	c := &m.Cfg
	r := &Result{Model: name, WeightBytes: m.WeightBytes(), Threads: o.Threads, CPUs: runtime.NumCPU(), SIMD: model.SIMD(),
		GOAMD64: goamd64(), LoadBefore: loadavg(), Quick: o.Quick, PeerOnly: o.Peer, Sizes: sz, Batch: o.Batch}
	logf := func(format string, a ...any) { fmt.Fprintf(o.Log, format+"\n", a...) }

	logf("memory bandwidth (%d threads, %d MiB)", o.Threads, o.BandwidthMiB)
	readTest := func() {
		gbs := Bandwidth(o.BandwidthMiB, o.Threads, 5)
		r.BandwidthSamplesGBs = append(r.BandwidthSamplesGBs, gbs)
		r.BandwidthGBs = max(r.BandwidthGBs, gbs)
	}
	readTest()

	// Prefill through the engine (chunked full causal prefill, then the first token).
	eopts := engine.Options{Threads: o.Threads, PrefixCacheBytes: -1, PrefillChunk: sz.PrefillChunk}
	for _, b := range []int{1, o.Batch} {
		logf("prefill: %d x %d tokens", b, sz.PrefillPrompt)
		eopts.Slots = b
		e := engine.New(m, eopts)
		if _, err := e.Generate(ctx, engine.Job{Prompt: prompt(c.Vocab, 32, 99), Policy: compress.MustParse("full"), MaxNew: 1}); err != nil {
			e.Close()
			return nil, err
		}
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, b)
		for i := 0; i < b; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = e.Generate(ctx, engine.Job{Prompt: prompt(c.Vocab, sz.PrefillPrompt, i), Policy: compress.MustParse("full"), MaxNew: 1})
			}()
		}
		wg.Wait()
		sec := time.Since(t0).Seconds()
		e.Close()
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		tps := float64(b*sz.PrefillPrompt) / sec
		if b == 1 {
			r.PrefillTokS = tps
		} else {
			r.PrefillBatchTokS = tps
		}
	}

	// Decode at a short context, one sequence and a batch.
	full := compress.MustParse("full")
	for _, b := range []int{1, o.Batch} {
		logf("decode: %d sequence(s) at %d context", b, sz.DecodeContext)
		if b == 1 {
			logf("memory bandwidth again, before and after it")
			readTest()
		}
		ms, y, err := stepTime(m, o, b, sz.DecodeContext, full, sz.DecodeSteps*2)
		if err != nil {
			return nil, err
		}
		if b == 1 {
			readTest()
			r.DecodeStepMs = ms
			r.DecodeTokS = 1000 / ms
			kv := int64(y.LiveSlots()) * int64(c.Layers*c.KVHeads*c.HeadDim) * 2 * engine.ElemBytes
			r.DecodeBytesPerStep = r.WeightBytes + kv
			r.DecodeBandwidthFraction = float64(r.DecodeBytesPerStep) / (ms / 1000) / 1e9 / r.BandwidthGBs
		} else {
			r.DecodeBatchTokS = float64(b) * 1000 / ms
		}
	}

	// llama-bench's tg128: decode from an empty cache.
	logf("tg%d: one sequence, %d tokens decoded one at a time from an empty cache, %d runs", sz.TGTokens, sz.TGTokens, sz.TGReps)
	tps, err := tg(ctx, m, o, sz.TGTokens, sz.TGReps)
	if err != nil {
		return nil, err
	}
	r.TG128TokS = tps
	if o.Peer {
		r.LoadAfter = loadavg()
		return r, nil
	}

	// Claims 1 and 2: decode step time and KV bytes against context.
	snapSpec := fmt.Sprintf("snapstream:budget=%d", o.Budget)
	for _, n := range sz.FullContexts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		logf("decode step: full at %d context", n)
		ms, y, err := stepTime(m, o, 1, n, full, sz.DecodeSteps)
		if err != nil {
			return nil, err
		}
		r.Steps = append(r.Steps, StepRow{Policy: "full", Context: n, LiveSlots: y.LiveSlots(), KVBytes: y.KVBytes(), StepMs: ms})
	}
	logf("decode step: %s at %v context, %d alternating rounds of %d steps", snapSpec, sz.Contexts, sz.SweepRounds, sz.SweepRoundSteps)
	if err := sweep(ctx, m, o, sz, compress.MustParse(snapSpec), r); err != nil {
		return nil, err
	}
	r.FlatRatio32k1k = nonZero(stepRatio(r.Steps, snapSpec, 32768, 1024))
	r.FullRatio32k1k = nonZero(stepRatio(r.Steps, "full", 32768, 1024))

	// Claim 3: Table 5 at our scale.
	if err := table5(ctx, m, o, sz, r); err != nil {
		return nil, err
	}

	// Claim 4: SnapKV selection against prefill.
	if err := selection(ctx, m, o, sz, r, logf); err != nil {
		return nil, err
	}
	r.LoadAfter = loadavg()
	return r, nil
}

// tg is llama-bench's tg<n> on the engine: one sequence, n tokens decoded one at a time from an empty
// cache. The job's prompt is one token, so the n forward steps are at positions 0 .. n-1 (the first is
// the prompt's, the others decode steps), each giving the next token's logits; sampling is greedy and no
// token stops the sequence. Each run is timed whole (admission to the last token); the result is the mean
// tok/s of reps runs after a short warm-up run, as llama-bench averages its repetitions.
func tg(ctx context.Context, m *model.Model, o Options, n, reps int) (float64, error) {
	e := engine.New(m, engine.Options{Threads: o.Threads, Slots: 1, PrefixCacheBytes: -1})
	defer e.Close()
	full := compress.MustParse("full")
	job := func(salt, maxNew int) engine.Job {
		return engine.Job{Prompt: prompt(m.Cfg.Vocab, 1, salt), Policy: full, MaxNew: maxNew}
	}
	if _, err := e.Generate(ctx, job(0, 4)); err != nil {
		return 0, err
	}
	var sum float64
	for i := 0; i < reps; i++ {
		t0 := time.Now()
		res, err := e.Generate(ctx, job(i+1, n))
		if err != nil {
			return 0, err
		}
		sec := time.Since(t0).Seconds()
		if len(res.Tokens) != n {
			return 0, fmt.Errorf("bench: tg%d run generated %d tokens", n, len(res.Tokens))
		}
		sum += float64(n) / sec
	}
	return sum / float64(reps), nil
}

func stepRatio(rows []StepRow, policy string, a, b int) float64 {
	var ta, tb float64
	for _, s := range rows {
		if s.Policy == policy && s.Context == a {
			ta = s.StepMs
		}
		if s.Policy == policy && s.Context == b {
			tb = s.StepMs
		}
	}
	if ta == 0 || tb == 0 {
		return 0
	}
	return ta / tb
}

// sweep measures the decode step of one sequence under pol at each of sz.Contexts, the contexts taking turns
// round by round (so that a change in the machine's load falls on all of them), and appends a StepRow for each
// (the median of its steps in all rounds) and, when 1k and 32k are among them, each round's 32k/1k ratio.
func sweep(ctx context.Context, m *model.Model, o Options, sz Sizes, pol compress.Policy, r *Result) error {
	ys := make([]*engine.Synthetic, len(sz.Contexts))
	defer func() {
		for _, y := range ys {
			if y != nil {
				y.Close()
			}
		}
	}()
	for i, n := range sz.Contexts {
		y, err := engine.NewSynthetic(m, engine.Options{Threads: o.Threads}, 1, n, sz.SweepRounds*sz.SweepRoundSteps+1, pol)
		if err != nil {
			return err
		}
		ys[i] = y
	}
	all, rounds, err := alternate(ctx, ys, sz.SweepRounds, sz.SweepRoundSteps)
	if err != nil {
		return err
	}
	if i1k, i32k := slices.Index(sz.Contexts, 1024), slices.Index(sz.Contexts, 32768); i1k >= 0 && i32k >= 0 {
		for _, round := range rounds {
			r.FlatRoundRatios = append(r.FlatRoundRatios, round[i32k]/round[i1k])
		}
	}
	for i, y := range ys {
		r.Steps = append(r.Steps, StepRow{Policy: pol.String(), Context: sz.Contexts[i], LiveSlots: y.LiveSlots(), KVBytes: y.KVBytes(), StepMs: all[i]})
	}
	return nil
}

// alternate runs one warm-up step of each of ys, then rounds rounds in which each of them runs steps timed
// decode steps in turn, so that a change in the machine's load falls on all of them. It returns the median
// step time (ms) of each over all rounds, and of each round alone (rounds[k][i]).
func alternate(ctx context.Context, ys []*engine.Synthetic, nRounds, steps int) (all []float64, rounds [][]float64, err error) {
	for _, y := range ys {
		if err := y.Step(); err != nil { // warm-up
			return nil, nil, err
		}
	}
	ts := make([][]float64, len(ys))
	for k := 0; k < nRounds; k++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		round := make([]float64, len(ys))
		for i, y := range ys {
			t, err := timeSteps(y, steps)
			if err != nil {
				return nil, nil, err
			}
			ts[i] = append(ts[i], t...)
			round[i] = median(t)
		}
		rounds = append(rounds, round)
	}
	all = make([]float64, len(ys))
	for i := range ts {
		all[i] = median(ts[i])
	}
	return all, rounds, nil
}

// stepTime builds n synthetic sequences at context ctxLen and returns the median decode step time (ms)
// over steps steps after one warm-up step.
func stepTime(m *model.Model, o Options, n, ctxLen int, pol compress.Policy, steps int) (float64, *engine.Synthetic, error) {
	y, err := engine.NewSynthetic(m, engine.Options{Threads: o.Threads}, n, ctxLen, steps+1, pol)
	if err != nil {
		return 0, nil, err
	}
	defer y.Close()
	if err := y.Step(); err != nil {
		return 0, nil, err
	}
	ts, err := timeSteps(y, steps)
	if err != nil {
		return 0, nil, err
	}
	return median(ts), y, nil
}

// timeSteps runs n decode steps of y and returns each one's time in ms.
func timeSteps(y *engine.Synthetic, n int) ([]float64, error) {
	ts := make([]float64, n)
	for i := range ts {
		t0 := time.Now()
		if err := y.Step(); err != nil {
			return nil, err
		}
		ts[i] = float64(time.Since(t0).Microseconds()) / 1000
	}
	return ts, nil
}

func median(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func table5(ctx context.Context, m *model.Model, o Options, sz Sizes, r *Result) error {
	c := &m.Cfg
	P, G := sz.Table5Prompt, sz.Table5MaxNew
	full := compress.MustParse("full")
	snapSpec := fmt.Sprintf("snapstream:budget=%d", sz.Table5Budget)
	snap := compress.MustParse(snapSpec)
	kv := func(p compress.Policy) (int64, error) {
		pl, err := p.Plan(P, G)
		if err != nil {
			return 0, err
		}
		return compress.KVBytes(pl.Capacity, c.Layers, c.KVHeads, c.HeadDim, engine.ElemBytes), nil
	}
	fb, err := kv(full)
	if err != nil {
		return err
	}
	sb, err := kv(snap)
	if err != nil {
		return err
	}
	budget := o.KVBudgetBytes
	if budget <= 0 {
		budget = 2 * fb
	}
	t := Table5{KVBudgetBytes: budget, Prompt: P, Policy: snapSpec, FullSeqBytes: fb, SnapSeqBytes: sb,
		FullBatch: int(budget / fb), SnapBatch: int(budget / sb)}
	if t.FullBatch == 0 {
		return fmt.Errorf("bench: KV budget %d bytes holds no full-cache sequence of %d tokens (%d bytes)", budget, P, fb)
	}
	fmt.Fprintf(o.Log, "table 5: %d full sequences vs %d %s sequences at %d-token prompts, %d alternating rounds of %d steps\n",
		t.FullBatch, t.SnapBatch, snapSpec, P, sz.Table5Rounds, sz.Table5RoundSteps)
	// Both batches are built first and their steps alternate round by round.
	room := sz.Table5Rounds*sz.Table5RoundSteps + 1
	fy, err := engine.NewSynthetic(m, engine.Options{Threads: o.Threads}, t.FullBatch, P, room, full)
	if err != nil {
		return err
	}
	defer fy.Close()
	sy, err := engine.NewSynthetic(m, engine.Options{Threads: o.Threads}, t.SnapBatch, P, room, snap)
	if err != nil {
		return err
	}
	defer sy.Close()
	all, rounds, err := alternate(ctx, []*engine.Synthetic{fy, sy}, sz.Table5Rounds, sz.Table5RoundSteps)
	if err != nil {
		return err
	}
	for _, round := range rounds {
		t.RoundRatios = append(t.RoundRatios, float64(t.SnapBatch)/round[1]/(float64(t.FullBatch)/round[0]))
	}
	t.FullStepMs, t.SnapStepMs = all[0], all[1]
	t.FullTokS = float64(t.FullBatch) * 1000 / t.FullStepMs
	t.SnapTokS = float64(t.SnapBatch) * 1000 / t.SnapStepMs
	t.Ratio = t.SnapTokS / t.FullTokS
	r.Table5, r.Table5ThroughputRatio = &t, nonZero(t.Ratio)
	return nil
}

// prompt is a deterministic token sequence.
func prompt(vocab, n, salt int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = (i*7919 + salt*104729 + 13) % vocab
	}
	return ids
}

func goamd64() string {
	if v := os.Getenv("GOAMD64"); v != "" {
		return v
	}
	if info, ok := buildSetting("GOAMD64"); ok {
		return info
	}
	return "v1"
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		if out, err := exec.Command("uptime").Output(); err == nil {
			return strings.TrimSpace(string(out))
		}
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return strings.TrimSpace(string(b))
	}
	return strings.Join(f[:3], " ")
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// nonZero is a pointer to x, or nil when x is 0 (not measured).
func nonZero(x float64) *float64 {
	if x == 0 {
		return nil
	}
	return &x
}
