package cpu

import (
	"context"
	"fmt"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/cpu/engine"
	"github.com/snapeval/snapeval/compress"
)

// InspectResult is what `snapeval inspect` prints (backends.InspectResult).
type InspectResult = backends.InspectResult

var _ backends.Inspector = (*Backend)(nil)

// Inspect prefills ids under policy spec, and decodes maxNew greedy tokens ignoring EOS.
func (b *Backend) Inspect(ctx context.Context, ids []int, spec string, maxNew int) (InspectResult, error) {
	pol, err := compress.Parse(spec)
	if err != nil {
		return InspectResult{}, err
	}
	if maxNew < 0 {
		return InspectResult{}, fmt.Errorf("inspect: max new tokens %d is negative", maxNew)
	}
	res, err := b.engineFor(pol).Generate(ctx, engine.Job{Prompt: ids, Policy: pol, MaxNew: maxNew, WantKept: true, WantLogits: true})
	if err != nil {
		return InspectResult{}, err
	}
	return InspectResult{PromptIDs: ids, Policy: pol.String(), Capacity: res.Plan.Capacity, KVBytes: res.KVBytes,
		Kept: res.Kept, Greedy: res.Tokens, LogitsLast: res.PromptLogits}, nil
}
