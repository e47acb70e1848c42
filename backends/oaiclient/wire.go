package oaiclient

import (
	"encoding/json"

	"github.com/snapeval/snapeval/llm"
)

// CompletionRequest is the JSON body of /v1/chat/completions (Messages set) and /v1/completions (Prompt set).
type CompletionRequest struct {
	Model         string         `json:"model"`
	Messages      []llm.Message  `json:"messages,omitempty"`
	Prompt        *string        `json:"prompt,omitempty"`
	MaxTokens     int            `json:"max_tokens,omitempty"`
	Temperature   *float64       `json:"temperature,omitempty"`
	TopP          *float64       `json:"top_p,omitempty"`
	TopK          int            `json:"top_k,omitempty"`
	Stop          []string       `json:"stop,omitempty"`
	Seed          *uint64        `json:"seed,omitempty"`
	Stream        bool           `json:"stream"`
	StreamOptions *StreamOptions `json:"stream_options,omitempty"`
	N             int            `json:"n,omitempty"`
	// Policy is the snapeval extension asking a `snapeval serve` server for a cache policy.
	Policy string `json:"snapeval_policy,omitempty"`
}

// StreamOptions asks for the final usage chunk.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// Usage is the token accounting of a response. Raw keeps the whole object so that service-specific
// fields (SambaNova's time_to_first_token, total_latency, ...) can be read by the backend that knows them.
type Usage struct {
	PromptTokens     int             `json:"prompt_tokens"`
	CompletionTokens int             `json:"completion_tokens"`
	TotalTokens      int             `json:"total_tokens"`
	Raw              json.RawMessage `json:"-"`
}

// Chunk is one streamed chunk (chat.completion.chunk or text_completion) or a whole non-streamed response.
type Chunk struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Model   string          `json:"model"`
	Choices []ChunkChoice   `json:"choices"`
	Usage   json.RawMessage `json:"usage"`
	// Error is set when a server sends an error object inside the stream.
	Error    json.RawMessage  `json:"error"`
	Snapeval *llm.CacheReport `json:"snapeval,omitempty"`
}

// ChunkChoice is one choice of a chunk: Delta for chat streams, Message for whole chat responses, Text for completions.
type ChunkChoice struct {
	Index        int      `json:"index"`
	Delta        *Content `json:"delta,omitempty"`
	Message      *Content `json:"message,omitempty"`
	Text         *string  `json:"text,omitempty"`
	FinishReason *string  `json:"finish_reason"`
}

// Content is a chat message or delta. ReasoningContent is what reasoning servers (vLLM, SGLang) stream apart.
type Content struct {
	Role             string  `json:"role,omitempty"`
	Content          *string `json:"content"`
	ReasoningContent *string `json:"reasoning_content,omitempty"`
}

// ModelInfo is one entry of /v1/models with the context limits servers publish under various names.
type ModelInfo struct {
	ID string `json:"id"`
	// ContextLength is the model's context (max_model_len for vLLM, context_length for SambaNova and others).
	ContextLength int
	// MaxCompletionTokens is the largest max_tokens the service accepts (0 if not published).
	MaxCompletionTokens int
	// OwnedBy is the entry's owned_by ("snapeval" for `snapeval serve`).
	OwnedBy string
	// Snapeval is what a `snapeval serve` server says about itself, nil for other servers.
	Snapeval *llm.ModelExtension
}

// UnmarshalJSON reads the id and any of the context-limit spellings.
func (m *ModelInfo) UnmarshalJSON(b []byte) error {
	var raw struct {
		ID                  string          `json:"id"`
		MaxModelLen         *int            `json:"max_model_len"`
		ContextLength       *int            `json:"context_length"`
		ContextWindow       *int            `json:"context_window"`
		MaxContextLength    *int            `json:"max_context_length"`
		MaxCompletionTokens *int            `json:"max_completion_tokens"`
		MaxOutputTokens     *int            `json:"max_output_tokens"`
		OwnedBy             string          `json:"owned_by"`
		Snapeval            json.RawMessage `json:"snapeval"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	m.ID, m.OwnedBy = raw.ID, raw.OwnedBy
	var ext llm.ModelExtension
	if raw.OwnedBy == "snapeval" && len(raw.Snapeval) > 0 && json.Unmarshal(raw.Snapeval, &ext) == nil {
		m.Snapeval = &ext
	}
	for _, p := range []*int{raw.MaxModelLen, raw.ContextLength, raw.ContextWindow, raw.MaxContextLength} {
		if p != nil && *p > 0 {
			m.ContextLength = *p
			break
		}
	}
	for _, p := range []*int{raw.MaxCompletionTokens, raw.MaxOutputTokens} {
		if p != nil && *p > 0 {
			m.MaxCompletionTokens = *p
			break
		}
	}
	return nil
}
