// Package livecodebench implements LiveCodeBench code generation (livecodebench/code_generation_lite): the raw
// JSONL loader with release tags and contest-date windows, the official prompts, the official code extraction,
// and grading by running every public then private test in the sandbox (package sandbox).
//
// Options (BenchOptions.Options):
//
//	release     release_vN | release_latest | vN | vI_vJ (default release_v5; with explicit Files and no
//	            release, every given file is used)
//	window      "r1": the DeepSeek-R1 window, 2024-08-01 <= contest_date < 2025-02-01 (279 problems of release_v5)
//	start_date  YYYY-MM-DD, contest_date >= start (inclusive, as the official loader)
//	end_date    YYYY-MM-DD, contest_date <= end at midnight (inclusive, as the official loader)
//	prompt      chat (default; system + user) | user (one user turn with the system text) | r1 (R1 template)
//	timeout     seconds per test (default 6)
//	parallel    programs graded at once (default: number of CPUs)
//
// Defaults follow the DeepSeek-R1 protocol: temperature 0.6, top-p 0.95, 32768 new tokens, pass@1 averaged
// over samples (the R1 report drew 4 to 64 samples per problem; Defaults.Samples is 1, set --samples).
//
// Data: BenchOptions.Files (raw test*.jsonl or JSON arrays of rows), BenchOptions.DataDir holding the raw
// files, or by default the locked dataset in the snapeval cache (`snapeval data pull livecodebench`).
package livecodebench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/llm"
	"github.com/snapeval/snapeval/sandbox"
)

// Name is the benchmark name.
const Name = "livecodebench"

// DefaultRelease is the release loaded when none is given.
const DefaultRelease = "release_v5"

func init() {
	eval.RegisterBenchmark(Name, func(opts eval.BenchOptions) (eval.Benchmark, error) { return New(opts) })
}

// Bench is the LiveCodeBench benchmark. Close releases its sandbox.
type Bench struct {
	files    []string
	window   Window
	style    string
	limits   sandbox.Limits
	parallel int

	sbOnce sync.Once
	sb     *sandbox.Sandbox
	sbErr  error
	// filesErr is why the data files could not be found (reported by Items).
	filesErr error
}

var (
	_ eval.Benchmark    = (*Bench)(nil)
	_ eval.RowParser    = (*Bench)(nil)
	_ eval.GoldAnswerer = (*Bench)(nil)
)

// New builds the benchmark from its options (see the package doc).
func New(opts eval.BenchOptions) (*Bench, error) {
	o := opts.Options
	known := map[string]bool{"release": true, "window": true, "start_date": true, "end_date": true, "prompt": true,
		"timeout": true, "parallel": true}
	for k := range o {
		if !known[k] {
			return nil, fmt.Errorf("livecodebench: unknown option %q", k)
		}
	}
	b := &Bench{style: o["prompt"]}
	if _, err := Messages(b.style, "", ""); err != nil {
		return nil, err
	}
	release := o["release"]
	switch o["window"] {
	case "":
	case "r1":
		b.window = R1Window
		if release == "" {
			release = "release_v5"
		}
	default:
		return nil, fmt.Errorf("livecodebench: option window=%q (want r1)", o["window"])
	}
	for key, dst := range map[string]*time.Time{"start_date": &b.window.From, "end_date": &b.window.To} {
		if v := o[key]; v != "" {
			t, err := time.Parse("2006-01-02", v)
			if err != nil {
				return nil, fmt.Errorf("livecodebench: option %s=%q: want YYYY-MM-DD", key, v)
			}
			*dst = t
		}
	}
	if v := o["timeout"]; v != "" {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || s <= 0 {
			return nil, fmt.Errorf("livecodebench: option timeout=%q: want seconds > 0", v)
		}
		b.limits.Wall = time.Duration(s * float64(time.Second))
	}
	if v := o["parallel"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("livecodebench: option parallel=%q: want an integer > 0", v)
		}
		b.parallel = n
	}
	if _, err := ReleaseFiles(releaseOrDefault(release)); err != nil {
		return nil, err
	}
	// Missing data files are reported by Items, not here: `snapeval grade` parses rows that carry their own tests
	// and needs no dataset at all.
	b.files, b.filesErr = selectFiles(release, opts.Files, opts.DataDir)
	return b, nil
}

// Files returns the files Items reads.
func (b *Bench) Files() []string { return b.files }

func releaseOrDefault(r string) string {
	if r == "" {
		return DefaultRelease
	}
	return r
}

// Name implements eval.Benchmark.
func (b *Bench) Name() string { return Name }

// Defaults implements eval.Benchmark: the DeepSeek-R1 protocol.
func (b *Bench) Defaults() eval.Defaults {
	return eval.Defaults{Sampling: llm.Sampling{Temperature: 0.6, TopP: 0.95, MaxNew: 32768}, Samples: 1}
}

// Items implements eval.Benchmark.
func (b *Bench) Items(ctx context.Context, tok llm.Tokenizer) ([]eval.Item, error) {
	if b.filesErr != nil {
		return nil, b.filesErr
	}
	probs, err := Load(b.files, b.window)
	if err != nil {
		return nil, err
	}
	items := make([]eval.Item, len(probs))
	for i, p := range probs {
		items[i] = item(p)
	}
	return items, nil
}

func item(p *Problem) eval.Item {
	return eval.Item{ID: p.QuestionID, Tags: map[string]string{"difficulty": p.Difficulty, "platform": p.Platform}, Data: p}
}

// ParseRow implements eval.RowParser: one raw code_generation_lite row.
func (b *Bench) ParseRow(raw []byte) (eval.Item, error) {
	var r Row
	if err := json.Unmarshal(raw, &r); err != nil {
		return eval.Item{}, fmt.Errorf("livecodebench: row: %v", err)
	}
	p, err := r.Decode()
	if err != nil {
		return eval.Item{}, fmt.Errorf("livecodebench: %v", err)
	}
	return item(p), nil
}

func problemOf(it eval.Item) (*Problem, error) {
	p, ok := it.Data.(*Problem)
	if !ok {
		return nil, fmt.Errorf("livecodebench: item %s holds %T, not a LiveCodeBench problem", it.ID, it.Data)
	}
	return p, nil
}

// Request implements eval.Benchmark.
func (b *Bench) Request(it eval.Item) (llm.Request, error) {
	p, err := problemOf(it)
	if err != nil {
		return llm.Request{}, err
	}
	msgs, err := Messages(b.style, p.QuestionContent, p.StarterCode)
	if err != nil {
		return llm.Request{}, err
	}
	return llm.Request{Messages: msgs, Sampling: b.Defaults().Sampling}, nil
}

func (b *Bench) sandbox() (*sandbox.Sandbox, error) {
	b.sbOnce.Do(func() { b.sb, b.sbErr = sandbox.New(sandbox.Config{Limits: b.limits, Parallel: b.parallel}) })
	return b.sb, b.sbErr
}

// Grade implements eval.Benchmark: extract the program, run every test (public first, stop at the first failure).
// Verdicts: pass, wrong_answer, time_limit, runtime_error, compile_error (an empty extraction is compile_error).
func (b *Bench) Grade(ctx context.Context, it eval.Item, output string) (eval.Grade, error) {
	p, err := problemOf(it)
	if err != nil {
		return eval.Grade{}, err
	}
	code := ExtractCode(output)
	sb, err := b.sandbox()
	if err != nil {
		return eval.Grade{}, err
	}
	v, err := sb.Check(ctx, sandbox.Problem{Code: code, Tests: p.Tests, FuncName: p.FuncName})
	if err != nil {
		return eval.Grade{}, err
	}
	g := eval.Grade{Extracted: code, Verdict: v.Verdict, Correct: v.Verdict == sandbox.Pass}
	if g.Correct {
		g.Score = 1
	} else {
		kind := "private"
		if v.FailedTest < p.Public {
			kind = "public"
		}
		g.Detail = fmt.Sprintf("test %d (%s) of %d: %s", v.FailedTest, kind, v.Tests, v.Detail)
	}
	if len(v.Isolation) > 0 {
		g.Detail = strings.TrimSpace(g.Detail + " [isolation: " + strings.Join(v.Isolation, "; ") + "]")
	}
	return g, nil
}

// Close releases the sandbox (its reserved uids and directory).
func (b *Bench) Close() error {
	if b.sb != nil {
		return b.sb.Close()
	}
	return nil
}

var _ eval.FileBacked = (*Bench)(nil)
var _ io.Closer = (*Bench)(nil)
