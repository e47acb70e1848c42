package backendtest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/llm"
)

// Fake is a deterministic in-memory backend that keeps the whole contract, for tests that need a model without
// paying for one: the suite's own tests (a correct Fake passes, a Fake with a planted fault fails) and fake
// servers that stand in for a remote service (backends/sn40l's contract test serves a Fake the way SambaNova
// Cloud serves a model).
//
// Its tokens are words: a prompt's tokens are the whitespace-separated fields of the prompt (of "role: content"
// lines for chat messages), and it generates words of a fixed vocabulary chosen by a hash of the prompt, the
// position and, when Temperature > 0, the seed. It never ends by itself: generation stops at MaxNew ("length") or
// at a stop string ("stop", trimmed from the text). Every policy of package compress is accepted and applied in
// name only: Capacity and KVBytes are compress' formulas for the policy and KVShape. It has every optional
// capability (backends.Shaper, ChatTemplater, Preflighter). Use a *Fake; the zero value
// works (see the field defaults).
type Fake struct {
	// Name is the model name in Identity (default "fake").
	Name string
	// Context is the context length in tokens (default 512): a prompt plus MaxNew beyond it overflows.
	Context int
	// KVShape is the KV shape of the KVBytes formula (default 2 layers, 2 KV heads, head dim 8, 2-byte elements).
	KVShape llm.ModelShape
	// TokenDelay is the time a generated token takes (default 100µs), waited 16 tokens at a time, so that
	// cancelling a long request can be seen to end it early.
	TokenDelay time.Duration
	// QuotaMarker, when set, makes every request whose prompt contains it fail with llm.ErrQuotaExhausted.
	QuotaMarker string

	closed atomic.Bool
}

var (
	_ backends.Backend       = (*Fake)(nil)
	_ backends.Shaper        = (*Fake)(nil)
	_ backends.ChatTemplater = (*Fake)(nil)
	_ backends.Preflighter   = (*Fake)(nil)
)

// fakeWords is the Fake's vocabulary.
var fakeWords = strings.Fields(`alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike
november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu red orange yellow green
blue indigo violet black white grey north south east west one two three four five six seven eight nine`)

func (f *Fake) context() int {
	if f.Context > 0 {
		return f.Context
	}
	return 512
}

// Shape implements backends.Shaper: KVShape, or the default one.
func (f *Fake) Shape() llm.ModelShape {
	if f.KVShape != (llm.ModelShape{}) {
		return f.KVShape
	}
	return llm.ModelShape{Layers: 2, KVHeads: 2, HeadDim: 8, ElemBytes: 2}
}

// ChatTemplate implements backends.ChatTemplater: the Fake renders messages as "role: content" lines.
func (f *Fake) ChatTemplate() (llm.ChatTemplateInfo, error) {
	return llm.ChatTemplateInfo{Source: "fake: role: content lines"}, nil
}

// Preflight implements backends.Preflighter: a prompt of maxPrompt tokens plus maxNew must fit the context.
func (f *Fake) Preflight(_ context.Context, maxPrompt, maxNew int) error {
	if maxPrompt+maxNew > f.context() {
		return fmt.Errorf("fake backend: %d prompt + %d new tokens exceed the context of %d: %w", maxPrompt, maxNew, f.context(), llm.ErrContextOverflow)
	}
	return nil
}

// Identity is "fake:NAME".
func (f *Fake) Identity() string {
	if f.Name == "" {
		return "fake:fake"
	}
	return "fake:" + f.Name
}

// CheckPolicy accepts the specs package compress parses.
func (f *Fake) CheckPolicy(spec string) error {
	_, err := compress.Parse(spec)
	return err
}

// Tokenizer returns nil: the Fake's word tokens are not a model tokenizer.
func (f *Fake) Tokenizer() llm.Tokenizer { return nil }

// Close marks the Fake closed; later Generate calls fail. It is idempotent.
func (f *Fake) Close() error {
	f.closed.Store(true)
	return nil
}

// PromptText is the text the Fake tokenizes for req: the prompt, or one "role: content" line per message.
func PromptText(req llm.Request) string {
	if req.Prompt != "" {
		return req.Prompt
	}
	var b strings.Builder
	for _, m := range req.Messages {
		b.WriteString(m.Role + ": " + m.Content + "\n")
	}
	return b.String()
}

// Generate runs req.
func (f *Fake) Generate(ctx context.Context, req llm.Request) (llm.Output, error) {
	if f.closed.Load() {
		return llm.Output{}, errors.New("fake backend: closed")
	}
	if err := ctx.Err(); err != nil {
		return llm.Output{}, err
	}
	if (len(req.Messages) > 0) == (req.Prompt != "") {
		return llm.Output{}, fmt.Errorf("fake backend: request %s: exactly one of messages and prompt must be set", req.Key)
	}
	spec := req.Policy
	if spec == "" {
		spec = "full"
	}
	pol, err := compress.Parse(spec)
	if err != nil {
		return llm.Output{}, fmt.Errorf("fake backend: request %s: %w", req.Key, err)
	}
	text := PromptText(req)
	if f.QuotaMarker != "" && strings.Contains(text, f.QuotaMarker) {
		return llm.Output{}, fmt.Errorf("fake backend: request %s: daily budget spent: %w", req.Key, llm.ErrQuotaExhausted)
	}
	n := len(strings.Fields(text))
	if n == 0 {
		return llm.Output{}, fmt.Errorf("fake backend: request %s: empty prompt", req.Key)
	}
	s := req.Sampling
	maxNew := s.MaxNew
	if maxNew <= 0 {
		maxNew = f.context() - n
	}
	if n+maxNew > f.context() {
		return llm.Output{}, fmt.Errorf("fake backend: request %s: prompt of %d tokens + %d new exceeds the context of %d: %w",
			req.Key, n, maxNew, f.context(), llm.ErrContextOverflow)
	}
	stream := "greedy"
	if s.Temperature > 0 {
		stream = "seed " + strconv.FormatUint(s.Seed, 10)
	}
	delay := f.TokenDelay
	if delay == 0 {
		delay = 100 * time.Microsecond
	}
	start := time.Now()
	var out strings.Builder
	finish, tokens := "length", 0
	for i := 0; i < maxNew; i++ {
		if err := ctx.Err(); err != nil {
			return llm.Output{}, err
		}
		if i > 0 && i%16 == 0 { // pace in steps of 16 tokens: short requests never wait
			t := time.NewTimer(16 * delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return llm.Output{}, ctx.Err()
			case <-t.C:
			}
		}
		h := fnv.New64a()
		fmt.Fprintf(h, "%s\x00%d\x00%s", text, i, stream)
		out.WriteString(" " + fakeWords[h.Sum64()%uint64(len(fakeWords))])
		tokens++
		if cut := firstStop(out.String(), s.Stop); cut >= 0 {
			t := out.String()[:cut]
			out.Reset()
			out.WriteString(t)
			finish = "stop"
			break
		}
	}
	sh := f.Shape()
	capacity := pol.Capacity(n, maxNew)
	return llm.Output{
		Text: out.String(), PromptTokens: n, OutputTokens: tokens, FinishReason: finish,
		DecodeMS: float64(time.Since(start).Microseconds()) / 1000,
		Cache: llm.CacheInfo{Policy: pol.String(), Capacity: capacity,
			KVBytes: pol.KVBytes(capacity, sh.Layers, sh.KVHeads, sh.HeadDim, sh.ElemBytes)},
		Seeded: true,
	}, nil
}

// firstStop is the offset of the earliest stop string in text, -1 if none occurs.
func firstStop(text string, stops []string) int {
	best := -1
	for _, s := range stops {
		if s == "" {
			continue
		}
		if i := strings.Index(text, s); i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	return best
}
