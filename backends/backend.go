// Package backends holds the Backend interface every inference engine implements, and a registry of them by name.
package backends

import (
	"context"

	"github.com/snapeval/snapeval/internal/registry"
	"github.com/snapeval/snapeval/llm"
)

// Backend is an inference engine that honours a KV-cache policy per request.
type Backend interface {
	// Generate runs one request to completion. Failures wrap llm.ErrContextOverflow or llm.ErrQuotaExhausted
	// where they apply; context cancellation returns ctx.Err().
	Generate(ctx context.Context, req llm.Request) (llm.Output, error)
	// Identity names the engine, model and revision for manifests and records ("cpu:smollm2-135m@abc123").
	Identity() string
	// CheckPolicy returns an error before a run starts when the backend cannot honour the policy spec.
	CheckPolicy(spec string) error
	// Tokenizer returns the model's tokenizer, or nil when the backend has none (remote servers).
	Tokenizer() llm.Tokenizer
	// Close releases the backend's resources.
	Close() error
}

// Optional capabilities. A backend implements those it has; the run session finds them by these names (a
// renamed method breaks the implementation's compile-time assertion, never silently the manifest).

// ChatTemplater is a Backend that renders chat messages itself, with a chat template.
type ChatTemplater interface {
	// ChatTemplate describes the template that renders Messages (the manifest records it), or says why the
	// backend has none it can render: chat requests then fail, raw prompts still work.
	ChatTemplate() (llm.ChatTemplateInfo, error)
}

// Preflighter is a Backend that can check, before a run, that its server accepts the run's largest request.
type Preflighter interface {
	// Preflight fails (wrapping llm.ErrContextOverflow on a misfit) when a prompt of maxPrompt tokens plus maxNew
	// new tokens cannot be served.
	Preflight(ctx context.Context, maxPrompt, maxNew int) error
}

// Shaper is a Backend that knows the KV-relevant shape of its model (for the manifest's memory accounting).
type Shaper interface {
	Shape() llm.ModelShape
}

// Renderer is a Backend that prepares requests itself (a local model): Render returns what its model would be fed
// for req, without generating: the text (chat messages through the model's chat template, or the raw prompt) and the
// token ids (the raw prompt's with the tokenizer's post-processor tokens, as transformers' encode adds them).
type Renderer interface {
	Render(req llm.Request) (text string, ids []int, err error)
}

// TokenizerSourcer is a Backend whose Tokenizer is not its own model's but one it obtained (a remote backend that
// fetched the served model's): TokenizerSource says where from, for the manifest ("" when it has none).
type TokenizerSourcer interface {
	TokenizerSource() string
}

// ApproxTokener is a Backend that may be allowed to run benchmarks that size prompts in tokens without a tokenizer,
// on an estimate (a remote backend's option approx_tokens=true).
type ApproxTokener interface {
	ApproxTokens() bool
}

// Describer is a Backend that reports facts about its engine for the run manifest (backend_info): the torch backend's
// GPU, dtype and torch and transformers versions.
type Describer interface {
	BackendInfo() map[string]string
}

// LogKeeper is a Backend with a log of its own (a worker process's stderr) that belongs in the run directory.
type LogKeeper interface {
	SetLogDir(dir string) error
}

// Config is what a backend factory receives: the model reference and free-form options from flags or YAML.
type Config struct {
	Model   string
	BaseURL string
	// Options holds backend-specific settings (endpoint per policy, threads, slots, ...).
	Options map[string]string
	// PolicyEndpoints maps a policy spec to a deployment (remote backends where the policy is a property of the server).
	PolicyEndpoints map[string]Endpoint
	// Concurrency is the number of requests the runner will keep in flight on this backend.
	Concurrency int
}

// Endpoint is a remote deployment serving one cache policy.
type Endpoint struct {
	BaseURL string `yaml:"base_url" json:"base_url"`
	Model   string `yaml:"model" json:"model"`
}

// Factory builds a backend from its config.
type Factory func(ctx context.Context, cfg Config) (Backend, error)

var factories = registry.New[Factory]("backend")

// Register makes a backend available by name. It panics on a duplicate name (a programming error).
func Register(name string, f Factory) { factories.Register(name, f) }

// Open builds the backend registered under name.
func Open(ctx context.Context, name string, cfg Config) (Backend, error) {
	f, err := factories.Lookup(name)
	if err != nil {
		return nil, err
	}
	return f(ctx, cfg)
}

// Names lists the registered backends in sorted order.
func Names() []string { return factories.Names() }
