package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/reports"
)

// exportOptions are the flags of `snapeval export`.
type exportOptions struct {
	Dirs   []string
	Format string // jsonl or csv
}

func init() {
	o := &exportOptions{}
	cmd := &cobra.Command{
		Use:   "export DIR [DIR...]",
		Short: "Print the records of a run, one per line (JSON Lines or CSV)",
		Long: `export prints every record of a run directory (several directories are shards of one run and are merged)
in a deterministic order: as JSON Lines (every field of the record: bench, item_id, policy, sample, output,
extracted, correct, error, ...) or as CSV with a header of the same names.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Dirs = args
			return runExport(o, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&o.Format, "format", "jsonl", "output format: jsonl or csv")
	rootCmd.AddCommand(cmd)
}

// runExport writes the records of o.Dirs to stdout in o.Format.
func runExport(o *exportOptions, stdout io.Writer) error {
	write := map[string]func(io.Writer, []eval.Record) error{
		"jsonl": reports.WriteRecordsJSONL, "csv": reports.WriteRecordsCSV,
	}[o.Format]
	if write == nil {
		return usageErrorf("--format %q: want jsonl or csv", o.Format)
	}
	_, recs, err := eval.LoadRuns(o.Dirs)
	if err != nil {
		return usageErrorf("%w", err)
	}
	return write(stdout, recs)
}
