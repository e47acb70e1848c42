package sn40l_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/backendtest"
	"github.com/snapeval/snapeval/backends/sn40l"
	"github.com/snapeval/snapeval/llm"
)

const (
	fakeKey     = "sn-contract-key-0123456789"
	quotaMarker = "QUOTA-SPENT"
)

// fakeCloud stands in for SambaNova Cloud: each served model is a backendtest.Fake, answered over the
// OpenAI-compatible API the way the sn40l backend expects (bearer key, /v1/models with context_length and
// max_completion_tokens, streamed chat completions only, a final usage chunk with time_to_first_token and
// total_latency in seconds, no seed). Errors use the OpenAI error shape: 400 context_length_exceeded for a
// request that does not fit, 429 with quota wording for an exhausted daily quota (SambaNova does not document
// its wording; the client classifies by status and phrase).
type fakeCloud struct {
	models map[string]*backendtest.Fake
}

type chatBody struct {
	Model         string        `json:"model"`
	Messages      []llm.Message `json:"messages"`
	MaxTokens     int           `json:"max_tokens"`
	Temperature   *float64      `json:"temperature"`
	Stop          []string      `json:"stop"`
	Stream        bool          `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func apiError(w http.ResponseWriter, status int, typ, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": code}})
}

func (f *fakeCloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+fakeKey {
		apiError(w, http.StatusUnauthorized, "authentication_error", "", "invalid API key")
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/models":
		var data []map[string]any
		for id, m := range f.models {
			data = append(data, map[string]any{"id": id, "object": "model", "context_length": m.Context,
				"max_completion_tokens": m.Context / 2})
		}
		json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data})
	case r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions":
		f.chat(w, r)
	default:
		apiError(w, http.StatusNotFound, "invalid_request_error", "not_found", "no route "+r.URL.Path)
	}
}

func (f *fakeCloud) chat(w http.ResponseWriter, r *http.Request) {
	var body chatBody
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_request_error", "", "invalid JSON: "+err.Error())
		return
	}
	m := f.models[body.Model]
	switch {
	case m == nil:
		apiError(w, http.StatusNotFound, "invalid_request_error", "model_not_found", fmt.Sprintf("model %q not found", body.Model))
		return
	case !body.Stream:
		apiError(w, http.StatusBadRequest, "invalid_request_error", "", "this fake streams only")
		return
	case body.MaxTokens > m.Context/2:
		apiError(w, http.StatusBadRequest, "invalid_request_error", "", fmt.Sprintf("max_tokens must be at most %d", m.Context/2))
		return
	}
	s := llm.Sampling{MaxNew: body.MaxTokens, Stop: body.Stop, Seed: rand.Uint64()} // no seed: every sample differs
	if body.Temperature != nil {
		s.Temperature = *body.Temperature
	}
	out, err := m.Generate(r.Context(), llm.Request{Messages: body.Messages, Sampling: s, Policy: "full"})
	switch {
	case r.Context().Err() != nil:
		return
	case errors.Is(err, llm.ErrContextOverflow):
		apiError(w, http.StatusBadRequest, "invalid_request_error", "context_length_exceeded",
			fmt.Sprintf("Requested tokens exceed the maximum context length of %d tokens", m.Context))
		return
	case errors.Is(err, llm.ErrQuotaExhausted):
		apiError(w, http.StatusTooManyRequests, "rate_limit_error", "", "You have exceeded your daily request quota")
		return
	case err != nil:
		apiError(w, http.StatusBadRequest, "invalid_request_error", "", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	chunk := func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
	}
	delta := func(d map[string]any, finish any) map[string]any {
		return map[string]any{"id": "fake-1", "object": "chat.completion.chunk", "model": body.Model,
			"choices": []map[string]any{{"index": 0, "delta": d, "finish_reason": finish, "logprobs": nil}}}
	}
	chunk(delta(map[string]any{"role": "assistant", "content": ""}, nil))
	chunk(delta(map[string]any{"content": out.Text}, nil))
	chunk(delta(map[string]any{}, out.FinishReason))
	ttft := 0.002
	chunk(map[string]any{"id": "fake-1", "object": "chat.completion.chunk", "model": body.Model, "choices": []any{},
		"usage": map[string]any{"prompt_tokens": out.PromptTokens, "completion_tokens": out.OutputTokens,
			"total_tokens": out.PromptTokens + out.OutputTokens, "time_to_first_token": ttft,
			"total_latency": ttft + out.DecodeMS/1000, "is_last_response": true}})
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// TestContract runs the backend contract suite on the sn40l backend against fakeCloud, with one deployment
// per policy (the policy is declared, not observed) and no seed.
func TestContract(t *testing.T) {
	t.Setenv("SAMBANOVA_API_KEY", fakeKey)
	t.Setenv("SAMBANOVA_BASE_URL", "")
	cloud := &fakeCloud{models: map[string]*backendtest.Fake{
		"Meta-Llama-3.3-70B-Instruct":            {Name: "full", Context: 512, QuotaMarker: quotaMarker},
		"Meta-Llama-3.3-70B-Instruct-snapstream": {Name: "snapstream", Context: 512, QuotaMarker: quotaMarker},
	}}
	srv := httptest.NewServer(cloud)
	defer srv.Close()
	endpoints := map[string]backends.Endpoint{
		"full":                   {BaseURL: srv.URL + "/v1", Model: "Meta-Llama-3.3-70B-Instruct"},
		"snapstream:budget=4096": {BaseURL: srv.URL + "/v1", Model: "Meta-Llama-3.3-70B-Instruct-snapstream"},
	}
	backendtest.Run(t, backendtest.Target{
		Open: func(ctx context.Context) (backends.Backend, error) {
			return sn40l.Open(ctx, backends.Config{PolicyEndpoints: endpoints, Options: map[string]string{"max_retries": "0"}})
		},
		Chat:          true,
		Policies:      []string{"full", "snapstream:budget=4096"},
		Refused:       []string{"snapstream:budget=1024"},
		Declared:      true,
		ContextLength: 512,
		Quota: &llm.Request{Key: "quota", Messages: []llm.Message{{Role: "user", Content: "ask " + quotaMarker}},
			Policy: "full", Sampling: llm.Sampling{MaxNew: 4}},
	})
}
