package model

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// job is a unit of parallel work over the index range [lo, hi).
type job interface {
	run(lo, hi, worker int)
}

// spinFor is how long an idle worker polls for the next job before it parks. A decode step makes a few
// hundred calls a few tens of microseconds apart, so the workers stay awake through a step and park
// between steps.
const spinFor = 200 * time.Microsecond

// yieldAfter is how long a spin-wait polls before it lets other goroutines run (runtime.Gosched), and how
// often it does so afterwards. Gosched takes the scheduler's global lock; called every 64 polls (a few hundred
// nanoseconds) by every waiting worker, as it was, it put runtime.lock2/unlock2 at 21% of a 2-thread bench's
// CPU profile, and at 16 threads the waiters queue on that lock at each of a step's ~120 barriers. Waits
// inside a step are a few microseconds, so they now poll without yielding.
const yieldAfter = 50 * time.Microsecond

// spin is one spin-wait's state: call relax once per poll.
type spin struct {
	n     int
	start time.Time
}

// relax yields to other goroutines once the wait has lasted yieldAfter, and every yieldAfter after that.
func (s *spin) relax() {
	s.n++
	if s.n&63 != 0 {
		return
	}
	now := time.Now()
	switch {
	case s.start.IsZero():
		s.start = now
	case now.Sub(s.start) > yieldAfter:
		runtime.Gosched()
		s.start = now
	}
}

// Pool is a fixed set of worker goroutines that split a range of work; it allocates nothing per call.
//
// A call publishes its job under a new generation number. Idle workers poll for it for spinFor before
// they park on a channel (a parked worker is woken by the call). A worker joins the job only while the
// job is still open; the caller drains chunks itself, then closes the job and waits only for the
// workers that joined and still run a chunk, never for a worker the operating system has not
// scheduled yet (that worker finds the job closed and skips it).
type Pool struct {
	n    int
	mu   sync.Mutex
	once sync.Once
	cur  pieces
	// state is gen<<32 | closed<<31 | active: the current job's generation, whether it still takes
	// workers, and how many workers run it.
	state atomic.Uint64
	stop  atomic.Bool
	ws    []poolWorker
	one   [1]phase
	// dispatches counts the calls that ran on more than one worker (each one a publish, join and wait
	// across the workers), barriers the waits for every earlier phase inside those calls; tests read them.
	dispatches, barriers int64
}

// poolWorker is a worker's parking place.
type poolWorker struct {
	parked atomic.Bool
	wake   chan struct{}
	_      [48]byte // keep workers' flags on separate cache lines
}

const (
	stClosed = 1 << 31
	stActive = stClosed - 1
)

// NewPool starts a pool of n workers (n <= 0 means GOMAXPROCS). The caller's goroutine is worker 0.
func NewPool(n int) *Pool {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Pool{n: n, ws: make([]poolWorker, n)}
	p.state.Store(stClosed)
	for i := 1; i < n; i++ {
		p.ws[i].wake = make(chan struct{}, 1)
		go p.loop(i)
	}
	return p
}

// Workers is the number of workers.
func (p *Pool) Workers() int { return p.n }

// Close stops the workers.
func (p *Pool) Close() {
	p.once.Do(func() {
		p.stop.Store(true)
		for i := 1; i < p.n; i++ {
			p.ws[i].parked.Store(false)
			select {
			case p.ws[i].wake <- struct{}{}:
			default:
			}
		}
	})
}

// loop is worker id's life: wait for a new generation, join it if it is still open, drain chunks.
func (p *Pool) loop(id int) {
	w := &p.ws[id]
	seen := p.state.Load() >> 32
	for {
		s := p.waitNew(w, seen)
		if p.stop.Load() {
			return
		}
		seen = s >> 32
		if p.tryJoin(s) {
			p.cur.drain(id)
			p.state.Add(^uint64(0)) // active--
		}
	}
}

// waitNew returns the state once its generation differs from seen: polling first, then parked.
func (p *Pool) waitNew(w *poolWorker, seen uint64) uint64 {
	for {
		start := time.Now()
		var sp spin
		for i := 0; ; i++ {
			if s := p.state.Load(); s>>32 != seen || p.stop.Load() {
				return s
			}
			if i&63 == 63 && time.Since(start) > spinFor {
				break
			}
			sp.relax()
		}
		w.parked.Store(true)
		if s := p.state.Load(); s>>32 != seen || p.stop.Load() {
			if !w.parked.CompareAndSwap(true, false) {
				<-w.wake // a caller saw us parked and sent a wake-up: consume it
			}
			return s
		}
		<-w.wake
	}
}

// tryJoin adds the worker to the job of state s if that job is still the current one and open.
func (p *Pool) tryJoin(s uint64) bool {
	for s&stClosed == 0 {
		if p.state.CompareAndSwap(s, s+1) {
			return true
		}
		n := p.state.Load()
		if n>>32 != s>>32 {
			return false
		}
		s = n
	}
	return false
}

// phase is one step of a plan: a job over [0, n) in chunks whose boundaries are multiples of align
// (the last chunk takes the rest).
type phase struct {
	j      job
	n      int
	align  int
	chunks int // 0: about four per worker
	// barrier: the phase's chunks start only once every earlier phase is complete (its finaliser
	// included). A phase without it starts at once and relies on its job to wait for its inputs; it must
	// follow a barrier phase, whose wait it shares.
	barrier bool
	// final, when set, runs as final.run(0, finalN, worker) on the worker that completes the phase's last
	// chunk, before any later phase starts. Only a phase followed by a barrier phase (or by nothing) may
	// have one; on a phase without a barrier, its job must not complete a chunk before every chunk of the
	// earlier phases is done (it waits for them), so that its last chunk is the plan's last completion so far.
	final  job
	finalN int

	units        int
	first, count int64 // the phase's chunks are first .. first+count-1 of the plan
	need         int64 // completions (chunks and finalisers) of the earlier phases to wait for
	before       int64 // completions of all earlier phases (need, for a barrier phase)
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
	if p.n == 1 || n <= align {
		j.run(0, n, 0)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.one[0] = phase{j: j, n: n, align: align, barrier: true}
	p.dispatch(p.one[:], p.layout(p.one[:]))
	p.one[0] = phase{}
}

// run executes a plan: the chunks of all its phases, in one dispatch. Chunks are taken in plan order
// from one shared counter; a chunk of a barrier phase first waits until the chunks and finalisers of
// every earlier phase are done. No worker waits for a chunk nobody has taken: every chunk it waits for
// was taken earlier by a worker that runs it. Calls are serialised.
func (p *Pool) run(ph []phase) {
	total := p.layout(ph)
	if p.n == 1 {
		for k := range ph {
			f := &ph[k]
			if f.n > 0 {
				f.j.run(0, f.n, 0)
			}
			if f.final != nil {
				f.final.run(0, f.finalN, 0)
			}
		}
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dispatch(ph, total)
}

// layout fills in the chunks of each phase and what it waits for, and returns the number of chunks.
func (p *Pool) layout(ph []phase) (total int64) {
	var done int64
	for k := range ph {
		f := &ph[k]
		if f.align < 1 {
			f.align = 1
		}
		f.units = max(1, (f.n+f.align-1)/f.align)
		c := f.chunks
		if c <= 0 {
			c = 4 * p.n
		}
		f.count = int64(min(f.units, c))
		f.first = total
		total += f.count
		f.before = done
		if k == 0 || f.barrier {
			f.need = done
		} else {
			f.need = ph[k-1].need
		}
		if f.final != nil && k+1 < len(ph) && !ph[k+1].barrier {
			panic("model: a finaliser needs a barrier phase after it")
		}
		done += f.count
		if f.final != nil {
			done++
		}
	}
	return total
}

// dispatch runs a laid-out plan on the workers (the caller holds p.mu).
func (p *Pool) dispatch(ph []phase, total int64) {
	p.dispatches++
	for k := 1; k < len(ph); k++ {
		if ph[k].barrier {
			p.barriers++
		}
	}
	p.cur.ph, p.cur.total = ph, total
	p.cur.next.Store(0)
	p.cur.fin.Store(0)
	gen := p.state.Load()>>32 + 1
	p.state.Store(gen << 32) // open, no worker yet
	for i := 1; i < p.n && int64(i) < total; i++ {
		if p.ws[i].parked.CompareAndSwap(true, false) {
			p.ws[i].wake <- struct{}{}
		}
	}
	p.cur.drain(0)
	// Close the job, then wait for the workers that joined to finish their last chunk.
	s := p.state.Load()
	for !p.state.CompareAndSwap(s, s|stClosed) {
		s = p.state.Load()
	}
	var sp spin
	for p.state.Load()&stActive != 0 {
		sp.relax()
	}
	p.cur.ph = nil
}

// pieces is the plan being run, handed out chunk by chunk.
type pieces struct {
	ph    []phase
	total int64
	_     [64]byte     // keep the two counters off the lines of everything else
	next  atomic.Int64 // next chunk to take
	_     [64]byte
	fin   atomic.Int64 // chunks and finalisers done
	_     [64]byte
}

// drain runs chunks until none is left. A worker adds its completed chunks of a phase to fin when it
// moves on to another phase or runs out (one atomic add per worker and phase, not per chunk), always
// before it waits; the add that completes a phase runs the phase's finaliser.
func (c *pieces) drain(worker int) {
	k, passed := 0, -1 // phase of the chunk taken last; last phase whose wait this worker passed
	pk, pend := 0, int64(0)
	for {
		i := c.next.Add(1) - 1
		if i >= c.total {
			break
		}
		for i >= c.ph[k].first+c.ph[k].count {
			k++
		}
		if pend > 0 && k != pk {
			c.complete(pk, pend, worker)
			pend = 0
		}
		f := &c.ph[k]
		if k > passed {
			var sp spin
			for c.fin.Load() < f.need {
				sp.relax()
			}
			passed = k
		}
		i -= f.first
		lo := int(int64(f.units)*i/f.count) * f.align
		hi := int(int64(f.units)*(i+1)/f.count) * f.align
		if hi > f.n || i == f.count-1 {
			hi = f.n
		}
		if lo < hi {
			f.j.run(lo, hi, worker)
		}
		pk = k
		pend++
	}
	if pend > 0 {
		c.complete(pk, pend, worker)
	}
}

// complete adds n completed chunks of phase k to fin and runs a finaliser if they were the last
// completions it waited for: phase k's own, or that of a later phase without a barrier (whose chunks can
// finish before the last completion of phase k is added: a worker adds its completions of a phase only when
// it moves on). Completions never pass a pending finaliser's count (the phases after it wait for it), so
// exactly one add reaches it.
func (c *pieces) complete(k int, n int64, worker int) {
	d := c.fin.Add(n)
	for i := k; ; i++ {
		f := &c.ph[i]
		if f.final != nil && d == f.before+f.count {
			f.final.run(0, f.finalN, worker)
			c.fin.Add(1)
			return
		}
		if i+1 >= len(c.ph) || c.ph[i+1].barrier {
			return
		}
	}
}

// funcJob adapts a function to job.
type funcJob func(lo, hi, worker int)

func (f funcJob) run(lo, hi, worker int) { f(lo, hi, worker) }

// For runs fn over [0, n) in chunks shared out among the workers (worker is the index of the worker
// running a chunk, for per-worker scratch). It returns when every chunk is done. Unlike the kernels'
// internal calls it may allocate (the closure).
func (p *Pool) For(n int, fn func(lo, hi, worker int)) { p.parallel(funcJob(fn), n, 1) }
