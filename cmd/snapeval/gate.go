package main

import (
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/snapeval/snapeval/reports"
)

// gateOptions are the flags of `snapeval gate`.
type gateOptions struct {
	Dirs            []string
	MaxDrop         float64
	Bench           string
	Policy          string
	Use             string // point or ci
	JSON            bool
	AllowErrors     bool
	AllowIncomplete bool
}

func init() {
	o := &gateOptions{}
	cmd := &cobra.Command{
		Use:   "gate DIR [DIR...] --max-drop POINTS",
		Short: "Fail (exit 1) when a compressed policy loses more than POINTS accuracy points against the baseline",
		Long: `gate compares every compressed policy of a run with the full-cache baseline on the same items and fails
(exit code 1) when one loses more than --max-drop percentage points: the point estimate by default, or with
--use ci the upper end of the 95% paired CI of the loss (Tango's score interval for right/wrong items, on
design-effect-scaled counts for partial scores or several samples per item; docs/statistics.md). A run with
error records fails the gate unless --allow-errors. It prints a table of what passed and failed, with each
interval's method and the paired items a run would need for a CI half-width within --max-drop at the observed
loss and gain rates (--json for machines).

Exit codes: 0 every check passed, 1 the gate failed, 2 usage error (including a filter that matches nothing).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Dirs = args
			return runGate(o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.Float64Var(&o.MaxDrop, "max-drop", 0, "largest accepted accuracy loss in percentage points (required)")
	f.StringVar(&o.Bench, "bench", "", "gate only this benchmark")
	f.StringVar(&o.Policy, "policy", "", "gate only this policy spec")
	f.StringVar(&o.Use, "use", "point", "what is compared with --max-drop: point (the loss) or ci (upper end of its CI)")
	f.BoolVar(&o.JSON, "json", false, "print the result as JSON")
	f.BoolVar(&o.AllowErrors, "allow-errors", false, "do not fail because of error records (they are still reported)")
	f.BoolVar(&o.AllowIncomplete, "allow-incomplete", false, "do not fail because the run is incomplete or only some shards are given")
	_ = cmd.MarkFlagRequired("max-drop")
	rootCmd.AddCommand(cmd)
}

// runGate runs the gate over o.Dirs and prints its table or JSON; a failed gate returns an exit-1 error.
func runGate(o *gateOptions, stdout io.Writer) error {
	if o.Use != "point" && o.Use != "ci" {
		return usageErrorf("--use %q: want point or ci", o.Use)
	}
	r, err := loadReport(o.Dirs, o.MaxDrop)
	if err != nil {
		return err
	}
	g, err := reports.Gate(r, reports.GateOptions{MaxDrop: o.MaxDrop, Bench: o.Bench, Policy: o.Policy,
		UseCI: o.Use == "ci", AllowErrors: o.AllowErrors, AllowIncomplete: o.AllowIncomplete})
	if err != nil {
		return usageErrorf("gate: %w", err)
	}
	if o.JSON {
		err = reports.WriteGateJSON(stdout, g)
	} else {
		err = reports.WriteGateTable(stdout, g)
	}
	if err != nil {
		return err
	}
	if !g.Pass {
		return &exitError{code: exitGateFailed, err: errors.New("gate failed")}
	}
	return nil
}
