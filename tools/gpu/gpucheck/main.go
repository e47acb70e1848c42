// Command gpucheck holds the Go side of the GPU session's checks of the torch backend (tools/gpu/torch_session.sh):
//
//	gpucheck compare -a RUN -b RUN [-trace] [-backend-opt k=v ...] [-json FILE] [-expect-same]
//	    compares the records of two runs of the same matrix key by key (output, finish, tokens, grade, cache
//	    size); with -trace it re-runs every differing request on the torch backend with the run's options and
//	    reports the top-1/top-2 logit margin where its tokens leave run A's text, which says whether rounding
//	    explains the difference.
//	gpucheck longctx -model DIR [-lengths 32768,131008] [-max-new 64] [-policies "p1;p2"] [-sequential] [-backend-opt k=v ...]
//	    runs every policy at once (one after another with -sequential) at each prompt length on the torch backend
//	    (random prompt ids) and reports capacity, KV bytes, prefill and decode time and peak device memory per
//	    request.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/torch"
	"github.com/snapeval/snapeval/eval"
	_ "github.com/snapeval/snapeval/eval/synthetic" // benchmark "synth", the default suite
	"github.com/snapeval/snapeval/llm"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gpucheck compare|longctx [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "compare":
		err = runCompare(os.Args[2:])
	case "longctx":
		err = runLongctx(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q (compare, longctx)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gpucheck:", err)
		os.Exit(1)
	}
}

// kvFlags collects repeated key=value flags.
type kvFlags map[string]string

func (k kvFlags) String() string { return fmt.Sprint(map[string]string(k)) }
func (k kvFlags) Set(s string) error {
	key, v, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("%q: want key=value", s)
	}
	k[key] = v
	return nil
}

func writeJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Diff is one key whose records differ between the runs.
type Diff struct {
	Key     string   `json:"key"`
	Fields  []string `json:"fields"`
	OutputA string   `json:"output_a"`
	OutputB string   `json:"output_b"`
	// Trace: the torch re-run of the request (with -trace).
	Divergence   int     `json:"divergence_token,omitempty"` // first token index whose text leaves A's output (-1: none)
	MarginThere  float64 `json:"margin_at_divergence,omitempty"`
	MinMargin    float64 `json:"min_margin,omitempty"`
	TraceMatches bool    `json:"trace_reproduces_b,omitempty"`
	TraceError   string  `json:"trace_error,omitempty"`
}

// Comparison is the report of compare.
type Comparison struct {
	A, B            string            `json:"-"`
	BackendA        string            `json:"backend_a"`
	BackendB        string            `json:"backend_b"`
	Both            int               `json:"keys_in_both"`
	OnlyA, OnlyB    int               `json:"-"`
	Same            int               `json:"identical"`
	Diffs           []Diff            `json:"differences"`
	AccuracyA       map[string]string `json:"accuracy_a"`
	AccuracyB       map[string]string `json:"accuracy_b"`
	DiffsByPolicy   map[string]int    `json:"differences_by_policy"`
	RecordsByPolicy map[string]int    `json:"records_by_policy"`
}

// diffFields names the fields that differ between two records of one key.
func diffFields(a, b eval.Record) []string {
	var f []string
	add := func(name string, differ bool) {
		if differ {
			f = append(f, name)
		}
	}
	add("output", a.Output != b.Output)
	add("finish_reason", a.FinishReason != b.FinishReason)
	add("output_tokens", a.OutputTokens != b.OutputTokens)
	add("prompt_tokens", a.PromptTokens != b.PromptTokens)
	add("correct", a.Correct != b.Correct)
	add("score", a.Score != b.Score)
	add("error_kind", a.ErrorKind != b.ErrorKind)
	add("capacity", a.Capacity != b.Capacity)
	add("prompt_hash", a.PromptHash != b.PromptHash)
	return f
}

// compareRecords pairs the records of two runs by key.
func compareRecords(a, b []eval.Record) Comparison {
	c := Comparison{AccuracyA: map[string]string{}, AccuracyB: map[string]string{}, DiffsByPolicy: map[string]int{}, RecordsByPolicy: map[string]int{}}
	ib := map[eval.Key]eval.Record{}
	for _, r := range b {
		ib[r.Key()] = r
	}
	type acc struct{ n, ok int }
	accA, accB := map[string]*acc{}, map[string]*acc{}
	seen := map[eval.Key]bool{}
	for _, ra := range a {
		rb, ok := ib[ra.Key()]
		if !ok {
			c.OnlyA++
			continue
		}
		seen[ra.Key()] = true
		c.Both++
		c.RecordsByPolicy[ra.Policy]++
		for _, p := range []struct {
			m map[string]*acc
			r eval.Record
		}{{accA, ra}, {accB, rb}} {
			if p.m[p.r.Policy] == nil {
				p.m[p.r.Policy] = &acc{}
			}
			p.m[p.r.Policy].n++
			if p.r.Correct {
				p.m[p.r.Policy].ok++
			}
		}
		if f := diffFields(ra, rb); len(f) > 0 {
			c.Diffs = append(c.Diffs, Diff{Key: ra.Key().String(), Fields: f, OutputA: ra.Output, OutputB: rb.Output, Divergence: -1})
			c.DiffsByPolicy[ra.Policy]++
		} else {
			c.Same++
		}
	}
	c.OnlyB = len(b) - len(seen)
	for p, x := range accA {
		c.AccuracyA[p] = fmt.Sprintf("%d/%d", x.ok, x.n)
	}
	for p, x := range accB {
		c.AccuracyB[p] = fmt.Sprintf("%d/%d", x.ok, x.n)
	}
	sort.Slice(c.Diffs, func(i, j int) bool { return c.Diffs[i].Key < c.Diffs[j].Key })
	return c
}

// firstDivergence returns the index of the first token whose decoded prefix is no longer a prefix of text, or -1
// when every prefix is (the tokens reproduce text, or run past its end only after it).
func firstDivergence(decode func([]int) string, tokens []int, text string) int {
	for i := range tokens {
		p := decode(tokens[:i+1])
		if !strings.HasPrefix(text, p) {
			if strings.HasPrefix(p, text) && len(text) > 0 && strings.HasPrefix(decode(tokens[:i]), text) {
				return -1 // A stopped here (a stop string or its end); nothing diverged before
			}
			return i
		}
	}
	return -1
}

func runCompare(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ExitOnError)
	a := fs.String("a", "", "run directory A (the reference, e.g. the cpu backend's)")
	b := fs.String("b", "", "run directory B (e.g. the torch backend's)")
	trace := fs.Bool("trace", false, "re-run each differing request on the torch backend and report its logit margins")
	out := fs.String("json", "", "write the report here")
	same := fs.Bool("expect-same", false, "exit 1 unless every key in both runs has identical records")
	opts := kvFlags{}
	fs.Var(opts, "backend-opt", "torch backend option for -trace (repeatable)")
	fs.Parse(args)
	if *a == "" || *b == "" {
		return errors.New("compare: -a and -b are required")
	}
	ma, ra, err := eval.LoadRun(*a)
	if err != nil {
		return err
	}
	mb, rb, err := eval.LoadRun(*b)
	if err != nil {
		return err
	}
	c := compareRecords(ra, rb)
	c.BackendA, c.BackendB = ma.Backend, mb.Backend
	if *trace && len(c.Diffs) > 0 {
		if err := traceDiffs(&c, ma, mb, opts); err != nil {
			return err
		}
	}
	fmt.Printf("A %s (%s)\nB %s (%s)\nkeys in both %d (only A %d, only B %d): identical %d, different %d\n",
		*a, c.BackendA, *b, c.BackendB, c.Both, c.OnlyA, c.OnlyB, c.Same, len(c.Diffs))
	pols := make([]string, 0, len(c.RecordsByPolicy))
	for p := range c.RecordsByPolicy {
		pols = append(pols, p)
	}
	sort.Strings(pols)
	fmt.Println("| policy | records | different | correct A | correct B |\n|---|---|---|---|---|")
	for _, p := range pols {
		fmt.Printf("| %s | %d | %d | %s | %s |\n", p, c.RecordsByPolicy[p], c.DiffsByPolicy[p], c.AccuracyA[p], c.AccuracyB[p])
	}
	for _, d := range c.Diffs {
		fmt.Printf("- %s [%s] A=%q B=%q", d.Key, strings.Join(d.Fields, ","), clip(d.OutputA), clip(d.OutputB))
		if *trace {
			fmt.Printf(" divergence token %d, margin there %.3g, min margin %.3g, re-run reproduces B: %v %s", d.Divergence, d.MarginThere, d.MinMargin, d.TraceMatches, d.TraceError)
		}
		fmt.Println()
	}
	if err := writeJSON(*out, c); err != nil {
		return err
	}
	if *same && (len(c.Diffs) > 0 || c.Both == 0) {
		return fmt.Errorf("%d of %d records differ", len(c.Diffs), c.Both)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// traceDiffs rebuilds the requests of run B's matrix and re-runs the differing ones on the torch backend.
func traceDiffs(c *Comparison, ma, mb eval.Manifest, opts kvFlags) error {
	cfg := mb.Config
	o := map[string]string{}
	for k, v := range cfg.BackendOpts {
		o[k] = v
	}
	for k, v := range opts {
		o[k] = v
	}
	ctx := context.Background()
	be, err := backends.Open(ctx, "torch", backends.Config{Model: cfg.Model, Options: o, Concurrency: 1})
	if err != nil {
		return err
	}
	defer be.Close()
	tb := be.(*torch.Backend)
	var loaded []eval.LoadedBench
	for _, name := range cfg.Benches {
		bo := eval.BenchOptions{Seed: cfg.Seed, Options: map[string]string{}}
		for k, v := range cfg.BenchOpts {
			if bn, key, ok := strings.Cut(k, "."); ok {
				if bn == name {
					bo.Options[key] = v
				}
				continue
			}
			bo.Options[k] = v
		}
		bench, err := eval.OpenBenchmark(name, bo)
		if err != nil {
			return err
		}
		items, err := bench.Items(ctx, tb.Tokenizer())
		if err != nil {
			return err
		}
		if cfg.Limit > 0 && len(items) > cfg.Limit {
			items = items[:cfg.Limit]
		}
		loaded = append(loaded, eval.LoadedBench{Bench: bench, Items: items})
	}
	ov := eval.Overrides{Temperature: cfg.Temperature, TopP: cfg.TopP, MaxNew: cfg.MaxNew, Samples: cfg.Samples}
	tasks, err := eval.BuildTasks(loaded, cfg.Policies, cfg.Seed, eval.Shard{}, ov)
	if err != nil {
		return err
	}
	byKey := map[string]eval.Task{}
	for _, t := range tasks {
		byKey[t.Key().String()] = t
	}
	dec := func(ids []int) string { return tb.Tokenizer().Decode(ids) }
	for i := range c.Diffs {
		d := &c.Diffs[i]
		t, ok := byKey[d.Key]
		if !ok {
			d.TraceError = "request not rebuilt"
			continue
		}
		ids, err := tb.EncodePrompt(t.Request)
		if err != nil {
			d.TraceError = err.Error()
			continue
		}
		tr, err := tb.Trace(ctx, ids, t.Policy, t.Request.Sampling)
		if err != nil {
			d.TraceError = err.Error()
			continue
		}
		d.TraceMatches = tr.Text == d.OutputB
		d.Divergence = firstDivergence(dec, tr.Tokens, d.OutputA)
		d.MinMargin = math.Inf(1)
		for j, m := range tr.Margins {
			d.MinMargin = min(d.MinMargin, m)
			if j == d.Divergence {
				d.MarginThere = m
			}
		}
		if math.IsInf(d.MinMargin, 1) {
			d.MinMargin = 0
		}
	}
	return nil
}

// LongRow is one request of longctx.
type LongRow struct {
	Policy     string  `json:"policy"`
	PromptLen  int     `json:"prompt_len"`
	Capacity   int     `json:"capacity"`
	KVGiB      float64 `json:"kv_gib"`
	PrefillS   float64 `json:"prefill_s"`
	DecodeMS   float64 `json:"decode_ms_per_token"`
	Tokens     int     `json:"tokens"`
	PeakGiB    float64 `json:"peak_gib"`
	WallS      float64 `json:"wall_s"`
	SameAsFull int     `json:"tokens_equal_to_full"`
	Error      string  `json:"error,omitempty"`
	tokens     []int
}

func runLongctx(args []string) error {
	fs := flag.NewFlagSet("longctx", flag.ExitOnError)
	model := fs.String("model", "", "model directory (config.json, tokenizer.json); with random_weights=true no weights are read")
	lengths := fs.String("lengths", "32768,131008", "prompt lengths")
	maxNew := fs.Int("max-new", 64, "greedy tokens per request")
	policies := fs.String("policies", "full;snapstream:budget=4096;snapstream:budget=32768;streaming:sinks=4,recent=4092;snapkv:topk=4064,window=32,kernel=5", "policies, ';'-separated")
	out := fs.String("json", "", "write the rows here")
	sequential := fs.Bool("sequential", false, "run the policies one after another (each one's decode ms/token alone), not all in flight together")
	opts := kvFlags{}
	fs.Var(opts, "backend-opt", "torch backend option (repeatable)")
	fs.Parse(args)
	ctx := context.Background()
	t0 := time.Now()
	be, err := backends.Open(ctx, "torch", backends.Config{Model: *model, Options: opts})
	if err != nil {
		return err
	}
	defer be.Close()
	tb := be.(*torch.Backend)
	info := tb.WorkerInfo()
	fmt.Printf("model loaded in %.1f s: %s, %d layers, %d/%d heads, vocab %d, %.2f B parameters, %s %s on %s (torch %s, transformers %s)\n",
		time.Since(t0).Seconds(), info.Architecture, info.Layers, info.QHeads, info.KVHeads, info.Vocab, float64(info.Params)/1e9,
		info.DType, info.Attn, info.GPU, info.Torch, info.Transformers)
	var rows []LongRow
	for _, ls := range strings.Split(*lengths, ",") {
		L, err := strconv.Atoi(strings.TrimSpace(ls))
		if err != nil {
			return fmt.Errorf("-lengths: %v", err)
		}
		rng := rand.New(rand.NewPCG(uint64(L), 1))
		ids := make([]int, L)
		for i := range ids {
			ids[i] = rng.IntN(info.Vocab)
		}
		pols := strings.Split(*policies, ";")
		got := make([]LongRow, len(pols))
		var wg sync.WaitGroup
		for i, p := range pols {
			wg.Add(1)
			run := func() {
				defer wg.Done()
				start := time.Now()
				tr, err := tb.Trace(ctx, ids, p, llm.Sampling{MaxNew: *maxNew})
				r := LongRow{Policy: p, PromptLen: L, WallS: time.Since(start).Seconds()}
				if err != nil {
					r.Error = err.Error()
				} else {
					r.Capacity, r.KVGiB, r.PrefillS, r.Tokens = tr.Capacity, float64(tr.KVBytes)/(1<<30), tr.PrefillMS/1000, len(tr.Tokens)
					r.PeakGiB, r.tokens = float64(tr.PeakBytes)/(1<<30), tr.Tokens
					if len(tr.Tokens) > 1 {
						r.DecodeMS = tr.DecodeMS / float64(len(tr.Tokens)-1)
					}
				}
				got[i] = r
			}
			if *sequential {
				run()
			} else {
				go run()
			}
		}
		wg.Wait()
		for i := range got {
			for j := range got[i].tokens {
				if j < len(got[0].tokens) && got[i].tokens[j] == got[0].tokens[j] {
					got[i].SameAsFull++
				} else {
					break
				}
			}
		}
		rows = append(rows, got...)
	}
	fmt.Println("| policy | prompt | capacity | KV GiB | prefill s | decode ms/token | tokens | prefix = full | peak GiB | wall s | error |\n|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %d | %d | %.3f | %.2f | %.2f | %d | %d | %.1f | %.1f | %s |\n", r.Policy, r.PromptLen, r.Capacity, r.KVGiB,
			r.PrefillS, r.DecodeMS, r.Tokens, r.SameAsFull, r.PeakGiB, r.WallS, r.Error)
	}
	if err := writeJSON(*out, map[string]any{"info": info, "rows": rows}); err != nil {
		return err
	}
	for _, r := range rows {
		if r.Error != "" {
			return fmt.Errorf("%s at %d: %s", r.Policy, r.PromptLen, r.Error)
		}
	}
	return nil
}
