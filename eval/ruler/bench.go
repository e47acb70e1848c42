// Package ruler is the official RULER benchmark (NVIDIA/RULER, scripts/synthetic.yaml): its 13 tasks
// (niah_single_1/2/3, niah_multikey_1/2/3, niah_multivalue, niah_multiquery, vt, cwe, fwe, qa_1, qa_2) generated
// as RULER's Python generators generate them, sized in the model's own tokens, prompted with RULER's templates and
// answer prefixes, and scored with RULER's string_match_all / string_match_part after its postprocess_pred.
//
// The generators draw from CPython's random module and NumPy's legacy generator in the same order as RULER's
// scripts (internal/pyrand reproduces both bit for bit), including every probe of the binary search over the
// haystack size, so with the same tokenizer, seed and data the prompts are RULER's prompts. What can still differ
// is written in docs/benchmarks.md: the essay haystack's sentence splitter (NLTK Punkt there) and the versions of
// the word lists and data files.
//
// A run can also read the JSONL files RULER's own prepare.py wrote (--data ruler=DIR), so that exactly the
// official items are evaluated.
package ruler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/snapeval/snapeval/datasets"
	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/llm"
)

// Name is the benchmark's registry name.
const Name = "ruler"

// Defaults of RULER's scripts (config_tasks.sh, config_models.sh, prepare.py).
var (
	DefaultLengths = []int{4096, 8192, 16384, 32768, 65536, 131072}
	DefaultN       = 500
)

// DefaultSeed is prepare.py's --random_seed default.
const DefaultSeed = 42

// Files of the data, by where they are found: RULER's own names in a --data directory, the lock's in the cache.
const (
	EssayFile        = "PaulGrahamEssays.json"
	EnglishWordsFile = "english_words.json"
	SquadJSON        = "squad.json"
	HotpotJSON       = "hotpotqa.json"
	// Lock datasets and files (datasets.lock).
	SquadDataset  = "ruler.squad"
	SquadParquet  = "squad_v2/validation-00000-of-00001.parquet"
	HotpotDataset = "ruler.hotpotqa"
	HotpotLocked  = "hotpot_dev_distractor_v1.json"
	// LocalDataset holds, in the cache, the two files RULER keeps in its GitHub repository rather than on the Hub
	// (PaulGrahamEssays.json, english_words.json): put them there with `snapeval data import` or --data.
	LocalDataset = "ruler.github"
)

func init() {
	eval.RegisterBenchmark(Name, func(o eval.BenchOptions) (eval.Benchmark, error) { return New(o) })
}

// Item is an item's Data.
type Item struct {
	Task   Task
	MaxSeq int
	Row    Row
	Depth  float64
}

// Bench is the RULER benchmark.
type Bench struct {
	tasks            []Task
	lengths          []int
	n                int
	seed             int64
	template         string
	removeNewlineTab bool
	dir              string
	files            []string
	task             string // grade: the task of rows that do not name one
}

// New builds the benchmark. Options: tasks (comma list, default all 13), lengths (comma list of
// max_seq_length values; 4k = 4096; default 4k..128k), n (samples per task and length, default 500), seed
// (RULER's random_seed, default 42), template (a model template of RULER's template.py, default base),
// remove_newline_tab (true|false), task (for grade: the task of rows without a "task" field).
func New(opts eval.BenchOptions) (*Bench, error) {
	b := &Bench{tasks: Tasks, lengths: DefaultLengths, n: DefaultN, seed: DefaultSeed, template: "base",
		dir: opts.DataDir, files: opts.Files}
	for k, v := range opts.Options {
		var err error
		switch k {
		case "tasks":
			b.tasks, err = parseTasks(v)
		case "lengths":
			b.lengths, err = ParseLengths(v)
		case "n":
			b.n, err = strconv.Atoi(strings.TrimSpace(v))
			if err == nil && b.n <= 0 {
				err = fmt.Errorf("want > 0")
			}
		case "seed":
			b.seed, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil && (b.seed < 0 || b.seed >= 1<<32) {
				err = fmt.Errorf("want 0 <= seed < 2**32")
			}
		case "template":
			if _, ok := ModelTemplates[v]; !ok {
				err = errUnknownTemplate(v)
			}
			b.template = v
		case "remove_newline_tab":
			b.removeNewlineTab, err = strconv.ParseBool(v)
		case "task":
			if _, ok := TaskByName(v); !ok {
				err = fmt.Errorf("unknown task (known: %s)", taskNames())
			}
			b.task = v
		default:
			return nil, fmt.Errorf("ruler: unknown option %q (known: tasks, lengths, n, seed, template, remove_newline_tab, task; the built-in suite once called ruler is now synth)", k)
		}
		if err != nil {
			return nil, fmt.Errorf("ruler: option %s=%q: %w", k, v, err)
		}
	}
	return b, nil
}

func errUnknownTemplate(name string) error {
	var names []string
	for k := range ModelTemplates {
		names = append(names, k)
	}
	slices.Sort(names)
	return fmt.Errorf("unknown model template %q (known: %s)", name, strings.Join(names, ", "))
}

func taskNames() string {
	var n []string
	for _, t := range Tasks {
		n = append(n, t.Name)
	}
	return strings.Join(n, ",")
}

func parseTasks(s string) ([]Task, error) {
	if strings.TrimSpace(s) == "all" {
		return Tasks, nil
	}
	var out []Task
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		t, ok := TaskByName(f)
		if !ok {
			return nil, fmt.Errorf("unknown task %q (known: %s)", f, taskNames())
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no tasks in %q", s)
	}
	return out, nil
}

// ParseLengths parses a comma list of lengths in tokens; "4k" means 4096 (at most 16M tokens each).
func ParseLengths(s string) ([]int, error) { return eval.ParseTokenLengths(s, 1<<24) }

// Name implements eval.Benchmark.
func (b *Bench) Name() string { return Name }

// Defaults implements eval.Benchmark: greedy decoding (RULER's temperature 0, top_p 1), one sample; each item
// carries its task's tokens_to_generate.
func (b *Bench) Defaults() eval.Defaults {
	return eval.Defaults{Sampling: llm.Sampling{Temperature: 0, TopP: 1, MaxNew: 128}, Samples: 1}
}

// sourcePath returns where a data file is read from: the --data directory (RULER's names) or the cache.
func (b *Bench) sourcePaths() (essay, squad, hotpot, words string) {
	if b.dir != "" {
		j := func(n string) string { return filepath.Join(b.dir, n) }
		squad = j(SquadJSON)
		if _, err := os.Stat(squad); err != nil {
			if m, _ := filepath.Glob(j("*squad*.parquet")); len(m) > 0 {
				squad = m[0]
			}
		}
		hotpot = j(HotpotJSON)
		if _, err := os.Stat(hotpot); err != nil {
			if m, _ := filepath.Glob(j("*.parquet")); len(m) > 0 {
				for _, p := range m {
					if strings.Contains(filepath.Base(p), "hotpot") {
						hotpot = p
					}
				}
			}
		}
		return j(EssayFile), squad, hotpot, j(EnglishWordsFile)
	}
	return datasets.Path("", LocalDataset, EssayFile), datasets.Path("", SquadDataset, SquadParquet),
		datasets.Path("", HotpotDataset, HotpotLocked), datasets.Path("", LocalDataset, EnglishWordsFile)
}

func (b *Bench) needs(h string) bool {
	for _, t := range b.tasks {
		switch {
		case h == "essay" && t.Haystack == "essay",
			h == "squad" && t.Dataset == "squad",
			h == "hotpotqa" && t.Dataset == "hotpotqa":
			return true
		}
	}
	return false
}

// Files implements eval.FileBacked: the prepared JSONL files when --data names them, else the data files the
// chosen tasks read (english_words.json when present).
func (b *Bench) Files() []string {
	if p, _ := b.prepared(); len(p) > 0 {
		var out []string
		for _, f := range p {
			out = append(out, f.path)
		}
		return out
	}
	essay, squad, hotpot, words := b.sourcePaths()
	var out []string
	if b.needs("essay") {
		out = append(out, essay)
	}
	if b.needs("squad") {
		out = append(out, squad)
	}
	if b.needs("hotpotqa") {
		out = append(out, hotpot)
	}
	for _, t := range b.tasks {
		if t.Family == FamilyCWE {
			if _, err := os.Stat(words); err == nil {
				out = append(out, words)
			}
			break
		}
	}
	return out
}

// preparedFile is one <task>/<subset>.jsonl of prepare.py's output.
type preparedFile struct {
	path   string
	task   Task
	maxSeq int
}

// prepared finds prepare.py output under the --data directory (or the --data file): files named
// <task>/validation.jsonl or <task>/test.jsonl. The length is the nearest ancestor directory named by an
// integer (RULER writes <root>/<model>/synthetic/<max_seq_length>/data/<task>/validation.jsonl), else 0.
func (b *Bench) prepared() ([]preparedFile, error) {
	var paths []string
	if len(b.files) > 0 {
		paths = b.files
	} else if b.dir != "" {
		err := filepath.WalkDir(b.dir, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (d.Name() == "validation.jsonl" || d.Name() == "test.jsonl") {
				if _, ok := TaskByName(filepath.Base(filepath.Dir(p))); ok {
					paths = append(paths, p)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	var out []preparedFile
	for _, p := range paths {
		t, ok := TaskByName(filepath.Base(filepath.Dir(p)))
		if !ok {
			return nil, fmt.Errorf("ruler: %s: the file's directory must be a task name (%s), as prepare.py writes <task>/validation.jsonl", p, taskNames())
		}
		f := preparedFile{path: p, task: t}
		for d := filepath.Dir(filepath.Dir(p)); d != filepath.Dir(d); d = filepath.Dir(d) {
			if n, err := strconv.Atoi(filepath.Base(d)); err == nil && n > 0 {
				f.maxSeq = n
				break
			}
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, c preparedFile) int { return strings.Compare(a.path, c.path) })
	return out, nil
}

// ItemID is the stable id of the n-th sample of a task at a length, e.g. "niah_single_1/4096/007".
func ItemID(task string, maxSeq, n int) string { return fmt.Sprintf("%s/%d/%03d", task, maxSeq, n) }

func (b *Bench) item(t Task, maxSeq, n int, row Row, depth float64) eval.Item {
	tags := map[string]string{"task": t.Name, "length": strconv.Itoa(maxSeq)}
	if depth >= 0 {
		tags["depth"] = DepthBin(depth)
	}
	return eval.Item{ID: ItemID(t.Name, maxSeq, n), Tags: tags, Data: &Item{Task: t, MaxSeq: maxSeq, Row: row, Depth: depth}}
}

// DepthBin is the heat-map bin of a needle depth in percent: "0", "10", ..., "90" (the lower edge of a
// ten-point bin; 100 falls in "90").
func DepthBin(depth float64) string {
	d := min(90, max(0, int(depth/10)*10))
	return strconv.Itoa(d)
}

// Items implements eval.Benchmark. Generated items come index-major (sample 0 of every task and length first), so
// that --limit takes a balanced subset; each task and length is generated whole, in RULER's order.
func (b *Bench) Items(ctx context.Context, tok llm.Tokenizer) ([]eval.Item, error) {
	pf, err := b.prepared()
	if err != nil {
		return nil, err
	}
	if len(pf) > 0 {
		return b.preparedItems(ctx, pf)
	}
	src, err := b.loadSources()
	if err != nil {
		return nil, err
	}
	type job struct {
		t      Task
		maxSeq int
	}
	var jobs []job
	for _, t := range b.tasks {
		for _, l := range b.lengths {
			jobs = append(jobs, job{t, l})
		}
	}
	res := make([][]Sample, len(jobs))
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, j := range jobs {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			s, err := Generate(Spec{Task: j.t, MaxSeq: j.maxSeq, N: b.n, Seed: b.seed, Template: b.template,
				RemoveNewlineTab: b.removeNewlineTab, Tok: tok, Src: src})
			res[i] = s
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var items []eval.Item
	for n := range b.n {
		for i, j := range jobs {
			s := res[i][n]
			items = append(items, b.item(j.t, j.maxSeq, n, s.Row, s.Depth))
		}
	}
	return items, nil
}

func (b *Bench) loadSources() (*Sources, error) {
	essay, squad, hotpot, words := b.sourcePaths()
	src := &Sources{}
	if b.needs("essay") {
		raw, err := os.ReadFile(essay)
		if err != nil {
			return nil, fmt.Errorf("ruler: the essay haystack: %w (make it with RULER's scripts/data/synthetic/json/download_paulgraham_essay.py and pass its directory with --data ruler=DIR, or copy it to %s)", err, datasets.Path("", LocalDataset, EssayFile))
		}
		var doc struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil || doc.Text == nil {
			return nil, fmt.Errorf("ruler: %s: want a JSON object with a string field \"text\"", essay)
		}
		src.Essay = *doc.Text
	}
	var err error
	if b.needs("squad") {
		if src.Squad, err = LoadSquad(squad); err != nil {
			return nil, fmt.Errorf("ruler: SQuAD: %w (see `snapeval data pull ruler`)", err)
		}
	}
	if b.needs("hotpotqa") {
		if src.Hotpot, err = LoadHotpot(hotpot); err != nil {
			return nil, fmt.Errorf("ruler: HotpotQA: %w (see `snapeval data pull ruler`)", err)
		}
	}
	if raw, err := os.ReadFile(words); err == nil {
		if src.EnglishWords, err = parseEnglishWords(raw); err != nil {
			return nil, fmt.Errorf("ruler: %s: %w", words, err)
		}
	}
	return src, nil
}

// parseEnglishWords is list(json.load(f).values()) of english_words.json: the values of a JSON object, in the
// file's order.
func parseEnglishWords(raw []byte) ([]string, error) {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("want a JSON object of words")
	}
	var out []string
	seen := map[string]int{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v string
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("key %v: want a string value: %w", kt, err)
		}
		k := kt.(string)
		if i, dup := seen[k]; dup { // a repeated key keeps its first position and takes the last value
			out[i] = v
			continue
		}
		seen[k] = len(out)
		out = append(out, v)
	}
	return out, nil
}

// ParsePrepared decodes one line of prepare.py's JSONL for task t.
func ParsePrepared(raw []byte) (Row, error) {
	var r struct {
		Index        *int      `json:"index"`
		Input        *string   `json:"input"`
		Outputs      []*string `json:"outputs"`
		Length       int       `json:"length"`
		LengthWithMT int       `json:"length_w_model_temp"`
		AnswerPrefix string    `json:"answer_prefix"`
		TokenPos     *int      `json:"token_position_answer"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return Row{}, fmt.Errorf("ruler row: %w", err)
	}
	switch {
	case r.Index == nil:
		return Row{}, fmt.Errorf("ruler row: missing field index")
	case r.Input == nil:
		return Row{}, fmt.Errorf("ruler row: missing field input")
	case r.Outputs == nil:
		return Row{}, fmt.Errorf("ruler row: field outputs: want a list of strings")
	}
	row := Row{Index: *r.Index, Input: *r.Input, Length: r.Length, LengthWithMT: r.LengthWithMT, AnswerPrefix: r.AnswerPrefix, TokenPositionAnswer: r.TokenPos}
	for i, o := range r.Outputs {
		if o == nil {
			return Row{}, fmt.Errorf("ruler row: field outputs[%d] is null", i)
		}
		row.Outputs = append(row.Outputs, *o)
	}
	return row, nil
}

func (b *Bench) preparedItems(ctx context.Context, pf []preparedFile) ([]eval.Item, error) {
	var items []eval.Item
	for _, f := range pf {
		n := 0
		err := datasets.ReadFile(f.path, "jsonl", func(_ int, raw []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			row, err := ParsePrepared(raw)
			if err != nil {
				return err
			}
			items = append(items, b.rowItem(f.task, f.maxSeq, n, row))
			n++
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return items, nil
}

func itemOf(it eval.Item) (*Item, error) {
	d, ok := it.Data.(*Item)
	if !ok || d == nil {
		return nil, fmt.Errorf("ruler: item %s has data %T", it.ID, it.Data)
	}
	return d, nil
}

// Request implements eval.Benchmark: the input with its answer prefix as one raw prompt (RULER's call_api sends
// input + answer_prefix to the server's completion endpoint), greedy, tokens_to_generate new tokens.
func (b *Bench) Request(it eval.Item) (llm.Request, error) {
	d, err := itemOf(it)
	if err != nil {
		return llm.Request{}, err
	}
	return llm.Request{Prompt: d.Row.Input + d.Row.AnswerPrefix,
		Sampling: llm.Sampling{Temperature: 0, TopP: 1, MaxNew: d.Task.TokensToGenerate()}}, nil
}

// Grade implements eval.Benchmark.
func (b *Bench) Grade(_ context.Context, it eval.Item, output string) (eval.Grade, error) {
	d, err := itemOf(it)
	if err != nil {
		return eval.Grade{}, err
	}
	return Score(d.Task.Family, output, d.Row.Outputs), nil
}

// ParseRow implements eval.RowParser for `snapeval grade`: a RULER row {index, task, outputs, ...} (task may be
// given with --opt task=NAME instead; other fields of prepare.py's rows are read when present). The item id is
// task/max_seq_length/index, with max_seq_length from an optional field of that name (0 when absent).
func (b *Bench) ParseRow(raw []byte) (eval.Item, error) {
	var r struct {
		Task   *string `json:"task"`
		MaxSeq int     `json:"max_seq_length"`
		Index  *int    `json:"index"`
		Input  string  `json:"input"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return eval.Item{}, fmt.Errorf("ruler row: %w", err)
	}
	name := b.task
	if r.Task != nil {
		name = *r.Task
	}
	if name == "" {
		return eval.Item{}, errors.New("ruler row: no field task (or pass --opt task=NAME)")
	}
	t, ok := TaskByName(name)
	if !ok {
		return eval.Item{}, fmt.Errorf("ruler row: field task %q is not a RULER task (%s)", name, taskNames())
	}
	if r.MaxSeq < 0 {
		return eval.Item{}, errors.New("ruler row: field max_seq_length is negative")
	}
	var withInput map[string]json.RawMessage
	json.Unmarshal(raw, &withInput)
	if _, ok := withInput["input"]; !ok {
		withInput["input"] = json.RawMessage(`""`)
		raw, _ = json.Marshal(withInput)
	}
	row, err := ParsePrepared(raw)
	if err != nil {
		return eval.Item{}, err
	}
	if row.Index < 0 {
		return eval.Item{}, errors.New("ruler row: field index is negative")
	}
	return b.rowItem(t, r.MaxSeq, row.Index, row), nil
}

// rowItem builds the item of a prepared row (needle depth from where the first answer sits in the input).
func (b *Bench) rowItem(t Task, maxSeq, n int, row Row) eval.Item {
	depth := -1.0
	if t.Family == FamilyNIAH && len(row.Outputs) > 0 && len(row.Input) > 0 {
		if at := strings.Index(row.Input, row.Outputs[0]); at >= 0 {
			depth = 100 * float64(at) / float64(len(row.Input))
		}
	}
	return b.item(t, maxSeq, n, row, depth)
}

// Gold implements eval.GoldAnswerer: the expected values, space-separated.
func (b *Bench) Gold(it eval.Item) (string, bool) {
	d, err := itemOf(it)
	if err != nil || len(d.Row.Outputs) == 0 {
		return "", false
	}
	return strings.Join(d.Row.Outputs, " "), true
}

var (
	_ eval.FileBacked   = (*Bench)(nil)
	_ eval.RowParser    = (*Bench)(nil)
	_ eval.GoldAnswerer = (*Bench)(nil)
	_ eval.TokenSized   = (*Bench)(nil)
)

// SizesPromptsInTokens implements eval.TokenSized: haystacks are sized to each length in the model's tokens, and
// RULER's generators cannot run on an estimate.
func (b *Bench) SizesPromptsInTokens() (sized, estimate bool) { return true, false }
