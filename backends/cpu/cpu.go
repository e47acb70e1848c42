// Package cpu is snapeval's pure-Go reference backend: it loads a Hugging Face llama or qwen2
// checkpoint (config.json, model.safetensors[.index.json], tokenizer.json, generation_config.json,
// tokenizer_config.json) from a directory, a Hub repository or an fs.FS and generates with continuous
// batching under any cache policy of package compress. It registers itself as "cpu"; an empty model
// reference (or "snaptiny") opens the checkpoint embedded in package models.
package cpu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/cpu/engine"
	"github.com/snapeval/snapeval/backends/cpu/model"
	"github.com/snapeval/snapeval/backends/cpu/safetensors"
	"github.com/snapeval/snapeval/backends/cpu/sample"
	"github.com/snapeval/snapeval/backends/cpu/tokenizer"
	"github.com/snapeval/snapeval/backends/textgen"
	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/hub"
	"github.com/snapeval/snapeval/llm"
	"github.com/snapeval/snapeval/models"
)

func init() {
	backends.Register("cpu", func(ctx context.Context, cfg backends.Config) (backends.Backend, error) {
		opts, err := ParseOptions(cfg.Options)
		if err != nil {
			return nil, err
		}
		if cfg.Model == "" || cfg.Model == models.Name {
			if _, err := os.Stat(cfg.Model); cfg.Model == "" || err != nil {
				return OpenFS(models.SnapTiny, ".", models.Name, opts)
			}
		}
		dir, err := Resolve(ctx, hub.NewFromEnv(), cfg.Model)
		if err != nil {
			return nil, err
		}
		if dir != cfg.Model {
			opts.Name = cfg.Model
		}
		return Open(dir, opts)
	})
}

// Options configure the backend.
type Options struct {
	Engine engine.Options
	// Name names the model in Identity (default: the directory's base name).
	Name string
	// Chat chooses the chat template that renders chat messages and its variables.
	Chat ChatOptions
	// Weights is the weight format of the projections and output head: "" or "bf16" (the checkpoint's,
	// the default) or "int8" (quantized at load, one scale per row and 32 columns; model.Model.Int8).
	Weights string
}

// ChatOptions choose the chat template and its variables (textgen.ChatOptions).
type ChatOptions = textgen.ChatOptions

// ParseOptions reads backend options given as strings (flags or YAML): slots, threads, prefill_chunk,
// prefix_cache_mb (0 disables the prefix cache), memory_mb (the engine's memory budget,
// engine.Options.MemoryBytes; 0: the default), weights (bf16 or int8), and the chat template's:
// chat_style (a built-in template), chat_template (a Jinja file), chat_template_name (a named template of
// the model), chat_var.NAME (a template variable: JSON when the value parses as JSON, else the text) and
// chat_now (strftime_now's clock, RFC 3339 or YYYY-MM-DD). Unknown keys are errors.
func ParseOptions(m map[string]string) (Options, error) {
	var o Options
	for k, v := range m {
		if ok, err := textgen.ParseChatOption(&o.Chat, k, v); ok {
			if err != nil {
				return Options{}, fmt.Errorf("cpu backend: %w", err)
			}
			continue
		}
		n, err := strconv.Atoi(v)
		isInt := func() error {
			if err != nil || n < 0 {
				return fmt.Errorf("cpu backend: option %s=%q: want a non-negative integer", k, v)
			}
			return nil
		}
		switch k {
		case "slots":
			o.Engine.Slots = n
		case "threads":
			o.Engine.Threads = n
		case "prefill_chunk":
			o.Engine.PrefillChunk = n
		case "prefix_cache_mb":
			o.Engine.PrefixCacheBytes = int64(n) << 20
			if n == 0 {
				o.Engine.PrefixCacheBytes = -1
			}
		case "memory_mb":
			if err == nil && n > 1<<30 {
				return Options{}, fmt.Errorf("cpu backend: option %s=%q: too large", k, v)
			}
			o.Engine.MemoryBytes = int64(n) << 20
		case "weights":
			w, err := model.ParseWeights(v)
			if err != nil {
				return Options{}, fmt.Errorf("cpu backend: option %s: %w", k, err)
			}
			o.Weights = w
			continue
		default:
			return Options{}, fmt.Errorf("cpu backend: unknown option %q (known: slots, threads, prefill_chunk, prefix_cache_mb, memory_mb, weights, %s)", k, textgen.ChatOptionKeys)
		}
		if err := isInt(); err != nil {
			return Options{}, err
		}
	}
	return o, nil
}

// Backend is the cpu backend. It is safe for concurrent use.
type Backend struct {
	eng      *engine.Engine
	pool     *model.Pool // the kernels' workers, shared by eng and eng8
	opts     engine.Options
	mu8      sync.Mutex
	eng8     *engine.Engine // the int8 copy of the model, for policies with @int8 (started on first use)
	text     *textgen.Text
	identity string
	ck       *safetensors.Checkpoint
}

var _ backends.Backend = (*Backend)(nil)

// Open loads the model in directory dir, memory-mapping its weights.
func Open(dir string, opts Options) (*Backend, error) {
	if dir == "" {
		return nil, errors.New("cpu backend: no model directory given")
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("cpu backend: model %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("cpu backend: model %s is not a directory", dir)
	}
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		name = filepath.Base(filepath.Clean(dir))
	}
	b, err := build(os.DirFS(dir), ".", name, dir, ck, opts)
	if err != nil {
		ck.Close()
		return nil, err
	}
	return b, nil
}

// OpenFS loads the model in directory dir of fsys (for example an embed.FS); name names it in Identity.
func OpenFS(fsys fs.FS, dir, name string, opts Options) (*Backend, error) {
	ck, err := safetensors.OpenFS(fsys, dir)
	if err != nil {
		return nil, err
	}
	return build(fsys, dir, name, dir, ck, opts)
}

func build(fsys fs.FS, dir, name, display string, ck *safetensors.Checkpoint, opts Options) (*Backend, error) {
	read := func(file string) ([]byte, error) { return fs.ReadFile(fsys, path.Join(dir, file)) }
	where := func(file string) string { return filepath.Join(display, file) }
	cfgBytes, err := read("config.json")
	if err != nil {
		return nil, fmt.Errorf("cpu backend: %w", err)
	}
	cfg, err := model.ParseConfig(where("config.json"), cfgBytes)
	if err != nil {
		return nil, err
	}
	text, err := textgen.Load(fsys, dir, display, name, opts.Chat, "cpu backend")
	if err != nil {
		return nil, err
	}
	m, err := model.Load(cfg, ck)
	if err != nil {
		return nil, err
	}
	weights, err := model.ParseWeights(opts.Weights)
	if err != nil {
		return nil, fmt.Errorf("cpu backend: %w", err)
	}
	identity := "cpu:" + name + "@" + safetensors.Fingerprint(cfgBytes, ck)
	if weights == "int8" {
		m = m.Int8()
		identity += "+int8" // other weights, other outputs: a run does not resume across them
	}
	eo := opts.Engine
	eo.Pool = model.NewPool(eo.Threads)
	return &Backend{eng: engine.New(m, eo), pool: eo.Pool, opts: eo, text: text, ck: ck, identity: identity}, nil
}

// Engine returns the underlying engine// Engine returns the underlying engine (token-level API).
func (b *Backend) Engine() *engine.Engine { return b.eng }

// Identity names the engine, model and weights fingerprint ("cpu:SmolLM2-135M@0123456789ab").
func (b *Backend) Identity() string { return b.identity }

// Tokenizer returns the model's tokenizer.
func (b *Backend) Tokenizer() llm.Tokenizer { return b.text.Tok }

// TokenizerJSON returns the tokenizer.json the model's tokenizer was read from (what `snapeval serve` publishes).
func (b *Backend) TokenizerJSON() []byte { return b.text.TokJSON }

// TokenizerImpl returns the concrete tokenizer.
func (b *Backend) TokenizerImpl() *tokenizer.Tokenizer { return b.text.Tok }

// ChatTemplate implements backends.ChatTemplater (textgen.Text.ChatTemplate).
func (b *Backend) ChatTemplate() (llm.ChatTemplateInfo, error) { return b.text.ChatTemplate() }

// RenderChat renders chat messages into the prompt text, with the generation prompt, as transformers'
// apply_chat_template(messages, add_generation_prompt=True, tokenize=False) does with the same template
// and variables.
func (b *Backend) RenderChat(msgs []llm.Message) (string, error) { return b.text.RenderChat(msgs) }

// Shape is the KV-relevant shape of the model, with the element size the cache is held in.
func (b *Backend) Shape() llm.ModelShape {
	c := b.eng.Model().Cfg
	return llm.ModelShape{Layers: c.Layers, KVHeads: c.KVHeads, HeadDim: c.HeadDim, ElemBytes: engine.ElemBytes}
}

// CheckPolicy accepts every policy package compress parses, "@int8" included, whose cache fits the model's
// positions and the engine's memory budget (engine.Engine.CheckPolicy).
func (b *Backend) CheckPolicy(spec string) error {
	pol, err := compress.Parse(spec)
	if err != nil {
		return err
	}
	return b.eng.CheckPolicy(pol)
}

// engineFor is the engine that runs pol: for pol.Weights int8 an engine on the int8 copy of the model
// (quantized on first use, sharing the worker pool), else the backend's own (which is int8 already with
// the option weights=int8).
func (b *Backend) engineFor(pol compress.Policy) *engine.Engine {
	if pol.Weights != compress.WeightsInt8 || b.eng.Model().Weights() == compress.WeightsInt8 {
		return b.eng
	}
	b.mu8.Lock()
	defer b.mu8.Unlock()
	if b.eng8 == nil {
		b.eng8 = engine.New(b.eng.Model().Int8(), b.opts)
	}
	return b.eng8
}

// Close stops the engines and unmaps the weights.
func (b *Backend) Close() error {
	b.eng.Close()
	b.mu8.Lock()
	if b.eng8 != nil {
		b.eng8.Close()
	}
	b.mu8.Unlock()
	b.pool.Close()
	return b.ck.Close()
}

// EncodePrompt tokenizes a request's prompt as Render does.
func (b *Backend) EncodePrompt(req llm.Request) ([]int, error) { return b.text.EncodePrompt(req) }

// Render returns what the model is fed for req (textgen.Text.Render): errors wrap llm.ErrBadRequest.
func (b *Backend) Render(req llm.Request) (string, []int, error) { return b.text.Render(req) }

// Generate runs one request. Sampling.MaxNew 0 means the rest of the model's context.
func (b *Backend) Generate(ctx context.Context, req llm.Request) (llm.Output, error) {
	spec := req.Policy
	if spec == "" {
		spec = "full"
	}
	pol, err := compress.Parse(spec)
	if err != nil {
		return llm.Output{}, err
	}
	ids, err := b.EncodePrompt(req)
	if err != nil {
		return llm.Output{}, err
	}
	maxNew := req.Sampling.MaxNew
	if maxNew <= 0 {
		maxNew = b.eng.Model().Cfg.MaxPositions - len(ids)
	}
	st := textgen.NewStopper(b.text.Tok, req.Sampling.Stop)
	res, err := b.engineFor(pol).Generate(ctx, engine.Job{
		Prompt: ids, Policy: pol, MaxNew: maxNew, EOS: b.text.EOS, OnToken: st.Add,
		Sampling: sample.Params{Temperature: req.Sampling.Temperature, TopP: req.Sampling.TopP, TopK: req.Sampling.TopK, Seed: req.Sampling.Seed},
	})
	if err != nil {
		if req.Key != "" && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("request %s: %w", req.Key, err)
		}
		return llm.Output{}, err
	}
	text := st.Text()
	if st.Stopped() {
		res.Finish = "stop"
	}
	return llm.Output{
		Text: text, PromptTokens: len(ids), OutputTokens: len(res.Tokens), FinishReason: res.Finish,
		PrefillMS: float64(res.Prefill.Microseconds()) / 1000, DecodeMS: float64(res.Decode.Microseconds()) / 1000,
		Cache:  llm.CacheInfo{Policy: pol.String(), Capacity: res.Plan.Capacity, KVBytes: res.KVBytes},
		Seeded: true,
	}, nil
}

var (
	_ backends.ChatTemplater = (*Backend)(nil)
	_ backends.Shaper        = (*Backend)(nil)
	_ backends.Renderer      = (*Backend)(nil)
)
