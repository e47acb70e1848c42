package benchtest

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/eval/aime"
	"github.com/snapeval/snapeval/eval/longbench"
	"github.com/snapeval/snapeval/eval/synthetic"
	"github.com/snapeval/snapeval/internal/contract"
	"github.com/snapeval/snapeval/llm"
)

// faulty wraps a real benchmark; each non-nil hook replaces one method (a planted fault).
type faulty struct {
	inner    eval.Benchmark
	name     func() string
	items    func(ctx context.Context, tok llm.Tokenizer) ([]eval.Item, error)
	request  func(eval.Item) (llm.Request, error)
	grade    func(ctx context.Context, it eval.Item, out string) (eval.Grade, error)
	defaults func() eval.Defaults
	gold     func(eval.Item) (string, bool)
	parseRow func([]byte) (eval.Item, error)
	followUp func(it eval.Item, first string) (llm.Request, bool, error)
	files    func() []string
}

func (f *faulty) Name() string {
	if f.name != nil {
		return f.name()
	}
	return f.inner.Name()
}

func (f *faulty) Items(ctx context.Context, tok llm.Tokenizer) ([]eval.Item, error) {
	if f.items != nil {
		return f.items(ctx, tok)
	}
	return f.inner.Items(ctx, tok)
}

func (f *faulty) Request(it eval.Item) (llm.Request, error) {
	if f.request != nil {
		return f.request(it)
	}
	return f.inner.Request(it)
}

func (f *faulty) Grade(ctx context.Context, it eval.Item, out string) (eval.Grade, error) {
	if f.grade != nil {
		return f.grade(ctx, it, out)
	}
	return f.inner.Grade(ctx, it, out)
}

func (f *faulty) Defaults() eval.Defaults {
	if f.defaults != nil {
		return f.defaults()
	}
	return f.inner.Defaults()
}

func (f *faulty) Gold(it eval.Item) (string, bool) {
	if f.gold != nil {
		return f.gold(it)
	}
	return f.inner.(eval.GoldAnswerer).Gold(it)
}

// rowFaulty adds ParseRow and Files (the fixtures' row parsers are all file-backed), chainFaulty FollowUp too, so that a wrapper keeps the optional interfaces of
// the benchmark it wraps.
type rowFaulty struct{ *faulty }

func (f rowFaulty) ParseRow(raw []byte) (eval.Item, error) {
	if f.parseRow != nil {
		return f.parseRow(raw)
	}
	return f.inner.(eval.RowParser).ParseRow(raw)
}

func (f rowFaulty) Files() []string {
	if f.files != nil {
		return f.files()
	}
	return f.inner.(eval.FileBacked).Files()
}

type chainFaulty struct{ rowFaulty }

func (f chainFaulty) FollowUp(it eval.Item, first string) (llm.Request, bool, error) {
	if f.followUp != nil {
		return f.followUp(it, first)
	}
	return f.inner.(eval.Chained).FollowUp(it, first)
}

// fixture is a real benchmark on its fixture, for planting faults in.
type fixture struct {
	name    string
	open    func() (eval.Benchmark, error)
	rows    []string
	chained bool
}

var (
	rulerFixture = fixture{name: synthetic.Name, open: func() (eval.Benchmark, error) {
		return synthetic.New(eval.BenchOptions{Seed: 7, Options: map[string]string{"lengths": "256", "n": "1", "tasks": "niah_single,niah_multivalue,cwe"}})
	}}
	aimeFixture = fixture{name: aime.Name, open: func() (eval.Benchmark, error) {
		return aime.New(eval.BenchOptions{Files: []string{"../aime/testdata/excerpt.jsonl"}})
	}, rows: []string{"../aime/testdata/excerpt.jsonl"}}
	cotFixture = fixture{name: longbench.Name, open: func() (eval.Benchmark, error) {
		return longbench.New(eval.BenchOptions{Files: []string{"../longbench/testdata/sample.jsonl"}, Options: map[string]string{"mode": "0shot_cot"}})
	}, rows: []string{"../longbench/testdata/sample.jsonl"}, chained: true}
)

// caseOf is the Case of fx with each opened benchmark passed through plant (nil: none).
func caseOf(t *testing.T, fx fixture, plant func(*faulty)) Case {
	c := Case{Name: fx.name, Chained: fx.chained}
	if len(fx.rows) > 0 {
		c.Rows = ReadRows(t, fx.rows...)
	}
	c.Open = func() (eval.Benchmark, error) {
		b, err := fx.open()
		if err != nil || plant == nil {
			return b, err
		}
		f := &faulty{inner: b}
		plant(f)
		_, rp := b.(eval.RowParser)
		_, ch := b.(eval.Chained)
		switch {
		case ch:
			return chainFaulty{rowFaulty{f}}, nil
		case rp:
			return rowFaulty{f}, nil
		}
		return f, nil
	}
	return c
}

// TestFixturesPass shows the fault fixtures pass under a Recorder when no fault is planted, also when wrapped.
func TestFixturesPass(t *testing.T) {
	for _, fx := range []fixture{rulerFixture, aimeFixture, cotFixture} {
		for _, plant := range []func(*faulty){nil, func(*faulty) {}} {
			rec := contract.Capture(func(ct contract.T) { run(ct, caseOf(t, fx, plant)) })
			if rec.Failed() {
				t.Errorf("%s (wrapped %v) fails with no fault planted:\n%s", fx.name, plant != nil, rec.Report())
			}
		}
	}
}

// TestPlantedFaults plants one fault at a time in a real benchmark and checks that exactly the checks aimed at it
// fail.
func TestPlantedFaults(t *testing.T) {
	var calls atomic.Int64
	tests := []struct {
		name  string
		fx    fixture
		plant func(f *faulty)
		edit  func(*Case)
		want  []string
	}{
		{"name differs from the registry", rulerFixture, func(f *faulty) { f.name = func() string { return "rulers" } }, nil, []string{"defaults"}},
		{"no samples", rulerFixture, func(f *faulty) {
			f.defaults = func() eval.Defaults { d := f.inner.Defaults(); d.Samples = 0; return d }
		}, nil, []string{"defaults"}},
		{"no token budget", aimeFixture, func(f *faulty) {
			f.defaults = func() eval.Defaults { d := f.inner.Defaults(); d.Sampling.MaxNew = 0; return d }
		}, nil, []string{"defaults"}},
		{"items change between calls", rulerFixture, func(f *faulty) {
			f.items = func(ctx context.Context, tok llm.Tokenizer) ([]eval.Item, error) {
				its, err := f.inner.Items(ctx, tok)
				if len(its) > 1 && calls.Add(1)%2 == 0 {
					its[0], its[1] = its[1], its[0]
				}
				return its, err
			}
		}, nil, []string{"items"}},
		{"duplicate ids", rulerFixture, func(f *faulty) {
			f.items = func(ctx context.Context, tok llm.Tokenizer) ([]eval.Item, error) {
				its, err := f.inner.Items(ctx, tok)
				its[1].ID = its[0].ID
				return its, err
			}
		}, nil, []string{"items"}},
		{"empty id", rulerFixture, func(f *faulty) {
			f.items = func(ctx context.Context, tok llm.Tokenizer) ([]eval.Item, error) {
				its, err := f.inner.Items(ctx, tok)
				its[2].ID = ""
				return its, err
			}
		}, nil, []string{"items"}},
		{"request with messages and a prompt", rulerFixture, func(f *faulty) {
			f.request = func(it eval.Item) (llm.Request, error) {
				r, err := f.inner.Request(it)
				r.Messages = []llm.Message{{Role: "user", Content: r.Prompt}}
				return r, err
			}
		}, nil, []string{"request"}},
		{"request sets the policy", aimeFixture, func(f *faulty) {
			f.request = func(it eval.Item) (llm.Request, error) {
				r, err := f.inner.Request(it)
				r.Policy = "full"
				return r, err
			}
		}, nil, []string{"request"}},
		{"request with an unknown role", aimeFixture, func(f *faulty) {
			f.request = func(it eval.Item) (llm.Request, error) {
				r, err := f.inner.Request(it)
				if err == nil {
					r.Messages[0].Role = "human"
				}
				return r, err
			}
		}, nil, []string{"request"}},
		{"request changes between calls", rulerFixture, func(f *faulty) {
			f.request = func(it eval.Item) (llm.Request, error) {
				r, err := f.inner.Request(it)
				r.Prompt += strconv.FormatInt(calls.Add(1), 10)
				return r, err
			}
		}, nil, []string{"request"}},
		{"foreign item accepted", rulerFixture, func(f *faulty) {
			f.request = func(it eval.Item) (llm.Request, error) {
				if _, err := f.inner.Request(it); err != nil {
					return llm.Request{Prompt: it.ID}, nil
				}
				return f.inner.Request(it)
			}
		}, nil, []string{"foreign_item"}},
		{"grader panics on a foreign item", aimeFixture, func(f *faulty) {
			f.grade = func(ctx context.Context, it eval.Item, out string) (eval.Grade, error) {
				_ = it.Data.(*aime.Problem)
				return f.inner.Grade(ctx, it, out)
			}
		}, nil, []string{"foreign_item"}},
		{"gold grades wrong", rulerFixture, func(f *faulty) {
			f.gold = func(it eval.Item) (string, bool) {
				_, ok := f.inner.(eval.GoldAnswerer).Gold(it)
				return " 0", ok
			}
		}, nil, []string{"gold"}},
		{"no gold", aimeFixture, func(f *faulty) {
			f.gold = func(eval.Item) (string, bool) { return "", false }
		}, nil, []string{"gold"}},
		{"grader accepts garbage", rulerFixture, func(f *faulty) {
			f.grade = func(ctx context.Context, it eval.Item, out string) (eval.Grade, error) {
				g, err := f.inner.Grade(ctx, it, out)
				if err == nil && out != "" {
					g = eval.Grade{Correct: true, Score: 1}
				}
				return g, err
			}
		}, nil, []string{"garbage"}},
		{"grader fails on an empty output", aimeFixture, func(f *faulty) {
			f.grade = func(ctx context.Context, it eval.Item, out string) (eval.Grade, error) {
				if out == "" {
					return eval.Grade{}, errors.New("empty output")
				}
				return f.inner.Grade(ctx, it, out)
			}
		}, nil, []string{"garbage"}},
		{"grader gives partial credit for garbage", rulerFixture, func(f *faulty) {
			f.grade = func(ctx context.Context, it eval.Item, out string) (eval.Grade, error) {
				g, err := f.inner.Grade(ctx, it, out)
				if !g.Correct {
					g.Score = 0.5
				}
				return g, err
			}
		}, nil, []string{"garbage"}},
		{"grader accepts any boxed integer", aimeFixture, func(f *faulty) {
			f.grade = func(ctx context.Context, it eval.Item, out string) (eval.Grade, error) {
				g, err := f.inner.Grade(ctx, it, out)
				if x, ok := aime.LastBoxed(out); ok && err == nil {
					if _, err := strconv.Atoi(x); err == nil {
						g = eval.Grade{Extracted: x, Correct: true, Score: 1}
					}
				}
				return g, err
			}
		}, nil, []string{"garbage"}},
		{"row parser drops tags", aimeFixture, func(f *faulty) {
			f.parseRow = func(raw []byte) (eval.Item, error) {
				it, err := f.inner.(eval.RowParser).ParseRow(raw)
				it.Tags = nil
				return it, err
			}
		}, nil, []string{"row_parser"}},
		{"row parser accepts null", aimeFixture, func(f *faulty) {
			f.parseRow = func(raw []byte) (eval.Item, error) {
				if string(raw) == "null" {
					return eval.Item{ID: "null"}, nil
				}
				return f.inner.(eval.RowParser).ParseRow(raw)
			}
		}, nil, []string{"row_parser"}},
		{"no files named", aimeFixture, func(f *faulty) { f.files = func() []string { return nil } }, nil, []string{"files"}},
		{"a file that is not there", cotFixture, func(f *faulty) {
			f.files = func() []string { return []string{"../longbench/testdata/missing.jsonl"} }
		}, nil, []string{"files"}},
		{"row parser without fixture rows", aimeFixture, nil, func(c *Case) { c.Rows = nil }, []string{"row_parser"}},
		{"follow-up ignores the first output", cotFixture, func(f *faulty) {
			f.followUp = func(it eval.Item, first string) (llm.Request, bool, error) {
				return f.inner.(eval.Chained).FollowUp(it, "")
			}
		}, nil, []string{"chained"}},
		{"chaining claimed but absent", aimeFixture, nil, func(c *Case) { c.Chained = true }, []string{"chained"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := caseOf(t, tt.fx, tt.plant)
			if tt.edit != nil {
				tt.edit(&c)
			}
			rec := contract.Capture(func(ct contract.T) { run(ct, c) })
			if got := rec.FailedTests(); !slices.Equal(got, tt.want) {
				t.Errorf("failed checks %q, want %q\n%s", got, tt.want, rec.Report())
			}
		})
	}
}

// TestNoGoldAnswerer checks that a benchmark without eval.GoldAnswerer fails the suite.
func TestNoGoldAnswerer(t *testing.T) {
	c := caseOf(t, rulerFixture, nil)
	open := c.Open
	c.Open = func() (eval.Benchmark, error) {
		b, err := open()
		return struct{ eval.Benchmark }{b}, err
	}
	rec := contract.Capture(func(ct contract.T) { run(ct, c) })
	if got := rec.FailedTests(); !slices.Equal(got, []string{"gold"}) {
		t.Errorf("failed checks %q, want [gold]\n%s", got, rec.Report())
	}
}
