//go:build !unix

package eval

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("would block")

// flock is a no-op where the system has no flock: two writers of one run directory are not detected there.
func flock(*os.File) error { return nil }
