package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the watcher goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestWatchSignals: the first signal cancels the context; a second signal, or work still running after the grace
// period, exits with code 3 at once; a run that stops in time never exits from the watcher.
func TestWatchSignals(t *testing.T) {
	for _, tc := range []struct {
		name       string
		second     bool          // send a second signal
		grace      time.Duration // before the watcher exits by itself
		returnsIn  bool          // the work stops (stop called) before the grace ends
		wantExit   bool
		wantStderr string
	}{
		{"stops in time", false, time.Hour, true, false, ""},
		{"second signal", true, time.Hour, false, true, "terminated again: stopping now"},
		{"ignores the context", false, 10 * time.Millisecond, false, true, "still running 10ms after interrupt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sigs := make(chan os.Signal, 2)
			exited := make(chan int, 1)
			var stderr syncBuffer
			ctx, stop := watchSignals(context.Background(), sigs, tc.grace, &stderr, func(code int) { exited <- code })
			defer stop()
			if tc.second {
				sigs <- syscall.SIGTERM
			} else {
				sigs <- os.Interrupt
			}
			<-ctx.Done()
			if !errors.Is(context.Cause(ctx), context.Canceled) || !strings.Contains(context.Cause(ctx).Error(), "signal received") {
				t.Errorf("cause %v", context.Cause(ctx))
			}
			if tc.second {
				sigs <- syscall.SIGTERM
			}
			if tc.returnsIn {
				stop()
			}
			select {
			case code := <-exited:
				if !tc.wantExit || code != exitIncomplete {
					t.Fatalf("exit(%d), want exit %v with code 3", code, tc.wantExit)
				}
			case <-time.After(200 * time.Millisecond):
				if tc.wantExit {
					t.Fatal("no exit")
				}
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.wantStderr)
			}
		})
	}
}
