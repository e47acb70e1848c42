package eval

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/snapeval/snapeval/llm"
)

// Task is one cell of the run matrix: an item of a benchmark under a policy, one sample.
type Task struct {
	Bench   Benchmark
	Item    Item
	Policy  string
	Sample  int
	Request llm.Request
}

// Key returns the key of the record this task produces.
func (t Task) Key() Key { return Key{t.Bench.Name(), t.Item.ID, t.Policy, t.Sample} }

// SampleSeed derives the seed of one sample from the run seed, the benchmark, the item and the sample index;
// it always fits a signed 64-bit integer.
// The policy is deliberately not an input: the same sample under every policy uses the same seed, so that
// samples are paired across policies.
func SampleSeed(runSeed uint64, bench, itemID string, sample int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(bench))
	h.Write([]byte{0})
	h.Write([]byte(itemID))
	x := runSeed ^ h.Sum64() ^ (uint64(sample)+1)*0x9E3779B97F4A7C15
	// 63 bits: OpenAI-compatible servers read the seed as a signed 64-bit integer.
	return splitmix64(x) >> 1
}

func splitmix64(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
	x = (x ^ (x >> 27)) * 0x94D049BB133111EB
	return x ^ (x >> 31)
}

// Shard selects a deterministic subset of items: shard Index of Count (0-based). The zero value selects everything.
type Shard struct{ Index, Count int }

// ParseShard parses "i/n" with 0 <= i < n.
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("invalid shard %q: want i/n with 0 <= i < n (e.g. 0/4)", s)
	}
	return Shard{i, n}, nil
}

func (s Shard) String() string {
	if s.Count == 0 {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Contains reports whether the item belongs to this shard. Items are assigned by a hash of (benchmark, item id),
// so every policy and sample of an item lands in the same shard and the assignment does not depend on --limit.
func (s Shard) Contains(bench, itemID string) bool {
	if s.Count <= 1 {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(bench))
	h.Write([]byte{0})
	h.Write([]byte(itemID))
	return h.Sum64()%uint64(s.Count) == uint64(s.Index)
}

// Overrides replace a benchmark's default sampling parameters (nil / zero: keep the default).
type Overrides struct {
	Temperature *float64
	TopP        *float64
	MaxNew      int
	Samples     int
}

// LoadedBench is a benchmark with its items loaded.
type LoadedBench struct {
	Bench Benchmark
	Items []Item
}

// BuildTasks expands the run matrix: for every benchmark, item (in shard), policy and sample, one task. The order is
// item-major (all policies and samples of an item are adjacent), which lets backends reuse a prompt's prefill.
func BuildTasks(benches []LoadedBench, policies []string, runSeed uint64, shard Shard, ov Overrides) ([]Task, error) {
	var tasks []Task
	for _, lb := range benches {
		def := lb.Bench.Defaults()
		samples := def.Samples
		if ov.Samples > 0 {
			samples = ov.Samples
		}
		if samples < 1 {
			samples = 1
		}
		seen := map[string]bool{}
		for _, it := range lb.Items {
			if seen[it.ID] {
				return nil, fmt.Errorf("benchmark %s: duplicate item id %q", lb.Bench.Name(), it.ID)
			}
			seen[it.ID] = true
			if !shard.Contains(lb.Bench.Name(), it.ID) {
				continue
			}
			base, err := lb.Bench.Request(it)
			if err != nil {
				return nil, fmt.Errorf("benchmark %s item %s: %w", lb.Bench.Name(), it.ID, err)
			}
			// A request that sets no max_new takes the benchmark's default sampling whole.
			if base.Sampling.MaxNew == 0 {
				stop := base.Sampling.Stop
				base.Sampling = def.Sampling
				if stop != nil {
					base.Sampling.Stop = stop
				}
			}
			if ov.Temperature != nil {
				base.Sampling.Temperature = *ov.Temperature
			}
			if ov.TopP != nil {
				base.Sampling.TopP = *ov.TopP
			}
			if ov.MaxNew > 0 {
				base.Sampling.MaxNew = ov.MaxNew
			}
			for _, pol := range policies {
				for s := 0; s < samples; s++ {
					req := base
					req.Messages = append([]llm.Message(nil), base.Messages...)
					req.Sampling.Stop = append([]string(nil), base.Sampling.Stop...)
					req.Policy = pol
					req.Sampling.Seed = SampleSeed(runSeed, lb.Bench.Name(), it.ID, s)
					req.Key = Key{lb.Bench.Name(), it.ID, pol, s}.String()
					tasks = append(tasks, Task{Bench: lb.Bench, Item: it, Policy: pol, Sample: s, Request: req})
				}
			}
		}
	}
	return tasks, nil
}

// PromptHash is the sha256 (hex) of what a request asks the model: its messages or raw prompt.
func PromptHash(req llm.Request) string {
	h := sha256.New()
	if len(req.Messages) > 0 {
		b, _ := json.Marshal(req.Messages)
		h.Write([]byte("messages\x00"))
		h.Write(b)
	} else {
		h.Write([]byte("prompt\x00"))
		h.Write([]byte(req.Prompt))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Progress receives one call per finished record. Implementations must be safe for concurrent use.
type Progress interface {
	Record(r Record, t *Timing)
}

// Runner executes tasks against a backend and journals one record per task.
type Runner struct {
	Backend llm.Generator
	Store   *Store
	// RunID and BackendID are copied into every record.
	RunID, BackendID string
	// Concurrency bounds the requests in flight on the backend; GradeConcurrency bounds graders running at once.
	Concurrency, GradeConcurrency int
	// RequestTimeout bounds one request (0: none).
	RequestTimeout time.Duration
	// RetryErrors re-runs tasks whose stored record is an error record.
	RetryErrors bool
	// StopAfterUnreachable stops the run when that many requests in a row fail with llm.ErrUnreachable (the
	// endpoint is down for good); those requests are not recorded. 0: DefaultStopAfterUnreachable; negative: never.
	StopAfterUnreachable int
	Progress             Progress
}

// DefaultStopAfterUnreachable is Runner.StopAfterUnreachable's default.
const DefaultStopAfterUnreachable = 8

// Summary counts what a Run did.
type Summary struct {
	Total, Skipped, Done, Errors int
	// Stopped is set when the run stopped early (interrupted, or the backend's quota ran out).
	Stopped    bool
	StopReason string
}

// Pending returns the tasks that have no record yet (or an error record, with RetryErrors).
func (r *Runner) Pending(tasks []Task) []Task {
	var out []Task
	for _, t := range tasks {
		if !r.Store.Has(t.Key(), r.RetryErrors) {
			out = append(out, t)
		}
	}
	return out
}

type generated struct {
	task  Task
	out   llm.Output
	first string // first pass of a chained benchmark
	err   error
	dur   time.Duration
}

// followUp runs the second pass of a chained benchmark and folds both passes into one output.
func (r *Runner) followUp(ctx context.Context, ch Chained, t Task, first llm.Output) (llm.Output, error) {
	req, ok, err := ch.FollowUp(t.Item, first.Text)
	if err != nil || !ok {
		return first, err
	}
	req.Key, req.Policy, req.Sampling.Seed = t.Request.Key, t.Request.Policy, t.Request.Sampling.Seed
	out, err := r.Backend.Generate(ctx, req)
	if err != nil {
		return out, fmt.Errorf("second pass: %w", err)
	}
	out.PromptTokens += first.PromptTokens
	out.OutputTokens += first.OutputTokens
	out.PrefillMS += first.PrefillMS
	out.DecodeMS += first.DecodeMS
	out.Cache.KVBytes = max(out.Cache.KVBytes, first.Cache.KVBytes)
	out.Cache.Capacity = max(out.Cache.Capacity, first.Cache.Capacity)
	out.Seeded = out.Seeded && first.Seeded
	return out, nil
}

// Run executes every pending task. It returns when all are journaled, or when ctx is cancelled or the backend reports
// an exhausted quota: then Summary.Stopped is set and the finished records are all saved, so re-running resumes.
// Errors of single requests become error records; Run's error is reserved for failures of the store itself.
func (r *Runner) Run(ctx context.Context, tasks []Task) (Summary, error) {
	sum := Summary{Total: len(tasks)}
	pending := r.Pending(tasks)
	sum.Skipped = len(tasks) - len(pending)
	conc := max(r.Concurrency, 1)
	gconc := max(r.GradeConcurrency, 1)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	results := make(chan generated, conc)

	var gen errgroup.Group
	gen.SetLimit(conc)
	go func() {
		for _, t := range pending {
			if ctx.Err() != nil {
				break
			}
			gen.Go(func() error {
				if ctx.Err() != nil {
					return nil
				}
				rctx, rcancel := ctx, context.CancelFunc(func() {})
				if r.RequestTimeout > 0 {
					rctx, rcancel = context.WithTimeout(ctx, r.RequestTimeout)
				}
				start := time.Now()
				out, err := r.Backend.Generate(rctx, t.Request)
				first := ""
				if ch, ok := t.Bench.(Chained); ok && err == nil {
					first = out.Text
					out, err = r.followUp(rctx, ch, t, out)
				}
				rcancel()
				if errors.Is(err, llm.ErrQuotaExhausted) {
					cancel(err)
					return nil
				}
				results <- generated{task: t, out: out, first: first, err: err, dur: time.Since(start)}
				return nil
			})
		}
		gen.Wait()
		close(results)
	}()

	var (
		grade    errgroup.Group
		mu       sync.Mutex
		storeErr error
		done     atomic.Int64
		errs     atomic.Int64
	)
	grade.SetLimit(gconc)
	submit := func(g generated) {
		grade.Go(func() error {
			rec, ok := r.record(ctx, g)
			if !ok {
				return nil // interrupted: not recorded, redone on resume
			}
			tm := &Timing{Bench: rec.Bench, ItemID: rec.ItemID, Policy: rec.Policy, Sample: rec.Sample,
				PrefillMS: g.out.PrefillMS, DecodeMS: g.out.DecodeMS, TotalMS: float64(g.dur.Microseconds()) / 1000,
				OutputTokens: g.out.OutputTokens}
			if err := r.Store.Append(rec, tm); err != nil {
				mu.Lock()
				if storeErr == nil {
					storeErr = err
				}
				mu.Unlock()
				cancel(err)
				return nil
			}
			done.Add(1)
			if rec.IsError() {
				errs.Add(1)
			}
			if r.Progress != nil {
				r.Progress.Record(rec, tm)
			}
			return nil
		})
	}
	// Failures to connect are held back while they come in a row: when limit of them do, the endpoint is down
	// for good and the run stops without recording them (a resumed run sends them again); a request that reaches
	// the endpoint in between breaks the streak, and the held failures become error records.
	limit := r.StopAfterUnreachable
	if limit == 0 {
		limit = DefaultStopAfterUnreachable
	}
	var held []generated
	for g := range results {
		unreachable := g.err != nil && errors.Is(g.err, llm.ErrUnreachable)
		if limit > 0 && unreachable && ctx.Err() == nil {
			held = append(held, g)
			if len(held) >= limit {
				cancel(fmt.Errorf("%w: the last %d requests could not connect (last: %v)", llm.ErrUnreachable, len(held), g.err))
				held = nil
			}
			continue
		}
		if !unreachable {
			for _, h := range held {
				submit(h)
			}
			held = nil
		}
		submit(g)
	}
	for _, h := range held { // the run ended with a shorter streak: they are error records
		submit(h)
	}
	grade.Wait()
	sum.Done = int(done.Load())
	sum.Errors = int(errs.Load())
	if cause := context.Cause(ctx); cause != nil && sum.Done+sum.Skipped < sum.Total {
		sum.Stopped = true
		sum.StopReason = cause.Error()
	}
	return sum, storeErr
}

// record turns a generation result into a record. ok is false when the request was interrupted by the run stopping
// (such a task is not recorded, so that a resumed run performs it).
func (r *Runner) record(ctx context.Context, g generated) (Record, bool) {
	t := g.task
	rec := Record{
		RunID: r.RunID, Bench: t.Bench.Name(), ItemID: t.Item.ID, Policy: t.Policy, Sample: t.Sample,
		Seed: t.Request.Sampling.Seed, PromptHash: PromptHash(t.Request), Backend: r.BackendID,
		Tags: TagString(t.Item.Tags),
	}
	if g.err != nil {
		switch {
		case ctx.Err() != nil && (errors.Is(g.err, context.Canceled) || errors.Is(g.err, context.DeadlineExceeded) || errors.Is(ctx.Err(), g.err)):
			return rec, false
		case errors.Is(g.err, llm.ErrContextOverflow):
			rec.ErrorKind = llm.ErrKindContextOverflow
		case errors.Is(g.err, context.DeadlineExceeded):
			rec.ErrorKind = llm.ErrKindTimeout
		default:
			rec.ErrorKind = llm.ErrKindBackend
		}
		if ctx.Err() != nil && rec.ErrorKind != llm.ErrKindContextOverflow {
			return rec, false
		}
		rec.Error = g.err.Error()
		return rec, true
	}
	o := g.out
	rec.Output = o.Text
	rec.FirstOutput = g.first
	rec.PromptTokens, rec.OutputTokens, rec.FinishReason = o.PromptTokens, o.OutputTokens, o.FinishReason
	rec.Capacity, rec.KVBytes, rec.PolicyDeclared, rec.Seeded = o.Cache.Capacity, o.Cache.KVBytes, o.Cache.Declared, o.Seeded
	gr, err := t.Bench.Grade(ctx, t.Item, o.Text)
	if err != nil {
		if ctx.Err() != nil {
			return rec, false
		}
		rec.ErrorKind, rec.Error = llm.ErrKindGrader, err.Error()
		return rec, true
	}
	rec.Extracted, rec.Correct, rec.Score, rec.Verdict = gr.Extracted, gr.Correct, gr.Score, gr.Verdict
	return rec, true
}

// RunID derives a stable run identifier from the parts of the config that define the records.
func RunID(cfg RunConfig) string {
	id := struct {
		Benches, Policies       []string
		Backend, Model, BaseURL string
		Samples, Limit, MaxNew  int
		Seed                    uint64
		Temperature, TopP       *float64
		BenchOpts, Data         map[string]string
		Tokenizer               string
	}{cfg.Benches, cfg.Policies, cfg.Backend, cfg.Model, cfg.BaseURL, cfg.Samples, cfg.Limit, cfg.MaxNew, cfg.Seed,
		cfg.Temperature, cfg.TopP, cfg.BenchOpts, cfg.Data, cfg.Tokenizer}
	b, _ := json.Marshal(id)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}
