// Package torch is snapeval's GPU backend: it runs Hugging Face checkpoints with PyTorch and transformers in a worker
// process under every cache policy of package compress, exactly as the cpu backend does, and registers itself as
// "torch".
//
// The worker (worker/snapworker, Python, embedded in the binary and unpacked into the user cache on first use,
// keyed by its content hash) loads the model with a custom attention function registered through transformers'
// AttentionInterface: every forward runs with use_cache=False and explicit position ids, and that function owns a
// fixed-size slot cache per sequence laid out by the compress.Plan this package sends with each request. Prefill runs
// per sequence, SnapKV selects the top-K at the end of each sequence's own prefill, and sequences of any policy join
// and leave the decode batch at any step (continuous batching with static shapes).
//
// Tokenization, chat templates, stop strings and EOS stay in Go (package textgen, shared with the cpu backend): the
// worker takes token ids and returns token ids. The protocol is one JSON object per line over the worker's stdin and
// stdout (protocol.go, snapworker/protocol.py); its stderr goes to a log file (torch-worker.log in the run
// directory). A worker that dies (killed, CUDA error) is restarted and each request it held is retried once; a
// request that fails twice is an error with the worker's message. No Python, torch or transformers, no GPU, a model
// whose attention cannot be compressed or a GPU too small for it are setup errors (SetupError) before the run.
package torch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/cpu"
	"github.com/snapeval/snapeval/backends/cpu/safetensors"
	"github.com/snapeval/snapeval/backends/textgen"
	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/datasets"
	"github.com/snapeval/snapeval/hub"
	"github.com/snapeval/snapeval/llm"
	"github.com/snapeval/snapeval/models"
)

func init() {
	backends.Register("torch", func(ctx context.Context, cfg backends.Config) (backends.Backend, error) {
		opts, err := ParseOptions(cfg.Options)
		if err != nil {
			return nil, err
		}
		dir, err := resolveModel(ctx, cfg.Model, &opts)
		if err != nil {
			return nil, err
		}
		return Open(ctx, dir, opts)
	})
}

// resolveModel turns the model reference into a checkpoint directory: "" or "snaptiny" is the embedded model
// (unpacked into the cache), an existing directory is used as is, "org/name[@rev]" is fetched from the Hub.
func resolveModel(ctx context.Context, ref string, opts *Options) (string, error) {
	if ref == "" || ref == models.Name {
		if _, err := os.Stat(ref); ref == "" || err != nil {
			if opts.Name == "" {
				opts.Name = models.Name
			}
			return unpack(models.SnapTiny, ".", filepath.Join(datasets.CacheDir(), "torch"), "model-"+models.Name)
		}
	}
	dir, err := cpu.Resolve(ctx, hub.NewFromEnv(), ref)
	if err != nil {
		return "", err
	}
	if dir != ref && opts.Name == "" {
		opts.Name = ref
	}
	return dir, nil
}

// Options configure the backend.
type Options struct {
	// Python is the interpreter with torch and transformers (default "python3").
	Python string
	// Device is the torch device (default "cuda:0"; "cpu" runs on the CPU).
	Device string
	// DType is the weights' and cache's dtype: bfloat16 (default), float16 or float32 (TF32 off).
	DType string
	// MaxBatch is the most sequences in one step (default 32).
	MaxBatch int
	// KVMemoryBytes is the KV pool: requests wait for admission while the caches in flight would exceed it
	// (default 60% of the device memory free after loading the model; 4 GiB on the CPU). With TP > 1 it is the
	// total over the ranks, each holding 1/TP of it (default: TP times 60% of the least free on one device).
	KVMemoryBytes int64
	// Attn is the prefill attention kernel: sdpa (default) or flash (the flash-attn package).
	Attn string
	// PrefillTokens is the most prompt tokens admitted into one step (default 16384; a longer prompt runs alone).
	PrefillTokens int
	// NoStaticDecode turns the KV pool off: every sequence allocates its own cache at admission and decodes in the
	// packed forward (static_decode=false).
	NoStaticDecode bool
	// NoCUDAGraphs runs the static decode step eagerly instead of replaying CUDA graphs (cuda_graphs=false).
	NoCUDAGraphs bool
	// DecodeAttn is the static decode step's attention kernel: auto (default: the fastest, timed per batch size;
	// the Triton kernel only in bfloat16/float16 and after a startup check against sdpa), sdpa, split or triton.
	DecodeAttn string
	// Chat chooses the chat template that renders chat messages and its variables (as the cpu backend's).
	Chat textgen.ChatOptions
	// RandomWeights initialises the weights from config.json on the device instead of loading them (a model of a
	// given shape with no download: capacity and speed runs).
	RandomWeights bool
	// TP is the tensor parallelism: the worker runs as TP processes, one per device (cuda:K..cuda:K+TP-1 from
	// device=cuda:K, or TP CPU processes with gloo), each holding 1/TP of the heads and their KV caches (default 1).
	// It must divide the model's KV heads.
	TP int
	// Name names the model in Identity (default: the directory's base name).
	Name string
	// Command, when set, replaces the worker command (python -m snapworker ARGS...); the tests run a fake worker.
	Command []string
	// Env is added to the worker's environment.
	Env []string
}

// optionKeys are the --backend-opt keys ParseOptions knows.
const optionKeys = "python, device, dtype, max_batch, kv_memory_gib, attn, prefill_tokens, random_weights, static_decode, " +
	"cuda_graphs, decode_attn, tp, " + textgen.ChatOptionKeys

// ParseOptions reads backend options given as strings (flags or YAML). Unknown keys are errors.
func ParseOptions(m map[string]string) (Options, error) {
	var o Options
	for k, v := range m {
		if ok, err := textgen.ParseChatOption(&o.Chat, k, v); ok {
			if err != nil {
				return Options{}, fmt.Errorf("torch backend: %w", err)
			}
			continue
		}
		bad := func(want string) error {
			return fmt.Errorf("torch backend: option %s=%q: want %s", k, v, want)
		}
		switch k {
		case "python":
			o.Python = v
		case "device":
			if v != "cpu" && v != "cuda" && !strings.HasPrefix(v, "cuda:") {
				return Options{}, bad("cpu, cuda or cuda:N")
			}
			o.Device = v
		case "dtype":
			switch v {
			case "bfloat16", "float16", "float32":
			default:
				return Options{}, bad("bfloat16, float16 or float32")
			}
			o.DType = v
		case "max_batch", "prefill_tokens", "tp":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return Options{}, bad("a positive integer")
			}
			switch k {
			case "max_batch":
				o.MaxBatch = n
			case "prefill_tokens":
				o.PrefillTokens = n
			default:
				o.TP = n
			}
		case "kv_memory_gib":
			g, err := strconv.ParseFloat(v, 64)
			if err != nil || !(g > 0) || g > 1<<20 {
				return Options{}, bad("a positive number of GiB")
			}
			o.KVMemoryBytes = int64(g * (1 << 30))
		case "attn":
			if v != "sdpa" && v != "flash" {
				return Options{}, bad("sdpa or flash")
			}
			o.Attn = v
		case "random_weights", "static_decode", "cuda_graphs":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Options{}, bad("true or false")
			}
			switch k {
			case "random_weights":
				o.RandomWeights = b
			case "static_decode":
				o.NoStaticDecode = !b
			default:
				o.NoCUDAGraphs = !b
			}
		case "decode_attn":
			if v != "auto" && v != "sdpa" && v != "split" && v != "triton" {
				return Options{}, bad("auto, sdpa, split or triton")
			}
			o.DecodeAttn = v
		default:
			return Options{}, fmt.Errorf("torch backend: unknown option %q (known: %s)", k, optionKeys)
		}
	}
	return o, nil
}

func (o Options) withDefaults() Options {
	if o.Python == "" {
		o.Python = "python3"
	}
	if o.Device == "" {
		o.Device = "cuda:0"
	}
	if o.DType == "" {
		o.DType = "bfloat16"
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 32
	}
	if o.Attn == "" {
		o.Attn = "sdpa"
	}
	if o.PrefillTokens == 0 {
		o.PrefillTokens = 16384
	}
	if o.DecodeAttn == "" {
		o.DecodeAttn = "auto"
	}
	if o.TP == 0 {
		o.TP = 1
	}
	return o
}

// workerArgs are the worker's command-line arguments for a model directory (after python -m snapworker).
func (o Options) workerArgs(dir string) []string {
	args := []string{"--model", dir, "--device", o.Device, "--dtype", o.DType, "--max-batch", strconv.Itoa(o.MaxBatch),
		"--prefill-tokens", strconv.Itoa(o.PrefillTokens), "--attn", o.Attn, "--decode-attn", o.DecodeAttn}
	if o.RandomWeights {
		args = append(args, "--random-weights")
	}
	if o.KVMemoryBytes > 0 {
		args = append(args, "--kv-pool-bytes", strconv.FormatInt(o.KVMemoryBytes, 10))
	}
	if o.NoStaticDecode {
		args = append(args, "--static-decode", "off")
	}
	if o.NoCUDAGraphs {
		args = append(args, "--cuda-graphs", "off")
	}
	if o.TP > 1 {
		args = append(args, "--tp", strconv.Itoa(o.TP))
	}
	return args
}

// Backend is the torch backend. It is safe for concurrent use.
type Backend struct {
	text     *textgen.Text
	opts     Options
	identity string
	log      *logSink
	sup      *supervisor
	info     Info
	pool     *kvPool
}

var (
	_ backends.Backend       = (*Backend)(nil)
	_ backends.Inspector     = (*Backend)(nil)
	_ backends.ChatTemplater = (*Backend)(nil)
	_ backends.Shaper        = (*Backend)(nil)
	_ backends.Renderer      = (*Backend)(nil)
	_ backends.Describer     = (*Backend)(nil)
	_ backends.LogKeeper     = (*Backend)(nil)
)

// Open starts a worker on the checkpoint in directory dir and waits until its model is loaded. Problems of the
// installation, the device or the model are *SetupError.
func Open(ctx context.Context, dir string, opts Options) (*Backend, error) {
	opts = opts.withDefaults()
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("torch backend: model %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("torch backend: model %s is not a directory", dir)
	}
	name := opts.Name
	if name == "" {
		name = filepath.Base(filepath.Clean(dir))
	}
	text, err := textgen.Load(os.DirFS(dir), ".", dir, name, opts.Chat, "torch backend")
	if err != nil {
		return nil, err
	}
	if err := checkTP(dir, opts.TP); err != nil {
		return nil, err
	}
	fp, err := fingerprint(dir, opts.RandomWeights)
	if err != nil {
		return nil, err
	}
	cache := datasets.CacheDir()
	log, err := openLog(filepath.Join(cache, "torch", "logs", fmt.Sprintf("worker-%s-%d.log", time.Now().UTC().Format("20060102-150405"), os.Getpid())))
	if err != nil {
		return nil, fmt.Errorf("torch backend: worker log: %w", err)
	}
	sp := spawn{argv: opts.Command, env: opts.Env, log: log}
	if len(sp.argv) == 0 {
		wd, err := workerDir(cache)
		if err != nil {
			log.close()
			return nil, err
		}
		sp.argv = append([]string{opts.Python, "-m", "snapworker"}, opts.workerArgs(dir)...)
		pp := wd
		if old := os.Getenv("PYTHONPATH"); old != "" {
			pp += string(os.PathListSeparator) + old
		}
		sp.env = append([]string{"PYTHONPATH=" + pp, "PYTHONUNBUFFERED=1"}, sp.env...)
	}
	if opts.TP > 1 {
		sp.env = append(sp.env, noMulticast...)
	}
	sup := &supervisor{start: func(ctx context.Context) (*worker, error) { return startWorker(ctx, sp) }, log: log}
	w, err := sup.get(ctx)
	if err != nil {
		log.close()
		return nil, err
	}
	b := &Backend{text: text, opts: opts, log: log, sup: sup, info: w.info}
	if w.info.DType != "" && w.info.DType != opts.DType {
		b.Close()
		return nil, &SetupError{Msg: fmt.Sprintf("the worker loaded the model in %s, not %s", w.info.DType, opts.DType)}
	}
	if tp := max(w.info.TP, 1); tp != opts.TP {
		b.Close()
		return nil, &SetupError{Msg: fmt.Sprintf("the worker runs tp=%d, not %d (the worker code does not match this snapeval)", tp, opts.TP)}
	}
	b.identity = "torch:" + name + "@" + fp + "+" + opts.DType
	if opts.TP > 1 {
		b.identity += fmt.Sprintf("+tp%d", opts.TP)
	}
	kv := w.info.KVPoolBytes // the pool the worker allocated, over all ranks (its rows bound admission too)
	if kv == 0 {
		kv = opts.KVMemoryBytes
	}
	if kv == 0 {
		kv = int64(float64(w.info.FreeBytes) * 0.6)
		if !strings.HasPrefix(opts.Device, "cuda") {
			kv = 4 << 30
		}
	}
	if kv <= 0 {
		b.Close()
		return nil, &SetupError{Msg: fmt.Sprintf("%s has %.2f GiB free after loading the model: too small for any KV cache; use a larger GPU or a smaller dtype",
			w.info.GPU, float64(w.info.FreeBytes)/(1<<30))}
	}
	b.pool = newKVPool(kv)
	return b, nil
}

// fingerprint names the weights: safetensors.Fingerprint of the checkpoint, or of config.json alone for random
// weights.
func fingerprint(dir string, random bool) (string, error) {
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return "", fmt.Errorf("torch backend: %w", err)
	}
	if random {
		h := sha256.Sum256(cfg)
		return hex.EncodeToString(h[:])[:12] + "-random", nil
	}
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		return "", err
	}
	defer ck.Close()
	return safetensors.Fingerprint(cfg, ck), nil
}

// Identity names the engine, model, weights fingerprint and dtype ("torch:Llama-3.1-8B@0123456789ab+bfloat16"),
// and the tensor parallelism when above 1 ("...+bfloat16+tp2"): another dtype gives other outputs, and so may
// another split of the sums (in the last bits), so a run does not resume across dtypes or tp.
func (b *Backend) Identity() string { return b.identity }

// Tokenizer returns the model's tokenizer.
func (b *Backend) Tokenizer() llm.Tokenizer { return b.text.Tok }

// ChatTemplate implements backends.ChatTemplater, as the cpu backend does (textgen.Text.ChatTemplate).
func (b *Backend) ChatTemplate() (llm.ChatTemplateInfo, error) { return b.text.ChatTemplate() }

// RenderChat renders chat messages into the prompt text with the model's chat template, as the cpu backend does.
func (b *Backend) RenderChat(msgs []llm.Message) (string, error) { return b.text.RenderChat(msgs) }

// TokenizerJSON returns the tokenizer.json the model's tokenizer was read from (what `snapeval serve` publishes).
func (b *Backend) TokenizerJSON() []byte { return b.text.TokJSON }

// EncodePrompt tokenizes a request's prompt as the cpu backend does (textgen.Text.EncodePrompt).
func (b *Backend) EncodePrompt(req llm.Request) ([]int, error) { return b.text.EncodePrompt(req) }

// Render returns what the model is fed for req (textgen.Text.Render), as the cpu backend does.
func (b *Backend) Render(req llm.Request) (string, []int, error) { return b.text.Render(req) }

// WorkerInfo is what the worker reported when it started.
func (b *Backend) WorkerInfo() Info { return b.info }

// Shape is the KV-relevant shape of the model, with the element size of the cache (the dtype's).
func (b *Backend) Shape() llm.ModelShape {
	return llm.ModelShape{Layers: b.info.Layers, KVHeads: b.info.KVHeads, HeadDim: b.info.HeadDim, ElemBytes: b.info.ElemBytes}
}

// BackendInfo is what the run manifest records about the engine: software versions, device, dtype and pool.
func (b *Backend) BackendInfo() map[string]string {
	i := b.info
	return map[string]string{
		"engine": "torch", "torch": i.Torch, "transformers": i.Transformers, "python": i.Python, "device": i.Device,
		"gpu": i.GPU, "dtype": i.DType, "attn": i.Attn, "tf32": strconv.FormatBool(i.TF32), "architecture": i.Architecture,
		"max_batch": strconv.Itoa(b.opts.MaxBatch), "kv_pool_bytes": strconv.FormatInt(b.pool.cap, 10),
		"worker_version": workerVersion(), "random_weights": strconv.FormatBool(b.opts.RandomWeights),
		"static_decode": strconv.FormatBool(i.StaticDecode), "cuda_graphs": strconv.FormatBool(i.CUDAGraphs),
		"decode_attn": i.DecodeAttn, "pool_rows": strconv.Itoa(i.PoolRows), "pool_capacity": strconv.Itoa(i.PoolCapacity),
		"tp": strconv.Itoa(b.opts.TP),
	}
}

// SetLogDir moves the worker log to dir/torch-worker.log (the run directory) and notes the running worker there.
func (b *Backend) SetLogDir(dir string) error {
	if err := b.log.reopen(filepath.Join(dir, logName)); err != nil {
		return err
	}
	b.sup.mu.Lock()
	w := b.sup.cur
	b.sup.mu.Unlock()
	if w != nil && w.alive() {
		b.log.printf("snapeval: worker pid %d running (%s %s on %s)", w.pid, w.info.Architecture, w.info.DType, w.info.GPU)
	}
	return nil
}

// LogPath is the worker log being written.
func (b *Backend) LogPath() string { return b.log.Path() }

// CheckPolicy accepts every cache policy of package compress (docs/policies.md): the SnapStream spec's and
// rerotate, knorm, kvquant, h2o, tova, pyramidkv and adakv; @int8 weights are the cpu backend's only, and adakv
// (top-K slots moved between all KV heads of a layer) needs every head in one process: tp=1.
func (b *Backend) CheckPolicy(spec string) error {
	p, err := compress.Parse(spec)
	if err != nil {
		return err
	}
	if p.Weights != "" {
		return fmt.Errorf("policy %s: the torch backend runs the checkpoint's weights in %s; @%s weights are the cpu backend's", spec, b.opts.DType, p.Weights)
	}
	if p.Method == compress.MethodAdaKV && b.opts.TP > 1 {
		return fmt.Errorf("policy %s: adakv allocates top-K slots across all KV heads of a layer, which tp=%d splits between processes; run it with tp=1", spec, b.opts.TP)
	}
	return nil
}

// Close shuts the worker down (killing it after 30 s) and closes the log.
func (b *Backend) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b.sup.close(ctx)
	b.log.close()
	return nil
}

// job is one generation at the token level.
type job struct {
	prompt     []int
	pol        compress.Policy
	maxNew     int
	eos        []int
	sampling   wireSampling
	stops      []string
	wantKept   bool
	wantLogits bool
	margins    bool
}

// result is a job's outcome.
type result struct {
	tokens []int
	text   string
	finish string
	plan   compress.Plan
	kv     int64
	done   event
}

// Generate runs one request. Sampling.MaxNew 0 means the rest of the model's context.
func (b *Backend) Generate(ctx context.Context, req llm.Request) (llm.Output, error) {
	spec := req.Policy
	if spec == "" {
		spec = "full"
	}
	if err := b.CheckPolicy(spec); err != nil {
		return llm.Output{}, err
	}
	pol, _ := compress.Parse(spec)
	ids, err := b.text.EncodePrompt(req)
	if err != nil {
		return llm.Output{}, err
	}
	maxNew := req.Sampling.MaxNew
	if maxNew <= 0 {
		maxNew = b.info.MaxPositions - len(ids)
	}
	s := req.Sampling
	res, err := b.run(ctx, job{prompt: ids, pol: pol, maxNew: maxNew, eos: b.text.EOS, stops: s.Stop,
		sampling: wireSampling{Temperature: s.Temperature, TopP: s.TopP, TopK: s.TopK, Seed: s.Seed}})
	if err != nil {
		if req.Key != "" && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("request %s: %w", req.Key, err)
		}
		return llm.Output{}, err
	}
	return llm.Output{
		Text: res.text, PromptTokens: len(ids), OutputTokens: len(res.tokens), FinishReason: res.finish,
		PrefillMS: res.done.Prefill, DecodeMS: res.done.Decode,
		Cache:  llm.CacheInfo{Policy: pol.String(), Capacity: res.plan.Capacity, KVBytes: res.kv},
		Seeded: true,
	}, nil
}

// Inspect prefills ids under policy spec and decodes maxNew greedy tokens ignoring EOS (snapeval inspect).
func (b *Backend) Inspect(ctx context.Context, ids []int, spec string, maxNew int) (backends.InspectResult, error) {
	if err := b.CheckPolicy(spec); err != nil {
		return backends.InspectResult{}, err
	}
	pol, _ := compress.Parse(spec)
	if maxNew < 0 {
		return backends.InspectResult{}, fmt.Errorf("inspect: max new tokens %d is negative", maxNew)
	}
	res, err := b.run(ctx, job{prompt: ids, pol: pol, maxNew: maxNew, wantKept: true, wantLogits: true})
	if err != nil {
		return backends.InspectResult{}, err
	}
	return backends.InspectResult{PromptIDs: ids, Policy: pol.String(), Capacity: res.plan.Capacity, KVBytes: res.kv,
		Kept: res.done.Kept, Greedy: res.tokens, LogitsLast: res.done.Logits}, nil
}

// Trace is one request's token-level outcome, for tools that compare engines or measure long contexts.
type Trace struct {
	Prompt []int  `json:"prompt_tokens"`
	Tokens []int  `json:"tokens"`
	Text   string `json:"text"`
	Finish string `json:"finish"`
	// Margins are the top-1/top-2 logit gaps of every generated token.
	Margins   []float64 `json:"margins"`
	Capacity  int       `json:"capacity"`
	KVBytes   int64     `json:"kv_bytes"`
	PrefillMS float64   `json:"prefill_ms"`
	DecodeMS  float64   `json:"decode_ms"`
	// PeakBytes is the device's peak allocated memory when the request ended (0 on the CPU).
	PeakBytes int64 `json:"peak_bytes"`
}

// Trace runs a request as Generate does (its prompt already tokenized: ids) and returns its tokens and margins.
func (b *Backend) Trace(ctx context.Context, ids []int, spec string, s llm.Sampling) (Trace, error) {
	if err := b.CheckPolicy(spec); err != nil {
		return Trace{}, err
	}
	pol, _ := compress.Parse(spec)
	maxNew := s.MaxNew
	if maxNew <= 0 {
		maxNew = b.info.MaxPositions - len(ids)
	}
	res, err := b.run(ctx, job{prompt: ids, pol: pol, maxNew: maxNew, eos: b.text.EOS, stops: s.Stop, margins: true,
		sampling: wireSampling{Temperature: s.Temperature, TopP: s.TopP, TopK: s.TopK, Seed: s.Seed}})
	if err != nil {
		return Trace{}, err
	}
	return Trace{Prompt: ids, Tokens: res.tokens, Text: res.text, Finish: res.finish, Margins: res.done.Margins,
		Capacity: res.plan.Capacity, KVBytes: res.kv, PrefillMS: res.done.Prefill, DecodeMS: res.done.Decode,
		PeakBytes: res.done.Peak}, nil
}

// run checks a job, waits for room in the KV pool and runs it on the worker, retrying once on a new worker when
// the one it ran on died (or ran out of memory).
func (b *Backend) run(ctx context.Context, j job) (result, error) {
	L := len(j.prompt)
	if L == 0 {
		return result{}, errors.New("torch backend: empty prompt")
	}
	if j.maxNew < 0 {
		return result{}, fmt.Errorf("torch backend: max new tokens %d is negative", j.maxNew)
	}
	if b.info.MaxPositions > 0 && L+j.maxNew > b.info.MaxPositions {
		return result{}, fmt.Errorf("prompt of %d tokens + %d new tokens exceeds the model's %d positions: %w",
			L, j.maxNew, b.info.MaxPositions, llm.ErrContextOverflow)
	}
	for i, t := range j.prompt {
		if t < 0 || t >= b.info.Vocab {
			return result{}, fmt.Errorf("torch backend: prompt token %d (index %d) outside the vocabulary of %d", t, i, b.info.Vocab)
		}
	}
	plan, err := j.pol.Plan(L, j.maxNew)
	if err != nil {
		return result{}, err
	}
	// kv is what the records count (kvquant: the packed size; pyramidkv: the layers' mean capacity); held is what
	// the worker's KV pool holds for the sequence (wp.Slots slots in the cache's dtype).
	kv := j.pol.KVBytes(plan.Capacity, b.info.Layers, b.info.KVHeads, b.info.HeadDim, b.info.ElemBytes)
	wp := toWire(plan, b.info.Layers)
	held := compress.KVBytes(wp.Slots, b.info.Layers, b.info.KVHeads, b.info.HeadDim, b.info.ElemBytes)
	if c := b.info.PoolCapacity; c > 0 && (wp.Slots+c-1)/c > b.info.PoolRows {
		return result{}, fmt.Errorf("a cache of %d slots needs %d rows of the KV pool's %d rows of %d slots (kv_memory_gib, max_batch): %w",
			wp.Slots, (wp.Slots+c-1)/c, b.info.PoolRows, c, llm.ErrContextOverflow)
	}
	if held > b.pool.cap {
		return result{}, fmt.Errorf("a cache of %d slots needs %.2f GiB, more than the KV pool's %.2f GiB (kv_memory_gib): %w",
			wp.Slots, float64(held)/(1<<30), float64(b.pool.cap)/(1<<30), llm.ErrContextOverflow)
	}
	sampling := j.sampling
	cmd := command{Prompt: j.prompt, Plan: &wp, MaxNew: j.maxNew, EOS: j.eos, Sampling: &sampling,
		WantKept: j.wantKept, WantLogits: j.wantLogits, WantMargins: j.margins}
	for attempt := 1; ; attempt++ {
		release, err := b.pool.acquire(ctx, held)
		if err != nil {
			return result{}, err
		}
		w, err := b.sup.get(ctx)
		if err != nil {
			release()
			return result{}, fmt.Errorf("torch backend: restarting the worker: %w", err)
		}
		st := textgen.NewStopper(b.text.Tok, j.stops)
		toks, done, err := w.do(ctx, cmd, st.Add, release)
		if err == nil {
			finish := done.Finish
			if st.Stopped() {
				finish = "stop"
			} else if finish == "canceled" {
				return result{}, errors.New("torch backend: the worker cancelled a request nobody cancelled")
			}
			return result{tokens: toks, text: st.Text(), finish: finish, plan: plan, kv: kv, done: done}, nil
		}
		var died *diedError
		var rerr *requestError
		retry := errors.As(err, &died) || (errors.As(err, &rerr) && rerr.kind == "oom")
		if !retry || attempt == 2 || ctx.Err() != nil {
			return result{}, err
		}
		b.log.printf("snapeval: retrying a request of %d prompt tokens (%s) after: %v", L, j.pol, err)
	}
}

// supervisor keeps one live worker: a dead one is replaced by the next request that needs it.
type supervisor struct {
	start func(ctx context.Context) (*worker, error)
	log   *logSink

	mu       sync.Mutex
	cur      *worker
	restarts int
	closed   bool
}

// get returns the live worker, starting one (the first, or a replacement) when there is none.
func (s *supervisor) get(ctx context.Context) (*worker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("torch backend: closed")
	}
	if s.cur != nil && s.cur.alive() {
		return s.cur, nil
	}
	if s.cur != nil {
		s.restarts++
		s.log.printf("snapeval: restarting the worker (restart %d)", s.restarts)
	}
	w, err := s.start(ctx)
	if err != nil {
		return nil, err
	}
	s.cur = w
	return w, nil
}

// Restarts is how many times a dead worker has been replaced.
func (b *Backend) Restarts() int {
	b.sup.mu.Lock()
	defer b.sup.mu.Unlock()
	return b.sup.restarts
}

func (s *supervisor) close(ctx context.Context) {
	s.mu.Lock()
	w := s.cur
	s.closed = true
	s.mu.Unlock()
	if w != nil {
		w.stop(ctx)
	}
}
