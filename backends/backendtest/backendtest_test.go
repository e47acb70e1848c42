package backendtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/internal/contract"
	"github.com/snapeval/snapeval/llm"
)

const quotaMarker = "QUOTA-SPENT"

// fakeTarget is a Target over a Fake, each backend passed through wrap (nil: none).
func fakeTarget(wrap func(*Fake) backends.Backend) Target {
	return Target{
		Open: func(context.Context) (backends.Backend, error) {
			f := &Fake{QuotaMarker: quotaMarker}
			if wrap == nil {
				return f, nil
			}
			return wrap(f), nil
		},
		Chat:          true,
		Raw:           true,
		Policies:      []string{"full", "snapstream:budget=64", "streaming:sinks=4,recent=60"},
		Seeded:        true,
		ContextLength: 512,
		Quota:         &llm.Request{Key: "quota", Prompt: "ask " + quotaMarker, Sampling: llm.Sampling{MaxNew: 4}},
	}
}

// TestFake runs the suite on the reference Fake, which keeps the contract.
func TestFake(t *testing.T) {
	Run(t, fakeTarget(nil))
}

// TestFakeUnderRecorder shows that a Recorder sees a passing run as passing: every check ran, none failed.
func TestFakeUnderRecorder(t *testing.T) {
	rec := contract.Capture(func(t contract.T) { run(t, fakeTarget(nil)) })
	if rec.Failed() {
		t.Fatalf("the Fake failed under a Recorder:\n%s", rec.Report())
	}
}

// fault is a Backend wrapper with one planted fault: each method defaults to the Fake's.
type fault struct {
	*Fake
	generate    func(ctx context.Context, req llm.Request) (llm.Output, error)
	checkPolicy func(string) error
	identity    func() string
	tokenizer   llm.Tokenizer
	close       func() error
	shape       func() llm.ModelShape
	chatTmpl    func() (llm.ChatTemplateInfo, error)
	preflight   func(ctx context.Context, maxPrompt, maxNew int) error
}

func (f *fault) Shape() llm.ModelShape {
	if f.shape != nil {
		return f.shape()
	}
	return f.Fake.Shape()
}

func (f *fault) ChatTemplate() (llm.ChatTemplateInfo, error) {
	if f.chatTmpl != nil {
		return f.chatTmpl()
	}
	return f.Fake.ChatTemplate()
}

func (f *fault) Preflight(ctx context.Context, maxPrompt, maxNew int) error {
	if f.preflight != nil {
		return f.preflight(ctx, maxPrompt, maxNew)
	}
	return f.Fake.Preflight(ctx, maxPrompt, maxNew)
}

func (f *fault) Generate(ctx context.Context, req llm.Request) (llm.Output, error) {
	if f.generate != nil {
		return f.generate(ctx, req)
	}
	return f.Fake.Generate(ctx, req)
}

func (f *fault) CheckPolicy(spec string) error {
	if f.checkPolicy != nil {
		return f.checkPolicy(spec)
	}
	return f.Fake.CheckPolicy(spec)
}

func (f *fault) Identity() string {
	if f.identity != nil {
		return f.identity()
	}
	return f.Fake.Identity()
}

func (f *fault) Tokenizer() llm.Tokenizer { return f.tokenizer }

func (f *fault) Close() error {
	if f.close != nil {
		return f.close()
	}
	return f.Fake.Close()
}

// badTokenizer drops the last token when decoding.
type badTokenizer struct{}

func (badTokenizer) Encode(s string) []int {
	ids := make([]int, len(s))
	for i := range s {
		ids[i] = int(s[i])
	}
	return ids
}

func (badTokenizer) Decode(ids []int) string {
	b := make([]byte, 0, len(ids))
	for _, id := range ids[:max(0, len(ids)-1)] {
		b = append(b, byte(id))
	}
	return string(b)
}

// TestPlantedFaults runs the suite on Fakes with one planted fault each and checks that exactly the checks aimed
// at that fault fail: the suite catches each fault, and tells which contract it breaks.
func TestPlantedFaults(t *testing.T) {
	tests := []struct {
		name string
		// wrap plants the fault.
		wrap func(f *Fake) backends.Backend
		// target, when set, edits the Target instead.
		target func(*Target)
		want   []string
	}{
		{"empty identity", func(f *Fake) backends.Backend {
			return &fault{Fake: f, identity: func() string { return "" }}
		}, nil, []string{"identity"}},
		{"shape differs from the target's", nil, func(tg *Target) {
			tg.Shape = &llm.ModelShape{Layers: 2, KVHeads: 2, HeadDim: 8, ElemBytes: 4}
		}, []string{"capabilities", "policies/full", "policies/snapstream:budget=64", "policies/streaming:sinks=4,recent=60"}},
		{"shape with a zero field", func(f *Fake) backends.Backend {
			return &fault{Fake: f, shape: func() llm.ModelShape { s := f.Shape(); s.ElemBytes = 0; return s }}
		}, nil, []string{"capabilities", "policies/full", "policies/snapstream:budget=64", "policies/streaming:sinks=4,recent=60"}},
		{"no chat template though chat is taken", func(f *Fake) backends.Backend {
			return &fault{Fake: f, chatTmpl: func() (llm.ChatTemplateInfo, error) { return llm.ChatTemplateInfo{}, errors.New("no chat template") }}
		}, nil, []string{"capabilities"}},
		{"chat template without a source", func(f *Fake) backends.Backend {
			return &fault{Fake: f, chatTmpl: func() (llm.ChatTemplateInfo, error) { return llm.ChatTemplateInfo{SHA256: "x"}, nil }}
		}, nil, []string{"capabilities"}},
		{"preflight accepts what cannot fit", func(f *Fake) backends.Backend {
			return &fault{Fake: f, preflight: func(context.Context, int, int) error { return nil }}
		}, nil, []string{"capabilities"}},
		{"blind preflight still refuses what fits", func(f *Fake) backends.Backend {
			return &fault{Fake: f, preflight: func(context.Context, int, int) error { return errors.New("no") }}
		}, func(tg *Target) { tg.PreflightBlind = true }, []string{"capabilities"}},
		{"preflight refuses what fits", func(f *Fake) backends.Backend {
			return &fault{Fake: f, preflight: func(context.Context, int, int) error { return errors.New("no") }}
		}, nil, []string{"capabilities"}},
		{"seed ignored", func(f *Fake) backends.Backend {
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				r.Sampling.Seed = 0
				return f.Generate(ctx, r)
			}}
		}, nil, []string{"seed"}},
		{"seed claimed but not honoured", func(f *Fake) backends.Backend {
			var n atomic.Uint64
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				if r.Sampling.Temperature > 0 {
					r.Sampling.Seed = n.Add(1)
				}
				return f.Generate(ctx, r)
			}}
		}, nil, []string{"seed"}},
		{"greedy decoding samples", func(f *Fake) backends.Backend {
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				if r.Sampling.Temperature == 0 {
					r.Sampling.Temperature = 1
				}
				return f.Generate(ctx, r)
			}}
		}, nil, []string{"greedy"}},
		{"every policy accepted", func(f *Fake) backends.Backend {
			return &fault{Fake: f, checkPolicy: func(string) error { return nil }}
		}, nil, []string{"refused"}},
		{"unknown policy runs as full", func(f *Fake) backends.Backend {
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				if f.CheckPolicy(r.Policy) != nil {
					r.Policy = "full"
				}
				return f.Generate(ctx, r)
			}}
		}, nil, []string{"refused"}},
		{"policy reported as full", func(f *Fake) backends.Backend {
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				o, err := f.Generate(ctx, r)
				o.Cache.Policy = "full"
				return o, err
			}}
		}, nil, []string{"policies/snapstream:budget=64", "policies/streaming:sinks=4,recent=60"}},
		{"KV bytes off the formula", func(f *Fake) backends.Backend {
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				o, err := f.Generate(ctx, r)
				o.Cache.KVBytes *= 2
				return o, err
			}}
		}, nil, []string{"policies/full", "policies/snapstream:budget=64", "policies/streaming:sinks=4,recent=60"}},
		{"capacity not reported", func(f *Fake) backends.Backend {
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				o, err := f.Generate(ctx, r)
				o.Cache.Capacity, o.Cache.KVBytes = 0, 0
				return o, err
			}}
		}, nil, []string{"policies/full", "policies/snapstream:budget=64", "policies/streaming:sinks=4,recent=60"}},
		{"declared policy claimed as observed", nil, func(tg *Target) { tg.Declared = true },
			[]string{"policies/full", "policies/snapstream:budget=64", "policies/streaming:sinks=4,recent=60"}},
		{"cancellation ignored", func(f *Fake) backends.Backend {
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				return f.Generate(context.WithoutCancel(ctx), r)
			}}
		}, nil, []string{"cancel"}},
		{"cancellation reported as a plain error", func(f *Fake) backends.Backend {
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				o, err := f.Generate(ctx, r)
				if err != nil {
					err = fmt.Errorf("generation failed: %v", err)
				}
				return o, err
			}}
		}, nil, []string{"cancel", "overflow", "quota"}},
		{"overflow unclassified", func(f *Fake) backends.Backend {
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				o, err := f.Generate(ctx, r)
				if errors.Is(err, llm.ErrContextOverflow) {
					err = errors.New("prompt too long")
				}
				return o, err
			}}
		}, nil, []string{"overflow"}},
		{"overflow truncated silently", func(f *Fake) backends.Backend {
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				if w := strings.Fields(PromptText(r)); len(w) > 256 {
					r.Prompt, r.Messages = strings.Join(w[len(w)-256:], " "), nil
				}
				r.Sampling.MaxNew = min(r.Sampling.MaxNew, 256)
				return f.Generate(ctx, r)
			}}
		}, nil, []string{"overflow"}},
		{"quota unclassified", func(f *Fake) backends.Backend {
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				o, err := f.Generate(ctx, r)
				if errors.Is(err, llm.ErrQuotaExhausted) {
					err = errors.New("HTTP 429")
				}
				return o, err
			}}
		}, nil, []string{"quota"}},
		{"MaxNew exceeded", func(f *Fake) backends.Backend {
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				r.Sampling.MaxNew++
				return f.Generate(ctx, r)
			}}
		}, nil, []string{"greedy", "max_new", "policies/full"}},
		{"finish reason always stop", func(f *Fake) backends.Backend {
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				o, err := f.Generate(ctx, r)
				o.FinishReason = "stop"
				return o, err
			}}
		}, nil, []string{"max_new"}},
		{"finish reason unnormalised", func(f *Fake) backends.Backend {
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				o, err := f.Generate(ctx, r)
				if o.FinishReason == "length" {
					o.FinishReason = "max_tokens"
				}
				return o, err
			}}
		}, nil, []string{"greedy", "max_new"}},
		{"stop strings ignored", func(f *Fake) backends.Backend {
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				r.Sampling.Stop = nil
				return f.Generate(ctx, r)
			}}
		}, nil, []string{"stop"}},
		{"stop string kept in the text", func(f *Fake) backends.Backend {
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				stops := r.Sampling.Stop
				r.Sampling.Stop = nil
				o, err := f.Generate(ctx, r)
				if cut := firstStop(o.Text, stops); cut >= 0 {
					for _, st := range stops {
						if strings.HasPrefix(o.Text[cut:], st) {
							o.Text, o.FinishReason = o.Text[:cut+len(st)], "stop"
							break
						}
					}
				}
				return o, err
			}}
		}, nil, []string{"stop"}},
		{"chat accepted though not claimed", nil, func(tg *Target) { tg.Chat = false }, []string{"capabilities", "request_forms"}},
		{"state shared between concurrent requests", func(f *Fake) backends.Backend {
			var last atomic.Value
			last.Store("")
			return &fault{Fake: f, generate: func(ctx context.Context, r llm.Request) (llm.Output, error) {
				if r.Key == "backendtest/concurrent" {
					p := PromptText(r)
					r.Prompt, r.Messages = last.Load().(string)+p, nil
					last.Store(p[:min(len(p), 8)])
				}
				return f.Generate(ctx, r)
			}}
		}, nil, []string{"concurrent"}},
		{"tokenizer does not round-trip", func(f *Fake) backends.Backend {
			return &fault{Fake: f, tokenizer: badTokenizer{}}
		}, nil, []string{"tokenizer"}},
		{"second Close panics", func(f *Fake) backends.Backend {
			var closed atomic.Bool
			return &fault{Fake: f, close: func() error {
				if closed.Swap(true) {
					panic("close of closed channel")
				}
				return f.Close()
			}}
		}, nil, []string{"close"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := fakeTarget(tt.wrap)
			if tt.target != nil {
				tt.target(&tg)
			}
			rec := contract.Capture(func(t contract.T) { run(t, tg) })
			got := rec.FailedTests()
			if !slices.Equal(got, tt.want) {
				t.Errorf("failed checks %q, want %q\n%s", got, tt.want, rec.Report())
			}
		})
	}
}
