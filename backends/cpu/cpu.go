// Package cpu is snapeval's pure-Go reference backend: it loads a Hugging Face llama or qwen2
// checkpoint (config.json, model.safetensors[.index.json], tokenizer.json, generation_config.json,
// tokenizer_config.json) from a directory, a Hub repository or an fs.FS and generates with continuous
// batching under any cache policy of package compress. It registers itself as "cpu"; an empty model
// reference (or "snaptiny") opens the checkpoint embedded in package models.
package cpu

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/cpu/engine"
	"github.com/snapeval/snapeval/backends/cpu/model"
	"github.com/snapeval/snapeval/backends/cpu/safetensors"
	"github.com/snapeval/snapeval/backends/cpu/sample"
	"github.com/snapeval/snapeval/backends/cpu/tokenizer"
	"github.com/snapeval/snapeval/chat"
	"github.com/snapeval/snapeval/chat/jinja"
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

// ChatOptions choose the chat template and its variables. By default the model's own template renders
// chat messages (chat_template.jinja, or tokenizer_config.json's chat_template: see package chat).
type ChatOptions struct {
	// Style replaces the model's template with a built-in one (chat.Styles).
	Style string
	// File replaces the model's template with a Jinja file.
	File string
	// Name picks one of the model's named templates ("" picks "default").
	Name string
	// Vars are extra template variables (enable_thinking, date_string, ...).
	Vars map[string]any
	// Now is strftime_now's clock; zero means the time the backend was opened, fixed for its life.
	Now time.Time
}

// ParseOptions reads backend options given as strings (flags or YAML): slots, threads, prefill_chunk,
// prefix_cache_mb (0 disables the prefix cache), memory_mb (the engine's memory budget,
// engine.Options.MemoryBytes; 0: the default), weights (bf16 or int8), and the chat template's:
// chat_style (a built-in template), chat_template (a Jinja file), chat_template_name (a named template of
// the model), chat_var.NAME (a template variable: JSON when the value parses as JSON, else the text) and
// chat_now (strftime_now's clock, RFC 3339 or YYYY-MM-DD). Unknown keys are errors.
func ParseOptions(m map[string]string) (Options, error) {
	var o Options
	for k, v := range m {
		if name, ok := strings.CutPrefix(k, "chat_var."); ok {
			if name == "" {
				return Options{}, fmt.Errorf("cpu backend: option %s: a variable name is needed after chat_var.", k)
			}
			if o.Chat.Vars == nil {
				o.Chat.Vars = map[string]any{}
			}
			o.Chat.Vars[name] = chat.ParseVar(v)
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
		case "chat_style":
			o.Chat.Style = v
			continue
		case "chat_template":
			o.Chat.File = v
			continue
		case "chat_template_name":
			o.Chat.Name = v
			continue
		case "chat_now":
			t, err := parseNow(v)
			if err != nil {
				return Options{}, fmt.Errorf("cpu backend: option %s=%q: %w", k, v, err)
			}
			o.Chat.Now = t
			continue
		case "weights":
			w, err := model.ParseWeights(v)
			if err != nil {
				return Options{}, fmt.Errorf("cpu backend: option %s: %w", k, err)
			}
			o.Weights = w
			continue
		default:
			return Options{}, fmt.Errorf("cpu backend: unknown option %q (known: slots, threads, prefill_chunk, prefix_cache_mb, memory_mb, weights, chat_style, chat_template, chat_template_name, chat_var.NAME, chat_now)", k)
		}
		if err := isInt(); err != nil {
			return Options{}, err
		}
	}
	return o, nil
}

// parseNow reads a chat_now clock: RFC 3339, or a date (midnight, local time).
func parseNow(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02", v, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("want RFC 3339 (2024-07-26T10:00:00Z) or a date (2024-07-26)")
	}
	return t, nil
}

// Backend is the cpu backend. It is safe for concurrent use.
type Backend struct {
	eng      *engine.Engine
	pool     *model.Pool // the kernels' workers, shared by eng and eng8
	opts     engine.Options
	mu8      sync.Mutex
	eng8     *engine.Engine // the int8 copy of the model, for policies with @int8 (started on first use)
	tok      *tokenizer.Tokenizer
	name     string
	chat     *chat.Template // nil when chat messages cannot be rendered (chatErr says why)
	chatErr  error
	chatVars map[string]any
	tokJSON  []byte // the tokenizer.json tok was parsed from
	eos      []int
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
	eos := cfg.EOS
	if b, err := read("generation_config.json"); err == nil {
		g, err := model.ParseGenerationConfig(where("generation_config.json"), b)
		if err != nil {
			return nil, err
		}
		if len(g.EOS) > 0 {
			eos = g.EOS
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	tokBytes, err := read("tokenizer.json")
	if err != nil {
		return nil, fmt.Errorf("cpu backend: %w", err)
	}
	tok, err := tokenizer.Parse(tokBytes, where("tokenizer.json"))
	if err != nil {
		return nil, err
	}
	if b, err := read(tokenizer.ConfigFile); err == nil {
		if tok, err = tok.WithConfig(b, where(tokenizer.ConfigFile)); err != nil {
			return nil, err
		}
	}
	tmpl, chatErr := loadChatTemplate(fsys, dir, display, opts.Chat)
	if chatErr != nil && (opts.Chat.Style != "" || opts.Chat.File != "") {
		return nil, fmt.Errorf("cpu backend: %w", chatErr)
	}
	if tmpl != nil {
		now := opts.Chat.Now
		if now.IsZero() {
			now = time.Now()
		}
		tmpl.Now = func() time.Time { return now }
	}
	m, err := model.Load(cfg, ck)
	if err != nil {
		return nil, err
	}
	weights, err := model.ParseWeights(opts.Weights)
	if err != nil {
		return nil, fmt.Errorf("cpu backend: %w", err)
	}
	identity := "cpu:" + name + "@" + fingerprint(cfgBytes, ck)
	if weights == "int8" {
		m = m.Int8()
		identity += "+int8" // other weights, other outputs: a run does not resume across them
	}
	eo := opts.Engine
	eo.Pool = model.NewPool(eo.Threads)
	return &Backend{eng: engine.New(m, eo), pool: eo.Pool, opts: eo, tok: tok, tokJSON: tokBytes, name: name, chat: tmpl, chatErr: chatErr,
		chatVars: opts.Chat.Vars, eos: eos, ck: ck, identity: identity}, nil
}

// loadChatTemplate finds the template that renders chat messages: a built-in style or a Jinja file when
// the options name one (an error is then fatal), else the model's own. A model without one, or with one
// this engine cannot render, still serves raw prompts: the error says why chat messages are refused.
func loadChatTemplate(fsys fs.FS, dir, display string, o ChatOptions) (*chat.Template, error) {
	switch {
	case o.Style != "" && o.File != "":
		return nil, errors.New("options chat_style and chat_template exclude each other")
	case o.Style != "":
		var tokens map[string]any
		if b, err := fs.ReadFile(fsys, path.Join(dir, "tokenizer_config.json")); err == nil {
			tokens, _ = chat.SpecialTokens(b, "tokenizer_config.json")
		}
		return chat.Builtin(o.Style, tokens)
	case o.File != "":
		text, err := os.ReadFile(o.File)
		if err != nil {
			return nil, fmt.Errorf("option chat_template: %w", err)
		}
		var tokens map[string]any
		if b, err := fs.ReadFile(fsys, path.Join(dir, "tokenizer_config.json")); err == nil {
			if tokens, err = chat.SpecialTokens(b, filepath.Join(display, "tokenizer_config.json")); err != nil {
				return nil, err
			}
		}
		return chat.New(o.File, string(text), tokens)
	}
	return chat.Load(fsys, dir, chat.Choice{Name: o.Name})
}

// fingerprint hashes config.json and every tensor's name, dtype, shape and data (sampled: the first
// and last 4 KiB and the length), so that Identity changes with the weights without reading them all.
func fingerprint(cfg []byte, ck *safetensors.Checkpoint) string {
	h := sha256.New()
	h.Write(cfg)
	var n [8]byte
	for _, name := range ck.Names() {
		t := ck.Tensors[name]
		fmt.Fprintf(h, "%s %s %v\n", name, t.DType, t.Shape)
		binary.LittleEndian.PutUint64(n[:], uint64(len(t.Data)))
		h.Write(n[:])
		k := min(len(t.Data), 4096)
		h.Write(t.Data[:k])
		h.Write(t.Data[len(t.Data)-k:])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// Engine returns the underlying engine (token-level API).
func (b *Backend) Engine() *engine.Engine { return b.eng }

// Identity names the engine, model and weights fingerprint ("cpu:SmolLM2-135M@0123456789ab").
func (b *Backend) Identity() string { return b.identity }

// Tokenizer returns the model's tokenizer.
func (b *Backend) Tokenizer() llm.Tokenizer { return b.tok }

// TokenizerJSON returns the tokenizer.json the model's tokenizer was read from (what `snapeval serve` publishes).
func (b *Backend) TokenizerJSON() []byte { return b.tokJSON }

// TokenizerImpl returns the concrete tokenizer.
func (b *Backend) TokenizerImpl() *tokenizer.Tokenizer { return b.tok }

// ChatTemplate implements backends.ChatTemplater: it describes the template that renders chat messages (for
// the manifest), or says why there is none (chat.ErrNoTemplate when the model has no template; a parse or
// unsupported-construct error when this engine cannot render it).
func (b *Backend) ChatTemplate() (llm.ChatTemplateInfo, error) {
	if b.chat == nil {
		return llm.ChatTemplateInfo{}, fmt.Errorf("model %s: %w", b.name, b.chatErr)
	}
	info := llm.ChatTemplateInfo{Source: b.chat.Source, SHA256: b.chat.SHA256}
	if len(b.chatVars) > 0 {
		info.Vars = map[string]any{}
		for k, v := range b.chatVars {
			info.Vars[k] = jinja.ToGo(v)
		}
	}
	if b.chat.Uses("strftime_now") {
		info.Now = b.chat.Now().Format(time.RFC3339)
	}
	return info, nil
}

// RenderChat renders chat messages into the prompt text, with the generation prompt, as transformers'
// apply_chat_template(messages, add_generation_prompt=True, tokenize=False) does with the same template
// and variables.
func (b *Backend) RenderChat(msgs []llm.Message) (string, error) {
	text, err := b.renderChat(msgs)
	if err != nil {
		return "", fmt.Errorf("cpu backend: model %s: %w", b.name, err)
	}
	return text, nil
}

func (b *Backend) renderChat(msgs []llm.Message) (string, error) {
	if b.chat == nil {
		return "", fmt.Errorf("chat messages need a chat template: %w (set option chat_style or chat_template)", b.chatErr)
	}
	return b.chat.Render(chat.Conversation{Messages: chat.Messages(msgs), AddGenerationPrompt: true, Vars: b.chatVars})
}

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
func (b *Backend) EncodePrompt(req llm.Request) ([]int, error) {
	_, ids, err := b.Render(req)
	return ids, err
}

// Render returns what the model is fed for req: Messages rendered with the model's chat template (its special
// tokens written in the text) and encoded, or the raw Prompt with the tokenizer's post-processor tokens (BOS for
// llama) as transformers' encode(add_special_tokens=True) adds them.
func (b *Backend) Render(req llm.Request) (string, []int, error) {
	switch {
	case len(req.Messages) > 0 && req.Prompt != "":
		return "", nil, badRequest{fmt.Errorf("cpu backend: request %s sets both messages and prompt", req.Key)}
	case len(req.Messages) > 0:
		text, err := b.renderChat(req.Messages)
		if err != nil {
			return "", nil, badRequest{fmt.Errorf("cpu backend: model %s: request %s: %w", b.name, req.Key, err)}
		}
		return text, b.tok.Encode(text), nil
	case req.Prompt != "":
		return req.Prompt, b.tok.EncodeWithSpecial(req.Prompt), nil
	}
	return "", nil, badRequest{fmt.Errorf("cpu backend: request %s has neither messages nor prompt", req.Key)}
}

// badRequest marks a request the model cannot be fed as the caller's mistake (llm.ErrBadRequest: a server
// answers 400), keeping the error's text.
type badRequest struct{ error }

func (e badRequest) Is(target error) bool { return target == llm.ErrBadRequest }
func (e badRequest) Unwrap() error        { return e.error }

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
	st := newStopper(b.tok, req.Sampling.Stop)
	res, err := b.engineFor(pol).Generate(ctx, engine.Job{
		Prompt: ids, Policy: pol, MaxNew: maxNew, EOS: b.eos, OnToken: st.add,
		Sampling: sample.Params{Temperature: req.Sampling.Temperature, TopP: req.Sampling.TopP, TopK: req.Sampling.TopK, Seed: req.Sampling.Seed},
	})
	if err != nil {
		if req.Key != "" && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("request %s: %w", req.Key, err)
		}
		return llm.Output{}, err
	}
	text := st.text()
	if st.cut >= 0 {
		res.Finish = "stop"
	}
	return llm.Output{
		Text: text, PromptTokens: len(ids), OutputTokens: len(res.Tokens), FinishReason: res.Finish,
		PrefillMS: float64(res.Prefill.Microseconds()) / 1000, DecodeMS: float64(res.Decode.Microseconds()) / 1000,
		Cache:  llm.CacheInfo{Policy: pol.String(), Capacity: res.Plan.Capacity, KVBytes: res.KVBytes},
		Seeded: true,
	}, nil
}

// stopper accumulates the decoded text and ends generation at the first stop string, which is
// trimmed from the output (as OpenAI-compatible servers do).
type stopper struct {
	dec   *tokenizer.StreamDecoder
	stops []string
	buf   strings.Builder
	cut   int // -1 until a stop string is found
}

func newStopper(tok *tokenizer.Tokenizer, stops []string) *stopper {
	d := tok.NewStreamDecoder()
	d.SkipSpecial = true
	s := &stopper{dec: d, cut: -1}
	for _, x := range stops {
		if x != "" {
			s.stops = append(s.stops, x)
		}
	}
	return s
}

func (s *stopper) add(tok int) bool {
	delta := s.dec.Add(tok)
	if delta == "" || len(s.stops) == 0 {
		s.buf.WriteString(delta)
		return false
	}
	old := s.buf.Len()
	s.buf.WriteString(delta)
	return s.search(old)
}

// search looks for a stop string ending in the text added after offset old.
func (s *stopper) search(old int) bool {
	text := s.buf.String()
	best := -1
	for _, x := range s.stops {
		from := max(0, old-len(x)+1)
		if i := strings.Index(text[from:], x); i >= 0 && (best < 0 || from+i < best) {
			best = from + i
		}
	}
	if best >= 0 {
		s.cut = best
		return true
	}
	return false
}

func (s *stopper) text() string {
	if s.cut >= 0 {
		return s.buf.String()[:s.cut]
	}
	old := s.buf.Len()
	s.buf.WriteString(s.dec.Flush())
	if len(s.stops) > 0 && s.search(old) {
		return s.buf.String()[:s.cut]
	}
	return s.buf.String()
}

var (
	_ backends.ChatTemplater = (*Backend)(nil)
	_ backends.Shaper        = (*Backend)(nil)
	_ backends.Renderer      = (*Backend)(nil)
)
