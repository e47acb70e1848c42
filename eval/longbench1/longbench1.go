// Package longbench1 implements LongBench (v1; THUDM/LongBench, the code under LongBench/ in that repository):
// 21 long-context tasks in six categories, English, Chinese and code, and LongBench-E (13 tasks, balanced over
// three length intervals), with the official protocol of pred.py and eval.py:
//
//   - the prompt of config/dataset2prompt.json (prompts/, byte-exact), filled as str.format(**row) does;
//   - middle truncation of the prompt to max_len tokens of the model's own tokenizer (special tokens counted, as
//     tokenizer(prompt) counts them): the first and the last int(max_len/2) tokens, each half decoded alone;
//   - one user message through the model's chat template, except for trec, triviaqa, samsum, lsht, lcc and
//     repobench-p, which go raw (llm.Request.Prompt);
//   - greedy decoding, config/dataset2maxlen.json's max new tokens per task, and a newline stop for samsum;
//   - the official metrics of metrics.py (see Scorer for the choices left to the installed libraries), the first
//     line of the prediction for trec, triviaqa, samsum and lsht, the best score over the references;
//   - per-task scores (x100 in reports) and the official category averages (the registered eval.Aggregate).
package longbench1

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/snapeval/snapeval/datasets"
	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/internal/pytext"
	"github.com/snapeval/snapeval/llm"
)

// Name is the benchmark's registry name.
const Name = "longbench"

// DefaultMaxLen is the truncation length: config/model2maxlen.json's value for every 32k-context model
// (longchat-v1.5-7b-32k, chatglm2/3-6b-32k), the largest the v1 configuration knows. Models with a longer window
// may set max_len higher (the v2 configuration uses 120000 for Llama-3.1-8B-Instruct).
const DefaultMaxLen = 31500

//go:embed prompts/*.txt
var promptFS embed.FS

// Template returns the official prompt template of a task (dataset2prompt.json's value).
func Template(task string) (string, error) {
	b, err := promptFS.ReadFile("prompts/" + task + ".txt")
	if err != nil {
		return "", fmt.Errorf("longbench: no prompt for task %q", task)
	}
	return string(b), nil
}

// Row is one upstream LongBench row (data/{task}.jsonl and data/{task}_e.jsonl in data.zip).
type Row struct {
	Input      string   `json:"input"`
	Context    string   `json:"context"`
	Answers    []string `json:"answers"`
	Length     int      `json:"length"`
	Dataset    string   `json:"dataset"`
	Language   string   `json:"language"`
	AllClasses []string `json:"all_classes"`
	ID         string   `json:"_id"`
}

// ParseRow decodes and checks one upstream row: a known task in dataset (LongBench-E's "_e" suffix allowed),
// an _id, at least one answer, the classes of a classification task and the paragraph number of a retrieval
// task's answers.
func ParseRow(raw []byte) (Row, Task, error) {
	var r Row
	if err := json.Unmarshal(raw, &r); err != nil {
		return Row{}, Task{}, fmt.Errorf("longbench row: %w", err)
	}
	if r.ID == "" {
		return Row{}, Task{}, fmt.Errorf("longbench row: missing _id")
	}
	t, ok := TaskByName(strings.TrimSuffix(r.Dataset, "_e"))
	if !ok {
		return Row{}, Task{}, fmt.Errorf("longbench row %s: field dataset %q is not a LongBench task", r.ID, r.Dataset)
	}
	if len(r.Answers) == 0 {
		return Row{}, Task{}, fmt.Errorf("longbench row %s: field answers is empty", r.ID)
	}
	if r.Length < 0 {
		return Row{}, Task{}, fmt.Errorf("longbench row %s: field length %d is negative", r.ID, r.Length)
	}
	switch t.Metric {
	case MetricClass:
		if len(r.AllClasses) == 0 {
			return Row{}, Task{}, fmt.Errorf("longbench row %s: field all_classes is empty for classification task %s", r.ID, t.Name)
		}
	case MetricRetrieval, MetricRetrievalZ:
		for i, a := range r.Answers {
			if _, err := DefaultScorer.Score(t.Metric, "", a, nil); err != nil {
				return Row{}, Task{}, fmt.Errorf("longbench row %s: field answers[%d]: %w", r.ID, i, err)
			}
		}
	}
	return r, t, nil
}

// Render fills a template as Python's str.format(**row) does: one pass over the template replacing {context}
// and {input} (the only fields the official templates name), so that braces inside the values stay as they are.
func Render(template string, r Row) string {
	var b strings.Builder
	b.Grow(len(template) + len(r.Context) + len(r.Input))
	for s := template; ; {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		switch {
		case strings.HasPrefix(s[i:], "{context}"):
			b.WriteString(r.Context)
			s = s[i+len("{context}"):]
		case strings.HasPrefix(s[i:], "{input}"):
			b.WriteString(r.Input)
			s = s[i+len("{input}"):]
		default:
			b.WriteByte('{')
			s = s[i+1:]
		}
	}
}

// specialEncoder is a tokenizer that can count the special tokens tokenizer(prompt) adds (BOS).
type specialEncoder interface {
	EncodeWithSpecial(text string) []int
}

// skipDecoder is a tokenizer that can decode with skip_special_tokens=True.
type skipDecoder interface {
	DecodeSkipSpecial(ids []int) string
}

// Truncate is pred.py's middle truncation: when tokenizer(prompt) has more than maxLen tokens, keep the first
// and the last int(maxLen/2) and decode each half alone (skipping special tokens), the two texts concatenated.
// Special tokens are counted and skipped where the tokenizer can (EncodeWithSpecial, DecodeSkipSpecial). It
// returns the prompt and its token count before truncation.
func Truncate(tok llm.Tokenizer, prompt string, maxLen int) (string, int) {
	var ids []int
	if se, ok := tok.(specialEncoder); ok {
		ids = se.EncodeWithSpecial(prompt)
	} else {
		ids = tok.Encode(prompt)
	}
	n := len(ids)
	if n <= maxLen {
		return prompt, n
	}
	decode := tok.Decode
	if sd, ok := tok.(skipDecoder); ok {
		decode = sd.DecodeSkipSpecial
	}
	half := maxLen / 2
	return decode(ids[:half]) + decode(ids[n-half:]), n
}

// Problem is an Item's Data.
type Problem struct {
	Task Task
	// Row is the upstream row with its context dropped once rendered.
	Row Row
	// Prompt is the rendered (and possibly truncated) prompt.
	Prompt string
	// Tokens is the prompt's token count before truncation (0 without a tokenizer).
	Tokens int
	// Truncated is true when middle truncation cut the prompt.
	Truncated bool
}

// Bench is the LongBench benchmark.
type Bench struct {
	e      bool
	maxLen int
	tasks  []string
	files  []string
	dir    string
	scorer Scorer
}

// Options: "e" (true: LongBench-E), "tasks" (comma-separated subset), "max_len" (tokens), "rouge" (1.0.1 |
// 1.0.0), "rouge_depth" (the _recon depth rouge_score survives; 0 = no limit), "code_sim" (difflib |
// levenshtein).
func New(opts eval.BenchOptions) (*Bench, error) {
	b := &Bench{maxLen: DefaultMaxLen, files: opts.Files, dir: opts.DataDir, scorer: DefaultScorer}
	var tasks string
	for k, v := range opts.Options {
		switch k {
		case "e":
			e, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("longbench: option e=%q: want true or false", v)
			}
			b.e = e
		case "tasks":
			tasks = v
		case "max_len":
			n, err := strconv.Atoi(v)
			if err != nil || n < 2 {
				return nil, fmt.Errorf("longbench: option max_len=%q: want an integer >= 2", v)
			}
			b.maxLen = n
		case "rouge":
			if v != RougeV101 && v != RougeV100 {
				return nil, fmt.Errorf("longbench: option rouge=%q: want %s or %s", v, RougeV101, RougeV100)
			}
			b.scorer.Rouge = v
		case "rouge_depth":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("longbench: option rouge_depth=%q: want an integer >= 0 (0: no limit)", v)
			}
			b.scorer.RougeDepth = n
		case "code_sim":
			if v != CodeSimDifflib && v != CodeSimLevenshtein {
				return nil, fmt.Errorf("longbench: option code_sim=%q: want %s or %s", v, CodeSimDifflib, CodeSimLevenshtein)
			}
			b.scorer.CodeSim = v
		default:
			return nil, fmt.Errorf("longbench: unknown option %q (known: e, tasks, max_len, rouge, rouge_depth, code_sim)", k)
		}
	}
	for _, t := range Tasks {
		if !b.e || t.E {
			b.tasks = append(b.tasks, t.Name)
		}
	}
	if tasks != "" {
		var chosen []string
		for _, name := range strings.Split(tasks, ",") {
			name = strings.TrimSpace(name)
			if !slices.Contains(b.tasks, name) {
				return nil, fmt.Errorf("longbench: option tasks: %q is not a task of %s (known: %s)", name, b.setName(), strings.Join(b.tasks, ", "))
			}
			if !slices.Contains(chosen, name) {
				chosen = append(chosen, name)
			}
		}
		b.tasks = chosen
	}
	return b, nil
}

func (b *Bench) setName() string {
	if b.e {
		return "LongBench-E"
	}
	return "LongBench"
}

func init() {
	eval.RegisterBenchmark(Name, func(o eval.BenchOptions) (eval.Benchmark, error) { return New(o) })
	eval.RegisterAggregate(Name, Aggregate)
}

// Name implements eval.Benchmark.
func (b *Bench) Name() string { return Name }

// Defaults implements eval.Benchmark: greedy decoding, one sample; every request sets its task's max new tokens
// (the 512 here is the largest, summarization's).
func (b *Bench) Defaults() eval.Defaults {
	return eval.Defaults{Sampling: llm.Sampling{Temperature: 0, MaxNew: 512}, Samples: 1}
}

// Files returns the files Items reads: BenchOptions.Files, else data/{task}.jsonl (data/{task}_e.jsonl for
// LongBench-E) of each chosen task in the dataset cache (or the --data directory), as data.zip unpacks.
func (b *Bench) Files() []string {
	if len(b.files) > 0 {
		return b.files
	}
	var fs []string
	for _, t := range b.tasks {
		f := t
		if b.e {
			f += "_e"
		}
		fs = append(fs, datasets.Path(b.dir, Name, "data/"+f+".jsonl"))
	}
	return fs
}

// Items implements eval.Benchmark: every row of the chosen tasks (rows of other tasks in a --data file are
// skipped), rendered into its prompt and truncated with tok when tok is non-nil; the context is then dropped.
func (b *Bench) Items(ctx context.Context, tok llm.Tokenizer) ([]eval.Item, error) {
	items, err := datasets.ReadItems(ctx, b.Files(), func(raw []byte) (eval.Item, error) { return b.item(raw, tok) }, eval.ItemID)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(items, func(it eval.Item) bool {
		return !slices.Contains(b.tasks, it.Data.(*Problem).Task.Name)
	}), nil
}

// ParseRow implements eval.RowParser (no tokenizer: the prompt is not truncated).
func (b *Bench) ParseRow(raw []byte) (eval.Item, error) { return b.item(raw, nil) }

// ItemID is the id of a row's item: "task/_id" (ids are random per row; the task keeps them apart across files).
func ItemID(task, id string) string { return task + "/" + id }

func (b *Bench) item(raw []byte, tok llm.Tokenizer) (eval.Item, error) {
	r, t, err := ParseRow(raw)
	if err != nil {
		return eval.Item{}, err
	}
	tmpl, err := Template(t.Name)
	if err != nil {
		return eval.Item{}, err
	}
	p := &Problem{Task: t, Row: r, Prompt: Render(tmpl, r)}
	p.Row.Context = ""
	if tok != nil {
		p.Prompt, p.Tokens = Truncate(tok, p.Prompt, b.maxLen)
		p.Truncated = p.Tokens > b.maxLen
	}
	tags := map[string]string{"task": t.Name, "category": t.Category, "language": r.Language}
	if b.e {
		tags["length"] = LengthBucket(r.Length)
	}
	return eval.Item{ID: ItemID(t.Name, r.ID), Tags: tags, Data: p}, nil
}

func problem(item eval.Item) (*Problem, error) {
	p, ok := item.Data.(*Problem)
	if !ok || p == nil {
		return nil, fmt.Errorf("longbench: item %s has data %T", item.ID, item.Data)
	}
	return p, nil
}

// Request implements eval.Benchmark: the prompt as one user message, or raw for the tasks pred.py does not wrap
// in the chat template; greedy, the task's max new tokens, samsum stopping at a newline.
func (b *Bench) Request(item eval.Item) (llm.Request, error) {
	p, err := problem(item)
	if err != nil {
		return llm.Request{}, err
	}
	sp := llm.Sampling{Temperature: 0, MaxNew: p.Task.MaxNew}
	if p.Task.Name == "samsum" {
		sp.Stop = []string{"\n"}
	}
	if p.Task.Raw {
		return llm.Request{Prompt: p.Prompt, Sampling: sp}, nil
	}
	return llm.Request{Messages: []llm.Message{{Role: "user", Content: p.Prompt}}, Sampling: sp}, nil
}

// Verdicts.
const (
	VerdictCorrect = "correct" // the official score is 1
	VerdictPartial = "partial" // between 0 and 1
	VerdictWrong   = "wrong"   // 0
)

// maxExtracted bounds Grade.Extracted (summaries are long; the record keeps the whole output anyway).
const maxExtracted = 512

// Grade implements eval.Benchmark: the task's metric, on the first line for trec, triviaqa, samsum and lsht,
// the best over the references.
func (b *Bench) Grade(_ context.Context, item eval.Item, output string) (eval.Grade, error) {
	p, err := problem(item)
	if err != nil {
		return eval.Grade{}, err
	}
	return b.scorer.Grade(p.Task, p.Row, output)
}

// Grade scores one output of a row of task t as eval.py does.
func (sc Scorer) Grade(t Task, r Row, output string) (eval.Grade, error) {
	pred := output
	if t.FirstLine {
		pred = pytext.FirstLine(pred)
	}
	best, bestRef := 0.0, 0
	for i, ref := range r.Answers {
		s, err := sc.Score(t.Metric, pred, ref, r.AllClasses)
		if err != nil {
			return eval.Grade{}, err
		}
		if s > best {
			best, bestRef = s, i
		}
	}
	g := eval.Grade{Extracted: clip(pred, maxExtracted), Score: best, Correct: best == 1,
		Detail: fmt.Sprintf("%s %.4f against answers[%d]", t.Metric, best, bestRef)}
	switch {
	case best == 1:
		g.Verdict = VerdictCorrect
	case best > 0:
		g.Verdict = VerdictPartial
	default:
		g.Verdict = VerdictWrong
	}
	return g, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

var (
	_ eval.FileBacked   = (*Bench)(nil)
	_ eval.GoldAnswerer = (*Bench)(nil)
	_ eval.RowParser    = (*Bench)(nil)
)

// Gold implements eval.GoldAnswerer: the first reference the official scorer gives 1 when output as it is (a
// code line holding "#", "//" or '`' is skipped by code_sim_score, and some classification labels contain other
// labels, so not every reference qualifies); ok is false when none does.
func (b *Bench) Gold(item eval.Item) (string, bool) {
	p, ok := item.Data.(*Problem)
	if !ok || p == nil {
		return "", false
	}
	for _, a := range p.Row.Answers {
		if g, err := b.scorer.Grade(p.Task, p.Row, a); err == nil && g.Correct {
			return a, true
		}
	}
	return "", false
}
