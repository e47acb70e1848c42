// Package engine runs generation jobs on a model.Model with continuous batching: a fixed number of
// batch slots, each sequence prefilled with full causal attention, compressed once at the end of its
// own prefill under its cache policy (package compress), then decoded together with every other live
// sequence in one forward step per token, so that the weights are read once per step.
//
// Full-prefill states (per-layer K/V of the whole prompt, the last observation queries and the last
// logits) are shared: identical prompts admitted together prefill once, and a small LRU keeps recent
// prompts' states so that the same prompt under another policy skips its prefill. Results are
// bit-identical with and without sharing.
package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/snapeval/snapeval/backends/cpu/model"
	"github.com/snapeval/snapeval/backends/cpu/sample"
	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/llm"
)

// Options configure an Engine. Zero values take the defaults.
type Options struct {
	// Slots is the number of sequences decoded concurrently (default 8).
	Slots int
	// Threads is the number of worker goroutines of the kernels (default GOMAXPROCS).
	Threads int
	// PrefillChunk is the number of prompt tokens processed per forward step, shared by all prefilling
	// sequences (default 256). Decoding sequences advance one token in every step.
	PrefillChunk int
	// PrefixCacheBytes bounds the LRU of full-prefill states (default 1 GiB; negative disables it).
	PrefixCacheBytes int64
	// QueryKeep is the number of last prompt queries kept per prefill state (default 64; a policy with a
	// larger observation window prefills again when a cached state holds too few).
	QueryKeep int
	// MemoryBytes bounds the memory of the caches the engine holds at once: the batch slots' KV caches and the
	// full prefills in flight (default DefaultMemoryBytes; the prefix cache has its own bound, PrefixCacheBytes).
	// A job that alone would exceed it is refused before any allocation (Check); jobs that fit alone wait for
	// admission until enough of it is free.
	MemoryBytes int64
	// Pool, when set, is the kernels' worker pool, shared with other engines (their forward steps take
	// turns on it) and not closed by Close; Threads is then the pool's size. Nil: the engine starts its own.
	Pool *model.Pool
}

func (o Options) withDefaults() Options {
	if o.Slots <= 0 {
		o.Slots = 8
	}
	if o.Pool != nil {
		o.Threads = o.Pool.Workers()
	}
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
	if o.PrefillChunk <= 0 {
		o.PrefillChunk = 256
	}
	if o.PrefixCacheBytes == 0 {
		o.PrefixCacheBytes = 1 << 30
	}
	if o.QueryKeep <= 0 {
		o.QueryKeep = 64
	}
	if o.MemoryBytes <= 0 {
		o.MemoryBytes = DefaultMemoryBytes()
	}
	return o
}

// Job is one generation: a tokenized prompt, a cache policy, a token budget and sampling parameters.
type Job struct {
	Prompt   []int
	Policy   compress.Policy
	MaxNew   int
	Sampling sample.Params
	// EOS ids end the sequence with finish reason "stop" (the EOS token is not part of Tokens).
	EOS []int
	// OnToken, when set, is called (from the scheduler goroutine) with every new token; returning true
	// stops the sequence with finish reason "stop" (the token stays in Tokens).
	OnToken func(tok int) bool
	// WantKept asks for the kept positions after prefill in Result.Kept.
	WantKept bool
	// WantLogits asks for the logits of the last prompt position in Result.PromptLogits and of the last step in
	// Result.LastLogits.
	WantLogits bool
	// WantEvicted asks, under a decode-time eviction policy (h2o, tova), for the position each decode step
	// evicted in every layer and KV head in Result.Evicted.
	WantEvicted bool
}

// Result is the outcome of a Job.
type Result struct {
	Tokens []int
	Finish string // "stop" or "length"
	Plan   compress.Plan
	// KVBytes is the memory of this sequence's cache as held: float32 elements, or the packed size of a
	// quantized cache (compress.Policy.KVBytes).
	KVBytes int64
	// Kept is [layer][kv head] sorted absolute positions in the cache right after prefill (WantKept).
	Kept [][][]int
	// Evicted is [decode step][layer][kv head] the position evicted when the step's token (at PromptLen + step)
	// was written, -1 where it took an empty slot (WantEvicted, h2o and tova).
	Evicted [][][]int
	// PromptLogits are the logits of the last prompt position and LastLogits those the last token was sampled
	// from (WantLogits; the same when one token was generated).
	PromptLogits, LastLogits []float32
	Prefill                  time.Duration // admission to the first token
	Decode                   time.Duration // first token to the end
	// PrefixReused is true when the prefill state came from the LRU or another in-flight sequence.
	PrefixReused bool
}

// ElemBytes is the size of one cached K or V element: the engine holds the cache in float32 (a kvquant cache holds
// the keys of the group being filled in float32 too).
const ElemBytes = 4

// Engine schedules jobs on one model. It is safe for concurrent use.
type Engine struct {
	m    *model.Model
	opts Options
	reqs chan *request
	quit chan struct{}
	done chan struct{}
	once sync.Once
	s    *scheduler
}

type request struct {
	ctx  context.Context
	job  Job
	plan compress.Plan
	out  chan reply
}

type reply struct {
	res Result
	err error
}

// ErrClosed is returned for jobs sent to or pending in a closed engine.
var ErrClosed = errors.New("engine: closed")

// New starts an engine on m.
func New(m *model.Model, opts Options) *Engine {
	opts = opts.withDefaults()
	e := &Engine{m: m, opts: opts, reqs: make(chan *request), quit: make(chan struct{}), done: make(chan struct{})}
	e.s = newScheduler(m, opts)
	go e.loop()
	return e
}

// Model returns the engine's model.
func (e *Engine) Model() *model.Model { return e.m }

// Options returns the options in effect (defaults applied).
func (e *Engine) Options() Options { return e.opts }

// Close stops the scheduler; pending jobs fail with ErrClosed.
func (e *Engine) Close() error {
	e.once.Do(func() {
		close(e.quit)
		<-e.done
		if e.opts.Pool == nil {
			e.s.pool.Close()
		}
	})
	return nil
}

// Check validates a job without running it and returns its cache plan. Errors wrap llm.ErrContextOverflow when
// the prompt plus MaxNew exceeds the model's positions, when the policy's cache is larger than the model's positions
// or the memory budget (CheckPolicy), and when the job's cache and prefill alone exceed the memory budget.
func (e *Engine) Check(job Job) (compress.Plan, error) {
	c := &e.m.Cfg
	L := len(job.Prompt)
	if L == 0 {
		return compress.Plan{}, errors.New("engine: empty prompt")
	}
	if job.MaxNew < 0 {
		return compress.Plan{}, fmt.Errorf("engine: max new tokens %d is negative", job.MaxNew)
	}
	if L > c.MaxPositions || job.MaxNew > c.MaxPositions-L { // no overflow for any MaxNew
		return compress.Plan{}, fmt.Errorf("prompt of %d tokens + %d new tokens exceeds the model's %d positions: %w",
			L, job.MaxNew, c.MaxPositions, llm.ErrContextOverflow)
	}
	for i, t := range job.Prompt {
		if t < 0 || t >= c.Vocab {
			return compress.Plan{}, fmt.Errorf("engine: prompt token %d (index %d) outside the vocabulary of %d", t, i, c.Vocab)
		}
	}
	// Capacity as docs/policies.md §4 counts it (prompt + max new for full and snapkv); the last sampled token is never
	// fed back, so its slot stays unused.
	if err := e.CheckPolicy(job.Policy); err != nil {
		return compress.Plan{}, err
	}
	plan, err := job.Policy.Plan(L, job.MaxNew)
	if err != nil {
		return compress.Plan{}, err
	}
	if err := e.checkMemory(plan); err != nil {
		return compress.Plan{}, err
	}
	return plan, nil
}

// Generate runs a job to completion. Cancelling ctx abandons it (its slot is freed at the next step).
func (e *Engine) Generate(ctx context.Context, job Job) (Result, error) {
	plan, err := e.Check(job)
	if err != nil {
		return Result{}, err
	}
	r := &request{ctx: ctx, job: job, plan: plan, out: make(chan reply, 1)}
	select {
	case e.reqs <- r:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-e.quit:
		return Result{}, ErrClosed
	}
	select {
	case rep := <-r.out:
		return rep.res, rep.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

func (e *Engine) loop() {
	defer close(e.done)
	s := e.s
	for {
		if s.idle() {
			select {
			case r := <-e.reqs:
				s.enqueue(r)
			case <-e.quit:
				s.failAll(ErrClosed)
				return
			}
		}
		for more := true; more; {
			select {
			case r := <-e.reqs:
				s.enqueue(r)
			case <-e.quit:
				s.failAll(ErrClosed)
				return
			default:
				more = false
			}
		}
		s.step()
	}
}
