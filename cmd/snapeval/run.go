package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/session"
)

// runOptions are the flags of `snapeval run`: the run settings (bound straight into a configuration layer, one
// field per row of session.Settings) and the options of this invocation.
type runOptions struct {
	ConfigFile string
	// Flags holds the values of the run-setting flags; Changed says which the user gave.
	Flags   eval.RunConfig
	Changed func(flag string) bool

	GradeConcurrency int
	Shard            string
	Out              string
	Quiet            bool
	LogEvery         int
	RequestTimeout   time.Duration
	KeepErrors       bool
	NoReport         bool
	// Getenv reads the environment (os.Getenv; tests inject their own).
	Getenv func(string) string
}

func init() {
	o := &runOptions{Getenv: os.Getenv}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run benchmarks under a full cache and under compressed-cache policies, and write records and a report",
		Long: `run evaluates every item of the chosen benchmarks once with a full KV cache (the baseline, always included)
and once per --policy, k samples each, grades every output with the benchmark's official grader, and journals one
record per (benchmark, item, policy, sample) into --out. Re-running the same command with the same --out resumes:
finished records are kept and only missing ones (and error records, unless --keep-errors) are produced.

With no flags it runs the embedded default: the built-in RULER-style suite on the small model shipped with
snapeval, on the pure-Go CPU backend, full cache versus SnapStream at three budgets, StreamingLLM and SnapKV.

Settings come from flags, then the environment (endpoints only: OPENAI_BASE_URL, SAMBANOVA_BASE_URL), then the
--config file, then the defaults.

Exit codes: 0 complete, 2 usage or setup error, 3 incomplete (error records left, or the run was stopped),
4 runtime failure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Changed = cmd.Flags().Changed
			return runRun(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	bindRunSettings(f, o)
	f.IntVar(&o.GradeConcurrency, "grade-concurrency", 0, "graders running at once (default: number of CPUs)")
	f.StringVar(&o.Out, "out", "", "run directory (default: a fresh runs/run-YYYYMMDD-HHMMSS); an existing run directory is resumed")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "no progress output")
	f.IntVar(&o.LogEvery, "log-every", 25, "when stderr is not a terminal, log one progress line every N records")
	f.DurationVar(&o.RequestTimeout, "request-timeout", 0, "deadline of one request (0: none)")
	f.BoolVar(&o.KeepErrors, "keep-errors", false, "on resume, keep error records instead of retrying them")
	f.BoolVar(&o.NoReport, "no-report", false, "do not write the report when the run ends")
	rootCmd.AddCommand(cmd)
}

// bindRunSettings binds the flags that choose what a run evaluates (one per row of session.Settings, plus --config
// and --shard) into o; `snapeval run` and `snapeval prompts` share them.
func bindRunSettings(f *pflag.FlagSet, o *runOptions) {
	c := &o.Flags
	d := session.Default()
	f.StringVar(&o.ConfigFile, "config", "", "YAML run configuration (flags override it)")
	f.StringSliceVar(&c.Benches, "bench", nil, "benchmarks to run (repeatable or comma-separated): "+strings.Join(benchNames(), ", "))
	f.StringVar(&c.Backend, "backend", d.Backend, "inference backend: "+strings.Join(backends.Names(), ", "))
	f.StringVar(&c.Model, "model", "", "model: a local checkpoint directory, a Hub id org/name[@rev], or a served model name (default: the embedded model)")
	f.StringVar(&c.BaseURL, "base-url", "", "base URL of a remote backend (default: $OPENAI_BASE_URL or $SAMBANOVA_BASE_URL)")
	f.StringArrayVar(&c.Policies, "policy", nil, "cache policy spec (repeatable), e.g. snapstream:budget=4096, or with int8 weights snapstream:budget=4096@int8; full is always included")
	f.IntVar(&c.Samples, "samples", 0, "samples per item (default: the benchmark's official count)")
	f.IntVar(&c.Limit, "limit", 0, "run only the first N items of each benchmark")
	f.Uint64Var(&c.Seed, "seed", d.Seed, "run seed: per-sample seeds and generated suites derive from it")
	f.Var(optFloat{&c.Temperature}, "temperature", "sampling temperature (default: the benchmark's official value)")
	f.Var(optFloat{&c.TopP}, "top-p", "top-p (default: the benchmark's official value)")
	f.IntVar(&c.MaxNew, "max-new", 0, "max new tokens (default: the benchmark's official value)")
	f.IntVar(&c.Concurrency, "concurrency", d.Concurrency, "requests in flight on the backend")
	f.Var(kvFlag{&c.BenchOpts}, "bench-opt", "benchmark option key=value, or BENCH.key=value for one benchmark of several (repeatable), e.g. lengths=1024,2048")
	f.Var(kvFlag{&c.BackendOpts}, "backend-opt", "backend option key=value (repeatable), e.g. slots=8")
	f.Var(kvFlag{&c.Data}, "data", "BENCH=PATH: read a benchmark from a local file or directory instead of its locked dataset (repeatable)")
	f.StringVar(&c.Tokenizer, "tokenizer", "", "tokenizer.json of the served model (with the tokenizer_config.json beside it, if any), for benchmarks that size or truncate prompts in tokens (remote backends have none of their own)")
	f.StringVar(&o.Shard, "shard", "", "run only shard i/n of the items (e.g. $JOB_COMPLETION_INDEX/8); merge the shards with: snapeval report DIR...")
}

func benchNames() []string { return eval.BenchmarkNames() }

// optFloat is a float flag that fills an optional (*float64) setting.
type optFloat struct{ p **float64 }

func (v optFloat) String() string {
	if v.p == nil || *v.p == nil {
		return ""
	}
	return strconv.FormatFloat(**v.p, 'g', -1, 64)
}
func (v optFloat) Set(s string) error {
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("want a number")
	}
	*v.p = &x
	return nil
}
func (v optFloat) Type() string { return "float" }

// kvFlag is a repeatable key=value flag that fills a map setting.
type kvFlag struct{ m *map[string]string }

func (v kvFlag) String() string { return "" }
func (v kvFlag) Set(s string) error {
	kv, err := session.ParseKV([]string{s}, "")
	if err != nil {
		return fmt.Errorf("want key=value")
	}
	if *v.m == nil {
		*v.m = map[string]string{}
	}
	for k, x := range kv {
		(*v.m)[k] = x
	}
	return nil
}
func (v kvFlag) Type() string { return "key=value" }

var _ pflag.Value = optFloat{}
var _ pflag.Value = kvFlag{}

// flagKey maps a run setting's flag back to its key.
var flagKey = func() map[string]string {
	m := map[string]string{}
	for _, s := range session.Settings {
		m[s.Key] = s.Flag
	}
	return m
}()

// resolveConfig merges defaults, the YAML file, the environment and the flags through session.Settings.
func resolveConfig(o *runOptions) (eval.RunConfig, map[string]backends.Endpoint, error) {
	changed := o.Changed
	if changed == nil {
		changed = func(string) bool { return false }
	}
	var file session.Layer
	var endpoints map[string]backends.Endpoint
	if o.ConfigFile != "" {
		var err error
		if file, endpoints, err = session.ReadFile(o.ConfigFile); err != nil {
			return eval.RunConfig{}, nil, err
		}
	} else {
		file.Has = func(string) bool { return false }
	}
	flags := session.Layer{Config: o.Flags, Has: func(key string) bool { return changed(flagKey[key]) }}
	cfg, err := session.Resolve(session.Layer{Config: session.Default()}, file, flags, o.Getenv)
	return cfg, endpoints, err
}

func runRun(ctx context.Context, o *runOptions, stdout, stderr io.Writer) error {
	cfg, endpoints, err := resolveConfig(o)
	if err != nil {
		return err
	}
	shard, err := eval.ParseShard(o.Shard)
	if err != nil {
		return usageErrorf("--shard: %w", err)
	}
	ctx, stop := stopOnSignal(ctx, stderr)
	defer stop()

	s, err := session.Prepare(ctx, session.Options{Config: cfg, Endpoints: endpoints, Shard: shard, Out: o.Out,
		GradeConcurrency: o.GradeConcurrency, RequestTimeout: o.RequestTimeout, KeepErrors: o.KeepErrors,
		Version: version, Revision: gitRevision(), Warn: stderr})
	if err != nil {
		return err
	}
	defer s.Close()
	pending, err := s.Open()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "snapeval: run %s in %s: %d benchmark(s), %d policies, %d records (%d to do)\n",
		s.Manifest.RunID, s.Dir, len(s.Benchmarks()), len(cfg.Policies), len(s.Tasks()), pending)
	prog := newProgress(stderr, pending, o.LogEvery, o.Quiet)
	_, err = s.Execute(ctx, prog)
	prog.finish()
	if err != nil {
		return err
	}
	res, err := s.Finalize()
	if err != nil {
		return err
	}
	if !o.NoReport && len(res.Records) > 0 {
		if err := writeRunReport(s.Dir, stdout); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
	}
	fmt.Fprintf(stdout, "run directory: %s\n", s.Dir)
	if err := s.Incomplete(res); err != nil {
		return &exitError{code: exitIncomplete, err: err}
	}
	return nil
}
