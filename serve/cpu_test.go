package serve

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/cpu"
	"github.com/snapeval/snapeval/backends/oaiclient"
	"github.com/snapeval/snapeval/backends/openai"
	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/llm"
	"github.com/snapeval/snapeval/models"
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
	// A forwarded policy the server could never parse is refused before any request.
	for _, bad := range []string{"bogus", "snapstream:budget=8,kernel=4"} {
		if err := ob.CheckPolicy(bad); err == nil {
			t.Errorf("CheckPolicy(%q) accepted a policy the server cannot parse", bad)
		}
	}
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

// TestHostileRequests: requests that used to kill the server (a cache of a hundred million slots: out of memory)
// or answer 500 (max_tokens past any context, chat to a model without a chat template) are each a 400 naming the
// problem, and the server goes on answering.
func TestHostileRequests(t *testing.T) {
	b, err := cpu.OpenFS(models.SnapTiny, ".", models.Name, cpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s, err := New(Config{Backend: b, Model: "snaptiny", Canonicalize: func(spec string) (string, error) {
		p, err := compress.Parse(spec)
		return p.String(), err
	}, Log: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	tests := []struct {
		name, path, body, code, msg string
	}{
		{"snapkv topk", "/v1/completions", `{"prompt":"hi","max_tokens":4,"snapeval_policy":"snapkv:topk=100000000"}`, "invalid_policy", "exceeds the model's 4096 positions"},
		{"snapstream budget", "/v1/completions", `{"prompt":"hi","max_tokens":4,"snapeval_policy":"snapstream:budget=2147483647"}`, "invalid_policy", "exceeds the model's 4096 positions"},
		{"streaming recent", "/v1/completions", `{"prompt":"hi","max_tokens":4,"snapeval_policy":"streaming:sinks=4,recent=200000000"}`, "invalid_policy", "exceeds the model's 4096 positions"},
		{"max_tokens", "/v1/completions", `{"prompt":"hi","max_tokens":9223372036854775807}`, "context_length_exceeded", "exceeds the model's 4096 positions"},
		{"max_tokens streamed", "/v1/completions", `{"prompt":"hi","max_tokens":9223372036854775807,"stream":true}`, "context_length_exceeded", "exceeds the model's 4096 positions"},
		{"chat without a template", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":4}`, "invalid_request", "chat messages need a chat template"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL+tc.path, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), `"code":"`+tc.code+`"`) || !strings.Contains(string(body), tc.msg) {
				t.Errorf("%s, want code %s saying %q", body, tc.code, tc.msg)
			}
			if strings.Contains(tc.body, `"stream":true`) { // the status is sent before generation: the error event has it
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status":400`) || strings.Contains(string(body), "[DONE]") {
					t.Errorf("streamed: status %d %s, want an error event with status 400 and no [DONE]", resp.StatusCode, body)
				}
			} else if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d %s, want 400", resp.StatusCode, body)
			}
		})
	}
	code, m := post(t, srv.URL+"/v1/completions", `{"prompt":"The special magic number","max_tokens":3}`)
	if code != 200 {
		t.Fatalf("after the hostile requests: %d %v", code, m)
	}
}

// TestOpenAIAdoptsSnapevalServe: the openai backend recognises `snapeval serve` by its /v1/models entry: it takes
// the served model's tokenizer (so prompts sized in tokens need no --tokenizer), forwards the policy of each
// request when the server lets requests choose (unless forward_policy=false), and declares the server's policy
// when it is fixed.
func TestOpenAIAdoptsSnapevalServe(t *testing.T) {
	b, err := cpu.OpenFS(models.SnapTiny, ".", models.Name, cpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	canon := func(spec string) (string, error) {
		p, err := compress.Parse(spec)
		return p.String(), err
	}
	start := func(be backends.Backend, policy string) string {
		s, err := New(Config{Backend: be, Model: "snaptiny", Policy: policy, Canonicalize: canon, Log: log.New(io.Discard, "", 0)})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(s.Handler())
		t.Cleanup(srv.Close)
		return srv.URL + "/v1"
	}
	open := func(base string, opts map[string]string) (*oaiclient.Remote, error) {
		return openai.Open(context.Background(), backends.Config{BaseURL: base, Options: opts})
	}
	t.Setenv("OPENAI_API_KEY", "")
	const snap = "snapstream:budget=128"

	perRequest := start(b, "")
	ob, err := open(perRequest, nil)
	if err != nil {
		t.Fatal(err)
	}
	text := "The special magic number for pale-river is 123456."
	if ob.Tokenizer() == nil || !reflect.DeepEqual(ob.Tokenizer().Encode(text), b.Tokenizer().Encode(text)) {
		t.Fatalf("served tokenizer %v does not encode as the model's", ob.Tokenizer())
	}
	if src := ob.TokenizerSource(); !strings.HasPrefix(src, "served by "+perRequest+" (sha256 ") {
		t.Errorf("tokenizer source %q", src)
	}
	if err := ob.CheckPolicy(snap); err != nil {
		t.Fatalf("per-request server, policy not forwarded: %v", err)
	}
	out, err := ob.Generate(context.Background(), llm.Request{Key: "k", Prompt: text, Sampling: llm.Sampling{MaxNew: 3}, Policy: snap})
	if err != nil || out.Cache.Policy != snap || out.Cache.Declared || out.Cache.Capacity != 128 {
		t.Fatalf("forwarded request: %+v %v", out.Cache, err)
	}
	if ob, err := open(perRequest, map[string]string{"forward_policy": "false"}); err != nil || ob.CheckPolicy(snap) == nil {
		t.Errorf("forward_policy=false: policy %s accepted (%v)", snap, err)
	}

	fixed := start(b, snap)
	if ob, err = open(fixed, nil); err != nil {
		t.Fatal(err)
	}
	if ob.CheckPolicy(snap) != nil || ob.CheckPolicy("full") == nil {
		t.Errorf("fixed server: its policy %v, full %v", ob.CheckPolicy(snap), ob.CheckPolicy("full"))
	}
	if _, err := open(fixed, map[string]string{"policy": "full"}); err == nil || !strings.Contains(err.Error(), "runs policy "+snap+" only") {
		t.Errorf("declaring another policy than the fixed server's: %v", err)
	}

	words := start(&wordBackend{}, "")
	if ob, err = open(words, nil); err != nil {
		t.Fatal(err)
	}
	if ob.Tokenizer() != nil || ob.CheckPolicy(snap) != nil {
		t.Errorf("server without a tokenizer: tokenizer %v, policy %v", ob.Tokenizer(), ob.CheckPolicy(snap))
	}
	resp, err := http.Get(strings.TrimSuffix(words, "/v1") + llm.TokenizerPath)
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET %s of a backend without a tokenizer: %v %v", llm.TokenizerPath, resp.StatusCode, err)
	}
}
