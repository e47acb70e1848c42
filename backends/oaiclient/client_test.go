package oaiclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/llm"
)

func TestRequestBody(t *testing.T) {
	s := &script{steps: []http.HandlerFunc{good}}
	r, done := open(t, s, nil)
	defer done()
	req := chatReq()
	req.Sampling = llm.Sampling{Temperature: 0, TopP: 0.95, TopK: 20, MaxNew: 16, Stop: []string{"\n\n"}, Seed: 42}
	out, err := r.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Seeded || out.Cache.Policy != "full" || !out.Cache.Declared {
		t.Errorf("output = %+v", out)
	}
	b := s.bodies[0]
	want := map[string]any{"model": "m1", "max_tokens": 16.0, "temperature": 0.0, "top_p": 0.95, "top_k": 20.0, "seed": 42.0, "stream": true}
	for k, v := range want {
		if b[k] != v {
			t.Errorf("body[%s] = %v, want %v", k, b[k], v)
		}
	}
	if so, _ := b["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Errorf("stream_options = %v", b["stream_options"])
	}
	if _, ok := b["snapeval_policy"]; ok {
		t.Errorf("snapeval_policy sent without forward_policy")
	}
}

func TestCompletionsEndpoint(t *testing.T) {
	var path string
	s := &script{steps: []http.HandlerFunc{func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"text\":\"4\",\"finish_reason\":null}]}\n\n")
		fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"text\":\"2\",\"finish_reason\":\"length\"}]}\n\n")
		fmt.Fprint(w, "data: [DONE]\n\n")
	}}}
	r, done := open(t, s, nil)
	defer done()
	out, err := r.Generate(context.Background(), llm.Request{Key: "p", Prompt: "6*7=", Sampling: llm.Sampling{MaxNew: 2}, Policy: "full"})
	if err != nil {
		t.Fatal(err)
	}
	if path != "/v1/completions" || out.Text != "42" || out.FinishReason != "length" || s.bodies[0]["prompt"] != "6*7=" {
		t.Fatalf("path %s, output %+v, body %v", path, out, s.bodies[0])
	}
}

func TestJSONInsteadOfStream(t *testing.T) {
	s := &script{steps: []http.HandlerFunc{func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprint(w, `{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi","reasoning_content":"think"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}`)
	}}}
	r, done := open(t, s, nil)
	defer done()
	out, err := r.Generate(context.Background(), chatReq())
	if err != nil {
		t.Fatal(err)
	}
	if out.Text != "<think>\nthink\n</think>\nHi" || out.PromptTokens != 3 || out.OutputTokens != 1 {
		t.Fatalf("output %+v", out)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		good(w, r)
	}
	s := &script{steps: []http.HandlerFunc{slow}}
	r, done := open(t, s, map[string]string{"concurrency": "2"})
	defer done()
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			_, err := r.Generate(context.Background(), chatReq())
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if m := s.maxIn.Load(); m > 2 || m < 1 {
		t.Fatalf("max in flight = %d, want <= 2", m)
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	s := &script{steps: []http.HandlerFunc{status(429, map[string]string{"Retry-After": "60"}, "")}}
	r, done := open(t, s, nil)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Generate(ctx, chatReq())
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

func TestBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBucket(60) // 1 per second, burst 60
	b.now = func() time.Time { return now }
	if d := b.reserve(60); d != 0 {
		t.Fatalf("first burst waits %v", d)
	}
	if d := b.reserve(1); d != time.Second {
		t.Fatalf("next unit waits %v, want 1s", d)
	}
	now = now.Add(10 * time.Second) // refills 10, one owed
	if d := b.reserve(9); d != 0 {
		t.Fatalf("after refill waits %v", d)
	}
	if d := b.reserve(1000); d != 60*time.Second {
		t.Fatalf("oversized request waits %v, want 60s (clamped to the burst)", d)
	}
	if NewBucket(0) != nil {
		t.Fatal("rate 0 must mean no limit")
	}
	var nb *Bucket
	if err := nb.Wait(context.Background(), 5); err != nil {
		t.Fatal(err)
	}
}

func TestRateLimitWaits(t *testing.T) {
	s := &script{steps: []http.HandlerFunc{good}}
	r, done := open(t, s, map[string]string{"rpm": "600"}) // burst 600, 10/s
	defer done()
	for _, c := range r.clients {
		c.rpm.tokens = 0 // start empty: each request waits 100 ms
	}
	start := time.Now()
	for range 3 {
		if _, err := r.Generate(context.Background(), chatReq()); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("3 requests at 10/s from an empty bucket took %v", el)
	}
}

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions(map[string]string{"max_retries": "2", "attempt_timeout": "90", "backoff_base": "10ms", "rpm": "30", "endpoint": "chat"}, "endpoint")
	if err != nil || o.MaxRetries != 2 || o.AttemptTimeout != 90*time.Second || o.BackoffBase != 10*time.Millisecond || o.RPM != 30 {
		t.Fatalf("%+v, %v", o, err)
	}
	for _, bad := range []map[string]string{{"max_retry": "2"}, {"max_retries": "-1"}, {"rpm": "fast"}, {"attempt_timeout": "forever"}, {"max_line": "10"}} {
		if _, err := ParseOptions(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestPolicies(t *testing.T) {
	full := &script{steps: []http.HandlerFunc{good}}
	snap := &script{steps: []http.HandlerFunc{good}}
	fs, ss := httptest.NewServer(full), httptest.NewServer(snap)
	defer fs.Close()
	defer ss.Close()
	cfg := backends.Config{Model: "m1", PolicyEndpoints: map[string]backends.Endpoint{
		"full":                   {BaseURL: fs.URL + "/v1"},
		"snapstream:budget=1024": {BaseURL: ss.URL + "/v1", Model: "m1"},
	}}
	t.Setenv("TEST_OAI_BASE_URL", "")
	r, err := Open(context.Background(), testFlavor, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.CheckPolicy("snapkv:topk=64"); err == nil || !strings.Contains(err.Error(), "has no endpoint") {
		t.Fatalf("CheckPolicy of an unmapped policy: %v", err)
	}
	for _, p := range []string{"full", "snapstream:budget=1024"} {
		if err := r.CheckPolicy(p); err != nil {
			t.Fatal(err)
		}
		req := chatReq()
		req.Policy = p
		out, err := r.Generate(context.Background(), req)
		if err != nil || out.Cache.Policy != p || !out.Cache.Declared {
			t.Fatalf("policy %s: %+v, %v", p, out, err)
		}
	}
	if full.calls.Load() != 1 || snap.calls.Load() != 1 {
		t.Fatalf("calls full=%d snap=%d", full.calls.Load(), snap.calls.Load())
	}
	if id := r.Identity(); !strings.HasPrefix(id, "test:m1@127.0.0.1:") || !strings.Contains(id, ",") {
		t.Fatalf("identity %q", id)
	}
}

func TestOpenAndPreflight(t *testing.T) {
	models := func(body string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) }))
	}
	one := models(`{"data":[{"id":"only","context_length":1000,"max_completion_tokens":100}]}`)
	defer one.Close()
	two := models(`{"data":[{"id":"a"},{"id":"b"}]}`)
	defer two.Close()
	r, err := Open(context.Background(), testFlavor, backends.Config{BaseURL: one.URL})
	if err != nil {
		t.Fatal(err)
	}
	if ctxLen, maxNew := r.Limits("full"); ctxLen != 1000 || maxNew != 100 || r.def.model != "only" {
		t.Fatalf("limits %d %d model %q", ctxLen, maxNew, r.def.model)
	}
	if err := r.Preflight(context.Background(), 800, 100); err != nil {
		t.Fatal(err)
	}
	if err := r.Preflight(context.Background(), 901, 100); !errors.Is(err, llm.ErrContextOverflow) {
		t.Fatalf("prompt too long: %v", err)
	}
	if err := r.Preflight(context.Background(), 10, 101); !errors.Is(err, llm.ErrContextOverflow) {
		t.Fatalf("too many new tokens: %v", err)
	}
	req := chatReq()
	req.Sampling.MaxNew = 1000
	if _, err := r.Generate(context.Background(), req); !errors.Is(err, llm.ErrContextOverflow) {
		t.Fatalf("max_new >= context: %v", err)
	}
	if _, err := Open(context.Background(), testFlavor, backends.Config{BaseURL: two.URL}); err == nil || !strings.Contains(err.Error(), "pass --model") {
		t.Fatalf("ambiguous model: %v", err)
	}
	if _, err := Open(context.Background(), testFlavor, backends.Config{BaseURL: two.URL, Model: "c"}); err == nil || !strings.Contains(err.Error(), `"c" is not served`) {
		t.Fatalf("unknown model: %v", err)
	}
	t.Setenv("TEST_OAI_BASE_URL", "")
	if _, err := Open(context.Background(), testFlavor, backends.Config{Model: "m"}); err == nil || !strings.Contains(err.Error(), "TEST_OAI_BASE_URL") {
		t.Fatalf("no base URL: %v", err)
	}
	if _, err := Open(context.Background(), testFlavor, backends.Config{Model: "m", BaseURL: "ftp://x"}); err == nil {
		t.Fatal("ftp base URL accepted")
	}
	if _, err := Open(context.Background(), testFlavor, backends.Config{Model: "m", BaseURL: one.URL, Options: map[string]string{"endpoint": "both"}}); err == nil {
		t.Fatal("bad endpoint accepted")
	}
}

// TestKeyNeverLeaks provokes every client-side error path with a key whose text the server and URLs echo.
func TestKeyNeverLeaks(t *testing.T) {
	echo := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"error":{"message":"bad key %s","code":"%s"}}`, r.Header.Get("Authorization"), r.Header.Get("Authorization"))
		}
	}
	for _, code := range []int{400, 401, 403, 404, 429, 500} {
		s := &script{steps: []http.HandlerFunc{echo(code)}}
		r, done := open(t, s, map[string]string{"max_retries": "1"})
		_, err := r.Generate(context.Background(), chatReq())
		done()
		if err == nil || strings.Contains(err.Error(), testKey) {
			t.Errorf("status %d: error %v", code, err)
		}
	}
	// A key placed in the base URL (userinfo) by mistake is not echoed by transport errors either.
	t.Setenv("TEST_OAI_API_KEY", testKey)
	_, err := Open(context.Background(), testFlavor, backends.Config{Model: "m", BaseURL: "http://127.0.0.1:1/v1?k=" + testKey, Options: map[string]string{"max_retries": "0"}})
	if err == nil || strings.Contains(err.Error(), testKey) {
		t.Errorf("dead server: %v", err)
	}
}

// TestNotFoundHintsV1: a base URL without /v1 gets a 404 from OpenAI-compatible servers; the error says what to try.
func TestNotFoundHintsV1(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/models" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"object":"list","data":[{"id":"m"}]}`)
	}))
	defer srv.Close()
	c := New(srv.URL, "", DefaultOptions(), nil)
	_, err := c.Models(context.Background())
	if err == nil || !strings.Contains(err.Error(), "HTTP 404") || !strings.Contains(err.Error(), "did you mean --base-url "+srv.URL+"/v1?") {
		t.Fatalf("Models without /v1: %v", err)
	}
	_, err = c.Complete(context.Background(), "/completions", CompletionRequest{Model: "m", MaxTokens: 1})
	if err == nil || !strings.Contains(err.Error(), "did you mean --base-url") {
		t.Fatalf("Complete without /v1: %v", err)
	}
	if _, err := New(srv.URL+"/v1", "", DefaultOptions(), nil).Models(context.Background()); err != nil {
		t.Fatalf("with /v1: %v", err)
	}
	_, err = New(srv.URL+"/v1", "", DefaultOptions(), nil).Complete(context.Background(), "/nothing", CompletionRequest{Model: "m", MaxTokens: 1})
	if err == nil || strings.Contains(err.Error(), "did you mean") {
		t.Fatalf("a 404 under /v1 offers the /v1 hint: %v", err)
	}
}

// TestUnreachableEndpoint: a request that cannot connect on any attempt fails with llm.ErrUnreachable; once one
// has, further requests make one attempt each (a dead endpoint fails fast) until an attempt connects again, which
// restores the retries. Failures of an endpoint that answers are never ErrUnreachable.
func TestUnreachableEndpoint(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Fail") != "" {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"text\":\"ok\",\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	defer srv.Close()
	var down atomic.Bool
	var dials atomic.Int64
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		if down.Load() {
			return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
		}
		return d.DialContext(ctx, network, addr)
	}
	opts := DefaultOptions()
	opts.MaxRetries, opts.BackoffBase, opts.BackoffMax = 3, time.Millisecond, time.Millisecond
	c := New(srv.URL+"/v1", "", opts, &http.Client{Transport: tr})
	complete := func() (int64, error) {
		before := dials.Load()
		_, err := c.Complete(context.Background(), "/completions", CompletionRequest{Model: "m", MaxTokens: 1})
		return dials.Load() - before, err
	}
	down.Store(true)
	if n, err := complete(); !errors.Is(err, llm.ErrUnreachable) || n != 4 || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("first request to a dead endpoint: %d attempts, %v; want 4 and ErrUnreachable", n, err)
	}
	if n, err := complete(); !errors.Is(err, llm.ErrUnreachable) || n != 1 {
		t.Fatalf("second request: %d attempts, %v; want 1 and ErrUnreachable", n, err)
	}
	down.Store(false)
	if n, err := complete(); err != nil || n != 1 {
		t.Fatalf("endpoint back: %d attempts, %v", n, err)
	}
	down.Store(true)
	if n, _ := complete(); n != 4 {
		t.Fatalf("after a connection the retries are back: %d attempts, want 4", n)
	}
	// An endpoint that answers 500 is not unreachable, however often it fails.
	tr.DialContext = (&net.Dialer{}).DialContext
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r.Header.Set("X-Fail", "1")
		return tr.RoundTrip(r)
	})}
	_, err := New(srv.URL+"/v1", "", opts, hc).Complete(context.Background(), "/completions", CompletionRequest{Model: "m", MaxTokens: 1})
	if err == nil || errors.Is(err, llm.ErrUnreachable) {
		t.Fatalf("HTTP 500s: %v, want an error that is not ErrUnreachable", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
