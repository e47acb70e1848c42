// Package sn40l registers the "sn40l" backend: SambaNova Cloud and SambaStack (SN40L systems) over their
// OpenAI-compatible streamed chat completions.
//
// The base URL defaults to https://api.sambanova.ai/v1, overridden by Config.BaseURL or $SAMBANOVA_BASE_URL;
// the key comes from $SAMBANOVA_API_KEY. A cache policy is a property of a deployment: Config.PolicyEndpoints
// maps each policy spec to {BaseURL, Model}, outputs carry Cache.Declared = true, and a policy with no
// deployment fails CheckPolicy. Opening the backend lists /models of every deployment (context length and
// maximum completion tokens); Preflight checks a run's largest prompt against them. SambaNova does not document
// "seed", so outputs are marked Seeded=false unless option seed=true.
//
// The final usage chunk's server timings are recorded: PrefillMS = time_to_first_token and DecodeMS =
// total_latency - time_to_first_token (both sent in seconds).
package sn40l

import (
	"context"
	"encoding/json"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/oaiclient"
)

// DefaultBaseURL is SambaNova Cloud's API.
const DefaultBaseURL = "https://api.sambanova.ai/v1"

// Flavor is the sn40l service description.
var Flavor = oaiclient.Flavor{
	Name:           "sn40l",
	DefaultBaseURL: DefaultBaseURL,
	BaseURLEnv:     "SAMBANOVA_BASE_URL",
	KeyEnv:         "SAMBANOVA_API_KEY",
	ChatOnly:       true,
	Seed:           false,
	Timings:        Timings,
}

// Usage holds SambaNova's extra usage fields (seconds and tokens per second).
type Usage struct {
	TimeToFirstToken                 *float64 `json:"time_to_first_token"`
	TotalLatency                     *float64 `json:"total_latency"`
	CompletionTokensPerSec           *float64 `json:"completion_tokens_per_sec"`
	CompletionTokensAfterFirstPerSec *float64 `json:"completion_tokens_after_first_per_sec"`
	TotalTokensPerSec                *float64 `json:"total_tokens_per_sec"`
	IsLastResponse                   *bool    `json:"is_last_response"`
}

// Timings reads time_to_first_token and total_latency (seconds) from a usage object and returns them as
// prefill and decode milliseconds; ok is false when either is missing or they are inconsistent.
func Timings(raw json.RawMessage) (prefillMS, decodeMS float64, ok bool) {
	var u Usage
	if json.Unmarshal(raw, &u) != nil || u.TimeToFirstToken == nil || u.TotalLatency == nil {
		return 0, 0, false
	}
	ttft, total := *u.TimeToFirstToken, *u.TotalLatency
	if ttft < 0 || total < ttft || total > 1e6 {
		return 0, 0, false
	}
	return ttft * 1000, (total - ttft) * 1000, true
}

// Open builds an sn40l backend.
func Open(ctx context.Context, cfg backends.Config) (*oaiclient.Remote, error) {
	return oaiclient.Open(ctx, Flavor, cfg)
}

func init() {
	backends.Register("sn40l", func(ctx context.Context, cfg backends.Config) (backends.Backend, error) {
		return Open(ctx, cfg)
	})
}
