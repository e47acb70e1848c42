// Command snapeval measures what KV-cache compression costs in accuracy.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/snapeval/snapeval/session"
)

// Exit codes (documented in the README).
const (
	exitOK         = 0
	exitGateFailed = 1
	exitUsage      = 2
	exitIncomplete = 3
	exitFailure    = 4
)

// exitError carries a specific exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is a usage error (exit code 2); %w in format wraps as fmt.Errorf does.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// exitCode classifies a command's error: the code an *exitError carries, 2 for a usage or setup error
// (session.UsageError, a bad flag or argument, a file that does not exist or cannot be read), 4 for any other failure (I/O, an internal error).
func exitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case session.IsUsage(err), errors.Is(err, fs.ErrNotExist), errors.Is(err, fs.ErrPermission):
		return exitUsage
	}
	return exitFailure
}

// markUsage makes every command's flag and argument errors usage errors (cobra returns them unclassified).
func markUsage(c *cobra.Command) {
	c.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErrorf("%w", err) })
	if args := c.Args; args != nil {
		c.Args = func(cmd *cobra.Command, a []string) error {
			if err := args(cmd, a); err != nil {
				return usageErrorf("%w", err)
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		markUsage(sub)
	}
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
	markUsage(rootCmd)
	err := rootCmd.Execute()
	if err == nil {
		return exitOK
	}
	if strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") {
		err = usageErrorf("%w", err)
	}
	fmt.Fprintln(os.Stderr, "snapeval:", err)
	return exitCode(err)
}
