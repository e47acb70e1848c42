// Package openai registers the "openai" backend: any OpenAI-compatible server (vLLM, SGLang, TensorRT-LLM,
// llama.cpp server, `snapeval serve`), over streamed chat completions, or text completions for raw prompts.
//
// The base URL comes from Config.BaseURL or $OPENAI_BASE_URL, the key (optional) from $OPENAI_API_KEY. Options
// are those of oaiclient.ParseOptions and oaiclient.BackendOptionKeys. The deployment's cache policy is declared
// (option policy, default "full") or, against a `snapeval serve` server, chosen per request (forward_policy=true),
// in which case the server reports what it applied.
package openai

import (
	"context"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/oaiclient"
)

// Flavor is the openai service description.
var Flavor = oaiclient.Flavor{
	Name:       "openai",
	BaseURLEnv: "OPENAI_BASE_URL",
	KeyEnv:     "OPENAI_API_KEY",
	Seed:       true,
}

// Open builds an openai backend.
func Open(ctx context.Context, cfg backends.Config) (*oaiclient.Remote, error) {
	return oaiclient.Open(ctx, Flavor, cfg)
}

func init() {
	backends.Register("openai", func(ctx context.Context, cfg backends.Config) (backends.Backend, error) {
		return Open(ctx, cfg)
	})
}
