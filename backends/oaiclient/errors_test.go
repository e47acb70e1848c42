package oaiclient

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/snapeval/snapeval/llm"
)

func TestParseError(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name      string
		status    int
		header    http.Header
		body      string
		code, msg string
		kind      error
		retryable bool
		after     time.Duration
	}{
		{"openai string code overflow", 400, nil,
			`{"error":{"message":"This model's maximum context length is 4096 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
			"context_length_exceeded", "This model's maximum context length is 4096 tokens.", llm.ErrContextOverflow, false, 0},
		{"vllm integer code overflow", 400, nil,
			`{"object":"error","message":"This model's maximum context length is 2048 tokens. However, you requested 3000 tokens.","type":"BadRequestError","param":null,"code":400}`,
			"400", "This model's maximum context length is 2048 tokens. However, you requested 3000 tokens.", llm.ErrContextOverflow, false, 0},
		{"vllm nested integer code", 400, nil,
			`{"error":{"message":"The decoder prompt (length 9000) is longer than the maximum model length of 8192.","type":"BadRequestError","code":400}}`,
			"400", "The decoder prompt (length 9000) is longer than the maximum model length of 8192.", llm.ErrContextOverflow, false, 0},
		{"plain 400", 400, nil, `{"error":{"message":"temperature must be non-negative","code":null}}`,
			"", "temperature must be non-negative", nil, false, 0},
		{"error as string", 401, nil, `{"error":"invalid api key"}`, "", "invalid api key", nil, false, 0},
		{"fastapi detail", 422, nil, `{"detail":"field required"}`, "", "field required", nil, false, 0},
		{"html 503", 503, nil, `<html><body>Service under maintenance</body></html>`, "",
			"<html><body>Service under maintenance</body></html>", nil, true, 0},
		{"rate limit with retry-after", 429, http.Header{"Retry-After": {"2"}}, `{"error":{"message":"Rate limit exceeded","code":"rate_limit_exceeded"}}`,
			"rate_limit_exceeded", "Rate limit exceeded", nil, true, 2 * time.Second},
		{"rate limit retry-after-ms", 429, http.Header{"Retry-After-Ms": {"250"}, "Retry-After": {"9"}}, `{}`,
			"", "", nil, true, 250 * time.Millisecond},
		{"daily quota by wording", 429, nil, `{"error":{"message":"You have exceeded your daily request quota"}}`,
			"", "You have exceeded your daily request quota", llm.ErrQuotaExhausted, false, 0},
		{"quota by long retry-after", 429, http.Header{"Retry-After": {"86400"}}, `{"error":"slow down"}`,
			"", "slow down", llm.ErrQuotaExhausted, false, 86400 * time.Second},
		{"retry-after http date", 429, http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, ``,
			"", "", nil, true, 90 * time.Second},
		{"408", 408, nil, ``, "", "", nil, true, 0},
		{"409", 409, nil, ``, "", "", nil, true, 0},
		{"404", 404, nil, `{"error":{"message":"model not found","code":"model_not_found"}}`, "model_not_found", "model not found", nil, false, 0},
		{"stream error event", 0, nil, `{"error":{"message":"internal error","type":"server_error"}}`, "", "internal error", nil, true, 0},
		{"stream overflow event", 0, nil, `{"error":{"message":"x","code":"context_length_exceeded"}}`, "context_length_exceeded", "x", llm.ErrContextOverflow, false, 0},
		{"stream quota event", 0, nil, `{"error":{"message":"daily limit","code":"insufficient_quota"},"status":429}`, "insufficient_quota", "daily limit", llm.ErrQuotaExhausted, false, 0},
		{"code as object", 500, nil, `{"error":{"message":"m","code":{"a":1}}}`, `{"a":1}`, "m", nil, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ParseError(tt.status, tt.header, []byte(tt.body), now)
			if e.Code != tt.code || e.Message != tt.msg {
				t.Errorf("code, message = %q, %q; want %q, %q", e.Code, e.Message, tt.code, tt.msg)
			}
			if tt.kind != nil && !errors.Is(e, tt.kind) || tt.kind == nil && e.Unwrap() != nil {
				t.Errorf("kind = %v, want %v", e.Unwrap(), tt.kind)
			}
			if e.Retryable != tt.retryable {
				t.Errorf("retryable = %v, want %v", e.Retryable, tt.retryable)
			}
			if e.RetryAfter != tt.after {
				t.Errorf("retry after = %v, want %v", e.RetryAfter, tt.after)
			}
			if e.Error() == "" {
				t.Error("empty error text")
			}
		})
	}
}

func TestParseErrorTruncates(t *testing.T) {
	e := ParseError(500, nil, []byte(strings.Repeat("é", 5000)), time.Now())
	if len(e.Message) > maxMessage+len("…") {
		t.Fatalf("message of %d bytes not truncated", len(e.Message))
	}
	if !strings.HasSuffix(e.Message, "…") || strings.ContainsRune(e.Message, '\uFFFD') {
		t.Fatalf("bad truncation: %q", e.Message[len(e.Message)-10:])
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{}, 0},
		{http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{http.Header{"Retry-After": {"0.5"}}, 500 * time.Millisecond},
		{http.Header{"Retry-After": {"-1"}}, 0},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{http.Header{"Retry-After": {now.Add(-time.Hour).Format(http.TimeFormat)}}, 0},
		{http.Header{"Retry-After": {now.Add(time.Hour).Format(http.TimeFormat)}}, time.Hour},
		{http.Header{"Retry-After-Ms": {"1500"}}, 1500 * time.Millisecond},
		{http.Header{"Retry-After-Ms": {"junk"}, "Retry-After": {"2"}}, 2 * time.Second},
	}
	for _, tt := range tests {
		if got := ParseRetryAfter(tt.h, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%v) = %v, want %v", tt.h, got, tt.want)
		}
	}
}

func FuzzParseError(f *testing.F) {
	for _, s := range []string{
		`{"error":{"message":"m","code":"context_length_exceeded"}}`, `{"object":"error","message":"x","code":400}`,
		`{"error":"s"}`, `{"detail":[{"loc":["body"],"msg":"bad"}]}`, `<html>`, ``, `null`, `{"error":null}`, `{"error":{"code":1e999}}`,
	} {
		f.Add(429, s, "5")
		f.Add(400, s, "")
	}
	f.Fuzz(func(t *testing.T, status int, body, retryAfter string) {
		e := ParseError(status, http.Header{"Retry-After": {retryAfter}}, []byte(body), time.Unix(0, 0))
		if e.RetryAfter < 0 {
			t.Fatalf("negative retry-after %v", e.RetryAfter)
		}
		if len(e.Message) > maxMessage+4 {
			t.Fatalf("message of %d bytes", len(e.Message))
		}
		if e.Retryable && e.Unwrap() != nil {
			t.Fatalf("a classified error (%v) must not be retryable", e.Unwrap())
		}
		_ = e.Error()
	})
}
