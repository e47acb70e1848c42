// Package oaiclient is a robust client for the OpenAI HTTP protocol (chat and text completions, streamed as
// server-sent events) shared by the remote backends: retries with exponential backoff and full jitter that honour
// Retry-After, a per-attempt timeout apart from the caller's deadline, client-side request and token rate limits,
// a concurrency bound, bounded SSE lines, classified errors (context overflow, exhausted quota) and API keys kept
// out of every error.
package oaiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/snapeval/snapeval/llm"
)

// Options are the client settings a backend reads from backends.Config.Options.
type Options struct {
	MaxRetries     int           // retries after the first attempt ("max_retries", default 6)
	AttemptTimeout time.Duration // bound on one HTTP attempt, stream included ("attempt_timeout", default 10m)
	BackoffBase    time.Duration // first backoff ceiling ("backoff_base", default 500ms)
	BackoffMax     time.Duration // largest backoff ceiling ("backoff_max", default 30s)
	RPM            float64       // requests per minute, 0 = unlimited ("rpm")
	TPM            float64       // tokens per minute (prompt estimate + max_tokens), 0 = unlimited ("tpm")
	Concurrency    int           // requests in flight per endpoint, 0 = unlimited ("concurrency")
	MaxLine        int           // bound on one SSE line in bytes ("max_line", default 1 MiB)
	QuotaAfter     time.Duration // a 429 asking to wait longer than this is an exhausted quota ("quota_after", default 10m)
}

// DefaultOptions returns the defaults listed on Options.
func DefaultOptions() Options {
	return Options{
		MaxRetries:     6,
		AttemptTimeout: 10 * time.Minute,
		BackoffBase:    500 * time.Millisecond,
		BackoffMax:     30 * time.Second,
		MaxLine:        DefaultMaxLine,
		QuotaAfter:     DefaultQuotaAfter,
	}
}

// OptionKeys are the Config.Options keys ParseOptions reads.
var OptionKeys = []string{"max_retries", "attempt_timeout", "backoff_base", "backoff_max", "rpm", "tpm", "concurrency", "max_line", "quota_after"}

// ParseOptions reads the client settings from opts over DefaultOptions. Keys in neither OptionKeys nor
// extra are an error, so that a misspelt option never passes silently.
func ParseOptions(opts map[string]string, extra ...string) (Options, error) {
	o := DefaultOptions()
	known := map[string]bool{}
	for _, k := range append(append([]string{}, OptionKeys...), extra...) {
		known[k] = true
	}
	for k, v := range opts {
		if !known[k] {
			return o, fmt.Errorf("unknown backend option %q (known: %s)", k, strings.Join(append(append([]string{}, OptionKeys...), extra...), ", "))
		}
		var err error
		switch k {
		case "max_retries":
			o.MaxRetries, err = nonNegInt(v)
		case "concurrency":
			o.Concurrency, err = nonNegInt(v)
		case "max_line":
			o.MaxLine, err = nonNegInt(v)
			if err == nil && o.MaxLine < 1024 {
				err = errors.New("must be at least 1024")
			}
		case "rpm":
			o.RPM, err = nonNegFloat(v)
		case "tpm":
			o.TPM, err = nonNegFloat(v)
		case "attempt_timeout":
			o.AttemptTimeout, err = duration(v)
		case "backoff_base":
			o.BackoffBase, err = duration(v)
		case "backoff_max":
			o.BackoffMax, err = duration(v)
		case "quota_after":
			o.QuotaAfter, err = duration(v)
		}
		if err != nil {
			return o, fmt.Errorf("backend option %s=%q: %v", k, v, err)
		}
	}
	return o, nil
}

func nonNegInt(v string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0, errors.New("want a non-negative integer")
	}
	return n, nil
}

func nonNegFloat(v string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f < 0 || f != f {
		return 0, errors.New("want a non-negative number")
	}
	return f, nil
}

// duration accepts Go durations ("90s", "2m") and plain numbers of seconds.
func duration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 {
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errors.New("want a duration such as 30s or 2m")
	}
	return d, nil
}

// Client speaks the OpenAI protocol to one endpoint (base URL). It is safe for concurrent use.
type Client struct {
	baseURL string
	apiKey  string
	opts    Options
	http    *http.Client
	rpm     *Bucket
	tpm     *Bucket
	sem     Semaphore
	// down is set when a request gave up because it could not connect on any attempt, until an attempt connects.
	down atomic.Bool
	// now and jitter are replaced in tests.
	now    func() time.Time
	jitter func(max time.Duration) time.Duration
}

// New returns a client for baseURL (e.g. "http://localhost:8000/v1"; a missing "/v1" is not added) with apiKey
// ("" for none). httpClient may be nil.
func New(baseURL, apiKey string, opts Options, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Transport: http.DefaultTransport}
	}
	return &Client{
		baseURL: strings.TrimRight(baseURL, "/"),
		apiKey:  apiKey,
		opts:    opts,
		http:    httpClient,
		rpm:     NewBucket(opts.RPM),
		tpm:     NewBucket(opts.TPM),
		sem:     NewSemaphore(opts.Concurrency),
		now:     time.Now,
		jitter: func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return time.Duration(rand.Int64N(int64(max) + 1))
		},
	}
}

// BaseURL is the endpoint's base URL as shown in messages: without user info or query, and with the API key
// redacted.
func (c *Client) BaseURL() string {
	s := c.baseURL
	if u, err := url.Parse(s); err == nil {
		u.User, u.RawQuery, u.Fragment = nil, "", ""
		s = u.String()
	}
	return Redact(s, c.apiKey)
}

// Result is a completed generation.
type Result struct {
	Text string
	// Reasoning is reasoning text streamed apart from the answer (reasoning_content), "" if none.
	Reasoning    string
	FinishReason string
	// Usage is the final usage object, nil when the server sent none.
	Usage *Usage
	// Snapeval is the cache report of a `snapeval serve` server, nil otherwise.
	Snapeval *llm.CacheReport
	// TTFT is the time from sending the successful attempt to its first content; Elapsed to its end.
	TTFT, Elapsed time.Duration
	// Attempts is the number of HTTP attempts made (1 when the first succeeded).
	Attempts int

	sawChoice bool
}

// transientError is a failure worth retrying that is not an APIError (transport, truncated stream, bad JSON, timeout).
// unreachable marks a failure to connect at all (refused, no such host): it unwraps to llm.ErrUnreachable.
type transientError struct {
	msg         string
	unreachable bool
}

func (e *transientError) Error() string { return e.msg }

// Unwrap is llm.ErrUnreachable for a failure to connect, nil otherwise.
func (e *transientError) Unwrap() error {
	if e.unreachable {
		return llm.ErrUnreachable
	}
	return nil
}

// cannotConnect reports whether a transport error means the endpoint could not be connected to at all: the
// connection was refused or timed out while dialing, or the host name does not resolve.
func cannotConnect(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// downSince turns the last failure of a request that connected but broke off (a reset, a stream cut short) into
// an unreachable one when the endpoint no longer accepts connections: a server that died while answering is down,
// not a backend error of this request (so the run stops instead of recording it). Other errors are returned as
// they are.
func (c *Client) downSince(ctx context.Context, err error) error {
	var te *transientError
	if !errors.As(err, &te) || te.unreachable {
		return err
	}
	u, perr := url.Parse(c.baseURL)
	if perr != nil || u.Host == "" {
		return err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[bool]string{true: "443", false: "80"}[u.Scheme == "https"])
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, derr := (&net.Dialer{}).DialContext(dctx, "tcp", host)
	if derr == nil {
		conn.Close()
		return err
	}
	if !cannotConnect(derr) {
		return err
	}
	return &transientError{msg: fmt.Sprintf("%v; the endpoint no longer accepts connections (%v)", err, derr), unreachable: true}
}

// protocolError is a permanent protocol failure (an over-long SSE line, an unreadable success body).
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

// retryable reports whether err may clear on another attempt.
func retryable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Retryable
	}
	var te *transientError
	return errors.As(err, &te)
}

// Complete sends req to path ("/chat/completions" or "/completions", relative to the base URL) as a stream and
// returns the assembled result, retrying transient failures. Errors wrap llm.ErrContextOverflow,
// llm.ErrQuotaExhausted or ctx.Err() where they apply, and never contain the API key.
func (c *Client) Complete(ctx context.Context, path string, req CompletionRequest) (Result, error) {
	req.Stream = true
	req.StreamOptions = &StreamOptions{IncludeUsage: true}
	body, err := json.Marshal(req)
	if err != nil {
		return Result{}, fmt.Errorf("encoding request: %v", err)
	}
	tokens := float64(estimateTokens(req))
	retries := c.opts.MaxRetries
	if c.down.Load() {
		retries = 0 // a request already spent its retries on a down endpoint: one attempt each until one connects
	}
	var last error
	for attempt := 0; ; attempt++ {
		res, err := c.once(ctx, path, body, tokens)
		if err == nil {
			res.Attempts = attempt + 1
			return res, nil
		}
		if ctx.Err() != nil {
			return Result{}, c.redact(stopped(attempt+1, ctx.Err(), last))
		}
		last = err
		if !retryable(err) || attempt >= retries {
			err = c.downSince(ctx, err)
			if errors.Is(err, llm.ErrUnreachable) {
				c.down.Store(true)
			}
			if attempt > 0 {
				err = fmt.Errorf("after %d attempts: %w", attempt+1, err)
			}
			return Result{}, c.redact(err)
		}
		if err := sleep(ctx, c.backoff(attempt, err)); err != nil {
			return Result{}, c.redact(stopped(attempt+1, err, last))
		}
	}
}

// stopped describes a request given up because its context ended, with the last failure if there was one.
func stopped(attempts int, ctxErr, last error) error {
	if last == nil {
		return fmt.Errorf("after %d attempt(s): %w", attempts, ctxErr)
	}
	return fmt.Errorf("after %d attempt(s): %w (last error: %v)", attempts, ctxErr, last)
}

// backoff is the wait before retry number attempt+1: the server's Retry-After if it gave one, else full jitter
// over min(BackoffMax, BackoffBase * 2^attempt).
func (c *Client) backoff(attempt int, err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return ae.RetryAfter
	}
	ceil := c.opts.BackoffBase
	for i := 0; i < attempt && ceil < c.opts.BackoffMax; i++ {
		ceil *= 2
	}
	if ceil > c.opts.BackoffMax {
		ceil = c.opts.BackoffMax
	}
	return c.jitter(ceil)
}

// estimateTokens guesses the tokens a request costs for the tokens-per-minute limit: prompt bytes / 4 + max_tokens.
func estimateTokens(req CompletionRequest) int {
	n := 0
	if req.Prompt != nil {
		n += len(*req.Prompt)
	}
	for _, m := range req.Messages {
		n += len(m.Content) + 4
	}
	return n/4 + req.MaxTokens
}

// once makes one attempt under the limits and the per-attempt timeout.
func (c *Client) once(ctx context.Context, path string, body []byte, tokens float64) (Result, error) {
	if err := c.sem.Acquire(ctx); err != nil {
		return Result{}, err
	}
	defer c.sem.Release()
	if err := c.rpm.Wait(ctx, 1); err != nil {
		return Result{}, err
	}
	if err := c.tpm.Wait(ctx, tokens); err != nil {
		return Result{}, err
	}
	actx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
	defer cancel()
	res, err := c.attempt(actx, path, body)
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return Result{}, &transientError{msg: fmt.Sprintf("attempt timed out after %v: %v", c.opts.AttemptTimeout, err)}
	}
	return res, err
}

func (c *Client) newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hr, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, rd)
	if err != nil {
		return nil, &protocolError{fmt.Sprintf("bad base URL: %v", err)}
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("Accept", "text/event-stream")
	}
	if c.apiKey != "" {
		hr.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	return hr, nil
}

// maxErrorBody and maxJSONBody bound what is read of an error body and of a non-streamed success body.
const (
	maxErrorBody = 64 << 10
	maxJSONBody  = 64 << 20
)

func (c *Client) attempt(ctx context.Context, path string, body []byte) (Result, error) {
	hr, err := c.newRequest(ctx, http.MethodPost, path, body)
	if err != nil {
		return Result{}, err
	}
	start := c.now()
	resp, err := c.http.Do(hr)
	if err == nil {
		c.down.Store(false)
	}
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, &transientError{msg: fmt.Sprintf("POST %s: %v", path, transportCause(err)), unreachable: cannotConnect(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return Result{}, c.hintV1(parseError(resp.StatusCode, resp.Header, b, c.now(), c.opts.QuotaAfter))
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/json" {
		return c.readJSON(resp.Body, start)
	}
	return c.readStream(ctx, resp.Body, start)
}

// hintV1 adds a hint to a 404 from a base URL that does not end in /v1: OpenAI-compatible servers answer under
// /v1, and a base URL without it is the usual cause.
func (c *Client) hintV1(e *APIError) error {
	if e.Status != http.StatusNotFound {
		return e
	}
	u, err := url.Parse(c.baseURL)
	if err != nil || strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/v1") {
		return e
	}
	return fmt.Errorf("%w (did you mean --base-url %s/v1? OpenAI-compatible servers answer under /v1)", e, c.BaseURL())
}

// transportCause strips the *url.Error wrapper (which repeats the URL) down to its cause.
func transportCause(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// readJSON handles a server that answered a streamed request with one JSON body.
func (c *Client) readJSON(r io.Reader, start time.Time) (Result, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxJSONBody+1))
	if err != nil {
		return Result{}, &transientError{msg: fmt.Sprintf("reading response: %v", err)}
	}
	if len(b) > maxJSONBody {
		return Result{}, &protocolError{fmt.Sprintf("response body exceeds %d bytes", maxJSONBody)}
	}
	var ch Chunk
	if err := json.Unmarshal(b, &ch); err != nil {
		return Result{}, &transientError{msg: fmt.Sprintf("malformed JSON response: %v", err)}
	}
	var res Result
	if err := res.add(&ch); err != nil {
		return Result{}, err
	}
	if len(ch.Choices) == 0 {
		return Result{}, &transientError{msg: "response has no choices"}
	}
	res.Elapsed = c.now().Sub(start)
	res.TTFT = res.Elapsed
	return res, nil
}

func (c *Client) readStream(ctx context.Context, r io.Reader, start time.Time) (Result, error) {
	sr := NewSSEReader(r, c.opts.MaxLine)
	var res Result
	gotFirst := false
	for {
		ev, err := sr.Next()
		if err != nil {
			if ctx.Err() != nil {
				return Result{}, ctx.Err()
			}
			if errors.Is(err, ErrLineTooLong) {
				return Result{}, &protocolError{err.Error()}
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return Result{}, &transientError{msg: fmt.Sprintf("stream ended before [DONE] after %d lines", sr.Line())}
			}
			return Result{}, &transientError{msg: fmt.Sprintf("reading stream at line %d: %v", sr.Line(), err)}
		}
		data := strings.TrimSpace(ev.Data)
		if ev.Type == "error" {
			return Result{}, parseError(0, nil, []byte(data), c.now(), c.opts.QuotaAfter)
		}
		if data == "[DONE]" {
			if !res.sawChoice {
				return Result{}, &transientError{msg: "stream finished without any choice"}
			}
			res.Elapsed = c.now().Sub(start)
			if !gotFirst {
				res.TTFT = res.Elapsed
			}
			return res, nil
		}
		if data == "" {
			continue
		}
		var ch Chunk
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			return Result{}, &transientError{msg: fmt.Sprintf("malformed JSON in stream event ending at line %d: %v", sr.Line(), err)}
		}
		before := len(res.Text) + len(res.Reasoning)
		if err := res.add(&ch); err != nil {
			return Result{}, err
		}
		if !gotFirst && len(res.Text)+len(res.Reasoning) > before {
			gotFirst = true
			res.TTFT = c.now().Sub(start)
		}
	}
}

// add folds one chunk (or whole response) into the result. Only choice 0 is kept (n is always 1).
func (res *Result) add(ch *Chunk) error {
	if len(ch.Error) > 0 && string(ch.Error) != "null" {
		body, _ := json.Marshal(map[string]json.RawMessage{"error": ch.Error})
		return ParseError(0, nil, body, time.Now())
	}
	for _, c := range ch.Choices {
		if c.Index != 0 {
			continue
		}
		res.sawChoice = true
		for _, m := range []*Content{c.Delta, c.Message} {
			if m == nil {
				continue
			}
			if m.Content != nil {
				res.Text += *m.Content
			}
			if m.ReasoningContent != nil {
				res.Reasoning += *m.ReasoningContent
			}
		}
		if c.Text != nil {
			res.Text += *c.Text
		}
		if c.FinishReason != nil && *c.FinishReason != "" {
			res.FinishReason = *c.FinishReason
		}
	}
	if len(ch.Usage) > 0 && string(ch.Usage) != "null" {
		var u Usage
		if err := json.Unmarshal(ch.Usage, &u); err != nil {
			return &transientError{msg: fmt.Sprintf("malformed usage object: %v", err)}
		}
		u.Raw = append(json.RawMessage(nil), ch.Usage...)
		res.Usage = &u
	}
	if ch.Snapeval != nil {
		res.Snapeval = ch.Snapeval
	}
	return nil
}

// Models lists /models (one attempt per retry round, same retry rules as Complete).
func (c *Client) Models(ctx context.Context) ([]ModelInfo, error) {
	for attempt := 0; ; attempt++ {
		ms, err := c.modelsOnce(ctx)
		if err == nil {
			return ms, nil
		}
		if ctx.Err() != nil || !retryable(err) || attempt >= c.opts.MaxRetries {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
			}
			return nil, c.redact(fmt.Errorf("GET /models: %w", err))
		}
		if err := sleep(ctx, c.backoff(attempt, err)); err != nil {
			return nil, c.redact(fmt.Errorf("GET /models: %w", err))
		}
	}
}

func (c *Client) modelsOnce(ctx context.Context) ([]ModelInfo, error) {
	actx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
	defer cancel()
	hr, err := c.newRequest(actx, http.MethodGet, "/models", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &transientError{msg: transportCause(err).Error(), unreachable: cannotConnect(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, c.hintV1(parseError(resp.StatusCode, resp.Header, b, c.now(), c.opts.QuotaAfter))
	}
	var list struct {
		Data []ModelInfo `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJSONBody)).Decode(&list); err != nil {
		return nil, &transientError{msg: fmt.Sprintf("malformed model list: %v", err)}
	}
	return list.Data, nil
}

// FetchTokenizer returns the tokenizer.json a `snapeval serve` server publishes (llm.TokenizerPath, relative to a
// base URL ending in /v1), in one attempt.
func (c *Client) FetchTokenizer(ctx context.Context) ([]byte, error) {
	path := strings.TrimPrefix(llm.TokenizerPath, "/v1")
	actx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
	defer cancel()
	hr, err := c.newRequest(actx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, c.redact(fmt.Errorf("GET %s: %v", path, transportCause(err)))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, c.redact(fmt.Errorf("GET %s: %w", path, parseError(resp.StatusCode, resp.Header, b, c.now(), c.opts.QuotaAfter)))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBody+1))
	if err != nil {
		return nil, c.redact(fmt.Errorf("GET %s: %v", path, err))
	}
	if len(b) > maxJSONBody {
		return nil, fmt.Errorf("GET %s: the tokenizer exceeds %d bytes", path, maxJSONBody)
	}
	return b, nil
}

// redactedError hides the API key (and any URL password) in an error's text while keeping errors.Is/As working.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact returns err with every occurrence of the API key replaced by "[REDACTED]".
func (c *Client) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := Redact(err.Error(), c.apiKey)
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// Redact replaces secret (if at least 4 bytes long) in s by "[REDACTED]".
func Redact(s, secret string) string {
	if len(secret) < 4 {
		return s
	}
	return strings.ReplaceAll(s, secret, "[REDACTED]")
}
