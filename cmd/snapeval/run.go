package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/cpu/tokenizer"
	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/datasets"
	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/hub"
	"github.com/snapeval/snapeval/llm"
)

// runOptions are the flags of `snapeval run`.
type runOptions struct {
	ConfigFile       string
	Benches          []string
	Backend          string
	Model            string
	BaseURL          string
	Policies         []string
	Samples          int
	Limit            int
	Seed             uint64
	Temperature      float64
	TopP             float64
	MaxNew           int
	Concurrency      int
	GradeConcurrency int
	Shard            string
	Out              string
	Quiet            bool
	LogEvery         int
	RequestTimeout   time.Duration
	KeepErrors       bool
	BenchOpts        []string
	BackendOpts      []string
	Data             []string
	Tokenizer        string
	NoReport         bool

	// set reports which flags the user gave (flags override the config file).
	set func(name string) bool
}

// fileConfig is the YAML run configuration: the run matrix plus remote endpoints per policy.
type fileConfig struct {
	eval.RunConfig `yaml:",inline"`
	Endpoints      map[string]backends.Endpoint `yaml:"endpoints"`
}

func init() {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run benchmarks under a full cache and under compressed-cache policies, and write records and a report",
		Long: `run evaluates every item of the chosen benchmarks once with a full KV cache (the baseline, always included)
and once per --policy, k samples each, grades every output with the benchmark's official grader, and journals one
record per (benchmark, item, policy, sample) into --out. Re-running the same command with the same --out resumes:
finished records are kept and only missing ones (and error records, unless --keep-errors) are produced.

With no flags it runs the embedded default: the built-in RULER-style suite on the small model shipped with
snapeval, on the pure-Go CPU backend, full cache versus SnapStream at three budgets, StreamingLLM and SnapKV.

Exit codes: 0 complete, 2 usage error, 3 incomplete (error records left, or the run was stopped).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.set = func(name string) bool { return cmd.Flags().Changed(name) }
			return runRun(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ConfigFile, "config", "", "YAML run configuration (flags override it)")
	f.StringSliceVar(&o.Benches, "bench", nil, "benchmarks to run (repeatable or comma-separated): "+strings.Join(benchNames(), ", "))
	f.StringVar(&o.Backend, "backend", "cpu", "inference backend: cpu, openai, sn40l")
	f.StringVar(&o.Model, "model", "", "model: a local checkpoint directory, a Hub id org/name[@rev], or a served model name (default: the embedded model)")
	f.StringVar(&o.BaseURL, "base-url", "", "base URL of a remote backend")
	f.StringArrayVar(&o.Policies, "policy", nil, "cache policy spec (repeatable), e.g. snapstream:budget=4096, or with int8 weights snapstream:budget=4096@int8; full is always included")
	f.IntVar(&o.Samples, "samples", 0, "samples per item (default: the benchmark's official count)")
	f.IntVar(&o.Limit, "limit", 0, "run only the first N items of each benchmark")
	f.Uint64Var(&o.Seed, "seed", 1, "run seed: per-sample seeds and generated suites derive from it")
	f.Float64Var(&o.Temperature, "temperature", 0, "sampling temperature (default: the benchmark's official value)")
	f.Float64Var(&o.TopP, "top-p", 0, "top-p (default: the benchmark's official value)")
	f.IntVar(&o.MaxNew, "max-new", 0, "max new tokens (default: the benchmark's official value)")
	f.IntVar(&o.Concurrency, "concurrency", 8, "requests in flight on the backend")
	f.IntVar(&o.GradeConcurrency, "grade-concurrency", 0, "graders running at once (default: number of CPUs)")
	f.StringVar(&o.Shard, "shard", "", "run only shard i/n of the items (e.g. $JOB_COMPLETION_INDEX/8); merge the shards with: snapeval report DIR...")
	f.StringVar(&o.Out, "out", "", "run directory (default: a fresh runs/run-YYYYMMDD-HHMMSS); an existing run directory is resumed")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "no progress output")
	f.IntVar(&o.LogEvery, "log-every", 25, "when stderr is not a terminal, log one progress line every N records")
	f.DurationVar(&o.RequestTimeout, "request-timeout", 0, "deadline of one request (0: none)")
	f.BoolVar(&o.KeepErrors, "keep-errors", false, "on resume, keep error records instead of retrying them")
	f.StringArrayVar(&o.BenchOpts, "bench-opt", nil, "benchmark option key=value, or BENCH.key=value for one benchmark of several (repeatable), e.g. lengths=1024,2048")
	f.StringArrayVar(&o.BackendOpts, "backend-opt", nil, "backend option key=value (repeatable), e.g. slots=8")
	f.StringArrayVar(&o.Data, "data", nil, "BENCH=PATH: read a benchmark from a local file or directory instead of its locked dataset (repeatable)")
	f.StringVar(&o.Tokenizer, "tokenizer", "", "tokenizer.json of the served model, for benchmarks that size or truncate prompts in tokens (remote backends have none of their own)")
	f.BoolVar(&o.NoReport, "no-report", false, "do not write the report when the run ends")
	rootCmd.AddCommand(cmd)
}

func benchNames() []string { return eval.BenchmarkNames() }

// resolveConfig merges defaults, the YAML file and flags (in that order of increasing precedence).
func resolveConfig(o *runOptions) (eval.RunConfig, map[string]backends.Endpoint, error) {
	cfg := defaultRunConfig()
	var endpoints map[string]backends.Endpoint
	set := o.set
	if set == nil {
		set = func(string) bool { return false }
	}
	if o.ConfigFile != "" {
		data, err := os.ReadFile(o.ConfigFile)
		if err != nil {
			return cfg, nil, usageErrorf("reading config: %v", err)
		}
		var fc fileConfig
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
			msg := strings.ReplaceAll(err.Error(), " in type main.fileConfig", "")
			return cfg, nil, usageErrorf("%s: %s (known keys: benches, backend, model, base_url, policies, samples, limit, seed, "+
				"temperature, top_p, max_new, concurrency, bench_options, backend_options, data, tokenizer, endpoints)", o.ConfigFile, msg)
		}
		mergeConfig(&cfg, fc.RunConfig)
		endpoints = fc.Endpoints
	}
	if set("bench") {
		cfg.Benches = o.Benches
	}
	if set("backend") {
		cfg.Backend = o.Backend
	}
	if set("model") {
		cfg.Model = o.Model
	}
	if set("base-url") {
		cfg.BaseURL = o.BaseURL
	}
	if set("policy") {
		cfg.Policies = o.Policies
	}
	if set("samples") {
		cfg.Samples = o.Samples
	}
	if set("limit") {
		cfg.Limit = o.Limit
	}
	if set("seed") {
		cfg.Seed = o.Seed
	}
	if set("temperature") {
		t := o.Temperature
		cfg.Temperature = &t
	}
	if set("top-p") {
		p := o.TopP
		cfg.TopP = &p
	}
	if set("tokenizer") {
		cfg.Tokenizer = o.Tokenizer
	}
	if set("max-new") {
		cfg.MaxNew = o.MaxNew
	}
	if set("concurrency") || cfg.Concurrency == 0 {
		cfg.Concurrency = o.Concurrency
	}
	var err error
	if cfg.BenchOpts, err = mergeKV(cfg.BenchOpts, o.BenchOpts, "--bench-opt"); err != nil {
		return cfg, nil, err
	}
	if cfg.BackendOpts, err = mergeKV(cfg.BackendOpts, o.BackendOpts, "--backend-opt"); err != nil {
		return cfg, nil, err
	}
	if cfg.Data, err = mergeKV(cfg.Data, o.Data, "--data"); err != nil {
		return cfg, nil, err
	}
	if len(cfg.Benches) == 0 {
		return cfg, nil, usageErrorf("no benchmark chosen (--bench)")
	}
	if cfg.Samples < 0 || cfg.Limit < 0 || cfg.MaxNew < 0 || cfg.Concurrency < 1 {
		return cfg, nil, usageErrorf("--samples, --limit and --max-new must be >= 0 and --concurrency >= 1")
	}
	pols, err := canonicalPolicies(cfg.Policies)
	if err != nil {
		return cfg, nil, err
	}
	cfg.Policies = pols
	return cfg, endpoints, nil
}

func mergeConfig(dst *eval.RunConfig, src eval.RunConfig) {
	if len(src.Benches) > 0 {
		dst.Benches = src.Benches
	}
	if src.Backend != "" {
		dst.Backend = src.Backend
	}
	if src.Model != "" {
		dst.Model = src.Model
	}
	if src.BaseURL != "" {
		dst.BaseURL = src.BaseURL
	}
	if len(src.Policies) > 0 {
		dst.Policies = src.Policies
	}
	if src.Samples != 0 {
		dst.Samples = src.Samples
	}
	if src.Limit != 0 {
		dst.Limit = src.Limit
	}
	if src.Seed != 0 {
		dst.Seed = src.Seed
	}
	if src.Temperature != nil {
		dst.Temperature = src.Temperature
	}
	if src.TopP != nil {
		dst.TopP = src.TopP
	}
	if src.MaxNew != 0 {
		dst.MaxNew = src.MaxNew
	}
	if src.Concurrency != 0 {
		dst.Concurrency = src.Concurrency
	}
	if src.BenchOpts != nil {
		dst.BenchOpts = src.BenchOpts
	}
	if src.BackendOpts != nil {
		dst.BackendOpts = src.BackendOpts
	}
	if src.Data != nil {
		dst.Data = src.Data
	}
	if src.Tokenizer != "" {
		dst.Tokenizer = src.Tokenizer
	}
}

func mergeKV(base map[string]string, kvs []string, flag string) (map[string]string, error) {
	if len(kvs) == 0 {
		return base, nil
	}
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageErrorf("%s %q: want key=value", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

// canonicalPolicies parses every spec, prints it canonically, puts the full baseline first and refuses duplicates.
func canonicalPolicies(specs []string) ([]string, error) {
	out := []string{"full"}
	seen := map[string]bool{"full": true}
	for _, s := range specs {
		p, err := compress.Parse(s)
		if err != nil {
			return nil, usageErrorf("--policy %q: %v", s, err)
		}
		c := p.String()
		if seen[c] {
			if c == "full" {
				continue
			}
			return nil, usageErrorf("--policy %q given twice", c)
		}
		seen[c] = true
		out = append(out, c)
	}
	return out, nil
}

func runRun(ctx context.Context, o *runOptions, stdout, stderr io.Writer) error {
	cfg, endpoints, err := resolveConfig(o)
	if err != nil {
		return err
	}
	shard, err := eval.ParseShard(o.Shard)
	if err != nil {
		return usageErrorf("%v", err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	be, err := openBackend(ctx, cfg, endpoints)
	if err != nil {
		return err
	}
	defer be.Close()
	for _, p := range cfg.Policies {
		if err := be.CheckPolicy(p); err != nil {
			return usageErrorf("backend %s cannot run policy %s: %v", cfg.Backend, p, err)
		}
	}

	tok := be.Tokenizer()
	if cfg.Tokenizer != "" {
		t, err := tokenizer.Load(cfg.Tokenizer)
		if err != nil {
			return usageErrorf("--tokenizer: %v", err)
		}
		tok = t
	}
	var loadedB []eval.LoadedBench
	var dsIDs []eval.DatasetIdentity
	for _, name := range cfg.Benches {
		bo, err := benchOptions(cfg, name)
		if err != nil {
			return err
		}
		b, err := eval.OpenBenchmark(name, bo)
		if err != nil {
			if len(cfg.Benches) > 1 {
				return usageErrorf("%v (with several benchmarks, give an option to one of them as %s.KEY=VALUE)", err, name)
			}
			return usageErrorf("%v", err)
		}
		if c, ok := b.(io.Closer); ok {
			defer c.Close()
		}
		items, err := b.Items(ctx, tok)
		if errors.Is(err, os.ErrNotExist) {
			return usageErrorf("loading %s: %v (download it with `snapeval data pull %s`, or pass --data %s=PATH)", name, err, name, name)
		}
		if err != nil {
			return fmt.Errorf("loading %s: %w", name, err)
		}
		if cfg.Limit > 0 && len(items) > cfg.Limit {
			items = items[:cfg.Limit]
		}
		loadedB = append(loadedB, eval.LoadedBench{Bench: b, Items: items})
		_, fromData := cfg.Data[name]
		id, err := datasetIdentity(name, b, len(items), fromData, stderr)
		if err != nil {
			return err
		}
		dsIDs = append(dsIDs, id)
	}
	ov := eval.Overrides{Temperature: cfg.Temperature, TopP: cfg.TopP, MaxNew: cfg.MaxNew, Samples: cfg.Samples}
	tasks, err := eval.BuildTasks(loadedB, cfg.Policies, cfg.Seed, shard, ov)
	if err != nil {
		return err
	}

	// A local model without a chat template cannot answer chat benchmarks: say so now, not as error records.
	if cs, ok := be.(interface{ ChatStyle() string }); ok && cs.ChatStyle() == "" {
		for _, t := range tasks {
			if len(t.Request.Messages) > 0 {
				return usageErrorf("benchmark %s sends chat messages but the model has no recognised chat template: "+
					"set --backend-opt chat_style=STYLE (one of %s)", t.Bench.Name(), strings.Join(tokenizer.Styles(), ", "))
			}
		}
	}

	// A remote server that cannot produce the run's max new tokens fails the run at once, not request by request.
	if pf, ok := be.(interface {
		Preflight(ctx context.Context, maxPrompt, maxNew int) error
	}); ok {
		maxNew := 0
		for _, t := range tasks {
			maxNew = max(maxNew, t.Request.Sampling.MaxNew)
		}
		if err := pf.Preflight(ctx, 0, maxNew); err != nil {
			return usageErrorf("preflight: %v", err)
		}
	}

	out := o.Out
	if out == "" {
		out = freshRunDir(filepath.Join("runs", "run-"+time.Now().UTC().Format("20060102-150405")))
	}
	runID := eval.RunID(cfg)
	mcfg := cfg
	mcfg.BaseURL = redactURL(cfg.BaseURL)
	man := eval.Manifest{RunID: runID, Version: version, Revision: gitRevision(), Config: mcfg, Backend: be.Identity(),
		Datasets: dsIDs, Shard: shard.String(), Planned: len(tasks)}
	for spec, ep := range endpoints {
		if man.Endpoints == nil {
			man.Endpoints = map[string]string{}
		}
		man.Endpoints[spec] = ep.Model + " at " + redactURL(ep.BaseURL)
	}
	if s, ok := be.(interface{ Shape() llm.ModelShape }); ok {
		shape := s.Shape()
		man.ModelShape = &shape
	}
	if old, err := eval.ReadManifest(out); err == nil {
		if old.RunID != runID || old.Shard != man.Shard {
			return usageErrorf("%s holds another run (run id %s, shard %q; this one is %s, shard %q): choose another --out",
				out, old.RunID, old.Shard, runID, man.Shard)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	st, err := eval.OpenStore(out)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := eval.WriteManifest(out, man); err != nil {
		return err
	}

	gconc := o.GradeConcurrency
	if gconc <= 0 {
		gconc = numCPU()
	}
	r := &eval.Runner{Backend: be, Store: st, RunID: runID, BackendID: be.Identity(), Concurrency: cfg.Concurrency,
		GradeConcurrency: gconc, RequestTimeout: o.RequestTimeout, RetryErrors: !o.KeepErrors}
	pending := len(r.Pending(tasks))
	fmt.Fprintf(stderr, "snapeval: run %s in %s: %d benchmark(s), %d policies, %d records (%d to do)\n",
		runID, out, len(loadedB), len(cfg.Policies), len(tasks), pending)
	prog := newProgress(stderr, pending, o.LogEvery, o.Quiet)
	r.Progress = prog
	sum, err := r.Run(ctx, tasks)
	prog.finish()
	if err != nil {
		return err
	}

	// The columnar copy holds exactly this run's records, sorted.
	want := map[eval.Key]bool{}
	for _, t := range tasks {
		want[t.Key()] = true
	}
	var recs []eval.Record
	errCount := 0
	for _, rec := range st.Records() {
		if want[rec.Key()] {
			recs = append(recs, rec)
			if rec.IsError() {
				errCount++
			}
		}
	}
	eval.SortRecords(recs, cfg.Benches, cfg.Policies)
	if err := eval.WriteParquet(filepath.Join(out, eval.RecordsFile), recs); err != nil {
		return err
	}
	if !o.NoReport && len(recs) > 0 {
		if err := writeRunReport(out, stdout); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
	}
	fmt.Fprintf(stdout, "run directory: %s\n", out)
	missing := len(tasks) - len(recs)
	switch {
	case sum.Stopped || missing > 0:
		return &exitError{code: exitIncomplete, err: fmt.Errorf("run stopped (%s) with %d of %d records missing: re-run the same command to resume",
			sum.StopReason, missing, len(tasks))}
	case errCount > 0:
		return &exitError{code: exitIncomplete, err: fmt.Errorf("%d of %d records are errors (see `snapeval export %s`); re-run to retry them",
			errCount, len(tasks), out)}
	}
	return nil
}

// datasetIdentity names the data a benchmark loaded: its files and their sha256 (or "generated"). Files read from
// the snapeval cache (not given with --data) are checked against datasets.lock first: a mismatch stops the run
// before any request, so a run never silently uses other data than the lock pins.
func datasetIdentity(name string, b eval.Benchmark, items int, fromData bool, stderr io.Writer) (eval.DatasetIdentity, error) {
	id := eval.DatasetIdentity{Bench: name, Items: items}
	if di, ok := b.(eval.DatasetIdentifier); ok {
		return di.Dataset(), nil
	}
	fb, ok := b.(interface{ Files() []string })
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
			return id, usageErrorf("%s: %s does not match datasets.lock (%s): run `snapeval data pull %s` again",
				name, f, st.Detail, name)
		case ok && st.State == "unpinned":
			fmt.Fprintf(stderr, "snapeval: warning: %s is not pinned in datasets.lock (sha256 %s recorded in the manifest)\n", f, st.SHA256)
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

// redactURL drops credentials and the query from a URL before it is written anywhere (the manifest).
func redactURL(s string) string {
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

// benchOptions builds a benchmark's options: the shared --bench-opt values and its --data file or directory.
func benchOptions(cfg eval.RunConfig, name string) (eval.BenchOptions, error) {
	bo := eval.BenchOptions{Seed: cfg.Seed, Options: optionsFor(cfg.BenchOpts, name)}
	if p, ok := cfg.Data[name]; ok {
		fi, err := os.Stat(p)
		if err != nil {
			return bo, usageErrorf("--data %s=%s: %v", name, p, err)
		}
		if fi.IsDir() {
			bo.DataDir = p
		} else {
			bo.Files = []string{p}
		}
	}
	for b := range cfg.Data {
		if !slices.Contains(cfg.Benches, b) {
			return bo, usageErrorf("--data names %q, which is not a chosen benchmark (%v)", b, cfg.Benches)
		}
	}
	return bo, nil
}

func openBackend(ctx context.Context, cfg eval.RunConfig, endpoints map[string]backends.Endpoint) (backends.Backend, error) {
	bc := backends.Config{Model: cfg.Model, BaseURL: cfg.BaseURL, Options: cfg.BackendOpts, PolicyEndpoints: endpoints,
		Concurrency: cfg.Concurrency}
	be, err := backends.Open(ctx, cfg.Backend, bc)
	if err != nil {
		return nil, fmt.Errorf("opening backend %s: %w", cfg.Backend, err)
	}
	return be, nil
}
