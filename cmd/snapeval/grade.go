package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/snapeval/snapeval/datasets/regrade"
	"github.com/snapeval/snapeval/eval"
)

// gradeOptions are the flags of `snapeval grade`.
type gradeOptions struct {
	Bench   string
	Input   string
	Out     string
	Options []string // key=value benchmark options (e.g. grader=qwen)
}

func init() {
	o := &gradeOptions{}
	cmd := &cobra.Command{
		Use:   "grade --bench NAME --input FILE [--out FILE]",
		Short: "Re-grade model outputs produced elsewhere with a benchmark's own grader",
		Long: `grade reads JSON lines, each an upstream dataset row of the benchmark plus a string field "output"
(the model's text), grades each output exactly as a run would, and writes one JSON line per input line with
id, extracted, correct, verdict, score and detail (to --out, or stdout). A summary goes to stderr.
Grading failures are reported as verdict "grader_error", never as wrong answers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGrade(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Bench, "bench", "", "benchmark name (required): "+strings.Join(eval.BenchmarkNames(), ", "))
	f.StringVar(&o.Input, "input", "", "JSONL file of rows with an \"output\" field (required; - for stdin)")
	f.StringVar(&o.Out, "out", "", "write graded lines here (default stdout)")
	f.StringArrayVar(&o.Options, "opt", nil, "benchmark option key=value (repeatable), e.g. grader=qwen for aime24")
	rootCmd.AddCommand(cmd)
}

func runGrade(ctx context.Context, o *gradeOptions, stdout, stderr io.Writer) error {
	if o.Bench == "" || o.Input == "" {
		return usageErrorf("grade needs --bench and --input")
	}
	opts := map[string]string{}
	for _, kv := range o.Options {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageErrorf("--opt %q: want key=value", kv)
		}
		opts[k] = v
	}
	bench, err := eval.OpenBenchmark(o.Bench, eval.BenchOptions{Options: opts})
	if err != nil {
		return usageErrorf("%w", err)
	}
	if c, ok := bench.(io.Closer); ok {
		defer c.Close() // LiveCodeBench's sandbox: its uids, cgroups and directories
	}
	if _, ok := bench.(eval.RowParser); !ok {
		return usageErrorf("benchmark %s cannot re-grade upstream rows", o.Bench)
	}
	var in io.Reader = os.Stdin
	if o.Input != "-" {
		f, err := os.Open(o.Input)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	out := stdout
	var outFile *os.File
	if o.Out != "" {
		if outFile, err = os.Create(o.Out); err != nil {
			return err
		}
		out = outFile
	}
	if ctx == nil {
		ctx = context.Background()
	}
	// Ctrl-C and SIGTERM stop grading through the deferred Close (the sandbox's cgroups and directories).
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := regrade.Run(ctx, bench, in, out)
	if outFile != nil {
		if cerr := outFile.Close(); err == nil {
			err = cerr
		}
	}
	if errors.Is(err, context.Canceled) {
		return &exitError{code: exitIncomplete, err: fmt.Errorf("%s: stopped after %d lines: %w", o.Input, st.Lines, err)}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", o.Input, err)
	}
	fmt.Fprintf(stderr, "%s: %d graded, %d correct (%.1f%%), %d grader errors\n",
		o.Bench, st.Lines-st.GraderErrors, st.Correct, st.Accuracy(), st.GraderErrors)
	if st.GraderErrors > 0 {
		return &exitError{code: exitIncomplete, err: fmt.Errorf("%d outputs could not be graded", st.GraderErrors)}
	}
	return nil
}
