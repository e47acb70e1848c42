// Package infinitebench implements InfiniteBench (OpenBMB/InfiniteBench, "∞Bench"): long-context tasks past
// 100k tokens, with the official protocol of src/eval_utils.py, src/eval_*.py and src/compute_scores.py:
//
//   - the prompt of src/prompt.py for the chosen model family (create_prompt), byte-exact under prompts/: by
//     default the family the repository's open-model scripts use (yarn-mistral, also Yi-200k and ChatGLM3), sent
//     raw as they send it; "gpt4" sends its templates as chat messages after the system message "You are a
//     helpful assistant", as create_msgs does;
//   - middle truncation to max_len tokens of the model's own tokenizer;
//   - greedy decoding with DATA_NAME_TO_MAX_NEW_TOKENS per task;
//   - compute_scores.py's get_score_one per task.
//
// Ten of the twelve tasks are implemented: passkey, number_string, kv_retrieval (Retrieve), longbook_qa_eng,
// longbook_choice_eng, longbook_qa_chn, longdialogue_qa_eng (book and dialogue), math_find, code_run and
// code_debug. longbook_sum_eng (scored with the `evaluate` package's rougeLsum) and math_calc (30,000 new tokens
// per item) are not.
package infinitebench

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/snapeval/snapeval/datasets"
	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/internal/pytext"
	"github.com/snapeval/snapeval/llm"
)

// Name is the benchmark's registry name.
const Name = "infinitebench"

// Template families.
const (
	FamilyOpen = "yarn-mistral"
	FamilyGPT4 = "gpt4"
)

// DefaultMaxLen is the default truncation length of the open-model family: 128,000 tokens. The official
// yarn-mistral and ChatGLM3 scripts cut to 131,072 (128 x 1024), which leaves no room for the answer in a
// 131,072-position model such as Llama-3.1; set max_len=131072 to cut exactly as they do.
const DefaultMaxLen = 128000

// DefaultMaxLenGPT4 is create_msgs's truncation for the gpt4 family: 128,000 - 1,000 tokens.
const DefaultMaxLenGPT4 = 127000

// Task is one InfiniteBench task.
type Task struct {
	Name string
	// MaxNew is DATA_NAME_TO_MAX_NEW_TOKENS's entry.
	MaxNew int
	// Kind groups the tasks as the paper's table does (Retrieve, En/Zh book, Dialogue, Math, Code).
	Kind string
}

// Tasks lists the implemented tasks; the first four are the ones the SnapStream paper reports.
var Tasks = []Task{
	{"passkey", 6, "retrieve"},
	{"number_string", 12, "retrieve"},
	{"kv_retrieval", 50, "retrieve"},
	{"longbook_qa_eng", 40, "book"},
	{"longbook_choice_eng", 40, "book"},
	{"longbook_qa_chn", 40, "book"},
	{"longdialogue_qa_eng", 40, "dialogue"},
	{"math_find", 3, "math"},
	{"code_run", 5, "code"},
	{"code_debug", 5, "code"},
}

// DefaultTasks are the tasks run unless the "tasks" option says otherwise: all of Tasks.
var DefaultTasks = []string{"passkey", "number_string", "kv_retrieval", "longbook_qa_eng", "longbook_choice_eng",
	"longbook_qa_chn", "longdialogue_qa_eng", "math_find", "code_run", "code_debug"}

// TaskByName returns the task called name.
func TaskByName(name string) (Task, bool) {
	for _, t := range Tasks {
		if t.Name == name {
			return t, true
		}
	}
	return Task{}, false
}

//go:embed prompts
var promptFS embed.FS

// Template returns the official template of a task in a family.
func Template(family, task string) (string, error) {
	b, err := promptFS.ReadFile("prompts/" + family + "/" + task + ".txt")
	if err != nil {
		return "", fmt.Errorf("infinitebench: no %s template for task %q", family, task)
	}
	return string(b), nil
}

// Row is one upstream row ({task}.jsonl on the Hub). Task is not a field of the published rows: snapeval reads
// it from a "task" field when present, else from the file name or the "task" option.
type Row struct {
	ID      json.RawMessage `json:"id"`
	Context string          `json:"context"`
	Content *string         `json:"content"`
	Input   string          `json:"input"`
	Answer  json.RawMessage `json:"answer"`
	Options []string        `json:"options"`
	Task    string          `json:"task"`
}

// Problem is an Item's Data.
type Problem struct {
	Task Task
	// Label is what get_answer gives the scorer: the answers as strings ([option, letter] for the choice tasks).
	Label []string
	// Numbers holds the numeric labels of math_find and code_run.
	Numbers []Number
	// Prompt is the rendered (and possibly truncated) prompt.
	Prompt string
	// Tokens is the prompt's token count before truncation (0 without a tokenizer).
	Tokens    int
	Truncated bool
}

var (
	codeRunCall = regexp.MustCompile(`func_[0-9]+\(-?[0-9]+\)`)
	mathFindTar = regexp.MustCompile(`The .+ of`)
)

// parseAnswer reads the answer field: a string, or a list of strings or numbers.
func parseAnswer(raw json.RawMessage) ([]string, []Number, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, fmt.Errorf("field answer is missing")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}, nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, nil, fmt.Errorf("field answer: want a string or a list")
	}
	var strs []string
	var nums []Number
	for i, it := range items {
		if json.Unmarshal(it, &s) == nil {
			strs = append(strs, s)
			continue
		}
		var n json.Number
		if err := json.Unmarshal(it, &n); err != nil {
			return nil, nil, fmt.Errorf("field answer[%d]: want a string or a number", i)
		}
		nums = append(nums, Number{Text: n.String(), IsFloat: strings.ContainsAny(n.String(), ".eE")})
		strs = append(strs, n.String())
	}
	if len(strs) == 0 {
		return nil, nil, fmt.Errorf("field answer is empty")
	}
	return strs, nums, nil
}

// fields builds create_prompt's format arguments for a row of task t.
func fields(t Task, r Row) (map[string]string, error) {
	ctx := r.Context
	if r.Content != nil {
		ctx = *r.Content
	}
	f := map[string]string{"context": ctx, "input": r.Input, "question": r.Input}
	switch t.Name {
	case "code_run":
		call := codeRunCall.FindString(r.Input)
		if call == "" {
			return nil, fmt.Errorf("field input has no func_N(M) call (create_prompt raises IndexError)")
		}
		f["func_call"], f["func"] = call, call[:strings.IndexByte(call, '(')]
	case "math_find":
		m := mathFindTar.FindString(r.Input)
		if m == "" {
			return nil, fmt.Errorf("field input has no \"The ... of\" (create_prompt asserts it)")
		}
		target := []rune(pytext.Lower(m))
		f["prefix"] = "What is " + string(target[:len(target)-3]) + " in the following list?"
	case "code_debug", "longbook_choice_eng":
		if len(r.Options) < 4 {
			return nil, fmt.Errorf("field options has %d entries, want 4", len(r.Options))
		}
		for i, k := range []string{"OPTION_A", "OPTION_B", "OPTION_C", "OPTION_D"} {
			f[k] = r.Options[i]
		}
	}
	return f, nil
}

// Render fills a template as str.format(**fields) does: one pass replacing each {name} by its field; braces
// inside the values are left alone.
func Render(template string, fields map[string]string) (string, error) {
	var b strings.Builder
	for s := template; ; {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("infinitebench: unterminated field in template")
		}
		name := s[i+1 : i+j]
		v, ok := fields[name]
		if !ok {
			return "", fmt.Errorf("infinitebench: template field {%s} has no value", name)
		}
		b.WriteString(v)
		s = s[i+j+1:]
	}
}

// label is get_answer's label for the scorer.
func label(t Task, strs []string, opts []string) ([]string, error) {
	if t.Name != "code_debug" && t.Name != "longbook_choice_eng" {
		return strs, nil
	}
	if len(strs) == 2 && strings.Contains("ABCD", strs[1]) && len(strs[1]) == 1 {
		return strs, nil
	}
	if len(strs) != 1 {
		return nil, fmt.Errorf("field answer: %d entries (get_answer wants one option, or an option and its letter)", len(strs))
	}
	i := slices.Index(opts, strs[0])
	if i < 0 || i > 3 {
		return nil, fmt.Errorf("field answer %q is not one of the first four options", strs[0])
	}
	return []string{strs[0], string("ABCD"[i])}, nil
}

type specialEncoder interface {
	EncodeWithSpecial(text string) []int
}

type skipDecoder interface {
	DecodeSkipSpecial(ids []int) string
}

// Truncate is the official middle truncation. The open-model family (truncate_by_tokens): tok.encode(prompt)
// with its special tokens, when longer than maxLen the first and last maxLen//2 tokens, decoded together skipping
// special tokens. The gpt4 family (create_msgs, tiktoken): no special tokens, input[:maxLen//2] +
// input[-maxLen//2:] (Python's floor division gives the tail one token more for an odd maxLen).
func Truncate(tok llm.Tokenizer, prompt string, maxLen int, family string) (string, int) {
	var ids []int
	se, special := tok.(specialEncoder)
	if special && family == FamilyOpen {
		ids = se.EncodeWithSpecial(prompt)
	} else {
		ids = tok.Encode(prompt)
	}
	n := len(ids)
	if n <= maxLen {
		return prompt, n
	}
	head, tail := maxLen/2, maxLen/2
	if family == FamilyGPT4 {
		tail = maxLen - maxLen/2
	}
	kept := append(append(make([]int, 0, head+tail), ids[:head]...), ids[n-tail:]...)
	if sd, ok := tok.(skipDecoder); ok {
		return sd.DecodeSkipSpecial(kept), n
	}
	return tok.Decode(kept), n
}

// Bench is the InfiniteBench benchmark.
type Bench struct {
	family string
	maxLen int
	tasks  []string
	task   string // the task of rows that do not name one (option "task")
	files  []string
	dir    string
}

// New opens the benchmark. Options: "tasks" (comma-separated), "template" (yarn-mistral | gpt4), "max_len"
// (tokens), "task" (the task of rows that name none, for --data files and `snapeval grade`).
func New(opts eval.BenchOptions) (*Bench, error) {
	b := &Bench{family: FamilyOpen, tasks: DefaultTasks, files: opts.Files, dir: opts.DataDir}
	maxLen := 0
	for k, v := range opts.Options {
		switch k {
		case "template":
			if v != FamilyOpen && v != FamilyGPT4 {
				return nil, fmt.Errorf("infinitebench: option template=%q: want %s or %s", v, FamilyOpen, FamilyGPT4)
			}
			b.family = v
		case "max_len":
			n, err := strconv.Atoi(v)
			if err != nil || n < 2 {
				return nil, fmt.Errorf("infinitebench: option max_len=%q: want an integer >= 2", v)
			}
			maxLen = n
		case "tasks":
			var chosen []string
			for _, name := range strings.Split(v, ",") {
				name = strings.TrimSpace(name)
				if _, ok := TaskByName(name); !ok {
					return nil, fmt.Errorf("infinitebench: option tasks: unknown task %q (known: %s)", name, strings.Join(DefaultTasks, ", "))
				}
				if !slices.Contains(chosen, name) {
					chosen = append(chosen, name)
				}
			}
			b.tasks = chosen
		case "task":
			if _, ok := TaskByName(v); !ok {
				return nil, fmt.Errorf("infinitebench: option task: unknown task %q (known: %s)", v, strings.Join(DefaultTasks, ", "))
			}
			b.task = v
		default:
			return nil, fmt.Errorf("infinitebench: unknown option %q (known: tasks, template, max_len, task)", k)
		}
	}
	b.maxLen = maxLen
	if maxLen == 0 {
		b.maxLen = DefaultMaxLen
		if b.family == FamilyGPT4 {
			b.maxLen = DefaultMaxLenGPT4
		}
	}
	return b, nil
}

func init() {
	eval.RegisterBenchmark(Name, func(o eval.BenchOptions) (eval.Benchmark, error) { return New(o) })
	eval.RegisterAggregate(Name, Aggregate)
}

// Name implements eval.Benchmark.
func (b *Bench) Name() string { return Name }

// Defaults implements eval.Benchmark: greedy, one sample; each request sets its task's max new tokens.
func (b *Bench) Defaults() eval.Defaults {
	return eval.Defaults{Sampling: llm.Sampling{Temperature: 0, MaxNew: 50}, Samples: 1}
}

// Files returns the files Items reads: BenchOptions.Files, else {task}.jsonl of each chosen task in the dataset
// cache (or the --data directory).
func (b *Bench) Files() []string {
	if len(b.files) > 0 {
		return b.files
	}
	var fs []string
	for _, t := range b.tasks {
		fs = append(fs, datasets.Path(b.dir, Name, t+".jsonl"))
	}
	return fs
}

// Items implements eval.Benchmark. A row's task is its "task" field, else the task its file is named after
// ({task}.jsonl), else the "task" option; rows of tasks not chosen are skipped.
func (b *Bench) Items(ctx context.Context, tok llm.Tokenizer) ([]eval.Item, error) {
	var all []eval.Item
	seen := map[string]bool{}
	for _, f := range b.Files() {
		fileTask := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
		if _, ok := TaskByName(fileTask); !ok {
			fileTask = ""
		}
		items, err := datasets.ReadItems(ctx, []string{f}, func(raw []byte) (eval.Item, error) {
			return b.item(raw, fileTask, tok)
		}, eval.ItemID)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if seen[it.ID] {
				return nil, fmt.Errorf("%s: duplicate item id %q", f, it.ID)
			}
			seen[it.ID] = true
			if slices.Contains(b.tasks, it.Tags["task"]) {
				all = append(all, it)
			}
		}
	}
	return all, nil
}

// ParseRow implements eval.RowParser: the row's task is its "task" field, else the "task" option.
func (b *Bench) ParseRow(raw []byte) (eval.Item, error) { return b.item(raw, "", nil) }

func (b *Bench) item(raw []byte, fileTask string, tok llm.Tokenizer) (eval.Item, error) {
	var r Row
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return eval.Item{}, fmt.Errorf("infinitebench row: %w", err)
	}
	id := string(bytes.TrimSpace(r.ID))
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		return eval.Item{}, fmt.Errorf("infinitebench row: field id %s is not an integer", id)
	}
	name := r.Task
	for _, n := range []string{fileTask, b.task} {
		if name == "" {
			name = n
		}
	}
	if name == "" {
		return eval.Item{}, fmt.Errorf("infinitebench row %s: no task (the published rows do not name it: add a \"task\" field or pass the option task=NAME)", id)
	}
	t, ok := TaskByName(name)
	if !ok {
		return eval.Item{}, fmt.Errorf("infinitebench row %s: task %q is not implemented (known: %s)", id, name, strings.Join(DefaultTasks, ", "))
	}
	strs, nums, err := parseAnswer(r.Answer)
	if err != nil {
		return eval.Item{}, fmt.Errorf("infinitebench row %s (%s): %w", id, t.Name, err)
	}
	if (t.Name == "math_find" || t.Name == "code_run") && len(nums) == 0 {
		return eval.Item{}, fmt.Errorf("infinitebench row %s (%s): field answer holds no number", id, t.Name)
	}
	lbl, err := label(t, strs, r.Options)
	if err != nil {
		return eval.Item{}, fmt.Errorf("infinitebench row %s (%s): %w", id, t.Name, err)
	}
	f, err := fields(t, r)
	if err != nil {
		return eval.Item{}, fmt.Errorf("infinitebench row %s (%s): %w", id, t.Name, err)
	}
	tmpl, err := Template(b.family, t.Name)
	if err != nil {
		return eval.Item{}, err
	}
	prompt, err := Render(tmpl, f)
	if err != nil {
		return eval.Item{}, err
	}
	p := &Problem{Task: t, Label: lbl, Numbers: nums, Prompt: prompt}
	if tok != nil {
		p.Prompt, p.Tokens = Truncate(tok, p.Prompt, b.maxLen, b.family)
		p.Truncated = p.Tokens > b.maxLen
	}
	return eval.Item{ID: t.Name + "/" + id, Tags: map[string]string{"task": t.Name, "kind": t.Kind}, Data: p}, nil
}

func problem(item eval.Item) (*Problem, error) {
	p, ok := item.Data.(*Problem)
	if !ok || p == nil {
		return nil, fmt.Errorf("infinitebench: item %s has data %T", item.ID, item.Data)
	}
	return p, nil
}

// Request implements eval.Benchmark: the raw prompt (open-model family) or the system and user messages of
// create_msgs (gpt4 family); greedy, the task's max new tokens.
func (b *Bench) Request(item eval.Item) (llm.Request, error) {
	p, err := problem(item)
	if err != nil {
		return llm.Request{}, err
	}
	sp := llm.Sampling{Temperature: 0, MaxNew: p.Task.MaxNew}
	if b.family == FamilyGPT4 {
		return llm.Request{Messages: []llm.Message{
			{Role: "system", Content: "You are a helpful assistant"},
			{Role: "user", Content: p.Prompt},
		}, Sampling: sp}, nil
	}
	return llm.Request{Prompt: p.Prompt, Sampling: sp}, nil
}

// Verdicts.
const (
	VerdictCorrect = "correct"
	VerdictPartial = "partial"
	VerdictWrong   = "wrong"
)

// Score is get_score_one for one output of a problem, in [0, 1].
func Score(p *Problem, output string) float64 {
	b2f := func(ok bool) float64 {
		if ok {
			return 1
		}
		return 0
	}
	switch p.Task.Name {
	case "passkey", "number_string":
		return b2f(scorePasskey(output, p.Label))
	case "kv_retrieval":
		return b2f(scoreKVRetrieval(output, p.Label[0]))
	case "longbook_qa_eng":
		return qaF1(output, p.Label)
	case "longbook_qa_chn":
		return qaF1Zh(output, p.Label)
	case "longbook_choice_eng":
		return b2f(scoreChoice(output, p.Label))
	case "longdialogue_qa_eng":
		return b2f(scoreDialogue(output, p.Label))
	case "math_find":
		return b2f(scoreMathFind(output, p.Numbers))
	case "code_run":
		return b2f(scoreCodeRun(output, p.Numbers))
	case "code_debug":
		return b2f(scoreCodeDebug(output, p.Label))
	}
	return 0
}

// Grade implements eval.Benchmark.
func (b *Bench) Grade(_ context.Context, item eval.Item, output string) (eval.Grade, error) {
	p, err := problem(item)
	if err != nil {
		return eval.Grade{}, err
	}
	s := Score(p, output)
	g := eval.Grade{Score: s, Correct: s == 1, Extracted: extracted(p.Task.Name, output)}
	switch {
	case s == 1:
		g.Verdict = VerdictCorrect
	case s > 0:
		g.Verdict = VerdictPartial
	default:
		g.Verdict, g.Detail = VerdictWrong, "label "+strings.Join(p.Label, " | ")
	}
	return g, nil
}

// extracted is what the scorer read, where it reads one value (for majority votes); "" otherwise.
func extracted(task, output string) string {
	switch task {
	case "passkey", "number_string":
		return firstIntMatch(output)
	case "math_find":
		return findPyNumber(output)
	}
	return ""
}

var (
	_ eval.FileBacked   = (*Bench)(nil)
	_ eval.GoldAnswerer = (*Bench)(nil)
	_ eval.RowParser    = (*Bench)(nil)
)

// Gold implements eval.GoldAnswerer: an output the official scorer accepts ("X." for the choice tasks, the
// label otherwise); ok is false when no label is scorable (a dialogue label with a space never matches a word).
func (b *Bench) Gold(item eval.Item) (string, bool) {
	p, ok := item.Data.(*Problem)
	if !ok || p == nil || len(p.Label) == 0 {
		return "", false
	}
	cands := []string{p.Label[0]}
	switch p.Task.Name {
	case "longbook_choice_eng", "code_debug":
		cands = []string{p.Label[1] + "."}
	case "math_find", "code_run":
		cands = []string{p.Numbers[0].Text}
	}
	for _, c := range cands {
		if Score(p, c) == 1 {
			return c, true
		}
	}
	return "", false
}

// Aggregate is InfiniteBench's summary (the registered eval.Aggregate): each task's mean score x100, as the
// paper's table reports them, and "Avg", their mean.
func Aggregate(items []eval.ItemScore) []eval.Metric {
	sums := map[string]float64{}
	counts := map[string]int{}
	for _, it := range items {
		t := it.Tags["task"]
		if _, ok := TaskByName(t); ok {
			sums[t] += it.Score
			counts[t]++
		}
	}
	var out []eval.Metric
	avg := eval.Metric{Name: "Avg"}
	for _, t := range Tasks {
		if counts[t.Name] == 0 {
			continue
		}
		m := eval.Metric{Name: t.Name, Value: 100 * sums[t.Name] / float64(counts[t.Name]), Items: counts[t.Name]}
		out = append(out, m)
		avg.Value += m.Value
		avg.Items += m.Items
	}
	if len(out) == 0 {
		return nil
	}
	avg.Value /= float64(len(out))
	return append(out, avg)
}
