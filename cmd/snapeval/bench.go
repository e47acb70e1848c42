package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"github.com/snapeval/snapeval/backends/cpu/model"
	"github.com/snapeval/snapeval/backends/cpu/perf"
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
sizes a run did not measure (selection_share_8k / _32k in a quick run, _2k / _4k in a full one) are null.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ShapeSet = cmd.Flags().Changed("shape")
			return runBench(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Model, "model", "", "checkpoint directory (config.json + safetensors)")
	f.StringVar(&o.Shape, "shape", "smollm2-135m", "named model shape with random bf16 weights: "+strings.Join(perf.Shapes(), ", "))
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
