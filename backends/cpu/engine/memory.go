package engine

import (
	"fmt"

	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/llm"
)

// fallbackMemoryBytes is the default memory budget where the machine's memory cannot be read.
const fallbackMemoryBytes = 8 << 30

// DefaultMemoryBytes is the default Options.MemoryBytes: half of the memory this process may use (the machine's
// physical memory, or its cgroup's limit when lower), or 8 GiB where neither can be read.
func DefaultMemoryBytes() int64 {
	n := availableMemory()
	if n <= 0 {
		return fallbackMemoryBytes
	}
	return n / 2
}

// slotBytes is the memory one batch slot holds for a cache of capacity slots under policy p: K and V of every
// layer (float32, or quantized for kvquant: compress.Policy.KVBytes), and the logits row.
func slotBytes(c *modelShape, p compress.Policy, capacity int) int64 {
	return p.KVBytes(capacity, c.Layers, c.KVHeads, c.HeadDim, ElemBytes) + int64(c.Vocab)*4
}

// taskBytes is the memory of the full prefill of an L-token prompt keeping qRows observation queries: its dense
// K and V, the queries and the logits (prefillTask.bytes once allocated).
func taskBytes(c *modelShape, L, qRows int) int64 {
	kv := 2 * int64(c.Layers) * int64(L) * int64(c.KVHeads) * int64(c.HeadDim)
	q := int64(c.Layers) * int64(qRows) * int64(c.Heads) * int64(c.HeadDim)
	return (kv+q)*4 + int64(c.Vocab)*4
}

// modelShape is what the memory arithmetic needs of a model's config.
type modelShape struct {
	Layers, KVHeads, HeadDim, Heads, Vocab, MaxPositions int
}

func (e *Engine) shape() *modelShape {
	c := &e.m.Cfg
	return &modelShape{Layers: c.Layers, KVHeads: c.KVHeads, HeadDim: c.HeadDim, Heads: c.Heads, Vocab: c.Vocab, MaxPositions: c.MaxPositions}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// CheckPolicy refuses, before any allocation, a policy whose cache could never be used or held: a budget of more
// slots than the model has positions (the slots beyond them would never fill), or a cache of that budget larger
// than the engine's memory budget. Errors wrap llm.ErrContextOverflow.
func (e *Engine) CheckPolicy(p compress.Policy) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("policy %s: %w", p, err)
	}
	c := e.shape()
	if p.Method == compress.MethodFull {
		return nil
	}
	if p.Budget > c.MaxPositions {
		return fmt.Errorf("policy %s: a cache of %d slots exceeds the model's %d positions (the slots beyond them can never fill): %w",
			p, p.Budget, c.MaxPositions, llm.ErrContextOverflow)
	}
	if need := slotBytes(c, p, p.Budget); need > e.opts.MemoryBytes {
		return fmt.Errorf("policy %s: a cache of %d slots takes %s, over the engine's memory budget of %s: %w",
			p, p.Budget, mib(need), mib(e.opts.MemoryBytes), llm.ErrContextOverflow)
	}
	return nil
}

// checkMemory refuses a job whose cache plus its prompt's full prefill alone exceed the memory budget.
func (e *Engine) checkMemory(plan compress.Plan) error {
	c := e.shape()
	slot := slotBytes(c, plan.Policy, plan.Capacity)
	task := taskBytes(c, plan.PromptLen, min(plan.PromptLen, max(e.opts.QueryKeep, qNeed(plan))))
	if slot+task > e.opts.MemoryBytes {
		return fmt.Errorf("a cache of %d slots (%s) and the prefill of a %d-token prompt (%s) exceed the engine's memory budget of %s: %w",
			plan.Capacity, mib(slot), plan.PromptLen, mib(task), mib(e.opts.MemoryBytes), llm.ErrContextOverflow)
	}
	return nil
}
