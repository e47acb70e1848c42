// Command snapeval measures what KV-cache compression costs in accuracy.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes (documented in the README).
const (
	exitOK         = 0
	exitGateFailed = 1
	exitUsage      = 2
	exitIncomplete = 3
)

// exitError carries a specific exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is a usage error (exit code 2).
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

var rootCmd = &cobra.Command{
	Use:           "snapeval",
	Short:         "Measure what KV-cache compression (SnapStream and friends) costs in accuracy",
	SilenceUsage:  true,
	SilenceErrors: true,
}

// dataCmd is the parent of the data subcommands (list, pull, verify, import, synth).
var dataCmd = &cobra.Command{
	Use:   "data",
	Short: "Manage benchmark datasets pinned by datasets.lock",
}

func init() {
	rootCmd.AddCommand(dataCmd)
}

func main() {
	os.Exit(execute())
}

func execute() int {
	err := rootCmd.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "snapeval:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitUsage
}
