package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/openai"
	"github.com/snapeval/snapeval/llm"
)

// wordBackend is a deterministic test backend: it answers the last message (or prompt) with its words reversed,
// at most MaxNew words, and reports the policy as applied with a capacity derived from it.
type wordBackend struct {
	delay    time.Duration
	inflight atomic.Int32
	maxIn    atomic.Int32
	fail     error // returned by every Generate when set
}

func (b *wordBackend) Generate(ctx context.Context, req llm.Request) (llm.Output, error) {
	in := b.inflight.Add(1)
	defer b.inflight.Add(-1)
	for {
		m := b.maxIn.Load()
		if in <= m || b.maxIn.CompareAndSwap(m, in) {
			break
		}
	}
	if b.delay > 0 {
		select {
		case <-time.After(b.delay):
		case <-ctx.Done():
			return llm.Output{}, ctx.Err()
		}
	}
	if b.fail != nil {
		return llm.Output{}, fmt.Errorf("wordBackend %s: %w", req.Key, b.fail)
	}
	text := req.Prompt
	if len(req.Messages) > 0 {
		text = req.Messages[len(req.Messages)-1].Content
	}
	words := strings.Fields(text)
	out := llm.Output{PromptTokens: len(words), FinishReason: "stop", Seeded: true, PrefillMS: 1.5, DecodeMS: 2.5,
		Cache: llm.CacheInfo{Policy: req.Policy, Capacity: len(req.Policy), KVBytes: int64(100 * len(words))}}
	var rev []string
	for i := len(words) - 1; i >= 0; i-- {
		if len(rev) == req.Sampling.MaxNew {
			out.FinishReason = "length"
			break
		}
		rev = append(rev, words[i])
	}
	out.Text = strings.Join(rev, " ")
	out.OutputTokens = len(rev)
	return out, nil
}

func (b *wordBackend) Identity() string { return "words:test" }
func (b *wordBackend) CheckPolicy(spec string) error {
	if spec == "full" || strings.HasPrefix(spec, "snapstream:") {
		return nil
	}
	return fmt.Errorf("policy %q unsupported", spec)
}
func (b *wordBackend) Tokenizer() llm.Tokenizer { return nil }
func (b *wordBackend) Close() error             { return nil }

func newTestServer(t testing.TB, b backends.Backend, cfg Config) *httptest.Server {
	t.Helper()
	cfg.Backend, cfg.Model = b, "words"
	cfg.Log = log.New(io.Discard, "", 0)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func post(t testing.TB, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("response %q is not JSON: %v", b, err)
	}
	return resp.StatusCode, m
}

func TestChatNonStreaming(t *testing.T) {
	srv := newTestServer(t, &wordBackend{}, Config{})
	code, m := post(t, srv.URL+"/v1/chat/completions", `{"model":"words","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"one two "},{"type":"text","text":"three"}]}],"max_tokens":2,"temperature":0,"snapeval_policy":"snapstream:budget=64"}`)
	if code != 200 {
		t.Fatalf("status %d: %v", code, m)
	}
	ch := m["choices"].([]any)[0].(map[string]any)
	if ch["message"].(map[string]any)["content"] != "three two" || ch["finish_reason"] != "length" || m["object"] != "chat.completion" {
		t.Fatalf("response %v", m)
	}
	if u := m["usage"].(map[string]any); u["prompt_tokens"] != 3.0 || u["completion_tokens"] != 2.0 || u["total_tokens"] != 5.0 {
		t.Fatalf("usage %v", u)
	}
	if c := m["snapeval"].(map[string]any)["cache"].(map[string]any); c["policy"] != "snapstream:budget=64" {
		t.Fatalf("snapeval %v", m["snapeval"])
	}
}

func TestCompletionNonStreaming(t *testing.T) {
	srv := newTestServer(t, &wordBackend{}, Config{})
	code, m := post(t, srv.URL+"/v1/completions", `{"prompt":["a b c"],"max_tokens":5}`)
	ch := m["choices"].([]any)[0].(map[string]any)
	if code != 200 || ch["text"] != "c b a" || ch["finish_reason"] != "stop" || m["object"] != "text_completion" {
		t.Fatalf("%d %v", code, m)
	}
	if c := m["snapeval"].(map[string]any)["cache"].(map[string]any); c["policy"] != "full" {
		t.Fatalf("default policy: %v", c)
	}
}

// readSSE returns the data payloads of a stream and whether it ended with [DONE].
func readSSE(t testing.TB, r io.Reader) (chunks []map[string]any, done bool) {
	t.Helper()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			return chunks, true
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			t.Fatalf("chunk %q: %v", data, err)
		}
		chunks = append(chunks, m)
	}
	return chunks, false
}

func TestChatStreaming(t *testing.T) {
	srv := newTestServer(t, &wordBackend{delay: 30 * time.Millisecond}, Config{Heartbeat: 5 * time.Millisecond})
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"messages":[{"role":"user","content":"x y"}],"stream":true,"stream_options":{"include_usage":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(raw), ": generating") {
		t.Errorf("no heartbeat in %q", raw)
	}
	chunks, done := readSSE(t, strings.NewReader(string(raw)))
	if !done || len(chunks) != 4 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("done=%v chunks=%v", done, chunks)
	}
	var text string
	for _, c := range chunks[:3] {
		if c["object"] != "chat.completion.chunk" {
			t.Errorf("object %v", c["object"])
		}
		d := c["choices"].([]any)[0].(map[string]any)["delta"].(map[string]any)
		if s, ok := d["content"].(string); ok {
			text += s
		}
	}
	if text != "y x" {
		t.Fatalf("text %q", text)
	}
	if u := chunks[3]["usage"].(map[string]any); u["completion_tokens"] != 2.0 {
		t.Fatalf("usage chunk %v", chunks[3])
	}
}

func TestErrors(t *testing.T) {
	srv := newTestServer(t, &wordBackend{}, Config{})
	fixed := newTestServer(t, &wordBackend{}, Config{Policy: "snapstream:budget=8"})
	overflow := newTestServer(t, &wordBackend{fail: llm.ErrContextOverflow}, Config{})
	quota := newTestServer(t, &wordBackend{fail: llm.ErrQuotaExhausted}, Config{})
	broken := newTestServer(t, &wordBackend{fail: errors.New("disk on fire")}, Config{})
	tiny := newTestServer(t, &wordBackend{}, Config{MaxBodyBytes: 64})
	chat, cmpl := "/v1/chat/completions", "/v1/completions"
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name   string
		srv    *httptest.Server
		path   string
		body   string
		status int
		code   string
		param  string
	}{
		{"bad json", srv, chat, `{"messages":`, 400, "invalid_json", ""},
		{"no messages", srv, chat, `{}`, 400, "invalid_value", "messages"},
		{"prompt in chat", srv, chat, `{"prompt":"x",` + msgs + `}`, 400, "invalid_value", "prompt"},
		{"messages in completion", srv, cmpl, `{` + msgs + `}`, 400, "invalid_value", "messages"},
		{"two prompts", srv, cmpl, `{"prompt":["a","b"]}`, 400, "invalid_value", "prompt"},
		{"bad role", srv, chat, `{"messages":[{"role":"wizard","content":"x"}]}`, 400, "invalid_value", "messages[0].role"},
		{"image part", srv, chat, `{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, 400, "invalid_value", "messages[0].content[0].type"},
		{"zero max_tokens", srv, chat, `{` + msgs + `,"max_tokens":0}`, 400, "invalid_value", "max_tokens"},
		{"temperature", srv, chat, `{` + msgs + `,"temperature":3}`, 400, "invalid_value", "temperature"},
		{"top_p", srv, chat, `{` + msgs + `,"top_p":0}`, 400, "invalid_value", "top_p"},
		{"stop type", srv, chat, `{` + msgs + `,"stop":3}`, 400, "invalid_value", "stop"},
		{"n", srv, chat, `{` + msgs + `,"n":2}`, 400, "invalid_value", "n"},
		{"wrong model", srv, chat, `{"model":"gpt-9",` + msgs + `}`, 404, "model_not_found", "model"},
		{"unsupported policy", srv, chat, `{` + msgs + `,"snapeval_policy":"h2o:x=1"}`, 400, "invalid_policy", "snapeval_policy"},
		{"fixed policy", fixed, chat, `{` + msgs + `,"snapeval_policy":"full"}`, 400, "policy_fixed", "snapeval_policy"},
		{"overflow", overflow, chat, `{` + msgs + `}`, 400, "context_length_exceeded", ""},
		{"quota", quota, chat, `{` + msgs + `}`, 429, "insufficient_quota", ""},
		{"backend failure", broken, chat, `{` + msgs + `}`, 500, "backend_error", ""},
		{"body too large", tiny, chat, `{` + msgs + `,"pad":"` + strings.Repeat("x", 100) + `"}`, 413, "body_too_large", ""},
		{"unknown route", srv, "/v1/embeddings", `{}`, 404, "not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, m := post(t, tt.srv.URL+tt.path, tt.body)
			e, _ := m["error"].(map[string]any)
			if code != tt.status || e == nil || e["code"] != tt.code || e["message"] == "" {
				t.Fatalf("status %d body %v; want %d %s", code, m, tt.status, tt.code)
			}
			if p, _ := e["param"].(string); p != tt.param {
				t.Errorf("param %q, want %q", p, tt.param)
			}
		})
	}
}

func TestStreamErrorHasNoDone(t *testing.T) {
	srv := newTestServer(t, &wordBackend{fail: errors.New("boom")}, Config{})
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"messages":[{"role":"user","content":"x"}],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	chunks, done := readSSE(t, resp.Body)
	if done || len(chunks) != 2 || chunks[1]["error"] == nil {
		t.Fatalf("done=%v chunks=%v", done, chunks)
	}
}

func TestModelsAndHealth(t *testing.T) {
	srv := newTestServer(t, &wordBackend{}, Config{})
	for path, want := range map[string]string{"/v1/models": `"id":"words"`, "/v1/models/words": `"snapeval_backend":"words:test"`, "/health": `"status":"ok"`} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
	resp, _ := http.Get(srv.URL + "/v1/models/other")
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown model: %d", resp.StatusCode)
	}
}

func TestCanonicalize(t *testing.T) {
	canon := func(spec string) (string, error) {
		if spec == "budget64" {
			return "snapstream:budget=64", nil
		}
		if strings.Contains(spec, "?") {
			return "", fmt.Errorf("cannot parse %q", spec)
		}
		return spec, nil
	}
	srv := newTestServer(t, &wordBackend{}, Config{Policy: "budget64", Canonicalize: canon})
	code, m := post(t, srv.URL+"/v1/completions", `{"prompt":"a","snapeval_policy":"budget64"}`)
	if code != 200 || m["snapeval"].(map[string]any)["cache"].(map[string]any)["policy"] != "snapstream:budget=64" {
		t.Fatalf("%d %v", code, m)
	}
	if code, m := post(t, srv.URL+"/v1/completions", `{"prompt":"a","snapeval_policy":"?"}`); code != 400 {
		t.Fatalf("unparsable policy: %d %v", code, m)
	}
}

func TestNewRejectsBadPolicy(t *testing.T) {
	if _, err := New(Config{Backend: &wordBackend{}, Model: "m", Policy: "h2o"}); err == nil {
		t.Fatal("unsupported fixed policy accepted")
	}
}

func TestConcurrencyBound(t *testing.T) {
	b := &wordBackend{delay: 20 * time.Millisecond}
	srv := newTestServer(t, b, Config{MaxConcurrent: 3})
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			code, m := post(t, srv.URL+"/v1/completions", `{"prompt":"a b"}`)
			if code != 200 {
				t.Errorf("%d %v", code, m)
			}
		})
	}
	wg.Wait()
	if m := b.maxIn.Load(); m != 3 {
		t.Fatalf("max concurrent Generate = %d, want 3", m)
	}
}

// TestThroughOpenAIBackend checks that the openai backend, pointed at the server with forward_policy, returns
// exactly what the backend returns directly, streamed, with the server's cache report.
func TestThroughOpenAIBackend(t *testing.T) {
	wb := &wordBackend{}
	srv := newTestServer(t, wb, Config{})
	t.Setenv("OPENAI_API_KEY", "")
	ob, err := openai.Open(context.Background(), backends.Config{BaseURL: srv.URL + "/v1", Options: map[string]string{"forward_policy": "true", "backoff_base": "1ms"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	for _, req := range []llm.Request{
		{Key: "a", Messages: []llm.Message{{Role: "user", Content: "alpha beta gamma"}}, Sampling: llm.Sampling{MaxNew: 2}, Policy: "snapstream:budget=16"},
		{Key: "b", Prompt: "one two three four", Sampling: llm.Sampling{MaxNew: 10}, Policy: "full"},
	} {
		direct, err := wb.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		remote, err := ob.Generate(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if remote != direct {
			t.Errorf("through serve: %+v\ndirect: %+v", remote, direct)
		}
	}
	req := llm.Request{Key: "c", Prompt: "x", Sampling: llm.Sampling{MaxNew: 1}, Policy: "h2o"}
	if _, err := ob.Generate(context.Background(), req); err == nil || !strings.Contains(err.Error(), "HTTP 400 (invalid_policy)") {
		t.Fatalf("bad policy through serve: %v", err)
	}
}

func TestGracefulShutdown(t *testing.T) {
	b := &wordBackend{delay: 200 * time.Millisecond}
	s, err := New(Config{Backend: b, Model: "words", Log: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, 5*time.Second) }()
	url := "http://" + ln.Addr().String()
	got := make(chan int, 1)
	go func() {
		code, _ := post(t, url+"/v1/completions", `{"prompt":"a b"}`)
		got <- code
	}()
	for b.inflight.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if code := <-got; code != 200 {
		t.Fatalf("request in flight at shutdown got %d", code)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get(url + "/health"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
}
