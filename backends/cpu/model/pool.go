package model

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// job is a unit of parallel work over the index range [lo, hi).
type job interface {
	run(lo, hi, worker int)
}

// span wakes a worker with its index.
type span struct {
	id int
}

// Pool is a fixed set of worker goroutines that split a range of work; it allocates nothing per call.
type Pool struct {
	n    int
	work []chan span
	wg   sync.WaitGroup
	mu   sync.Mutex
	once sync.Once
	cur  pieces
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
				p.cur.drain(s.id)
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

// parallel runs j over [0,n) in chunks whose boundaries are multiples of align (the last chunk takes the
// rest). Workers take chunks from a shared counter (about four per worker), so a worker slowed down by
// other load on the machine leaves its share to the others. Calls are serialised.
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
	chunks := min(units, 4*w)
	p.cur = pieces{j: j, n: n, align: align, units: units, chunks: int64(chunks)}
	p.cur.next.Store(0)
	p.wg.Add(w - 1)
	for i := 1; i < w; i++ {
		p.work[i-1] <- span{id: i}
	}
	p.cur.drain(0)
	p.wg.Wait()
	p.cur.j = nil
}

// pieces is the work of one parallel call, handed out chunk by chunk.
type pieces struct {
	j               job
	n, align, units int
	chunks          int64
	next            atomic.Int64
}

func (c *pieces) drain(worker int) {
	for {
		i := c.next.Add(1) - 1
		if i >= c.chunks {
			return
		}
		lo := int(int64(c.units)*i/c.chunks) * c.align
		hi := int(int64(c.units)*(i+1)/c.chunks) * c.align
		if hi > c.n || i == c.chunks-1 {
			hi = c.n
		}
		c.j.run(lo, hi, worker)
	}
}

// funcJob adapts a function to job.
type funcJob func(lo, hi, worker int)

func (f funcJob) run(lo, hi, worker int) { f(lo, hi, worker) }

// For runs fn over [0, n) split into at most Workers() contiguous ranges, one per worker (worker is the
// worker's index, for per-worker scratch). It returns when every range is done. Unlike the kernels'
// internal calls it may allocate (the closure).
func (p *Pool) For(n int, fn func(lo, hi, worker int)) { p.parallel(funcJob(fn), n, 1) }
