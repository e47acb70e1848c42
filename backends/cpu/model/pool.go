package model

import (
	"runtime"
	"sync"
)

// job is a unit of parallel work over the index range [lo, hi).
type job interface {
	run(lo, hi, worker int)
}

type span struct {
	j          job
	lo, hi, id int
}

// Pool is a fixed set of worker goroutines that split a range of work; it allocates nothing per call.
type Pool struct {
	n    int
	work []chan span
	wg   sync.WaitGroup
	mu   sync.Mutex
	once sync.Once
}

// NewPool starts a pool of n workers (n <= 0 means GOMAXPROCS). The caller's goroutine is worker 0.
func NewPool(n int) *Pool {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Pool{n: n}
	for i := 1; i < n; i++ {
		ch := make(chan span, 1)
		p.work = append(p.work, ch)
		go func() {
			for s := range ch {
				s.j.run(s.lo, s.hi, s.id)
				p.wg.Done()
			}
		}()
	}
	return p
}

// Workers is the number of workers.
func (p *Pool) Workers() int { return p.n }

// Close stops the workers.
func (p *Pool) Close() {
	p.once.Do(func() {
		for _, ch := range p.work {
			close(ch)
		}
	})
}

// parallel runs j over [0,n) split into at most Workers() contiguous chunks whose boundaries are
// multiples of align (the last chunk takes the rest). Calls are serialised.
func (p *Pool) parallel(j job, n, align int) {
	if n <= 0 {
		return
	}
	if align < 1 {
		align = 1
	}
	units := (n + align - 1) / align
	w := p.n
	if units < w {
		w = units
	}
	if w <= 1 {
		j.run(0, n, 0)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wg.Add(w - 1)
	lo := 0
	var first span
	for i := 0; i < w; i++ {
		hi := (units * (i + 1) / w) * align
		if hi > n || i == w-1 {
			hi = n
		}
		s := span{j, lo, hi, i}
		if i == 0 {
			first = s
		} else {
			p.work[i-1] <- s
		}
		lo = hi
	}
	first.j.run(first.lo, first.hi, 0)
	p.wg.Wait()
}

// funcJob adapts a function to job.
type funcJob func(lo, hi, worker int)

func (f funcJob) run(lo, hi, worker int) { f(lo, hi, worker) }

// For runs fn over [0, n) split into at most Workers() contiguous ranges, one per worker (worker is the
// worker's index, for per-worker scratch). It returns when every range is done. Unlike the kernels'
// internal calls it may allocate (the closure).
func (p *Pool) For(n int, fn func(lo, hi, worker int)) { p.parallel(funcJob(fn), n, 1) }
