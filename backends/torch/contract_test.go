package torch

import (
	"context"
	"os"
	"testing"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/backendtest"
)

// TestContract runs the backend contract suite on the torch backend's Go side over the fake worker (the
// llama-gqa fixture's tokenizer, no chat template: raw prompts), under one policy of each method it implements
// (rerotate, knorm, kvquant, h2o, tova, pyramidkv and adakv included); @int8 weights are refused.
func TestContract(t *testing.T) {
	t.Setenv("SNAPEVAL_CACHE", t.TempDir())
	open := func(ctx context.Context) (backends.Backend, error) {
		return Open(ctx, fixture, Options{Command: []string{os.Args[0]}, KVMemoryBytes: 1 << 30,
			Env: []string{"SNAPEVAL_FAKE_WORKER=1", "FAKE_STEP_US=200"}})
	}
	backendtest.Run(t, backendtest.Target{
		Open: open,
		Raw:  true,
		Policies: []string{"full", "snapstream:budget=64", "streaming:sinks=4,recent=60", "snapkv:topk=32,window=8,kernel=5",
			"knorm:budget=64", "snapstream:budget=64,rerotate=true", "kvquant:bits=4,group=32", "h2o:budget=64", "tova:budget=64",
			"pyramidkv:topk=32,window=32,kernel=5", "adakv:base=snapstream,budget=64"},
		Refused:       []string{"snapstream:budget=64@int8"},
		Seeded:        true,
		ContextLength: 4096,
	})
}
