package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/internal/atomicfile"
	"github.com/snapeval/snapeval/session"
)

// promptsOptions are the flags of `snapeval prompts`: the run settings of `snapeval run`, and where to write.
type promptsOptions struct {
	Run runOptions
	Out string
	IDs bool
}

func init() {
	o := &promptsOptions{Run: runOptions{Getenv: os.Getenv}}
	cmd := &cobra.Command{
		Use:   "prompts",
		Short: "Print the requests a run would send, as JSON lines, without generating",
		Long: `prompts prepares a run exactly as ` + "`snapeval run`" + ` does (same flags: benchmarks, data, limit, model, backend,
tokenizer, shard, seed, sampling overrides) and prints its requests, one JSON object per line and per (benchmark,
item, sample); policies are left out (--policy is accepted and ignored), since every policy is sent the same
request. No generation request is sent: a local model is loaded for its tokenizer and chat template; a remote
backend lists its server's models when it opens, unless --backend-opt preflight=false (then pass --tokenizer for
benchmarks that truncate in tokens).

Fields: bench, item_id, sample; prompt_hash (the prompt_hash of the records the request produces); tokens (the
ids the model is fed, where the backend renders requests itself: cpu); truncated, tokens_before, tokens_after
(benchmarks that cut prompts to a token budget, such as LongBench-v2's max_len); sampling; messages or prompt;
rendered (the text after the model's chat template, cpu backend); ids (with --ids).`,
		Example: `  snapeval prompts --limit 2
  snapeval prompts --bench longbench-v2 --data longbench-v2=data.json --model DIR --out prompts.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Run.Changed = cmd.Flags().Changed
			return runPrompts(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	bindRunSettings(f, &o.Run)
	f.StringVar(&o.Out, "out", "-", "output file (- for stdout)")
	f.BoolVar(&o.IDs, "ids", false, "include each prompt's token ids")
	rootCmd.AddCommand(cmd)
}

// runPrompts writes the run's prompts to o.Out (stdout for "-") and a one-line summary to stderr.
func runPrompts(ctx context.Context, o *promptsOptions, stdout, stderr io.Writer) error {
	cfg, endpoints, err := resolveConfig(&o.Run)
	if err != nil {
		return err
	}
	// Every policy is sent the same request: list them once, under the full-cache baseline (first once resolved),
	// which every backend serves.
	cfg.Policies = cfg.Policies[:1]
	shard, err := eval.ParseShard(o.Run.Shard)
	if err != nil {
		return usageErrorf("--shard: %w", err)
	}
	s, err := session.Prepare(ctx, session.Options{Config: cfg, Endpoints: endpoints, Shard: shard,
		Warn: stderr, NoPreflight: true})
	if err != nil {
		return err
	}
	defer s.Close()
	var n, cut int
	write := func(w io.Writer) error {
		var werr error
		n, cut, werr = s.WritePrompts(w, session.PromptOptions{IDs: o.IDs})
		return werr
	}
	if o.Out == "-" {
		err = write(stdout)
	} else {
		err = atomicfile.Write(o.Out, 0o644, write)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "snapeval: %d prompts of %d benchmark(s) on %s (%d truncated)\n", n, len(cfg.Benches),
		s.Manifest.Backend, cut)
	return nil
}
