package cpu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/cpu/engine"
	"github.com/snapeval/snapeval/backends/cpu/model"
	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/internal/conformance"
	"github.com/snapeval/snapeval/llm"
)

type reference struct {
	PromptIDs  []int     `json:"prompt_ids"`
	LogitsLast []float64 `json:"logits_last"`
	Cases      []struct {
		Policy conformance.Policy `json:"policy"`
		Kept   [][][]int          `json:"kept"`
		Greedy []int              `json:"greedy"`
	} `json:"cases"`
}

func fixtureDir(name string) string { return filepath.Join("testdata", "models", name) }

func openFixture(t *testing.T, name string, opts map[string]string) (*Backend, *reference) {
	t.Helper()
	bk, err := backends.Open(context.Background(), "cpu", backends.Config{Model: fixtureDir(name), Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bk.Close() })
	b, err := os.ReadFile(filepath.Join(fixtureDir(name), "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	return bk.(*Backend), &ref
}

func TestInspectConformance(t *testing.T) {
	for _, name := range []string{"llama-gqa", "qwen2-tied"} {
		t.Run(name, func(t *testing.T) {
			b, ref := openFixture(t, name, nil)
			for _, c := range ref.Cases {
				spec := c.Policy.Spec()
				r, err := b.Inspect(context.Background(), ref.PromptIDs, spec, len(c.Greedy))
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(r.Kept, c.Kept) || !reflect.DeepEqual(r.Greedy, c.Greedy) {
					t.Errorf("%s: kept/greedy differ from the reference (greedy %v, want %v)", spec, r.Greedy, c.Greedy)
				}
				var num, den float64
				for i, v := range ref.LogitsLast {
					num = max(num, abs(float64(r.LogitsLast[i])-v))
					den = max(den, abs(v))
				}
				if num/den > 1e-3 {
					t.Errorf("%s: logits_last relative error %.3g", spec, num/den)
				}
			}
		})
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestBackendBasics(t *testing.T) {
	b, _ := openFixture(t, "llama-gqa", map[string]string{"slots": "2"})
	if !strings.HasPrefix(b.Identity(), "cpu:llama-gqa@") || len(b.Identity()) != len("cpu:llama-gqa@")+12 {
		t.Errorf("Identity = %q", b.Identity())
	}
	if got, want := b.Shape(), (llm.ModelShape{Layers: 2, KVHeads: 2, HeadDim: 16, ElemBytes: 4}); got != want {
		t.Errorf("Shape = %+v, want %+v", got, want)
	}
	if err := b.CheckPolicy("snapstream:budget=64"); err != nil {
		t.Error(err)
	}
	if err := b.CheckPolicy("snapstream:bogus=1"); err == nil {
		t.Error("bad policy accepted")
	}
	fsb, err := OpenFS(os.DirFS(fixtureDir("llama-gqa")), ".", "llama-gqa", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fsb.Close()
	if fsb.Identity() != b.Identity() {
		t.Errorf("OpenFS identity %q, Open %q", fsb.Identity(), b.Identity())
	}
	for _, opts := range []map[string]string{{"bogus": "1"}, {"slots": "-2"}, {"threads": "x"}} {
		if _, err := backends.Open(context.Background(), "cpu", backends.Config{Model: fixtureDir("llama-gqa"), Options: opts}); err == nil {
			t.Errorf("options %v accepted", opts)
		}
	}
	if _, err := Open(filepath.Join("testdata", "nope"), Options{}); err == nil {
		t.Error("missing directory accepted")
	}
}

func TestGenerateText(t *testing.T) {
	b, ref := openFixture(t, "llama-gqa", nil)
	tok := b.TokenizerImpl()
	prompt := tok.Decode(ref.PromptIDs[:60])
	ids := tok.EncodeWithSpecial(prompt)
	ctx := context.Background()
	want, err := b.Engine().Generate(ctx, engine.Job{Prompt: ids, Policy: compress.MustParse("snapstream:budget=32"), MaxNew: 20})
	if err != nil {
		t.Fatal(err)
	}
	req := llm.Request{Key: "k", Prompt: prompt, Policy: "snapstream:budget=32", Sampling: llm.Sampling{MaxNew: 20}}
	out, err := b.Generate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	wantText := tok.DecodeSkipSpecial(want.Tokens)
	if out.Text != wantText || out.OutputTokens != 20 || out.FinishReason != "length" || out.PromptTokens != len(ids) {
		t.Fatalf("output %+v, want text %q", out, wantText)
	}
	if out.Cache.Policy != "snapstream:budget=32" || out.Cache.Capacity != 32 ||
		out.Cache.KVBytes != compress.KVBytes(32, 2, 2, 16, 4) || !out.Seeded {
		t.Errorf("cache info %+v", out.Cache)
	}
	// A stop string in the middle of the output ends generation there and is trimmed.
	stop := strings.TrimSpace(wantText[len(wantText)/2:])[:2]
	i := strings.Index(wantText, stop)
	req.Sampling.Stop = []string{"never-there", stop}
	out, err = b.Generate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if out.Text != wantText[:i] || out.FinishReason != "stop" {
		t.Errorf("with stop %q: text %q finish %q, want %q", stop, out.Text, out.FinishReason, wantText[:i])
	}
	// Overflow and bad requests.
	req.Sampling.MaxNew = 5000
	if _, err := b.Generate(ctx, req); !errors.Is(err, llm.ErrContextOverflow) {
		t.Errorf("overflow err = %v", err)
	}
	if _, err := b.Generate(ctx, llm.Request{Messages: []llm.Message{{Role: "user", Content: "hi"}}}); err == nil {
		t.Error("chat request accepted without a chat template")
	}
	if _, err := b.Generate(ctx, llm.Request{}); err == nil {
		t.Error("empty request accepted")
	}
}

func TestChatStyleOption(t *testing.T) {
	b, _ := openFixture(t, "qwen2-tied", map[string]string{"chat_style": "chatml"})
	msgs := []llm.Message{{Role: "user", Content: "What is 2+2?"}}
	ids, err := b.EncodePrompt(llm.Request{Messages: msgs})
	if err != nil {
		t.Fatal(err)
	}
	want := b.TokenizerImpl().Encode("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("chat prompt ids %v, want %v", ids, want)
	}
	out, err := b.Generate(context.Background(), llm.Request{Messages: msgs, Policy: "full", Sampling: llm.Sampling{MaxNew: 3, Temperature: 0.7, Seed: 1}})
	if err != nil || out.OutputTokens != 3 {
		t.Errorf("chat generate: %+v %v", out, err)
	}
	if info, err := b.ChatTemplate(); err != nil || info.Source != "built-in chatml" || info.Now != "" {
		t.Errorf("manifest info %+v %v", info, err)
	}
}

// modelWith copies the qwen2-tied fixture into a temporary directory with extra files (a
// tokenizer_config.json, a chat_template.jinja, ...).
func modelWith(t *testing.T, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} {
		b, err := os.ReadFile(filepath.Join(fixtureDir("qwen2-tied"), f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for f, text := range extra {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestChatTemplate checks that chat messages are rendered with the model's own template, its variables
// and clock, and that a model whose template is missing, refuses a conversation or uses a construct the
// engine lacks refuses chat requests with the reason while raw prompts still work.
func TestChatTemplate(t *testing.T) {
	ctx := context.Background()
	msgs := []llm.Message{{Role: "system", Content: "S"}, {Role: "user", Content: "Hi"}}
	cfg := `{"chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}{% if enable_thinking is false %}nothink{% endif %}{{ d }}{{ strftime_now('%Y') }}", "bos_token": {"content": "<B>"}}`
	dir := modelWith(t, map[string]string{"tokenizer_config.json": cfg})
	open := func(dir string, opts map[string]string) *Backend {
		t.Helper()
		o, err := ParseOptions(opts)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Open(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	b := open(dir, map[string]string{"chat_var.enable_thinking": "false", "chat_var.d": "26 Jul 2024", "chat_now": "2031-05-06"})
	text, err := b.RenderChat(msgs)
	if want := "<B>[system:S][user:Hi]nothink26 Jul 20242031"; err != nil || text != want {
		t.Errorf("rendered %q %v, want %q", text, err, want)
	}
	info, err := b.ChatTemplate()
	if err != nil || info.Source != "tokenizer_config.json" || len(info.SHA256) != 64 || info.Vars["enable_thinking"] != false ||
		info.Vars["d"] != "26 Jul 2024" || !strings.HasPrefix(info.Now, "2031-05-06T00:00:00") {
		t.Errorf("manifest info %+v %v", info, err)
	}
	ids, err := b.EncodePrompt(llm.Request{Messages: msgs})
	if err != nil || !reflect.DeepEqual(ids, b.TokenizerImpl().Encode(text)) {
		t.Errorf("EncodePrompt: %v %v", ids, err)
	}

	// chat_template.jinja replaces the config's template; chat_template=FILE replaces both.
	dir2 := modelWith(t, map[string]string{"tokenizer_config.json": cfg, "chat_template.jinja": "jinja:{{ messages|length }}"})
	if text, err := open(dir2, nil).RenderChat(msgs); err != nil || text != "jinja:2" {
		t.Errorf("chat_template.jinja: %q %v", text, err)
	}
	file := filepath.Join(t.TempDir(), "mine.jinja")
	os.WriteFile(file, []byte("mine:{{ bos_token }}"), 0o644)
	if text, err := open(dir2, map[string]string{"chat_template": file}).RenderChat(msgs); err != nil || text != "mine:<B>" {
		t.Errorf("chat_template option: %q %v", text, err)
	}

	// Gemma-2 refuses a system message: the error names the model and carries the template's message.
	gemma, err := os.ReadFile(filepath.Join("..", "..", "chat", "testdata", "templates", "google-gemma-2-2b-it.jinja"))
	if err != nil {
		t.Fatal(err)
	}
	g := open(modelWith(t, map[string]string{"chat_template.jinja": string(gemma)}), nil)
	_, err = g.Generate(ctx, llm.Request{Key: "k1", Messages: msgs, Policy: "full", Sampling: llm.Sampling{MaxNew: 1}})
	if want := "cpu backend: model " + g.text.Name + ": request k1: the chat template (chat_template.jinja) refuses the conversation: System role not supported"; err == nil || err.Error() != want {
		t.Errorf("refused conversation: %v, want %s", err, want)
	}

	// No template, or one the engine cannot render: chat requests fail with the reason, raw prompts work.
	for _, tc := range []struct {
		name, want string
		extra      map[string]string
	}{
		{"none", "no chat template", nil},
		{"unsupported", "unsupported Jinja construct: {% include %}", map[string]string{"chat_template.jinja": "{% include 'x' %}"}},
		{"syntax", "chat_template.jinja:1:7: template syntax error: Expected an expression", map[string]string{"chat_template.jinja": "{% if %}"}},
	} {
		nb := open(modelWith(t, tc.extra), nil)
		if _, err := nb.ChatTemplate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ChatTemplate() error %v, want %q", tc.name, err, tc.want)
		}
		if _, err := nb.EncodePrompt(llm.Request{Key: "k", Messages: msgs}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: chat request error %v, want %q", tc.name, err, tc.want)
		}
		if _, err := nb.EncodePrompt(llm.Request{Key: "k", Prompt: "raw"}); err != nil {
			t.Errorf("%s: raw prompt: %v", tc.name, err)
		}
	}
}

func TestChatOptionErrors(t *testing.T) {
	for opts, want := range map[string]string{
		"chat_var.":           "a variable name is needed",
		"chat_now=yesterday":  "chat_now",
		"chat_style=nope":     `unknown chat template style "nope"`,
		"chat_template=/nope": "option chat_template",
	} {
		k, v, _ := strings.Cut(opts, "=")
		o, err := ParseOptions(map[string]string{k: v})
		if err == nil {
			_, err = Open(fixtureDir("qwen2-tied"), o)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", opts, err, want)
		}
	}
	o, err := ParseOptions(map[string]string{"chat_style": "chatml", "chat_template": "x.jinja"})
	if err == nil {
		_, err = Open(fixtureDir("qwen2-tied"), o)
	}
	if err == nil || !strings.Contains(err.Error(), "exclude each other") {
		t.Errorf("style and file: %v", err)
	}
}

// TestWeightsOption checks the weights option: int8 quantizes the projections at load and changes the
// identity (a run does not resume across weight formats); its logits stay within a few percent of bf16's
// on the fixture and it generates; a bad value is an error naming the option.
func TestWeightsOption(t *testing.T) {
	b16, ref := openFixture(t, "llama-gqa", nil)
	b8, _ := openFixture(t, "llama-gqa", map[string]string{"weights": "int8"})
	if b8.Identity() != b16.Identity()+"+int8" {
		t.Errorf("int8 identity %q, bf16 %q", b8.Identity(), b16.Identity())
	}
	m16, m8 := b16.Engine().Model(), b8.Engine().Model()
	if m8.Weights() != "int8" || m16.Weights() != "bf16" {
		t.Fatalf("weights %s / %s", m8.Weights(), m16.Weights())
	}
	pool := model.NewPool(1)
	defer pool.Close()
	logits := func(m *model.Model, ids []int) []float32 {
		lg := make([]float32, m.Cfg.Vocab)
		if err := m.Forward(model.NewWorkspace(pool), []model.Segment{{Seq: m.NewSeq(64), Tokens: ids[:60], Logits: lg}}); err != nil {
			t.Fatal(err)
		}
		return lg
	}
	relErr := func(a, b []float32) float64 {
		var num, den float64
		for i := range a {
			num += float64((b[i] - a[i]) * (b[i] - a[i]))
			den += float64(a[i] * a[i])
		}
		return math.Sqrt(num / den)
	}
	if e := relErr(logits(m16, ref.PromptIDs), logits(m8, ref.PromptIDs)); e == 0 || e > 0.05 {
		t.Errorf("int8 logits differ from bf16 by %.4f (relative L2), want (0, 0.05]", e)
	}
	// Attention biases and tied embeddings (the output head is quantized, the embedding lookup stays bf16).
	q16, qref := openFixture(t, "qwen2-tied", nil)
	qm := q16.Engine().Model()
	if !qm.Cfg.TieEmbeddings || !qm.Cfg.AttentionBias {
		t.Fatalf("qwen2-tied fixture: tied %v, bias %v", qm.Cfg.TieEmbeddings, qm.Cfg.AttentionBias)
	}
	qi := qm.Int8()
	if qi.Embed.W == nil || qi.Embed.Q != nil || qi.LMHead.Q == nil {
		t.Fatal("int8 copy of a tied model: the embeddings must stay bf16 and the head be int8")
	}
	if e := relErr(logits(qm, qref.PromptIDs), logits(qi, qref.PromptIDs)); e == 0 || e > 0.05 {
		t.Errorf("qwen2-tied: int8 logits differ from bf16 by %.4f (relative L2), want (0, 0.05]", e)
	}
	ctx := context.Background()
	g8, err := b8.Engine().Generate(ctx, engine.Job{Prompt: ref.PromptIDs[:60], Policy: compress.MustParse("snapstream:budget=32"), MaxNew: 16})
	if err != nil || len(g8.Tokens) != 16 {
		t.Fatalf("int8 generate: %d tokens, %v", len(g8.Tokens), err)
	}
	// A policy with @int8 runs on the int8 copy of the bf16 backend's model: the bits of the int8 backend.
	prompt := b16.TokenizerImpl().Decode(ref.PromptIDs[:60])
	for _, spec := range []string{"full", "snapstream:budget=32"} {
		o8, err := b8.Generate(ctx, llm.Request{Key: "k", Prompt: prompt, Policy: spec, Sampling: llm.Sampling{MaxNew: 12}})
		if err != nil {
			t.Fatal(err)
		}
		o16, err := b16.Generate(ctx, llm.Request{Key: "k", Prompt: prompt, Policy: spec + "@int8", Sampling: llm.Sampling{MaxNew: 12}})
		if err != nil {
			t.Fatal(err)
		}
		if o16.Text != o8.Text || o16.Cache.Policy != spec+"@int8" {
			t.Errorf("%s@int8 on the bf16 backend: %q (cache policy %q), weights=int8 backend: %q", spec, o16.Text, o16.Cache.Policy, o8.Text)
		}
	}
	if _, err := backends.Open(ctx, "cpu", backends.Config{Model: fixtureDir("llama-gqa"), Options: map[string]string{"weights": "int4"}}); err == nil || !strings.Contains(err.Error(), "weights") {
		t.Errorf("weights=int4: err = %v", err)
	}
}

// TestMixedWeightsConcurrent runs bf16 and @int8 requests at once on one backend (two engines taking turns on
// one worker pool): each output is what the request gives alone.
func TestMixedWeightsConcurrent(t *testing.T) {
	b, ref := openFixture(t, "llama-gqa", map[string]string{"slots": "2", "threads": "2"})
	ctx := context.Background()
	prompt := b.TokenizerImpl().Decode(ref.PromptIDs[:50])
	specs := []string{"full", "full@int8", "snapstream:budget=32", "snapstream:budget=32@int8"}
	alone := make([]string, len(specs))
	for i, s := range specs {
		o, err := b.Generate(ctx, llm.Request{Key: s, Prompt: prompt, Policy: s, Sampling: llm.Sampling{MaxNew: 8}})
		if err != nil {
			t.Fatal(err)
		}
		alone[i] = o.Text
	}
	errs := make(chan error, 4*len(specs))
	for rep := 0; rep < 4; rep++ {
		for i, s := range specs {
			go func() {
				o, err := b.Generate(ctx, llm.Request{Key: s, Prompt: prompt, Policy: s, Sampling: llm.Sampling{MaxNew: 8}})
				if err == nil && o.Text != alone[i] {
					err = fmt.Errorf("%s: %q concurrently, %q alone", s, o.Text, alone[i])
				}
				errs <- err
			}()
		}
	}
	for range 4 * len(specs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
