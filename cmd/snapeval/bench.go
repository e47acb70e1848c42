package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/snapeval/snapeval/backends/cpu/model"
	"github.com/snapeval/snapeval/backends/cpu/perf"
	"github.com/snapeval/snapeval/backends/torch"
	"github.com/snapeval/snapeval/session"
)

// benchOptions are the flags of `snapeval bench`.
type benchOptions struct {
	Model, Shape               string
	Threads, Batch, Budget     int
	KVBudgetMB                 int64
	JSON, Quick, Generic, Peer bool
	CPUProfile, Weights        string
	// ShapeSet is true when --shape was given (it conflicts with --model).
	ShapeSet bool
	// Backend is cpu (default) or torch; the rest are the torch bench's flags.
	Backend     string
	BackendOpts []string
	Deadline    time.Duration
	Raw, Report string
	Figures     []string
	// cpuOnly names the cpu-only flags that were given (refused with --backend torch).
	cpuOnly []string
}

func init() {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure CPU-backend throughput and SnapStream's memory and speed claims",
		Long: `bench measures the CPU backend on this machine: memory bandwidth, prefill and decode tokens per
second (one sequence and --batch sequences), decode step time against context (1k-32k) under full and
snapstream, KV bytes per sequence, the paper's Table 5 (largest batch under a fixed KV budget with and
without SnapStream, decode throughput of each) and SnapKV selection time as a share of prefill (8k, 32k).
Long-context decode caches are filled directly (no 32k prefill is run); prefills longer than 8k are
integrated from three timed chunks (the run checks that estimate against a measured 8k prefill).
The model is a checkpoint directory (--model) or a named shape with random bf16 weights (--shape).
--weights int8 quantizes its projections and output head to int8 (one scale per row and 32 columns)
before measuring; weight_bytes and the bandwidth fraction then count the int8 bytes.

Peers of llama.cpp's llama-bench: prefill_tok_s (one 512-token prompt) is pp512, and tg128_tok_s is
tg128 (one sequence, 128 tokens decoded one at a time from an empty cache, mean of 3 runs; 2 with
--quick). decode_tok_s is a decode step at 512 tokens of context, not tg128.

--quick uses smaller sizes (the output lists them): a 128-token prefill (so prefill_tok_s is pp128) and
selection at 2k and 4k prompts, reported as selection_share_2k / selection_share_4k; the JSON keys of
sizes a run did not measure (selection_share_8k / _32k in a quick run, _2k / _4k in a full one) are null.

--backend torch measures the torch backend on a GPU instead, in one worker process, with the engine that
'snapeval run --backend torch' runs (static-shape decode over a KV pool, CUDA graphs per batch size), on a
model of --shape llama3.1-8b (random bf16 weights made on the GPU, no download; the default) or --model DIR,
against transformers' own forward and generate on the same model object. Figures (issue #21's table):
copy bandwidth; single-sequence decode at 4k as a share of it; decode tok/s against transformers'
generate (batch 1 and 8, 4k and 32k context); snapstream budget 8192 step time at 128k / 8k context;
Table 5 in 32 GiB of KV (--kv-budget-mb); prefill at 32k and 128k (snapstream overhead, speed against
transformers' forward); KV bytes against the formula and peak device memory per configuration; a
torch.profiler summary of a decode step and a prefill. Ratios come from alternating rounds. A figure
that fails is reported and the run goes on; --deadline bounds the whole run. --quick: small sizes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ShapeSet = cmd.Flags().Changed("shape")
			for _, f := range []string{"threads", "batch", "budget", "peer", "cpuprofile", "generic", "weights"} {
				if cmd.Flags().Changed(f) {
					o.cpuOnly = append(o.cpuOnly, "--"+f)
				}
			}
			if o.Backend == "torch" {
				return runTorchBench(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			if o.Backend != "cpu" {
				return usageErrorf("bench: --backend %q: want cpu or torch", o.Backend)
			}
			if o.Raw != "" || o.Report != "" || len(o.BackendOpts) > 0 || len(o.Figures) > 0 || cmd.Flags().Changed("deadline") {
				return usageErrorf("bench: --backend-opt, --deadline, --raw, --report and --figures are the torch bench's (--backend torch)")
			}
			return runBench(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Model, "model", "", "checkpoint directory (config.json + safetensors)")
	f.StringVar(&o.Shape, "shape", "smollm2-135m", "named model shape with random bf16 weights: "+strings.Join(perf.Shapes(), ", ")+"; --backend torch: "+strings.Join(torch.BenchShapes(), ", ")+" (its default)")
	f.IntVar(&o.Threads, "threads", 0, "kernel worker threads (default GOMAXPROCS)")
	f.IntVar(&o.Batch, "batch", 4, "sequences of the batched prefill and decode measurements")
	f.IntVar(&o.Budget, "budget", 1024, "snapstream budget of the context sweep")
	f.Int64Var(&o.KVBudgetMB, "kv-budget-mb", 0, "Table 5 KV-memory budget in MiB (default: two full-cache sequences)")
	f.BoolVar(&o.JSON, "json", false, "print the results as JSON")
	f.BoolVar(&o.Peer, "peer", false, "only the measurements with a llama-bench peer (bandwidth, prefill pp512, decode, tg128); no claims")
	f.BoolVar(&o.Quick, "quick", false, "smaller sizes for a fast check (the output lists them)")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof BINARY FILE)")
	f.BoolVar(&o.Generic, "generic", false, "use the portable Go kernels instead of the AVX2/FMA assembly")
	f.StringVar(&o.Weights, "weights", "bf16", "weight format of the projections and output head: bf16 (the checkpoint's) or int8")
	f.StringVar(&o.Backend, "backend", "cpu", "cpu (this machine's CPU engine) or torch (a GPU through PyTorch: see below)")
	f.StringArrayVar(&o.BackendOpts, "backend-opt", nil, "torch: worker option key=value (repeatable): python, device, dtype, decode_attn, cuda_graphs")
	f.DurationVar(&o.Deadline, "deadline", 520*time.Second, "torch: the whole run's time budget (model load included); figures that would start too late are skipped")
	f.StringVar(&o.Raw, "raw", "", "torch: keep the worker's raw result here (rewritten after every figure, so a killed run keeps what it measured)")
	f.StringVar(&o.Report, "report", "", "torch: print the report of a kept raw result instead of measuring")
	f.StringSliceVar(&o.Figures, "figures", nil, "torch: run only these figures: "+strings.Join(torch.BenchFigures, ", "))
	rootCmd.AddCommand(cmd)
}

// runBench loads or makes the model, runs the measurements and prints the table (or JSON) on stdout; progress
// goes to stderr.
func runBench(ctx context.Context, o *benchOptions, stdout, stderr io.Writer) error {
	if o.Model != "" && o.ShapeSet {
		return usageErrorf("bench: give --model or --shape, not both")
	}
	if o.Threads < 0 || o.Batch < 0 || o.Budget < 0 || o.KVBudgetMB < 0 {
		return usageErrorf("bench: --threads, --batch, --budget and --kv-budget-mb must not be negative")
	}
	if o.Generic {
		model.SetSIMD(false)
	}
	wf, err := model.ParseWeights(o.Weights)
	if err != nil {
		return usageErrorf("bench: --weights: %w", err)
	}
	var (
		m    *model.Model
		name string
	)
	if o.Model != "" {
		m, err = perf.LoadDir(o.Model)
		name = o.Model
	} else {
		m, err = perf.RandomModel(o.Shape)
		name = o.Shape + " (random bf16 weights)"
		if err != nil && strings.HasPrefix(err.Error(), "unknown shape") {
			return usageErrorf("bench: %w", err)
		}
	}
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if wf == "int8" {
		m = m.Int8()
		name += ", int8 weights"
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	if o.CPUProfile != "" {
		pf, err := os.Create(o.CPUProfile)
		if err != nil {
			return fmt.Errorf("bench: --cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			pf.Close()
			return fmt.Errorf("bench: --cpuprofile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			pf.Close()
		}()
	}
	opts := perf.Options{Threads: o.Threads, Batch: o.Batch, Quick: o.Quick, Peer: o.Peer, Budget: o.Budget,
		KVBudgetBytes: o.KVBudgetMB << 20, Log: stderr}
	r, err := perf.Run(ctx, m, name, opts)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.WriteTable(stdout)
}

// runTorchBench runs (or, with --report, re-reports) the torch backend's bench and prints the table or JSON.
func runTorchBench(ctx context.Context, o *benchOptions, stdout, stderr io.Writer) error {
	if len(o.cpuOnly) > 0 {
		return usageErrorf("bench: %s are the cpu bench's flags, not --backend torch's", strings.Join(o.cpuOnly, ", "))
	}
	if o.Model != "" && o.ShapeSet {
		return usageErrorf("bench: give --model or --shape, not both")
	}
	if o.KVBudgetMB < 0 || o.Deadline < 0 {
		return usageErrorf("bench: --kv-budget-mb and --deadline must not be negative")
	}
	var r *torch.BenchResult
	if o.Report != "" {
		raw, err := os.ReadFile(o.Report)
		if err != nil {
			return fmt.Errorf("bench: --report: %w", err)
		}
		if r, err = torch.BenchReport(raw, o.Report); err != nil {
			return fmt.Errorf("bench: %s: %w", o.Report, err)
		}
	} else {
		kv, err := session.ParseKV(o.BackendOpts, "--backend-opt")
		if err != nil {
			return err
		}
		for k := range kv {
			switch k {
			case "python", "device", "dtype", "decode_attn", "cuda_graphs":
			default:
				return usageErrorf("bench: --backend-opt %s: the torch bench takes python, device, dtype, decode_attn and cuda_graphs", k)
			}
		}
		bo, err := torch.ParseOptions(kv)
		if err != nil {
			return usageErrorf("bench: %w", err)
		}
		shape := ""
		if o.Model == "" {
			shape = "llama3.1-8b"
			if o.ShapeSet {
				shape = o.Shape
			}
		}
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
		defer stop()
		r, err = torch.Bench(ctx, torch.BenchOptions{Model: o.Model, Shape: shape, Quick: o.Quick, KVBudgetBytes: o.KVBudgetMB << 20,
			Deadline: o.Deadline, Figures: o.Figures, Backend: bo, Raw: o.Raw, Log: stderr})
		if err != nil {
			var se *torch.SetupError
			if errors.As(err, &se) || strings.HasPrefix(err.Error(), "bench: unknown") {
				return usageErrorf("%w", err)
			}
			return fmt.Errorf("bench: %w", err)
		}
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.WriteTable(stdout)
}
