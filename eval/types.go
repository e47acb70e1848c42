// Package eval holds the machinery of an evaluation: benchmark items and grades, the run matrix, the runner, the
// record store and the manifest. The vocabulary it shares with backends (requests, outputs, tokenizers) lives in
// package llm.
package eval

import (
	"context"
	"errors"
	"fmt"

	"github.com/snapeval/snapeval/llm"
)

// Grade is a grader's verdict on one output.
type Grade struct {
	// Extracted is the answer the grader read from the output ("" when none was found).
	Extracted string `json:"extracted"`
	// Correct is true when the output is right (for partial-credit tasks: Score == 1).
	Correct bool `json:"correct"`
	// Score in [0,1]: 1/0 for exact tasks, recall for RULER multi-value tasks.
	Score float64 `json:"score"`
	// Verdict is a benchmark-specific label ("pass", "wrong_answer", "no_answer", "time_limit", ...).
	Verdict string `json:"verdict,omitempty"`
	// Detail is free text for humans (first failing test, ...).
	Detail string `json:"detail,omitempty"`
}

// Item is one benchmark problem.
type Item struct {
	ID string
	// Tags are the breakdown dimensions reports group by (e.g. "difficulty": "hard", "length": "long").
	Tags map[string]string
	// Data is the benchmark's own payload (question, gold answer, tests, ...).
	Data any
}

// ItemID returns it.ID (for generic helpers such as datasets.ReadItems that key items by id).
func ItemID(it Item) string { return it.ID }

// Benchmark is one evaluation suite: it loads items, renders requests and grades outputs.
type Benchmark interface {
	// Name is the benchmark name used on the command line and in records ("synth", "ruler", "aime24", ...).
	Name() string
	// Items loads the items. tok is the model's tokenizer when the backend has one (nil otherwise);
	// benchmarks that size or truncate prompts by tokens use it.
	Items(ctx context.Context, tok llm.Tokenizer) ([]Item, error)
	// Request renders the request of one item (Key, Sampling.Seed and Policy are filled in by the runner).
	// A request whose Sampling.MaxNew is 0 takes Defaults().Sampling whole (Stop, if set, is kept).
	Request(item Item) (llm.Request, error)
	// Grade grades one output of one item. An error means grading itself failed (recorded as ErrKindGrader).
	Grade(ctx context.Context, item Item, output string) (Grade, error)
	// Defaults are the benchmark's official sampling parameters and sample count.
	Defaults() Defaults
}

// Defaults are a benchmark's official generation settings.
type Defaults struct {
	Sampling llm.Sampling
	Samples  int
}

// Manifest describes a run: everything needed to reproduce it. It is written as manifest.json beside the records.
type Manifest struct {
	RunID    string `json:"run_id"`
	Version  string `json:"snapeval_version"`
	Revision string `json:"git_revision"`
	// Config is the full resolved run configuration.
	Config  RunConfig `json:"config"`
	Backend string    `json:"backend_identity"`
	// Endpoints maps each policy to the remote deployment that served it ("model at URL", credentials removed).
	Endpoints map[string]string `json:"endpoints,omitempty"`
	Datasets  []DatasetIdentity `json:"datasets"`
	// Shard is "i/n" when this directory holds one shard of a larger run ("" for a whole run).
	Shard string `json:"shard,omitempty"`
	// Planned is the number of records this directory's run matrix holds (all shards' when merged); a report or
	// gate over fewer records is over an incomplete run.
	Planned int `json:"planned_records"`
	// ModelShape is the KV-relevant shape of the model when the backend knows it.
	ModelShape *llm.ModelShape `json:"model_shape,omitempty"`
	// ChatTemplate is the chat template a local backend renders chat messages with.
	ChatTemplate *llm.ChatTemplateInfo `json:"chat_template,omitempty"`
	// TokenizerSource says where the tokenizer that sized the prompts came from when it is not the backend's own
	// model's: "file PATH (sha256 ...)", "served by URL (sha256 ...)", or ApproxTokensNote.
	TokenizerSource string `json:"tokenizer_source,omitempty"`
	// BackendInfo is what a local engine reports about itself (torch: GPU, dtype, torch and transformers versions).
	BackendInfo map[string]string `json:"backend_info,omitempty"`
}

// DatasetIdentity names the exact data a benchmark ran on.
type DatasetIdentity struct {
	Bench  string `json:"bench"`
	Source string `json:"source"`
	SHA256 string `json:"sha256,omitempty"`
	Items  int    `json:"items"`
}

// RunConfig is the run matrix and its settings (from YAML, then flags).
type RunConfig struct {
	Benches     []string          `json:"benches" yaml:"benches"`
	Backend     string            `json:"backend" yaml:"backend"`
	Model       string            `json:"model" yaml:"model"`
	BaseURL     string            `json:"base_url,omitempty" yaml:"base_url"`
	Policies    []string          `json:"policies" yaml:"policies"`
	Samples     int               `json:"samples" yaml:"samples"`
	Limit       int               `json:"limit" yaml:"limit"`
	Seed        uint64            `json:"seed" yaml:"seed"`
	Temperature *float64          `json:"temperature,omitempty" yaml:"temperature"`
	TopP        *float64          `json:"top_p,omitempty" yaml:"top_p"`
	MaxNew      int               `json:"max_new,omitempty" yaml:"max_new"`
	Concurrency int               `json:"concurrency" yaml:"concurrency"`
	BenchOpts   map[string]string `json:"bench_options,omitempty" yaml:"bench_options"`
	// Tokenizer is a tokenizer.json for benchmarks that size prompts in tokens when the backend has none.
	Tokenizer string `json:"tokenizer,omitempty" yaml:"tokenizer"`
	// Data maps a benchmark to a local file or directory that replaces its locked dataset.
	Data        map[string]string `json:"data,omitempty" yaml:"data"`
	BackendOpts map[string]string `json:"backend_options,omitempty" yaml:"backend_options"`
}

// TokenSized is implemented by benchmarks whose protocol sizes or truncates prompts in the model's tokens (RULER's
// lengths, LongBench-v2's max_len): they must not run on a guess of the tokenizer (CheckTokenizer). estimate reports
// whether the benchmark can run on an estimate instead (4 bytes a token) when asked to (approx_tokens).
type TokenSized interface {
	SizesPromptsInTokens() (sized, estimate bool)
}

// ApproxTokensNote is what a manifest's TokenizerSource holds for a run allowed to size prompts without a tokenizer.
const ApproxTokensNote = "approximate (no tokenizer of the served model: 4 bytes a token; --backend-opt approx_tokens=true)"

// CheckTokenizer refuses to run a benchmark that sizes prompts in tokens when no tokenizer of the model is at hand
// (tok nil), unless approx allows estimating them and the benchmark can. backend names the backend in the message.
func CheckTokenizer(b Benchmark, tok llm.Tokenizer, backend string, approx bool) error {
	ts, ok := b.(TokenSized)
	if tok != nil || !ok {
		return nil
	}
	sized, estimate := ts.SizesPromptsInTokens()
	switch {
	case !sized || approx && estimate:
		return nil
	case approx:
		return fmt.Errorf("benchmark %s sizes its prompts in the model's tokens and cannot run on estimated lengths: "+
			"pass --tokenizer with the served model's tokenizer.json (a `snapeval serve` server publishes its own)", b.Name())
	}
	return fmt.Errorf("benchmark %s sizes its prompts in the model's tokens, but backend %s has no tokenizer of the served "+
		"model: pass --tokenizer with the served model's tokenizer.json (a `snapeval serve` server publishes its own), or "+
		"accept estimated lengths (4 bytes a token, flagged in the manifest and report) with --backend-opt approx_tokens=true",
		b.Name(), backend)
}

// EstimatesTokens reports whether b sizes prompts in tokens and, with no tokenizer (tok nil), runs on an estimate
// (the run's manifest then says ApproxTokensNote).
func EstimatesTokens(b Benchmark, tok llm.Tokenizer) bool {
	ts, ok := b.(TokenSized)
	if !ok || tok != nil {
		return false
	}
	sized, _ := ts.SizesPromptsInTokens()
	return sized
}

// DatasetIdentifier is implemented by benchmarks that can name the exact data they loaded (for the manifest).
type DatasetIdentifier interface {
	Dataset() DatasetIdentity
}

// FileBacked is implemented by benchmarks that read their items from files (the locked dataset or --data); the run
// checks those files against datasets.lock and records their sha256 in the manifest.
type FileBacked interface {
	Files() []string
}

// Chained is implemented by benchmarks whose protocol asks the model twice per sample (LongBench-v2's chain of
// thought: a reasoning pass, then an answer pass that quotes it). FollowUp builds the second request from the first
// output, or returns ok=false when the item needs a single pass. The runner sends it under the same policy and seed,
// grades the second output, and keeps the first in Record.FirstOutput.
type Chained interface {
	FollowUp(item Item, first string) (req llm.Request, ok bool, err error)
}

// Truncation says how a benchmark fitted an item's prompt to a token budget.
type Truncation struct {
	// Truncated is true when the prompt was cut.
	Truncated bool `json:"truncated"`
	// TokensBefore and TokensAfter count the prompt's token ids before the cut and those kept (equal when not cut),
	// in the benchmark's own counting (LongBench-v2: tokenizer.encode, special tokens included).
	TokensBefore int `json:"tokens_before"`
	TokensAfter  int `json:"tokens_after"`
}

// Truncated is implemented by an Item's Data when the benchmark measures, and may cut, its prompt in model tokens
// (LongBench-v2's middle truncation); ok is false when it had no tokenizer to do so. `snapeval prompts` reports it.
type Truncated interface {
	Truncation() (t Truncation, ok bool)
}

// Validate checks the numbers of a resolved run configuration, naming the flag of a bad one: samples, limit and
// max new tokens not negative (0: the benchmark's default, all items), concurrency at least 1, and temperature and
// top-p within the ranges every backend accepts (llm.Sampling.Validate, the check `snapeval serve` applies too).
func (c RunConfig) Validate() error {
	for _, f := range []struct {
		flag string
		v    int
	}{{"--samples", c.Samples}, {"--limit", c.Limit}, {"--max-new", c.MaxNew}} {
		if f.v < 0 {
			return fmt.Errorf("%s %d: want a number >= 0", f.flag, f.v)
		}
	}
	if c.Concurrency < 1 {
		return fmt.Errorf("--concurrency %d: want a number >= 1", c.Concurrency)
	}
	var s llm.Sampling
	if c.Temperature != nil {
		s.Temperature = *c.Temperature
	}
	if c.TopP != nil {
		s.TopP = *c.TopP
	}
	if err := s.Validate(); err != nil {
		var fe *llm.FieldError
		if errors.As(err, &fe) {
			flag := map[string]string{"temperature": "--temperature", "top_p": "--top-p"}[fe.Field]
			return fmt.Errorf("%s %v: want %s", flag, fe.Value, fe.Want)
		}
		return err
	}
	return nil
}
