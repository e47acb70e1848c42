package cpu_test

import (
	"context"
	"testing"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/backendtest"
	"github.com/snapeval/snapeval/backends/cpu"
)

// TestContract runs the backend contract suite on the cpu backend over the embedded model (models/snaptiny,
// which has no chat template: raw prompts only), under one policy of each method and an @int8 one.
func TestContract(t *testing.T) {
	open := func(ctx context.Context) (backends.Backend, error) {
		return backends.Open(ctx, "cpu", backends.Config{})
	}
	b, err := open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	shape := b.(*cpu.Backend).Shape()
	b.Close()
	backendtest.Run(t, backendtest.Target{
		Open: open,
		Raw:  true,
		Policies: []string{"full", "snapstream:budget=64", "streaming:sinks=4,recent=60",
			"snapkv:topk=32,window=8,kernel=5", "snapstream:budget=64@int8",
			"streaming:sinks=4,recent=60,rerotate=true", "snapstream:budget=64,rerotate=true", "knorm:budget=64",
			"kvquant:bits=4,group=32", "kvquant:bits=8,group=16@int8",
			"h2o:budget=64", "tova:budget=64", "pyramidkv:topk=32,window=32,kernel=5", "adakv:base=snapstream,budget=64"},
		Seeded:        true,
		Shape:         &shape,
		ContextLength: 4096,
	})
}
