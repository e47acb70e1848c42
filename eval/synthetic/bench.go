package synthetic

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/llm"
)

// Name is the benchmark name on the command line and in records.
const Name = "synth"

// Default suite: every task at 512 and 1024 tokens, 17 items each (204 items).
var (
	DefaultTasks   = Tasks
	DefaultLengths = []int{512, 1024}
	DefaultN       = 17
)

// DefaultMaxNew is the suite's default token budget for answers; items carry a per-task value below it.
const DefaultMaxNew = 48

func init() {
	eval.RegisterBenchmark(Name, func(opts eval.BenchOptions) (eval.Benchmark, error) { return New(opts) })
}

// Bench is the "synth" benchmark (the built-in suite). It implements eval.Benchmark.
type Bench struct {
	cfg    Config
	maxNew int // 0: per-task default
}

// New builds the suite from options: "tasks" (comma list), "lengths" (comma list of token lengths),
// "n" (items per task and length), "max_new" (overrides the per-task answer budget) and "chars_per_token"
// (the length rule when the backend has no tokenizer). Items come from the "eval" split of opts.Seed.
func New(opts eval.BenchOptions) (*Bench, error) {
	cfg := Config{Split: SplitEval, Seed: opts.Seed, Tasks: DefaultTasks, Lengths: DefaultLengths, N: DefaultN}
	b := &Bench{}
	for k, v := range opts.Options {
		var err error
		switch k {
		case "tasks":
			cfg.Tasks, err = ParseTasks(v)
		case "lengths":
			cfg.Lengths, err = ParseLengths(v)
		case "n":
			cfg.N, err = strconv.Atoi(strings.TrimSpace(v))
			if err == nil && cfg.N <= 0 {
				err = fmt.Errorf("want > 0")
			}
		case "max_new":
			b.maxNew, err = strconv.Atoi(strings.TrimSpace(v))
			if err == nil && b.maxNew <= 0 {
				err = fmt.Errorf("want > 0")
			}
		case "chars_per_token":
			cfg.CharsPerToken, err = strconv.ParseFloat(strings.TrimSpace(v), 64)
		default:
			return nil, fmt.Errorf("synth: unknown option %q (known: tasks, lengths, n, max_new, chars_per_token)", k)
		}
		if err != nil {
			return nil, fmt.Errorf("synth: option %s=%q: %w", k, v, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b.cfg = cfg
	return b, nil
}

// ParseTasks parses a comma list of task names ("all" means every task).
func ParseTasks(s string) ([]string, error) {
	if strings.TrimSpace(s) == "all" {
		return Tasks, nil
	}
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ok := false
		for _, t := range Tasks {
			ok = ok || t == f
		}
		if !ok {
			return nil, fmt.Errorf("unknown task %q (known: %s)", f, strings.Join(Tasks, ","))
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no tasks in %q", s)
	}
	return out, nil
}

// ParseLengths parses a comma list of token lengths; "1k"/"4K" mean 1024/4096 (at most 1M tokens each).
func ParseLengths(s string) ([]int, error) { return eval.ParseTokenLengths(s, 1<<20) }

// Name implements eval.Benchmark.
func (b *Bench) Name() string { return Name }

// Config returns the resolved generation config (without tokenizer).
func (b *Bench) Config() Config { return b.cfg }

// Items implements eval.Benchmark: it generates the eval split, sizing prompts with tok when it is not nil.
// Item.Data is a Sample; tags are "task" and "length".
func (b *Bench) Items(ctx context.Context, tok llm.Tokenizer) ([]eval.Item, error) {
	cfg := b.cfg
	cfg.Tok = tok
	items := make([]eval.Item, 0, len(cfg.Tasks)*len(cfg.Lengths)*cfg.N)
	for _, t := range cfg.Tasks {
		for _, l := range cfg.Lengths {
			for i := range cfg.N {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				s, err := GenerateOne(cfg, t, l, i)
				if err != nil {
					return nil, err
				}
				items = append(items, eval.Item{
					ID:   s.ID,
					Tags: map[string]string{"task": t, "length": strconv.Itoa(l)},
					Data: s,
				})
			}
		}
	}
	return items, nil
}

func sampleOf(item eval.Item) (Sample, error) {
	switch d := item.Data.(type) {
	case Sample:
		return d, nil
	case *Sample:
		if d != nil {
			return *d, nil
		}
	}
	return Sample{}, fmt.Errorf("synth: item %s: data is %T, want synthetic.Sample", item.ID, item.Data)
}

// Request implements eval.Benchmark: the raw prompt (no chat template), greedy, with the item's answer budget.
func (b *Bench) Request(item eval.Item) (llm.Request, error) {
	s, err := sampleOf(item)
	if err != nil {
		return llm.Request{}, err
	}
	maxNew := s.MaxNew
	if b.maxNew > 0 {
		maxNew = b.maxNew
	}
	return llm.Request{Prompt: s.Prompt, Sampling: llm.Sampling{Temperature: 0, MaxNew: maxNew, Stop: []string{"\n"}}}, nil
}

// Grade implements eval.Benchmark (see Score).
func (b *Bench) Grade(_ context.Context, item eval.Item, output string) (eval.Grade, error) {
	s, err := sampleOf(item)
	if err != nil {
		return eval.Grade{}, err
	}
	return Score(s.Answers, output), nil
}

// Defaults implements eval.Benchmark: greedy decoding, one sample.
func (b *Bench) Defaults() eval.Defaults {
	return eval.Defaults{Sampling: llm.Sampling{Temperature: 0, MaxNew: DefaultMaxNew}, Samples: 1}
}

var (
	_ eval.GoldAnswerer = (*Bench)(nil)
	_ eval.TokenSized   = (*Bench)(nil)
)

// Gold implements eval.GoldAnswerer: the completion the suite's generator writes for the item (Sample.Answer).
func (b *Bench) Gold(item eval.Item) (string, bool) {
	s, err := sampleOf(item)
	if err != nil || s.Answer == "" {
		return "", false
	}
	return s.Answer, true
}

// SizesPromptsInTokens implements eval.TokenSized: prompts are generated at target lengths in the model's tokens
// (4 bytes a token without a tokenizer).
func (b *Bench) SizesPromptsInTokens() (sized, estimate bool) { return true, true }
