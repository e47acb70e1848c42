package main

import (
	"runtime"

	"github.com/snapeval/snapeval/eval"
)

func numCPU() int { return runtime.NumCPU() }

// defaultRunConfig is the embedded default run: the built-in suite on the shipped model, full cache versus
// SnapStream at three budgets, StreamingLLM and SnapKV at the middle budget.
func defaultRunConfig() eval.RunConfig {
	return eval.RunConfig{
		Benches:     []string{"ruler"},
		Backend:     "cpu",
		Policies:    []string{"snapstream:budget=128", "snapstream:budget=256", "snapstream:budget=512", "streaming:sinks=4,recent=252", "snapkv:topk=224,window=32,kernel=5"},
		Seed:        1,
		Concurrency: 8,
	}
}
