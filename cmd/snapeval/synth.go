package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/snapeval/snapeval/backends/cpu/tokenizer"
	"github.com/snapeval/snapeval/eval/synthetic"
	"github.com/snapeval/snapeval/internal/atomicfile"
)

// synthOptions are the flags of `snapeval data synth`.
type synthOptions struct {
	Seed          uint64
	N             int
	Lengths       string
	Tasks         string
	Split         string
	Out           string
	Tokenizer     string
	CharsPerToken float64
}

func init() {
	o := &synthOptions{}
	cmd := &cobra.Command{
		Use:   "synth",
		Short: "Write training data for the built-in synth suite (train split) as JSONL",
		Long: `Writes one {"id","task","length","prompt","answer","answers"} object per line, generated from the
train split of the built-in "synth" suite. The train and eval splits come from disjoint random streams, so
training on this data never shows the model an evaluation item. With --tokenizer, prompt lengths are exact
token counts of that tokenizer.json; without, one token is counted per --chars-per-token bytes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSynth(o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&o.Seed, "seed", 1, "data seed")
	f.IntVar(&o.N, "n", 100, "items per task and length")
	f.StringVar(&o.Lengths, "lengths", "1024", "comma list of prompt lengths in tokens (1k = 1024)")
	f.StringVar(&o.Tasks, "tasks", "all", "comma list of tasks ("+fmt.Sprint(synthetic.Tasks)+") or all")
	f.StringVar(&o.Split, "split", synthetic.SplitTrain, "split: train (for training) or eval (the items snapeval run uses)")
	f.StringVar(&o.Out, "out", "-", "output file (- for stdout)")
	f.StringVar(&o.Tokenizer, "tokenizer", "", "tokenizer.json that measures prompt lengths (default: a bytes-per-token estimate)")
	f.Float64Var(&o.CharsPerToken, "chars-per-token", synthetic.DefaultCharsPerToken, "bytes per token when no --tokenizer is given")
	dataCmd.AddCommand(cmd)
}

// runSynth writes the JSONL to o.Out (stdout for "-") and a one-line summary to stderr.
func runSynth(o *synthOptions, stdout, stderr io.Writer) error {
	cfg := synthetic.Config{Split: o.Split, Seed: o.Seed, N: o.N, CharsPerToken: o.CharsPerToken}
	var err error
	if cfg.Tasks, err = synthetic.ParseTasks(o.Tasks); err != nil {
		return usageErrorf("--tasks: %w", err)
	}
	if cfg.Lengths, err = synthetic.ParseLengths(o.Lengths); err != nil {
		return usageErrorf("--lengths: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return usageErrorf("%w", err)
	}
	if o.Tokenizer != "" {
		tok, err := tokenizer.Load(o.Tokenizer)
		if err != nil {
			return usageErrorf("--tokenizer: %w", err)
		}
		cfg.Tok = tok
	}
	var rows int
	if o.Out == "-" {
		rows, err = synthetic.WriteJSONL(stdout, cfg)
	} else {
		err = atomicfile.Write(o.Out, 0o644, func(w io.Writer) error {
			var werr error
			rows, werr = synthetic.WriteJSONL(w, cfg)
			return werr
		})
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %d rows (%s split, seed %d) to %s\n", rows, o.Split, o.Seed, o.Out)
	return nil
}
