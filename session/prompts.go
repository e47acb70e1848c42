package session

import (
	"encoding/json"
	"fmt"
	"io"
	"iter"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/llm"
)

// Prompt is one request of a run as `snapeval prompts` lists it: one per (benchmark, item, sample), the policies
// left out (every policy is sent the same request). Of a chained benchmark (LongBench-v2's chain of thought) it is
// the first pass: the second quotes the model's output.
type Prompt struct {
	Bench  string `json:"bench"`
	ItemID string `json:"item_id"`
	Sample int    `json:"sample"`
	// PromptHash is eval.PromptHash of the request, the prompt_hash of the records it produces.
	PromptHash string `json:"prompt_hash"`
	// Tokens counts the ids the model is fed (those of Rendered; of a raw prompt, with the tokenizer's
	// post-processor tokens), where the backend renders requests itself; 0 (absent) elsewhere.
	Tokens int `json:"tokens,omitempty"`
	// Truncation says whether and where the benchmark cut the prompt to its token budget, for benchmarks that
	// measure prompts in tokens and were given a tokenizer (absent elsewhere).
	*eval.Truncation
	Sampling llm.Sampling `json:"sampling"`
	// Messages or Prompt is the request as the benchmark wrote it.
	Messages []llm.Message `json:"messages,omitempty"`
	Prompt   string        `json:"prompt,omitempty"`
	// Rendered is the text the model is fed for chat messages (through its chat template), where the backend
	// renders requests itself (cpu); remote servers render their own. A raw prompt is fed as it is.
	Rendered string `json:"rendered,omitempty"`
	// IDs are the token ids the model is fed (with PromptOptions.IDs, where the backend renders).
	IDs []int `json:"ids,omitempty"`
}

// PromptOptions choose what Prompts includes.
type PromptOptions struct {
	// IDs includes each prompt's token ids.
	IDs bool
}

// Prompts yields the run's requests as Prompts, in run order, one per (benchmark, item, sample) of this shard. It
// renders each through the backend where the backend can (backends.Renderer) and sends no generation request.
func (s *Session) Prompts(o PromptOptions) iter.Seq2[Prompt, error] {
	return func(yield func(Prompt, error) bool) {
		r, renders := s.be.(backends.Renderer)
		seen := map[eval.Key]bool{}
		for _, t := range s.tasks {
			k := t.Key()
			k.Policy = ""
			if seen[k] {
				continue
			}
			seen[k] = true
			req := t.Request
			p := Prompt{Bench: k.Bench, ItemID: k.ItemID, Sample: k.Sample, PromptHash: eval.PromptHash(req),
				Sampling: req.Sampling, Messages: req.Messages, Prompt: req.Prompt}
			if tr, ok := t.Item.Data.(eval.Truncated); ok {
				if c, ok := tr.Truncation(); ok {
					p.Truncation = &c
				}
			}
			if renders {
				text, ids, err := r.Render(req)
				if err != nil {
					yield(Prompt{}, fmt.Errorf("rendering %s: %w", req.Key, err))
					return
				}
				p.Tokens = len(ids)
				if len(req.Messages) > 0 {
					p.Rendered = text
				}
				if o.IDs {
					p.IDs = ids
				}
			}
			if !yield(p, nil) {
				return
			}
		}
	}
}

// WritePrompts writes Prompts as JSON lines (special-token text such as <|im_end|> written as is, not \u-escaped).
// It returns the number of prompts written and how many of them were truncated.
func (s *Session) WritePrompts(w io.Writer, o PromptOptions) (n, truncated int, err error) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for p, err := range s.Prompts(o) {
		if err != nil {
			return n, truncated, err
		}
		if err := enc.Encode(p); err != nil {
			return n, truncated, err
		}
		n++
		if p.Truncation != nil && p.Truncated {
			truncated++
		}
	}
	return n, truncated, nil
}
