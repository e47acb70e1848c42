package sn40l

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/llm"
)

// usageChunk is the final chunk SambaNova Cloud streams with stream_options.include_usage (field names as served).
const usageChunk = `{"choices":[],"usage":{"completion_tokens":3,"completion_tokens_after_first_per_sec":203.2,` +
	`"completion_tokens_per_sec":135.1,"end_time":1746852567.74,"is_last_response":true,"prompt_tokens":10,` +
	`"start_time":1746852567.36,"time_to_first_token":0.125,"total_latency":0.375,"total_tokens":13,"total_tokens_per_sec":161.6}}`

func fakeSambaNova(t *testing.T, model string, seen *[]map[string]any) *httptest.Server {
	t.Helper()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sn-key-0123456789" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":{"message":"unauthorized"}}`)
			return
		}
		switch r.URL.Path {
		case "/v1/models":
			fmt.Fprintf(w, `{"data":[{"id":%q,"object":"model","context_length":16384,"max_completion_tokens":4096}]}`, model)
		case "/v1/chat/completions":
			var body map[string]any
			_ = json.NewDecoder(r.Body).Decode(&body)
			*seen = append(*seen, body)
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Par\"}}]}\n\n")
			fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"is.\"},\"finish_reason\":\"stop\"}]}\n\n")
			fmt.Fprintf(w, "data: %s\n\ndata: [DONE]\n\n", usageChunk)
		default:
			http.NotFound(w, r)
		}
	}))
}

func TestTimings(t *testing.T) {
	tests := []struct {
		usage           string
		prefill, decode float64
		ok              bool
	}{
		{`{"time_to_first_token":0.125,"total_latency":0.375}`, 125, 250, true},
		{`{"prompt_tokens":3}`, 0, 0, false},
		{`{"time_to_first_token":0.5,"total_latency":0.25}`, 0, 0, false},
		{`{"time_to_first_token":"x","total_latency":1}`, 0, 0, false},
	}
	for _, tt := range tests {
		p, d, ok := Timings(json.RawMessage(tt.usage))
		if p != tt.prefill || d != tt.decode || ok != tt.ok {
			t.Errorf("Timings(%s) = %v, %v, %v", tt.usage, p, d, ok)
		}
	}
}

func TestGenerateWithPolicyEndpoints(t *testing.T) {
	var fullSeen, snapSeen []map[string]any
	full := fakeSambaNova(t, "Llama-3.3-70B", &fullSeen)
	defer full.Close()
	snap := fakeSambaNova(t, "Llama-3.3-70B-snapstream", &snapSeen)
	defer snap.Close()
	t.Setenv("SAMBANOVA_API_KEY", "sn-key-0123456789")
	t.Setenv("SAMBANOVA_BASE_URL", "")
	b, err := backends.Open(context.Background(), "sn40l", backends.Config{
		Model: "Llama-3.3-70B",
		PolicyEndpoints: map[string]backends.Endpoint{
			"full":                   {BaseURL: full.URL + "/v1"},
			"snapstream:budget=4096": {BaseURL: snap.URL + "/v1", Model: "Llama-3.3-70B-snapstream"},
		},
		Options: map[string]string{"preflight": "true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.CheckPolicy("snapstream:budget=1024"); err == nil {
		t.Fatal("a policy with no endpoint passed CheckPolicy")
	}
	pf, ok := b.(interface {
		Preflight(ctx context.Context, maxPrompt, maxNew int) error
	})
	if !ok {
		t.Fatal("sn40l backend has no Preflight")
	}
	if err := pf.Preflight(context.Background(), 12289, 4096); err == nil || !strings.Contains(err.Error(), "context of 16384") {
		t.Fatalf("preflight of a run that cannot fit: %v", err)
	}
	if err := pf.Preflight(context.Background(), 12288, 4096); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"full", "snapstream:budget=4096"} {
		out, err := b.Generate(context.Background(), llm.Request{Key: "q", Policy: p,
			Messages: []llm.Message{{Role: "user", Content: "Capital of France?"}}, Sampling: llm.Sampling{MaxNew: 8, Seed: 7}})
		if err != nil {
			t.Fatal(err)
		}
		want := llm.Output{Text: "Paris.", PromptTokens: 10, OutputTokens: 3, FinishReason: "stop", PrefillMS: 125, DecodeMS: 250,
			Cache: llm.CacheInfo{Policy: p, Declared: true}, Seeded: false}
		if out != want {
			t.Errorf("policy %s: got %+v, want %+v", p, out, want)
		}
	}
	if len(fullSeen) != 1 || len(snapSeen) != 1 || snapSeen[0]["model"] != "Llama-3.3-70B-snapstream" {
		t.Fatalf("requests full=%v snap=%v", fullSeen, snapSeen)
	}
	if _, ok := fullSeen[0]["seed"]; ok {
		t.Error("seed sent to a service that does not document it")
	}
	_, err = b.Generate(context.Background(), llm.Request{Key: "raw", Policy: "full", Prompt: "x", Sampling: llm.Sampling{MaxNew: 8}})
	if err == nil || !strings.Contains(err.Error(), "no raw-prompt") {
		t.Fatalf("raw prompt on a chat-only service: %v", err)
	}
}

func TestBadKeyFailsAtOpen(t *testing.T) {
	var seen []map[string]any
	srv := fakeSambaNova(t, "m", &seen)
	defer srv.Close()
	t.Setenv("SAMBANOVA_API_KEY", "wrong-key-abcdef")
	_, err := backends.Open(context.Background(), "sn40l", backends.Config{Model: "m", BaseURL: srv.URL + "/v1"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || strings.Contains(err.Error(), "wrong-key-abcdef") {
		t.Fatalf("err = %v", err)
	}
}

func TestDefaultBaseURL(t *testing.T) {
	if Flavor.DefaultBaseURL != "https://api.sambanova.ai/v1" || Flavor.KeyEnv != "SAMBANOVA_API_KEY" || Flavor.BaseURLEnv != "SAMBANOVA_BASE_URL" {
		t.Fatalf("flavor %+v", Flavor)
	}
}
