package backends

import (
	"context"

	"github.com/snapeval/snapeval/llm"
)

// InspectResult is what `snapeval inspect` prints: the cache after prefill and the greedy path under one policy,
// in the vocabulary of the conformance fixtures.
type InspectResult struct {
	PromptIDs []int  `json:"prompt_ids"`
	Policy    string `json:"policy"`
	Capacity  int    `json:"capacity"`
	KVBytes   int64  `json:"kv_bytes"`
	// Kept is [layer][kv head] sorted absolute positions held right after prefill.
	Kept [][][]int `json:"kept"`
	// Greedy is MaxNew greedy tokens (EOS ignored, as in the fixtures).
	Greedy     []int     `json:"greedy"`
	LogitsLast []float32 `json:"logits_last"`
}

// Inspector is a local backend that can show its cache after prefill (`snapeval inspect`).
type Inspector interface {
	// Inspect prefills ids under policy spec and decodes maxNew greedy tokens, EOS ignored.
	Inspect(ctx context.Context, ids []int, spec string, maxNew int) (InspectResult, error)
	// EncodePrompt tokenizes a request's prompt as Generate does.
	EncodePrompt(req llm.Request) ([]int, error)
}
