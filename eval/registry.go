package eval

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/snapeval/snapeval/internal/registry"
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

var benchmarks = registry.New[BenchmarkFactory]("benchmark")

// RegisterBenchmark makes a benchmark available by name. It panics on a duplicate name.
func RegisterBenchmark(name string, f BenchmarkFactory) { benchmarks.Register(name, f) }

// OpenBenchmark builds the benchmark registered under name.
func OpenBenchmark(name string, opts BenchOptions) (Benchmark, error) {
	f, err := benchmarks.Lookup(name)
	if err != nil {
		return nil, err
	}
	return f(opts)
}

// BenchmarkNames lists the registered benchmarks in sorted order.
func BenchmarkNames() []string { return benchmarks.Names() }

// ParseTokenLengths parses a benchmark's comma list of prompt lengths in tokens ("512,1k,4K": k means 1024), each
// in [1, limit]. Empty fields are skipped; no length at all is an error.
func ParseTokenLengths(s string, limit int) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		mul := 1
		if strings.HasSuffix(f, "k") || strings.HasSuffix(f, "K") {
			mul, f = 1024, f[:len(f)-1]
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("bad length %q", f)
		}
		if n <= 0 || n > limit/mul {
			return nil, fmt.Errorf("length %q out of range (1 to %d tokens)", f, limit)
		}
		out = append(out, n*mul)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no lengths in %q", s)
	}
	return out, nil
}
