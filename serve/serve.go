// Package serve is an OpenAI-compatible HTTP server over any backends.Backend: /v1/chat/completions and
// /v1/completions (streamed as server-sent events or not), /v1/models, /health, and the served model's
// tokenizer.json at /v1/snapeval/tokenizer.
//
// The cache policy is fixed per server (Config.Policy) or chosen per request with the extension field
// "snapeval_policy". Every response carries a "snapeval" object (cache policy applied, capacity, KV bytes,
// prefill and decode milliseconds, seeded), on the last chunk when streamed.
//
// Backend.Generate is not incremental, so a streamed response sends the role chunk at once, SSE comments as
// heartbeats while the backend works, then the whole text in one content chunk, the finish chunk, the usage
// chunk (with stream_options.include_usage) and [DONE]. Concurrent requests call Generate concurrently, up to
// Config.MaxConcurrent; the backend batches them (the CPU backend's scheduler does).
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/llm"
)

// Config configures a Server.
type Config struct {
	Backend backends.Backend
	// Model is the model name served in /v1/models and responses; requests naming another model get 404.
	Model string
	// Policy fixes the cache policy of every request; "" lets each request choose ("snapeval_policy"),
	// DefaultPolicy when it does not.
	Policy        string
	DefaultPolicy string // default "full"
	// Canonicalize, when set, rewrites policy specs (fixed, default and per request) into canonical form,
	// so that "snapstream:budget=64" and its spelled-out equivalent are the same policy. An error is a 400.
	Canonicalize func(spec string) (string, error)
	// MaxConcurrent bounds the Generate calls in flight (default 64); further requests wait their turn.
	MaxConcurrent int
	// DefaultMaxTokens is used when a request sets no max_tokens (default 1024).
	DefaultMaxTokens int
	// MaxBodyBytes bounds a request body (default 32 MiB).
	MaxBodyBytes int64
	// Heartbeat is the interval of SSE comments while a streamed request waits (default 10s).
	Heartbeat time.Duration
	// ReadHeaderTimeout, ReadTimeout and IdleTimeout bound how long a connection may take to send its request
	// headers (default 10s), its whole request, body included (default 60s), and how long an idle keep-alive
	// connection stays open (default 120s); generation itself is not bounded by them.
	ReadHeaderTimeout, ReadTimeout, IdleTimeout time.Duration
	// MaxConnections bounds the open connections (default 1024); further ones wait to be accepted.
	MaxConnections int
	// Log receives one line per failed request (nil: log.Default()).
	Log *log.Logger
}

// Server answers the OpenAI protocol over a backend.
type Server struct {
	cfg      Config
	sem      chan struct{}
	ids      atomic.Uint64
	inFlight atomic.Int64
	served   atomic.Uint64
}

// New validates cfg (the fixed or default policy must pass Backend.CheckPolicy) and returns a server.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("serve: no backend")
	}
	if cfg.Model == "" {
		return nil, errors.New("serve: no model name")
	}
	if cfg.DefaultPolicy == "" {
		cfg.DefaultPolicy = "full"
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = 64
	}
	if cfg.DefaultMaxTokens <= 0 {
		cfg.DefaultMaxTokens = 1024
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 32 << 20
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 10 * time.Second
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 60 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 120 * time.Second
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = 1024
	}
	if cfg.Log == nil {
		cfg.Log = log.Default()
	}
	if cfg.Canonicalize != nil {
		for _, p := range []*string{&cfg.Policy, &cfg.DefaultPolicy} {
			if *p == "" {
				continue
			}
			c, err := cfg.Canonicalize(*p)
			if err != nil {
				return nil, fmt.Errorf("serve: policy %q: %w", *p, err)
			}
			*p = c
		}
	}
	p := cfg.Policy
	if p == "" {
		p = cfg.DefaultPolicy
	}
	if err := cfg.Backend.CheckPolicy(p); err != nil {
		return nil, fmt.Errorf("serve: policy %q: %w", p, err)
	}
	return &Server{cfg: cfg, sem: make(chan struct{}, cfg.MaxConcurrent)}, nil
}

// Handler returns the HTTP routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { s.complete(w, r, true) })
	mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) { s.complete(w, r, false) })
	mux.HandleFunc("GET /v1/models", s.models)
	mux.HandleFunc("GET /v1/models/{id}", s.model)
	mux.HandleFunc("GET "+llm.TokenizerPath, s.tokenizer)
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "invalid_request_error", "not_found", "", fmt.Sprintf("no route %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// Serve answers on ln until ctx ends, then shuts down gracefully: it stops accepting, lets requests in flight
// finish for up to grace, then closes what is left. Connections are bounded in number (Config.MaxConnections)
// and in how long they may take to send a request or stay idle (Config.ReadHeaderTimeout, ReadTimeout,
// IdleTimeout), so that slow or idle clients cannot hold the server's connections.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: s.cfg.ReadHeaderTimeout, ReadTimeout: s.cfg.ReadTimeout,
		IdleTimeout: s.cfg.IdleTimeout}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(limitListener(ln, s.cfg.MaxConnections)) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close()
		err = fmt.Errorf("serve: %d request(s) still running after %v: closed", s.inFlight.Load(), grace)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// TokenizerSource is implemented by backends that can hand out their model's tokenizer.json (the cpu backend);
// the server publishes it at llm.TokenizerPath.
type TokenizerSource interface {
	TokenizerJSON() []byte
}

// modelObject is one /v1/models entry.
type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// Backend is the backend identity (snapeval extension, kept beside Snapeval.Backend for older clients).
	Backend  string             `json:"snapeval_backend"`
	Snapeval llm.ModelExtension `json:"snapeval"`
}

func (s *Server) modelObject() modelObject {
	ext := llm.ModelExtension{Backend: s.cfg.Backend.Identity(), Policy: s.cfg.Policy, Tokenizer: s.tokenizerJSON() != nil}
	if ext.Policy == "" {
		ext.DefaultPolicy = s.cfg.DefaultPolicy
	}
	return modelObject{ID: s.cfg.Model, Object: "model", OwnedBy: "snapeval", Backend: ext.Backend, Snapeval: ext}
}

func (s *Server) tokenizerJSON() []byte {
	if ts, ok := s.cfg.Backend.(TokenizerSource); ok {
		return ts.TokenizerJSON()
	}
	return nil
}

// tokenizer answers llm.TokenizerPath with the backend's tokenizer.json, or 404 when it has none.
func (s *Server) tokenizer(w http.ResponseWriter, r *http.Request) {
	b := s.tokenizerJSON()
	if b == nil {
		writeError(w, http.StatusNotFound, "invalid_request_error", "not_found", "",
			fmt.Sprintf("backend %s has no tokenizer to publish", s.cfg.Backend.Identity()))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []modelObject{s.modelObject()}})
}

func (s *Server) model(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != s.cfg.Model {
		writeError(w, http.StatusNotFound, "invalid_request_error", "model_not_found", "model", fmt.Sprintf("model %q is not served here (serving %q)", r.PathValue("id"), s.cfg.Model))
		return
	}
	writeJSON(w, http.StatusOK, s.modelObject())
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"status": "ok", "model": s.cfg.Model, "backend": s.cfg.Backend.Identity(),
		"in_flight": s.inFlight.Load(), "served": s.served.Load(), "max_concurrent": s.cfg.MaxConcurrent,
	})
}

// errorBody is the OpenAI error shape.
type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func newErrorBody(typ, code, param, msg string) errorBody {
	var e errorBody
	e.Error.Message, e.Error.Type = msg, typ
	if code != "" {
		e.Error.Code = &code
	}
	if param != "" {
		e.Error.Param = &param
	}
	return e
}

func writeError(w http.ResponseWriter, status int, typ, code, param, msg string) {
	writeJSON(w, status, newErrorBody(typ, code, param, msg))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"message":"encoding response","type":"server_error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// classify maps a Generate error onto an HTTP status and OpenAI error type and code.
func classify(err error) (status int, typ, code string) {
	switch {
	case errors.Is(err, llm.ErrContextOverflow):
		return http.StatusBadRequest, "invalid_request_error", "context_length_exceeded"
	case errors.Is(err, llm.ErrBadRequest):
		return http.StatusBadRequest, "invalid_request_error", "invalid_request"
	case errors.Is(err, llm.ErrQuotaExhausted):
		return http.StatusTooManyRequests, "insufficient_quota", "insufficient_quota"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "server_error", "timeout"
	}
	return http.StatusInternalServerError, "server_error", "backend_error"
}

// choice is one choice of a response or chunk.
type choice struct {
	Index        int      `json:"index"`
	Message      *message `json:"message,omitempty"`
	Delta        *message `json:"delta,omitempty"`
	Text         *string  `json:"text,omitempty"`
	Logprobs     any      `json:"logprobs"`
	FinishReason *string  `json:"finish_reason"`
}

type message struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// response is a whole response or one chunk.
type response struct {
	ID       string           `json:"id"`
	Object   string           `json:"object"`
	Created  int64            `json:"created"`
	Model    string           `json:"model"`
	Choices  []choice         `json:"choices"`
	Usage    *usage           `json:"usage,omitempty"`
	Snapeval *llm.CacheReport `json:"snapeval,omitempty"`
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request, chat bool) {
	var wr wireRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err := dec.Decode(&wr); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "body_too_large", "", fmt.Sprintf("request body exceeds %d bytes", mbe.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_json", "", "request body is not valid JSON: "+err.Error())
		return
	}
	if wr.Model != "" && wr.Model != s.cfg.Model {
		writeError(w, http.StatusNotFound, "invalid_request_error", "model_not_found", "model", fmt.Sprintf("model %q is not served here (serving %q)", wr.Model, s.cfg.Model))
		return
	}
	req, err := wr.toRequest(chat, s.cfg.DefaultMaxTokens)
	if err != nil {
		var re *requestError
		errors.As(err, &re)
		writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_value", re.param, err.Error())
		return
	}
	if wr.Policy != "" && s.cfg.Canonicalize != nil {
		c, err := s.cfg.Canonicalize(wr.Policy)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_policy", "snapeval_policy", err.Error())
			return
		}
		wr.Policy = c
	}
	switch {
	case s.cfg.Policy != "" && wr.Policy != "" && wr.Policy != s.cfg.Policy:
		writeError(w, http.StatusBadRequest, "invalid_request_error", "policy_fixed", "snapeval_policy",
			fmt.Sprintf("this server runs policy %q only; asked for %q", s.cfg.Policy, wr.Policy))
		return
	case s.cfg.Policy != "":
		req.Policy = s.cfg.Policy
	case wr.Policy != "":
		if err := s.cfg.Backend.CheckPolicy(wr.Policy); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_policy", "snapeval_policy", err.Error())
			return
		}
		req.Policy = wr.Policy
	default:
		req.Policy = s.cfg.DefaultPolicy
	}
	n := s.ids.Add(1)
	req.Key = "serve-" + strconv.FormatUint(n, 10)
	base := response{Created: time.Now().Unix(), Model: s.cfg.Model}
	if chat {
		base.ID, base.Object = "chatcmpl-snapeval-"+strconv.FormatUint(n, 10), "chat.completion"
	} else {
		base.ID, base.Object = "cmpl-snapeval-"+strconv.FormatUint(n, 10), "text_completion"
	}
	if wr.Stream {
		s.stream(w, r, req, base, chat, wr.StreamOptions != nil && wr.StreamOptions.IncludeUsage)
		return
	}
	out, err := s.generate(r.Context(), req)
	if err != nil {
		if r.Context().Err() != nil {
			return // the client left
		}
		status, typ, code := classify(err)
		s.cfg.Log.Printf("serve: %s: %v", req.Key, err)
		writeError(w, status, typ, code, "", err.Error())
		return
	}
	finish := out.FinishReason
	resp := base
	if chat {
		resp.Choices = []choice{{Message: &message{Role: "assistant", Content: &out.Text}, FinishReason: &finish}}
	} else {
		resp.Choices = []choice{{Text: &out.Text, FinishReason: &finish}}
	}
	resp.Usage = &usage{out.PromptTokens, out.OutputTokens, out.PromptTokens + out.OutputTokens}
	resp.Snapeval = report(out)
	writeJSON(w, http.StatusOK, resp)
}

func report(out llm.Output) *llm.CacheReport {
	return &llm.CacheReport{Cache: out.Cache, PrefillMS: out.PrefillMS, DecodeMS: out.DecodeMS, Seeded: out.Seeded}
}

// generate runs the backend under the concurrency bound.
func (s *Server) generate(ctx context.Context, req llm.Request) (llm.Output, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return llm.Output{}, ctx.Err()
	}
	defer func() { <-s.sem }()
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	out, err := s.cfg.Backend.Generate(ctx, req)
	if err == nil {
		s.served.Add(1)
	}
	return out, err
}

// sseWriter writes server-sent events and remembers the first write error (a client gone).
type sseWriter struct {
	w   io.Writer
	f   http.Flusher
	err error
}

func (e *sseWriter) data(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		e.err = err
		return
	}
	e.raw("data: " + string(b) + "\n\n")
}

func (e *sseWriter) raw(s string) {
	if e.err != nil {
		return
	}
	if _, e.err = io.WriteString(e.w, s); e.err == nil && e.f != nil {
		e.f.Flush()
	}
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, req llm.Request, base response, chat, includeUsage bool) {
	if chat {
		base.Object = "chat.completion.chunk"
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	ew := &sseWriter{w: w, f: f}
	chunk := func(c choice) response {
		resp := base
		resp.Choices = []choice{c}
		return resp
	}
	if chat {
		empty := ""
		ew.data(chunk(choice{Delta: &message{Role: "assistant", Content: &empty}}))
	}
	type result struct {
		out llm.Output
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := s.generate(r.Context(), req)
		done <- result{out, err}
	}()
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	var res result
wait:
	for {
		select {
		case res = <-done:
			break wait
		case <-tick.C:
			ew.raw(": generating\n\n")
		}
	}
	if r.Context().Err() != nil {
		return
	}
	if res.err != nil {
		status, typ, code := classify(res.err)
		s.cfg.Log.Printf("serve: %s: %v", req.Key, res.err)
		e := newErrorBody(typ, code, "", res.err.Error())
		ew.data(struct {
			errorBody
			Status int `json:"status"`
		}{e, status})
		return // no [DONE]: the client must see an incomplete stream
	}
	out := res.out
	if out.Text != "" {
		if chat {
			ew.data(chunk(choice{Delta: &message{Content: &out.Text}}))
		} else {
			ew.data(chunk(choice{Text: &out.Text}))
		}
	}
	finish := out.FinishReason
	last := chunk(choice{FinishReason: &finish})
	if chat {
		last.Choices[0].Delta = &message{}
	} else {
		empty := ""
		last.Choices[0].Text = &empty
	}
	last.Snapeval = report(out)
	ew.data(last)
	if includeUsage {
		u := base
		u.Choices = []choice{}
		u.Usage = &usage{out.PromptTokens, out.OutputTokens, out.PromptTokens + out.OutputTokens}
		u.Snapeval = report(out)
		ew.data(u)
	}
	ew.raw("data: [DONE]\n\n")
}
