package oaiclient

import (
	"context"
	"sync"
	"time"
)

// Bucket is a token bucket refilled continuously at rate per minute, holding at most one minute's worth.
// A nil *Bucket never waits.
type Bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

// NewBucket returns a bucket allowing perMinute units a minute, or nil when perMinute <= 0 (no limit).
func NewBucket(perMinute float64) *Bucket {
	if perMinute <= 0 {
		return nil
	}
	return &Bucket{rate: perMinute / 60, burst: perMinute, tokens: perMinute, now: time.Now}
}

// reserve takes n units (clamped to the burst so an oversized request still runs) and returns how long the
// caller must wait before using them. The units stay taken even if the caller gives up.
func (b *Bucket) reserve(n float64) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if !b.last.IsZero() {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	b.last = now
	if n > b.burst {
		n = b.burst
	}
	b.tokens -= n
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// Wait blocks until n units are available or ctx ends.
func (b *Bucket) Wait(ctx context.Context, n float64) error {
	if b == nil || n <= 0 {
		return ctx.Err()
	}
	d := b.reserve(n)
	if d <= 0 {
		return ctx.Err()
	}
	return sleep(ctx, d)
}

// sleep waits d or until ctx ends (then it returns ctx.Err()).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Semaphore bounds concurrent requests; a nil *Semaphore never blocks.
type Semaphore chan struct{}

// NewSemaphore returns a semaphore of n slots, or nil when n <= 0 (unbounded).
func NewSemaphore(n int) Semaphore {
	if n <= 0 {
		return nil
	}
	return make(Semaphore, n)
}

// Acquire takes a slot or returns ctx.Err().
func (s Semaphore) Acquire(ctx context.Context) error {
	if s == nil {
		return ctx.Err()
	}
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release gives a slot back.
func (s Semaphore) Release() {
	if s != nil {
		<-s
	}
}
