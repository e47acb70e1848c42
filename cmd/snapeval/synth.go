package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/snapeval/snapeval/backends/cpu/tokenizer"
	"github.com/snapeval/snapeval/eval/synthetic"
)

// synthCmd is `snapeval data synth`: training JSONL from the built-in suite's train split.
var synthCmd = &cobra.Command{
	Use:   "synth",
	Short: "Write training data for the built-in ruler suite (train split) as JSONL",
	Long: `Writes one {"id","task","length","prompt","answer","answers"} object per line, generated from the
train split of the built-in "ruler" suite. The train and eval splits come from disjoint random streams, so
training on this data never shows the model an evaluation item. With --tokenizer, prompt lengths are exact
token counts of that tokenizer.json; without, one token is counted per --chars-per-token bytes.`,
	Args: cobra.NoArgs,
	RunE: runSynth,
}

func init() {
	f := synthCmd.Flags()
	f.Uint64("seed", 1, "data seed")
	f.Int("n", 100, "items per task and length")
	f.String("lengths", "1024", "comma list of prompt lengths in tokens (1k = 1024)")
	f.String("tasks", "all", "comma list of tasks ("+fmt.Sprint(synthetic.Tasks)+") or all")
	f.String("split", synthetic.SplitTrain, "split: train (for training) or eval (the items snapeval run uses)")
	f.String("out", "-", "output file (- for stdout)")
	f.String("tokenizer", "", "tokenizer.json that measures prompt lengths (default: a bytes-per-token estimate)")
	f.Float64("chars-per-token", synthetic.DefaultCharsPerToken, "bytes per token when no --tokenizer is given")
	dataCmd.AddCommand(synthCmd)
}

func runSynth(cmd *cobra.Command, _ []string) error {
	f := cmd.Flags()
	seed, _ := f.GetUint64("seed")
	n, _ := f.GetInt("n")
	lengths, _ := f.GetString("lengths")
	tasks, _ := f.GetString("tasks")
	split, _ := f.GetString("split")
	out, _ := f.GetString("out")
	tokPath, _ := f.GetString("tokenizer")
	cpt, _ := f.GetFloat64("chars-per-token")

	cfg := synthetic.Config{Split: split, Seed: seed, N: n, CharsPerToken: cpt}
	var err error
	if cfg.Tasks, err = synthetic.ParseTasks(tasks); err != nil {
		return usageErrorf("--tasks: %w", err)
	}
	if cfg.Lengths, err = synthetic.ParseLengths(lengths); err != nil {
		return usageErrorf("--lengths: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return usageErrorf("%w", err)
	}
	if tokPath != "" {
		tok, err := tokenizer.Load(tokPath)
		if err != nil {
			return usageErrorf("--tokenizer: %w", err)
		}
		cfg.Tok = tok
	}
	w := os.Stdout
	if out != "-" {
		if w, err = os.Create(out); err != nil {
			return err
		}
	}
	rows, err := synthetic.WriteJSONL(w, cfg)
	if out != "-" {
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d rows (%s split, seed %d) to %s\n", rows, split, seed, out)
	return nil
}
