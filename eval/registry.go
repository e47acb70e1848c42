package eval

import (
	"fmt"
	"sort"
	"sync"
)

// BenchOptions configures how a benchmark loads its items.
type BenchOptions struct {
	// DataDir overrides where the benchmark's files are looked up (default: the snapeval dataset cache).
	DataDir string
	// Files lists explicit input files (JSONL/JSON/parquet) that replace the locked dataset when set.
	Files []string
	// Seed is the run seed, for benchmarks that generate items (the synthetic suite).
	Seed uint64
	// Options holds benchmark-specific settings from flags or YAML (e.g. "max_len", "release", "lengths").
	Options map[string]string
}

// BenchmarkFactory builds a benchmark from its options.
type BenchmarkFactory func(opts BenchOptions) (Benchmark, error)

// RowParser is implemented by benchmarks whose items can be read from one upstream JSON row, so that
// `snapeval grade` can re-grade outputs produced elsewhere with exactly the runner's grader.
type RowParser interface {
	ParseRow(raw []byte) (Item, error)
}

var (
	benchMu      sync.Mutex
	benchFactory = map[string]BenchmarkFactory{}
)

// RegisterBenchmark makes a benchmark available by name. It panics on a duplicate name.
func RegisterBenchmark(name string, f BenchmarkFactory) {
	benchMu.Lock()
	defer benchMu.Unlock()
	if _, dup := benchFactory[name]; dup {
		panic("eval: duplicate benchmark " + name)
	}
	benchFactory[name] = f
}

// OpenBenchmark builds the benchmark registered under name.
func OpenBenchmark(name string, opts BenchOptions) (Benchmark, error) {
	benchMu.Lock()
	f, ok := benchFactory[name]
	benchMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("unknown benchmark %q (known: %v)", name, BenchmarkNames())
	}
	return f(opts)
}

// BenchmarkNames lists the registered benchmarks in sorted order.
func BenchmarkNames() []string {
	benchMu.Lock()
	defer benchMu.Unlock()
	names := make([]string, 0, len(benchFactory))
	for n := range benchFactory {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
