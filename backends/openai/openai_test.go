package openai

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/llm"
)

func TestRegisteredAndEnv(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/models":
			fmt.Fprint(w, `{"data":[{"id":"qwen","max_model_len":32768}]}`)
		case "/v1/chat/completions":
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"length\"}]}\n\n")
			fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n")
		}
	}))
	defer srv.Close()
	t.Setenv("OPENAI_BASE_URL", srv.URL+"/v1")
	t.Setenv("OPENAI_API_KEY", "")
	b, err := backends.Open(context.Background(), "openai", backends.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Tokenizer() != nil || b.CheckPolicy("full") != nil || b.CheckPolicy("snapstream:budget=64") == nil {
		t.Fatal("tokenizer or declared policy wrong")
	}
	out, err := b.Generate(context.Background(), llm.Request{Key: "k", Policy: "full", Messages: []llm.Message{{Role: "user", Content: "x"}}, Sampling: llm.Sampling{MaxNew: 1}})
	if err != nil || out.Text != "ok" || out.FinishReason != "length" || out.PromptTokens != 5 || !out.Seeded {
		t.Fatalf("%+v %v", out, err)
	}
	if b.Identity() != "openai:qwen@"+srv.Listener.Addr().String() {
		t.Fatalf("identity %q", b.Identity())
	}
}
