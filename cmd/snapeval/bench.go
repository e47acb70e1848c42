package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func init() {
	rootCmd.AddCommand(&cobra.Command{
		Use:   "bench",
		Short: "Measure CPU-backend throughput and SnapStream's memory and speed claims (not built yet)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("snapeval bench is not built yet (issue #9); until then use `go test -bench . ./backends/cpu/ ./compress/`")
		},
	})
}
