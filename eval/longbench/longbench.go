// Package longbench implements LongBench-v2 (THUDM/LongBench-v2, 503 multiple-choice long-context questions)
// with its official protocol: the official prompt templates (prompts/, byte-exact), middle truncation of the
// rendered prompt to max_len model tokens, one user message, temperature 0.1, 128 new tokens, the official
// answer extraction, and accuracy by difficulty and length.
//
// Mode "0shot" is the default. Chain-of-thought ("0shot_cot") asks twice per sample, as the official pred.py does:
// 1024 tokens of reasoning, then the 0shot_cot_ans prompt quoting that reasoning with 128 tokens (eval.Chained;
// the record keeps the reasoning in FirstOutput and grades the answer pass).
// Mode "0shot_no_context" (the question alone) is the official no-context baseline.
package longbench

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/snapeval/snapeval/datasets"
	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/internal/pytext"
	"github.com/snapeval/snapeval/llm"
)

// Name is the benchmark's registry name.
const Name = "longbench-v2"

// DatasetFile is the locked file read by default.
const DatasetFile = "data.json"

// DefaultMaxLen is the official truncation length for every open model (tokens of the rendered prompt).
const DefaultMaxLen = 120000

// Modes.
const (
	Mode0Shot          = "0shot"
	Mode0ShotCoT       = "0shot_cot"
	Mode0ShotNoContext = "0shot_no_context"
)

//go:embed prompts/*.txt
var promptFS embed.FS

// Template returns an official prompt template by name (0shot, 0shot_cot, 0shot_cot_ans, 0shot_no_context).
func Template(name string) (string, error) {
	b, err := promptFS.ReadFile("prompts/" + name + ".txt")
	if err != nil {
		return "", fmt.Errorf("longbench: no template %q", name)
	}
	return string(b), nil
}

// Row is one upstream LongBench-v2 row.
type Row struct {
	ID         string `json:"_id"`
	Domain     string `json:"domain"`
	SubDomain  string `json:"sub_domain"`
	Difficulty string `json:"difficulty"`
	Length     string `json:"length"`
	Question   string `json:"question"`
	ChoiceA    string `json:"choice_A"`
	ChoiceB    string `json:"choice_B"`
	ChoiceC    string `json:"choice_C"`
	ChoiceD    string `json:"choice_D"`
	Answer     string `json:"answer"`
	Context    string `json:"context"`
}

// ParseRow decodes and checks one upstream row.
func ParseRow(raw []byte) (Row, error) {
	var r Row
	if err := json.Unmarshal(raw, &r); err != nil {
		return Row{}, fmt.Errorf("longbench row: %w", err)
	}
	if r.ID == "" {
		return Row{}, fmt.Errorf("longbench row: missing _id")
	}
	switch r.Answer {
	case "A", "B", "C", "D":
	default:
		return Row{}, fmt.Errorf("longbench row %s: field answer %q is not A-D", r.ID, r.Answer)
	}
	switch r.Difficulty {
	case "easy", "hard":
	default:
		return Row{}, fmt.Errorf("longbench row %s: field difficulty %q is not easy|hard", r.ID, r.Difficulty)
	}
	switch r.Length {
	case "short", "medium", "long":
	default:
		return Row{}, fmt.Errorf("longbench row %s: field length %q is not short|medium|long", r.ID, r.Length)
	}
	return r, nil
}

// Render fills a template the official way: plain substring replacement of $DOC$, $Q$, $C_A$..$C_D$ in that
// order (chained like the official str.replace calls), each value stripped of surrounding whitespace first.
func Render(template string, r Row) string {
	s := strings.ReplaceAll(template, "$DOC$", pytext.Strip(r.Context))
	s = strings.ReplaceAll(s, "$Q$", pytext.Strip(r.Question))
	s = strings.ReplaceAll(s, "$C_A$", pytext.Strip(r.ChoiceA))
	s = strings.ReplaceAll(s, "$C_B$", pytext.Strip(r.ChoiceB))
	s = strings.ReplaceAll(s, "$C_C$", pytext.Strip(r.ChoiceC))
	return strings.ReplaceAll(s, "$C_D$", pytext.Strip(r.ChoiceD))
}

// RenderCoTAnswer renders the second chain-of-thought pass (0shot_cot_ans) from the first pass's output.
func RenderCoTAnswer(r Row, cot string) string {
	t, _ := Template("0shot_cot_ans")
	return strings.ReplaceAll(Render(t, r), "$COT$", cot)
}

// Truncate is the official middle truncation, pred.py's query_llm for open models:
//
//	input_ids = tokenizer.encode(prompt)
//	if len(input_ids) > max_len:
//	    input_ids = input_ids[:max_len//2] + input_ids[-max_len//2:]
//	    prompt = tokenizer.decode(input_ids, skip_special_tokens=True)
//
// With an llm.SpecialTokenizer, encode and decode are EncodeWithSpecial and DecodeSkipSpecialClean, as Hugging
// Face transformers' defaults are: the tokens the post-processor adds (Llama-3's <|begin_of_text|>) are counted and
// sit at the head of the kept ids, and the decode drops every special token (that one, and special-token text of the
// document) and applies the tokenizer's clean_up_tokenization_spaces. A plain llm.Tokenizer falls back on Encode and
// Decode. In Python -max_len//2 is (-max_len)//2, which rounds toward minus infinity: of max_len 1001 the head keeps
// 500 ids and the tail 501. A prompt of max_len ids or fewer is returned as it is, never decoded. Truncate returns
// the prompt and its token counts before and after.
func Truncate(tok llm.Tokenizer, prompt string, maxLen int) (string, int, int) {
	encode, decode := tok.Encode, tok.Decode
	if st, ok := tok.(llm.SpecialTokenizer); ok {
		encode, decode = st.EncodeWithSpecial, st.DecodeSkipSpecialClean
	}
	ids := encode(prompt)
	n := len(ids)
	if n <= maxLen {
		return prompt, n, n
	}
	head := ids[:pyIndex(floorDiv(maxLen, 2), n)]
	tail := ids[pyIndex(floorDiv(-maxLen, 2), n):]
	kept := make([]int, 0, len(head)+len(tail))
	kept = append(append(kept, head...), tail...)
	return decode(kept), n, len(kept)
}

// floorDiv is Python's a // b (rounded toward minus infinity) for b > 0.
func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// pyIndex is where Python's slice bound i falls in a list of n: counted from the end when negative, clamped to
// [0, n].
func pyIndex(i, n int) int {
	if i < 0 {
		i += n
	}
	return min(max(i, 0), n)
}

var (
	answerParen = regexp.MustCompile(`The correct answer is \(([A-D])\)`)
	answerBare  = regexp.MustCompile(`The correct answer is ([A-D])`)
)

// Extract is the official answer extraction: delete every '*', then the first "The correct answer is (X)",
// else the first "The correct answer is X"; "" when neither matches. Case-sensitive.
func Extract(output string) string {
	s := strings.ReplaceAll(output, "*", "")
	if m := answerParen.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	if m := answerBare.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

// Verdicts.
const (
	VerdictCorrect  = "correct"
	VerdictWrong    = "wrong_answer"
	VerdictNoAnswer = "no_answer"
)

// GradeOutput grades one output against the gold letter.
func GradeOutput(output, gold string) eval.Grade {
	x := Extract(output)
	switch {
	case x == "":
		return eval.Grade{Verdict: VerdictNoAnswer, Detail: "no \"The correct answer is\" statement"}
	case x == gold:
		return eval.Grade{Extracted: x, Correct: true, Score: 1, Verdict: VerdictCorrect}
	default:
		return eval.Grade{Extracted: x, Verdict: VerdictWrong, Detail: "gold " + gold}
	}
}

// Problem is an Item's Data: the row (context dropped once rendered) and the final prompt.
type Problem struct {
	Row
	// Prompt is the rendered (and possibly truncated) user message.
	Prompt string
	// Tokens is the prompt's token count before truncation, as pred.py counts it (tokenizer.encode: the
	// post-processor's special tokens included); 0 when no tokenizer was given.
	Tokens int
	// Kept is the number of token ids the truncation kept (Tokens when it did not cut).
	Kept int
	// Truncated is true when middle truncation cut the prompt.
	Truncated bool
}

// Truncation implements eval.Truncated: how the prompt was fitted to max_len (ok is false without a tokenizer).
func (p *Problem) Truncation() (eval.Truncation, bool) {
	return eval.Truncation{Truncated: p.Truncated, TokensBefore: p.Tokens, TokensAfter: p.Kept}, p.Tokens > 0
}

// Bench is the LongBench-v2 benchmark.
type Bench struct {
	mode   string
	maxLen int
	files  []string
	dir    string
	// tok is the tokenizer Items was given (nil: none); FollowUp truncates the answer pass with it, as pred.py
	// truncates every query.
	tok llm.Tokenizer
}

// Options: "mode" (0shot | 0shot_cot | 0shot_no_context) and "max_len" (tokens).
func New(opts eval.BenchOptions) (*Bench, error) {
	b := &Bench{mode: Mode0Shot, maxLen: DefaultMaxLen, files: opts.Files, dir: opts.DataDir}
	for k, v := range opts.Options {
		switch k {
		case "mode":
			b.mode = v
		case "max_len":
			n, err := strconv.Atoi(v)
			if err != nil || n < 2 {
				return nil, fmt.Errorf("longbench: option max_len=%q: want an integer >= 2", v)
			}
			b.maxLen = n
		default:
			return nil, fmt.Errorf("longbench: unknown option %q (known: mode, max_len)", k)
		}
	}
	switch b.mode {
	case Mode0Shot, Mode0ShotNoContext, Mode0ShotCoT:
	default:
		return nil, fmt.Errorf("longbench: unknown mode %q (known: 0shot, 0shot_cot, 0shot_no_context)", b.mode)
	}
	return b, nil
}

func init() {
	eval.RegisterBenchmark(Name, func(o eval.BenchOptions) (eval.Benchmark, error) { return New(o) })
}

// Name implements eval.Benchmark.
func (b *Bench) Name() string { return Name }

// Defaults implements eval.Benchmark: temperature 0.1, 128 new tokens (the CoT reasoning pass: 1024), one sample.
func (b *Bench) Defaults() eval.Defaults {
	if b.mode == Mode0ShotCoT {
		return eval.Defaults{Sampling: llm.Sampling{Temperature: 0.1, MaxNew: CoTMaxNew}, Samples: 1}
	}
	return eval.Defaults{Sampling: llm.Sampling{Temperature: 0.1, MaxNew: 128}, Samples: 1}
}

// CoTMaxNew is the official budget of the chain-of-thought reasoning pass; the answer pass gets 128.
const CoTMaxNew = 1024

// FollowUp implements eval.Chained: in 0shot_cot mode, the answer pass (0shot_cot_ans, 128 new tokens) quoting
// the stripped reasoning, exactly as the official pred.py chains them (truncated like the first pass when Items
// was given a tokenizer, though at the official max_len it never is).
func (b *Bench) FollowUp(item eval.Item, first string) (llm.Request, bool, error) {
	if b.mode != Mode0ShotCoT {
		return llm.Request{}, false, nil
	}
	p, ok := item.Data.(*Problem)
	if !ok {
		return llm.Request{}, false, fmt.Errorf("longbench: item %s has data %T", item.ID, item.Data)
	}
	prompt := RenderCoTAnswer(p.Row, pytext.Strip(first))
	if b.tok != nil {
		prompt, _, _ = Truncate(b.tok, prompt, b.maxLen)
	}
	return llm.Request{
		Messages: []llm.Message{{Role: "user", Content: prompt}},
		Sampling: llm.Sampling{Temperature: 0.1, MaxNew: 128},
	}, true, nil
}

// Files returns the files Items reads: BenchOptions.Files, else the locked data.json in the cache.
func (b *Bench) Files() []string {
	if len(b.files) > 0 {
		return b.files
	}
	return []string{datasets.Path(b.dir, Name, DatasetFile)}
}

// Items implements eval.Benchmark. The whole file is streamed; each context is rendered into its prompt,
// truncated with tok when tok is non-nil (see Truncate), and dropped.
func (b *Bench) Items(ctx context.Context, tok llm.Tokenizer) ([]eval.Item, error) {
	b.tok = tok
	return datasets.ReadItems(ctx, b.Files(), func(raw []byte) (eval.Item, error) { return b.item(raw, tok) }, eval.ItemID)
}

// ParseRow implements eval.RowParser (no tokenizer: the prompt is not truncated).
func (b *Bench) ParseRow(raw []byte) (eval.Item, error) { return b.item(raw, nil) }

func (b *Bench) item(raw []byte, tok llm.Tokenizer) (eval.Item, error) {
	r, err := ParseRow(raw)
	if err != nil {
		return eval.Item{}, err
	}
	t, err := Template(b.mode)
	if err != nil {
		return eval.Item{}, err
	}
	p := &Problem{Row: r, Prompt: Render(t, r)}
	p.Context = ""
	if tok != nil {
		p.Prompt, p.Tokens, p.Kept = Truncate(tok, p.Prompt, b.maxLen)
		p.Truncated = p.Tokens > b.maxLen
	}
	return eval.Item{
		ID:   r.ID,
		Tags: map[string]string{"difficulty": r.Difficulty, "length": r.Length, "domain": r.Domain},
		Data: p,
	}, nil
}

// Request implements eval.Benchmark: one user message, no system prompt.
func (b *Bench) Request(item eval.Item) (llm.Request, error) {
	p, ok := item.Data.(*Problem)
	if !ok {
		return llm.Request{}, fmt.Errorf("longbench: item %s has data %T", item.ID, item.Data)
	}
	return llm.Request{
		Messages: []llm.Message{{Role: "user", Content: p.Prompt}},
		Sampling: b.Defaults().Sampling,
	}, nil
}

// Grade implements eval.Benchmark.
func (b *Bench) Grade(_ context.Context, item eval.Item, output string) (eval.Grade, error) {
	p, ok := item.Data.(*Problem)
	if !ok {
		return eval.Grade{}, fmt.Errorf("longbench: item %s has data %T", item.ID, item.Data)
	}
	return GradeOutput(output, p.Answer), nil
}

var (
	_ eval.FileBacked   = (*Bench)(nil)
	_ eval.GoldAnswerer = (*Bench)(nil)
	_ eval.Chained      = (*Bench)(nil)
	_ eval.Truncated    = (*Problem)(nil)
	_ eval.TokenSized   = (*Bench)(nil)
)

// Gold implements eval.GoldAnswerer: the official answer statement with the gold letter.
func (b *Bench) Gold(item eval.Item) (string, bool) {
	p, ok := item.Data.(*Problem)
	if !ok || p.Answer == "" {
		return "", false
	}
	return "The correct answer is (" + p.Answer + ")", true
}

// SizesPromptsInTokens implements eval.TokenSized: prompts are truncated in the middle to max_len model tokens
// (without a tokenizer they are not truncated at all).
func (b *Bench) SizesPromptsInTokens() (sized, estimate bool) { return true, true }
