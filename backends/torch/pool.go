package torch

import (
	"context"
	"sync"
)

// kvPool admits requests first come, first served while the KV bytes they hold fit its capacity: a request waits
// (in order) until the caches of finished ones are released.
type kvPool struct {
	mu    sync.Mutex
	cap   int64
	used  int64
	queue []*waiter
}

type waiter struct {
	n     int64
	ready chan struct{}
}

func newKVPool(capacity int64) *kvPool { return &kvPool{cap: capacity} }

// acquire waits until n bytes are free and no earlier request waits, and returns the function that gives them
// back (idempotent). n must not exceed the capacity.
func (p *kvPool) acquire(ctx context.Context, n int64) (func(), error) {
	p.mu.Lock()
	w := &waiter{n: n, ready: make(chan struct{})}
	p.queue = append(p.queue, w)
	p.grant()
	p.mu.Unlock()
	select {
	case <-w.ready:
	case <-ctx.Done():
		p.mu.Lock()
		select {
		case <-w.ready: // granted meanwhile: give it back
			p.used -= n
		default:
			for i, q := range p.queue {
				if q == w {
					p.queue = append(p.queue[:i], p.queue[i+1:]...)
					break
				}
			}
		}
		p.grant()
		p.mu.Unlock()
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.used -= n
			p.grant()
			p.mu.Unlock()
		})
	}, nil
}

// grant admits waiters from the head of the queue while they fit (p.mu held).
func (p *kvPool) grant() {
	for len(p.queue) > 0 && p.used+p.queue[0].n <= p.cap {
		w := p.queue[0]
		p.queue = p.queue[1:]
		p.used += w.n
		close(w.ready)
	}
}

// inUse returns the bytes held now.
func (p *kvPool) inUse() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.used
}
