package oaiclient

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/snapeval/snapeval/llm"
)

// APIError is a failure reported by the server: an HTTP status with an OpenAI-style error body,
// or an error event inside a stream (Status 0).
type APIError struct {
	Status  int    // HTTP status; 0 for an error event inside a 200 stream
	Code    string // the body's "code" (integers are written in decimal), "" if none
	Type    string // the body's "type", "" if none
	Message string // the body's message, truncated, with credentials removed
	// RetryAfter is the delay the server asked for (Retry-After-Ms or Retry-After), 0 if none.
	RetryAfter time.Duration
	// Retryable says whether the request may be sent again.
	Retryable bool
	// kind is llm.ErrContextOverflow, llm.ErrQuotaExhausted or nil.
	kind error
}

// Error describes the failure.
func (e *APIError) Error() string {
	var b strings.Builder
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.Status)
	} else {
		b.WriteString("stream error event")
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	} else if e.Type != "" {
		fmt.Fprintf(&b, " (%s)", e.Type)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.kind != nil {
		fmt.Fprintf(&b, " [%v]", e.kind)
	}
	return b.String()
}

// Unwrap returns llm.ErrContextOverflow or llm.ErrQuotaExhausted when the failure is one of those.
func (e *APIError) Unwrap() error { return e.kind }

// maxMessage bounds the server message kept in an error.
const maxMessage = 512

// errorBody covers the error shapes servers send: OpenAI {"error":{...}}, {"error":"text"},
// vLLM/FastChat {"object":"error","message":...,"code":400}, FastAPI {"detail":...}.
type errorBody struct {
	Error   json.RawMessage `json:"error"`
	Message json.RawMessage `json:"message"`
	Code    json.RawMessage `json:"code"`
	Type    json.RawMessage `json:"type"`
	Detail  json.RawMessage `json:"detail"`
}

type errorObject struct {
	Message json.RawMessage `json:"message"`
	Code    json.RawMessage `json:"code"`
	Type    json.RawMessage `json:"type"`
}

// jsonScalar renders a JSON string, number or bool as text ("" for null, objects and arrays are kept compact).
func jsonScalar(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	t := strings.TrimSpace(string(raw))
	if t == "null" {
		return ""
	}
	return t
}

// ParseError builds the APIError of an HTTP response with status and body (header may be nil).
// It never fails: a body that is not JSON becomes the message. now is used for HTTP-date Retry-After.
// A 429 whose wording speaks of a quota, or whose Retry-After exceeds DefaultQuotaAfter, wraps llm.ErrQuotaExhausted.
func ParseError(status int, header http.Header, body []byte, now time.Time) *APIError {
	return parseError(status, header, body, now, DefaultQuotaAfter)
}

func parseError(status int, header http.Header, body []byte, now time.Time, quotaAfter time.Duration) *APIError {
	e := &APIError{Status: status}
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil {
		var obj errorObject
		if len(eb.Error) > 0 && eb.Error[0] == '{' && json.Unmarshal(eb.Error, &obj) == nil {
			e.Message, e.Code, e.Type = jsonScalar(obj.Message), jsonScalar(obj.Code), jsonScalar(obj.Type)
		} else if s := jsonScalar(eb.Error); s != "" {
			e.Message = s
		}
		if e.Message == "" {
			e.Message = jsonScalar(eb.Message)
		}
		if e.Message == "" {
			e.Message = jsonScalar(eb.Detail)
		}
		if e.Code == "" {
			e.Code = jsonScalar(eb.Code)
		}
		if e.Type == "" {
			e.Type = jsonScalar(eb.Type)
		}
	} else {
		e.Message = strings.TrimSpace(string(body))
	}
	e.Message = truncate(e.Message, maxMessage)
	e.Code = truncate(e.Code, 64)
	e.Type = truncate(e.Type, 64)
	if header != nil {
		e.RetryAfter = ParseRetryAfter(header, now)
	}
	e.classify(quotaAfter)
	return e
}

func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && (s[cut]&0xC0) == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

// overflowPhrases are message fragments servers use for a prompt that does not fit the context
// (OpenAI, vLLM, SGLang, TGI, llama.cpp, SambaNova).
var overflowPhrases = []string{
	"context_length_exceeded",
	"maximum context length",
	"context length exceeded",
	"exceeds the context",
	"exceed_context_size",
	"longer than the maximum model length",
	"maximum model length",
	"prompt is too long",
	"exceeds the maximum context",
	"too many tokens",
	"input tokens exceeds",
	"requested too many tokens",
}

// quotaPhrases mark a 429 that will not clear within minutes.
var quotaPhrases = []string{"quota", "daily", "per day", "insufficient_quota", "billing", "credit"}

// DefaultQuotaAfter is the Retry-After beyond which a 429 counts as an exhausted quota.
const DefaultQuotaAfter = 10 * time.Minute

func (e *APIError) classify(quotaAfter time.Duration) {
	text := strings.ToLower(e.Code + " " + e.Type + " " + e.Message)
	isOverflow := e.Code == "context_length_exceeded"
	for _, p := range overflowPhrases {
		if strings.Contains(text, p) {
			isOverflow = true
		}
	}
	switch {
	case isOverflow && (e.Status == 0 || e.Status == 400 || e.Status == 413 || e.Status == 422):
		e.kind = llm.ErrContextOverflow
	case e.Status == http.StatusTooManyRequests || e.Status == 0 && hasQuotaWording(text):
		if e.RetryAfter > quotaAfter || hasQuotaWording(text) {
			e.kind = llm.ErrQuotaExhausted
		} else {
			e.Retryable = true
		}
	case e.Status == 0: // an error event in a stream: the server failed mid-generation
		e.Retryable = true
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusConflict, e.Status >= 500:
		e.Retryable = true
	}
}

// ParseRetryAfter reads Retry-After-Ms (milliseconds) or Retry-After (seconds or an HTTP date); 0 if absent or invalid.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < 1e12 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 || s > 1e9 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

func hasQuotaWording(text string) bool {
	for _, p := range quotaPhrases {
		if strings.Contains(text, p) {
			return true
		}
	}
	return false
}
