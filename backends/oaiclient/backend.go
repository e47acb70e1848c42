package oaiclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/cpu/tokenizer"
	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/llm"
)

// Flavor describes one OpenAI-compatible service for Open.
type Flavor struct {
	// Name is the backend name ("openai", "sn40l"), used in identities and errors.
	Name string
	// DefaultBaseURL is used when neither Config.BaseURL nor BaseURLEnv is set ("" = required).
	DefaultBaseURL string
	// BaseURLEnv and KeyEnv name the environment variables of the base URL and the API key.
	BaseURLEnv, KeyEnv string
	// ChatOnly services have no /completions endpoint: a raw-prompt request is an error.
	ChatOnly bool
	// Seed says whether the service honours "seed" (overridable by option seed=true|false).
	Seed bool
	// Timings reads server-side timings from the usage object (ok=false when absent); nil to use client timings.
	Timings func(usage json.RawMessage) (prefillMS, decodeMS float64, ok bool)
}

// BackendOptionKeys are the Config.Options keys Open reads besides OptionKeys:
//   - endpoint: "auto" (default: chat for Messages, completions for Prompt), "chat" or "completions";
//   - policy: the cache policy the Config.BaseURL deployment runs (default "full"; against `snapeval serve`, what
//     its /v1/models says);
//   - forward_policy: "true" sends Request.Policy as "snapeval_policy" (a `snapeval serve` server applies it);
//     the default is true against a `snapeval serve` server whose /v1/models says each request chooses, else false;
//   - seed: "true"/"false" overrides whether the service honours seeds;
//   - preflight: "false" skips listing /models when the backend opens (and with it recognising `snapeval serve`);
//   - approx_tokens: "true" lets benchmarks that size prompts in tokens run without the served model's tokenizer,
//     estimating 4 bytes a token (ApproxTokens; the run's manifest and report say so).
var BackendOptionKeys = []string{"endpoint", "policy", "forward_policy", "seed", "preflight", "approx_tokens"}

// deployment is one served model at one base URL.
type deployment struct {
	client *Client
	model  string
	policy string // declared policy ("" with forward_policy: the server reports it)

	mu   sync.Mutex
	info *ModelInfo
}

// Remote is a backends.Backend over one or more OpenAI-compatible deployments (one per cache policy).
type Remote struct {
	flavor   Flavor
	def      *deployment // the Config.BaseURL deployment, nil when only PolicyEndpoints are given
	byPolicy map[string]*deployment
	forward  bool
	endpoint string
	seed     bool
	approx   bool
	clients  []*Client
	// tok is the tokenizer every deployment publishes (`snapeval serve`), nil when they do not; tokSource says
	// where it came from.
	tok       llm.Tokenizer
	tokSource string
}

// Open builds a Remote from cfg: the base URL (Config.BaseURL, then $BaseURLEnv, then DefaultBaseURL), the key
// ($KeyEnv, optional), the options, and one deployment per Config.PolicyEndpoints entry. Unless preflight=false
// it lists /models of every deployment so that a wrong model, key or URL fails now, not mid-run; a Model left
// empty is taken from a deployment that serves exactly one.
func Open(ctx context.Context, fl Flavor, cfg backends.Config) (*Remote, error) {
	opts, err := ParseOptions(cfg.Options, BackendOptionKeys...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fl.Name, err)
	}
	r := &Remote{flavor: fl, byPolicy: map[string]*deployment{}, endpoint: "auto", seed: fl.Seed}
	declared := "full"
	preflight := true
	_, policySet := cfg.Options["policy"]
	_, forwardSet := cfg.Options["forward_policy"]
	for k, v := range cfg.Options {
		switch k {
		case "endpoint":
			if v != "auto" && v != "chat" && v != "completions" {
				return nil, fmt.Errorf("%s: backend option endpoint=%q: want auto, chat or completions", fl.Name, v)
			}
			if v == "completions" && fl.ChatOnly {
				return nil, fmt.Errorf("%s: backend option endpoint=completions: the service has chat completions only", fl.Name)
			}
			r.endpoint = v
		case "policy":
			declared = strings.TrimSpace(v)
		case "forward_policy", "seed", "preflight", "approx_tokens":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("%s: backend option %s=%q: want true or false", fl.Name, k, v)
			}
			switch k {
			case "forward_policy":
				r.forward = b
			case "seed":
				r.seed = b
			case "preflight":
				preflight = b
			case "approx_tokens":
				r.approx = b
			}
		}
	}
	key := ""
	if fl.KeyEnv != "" {
		key = strings.TrimSpace(os.Getenv(fl.KeyEnv))
	}
	httpClient := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	clients := map[string]*Client{}
	client := func(base string) (*Client, error) {
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s: base URL %q: want http(s)://host[:port]/v1", fl.Name, Redact(base, key))
		}
		if c := clients[base]; c != nil {
			return c, nil
		}
		c := New(base, key, opts, httpClient)
		clients[base] = c
		r.clients = append(r.clients, c)
		return c, nil
	}
	base := cfg.BaseURL
	if base == "" && fl.BaseURLEnv != "" {
		base = strings.TrimSpace(os.Getenv(fl.BaseURLEnv))
	}
	// With policy endpoints, the default deployment exists only when a base URL is given explicitly;
	// the service's default URL then only fills in endpoints that name none.
	explicit := base != ""
	if base == "" {
		base = fl.DefaultBaseURL
	}
	if base == "" && len(cfg.PolicyEndpoints) == 0 {
		return nil, fmt.Errorf("%s: no base URL: pass --base-url or set %s", fl.Name, fl.BaseURLEnv)
	}
	if base != "" && (explicit || len(cfg.PolicyEndpoints) == 0) {
		c, err := client(base)
		if err != nil {
			return nil, err
		}
		r.def = &deployment{client: c, model: cfg.Model, policy: declared}
		if r.forward {
			r.def.policy = ""
		}
	}
	specs := make([]string, 0, len(cfg.PolicyEndpoints))
	for spec := range cfg.PolicyEndpoints {
		specs = append(specs, spec)
	}
	sort.Strings(specs)
	for _, spec := range specs {
		ep := cfg.PolicyEndpoints[spec]
		epBase := ep.BaseURL
		if epBase == "" {
			epBase = base
		}
		if epBase == "" {
			return nil, fmt.Errorf("%s: policy endpoint %q has no base_url", fl.Name, spec)
		}
		c, err := client(epBase)
		if err != nil {
			return nil, fmt.Errorf("policy endpoint %q: %w", spec, err)
		}
		model := ep.Model
		if model == "" {
			model = cfg.Model
		}
		r.byPolicy[spec] = &deployment{client: c, model: model, policy: spec}
	}
	if preflight {
		for _, d := range r.deployments() {
			if err := r.resolve(ctx, d); err != nil {
				return nil, err
			}
		}
		if err := r.adoptSnapeval(policySet, forwardSet, declared); err != nil {
			return nil, err
		}
		if err := r.fetchTokenizer(ctx); err != nil {
			return nil, err
		}
	} else {
		for _, d := range r.deployments() {
			if d.model == "" {
				return nil, fmt.Errorf("%s: no model given (pass --model, or leave preflight on to take the only served model)", fl.Name)
			}
		}
	}
	return r, nil
}

// adoptSnapeval applies what a `snapeval serve` server at the base URL says of itself (its /v1/models "snapeval"
// field): when each request chooses its policy, the policy is forwarded (unless forward_policy was given); when the
// server runs one policy, that is the deployment's declared policy (a different policy=SPEC is an error).
func (r *Remote) adoptSnapeval(policySet, forwardSet bool, declared string) error {
	if r.def == nil || r.def.info == nil || r.def.info.Snapeval == nil {
		return nil
	}
	ext := r.def.info.Snapeval
	switch {
	case ext.Policy == "" && !forwardSet:
		r.forward = true
		r.def.policy = ""
	case ext.Policy == "" && !r.forward && !policySet:
		r.def.policy = ext.DefaultPolicy // what the server applies to requests that name no policy
	case ext.Policy != "" && policySet && declared != ext.Policy:
		return fmt.Errorf("%s: the snapeval server at %s runs policy %s only, but --backend-opt policy=%s declares another",
			r.flavor.Name, r.def.client.BaseURL(), ext.Policy, declared)
	case ext.Policy != "" && !r.forward:
		r.def.policy = ext.Policy
	}
	return nil
}

// fetchTokenizer takes the tokenizer every deployment publishes, when each is a `snapeval serve` server that
// publishes one and they all publish the same; otherwise the remote has none.
func (r *Remote) fetchTokenizer(ctx context.Context) error {
	var data []byte
	var where []string
	for _, d := range r.deployments() {
		if d.info == nil || d.info.Snapeval == nil || !d.info.Snapeval.Tokenizer {
			return nil
		}
		b, err := d.client.FetchTokenizer(ctx)
		if err != nil {
			return fmt.Errorf("%s: fetching the served tokenizer: %w", r.flavor.Name, err)
		}
		if data != nil && !bytes.Equal(b, data) {
			return nil // deployments with different tokenizers: prompts cannot be sized for all of them
		}
		data = b
		where = append(where, d.client.BaseURL())
	}
	if data == nil {
		return nil
	}
	name := where[0] + strings.TrimPrefix(llm.TokenizerPath, "/v1")
	tok, err := tokenizer.Parse(data, name)
	if err != nil {
		return fmt.Errorf("%s: the served tokenizer: %w", r.flavor.Name, err)
	}
	sum := sha256.Sum256(data)
	r.tok = tok
	r.tokSource = fmt.Sprintf("served by %s (sha256 %s)", strings.Join(slices.Compact(where), ", "), hex.EncodeToString(sum[:])[:16])
	return nil
}

// TokenizerSource says where Tokenizer came from ("served by URL (sha256 ...)"), "" when there is none.
func (r *Remote) TokenizerSource() string { return r.tokSource }

// ApproxTokens reports whether the option approx_tokens=true allows sizing prompts without a tokenizer.
func (r *Remote) ApproxTokens() bool { return r.approx }

// deployments lists the distinct deployments, the default first.
func (r *Remote) deployments() []*deployment {
	var ds []*deployment
	if r.def != nil {
		ds = append(ds, r.def)
	}
	specs := make([]string, 0, len(r.byPolicy))
	for s := range r.byPolicy {
		specs = append(specs, s)
	}
	sort.Strings(specs)
	for _, s := range specs {
		ds = append(ds, r.byPolicy[s])
	}
	return ds
}

// resolve lists /models of d, checks (or picks) its model and records the model's limits.
func (r *Remote) resolve(ctx context.Context, d *deployment) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.info != nil {
		return nil
	}
	models, err := d.client.Models(ctx)
	if err != nil {
		return fmt.Errorf("%s: listing models at %s: %w", r.flavor.Name, d.client.BaseURL(), err)
	}
	ids := make([]string, len(models))
	for i, m := range models {
		ids[i] = m.ID
		if d.model == "" && len(models) == 1 || m.ID == d.model {
			d.model = m.ID
			info := m
			d.info = &info
		}
	}
	if d.info == nil {
		if d.model == "" {
			return fmt.Errorf("%s: no model given and %s serves %d models %v: pass --model", r.flavor.Name, d.client.BaseURL(), len(ids), ids)
		}
		return fmt.Errorf("%s: model %q is not served at %s (served: %v)", r.flavor.Name, d.model, d.client.BaseURL(), ids)
	}
	return nil
}

// Limits returns the context length and largest completion the deployment of policy publishes (0 if unknown).
func (r *Remote) Limits(policy string) (contextLength, maxCompletion int) {
	d, err := r.pick(policy)
	if err != nil {
		return 0, 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.info == nil {
		return 0, 0
	}
	return d.info.ContextLength, d.info.MaxCompletionTokens
}

// Preflight checks, before a run, that every deployment serves its model and that a prompt of maxPrompt tokens
// plus maxNew new tokens fits its published limits. A misfit wraps llm.ErrContextOverflow.
func (r *Remote) Preflight(ctx context.Context, maxPrompt, maxNew int) error {
	for _, d := range r.deployments() {
		if err := r.resolve(ctx, d); err != nil {
			return err
		}
		d.mu.Lock()
		info := *d.info
		d.mu.Unlock()
		if info.MaxCompletionTokens > 0 && maxNew > info.MaxCompletionTokens {
			return fmt.Errorf("%s: %s at %s accepts at most %d completion tokens, the run asks for %d: %w",
				r.flavor.Name, d.model, d.client.BaseURL(), info.MaxCompletionTokens, maxNew, llm.ErrContextOverflow)
		}
		if info.ContextLength > 0 && maxPrompt+maxNew > info.ContextLength {
			return fmt.Errorf("%s: %s at %s has a context of %d tokens, the run needs %d prompt + %d new: %w",
				r.flavor.Name, d.model, d.client.BaseURL(), info.ContextLength, maxPrompt, maxNew, llm.ErrContextOverflow)
		}
	}
	return nil
}

// pick returns the deployment serving policy.
func (r *Remote) pick(policy string) (*deployment, error) {
	if d := r.byPolicy[policy]; d != nil {
		return d, nil
	}
	if r.def != nil && (r.forward || policy == r.def.policy) {
		return r.def, nil
	}
	known := make([]string, 0, len(r.byPolicy)+1)
	if r.def != nil {
		known = append(known, r.def.policy)
	}
	for s := range r.byPolicy {
		known = append(known, s)
	}
	sort.Strings(known)
	return nil, fmt.Errorf("%s: policy %q has no endpoint (deployments serve %v; map policies to deployments under endpoints: in the --config YAML, set --backend-opt policy=SPEC to declare what the server runs, or --backend-opt forward_policy=true for a snapeval serve server)",
		r.flavor.Name, policy, known)
}

// CheckPolicy fails when no deployment serves spec.
func (r *Remote) CheckPolicy(spec string) error {
	d, err := r.pick(spec)
	if err != nil {
		return err
	}
	// A forwarded policy is applied by the server: refuse one it could never parse now, not request by request.
	if r.forward && d == r.def && r.byPolicy[spec] == nil {
		if _, err := compress.Parse(spec); err != nil {
			return fmt.Errorf("%s: policy %q cannot be forwarded: %w", r.flavor.Name, spec, err)
		}
	}
	return nil
}

// Identity names the service, model(s) and host(s): "openai:Qwen2.5-7B@localhost:8000".
func (r *Remote) Identity() string {
	seen := map[string]bool{}
	var parts []string
	for _, d := range r.deployments() {
		host := d.client.BaseURL()
		if u, err := url.Parse(host); err == nil {
			host = u.Host
		}
		id := d.model + "@" + host
		if !seen[id] {
			seen[id] = true
			parts = append(parts, id)
		}
	}
	return r.flavor.Name + ":" + strings.Join(parts, ",")
}

// Tokenizer returns the served model's tokenizer when every deployment is a `snapeval serve` server publishing the
// same one, else nil (other servers tokenize on their side and do not say how).
func (r *Remote) Tokenizer() llm.Tokenizer { return r.tok }

// Close releases idle connections.
func (r *Remote) Close() error {
	for _, c := range r.clients {
		c.http.CloseIdleConnections()
	}
	return nil
}

// Generate sends req to the deployment of req.Policy and returns its output. Server-side timings are used
// when the flavor reads them, else the client's (time to first content, then the rest).
func (r *Remote) Generate(ctx context.Context, req llm.Request) (llm.Output, error) {
	d, err := r.pick(req.Policy)
	if err != nil {
		return llm.Output{}, err
	}
	hasMsgs, hasPrompt := len(req.Messages) > 0, req.Prompt != ""
	if hasMsgs == hasPrompt {
		return llm.Output{}, fmt.Errorf("%s: request %s: exactly one of messages and prompt must be set", r.flavor.Name, req.Key)
	}
	path := "/chat/completions"
	switch {
	case hasPrompt && r.flavor.ChatOnly:
		return llm.Output{}, fmt.Errorf("%s: request %s: the service has no raw-prompt completions endpoint", r.flavor.Name, req.Key)
	case hasPrompt:
		path = "/completions"
	case r.endpoint == "completions":
		return llm.Output{}, fmt.Errorf("%s: request %s: endpoint=completions needs a raw prompt, got messages", r.flavor.Name, req.Key)
	}
	s := req.Sampling
	if s.MaxNew <= 0 {
		return llm.Output{}, fmt.Errorf("%s: request %s: max new tokens must be positive", r.flavor.Name, req.Key)
	}
	d.mu.Lock()
	info := d.info
	d.mu.Unlock()
	if info != nil && info.ContextLength > 0 && s.MaxNew >= info.ContextLength {
		return llm.Output{}, fmt.Errorf("%s: request %s: %d new tokens do not fit a context of %d: %w",
			r.flavor.Name, req.Key, s.MaxNew, info.ContextLength, llm.ErrContextOverflow)
	}
	body := CompletionRequest{Model: d.model, MaxTokens: s.MaxNew, TopK: s.TopK, Stop: s.Stop}
	temp := s.Temperature
	body.Temperature = &temp
	if s.TopP > 0 && s.TopP < 1 {
		tp := s.TopP
		body.TopP = &tp
	}
	if r.seed {
		seed := s.Seed
		body.Seed = &seed
	}
	if hasPrompt {
		p := req.Prompt
		body.Prompt = &p
	} else {
		body.Messages = req.Messages
	}
	if r.forward {
		body.Policy = req.Policy
	}
	res, err := d.client.Complete(ctx, path, body)
	if err != nil {
		return llm.Output{}, fmt.Errorf("%s: request %s: %w", r.flavor.Name, req.Key, err)
	}
	out := llm.Output{
		Text:         res.Text,
		FinishReason: normalizeFinish(res.FinishReason),
		Cache:        llm.CacheInfo{Policy: d.policy, Declared: true},
		Seeded:       r.seed,
	}
	if res.Reasoning != "" {
		out.Text = "<think>\n" + res.Reasoning + "\n</think>\n" + res.Text
	}
	if res.Usage != nil {
		out.PromptTokens, out.OutputTokens = res.Usage.PromptTokens, res.Usage.CompletionTokens
	}
	out.PrefillMS = float64(res.TTFT) / 1e6
	out.DecodeMS = float64(res.Elapsed-res.TTFT) / 1e6
	if r.flavor.Timings != nil && res.Usage != nil {
		if p, dm, ok := r.flavor.Timings(res.Usage.Raw); ok {
			out.PrefillMS, out.DecodeMS = p, dm
		}
	}
	if rep := res.Snapeval; rep != nil {
		out.Cache = rep.Cache
		out.PrefillMS, out.DecodeMS, out.Seeded = rep.PrefillMS, rep.DecodeMS, rep.Seeded
	}
	if out.Cache.Policy == "" {
		out.Cache.Policy = req.Policy
	}
	return out, nil
}

// normalizeFinish maps service spellings onto "stop" and "length".
func normalizeFinish(s string) string {
	switch s {
	case "stop", "eos", "eos_token", "stop_sequence", "end_turn":
		return "stop"
	case "length", "max_tokens", "model_length":
		return "length"
	}
	return s
}

var (
	_ backends.Preflighter      = (*Remote)(nil)
	_ backends.TokenizerSourcer = (*Remote)(nil)
	_ backends.ApproxTokener    = (*Remote)(nil)
)
