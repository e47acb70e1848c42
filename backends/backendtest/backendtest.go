// Package backendtest is the contract every backends.Backend keeps, written once as a test suite that each
// backend's own tests run (as litestream's RunWithReplicaClient does for replica clients):
//
//	func TestContract(t *testing.T) {
//		backendtest.Run(t, backendtest.Target{
//			Open:          func(ctx context.Context) (backends.Backend, error) { return mybackend.Open(ctx, ...) },
//			Raw:           true,
//			Policies:      []string{"full", "snapstream:budget=64"},
//			Seeded:        true,
//			ContextLength: 4096,
//		})
//	}
//
// The suite checks: Identity is non-empty and stable; the optional capabilities (backends.Shaper, ChatTemplater,
// Preflighter) agree with the target's claims; requests of a form the backend does not claim (chat or raw)
// and malformed requests are refused; greedy decoding is deterministic and ignores the seed; MaxNew is honoured
// and FinishReason is "length" or "stop" as it should be; stop strings end the output and are trimmed; a seed
// gives the same sample twice and other seeds other samples (Output.Seeded says whether the backend can); each
// supported policy passes CheckPolicy and is reported back, with Capacity and KVBytes equal to package compress'
// formulas when the backend observes the cache, or Declared when it cannot; malformed and unsupported policies
// fail CheckPolicy and Generate; a cancelled context ends a request with an error wrapping context.Canceled and
// leaves the backend usable; an over-long prompt or MaxNew fails with llm.ErrContextOverflow, and an exhausted
// quota with llm.ErrQuotaExhausted; concurrent requests get the outputs they get alone; the tokenizer, when there
// is one, round-trips text; Close returns nil and a second Close (and a Generate after it) is safe.
//
// Fake is a reference backend that passes the suite, for fake servers and for the suite's own tests.
package backendtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/internal/contract"
	"github.com/snapeval/snapeval/llm"
)

// DefaultPrompt is the prompt of Target.Prompt's default.
const DefaultPrompt = "The quick brown fox jumps over the lazy dog. The key is 7. What is the key?"

// Target describes a backend under test: how to open it and what it claims.
type Target struct {
	// Open returns a fresh backend. The suite opens two: one shared by the checks and one that it closes.
	Open func(ctx context.Context) (backends.Backend, error)
	// Chat and Raw say which request forms the backend accepts: Messages (chat) and Prompt (raw text). A form it
	// does not claim must be refused with an error. At least one must be set; the checks use chat when set.
	Chat, Raw bool
	// Prompt is a short prompt (sent raw, or as one user message) whose greedy continuation runs at least 12
	// tokens without ending and holds some non-space text (default DefaultPrompt).
	Prompt string
	// Policies are canonical policy specs the backend must accept, apply and report back in Output.Cache.Policy.
	// The first is used by the other checks. At least one is required.
	Policies []string
	// Refused are well-formed policy specs the backend must refuse (CheckPolicy and Generate fail); the suite adds
	// malformed specs of its own.
	Refused []string
	// Seeded is true when the backend honours Sampling.Seed: the same seed gives the same sample and Output.Seeded
	// is true. When false, outputs must say Seeded=false.
	Seeded bool
	// Declared is true when the backend cannot observe the cache and reports the policy as configured
	// (Output.Cache.Declared). Otherwise Capacity and KVBytes must be positive.
	Declared bool
	// Shape, for a backend that observes the cache, is the model's KV shape: Capacity must then equal compress'
	// Policy.Capacity(prompt tokens, MaxNew) and KVBytes Policy.KVBytes of it (the packed size for kvquant). It
	// defaults to the shape of a
	// backends.Shaper, and must equal it when both are known.
	Shape *llm.ModelShape
	// ContextLength is the model's context in tokens; 0 (unknown) skips the overflow checks. A request of about
	// half of it, cancelled after CancelAfter, must still be running.
	ContextLength int
	// PreflightBlind says that the backend is a backends.Preflighter that cannot see the model's context length
	// (its server publishes none), so that Preflight cannot refuse an overflow up front; the overflow is still
	// classified per request. Without it, Preflight must refuse ContextLength prompt tokens plus 16 new ones.
	PreflightBlind bool
	// Quota, when set, is a request the backend must fail with llm.ErrQuotaExhausted (a fake server arranged to
	// refuse it); nil skips the quota check.
	Quota *llm.Request
}

// malformedPolicies are specs no backend may accept.
var malformedPolicies = []string{"bogus", "snapstream:bogus=1", "snapstream:budget=-1", "streaming:sinks=x", "full:budget=8;"}

// CancelAfter is how long the cancellation check lets a long request run before cancelling it.
const CancelAfter = 10 * time.Millisecond

// Run runs the contract suite on the backend tg describes, each check as a subtest.
func Run(t *testing.T, tg Target) {
	t.Helper()
	run(contract.Wrap(t), tg)
}

func run(t contract.T, tg Target) {
	t.Helper()
	if tg.Open == nil {
		t.Fatalf("backendtest: Target.Open is nil")
	}
	if !tg.Chat && !tg.Raw {
		t.Fatalf("backendtest: Target claims neither chat nor raw requests")
	}
	if len(tg.Policies) == 0 {
		t.Fatalf("backendtest: Target.Policies is empty")
	}
	if tg.Prompt == "" {
		tg.Prompt = DefaultPrompt
	}
	b, err := tg.Open(t.Context())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	s := &suite{tg: tg, b: b}
	if sh, ok := b.(backends.Shaper); ok && tg.Shape == nil {
		shape := sh.Shape()
		s.tg.Shape = &shape
	}
	t.Run("identity", s.identity)
	t.Run("capabilities", s.capabilities)
	t.Run("request_forms", s.requestForms)
	t.Run("greedy", s.greedy)
	t.Run("max_new", s.maxNew)
	t.Run("stop", s.stop)
	t.Run("seed", s.seed)
	t.Run("policies", s.policies)
	t.Run("refused", s.refused)
	t.Run("cancel", s.cancel)
	t.Run("overflow", s.overflow)
	t.Run("quota", s.quota)
	t.Run("concurrent", s.concurrent)
	t.Run("tokenizer", s.tokenizer)
	t.Run("close", s.close)
}

type suite struct {
	tg Target
	b  backends.Backend
}

// request builds a request of the target's preferred form under its first policy.
func (s *suite) request(key, text string, sp llm.Sampling) llm.Request {
	r := llm.Request{Key: "backendtest/" + key, Sampling: sp, Policy: s.tg.Policies[0]}
	if s.tg.Chat {
		r.Messages = []llm.Message{{Role: "user", Content: text}}
	} else {
		r.Prompt = text
	}
	return r
}

func greedy(maxNew int) llm.Sampling { return llm.Sampling{MaxNew: maxNew} }

func sampled(maxNew int, seed uint64) llm.Sampling {
	return llm.Sampling{Temperature: 1, MaxNew: maxNew, Seed: seed}
}

func (s *suite) gen(t contract.T, req llm.Request) (llm.Output, bool) {
	t.Helper()
	out, err := s.b.Generate(t.Context(), req)
	if err != nil {
		t.Errorf("Generate(%s): %v", req.Key, err)
		return out, false
	}
	return out, true
}

func (s *suite) identity(t contract.T) {
	id := s.b.Identity()
	if id == "" {
		t.Errorf("Identity is empty")
	}
	if again := s.b.Identity(); again != id {
		t.Errorf("Identity changed between calls: %q then %q", id, again)
	}
}

// capabilities checks the optional interfaces of package backends against the target's claims.
func (s *suite) capabilities(t contract.T) {
	if sh, ok := s.b.(backends.Shaper); ok {
		got := sh.Shape()
		if got.Layers <= 0 || got.KVHeads <= 0 || got.HeadDim <= 0 || got.ElemBytes <= 0 {
			t.Errorf("Shape() = %+v: every field must be positive", got)
		}
		if s.tg.Shape != nil && got != *s.tg.Shape {
			t.Errorf("Shape() = %+v, Target.Shape = %+v", got, *s.tg.Shape)
		}
	}
	if ct, ok := s.b.(backends.ChatTemplater); ok {
		if info, err := ct.ChatTemplate(); (err == nil) != s.tg.Chat || (err == nil && info.Source == "") {
			t.Errorf("ChatTemplate() = %+v, %v; Target.Chat = %v: a backend takes chat requests exactly when it has a chat template, which names its source", info, err, s.tg.Chat)
		}
	}
	if pf, ok := s.b.(backends.Preflighter); ok {
		if err := pf.Preflight(t.Context(), 16, 16); err != nil {
			t.Errorf("Preflight of 16 prompt + 16 new tokens: %v", err)
		}
		if n := s.tg.ContextLength; n > 0 && !s.tg.PreflightBlind {
			if err := pf.Preflight(t.Context(), n, 16); !errors.Is(err, llm.ErrContextOverflow) {
				t.Errorf("Preflight of %d prompt + 16 new tokens in a context of %d: err = %v, want one wrapping llm.ErrContextOverflow", n, n, err)
			}
		}
	}
}

func (s *suite) requestForms(t contract.T) {
	base := llm.Request{Key: "backendtest/forms", Policy: s.tg.Policies[0], Sampling: greedy(2)}
	msgs := []llm.Message{{Role: "user", Content: s.tg.Prompt}}
	neither := base
	both := base
	both.Prompt, both.Messages = s.tg.Prompt, msgs
	chat := base
	chat.Messages = msgs
	raw := base
	raw.Prompt = s.tg.Prompt
	cases := []struct {
		name   string
		req    llm.Request
		refuse bool
	}{
		{"neither messages nor prompt", neither, true},
		{"both messages and prompt", both, true},
		{"chat", chat, !s.tg.Chat},
		{"raw", raw, !s.tg.Raw},
	}
	for _, c := range cases {
		_, err := s.b.Generate(t.Context(), c.req)
		switch {
		case c.refuse && err == nil:
			t.Errorf("%s: accepted, want an error (Target.Chat=%v, Target.Raw=%v)", c.name, s.tg.Chat, s.tg.Raw)
		case !c.refuse && err != nil:
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func (s *suite) greedy(t contract.T) {
	req := s.request("greedy", s.tg.Prompt, greedy(8))
	a, ok1 := s.gen(t, req)
	b, ok2 := s.gen(t, req)
	req.Sampling.Seed = 987654321
	c, ok3 := s.gen(t, req)
	if !ok1 || !ok2 || !ok3 {
		return
	}
	if a.Text != b.Text || a.OutputTokens != b.OutputTokens || a.FinishReason != b.FinishReason || a.PromptTokens != b.PromptTokens {
		t.Errorf("greedy decoding is not deterministic: %q (%d tokens, %s) then %q (%d tokens, %s)",
			a.Text, a.OutputTokens, a.FinishReason, b.Text, b.OutputTokens, b.FinishReason)
	}
	if c.Text != a.Text {
		t.Errorf("greedy decoding depends on the seed: %q with seed 0, %q with seed %d", a.Text, c.Text, req.Sampling.Seed)
	}
	if a.PromptTokens <= 0 || a.OutputTokens <= 0 {
		t.Errorf("token counts not reported: prompt %d, output %d", a.PromptTokens, a.OutputTokens)
	}
	checkFinish(t, "greedy", a, 8)
}

// checkFinish checks FinishReason and OutputTokens against maxNew.
func checkFinish(t contract.T, what string, o llm.Output, maxNew int) {
	t.Helper()
	switch {
	case o.FinishReason != "stop" && o.FinishReason != "length":
		t.Errorf("%s: FinishReason %q, want stop or length", what, o.FinishReason)
	case o.OutputTokens > maxNew:
		t.Errorf("%s: %d output tokens, MaxNew is %d", what, o.OutputTokens, maxNew)
	case o.FinishReason == "length" && o.OutputTokens != maxNew:
		t.Errorf("%s: FinishReason length after %d tokens, MaxNew is %d", what, o.OutputTokens, maxNew)
	}
}

func (s *suite) maxNew(t contract.T) {
	for _, n := range []int{1, 3} {
		o, ok := s.gen(t, s.request(fmt.Sprintf("max_new_%d", n), s.tg.Prompt, greedy(n)))
		if !ok {
			continue
		}
		checkFinish(t, fmt.Sprintf("MaxNew %d", n), o, n)
		if o.FinishReason != "length" || o.OutputTokens != n {
			t.Errorf("MaxNew %d: %d tokens, finish %q; want %d tokens, finish length (Target.Prompt must not end so soon)",
				n, o.OutputTokens, o.FinishReason, n)
		}
	}
}

func (s *suite) stop(t contract.T) {
	const n = 12
	req := s.request("stop", s.tg.Prompt, greedy(n))
	full, ok := s.gen(t, req)
	if !ok {
		return
	}
	stop := stopIn(full.Text)
	if stop == "" {
		t.Fatalf("the greedy continuation %q has too little text to pick a stop string from (choose another Target.Prompt)", full.Text)
	}
	want := full.Text[:strings.Index(full.Text, stop)]
	req.Sampling.Stop = []string{"\x00never-there\x00", stop}
	o, ok := s.gen(t, req)
	if !ok {
		return
	}
	if o.Text != want || o.FinishReason != "stop" {
		t.Errorf("stop %q: text %q, finish %q; want %q, finish stop (without stop strings: %q)", stop, o.Text, o.FinishReason, want, full.Text)
	}
	checkFinish(t, "with a stop string", o, n)
}

// stopIn picks a stop string of two characters from the second half of text ("" if there is none).
func stopIn(text string) string {
	rest := []rune(strings.TrimSpace(text[len(text)/2:]))
	if len(rest) < 2 {
		return ""
	}
	return string(rest[:2])
}

func (s *suite) seed(t contract.T) {
	const seed = 11
	req := s.request("seed", s.tg.Prompt, sampled(8, seed))
	a, ok1 := s.gen(t, req)
	if !ok1 {
		return
	}
	if a.Seeded != s.tg.Seeded {
		t.Errorf("Output.Seeded = %v, Target.Seeded = %v", a.Seeded, s.tg.Seeded)
	}
	if !s.tg.Seeded {
		return
	}
	b, ok := s.gen(t, req)
	if ok && (b.Text != a.Text || b.OutputTokens != a.OutputTokens) {
		t.Errorf("seed %d sampled %q, then %q: a seed must give the same sample", seed, a.Text, b.Text)
	}
	differ := false
	var others []string
	for sd := uint64(seed + 1); sd <= seed+4; sd++ {
		req.Sampling.Seed = sd
		o, ok := s.gen(t, req)
		if !ok {
			return
		}
		others = append(others, o.Text)
		differ = differ || o.Text != a.Text
	}
	if !differ {
		t.Errorf("seeds %d..%d all sampled %q at temperature 1 (%q): the seed is not used", seed, seed+4, a.Text, others)
	}
}

func (s *suite) policies(t contract.T) {
	const n = 4
	for _, spec := range s.tg.Policies {
		t.Run(spec, func(t contract.T) {
			if err := s.b.CheckPolicy(spec); err != nil {
				t.Fatalf("CheckPolicy(%q): %v", spec, err)
			}
			req := s.request("policy", s.tg.Prompt, greedy(n))
			req.Policy = spec
			o, ok := s.gen(t, req)
			if !ok {
				return
			}
			c := o.Cache
			if c.Policy != spec {
				t.Errorf("Cache.Policy = %q, want %q", c.Policy, spec)
			}
			if c.Declared != s.tg.Declared {
				t.Errorf("Cache.Declared = %v, Target.Declared = %v", c.Declared, s.tg.Declared)
			}
			if s.tg.Declared {
				return
			}
			if c.Capacity <= 0 || c.KVBytes <= 0 {
				t.Errorf("an observed cache must report its capacity and KV bytes: %+v", c)
			}
			if sh := s.tg.Shape; sh != nil {
				pol, err := compress.Parse(spec)
				if err != nil {
					t.Fatalf("Target.Policies: %v", err)
				}
				capacity := pol.Capacity(o.PromptTokens, n)
				kv := pol.KVBytes(capacity, sh.Layers, sh.KVHeads, sh.HeadDim, sh.ElemBytes)
				if c.Capacity != capacity || c.KVBytes != kv {
					t.Errorf("capacity %d, KV bytes %d; compress' formulas give %d and %d for %d prompt tokens and MaxNew %d",
						c.Capacity, c.KVBytes, capacity, kv, o.PromptTokens, n)
				}
			}
		})
	}
}

func (s *suite) refused(t contract.T) {
	for _, spec := range append(append([]string{}, s.tg.Refused...), malformedPolicies...) {
		if err := s.b.CheckPolicy(spec); err == nil {
			t.Errorf("CheckPolicy(%q) accepted it", spec)
		}
		req := s.request("refused", s.tg.Prompt, greedy(2))
		req.Policy = spec
		if o, err := s.b.Generate(t.Context(), req); err == nil {
			t.Errorf("Generate under policy %q succeeded (cache %+v): a refused policy must not run", spec, o.Cache)
		}
	}
}

func (s *suite) cancel(t contract.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.b.Generate(ctx, s.request("cancelled", s.tg.Prompt, greedy(4))); !errors.Is(err, context.Canceled) {
		t.Errorf("Generate with a cancelled context: err = %v, want one wrapping context.Canceled", err)
	}
	long := 1024
	if s.tg.ContextLength > 0 {
		long = s.tg.ContextLength / 2
	}
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		err error
		at  time.Time
	}
	done := make(chan result, 1)
	go func() {
		_, err := s.b.Generate(ctx, s.request("cancel_long", s.tg.Prompt, greedy(long)))
		done <- result{err, time.Now()}
	}()
	time.Sleep(CancelAfter)
	cancelled := time.Now()
	cancel()
	select {
	case r := <-done:
		switch {
		case r.err == nil && r.at.Before(cancelled):
			t.Errorf("the %d-token request finished before it was cancelled %v in: the check cannot see a cancellation (raise Target.ContextLength)", long, CancelAfter)
		case !errors.Is(r.err, context.Canceled):
			t.Errorf("Generate cancelled mid-request: err = %v, want one wrapping context.Canceled", r.err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("Generate did not return within a minute of its context being cancelled")
	}
	// The backend still serves, with the same outputs.
	req := s.request("after_cancel", s.tg.Prompt, greedy(6))
	a, ok1 := s.gen(t, req)
	b, ok2 := s.gen(t, req)
	if ok1 && ok2 && a.Text != b.Text {
		t.Errorf("after a cancellation: greedy %q then %q", a.Text, b.Text)
	}
}

func (s *suite) overflow(t contract.T) {
	if s.tg.ContextLength <= 0 {
		t.Skipf("Target.ContextLength unknown")
	}
	n := s.tg.ContextLength
	long := s.request("overflow_prompt", strings.Repeat("the ", n+16), greedy(4))
	big := s.request("overflow_max_new", s.tg.Prompt, greedy(n+16))
	for _, c := range []struct {
		what string
		req  llm.Request
	}{{fmt.Sprintf("a prompt of %d words", n+16), long}, {fmt.Sprintf("MaxNew %d", n+16), big}} {
		_, err := s.b.Generate(t.Context(), c.req)
		if !errors.Is(err, llm.ErrContextOverflow) {
			t.Errorf("%s in a context of %d: err = %v, want one wrapping llm.ErrContextOverflow", c.what, n, err)
		}
	}
}

func (s *suite) quota(t contract.T) {
	if s.tg.Quota == nil {
		t.Skipf("Target.Quota not set: the backend cannot be made to exhaust a quota")
	}
	_, err := s.b.Generate(t.Context(), *s.tg.Quota)
	if !errors.Is(err, llm.ErrQuotaExhausted) {
		t.Errorf("Generate(Target.Quota): err = %v, want one wrapping llm.ErrQuotaExhausted", err)
	}
	if errors.Is(err, llm.ErrContextOverflow) {
		t.Errorf("an exhausted quota also classified as a context overflow: %v", err)
	}
}

func (s *suite) concurrent(t contract.T) {
	prompts := []string{s.tg.Prompt, s.tg.Prompt + " Again.", s.tg.Prompt + " Once more, please."}
	alone := make([]string, len(prompts))
	for i, p := range prompts {
		o, ok := s.gen(t, s.request("alone", p, greedy(6)))
		if !ok {
			return
		}
		alone[i] = o.Text
	}
	var wg sync.WaitGroup
	for range 2 {
		for i, p := range prompts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o, err := s.b.Generate(t.Context(), s.request("concurrent", p, greedy(6)))
				switch {
				case err != nil:
					t.Errorf("concurrent Generate: %v", err)
				case o.Text != alone[i]:
					t.Errorf("prompt %d: %q concurrently, %q alone", i, o.Text, alone[i])
				}
			}()
		}
	}
	wg.Wait()
}

func (s *suite) tokenizer(t contract.T) {
	tok := s.b.Tokenizer()
	if tok == nil {
		t.Skipf("the backend has no tokenizer")
	}
	for _, text := range []string{"Hello, world. The key is 7.", s.tg.Prompt} {
		ids := tok.Encode(text)
		if len(ids) == 0 {
			t.Errorf("Encode(%q) is empty", text)
			continue
		}
		if got := tok.Decode(ids); got != text {
			t.Errorf("Decode(Encode(%q)) = %q", text, got)
		}
	}
}

func (s *suite) close(t contract.T) {
	b, err := s.tg.Open(t.Context())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if _, err := b.Generate(t.Context(), s.request("close", s.tg.Prompt, greedy(2))); err != nil {
		t.Errorf("Generate before Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if p := recovered(func() { b.Close() }); p != nil {
		t.Errorf("a second Close panicked: %v", p)
	}
	done := make(chan any, 1)
	go func() {
		done <- recovered(func() { b.Generate(t.Context(), s.request("after_close", s.tg.Prompt, greedy(2))) })
	}()
	select {
	case p := <-done:
		if p != nil {
			t.Errorf("Generate after Close panicked: %v", p)
		}
	case <-time.After(time.Minute):
		t.Errorf("Generate after Close did not return within a minute")
	}
}

// recovered runs f and returns what it panicked with (nil if it did not).
func recovered(f func()) (p any) {
	defer func() { p = recover() }()
	f()
	return nil
}
