package serve

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"sync"
	"testing"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/cpu"
	"github.com/snapeval/snapeval/backends/openai"
	"github.com/snapeval/snapeval/llm"
)

// cpuModel is the qwen2-tied conformance checkpoint the cpu backend keeps in its testdata.
const cpuModel = "../backends/cpu/testdata/models/qwen2-tied"

func openCPU(t testing.TB) *cpu.Backend {
	t.Helper()
	if _, err := os.Stat(cpuModel + "/model.safetensors"); err != nil {
		t.Skipf("conformance checkpoint absent: %v", err)
	}
	opts, err := cpu.ParseOptions(map[string]string{"chat_style": "chatml", "slots": "8"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := cpu.Open(cpuModel, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestCPUEndToEnd serves the cpu backend and checks that greedy generation through the openai backend gives
// exactly the cpu backend's own text, token counts, finish reason and cache report, for several policies,
// chat and raw prompts, with concurrent requests (batched by the cpu scheduler).
func TestCPUEndToEnd(t *testing.T) {
	cb := openCPU(t)
	s, err := New(Config{Backend: cb, Model: "qwen2-tied", Log: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	t.Setenv("OPENAI_API_KEY", "")
	ob, err := openai.Open(context.Background(), backends.Config{BaseURL: srv.URL + "/v1", Model: "qwen2-tied", Options: map[string]string{"forward_policy": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	policies := []string{"full", "streaming:sinks=4,recent=16", "snapkv:topk=24,window=8,kernel=5", "snapstream:sinks=4,recent=16,topk=24,window=8,kernel=5"}
	var reqs []llm.Request
	for i, p := range policies {
		reqs = append(reqs,
			llm.Request{Key: fmt.Sprintf("raw%d", i), Prompt: fmt.Sprintf("The key %d is hidden in a long text about caches, budgets and windows; find it.", 1000+i),
				Sampling: llm.Sampling{MaxNew: 24}, Policy: p},
			llm.Request{Key: fmt.Sprintf("chat%d", i), Messages: []llm.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: fmt.Sprintf("Repeat %d twice, then count the windows.", 7*i)}},
				Sampling: llm.Sampling{MaxNew: 24}, Policy: p})
	}
	direct := make([]llm.Output, len(reqs))
	for i, req := range reqs {
		if direct[i], err = cb.Generate(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Go(func() {
			got, err := ob.Generate(context.Background(), req)
			if err != nil {
				t.Errorf("%s: %v", req.Key, err)
				return
			}
			want := direct[i]
			if got.Text != want.Text || got.PromptTokens != want.PromptTokens || got.OutputTokens != want.OutputTokens ||
				got.FinishReason != want.FinishReason || got.Cache != want.Cache || got.Seeded != want.Seeded {
				t.Errorf("%s: through serve %+v\ndirect %+v", req.Key, got, want)
			}
		})
	}
	wg.Wait()
	caps := map[int]bool{}
	for _, o := range direct {
		caps[o.Cache.Capacity] = true
	}
	if len(caps) < 2 {
		t.Errorf("every policy gave the same cache capacity %v: the policies do not bite on these prompts", caps)
	}
	if direct[0].Text == "" || direct[0].OutputTokens != 24 {
		t.Fatalf("degenerate reference output %+v", direct[0])
	}
}
