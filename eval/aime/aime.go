// Package aime implements AIME 2024 (30 problems, integer answers 0-999) with the DeepSeek-R1 protocol:
// one user turn holding the problem followed by Instruction, no system prompt, temperature 0.6, top-p 0.95,
// 32768 new tokens, 64 samples per problem, pass@1 as the mean over samples and cons@k as the majority vote.
//
// It reads every known copy: the Hub parquet files of Maxwell-Jia/AIME_2024 (ID, Problem, Solution, Answer)
// and HuggingFaceH4/aime_2024 (id, problem, solution, answer, url, year), and JSONL/JSON copies with either
// spelling. Gold answers are normalised ("025" -> "25"). Item ids are "2024-I-1" .. "2024-II-15" whenever the
// row says which contest and problem it is (an AoPS url or an ID of that form), so that copies agree.
package aime

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/snapeval/snapeval/datasets"
	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/llm"
)

// Name is the benchmark's registry name.
const Name = "aime24"

// DatasetFile is the locked file read by default (dataset "aime24").
const DatasetFile = "aime_2024_problems.parquet"

// Instruction follows the problem in the prompt (DeepSeek-R1's recommendation for math).
const Instruction = "Please reason step by step, and put your final answer within \\boxed{}."

// Defaults of the R1 protocol.
const (
	DefaultSamples = 64
	DefaultMaxNew  = 32768
)

// Problem is an Item's Data.
type Problem struct {
	ID       string `json:"id"`
	Problem  string `json:"problem"`
	Solution string `json:"solution,omitempty"`
	// Answer is the canonical gold integer ("25"); RawAnswer as the copy wrote it ("025").
	Answer    string `json:"answer"`
	RawAnswer string `json:"raw_answer"`
	URL       string `json:"url,omitempty"`
}

var (
	urlRe = regexp.MustCompile(`(\d{4})_AIME_(I{1,2})_Problems/Problem_(\d+)`)
	idRe  = regexp.MustCompile(`^(\d{4})-(I{1,2})-(\d+)$`)
)

// ParseProblem reads one row of any known copy.
func ParseProblem(raw []byte) (*Problem, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("aime row: %w", err)
	}
	field := func(names ...string) (string, string, error) {
		for _, n := range names {
			v, ok := m[n]
			if !ok || string(v) == "null" {
				continue
			}
			var s string
			if err := json.Unmarshal(v, &s); err == nil {
				return s, n, nil
			}
			var num json.Number
			dec := json.NewDecoder(strings.NewReader(string(v)))
			dec.UseNumber()
			if err := dec.Decode(&num); err == nil {
				return num.String(), n, nil
			}
			return "", n, fmt.Errorf("aime row: field %s is neither a string nor a number", n)
		}
		return "", "", nil
	}
	p := &Problem{}
	var err error
	if p.ID, _, err = field("id", "ID"); err != nil {
		return nil, err
	}
	if p.Problem, _, err = field("problem", "Problem", "question"); err != nil {
		return nil, err
	}
	if p.Solution, _, err = field("solution", "Solution"); err != nil {
		return nil, err
	}
	if p.RawAnswer, _, err = field("answer", "Answer"); err != nil {
		return nil, err
	}
	if p.URL, _, err = field("url"); err != nil {
		return nil, err
	}
	if strings.TrimSpace(p.Problem) == "" {
		return nil, fmt.Errorf("aime row %q: field problem is missing or empty", p.ID)
	}
	if p.RawAnswer == "" {
		return nil, fmt.Errorf("aime row %q: field answer is missing", p.ID)
	}
	if p.Answer, err = CanonicalAnswer(p.RawAnswer); err != nil {
		return nil, fmt.Errorf("aime row %q: field answer: %w", p.ID, err)
	}
	if mm := urlRe.FindStringSubmatch(p.URL); mm != nil {
		p.ID = mm[1] + "-" + mm[2] + "-" + strings.TrimLeft(mm[3], "0")
	} else if p.ID == "" {
		return nil, fmt.Errorf("aime row: no id (fields id, ID or url)")
	}
	return p, nil
}

// Prompt renders the R1 user message: the problem, a newline, then Instruction.
func Prompt(problem string) string {
	return problem + "\n" + Instruction
}

// Bench is the AIME 2024 benchmark.
type Bench struct {
	grader Grader
	files  []string
	dir    string
}

// New builds the benchmark. Option "grader" picks the grading mode (default, qwen, lenient).
func New(opts eval.BenchOptions) (*Bench, error) {
	b := &Bench{grader: Grader{Mode: ModeDefault}, files: opts.Files, dir: opts.DataDir}
	for k, v := range opts.Options {
		switch k {
		case "grader":
			g, err := NewGrader(v)
			if err != nil {
				return nil, err
			}
			b.grader = g
		default:
			return nil, fmt.Errorf("aime: unknown option %q (known: grader)", k)
		}
	}
	return b, nil
}

func init() {
	eval.RegisterBenchmark(Name, func(o eval.BenchOptions) (eval.Benchmark, error) { return New(o) })
}

// Name implements eval.Benchmark.
func (b *Bench) Name() string { return Name }

// Defaults implements eval.Benchmark: the DeepSeek-R1 settings.
func (b *Bench) Defaults() eval.Defaults {
	return eval.Defaults{Sampling: llm.Sampling{Temperature: 0.6, TopP: 0.95, MaxNew: DefaultMaxNew}, Samples: DefaultSamples}
}

// Files returns the files Items reads: BenchOptions.Files, else the locked parquet file in the cache.
func (b *Bench) Files() []string {
	if len(b.files) > 0 {
		return b.files
	}
	return []string{datasets.Path(b.dir, Name, DatasetFile)}
}

// Items implements eval.Benchmark (tok is unused).
func (b *Bench) Items(ctx context.Context, _ llm.Tokenizer) ([]eval.Item, error) {
	return datasets.ReadItems(ctx, b.Files(), b.ParseRow, eval.ItemID)
}

// ParseRow implements eval.RowParser.
func (b *Bench) ParseRow(raw []byte) (eval.Item, error) {
	p, err := ParseProblem(raw)
	if err != nil {
		return eval.Item{}, err
	}
	tags := map[string]string{}
	if m := idRe.FindStringSubmatch(p.ID); m != nil {
		tags["contest"] = m[1] + "-" + m[2]
	}
	return eval.Item{ID: p.ID, Tags: tags, Data: p}, nil
}

// Request implements eval.Benchmark: one user turn, no system prompt.
func (b *Bench) Request(item eval.Item) (llm.Request, error) {
	p, ok := item.Data.(*Problem)
	if !ok {
		return llm.Request{}, fmt.Errorf("aime: item %s has data %T", item.ID, item.Data)
	}
	return llm.Request{
		Messages: []llm.Message{{Role: "user", Content: Prompt(p.Problem)}},
		Sampling: b.Defaults().Sampling,
	}, nil
}

// Grade implements eval.Benchmark.
func (b *Bench) Grade(_ context.Context, item eval.Item, output string) (eval.Grade, error) {
	p, ok := item.Data.(*Problem)
	if !ok {
		return eval.Grade{}, fmt.Errorf("aime: item %s has data %T", item.ID, item.Data)
	}
	return b.grader.Grade(output, p.Answer), nil
}

var (
	_ eval.FileBacked   = (*Bench)(nil)
	_ eval.GoldAnswerer = (*Bench)(nil)
)

// Gold implements eval.GoldAnswerer: the gold integer in a box, as the R1 instruction asks.
func (b *Bench) Gold(item eval.Item) (string, bool) {
	p, ok := item.Data.(*Problem)
	if !ok || p.Answer == "" {
		return "", false
	}
	return "The answer is \\boxed{" + p.Answer + "}.", true
}
