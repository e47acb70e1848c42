package oaiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/llm"
)

// testKey is put in the environment; no error text may contain it.
const testKey = "sk-test-SECRET-0123456789abcdef"

var testFlavor = Flavor{Name: "test", BaseURLEnv: "TEST_OAI_BASE_URL", KeyEnv: "TEST_OAI_API_KEY", Seed: true}

// script is a fake OpenAI server whose n-th completion request is answered by steps[min(n, len-1)].
type script struct {
	steps    []http.HandlerFunc
	calls    atomic.Int32
	inflight atomic.Int32
	maxIn    atomic.Int32
	mu       sync.Mutex
	bodies   []map[string]any
	auth     []string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/v1/models" {
		fmt.Fprint(w, `{"object":"list","data":[{"id":"m1","object":"model","max_model_len":4096}]}`)
		return
	}
	n := int(s.calls.Add(1)) - 1
	in := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for {
		m := s.maxIn.Load()
		if in <= m || s.maxIn.CompareAndSwap(m, in) {
			break
		}
	}
	var body map[string]any
	b, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(b, &body)
	s.mu.Lock()
	s.bodies = append(s.bodies, body)
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.mu.Unlock()
	s.steps[min(n, len(s.steps)-1)](w, r)
}

// sse writes a well-formed chat stream of pieces, then finish and a usage chunk, then [DONE] if done.
func sse(pieces []string, finish, usage string, done bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n")
		for _, p := range pieces {
			b, _ := json.Marshal(p)
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":%s},\"finish_reason\":null}]}\n\n", b)
			w.(http.Flusher).Flush()
		}
		fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":%q}]}\n\n", finish)
		if usage != "" {
			fmt.Fprintf(w, "data: {\"choices\":[],\"usage\":%s}\n\n", usage)
		}
		if done {
			fmt.Fprint(w, "data: [DONE]\n\n")
		}
	}
}

var good = sse([]string{"Hel", "lo"}, "stop", `{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}`, true)

func status(code int, header map[string]string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}
}

// reset writes the start of a stream, then aborts the TCP connection (RST).
func reset(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n")
	w.(http.Flusher).Flush()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	conn.Close()
}

// hang never answers until the client gives up.
func hang(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

func open(t *testing.T, s *script, opts map[string]string) (*Remote, func()) {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Setenv("TEST_OAI_API_KEY", testKey)
	o := map[string]string{"backoff_base": "1ms", "backoff_max": "5ms", "max_retries": "8", "attempt_timeout": "5s"}
	for k, v := range opts {
		o[k] = v
	}
	r, err := Open(context.Background(), testFlavor, backends.Config{Model: "m1", BaseURL: srv.URL + "/v1", Options: o})
	if err != nil {
		t.Fatal(err)
	}
	return r, func() { r.Close(); srv.Close() }
}

func chatReq() llm.Request {
	return llm.Request{Key: "k1", Messages: []llm.Message{{Role: "user", Content: "hi"}},
		Sampling: llm.Sampling{MaxNew: 16, Seed: 42}, Policy: "full"}
}

func TestFaults(t *testing.T) {
	truncated := sse([]string{"Hel", "lo"}, "stop", "", false)
	malformed := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}\n\ndata: [DONE]\n\n")
	}
	hugeLine := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"")
		chunk := strings.Repeat("x", 64<<10)
		for i := 0; i < 160; i++ { // 10 MiB
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
		fmt.Fprint(w, "\"}}]}\n\ndata: [DONE]\n\n")
	}
	errorEvent := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n")
		fmt.Fprint(w, "event: error\ndata: {\"error\":{\"message\":\"worker died\",\"type\":\"server_error\"}}\n\n")
	}
	inlineError := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"error\":{\"message\":\"overloaded\",\"code\":503}}\n\n")
	}
	echoKey := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(401)
		fmt.Fprintf(w, `{"error":{"message":"Incorrect API key provided: %s","code":"invalid_api_key"}}`, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	}
	quota := status(429, nil, `{"error":{"message":"You exceeded your current quota (requests per day)","code":"insufficient_quota"}}`)
	ms := map[string]string{"Retry-After-Ms": "30"}
	tests := []struct {
		name  string
		steps []http.HandlerFunc
		opts  map[string]string
		calls int
		// loose: the server may see fewer requests (an attempt can time out before the handler runs on a loaded machine)
		loose    bool
		wantErr  error  // a sentinel the error must wrap
		errText  string // a fragment the error must contain ("" with wantErr nil and no error expected)
		minTime  time.Duration
		maxTime  time.Duration
		wantText string
	}{
		{name: "429 storm without retry-after", steps: []http.HandlerFunc{status(429, nil, `{"error":"rate limited"}`), status(429, nil, ""), status(429, nil, ""), status(429, nil, ""), status(429, nil, ""), good}, calls: 6, wantText: "Hello"},
		{name: "429 storm with retry-after-ms", steps: []http.HandlerFunc{status(429, ms, ""), status(429, ms, ""), status(429, ms, ""), good}, calls: 4, minTime: 90 * time.Millisecond, wantText: "Hello"},
		{name: "429 with retry-after seconds", steps: []http.HandlerFunc{status(429, map[string]string{"Retry-After": "1"}, ""), good}, calls: 2, minTime: time.Second, wantText: "Hello"},
		{name: "429 forever", steps: []http.HandlerFunc{status(429, nil, `{"error":"rate limited"}`)}, opts: map[string]string{"max_retries": "3"}, calls: 4, errText: "after 4 attempts: HTTP 429"},
		{name: "500s then success", steps: []http.HandlerFunc{status(500, nil, "boom"), status(502, nil, ""), good}, calls: 3, wantText: "Hello"},
		{name: "500 forever", steps: []http.HandlerFunc{status(500, nil, `{"error":{"message":"boom"}}`)}, opts: map[string]string{"max_retries": "2"}, calls: 3, errText: "HTTP 500: boom"},
		{name: "503 maintenance", steps: []http.HandlerFunc{status(503, map[string]string{"Retry-After-Ms": "20"}, "<html>maintenance</html>"), status(503, nil, "<html>maintenance</html>"), good}, calls: 3, wantText: "Hello"},
		{name: "408 and 409 retried", steps: []http.HandlerFunc{status(408, nil, ""), status(409, nil, ""), good}, calls: 3, wantText: "Hello"},
		{name: "connection reset mid-stream", steps: []http.HandlerFunc{reset, reset, good}, calls: 3, wantText: "Hello"},
		{name: "connection reset forever", steps: []http.HandlerFunc{reset}, opts: map[string]string{"max_retries": "2"}, calls: 3, errText: "after 3 attempts"},
		{name: "truncated stream", steps: []http.HandlerFunc{truncated, good}, calls: 2, wantText: "Hello"},
		{name: "truncated forever", steps: []http.HandlerFunc{truncated}, opts: map[string]string{"max_retries": "1"}, calls: 2, errText: "stream ended before [DONE]"},
		{name: "malformed JSON", steps: []http.HandlerFunc{malformed, good}, calls: 2, wantText: "Hello"},
		{name: "malformed JSON forever", steps: []http.HandlerFunc{malformed}, opts: map[string]string{"max_retries": "1"}, calls: 2, errText: "malformed JSON in stream event ending at line 2"},
		{name: "10 MB line", steps: []http.HandlerFunc{hugeLine}, calls: 1, errText: "line too long"},
		{name: "error event mid-stream", steps: []http.HandlerFunc{errorEvent, good}, calls: 2, wantText: "Hello"},
		{name: "inline error object", steps: []http.HandlerFunc{inlineError, good}, calls: 2, wantText: "Hello"},
		{name: "never answers", steps: []http.HandlerFunc{hang}, opts: map[string]string{"attempt_timeout": "100ms", "max_retries": "2"}, calls: 3, loose: true, errText: "attempt timed out after 100ms", minTime: 300 * time.Millisecond, maxTime: 5 * time.Second},
		{name: "never answers once", steps: []http.HandlerFunc{hang, good}, opts: map[string]string{"attempt_timeout": "100ms"}, calls: 2, loose: true, wantText: "Hello"},
		{name: "daily quota", steps: []http.HandlerFunc{quota}, calls: 1, wantErr: llm.ErrQuotaExhausted, errText: "quota"},
		{name: "quota by retry-after", steps: []http.HandlerFunc{status(429, map[string]string{"Retry-After": "3600"}, "")}, calls: 1, wantErr: llm.ErrQuotaExhausted},
		{name: "context length exceeded", steps: []http.HandlerFunc{status(400, nil, `{"error":{"message":"too long","code":"context_length_exceeded"}}`)}, calls: 1, wantErr: llm.ErrContextOverflow},
		{name: "vllm overflow integer code", steps: []http.HandlerFunc{status(400, nil, `{"object":"error","message":"This model's maximum context length is 4096 tokens.","code":400}`)}, calls: 1, wantErr: llm.ErrContextOverflow},
		{name: "other 4xx not retried", steps: []http.HandlerFunc{status(404, nil, `{"error":{"message":"no such model","code":"model_not_found"}}`)}, calls: 1, errText: "HTTP 404 (model_not_found): no such model"},
		{name: "key echoed in error body", steps: []http.HandlerFunc{echoKey}, calls: 1, errText: "[REDACTED]"},
		{name: "stream without choices", steps: []http.HandlerFunc{func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\ndata: [DONE]\n\n")
		}}, opts: map[string]string{"max_retries": "1"}, calls: 2, errText: "without any choice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{steps: tt.steps}
			r, done := open(t, s, tt.opts)
			defer done()
			start := time.Now()
			out, err := r.Generate(context.Background(), chatReq())
			el := time.Since(start)
			if got := int(s.calls.Load()); got != tt.calls && !(tt.loose && got >= 1 && got < tt.calls) {
				t.Errorf("server saw %d requests, want %d", got, tt.calls)
			}
			if tt.wantText != "" {
				if err != nil {
					t.Fatalf("Generate: %v", err)
				}
				if out.Text != tt.wantText || out.FinishReason != "stop" || out.PromptTokens != 7 || out.OutputTokens != 2 {
					t.Fatalf("output = %+v", out)
				}
			} else {
				if err == nil {
					t.Fatalf("Generate returned %+v and no error", out)
				}
				if out.Text != "" {
					t.Errorf("an error came with text %q", out.Text)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("error %q does not wrap %v", err, tt.wantErr)
				}
				if tt.wantErr == nil && (errors.Is(err, llm.ErrQuotaExhausted) || errors.Is(err, llm.ErrContextOverflow)) {
					t.Errorf("error %q misclassified", err)
				}
				if !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("error %q lacks %q", err, tt.errText)
				}
				if strings.Contains(err.Error(), testKey) {
					t.Errorf("error leaks the API key: %q", err)
				}
			}
			if el < tt.minTime || tt.maxTime > 0 && el > tt.maxTime {
				t.Errorf("took %v, want within [%v, %v]", el, tt.minTime, tt.maxTime)
			}
			s.mu.Lock() // a handler of an abandoned attempt may still be appending
			auth := append([]string(nil), s.auth...)
			s.mu.Unlock()
			for _, a := range auth {
				if a != "Bearer "+testKey {
					t.Errorf("Authorization header = %q", a)
				}
			}
		})
	}
}
