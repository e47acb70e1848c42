// Package session runs one evaluation end to end as a library: Prepare opens the backend, loads the benchmarks and
// builds the run matrix; Execute journals one record per task into the run directory (resuming what is there);
// Finalize writes the columnar copy of the records and says whether the run is complete. The snapeval command is a
// thin shell over it, and so can any program or test be.
package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/cpu/tokenizer"
	"github.com/snapeval/snapeval/chat"
	"github.com/snapeval/snapeval/datasets"
	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/hub"
	"github.com/snapeval/snapeval/llm"
)

// UsageError marks a failure caused by the user's input or setup (flags, config, files, an unusable backend): the
// command exits 2 on it. Other errors are runtime failures.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError; %w in format wraps as fmt.Errorf does.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// IsUsage reports whether err is (or wraps) a usage error.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

// Options are everything a run needs beside the run matrix itself.
type Options struct {
	// Config is the resolved run configuration (see Resolve); its Policies must be canonical with "full" first.
	Config eval.RunConfig
	// Endpoints maps policies to remote deployments (remote backends).
	Endpoints map[string]backends.Endpoint
	// Shard selects a deterministic subset of the items (the zero Shard is the whole run).
	Shard eval.Shard
	// Out is the run directory ("" for a fresh runs/run-YYYYMMDD-HHMMSS).
	Out string
	// GradeConcurrency is the number of graders at once (<= 0: one per CPU).
	GradeConcurrency int
	// RequestTimeout is the deadline of one request (0: none).
	RequestTimeout time.Duration
	// KeepErrors keeps error records on resume instead of retrying them.
	KeepErrors bool
	// Version and Revision identify the snapeval build in the manifest.
	Version, Revision string
	// Warn receives warnings (an unpinned dataset file); nil discards them.
	Warn io.Writer
	// NoPreflight skips the remote server check (for listing prompts, which asks no server anything).
	NoPreflight bool
}

// Session is one prepared run.
type Session struct {
	opts    Options
	be      backends.Backend
	closers []io.Closer
	benches []eval.LoadedBench
	tasks   []eval.Task
	store   *eval.Store
	summary eval.Summary

	// Manifest describes the run; it is written into the run directory by Execute.
	Manifest eval.Manifest
	// Dir is the run directory.
	Dir string
}

// Prepare opens the backend, checks every policy against it, loads the benchmarks and builds the run matrix. It
// sends no generation request. Errors the user can fix are *UsageError.
func Prepare(ctx context.Context, o Options) (_ *Session, err error) {
	cfg := o.Config
	if o.Warn == nil {
		o.Warn = io.Discard
	}
	s := &Session{opts: o}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	bc := backends.Config{Model: cfg.Model, BaseURL: cfg.BaseURL, Options: cfg.BackendOpts, PolicyEndpoints: o.Endpoints,
		Concurrency: cfg.Concurrency}
	s.be, err = backends.Open(ctx, cfg.Backend, bc)
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("opening backend %s: %w", cfg.Backend, err)}
	}
	s.closers = append(s.closers, s.be)
	for _, p := range cfg.Policies {
		if err := s.be.CheckPolicy(p); err != nil {
			return nil, Usagef("backend %s cannot run policy %s: %w", cfg.Backend, p, err)
		}
	}
	tok := s.be.Tokenizer()
	tokSource, approx := "", false // where the prompts' tokenizer comes from, when not the backend's own model
	if ts, ok := s.be.(backends.TokenizerSourcer); ok {
		tokSource = ts.TokenizerSource()
	}
	if a, ok := s.be.(backends.ApproxTokener); ok {
		approx = a.ApproxTokens()
	}
	if cfg.Tokenizer != "" {
		t, err := tokenizer.Load(cfg.Tokenizer)
		if err != nil {
			return nil, Usagef("--tokenizer: %w", err)
		}
		tok, tokSource = t, "file "+cfg.Tokenizer
	}
	var ids []eval.DatasetIdentity
	for _, name := range cfg.Benches {
		bo, err := BenchOptions(cfg, name)
		if err != nil {
			return nil, err
		}
		b, err := eval.OpenBenchmark(name, bo)
		if err != nil {
			if len(cfg.Benches) > 1 {
				return nil, Usagef("%w (with several benchmarks, give an option to one of them as %s.KEY=VALUE)", err, name)
			}
			return nil, &UsageError{Err: err}
		}
		if c, ok := b.(io.Closer); ok {
			s.closers = append(s.closers, c)
		}
		if err := eval.CheckTokenizer(b, tok, cfg.Backend, approx); err != nil {
			return nil, &UsageError{Err: err}
		}
		if eval.EstimatesTokens(b, tok) {
			tokSource = eval.ApproxTokensNote
		}
		items, err := b.Items(ctx, tok)
		if errors.Is(err, os.ErrNotExist) {
			return nil, Usagef("loading %s: %w (download it with `snapeval data pull %s`, or pass --data %s=PATH)", name, err, name, name)
		}
		if err != nil {
			return nil, fmt.Errorf("loading %s: %w", name, err)
		}
		if cfg.Limit > 0 && len(items) > cfg.Limit {
			items = items[:cfg.Limit]
		}
		s.benches = append(s.benches, eval.LoadedBench{Bench: b, Items: items})
		_, fromData := cfg.Data[name]
		id, err := datasetIdentity(name, b, len(items), fromData, o.Warn)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	ov := eval.Overrides{Temperature: cfg.Temperature, TopP: cfg.TopP, MaxNew: cfg.MaxNew, Samples: cfg.Samples}
	if s.tasks, err = eval.BuildTasks(s.benches, cfg.Policies, cfg.Seed, o.Shard, ov); err != nil {
		return nil, err
	}

	// A local model without a chat template it can render cannot answer chat benchmarks: say so now, not as
	// error records.
	var chatTemplate *llm.ChatTemplateInfo
	if ct, ok := s.be.(backends.ChatTemplater); ok {
		info, err := ct.ChatTemplate()
		if err == nil {
			chatTemplate = &info
		}
		for _, t := range s.tasks {
			if err != nil && len(t.Request.Messages) > 0 {
				return nil, Usagef("benchmark %s sends chat messages but they cannot be rendered: %v "+
					"(set --backend-opt chat_style=STYLE, one of %s, or chat_template=FILE.jinja)", t.Bench.Name(), err, strings.Join(chat.Styles(), ", "))
			}
		}
	}
	// A remote server that cannot produce the run's max new tokens fails the run at once, not request by request.
	if pf, ok := s.be.(backends.Preflighter); ok && !o.NoPreflight {
		maxNew := 0
		for _, t := range s.tasks {
			maxNew = max(maxNew, t.Request.Sampling.MaxNew)
		}
		if err := pf.Preflight(ctx, 0, maxNew); err != nil {
			return nil, Usagef("preflight: %w", err)
		}
	}

	s.Dir = o.Out
	if s.Dir == "" {
		s.Dir = freshRunDir(filepath.Join("runs", "run-"+time.Now().UTC().Format("20060102-150405")))
	}
	runID := eval.RunID(cfg)
	mcfg := cfg
	mcfg.BaseURL = RedactURL(cfg.BaseURL)
	s.Manifest = eval.Manifest{RunID: runID, Version: o.Version, Revision: o.Revision, Config: mcfg,
		Backend: s.be.Identity(), Datasets: ids, Shard: o.Shard.String(), Planned: len(s.tasks), TokenizerSource: tokSource}
	for spec, ep := range o.Endpoints {
		if s.Manifest.Endpoints == nil {
			s.Manifest.Endpoints = map[string]string{}
		}
		s.Manifest.Endpoints[spec] = ep.Model + " at " + RedactURL(ep.BaseURL)
	}
	if sh, ok := s.be.(backends.Shaper); ok {
		shape := sh.Shape()
		s.Manifest.ModelShape = &shape
	}
	s.Manifest.ChatTemplate = chatTemplate
	if d, ok := s.be.(backends.Describer); ok {
		s.Manifest.BackendInfo = d.BackendInfo()
	}
	return s, nil
}

// Tasks returns the run matrix (this shard's tasks).
func (s *Session) Tasks() []eval.Task { return s.tasks }

// Benchmarks returns the loaded benchmarks.
func (s *Session) Benchmarks() []eval.LoadedBench { return s.benches }

// Open checks that the run directory holds nothing but this run (a resume), opens its record journal and writes
// the manifest. It returns the number of tasks still to do.
func (s *Session) Open() (pending int, err error) {
	if old, err := eval.ReadManifest(s.Dir); err == nil {
		if old.RunID != s.Manifest.RunID || old.Shard != s.Manifest.Shard {
			return 0, Usagef("%s holds another run (run id %s, shard %q; this one is %s, shard %q): choose another --out",
				s.Dir, old.RunID, old.Shard, s.Manifest.RunID, s.Manifest.Shard)
		}
		if old.TokenizerSource != s.Manifest.TokenizerSource {
			src := func(s string) string {
				if s == "" {
					return "the backend's model"
				}
				return s
			}
			return 0, Usagef("%s holds a run whose prompts were sized by the tokenizer of %s; this one's would be by %s: choose another --out",
				s.Dir, src(old.TokenizerSource), src(s.Manifest.TokenizerSource))
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	if s.store, err = eval.OpenStore(s.Dir); err != nil {
		if errors.Is(err, eval.ErrLocked) {
			return 0, &UsageError{Err: err} // another run writes the directory
		}
		return 0, err
	}
	if lk, ok := s.be.(backends.LogKeeper); ok { // a worker's log goes with the run's records
		if err := lk.SetLogDir(s.Dir); err != nil {
			return 0, err
		}
	}
	if err := eval.WriteManifest(s.Dir, s.Manifest); err != nil {
		return 0, err
	}
	return len(s.runner(nil).Pending(s.tasks)), nil
}

func (s *Session) runner(p eval.Progress) *eval.Runner {
	gconc := s.opts.GradeConcurrency
	if gconc <= 0 {
		gconc = runtime.NumCPU()
	}
	return &eval.Runner{Backend: s.be, Store: s.store, RunID: s.Manifest.RunID, BackendID: s.be.Identity(),
		Concurrency: s.opts.Config.Concurrency, GradeConcurrency: gconc, RequestTimeout: s.opts.RequestTimeout,
		RetryErrors: !s.opts.KeepErrors, Progress: p}
}

// Execute runs every pending task, journaling each record as it is graded. It returns when all are done, when ctx
// is cancelled, or when the runner stops the run (a quota).
func (s *Session) Execute(ctx context.Context, p eval.Progress) (eval.Summary, error) {
	if s.store == nil {
		if _, err := s.Open(); err != nil {
			return eval.Summary{}, err
		}
	}
	sum, err := s.runner(p).Run(ctx, s.tasks)
	s.summary = sum
	return sum, err
}

// Result is what a finished (or stopped) run holds.
type Result struct {
	// Records are this run's records, sorted (benchmark, policy order, item, sample).
	Records []eval.Record
	// Planned, Errors and Missing count the run matrix's records, the error records and those not produced.
	Planned, Errors, Missing int
	// ErrorKinds counts the error records by kind.
	ErrorKinds map[string]int
}

// Incomplete returns the error the command exits 3 with when the run is not complete, nil when it is.
func (s *Session) Incomplete(r Result) error {
	switch {
	case s.summary.Stopped || r.Missing > 0:
		return fmt.Errorf("run stopped (%s) with %d of %d records missing: re-run the same command to resume",
			s.summary.StopReason, r.Missing, r.Planned)
	case r.Errors > 0:
		return errors.New(eval.ErrorSummary(r.ErrorKinds, r.Planned, s.Dir))
	}
	return nil
}

// Finalize writes the columnar copy of exactly this run's records (records.parquet, sorted) and counts them.
func (s *Session) Finalize() (Result, error) {
	want := map[eval.Key]bool{}
	for _, t := range s.tasks {
		want[t.Key()] = true
	}
	r := Result{Planned: len(s.tasks), ErrorKinds: map[string]int{}}
	for _, rec := range s.store.Records() {
		if want[rec.Key()] {
			r.Records = append(r.Records, rec)
			if rec.IsError() {
				r.Errors++
				r.ErrorKinds[rec.ErrorKind]++
			}
		}
	}
	eval.SortRecords(r.Records, s.opts.Config.Benches, s.opts.Config.Policies)
	r.Missing = r.Planned - len(r.Records)
	if err := eval.WriteParquet(filepath.Join(s.Dir, eval.RecordsFile), r.Records); err != nil {
		return r, err
	}
	return r, nil
}

// Close closes the record journal, the benchmarks and the backend.
func (s *Session) Close() error {
	var errs []error
	if s.store != nil {
		errs = append(errs, s.store.Close())
		s.store = nil
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i].Close())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// datasetIdentity names the data a benchmark loaded: its files and their sha256 (or "generated"). Files read from
// the snapeval cache (not given with --data) are checked against datasets.lock first: a mismatch stops the run
// before any request, so a run never silently uses other data than the lock pins.
func datasetIdentity(name string, b eval.Benchmark, items int, fromData bool, warn io.Writer) (eval.DatasetIdentity, error) {
	id := eval.DatasetIdentity{Bench: name, Items: items}
	if di, ok := b.(eval.DatasetIdentifier); ok {
		return di.Dataset(), nil
	}
	fb, ok := b.(eval.FileBacked)
	if !ok {
		id.Source = "generated"
		return id, nil
	}
	verified := map[string]datasets.Status{}
	if !fromData {
		if lock, _, err := datasets.DefaultLock(); err == nil {
			if sts, err := datasets.Verify(lock, "", name); err == nil {
				for _, st := range sts {
					verified[st.Local] = st
				}
			}
		}
	}
	var srcs, sums []string
	for _, f := range fb.Files() {
		st, ok := verified[f]
		switch {
		case ok && st.State == "mismatch":
			return id, Usagef("%s: %s does not match datasets.lock (%s): run `snapeval data pull %s` again",
				name, f, st.Detail, name)
		case ok && st.State == "unpinned":
			fmt.Fprintf(warn, "snapeval: warning: %s is not pinned in datasets.lock (sha256 %s recorded in the manifest)\n", f, st.SHA256)
		}
		sum := st.SHA256
		if sum == "" {
			r, err := hub.HashFile(f)
			if err != nil {
				return id, fmt.Errorf("%s: hashing %s: %w", name, f, err)
			}
			sum = r.SHA256
		}
		srcs = append(srcs, f)
		sums = append(sums, sum)
	}
	id.Source, id.SHA256 = strings.Join(srcs, ","), strings.Join(sums, ",")
	return id, nil
}

// freshRunDir returns base, or base-2, base-3, ... : the first that does not exist yet.
func freshRunDir(base string) string {
	dir := base
	for i := 2; ; i++ {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return dir
		}
		dir = fmt.Sprintf("%s-%d", base, i)
	}
}

// optionsFor selects a benchmark's options: keys written NAME.key go to benchmark NAME only; plain keys go to
// every benchmark of the run.
func optionsFor(opts map[string]string, name string) map[string]string {
	if len(opts) == 0 {
		return nil
	}
	out := map[string]string{}
	for k, v := range opts {
		if b, key, ok := strings.Cut(k, "."); ok {
			if b == name {
				out[key] = v
			}
			continue
		}
		out[k] = v
	}
	return out
}

// RedactURL drops credentials and the query from a URL before it is written anywhere (the manifest).
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if s == "" {
			return ""
		}
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	return u.String()
}

// BenchOptions builds a benchmark's options: the shared bench options, its own (NAME.key) ones and its --data file
// or directory.
func BenchOptions(cfg eval.RunConfig, name string) (eval.BenchOptions, error) {
	bo := eval.BenchOptions{Seed: cfg.Seed, Options: optionsFor(cfg.BenchOpts, name)}
	if p, ok := cfg.Data[name]; ok {
		fi, err := os.Stat(p)
		if err != nil {
			return bo, Usagef("--data %s=%s: %w", name, p, err)
		}
		if fi.IsDir() {
			bo.DataDir = p
		} else {
			bo.Files = []string{p}
		}
	}
	for b := range cfg.Data {
		if !slices.Contains(cfg.Benches, b) {
			return bo, Usagef("--data names %q, which is not a chosen benchmark (%v)", b, cfg.Benches)
		}
	}
	return bo, nil
}
