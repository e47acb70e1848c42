package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// stopGrace is how long a run may take to stop after SIGINT or SIGTERM before it exits at once.
const stopGrace = 30 * time.Second

// stopOnSignal returns a context cancelled by the first SIGINT or SIGTERM. Work that honours the context stops and
// saves what it finished; should it still be running stopGrace later, or should a second signal come, the process
// exits with code 3 at once (records are journaled durably as they finish, so the next run resumes). stop releases
// the signals.
func stopOnSignal(parent context.Context, stderr io.Writer) (ctx context.Context, stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, stopWatch := watchSignals(parent, sigs, stopGrace, stderr, os.Exit)
	return ctx, func() {
		signal.Stop(sigs)
		stopWatch()
	}
}

// watchSignals is stopOnSignal's logic over a channel of signals and an exit function (for tests).
func watchSignals(parent context.Context, sigs <-chan os.Signal, grace time.Duration, stderr io.Writer, exit func(int)) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	done := make(chan struct{})
	go func() {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-done:
			return
		}
		cancel(signalStop(sig.String() + " signal received"))
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-done:
			return
		case s := <-sigs:
			fmt.Fprintf(stderr, "snapeval: %v again: stopping now (finished records are saved; re-run the same command to resume)\n", s)
		case <-t.C:
			fmt.Fprintf(stderr, "snapeval: still running %v after %v: stopping now (finished records are saved; re-run the same command to resume)\n", grace, sig)
		}
		exit(exitIncomplete)
	}()
	var once bool
	return ctx, func() {
		if !once {
			once = true
			close(done)
		}
		cancel(nil)
	}
}

// signalStop is the cause of a context cancelled by a signal (worded as signal.NotifyContext words it); it is
// context.Canceled for errors.Is.
type signalStop string

func (s signalStop) Error() string        { return string(s) }
func (s signalStop) Is(target error) bool { return target == context.Canceled }
