package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/reports"
)

// reportOptions are the flags of `snapeval report`.
type reportOptions struct {
	Dirs   []string
	Format string // md, csv or json
	Out    string // where report.md/csv/svg/png go (default: the first run directory)
	// MaxDrop is the gate max drop (pp) the planning figures assume (0: reports.DefaultPlanDrop).
	MaxDrop float64
}

func init() {
	o := &reportOptions{}
	cmd := &cobra.Command{
		Use:   "report DIR [DIR...]",
		Short: "Print the paired accuracy report of a run and write report.md, .csv, .svg, .png and the KV plots",
		Long: `report reads the records of a run directory (several directories are shards of one run and are merged),
compares every compressed policy with the full-cache baseline on the same items (accuracy, strict accuracy with
errors counted wrong, delta in percentage points, its 95% paired CI with the method that produced it, exact
McNemar p, breakdowns by item tag, and planning figures: the CI half-width achieved and the paired items a gate
at --max-drop would need for a half-width within it), prints the report to stdout and writes report.md,
report.csv, report.svg and report.png (accuracy against the cache budget) and report-kv.svg and report-kv.png
(accuracy against the mean KV bytes per sequence, which puts evicting and quantized caches on one axis) into the
first run directory (or --out). Policies are grouped by family. The same records always give byte-identical files.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Dirs = args
			return runReport(o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&o.Format, "format", "md", "stdout format: md, csv or json")
	cmd.Flags().StringVar(&o.Out, "out", "", "directory for the report files (default: the first DIR)")
	cmd.Flags().Float64Var(&o.MaxDrop, "max-drop", reports.DefaultPlanDrop, "the gate's max drop (pp) that the planning figures assume")
	rootCmd.AddCommand(cmd)

	// `snapeval run` writes the report of a finished run through this hook.
	writeRunReport = func(dir string, stdout io.Writer) error {
		return runReport(&reportOptions{Dirs: []string{dir}, Format: "md"}, stdout, io.Discard)
	}
}

// runReport loads the records of o.Dirs, writes the report files and prints the report in o.Format.
func runReport(o *reportOptions, stdout, stderr io.Writer) error {
	write := map[string]func(io.Writer, *reports.Report) error{
		"md": reports.WriteMarkdown, "csv": reports.WriteCSV, "json": reports.WriteJSON,
	}[o.Format]
	if write == nil {
		return usageErrorf("--format %q: want md, csv or json", o.Format)
	}
	if o.MaxDrop < 0 || o.MaxDrop != o.MaxDrop {
		return usageErrorf("--max-drop %g: must be a non-negative number of percentage points", o.MaxDrop)
	}
	r, err := loadReport(o.Dirs, o.MaxDrop)
	if err != nil {
		return err
	}
	out := o.Out
	if out == "" {
		out = o.Dirs[0]
	}
	paths, err := reports.WriteFiles(out, r)
	if err != nil {
		return fmt.Errorf("writing the report into %s: %w", out, err)
	}
	for _, p := range paths {
		fmt.Fprintln(stderr, "wrote", p)
	}
	return write(stdout, r)
}

// loadReport builds the report of the merged records of dirs, with planning figures for a gate at maxDrop
// (0: the default); a run without records is an error.
func loadReport(dirs []string, maxDrop float64) (*reports.Report, error) {
	m, recs, err := eval.LoadRuns(dirs)
	if err != nil {
		return nil, usageErrorf("%w", err)
	}
	if len(recs) == 0 {
		return nil, usageErrorf("no records in %v", dirs)
	}
	return reports.Build(m, recs, reports.Options{PlanDrop: maxDrop}), nil
}
