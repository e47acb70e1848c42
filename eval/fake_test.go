package eval

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/snapeval/snapeval/llm"
)

// echoBench is a test benchmark: item i asks for the answer "a<i>"; the grade is string equality.
type echoBench struct {
	name string
	n    int
	tags bool
}

func (b *echoBench) Name() string { return b.name }
func (b *echoBench) Items(ctx context.Context, tok llm.Tokenizer) ([]Item, error) {
	items := make([]Item, b.n)
	for i := range items {
		items[i] = Item{ID: fmt.Sprintf("q%03d", i), Data: fmt.Sprintf("a%d", i)}
		if b.tags {
			items[i].Tags = map[string]string{"parity": []string{"even", "odd"}[i%2]}
		}
	}
	return items, nil
}
func (b *echoBench) Request(it Item) (llm.Request, error) {
	return llm.Request{Prompt: "say " + it.Data.(string)}, nil
}
func (b *echoBench) Grade(ctx context.Context, it Item, out string) (Grade, error) {
	ok := strings.TrimSpace(out) == it.Data.(string)
	s := 0.0
	if ok {
		s = 1
	}
	return Grade{Extracted: strings.TrimSpace(out), Correct: ok, Score: s, Verdict: map[bool]string{true: "correct", false: "wrong"}[ok]}, nil
}
func (b *echoBench) Defaults() Defaults {
	return Defaults{Sampling: llm.Sampling{MaxNew: 8}, Samples: 1}
}

// hashBackend answers deterministically from (prompt, policy, seed): correct unless a hash says otherwise;
// "fail" policies return backend errors for some items; delay slows each request.
type hashBackend struct {
	delay   time.Duration
	calls   atomic.Int64
	quotaAt int64 // return ErrQuotaExhausted from this call number on (0: never)
	// down, when set, makes call number n fail with llm.ErrUnreachable when it returns true.
	down func(n int64) bool
}

func (h *hashBackend) Generate(ctx context.Context, req llm.Request) (llm.Output, error) {
	n := h.calls.Add(1)
	if h.quotaAt > 0 && n >= h.quotaAt {
		return llm.Output{}, fmt.Errorf("daily limit: %w", llm.ErrQuotaExhausted)
	}
	if h.down != nil && h.down(n) {
		return llm.Output{}, fmt.Errorf("after 7 attempts: POST /completions: dial tcp 127.0.0.1:9: connect: connection refused: %w", llm.ErrUnreachable)
	}
	if h.delay > 0 {
		select {
		case <-time.After(h.delay):
		case <-ctx.Done():
			return llm.Output{}, ctx.Err()
		}
	}
	f := fnv.New64a()
	fmt.Fprintf(f, "%s|%s|%d", req.Prompt, req.Policy, req.Sampling.Seed)
	v := f.Sum64()
	if strings.HasPrefix(req.Policy, "fail") && v%5 == 0 {
		return llm.Output{}, errors.New("HTTP 500: upstream exploded")
	}
	if strings.HasPrefix(req.Policy, "overflow") && v%7 == 0 {
		return llm.Output{}, fmt.Errorf("prompt too long: %w", llm.ErrContextOverflow)
	}
	text := strings.TrimPrefix(req.Prompt, "say ")
	if req.Policy != "full" && v%4 == 0 {
		text = "wrong"
	}
	return llm.Output{Text: text, PromptTokens: 3, OutputTokens: 2, FinishReason: "stop", Seeded: true,
		Cache: llm.CacheInfo{Policy: req.Policy, Capacity: 16, KVBytes: 1024}}, nil
}
