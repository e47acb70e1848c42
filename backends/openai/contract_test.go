package openai_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/backendtest"
	"github.com/snapeval/snapeval/backends/cpu"
	"github.com/snapeval/snapeval/backends/openai"
	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/llm"
	"github.com/snapeval/snapeval/serve"
)

const quotaMarker = "QUOTA-SPENT"

// quotaGate stands for an upstream service that has run out of quota: requests whose prompt holds quotaMarker
// fail with llm.ErrQuotaExhausted, which serve must answer 429 insufficient_quota and the client classify back.
type quotaGate struct{ backends.Backend }

func (q quotaGate) Generate(ctx context.Context, req llm.Request) (llm.Output, error) {
	if strings.Contains(req.Prompt, quotaMarker) {
		return llm.Output{}, fmt.Errorf("upstream: daily budget spent: %w", llm.ErrQuotaExhausted)
	}
	return q.Backend.Generate(ctx, req)
}

// TestContract runs the backend contract suite on the openai backend against an in-process `snapeval serve`
// server over the cpu backend and the embedded model. The client maps each policy to the server and forwards it
// (forward_policy), so the server applies it and reports the cache it observed.
func TestContract(t *testing.T) {
	t.Setenv("OPENAI_BASE_URL", "")
	t.Setenv("OPENAI_API_KEY", "")
	cb, err := backends.Open(context.Background(), "cpu", backends.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	srv, err := serve.New(serve.Config{Backend: quotaGate{cb}, Model: "snaptiny", Log: log.New(io.Discard, "", 0),
		Canonicalize: func(spec string) (string, error) {
			p, err := compress.Parse(spec)
			return p.String(), err
		}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	policies := []string{"full", "snapstream:budget=64", "streaming:sinks=4,recent=60"}
	endpoints := map[string]backends.Endpoint{}
	for _, p := range policies {
		endpoints[p] = backends.Endpoint{BaseURL: hs.URL + "/v1"}
	}
	shape := cb.(*cpu.Backend).Shape()
	backendtest.Run(t, backendtest.Target{
		Open: func(ctx context.Context) (backends.Backend, error) {
			return openai.Open(ctx, backends.Config{Model: "snaptiny", PolicyEndpoints: endpoints,
				Options: map[string]string{"forward_policy": "true", "max_retries": "0"}})
		},
		Raw:           true,
		Policies:      policies,
		Refused:       []string{"snapstream:budget=128"},
		Seeded:        true,
		Shape:         &shape,
		ContextLength: 4096,
		// serve's /v1/models publishes no context length, so the client cannot preflight against it.
		PreflightBlind: true,
		Quota:          &llm.Request{Key: "quota", Prompt: "ask " + quotaMarker, Policy: "full", Sampling: llm.Sampling{MaxNew: 4}},
	})
}
