// Package llm is the vocabulary every part of snapeval speaks about generation: chat messages, sampling parameters,
// requests and outputs, what a backend did with the KV cache, the Generator and Tokenizer interfaces, and the error
// sentinels and kinds that classify failures. It imports nothing of snapeval's, so that backends, servers and
// tokenizers can use it without linking the evaluation machinery (runner, record store, parquet).
package llm

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Message is one chat turn.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Sampling holds the decoding parameters of one request.
// Temperature 0 means greedy decoding; TopP 0 or 1 and TopK 0 disable those filters.
type Sampling struct {
	Temperature float64  `json:"temperature"`
	TopP        float64  `json:"top_p"`
	TopK        int      `json:"top_k"`
	MaxNew      int      `json:"max_new"`
	Stop        []string `json:"stop,omitempty"`
	Seed        uint64   `json:"seed"`
}

// FieldError is a sampling parameter out of range. Field is its name in Sampling's JSON form ("temperature",
// "top_p", "top_k", "max_new"), which callers translate into their own (a flag, a request field).
type FieldError struct {
	Field string
	Value any
	Want  string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s %v: want %s", e.Field, e.Value, e.Want) }

// Validate checks the ranges every backend and server accepts: Temperature in [0, 2], TopP in [0, 1] (0: no
// filter), TopK and MaxNew not negative. The error is a *FieldError.
func (s Sampling) Validate() error {
	switch {
	case math.IsNaN(s.Temperature) || s.Temperature < 0 || s.Temperature > 2:
		return &FieldError{"temperature", s.Temperature, "a number in [0, 2] (0: greedy)"}
	case math.IsNaN(s.TopP) || s.TopP < 0 || s.TopP > 1:
		return &FieldError{"top_p", s.TopP, "a number in (0, 1] (0 or 1: no filter)"}
	case s.TopK < 0:
		return &FieldError{"top_k", s.TopK, "a number >= 0 (0: no filter)"}
	case s.MaxNew < 0:
		return &FieldError{"max_new", s.MaxNew, "a number >= 0"}
	}
	return nil
}

// Request is one generation request sent to a backend.
// Exactly one of Messages (chat) and Prompt (raw text, no chat template) is set.
type Request struct {
	// Key identifies the request for logs and errors (bench/item/policy/sample); backends never interpret it.
	Key      string    `json:"key"`
	Messages []Message `json:"messages,omitempty"`
	Prompt   string    `json:"prompt,omitempty"`
	Sampling Sampling  `json:"sampling"`
	// Policy is the canonical cache-policy spec string (see package compress), "full" for the baseline.
	Policy string `json:"policy"`
}

// CacheInfo says what a backend actually did with the KV cache for one request.
type CacheInfo struct {
	// Policy is the policy as applied (canonical spec), or as declared by a remote deployment.
	Policy string `json:"policy"`
	// Declared is true when the backend cannot observe the cache and reports the policy as configured.
	Declared bool `json:"declared,omitempty"`
	// Capacity is the number of cache slots per layer and KV head of this sequence (0 if unknown).
	Capacity int `json:"capacity"`
	// KVBytes is the KV-cache memory of this sequence in bytes (0 if unknown).
	KVBytes int64 `json:"kv_bytes"`
}

// Output is a backend's answer to one Request.
type Output struct {
	Text         string `json:"text"`
	PromptTokens int    `json:"prompt_tokens"`
	OutputTokens int    `json:"output_tokens"`
	// FinishReason is "stop" (EOS or a stop string) or "length" (max new tokens reached).
	FinishReason string    `json:"finish_reason"`
	PrefillMS    float64   `json:"prefill_ms"`
	DecodeMS     float64   `json:"decode_ms"`
	Cache        CacheInfo `json:"cache"`
	// Seeded is false when the backend could not honour Sampling.Seed.
	Seeded bool `json:"seeded"`
}

// Generator is what the runner needs from a backend.
type Generator interface {
	Generate(ctx context.Context, req Request) (Output, error)
}

// Tokenizer is the subset of a model tokenizer that benchmarks use to size or truncate prompts.
type Tokenizer interface {
	Encode(text string) []int
	Decode(ids []int) string
}

// SpecialTokenizer is a Tokenizer that also encodes and decodes as Hugging Face transformers does by default, which
// protocols written in Python assume (LongBench-v2's pred.py truncates prompts with tokenizer.encode and
// tokenizer.decode(..., skip_special_tokens=True)). Benchmarks check for it and fall back on Encode and Decode.
type SpecialTokenizer interface {
	Tokenizer
	// EncodeWithSpecial is tokenizer.encode(text): Encode plus the special tokens the post-processor adds
	// (Llama-3's <|begin_of_text|> at the head), as add_special_tokens=True does.
	EncodeWithSpecial(text string) []int
	// DecodeSkipSpecialClean is tokenizer.decode(ids, skip_special_tokens=True): special tokens dropped, then
	// transformers' clean_up_tokenization applied when the tokenizer's config sets clean_up_tokenization_spaces.
	DecodeSkipSpecialClean(ids []int) string
}

// Error kinds stored in records. A record with a non-empty error kind is an error, never a wrong answer.
const (
	ErrKindBackend         = "backend"          // the backend failed (HTTP error, crash, bad response)
	ErrKindTimeout         = "timeout"          // the request ran past its deadline
	ErrKindContextOverflow = "context_overflow" // the prompt plus max new tokens does not fit the model
	ErrKindCanceled        = "canceled"         // never stored: the run was interrupted, the record is redone on resume
	ErrKindGrader          = "grader"           // grading itself failed (not a wrong answer)
)

// Sentinel errors that backends wrap so the runner can classify failures.
var (
	// ErrContextOverflow: the request cannot fit the model's context (or the cache it asks for cannot fit the
	// model's positions or the backend's memory budget); recorded, not retried.
	ErrContextOverflow = errors.New("context length exceeded")
	// ErrUnreachable: the backend's endpoint could not be connected to (connection refused, no such host) on any
	// attempt; a runner stops the run when request after request fails so, without recording them, so that
	// re-running once the endpoint is back resumes.
	ErrUnreachable = errors.New("endpoint unreachable")
	// ErrBadRequest: the request cannot be served as asked (chat messages to a model without a chat template, a
	// parameter out of range): the caller's mistake, which a server answers with 400.
	ErrBadRequest = errors.New("bad request")
	// ErrQuotaExhausted: the service refuses further work for a long time (daily quota); the run stops cleanly
	// without recording the request, so that re-running resumes.
	ErrQuotaExhausted = errors.New("quota exhausted")
)

// ModelShape is what KV-memory accounting needs to know about a model.
type ModelShape struct {
	Layers    int `json:"layers"`
	KVHeads   int `json:"kv_heads"`
	HeadDim   int `json:"head_dim"`
	ElemBytes int `json:"elem_bytes"`
}

// CacheReport is the snapeval extension a `snapeval serve` server adds to its OpenAI-compatible responses (the
// "snapeval" field): what the backend behind it did with the KV cache, and its timings.
type CacheReport struct {
	Cache     CacheInfo `json:"cache"`
	PrefillMS float64   `json:"prefill_ms"`
	DecodeMS  float64   `json:"decode_ms"`
	Seeded    bool      `json:"seeded"`
}

// ChatTemplateInfo records the chat template that rendered a run's chat messages.
type ChatTemplateInfo struct {
	// Source is where the template came from (chat_template.jinja, tokenizer_config.json, built-in chatml, a file).
	Source string `json:"source"`
	// SHA256 is the hex SHA-256 of the template's text.
	SHA256 string `json:"sha256"`
	// Vars are the extra template variables the run passed (enable_thinking, date_string, ...).
	Vars map[string]any `json:"vars,omitempty"`
	// Now is strftime_now's clock (RFC 3339), when the template reads it.
	Now string `json:"now,omitempty"`
}

// TokenizerPath is the route under which a `snapeval serve` server publishes its model's tokenizer.json (a
// snapeval extension), when ModelExtension.Tokenizer says so: clients that size prompts in tokens use the served
// model's own tokenizer.
const TokenizerPath = "/v1/snapeval/tokenizer"

// ModelExtension is what a /v1/models entry of `snapeval serve` says about the server (its "snapeval" field):
// clients recognise the server by it, send the cache policy per request when Policy is empty, and fetch the
// tokenizer from TokenizerPath when Tokenizer is true.
type ModelExtension struct {
	// Backend is the backend identity.
	Backend string `json:"backend"`
	// Policy is the policy every request runs under; "" when each request chooses ("snapeval_policy").
	Policy string `json:"policy,omitempty"`
	// DefaultPolicy is the policy of requests that name none (when Policy is "").
	DefaultPolicy string `json:"default_policy,omitempty"`
	// Tokenizer is true when GET TokenizerPath returns the model's tokenizer.json.
	Tokenizer bool `json:"tokenizer"`
}
