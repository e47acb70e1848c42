//go:build !unix

package torch

import "os/exec"

// ownGroup leaves cmd in snapeval's process group (no process groups here).
func ownGroup(cmd *exec.Cmd) {}

// killGroup kills the worker process.
func killGroup(cmd *exec.Cmd) { cmd.Process.Kill() }
