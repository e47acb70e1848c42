// Command synthgen writes the synthetic suite's items as JSONL (one {"id","task","length","prompt","answer","answers"}
// per line). It imports only eval/synthetic so that it builds as a small static binary for the training machine:
//
//	CGO_ENABLED=0 go build -o bin/synthgen ./tools/train/synthgen
//	bin/synthgen -split train -seed 1 -n 1000 -lengths 512,1024 -out train.jsonl
//
// `snapeval data synth` does the same from the main binary.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/snapeval/snapeval/eval/synthetic"
)

func main() {
	split := flag.String("split", synthetic.SplitTrain, "split: train or eval")
	seed := flag.Uint64("seed", 1, "data seed")
	n := flag.Int("n", 100, "items per task and length")
	lengths := flag.String("lengths", "1024", "comma list of target lengths in tokens")
	tasks := flag.String("tasks", "all", "comma list of tasks, or all")
	cpt := flag.Float64("chars-per-token", synthetic.DefaultCharsPerToken, "length rule: bytes per token")
	out := flag.String("out", "-", "output file (- for stdout)")
	flag.Parse()
	if err := run(*split, *seed, *n, *lengths, *tasks, *cpt, *out); err != nil {
		fmt.Fprintln(os.Stderr, "synthgen:", err)
		os.Exit(2)
	}
}

func run(split string, seed uint64, n int, lengths, tasks string, cpt float64, out string) error {
	cfg := synthetic.Config{Split: split, Seed: seed, N: n, CharsPerToken: cpt}
	var err error
	if cfg.Tasks, err = synthetic.ParseTasks(tasks); err != nil {
		return err
	}
	if cfg.Lengths, err = synthetic.ParseLengths(lengths); err != nil {
		return err
	}
	w := os.Stdout
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	rows, err := synthetic.WriteJSONL(w, cfg)
	if err != nil {
		return err
	}
	if out != "-" {
		if err := w.Close(); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "synthgen: wrote %d rows (%s split, seed %d)\n", rows, split, seed)
	return nil
}
