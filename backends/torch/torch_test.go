package torch

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snapeval/snapeval/backends"
	"github.com/snapeval/snapeval/backends/textgen"
	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/llm"
)

// fixture is a conformance checkpoint: the Go side reads its tokenizer and config; the fake worker runs it.
var fixture = filepath.Join("..", "cpu", "testdata", "models", "llama-gqa")

// openFake opens the backend on the fake worker with extra environment (FAKE_* knobs).
func openFake(t *testing.T, env ...string) *Backend {
	t.Helper()
	t.Setenv("SNAPEVAL_CACHE", t.TempDir())
	b, err := Open(context.Background(), fixture, Options{Command: []string{os.Args[0]},
		Env: append([]string{"SNAPEVAL_FAKE_WORKER=1"}, env...), KVMemoryBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// want is what the fake worker generates for a request: tokens, the text and the finish reason.
func want(t *testing.T, b *Backend, req llm.Request, maxNew int) ([]int, string, string) {
	t.Helper()
	ids, err := b.EncodePrompt(req)
	if err != nil {
		t.Fatal(err)
	}
	s := req.Sampling
	ws := wireSampling{Temperature: s.Temperature, TopP: s.TopP, TopK: s.TopK, Seed: s.Seed}
	st := textgen.NewStopper(b.text.Tok, s.Stop)
	var toks []int
	finish := "length"
	for i := range maxNew {
		tok := fakeToken(ids, ws, i, b.info.Vocab)
		if contains(b.text.EOS, tok) {
			finish = "stop"
			break
		}
		toks = append(toks, tok)
		if st.Add(tok) {
			finish = "stop"
			break
		}
	}
	return toks, st.Text(), finish
}

func contains(xs []int, x int) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func TestParseOptions(t *testing.T) {
	good := map[string]string{"python": "/opt/py/bin/python3", "device": "cuda:1", "dtype": "float32", "max_batch": "8",
		"kv_memory_gib": "1.5", "attn": "flash", "prefill_tokens": "4096", "chat_style": "chatml", "random_weights": "true",
		"static_decode": "false", "cuda_graphs": "0", "decode_attn": "split", "tp": "4"}
	o, err := ParseOptions(good)
	if err != nil {
		t.Fatal(err)
	}
	wantOpts := Options{Python: "/opt/py/bin/python3", Device: "cuda:1", DType: "float32", MaxBatch: 8, KVMemoryBytes: 3 << 29,
		Attn: "flash", PrefillTokens: 4096, Chat: textgen.ChatOptions{Style: "chatml"}, RandomWeights: true,
		NoStaticDecode: true, NoCUDAGraphs: true, DecodeAttn: "split", TP: 4}
	if !reflect.DeepEqual(o, wantOpts) {
		t.Errorf("ParseOptions = %+v, want %+v", o, wantOpts)
	}
	for _, k := range []string{"auto", "sdpa", "split", "triton"} {
		if o, err := ParseOptions(map[string]string{"decode_attn": k}); err != nil || o.DecodeAttn != k {
			t.Errorf("ParseOptions(decode_attn=%s) = %q, %v", k, o.DecodeAttn, err)
		}
	}
	for _, bad := range []map[string]string{{"device": "tpu"}, {"dtype": "int8"}, {"max_batch": "0"}, {"kv_memory_gib": "-1"},
		{"kv_memory_gib": "NaN"}, {"attn": "eager"}, {"random_weights": "maybe"}, {"cuda_graphs": "yes"}, {"decode_attn": "flash"},
		{"threads": "4"}, {"prefill_tokens": "x"}, {"tp": "0"}, {"tp": "two"}} {
		if _, err := ParseOptions(bad); err == nil {
			t.Errorf("ParseOptions(%v) accepted", bad)
		} else if !strings.Contains(err.Error(), "torch backend: ") {
			t.Errorf("ParseOptions(%v): %v does not name the backend", bad, err)
		}
	}
}

func TestGenerateOnFakeWorker(t *testing.T) {
	b := openFake(t)
	if b.Identity() != "torch:llama-gqa@"+mustFingerprint(t)+"+bfloat16" {
		t.Errorf("Identity = %q", b.Identity())
	}
	if got := b.Shape(); got != (llm.ModelShape{Layers: 2, KVHeads: 2, HeadDim: 16, ElemBytes: 2}) {
		t.Errorf("Shape = %+v", got)
	}
	if bi := b.BackendInfo(); bi["gpu"] != "Fake GPU" || bi["torch"] != "0.0-fake" || bi["dtype"] != "bfloat16" {
		t.Errorf("BackendInfo = %v", bi)
	}
	cases := []struct {
		name string
		req  llm.Request
	}{
		{"greedy", llm.Request{Prompt: "the cat sat", Policy: "snapstream:budget=64", Sampling: llm.Sampling{MaxNew: 12}}},
		{"sampled", llm.Request{Prompt: "the cat sat", Policy: "full", Sampling: llm.Sampling{MaxNew: 9, Temperature: 0.8, TopP: 0.9, Seed: 1<<63 + 5}}},
		{"streaming", llm.Request{Prompt: "a b c d e", Policy: "streaming:sinks=4,recent=16", Sampling: llm.Sampling{MaxNew: 20}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := b.Generate(context.Background(), c.req)
			if err != nil {
				t.Fatal(err)
			}
			toks, text, finish := want(t, b, c.req, c.req.Sampling.MaxNew)
			ids, _ := b.EncodePrompt(c.req)
			plan, _ := compress.MustParse(c.req.Policy).Plan(len(ids), c.req.Sampling.MaxNew)
			if out.Text != text || out.OutputTokens != len(toks) || out.FinishReason != finish || out.PromptTokens != len(ids) {
				t.Errorf("got %q %d %s, want %q %d %s", out.Text, out.OutputTokens, out.FinishReason, text, len(toks), finish)
			}
			if out.Cache.Capacity != plan.Capacity || out.Cache.KVBytes != compress.KVBytes(plan.Capacity, 2, 2, 16, 2) ||
				out.Cache.Policy != compress.MustParse(c.req.Policy).String() || !out.Seeded || out.PrefillMS != 1.5 || out.DecodeMS != 2.5 {
				t.Errorf("output %+v", out)
			}
		})
	}
}

func mustFingerprint(t *testing.T) string {
	fp, err := fingerprint(fixture, false)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func TestStopStringsAndEOS(t *testing.T) {
	b := openFake(t)
	base := llm.Request{Prompt: "stop here", Policy: "full", Sampling: llm.Sampling{MaxNew: 30}}
	toks, full, _ := want(t, b, base, 30)
	// A stop string taken from the middle of the text: the output ends before it, finish "stop", and the worker is
	// told to cancel.
	piece := b.text.Tok.DecodeSkipSpecial(toks[5:7])
	if strings.TrimSpace(piece) == "" || !strings.Contains(full, piece) {
		t.Skipf("fake text %q has no usable stop string", full)
	}
	req := base
	req.Sampling.Stop = []string{piece}
	out, err := b.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	wantToks, wantText, _ := want(t, b, req, 30)
	if out.Text != wantText || out.FinishReason != "stop" || out.OutputTokens != len(wantToks) || strings.Contains(out.Text, piece) {
		t.Errorf("stop: got %q (%d tokens, %s), want %q (%d tokens)", out.Text, out.OutputTokens, out.FinishReason, wantText, len(wantToks))
	}
	if !logHas(t, b, "cancel ") {
		t.Error("the worker was not told to cancel the stopped request")
	}
	// EOS: the fourth token is declared EOS.
	b.text.EOS = []int{toks[3]}
	out, err = b.Generate(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	if out.FinishReason != "stop" || out.OutputTokens != 3 {
		t.Errorf("eos: %d tokens, finish %s; want 3, stop", out.OutputTokens, out.FinishReason)
	}
}

func logHas(t *testing.T, b *Backend, s string) bool {
	t.Helper()
	for range 50 {
		data, _ := os.ReadFile(b.LogPath())
		if strings.Contains(string(data), s) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func TestSetupErrors(t *testing.T) {
	t.Setenv("SNAPEVAL_CACHE", t.TempDir())
	cases := []struct {
		name string
		opts Options
		want []string
	}{
		{"setup event", Options{Command: []string{os.Args[0]}, Env: []string{"SNAPEVAL_FAKE_WORKER=1", "FAKE_SETUP=Python 3.12 cannot import transformers: pip install transformers"}},
			[]string{"torch backend setup: ", "pip install transformers"}},
		{"dies before ready", Options{Command: []string{os.Args[0]}, Env: []string{"SNAPEVAL_FAKE_WORKER=1", "FAKE_DIE_EARLY=1"}},
			[]string{"torch backend setup: ", "exit status 1", "No module named 'torch'"}},
		{"no python", Options{Python: filepath.Join(t.TempDir(), "python3")},
			[]string{"cannot run", "pip install torch transformers", "python=PATH"}},
		{"wrong dtype", Options{Command: []string{os.Args[0]}, Env: []string{"SNAPEVAL_FAKE_WORKER=1", "FAKE_DTYPE=float16"}},
			[]string{"loaded the model in float16, not bfloat16"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(context.Background(), fixture, c.opts)
			var se *SetupError
			if !errors.As(err, &se) {
				t.Fatalf("Open: %v, want a *SetupError", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestWorkerCrashIsRetriedOnce(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "crashed")
	b := openFake(t, "FAKE_CRASH_AFTER=10", "FAKE_MARK="+mark)
	var wg sync.WaitGroup
	outs := make([]llm.Output, 6)
	errs := make([]error, 6)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i], errs[i] = b.Generate(context.Background(), llm.Request{Prompt: fmt.Sprintf("request %d", i), Policy: "snapkv:topk=16,window=4,kernel=3", Sampling: llm.Sampling{MaxNew: 15}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, text, _ := want(t, b, llm.Request{Prompt: fmt.Sprintf("request %d", i)}, 15)
		if outs[i].Text != text {
			t.Errorf("request %d after the restart: %q, want %q", i, outs[i].Text, text)
		}
	}
	if _, err := os.Stat(mark); err != nil {
		t.Fatal("the worker never crashed: the test proves nothing")
	}
	if b.Restarts() != 1 {
		t.Errorf("Restarts = %d, want 1", b.Restarts())
	}
}

func TestWorkerDyingTwiceIsAnErrorWithItsMessage(t *testing.T) {
	b := openFake(t, "FAKE_CRASH_AFTER=3")
	_, err := b.Generate(context.Background(), llm.Request{Key: "bench/q1/full/0", Prompt: "x", Sampling: llm.Sampling{MaxNew: 10}})
	var died *diedError
	if !errors.As(err, &died) {
		t.Fatalf("Generate: %v, want the worker's death", err)
	}
	for _, w := range []string{"request bench/q1/full/0", "CUDA error: an illegal memory access", "killed"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if b.Restarts() != 1 {
		t.Errorf("Restarts = %d, want 1 (one retry, not more)", b.Restarts())
	}
	// The next request starts a fresh worker again (and dies again: this fake always does).
	if _, err := b.Generate(context.Background(), llm.Request{Prompt: "y", Sampling: llm.Sampling{MaxNew: 2}}); err != nil {
		t.Errorf("a short request on a fresh worker: %v", err)
	}
}

func TestOutOfMemoryIsRetried(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "oom")
	b := openFake(t, "FAKE_OOM_MARK="+mark)
	out, err := b.Generate(context.Background(), llm.Request{Prompt: "memory", Sampling: llm.Sampling{MaxNew: 4}})
	if err != nil || out.OutputTokens != 4 {
		t.Fatalf("Generate after an oom: %+v, %v", out, err)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Fatal("no oom was injected")
	}
	if b.Restarts() != 0 {
		t.Errorf("an oom restarted the worker")
	}
}

func TestProtocolErrorRestartsTheWorker(t *testing.T) {
	b := openFake(t, "FAKE_GARBAGE=1")
	_, err := b.Generate(context.Background(), llm.Request{Prompt: "garbage", Sampling: llm.Sampling{MaxNew: 5}})
	if err == nil || !strings.Contains(err.Error(), "not a JSON event") {
		t.Fatalf("Generate: %v, want the protocol error", err)
	}
	if b.Restarts() != 1 {
		t.Errorf("Restarts = %d, want 1", b.Restarts())
	}
}

func TestRequestErrors(t *testing.T) {
	t.Setenv("SNAPEVAL_CACHE", t.TempDir())
	b, err := Open(context.Background(), fixture, Options{Command: []string{os.Args[0]}, Env: []string{"SNAPEVAL_FAKE_WORKER=1", "FAKE_MAXPOS=64"},
		KVMemoryBytes: compress.KVBytes(40, 2, 2, 16, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if _, err := b.Generate(ctx, llm.Request{Prompt: "x", Sampling: llm.Sampling{MaxNew: 100}}); !errors.Is(err, llm.ErrContextOverflow) {
		t.Errorf("past max positions: %v", err)
	}
	if _, err := b.Generate(ctx, llm.Request{Prompt: "x", Sampling: llm.Sampling{MaxNew: 50}}); !errors.Is(err, llm.ErrContextOverflow) || !strings.Contains(err.Error(), "KV pool") {
		t.Errorf("past the KV pool: %v", err)
	}
	if out, err := b.Generate(ctx, llm.Request{Prompt: "x", Policy: "streaming:sinks=4,recent=16", Sampling: llm.Sampling{MaxNew: 50}}); err != nil || out.Cache.Capacity != 20 {
		t.Errorf("a small cache fits: %+v %v", out, err)
	}
	// kvquant: the records count the packed size; the pool holds the dequantized values in the model's dtype, so a
	// quantized cache longer than the pool does not fit although its packed size would.
	q := compress.MustParse("kvquant:bits=4")
	if out, err := b.Generate(ctx, llm.Request{Prompt: "x", Policy: "kvquant:bits=4", Sampling: llm.Sampling{MaxNew: 10}}); err != nil {
		t.Errorf("kvquant: %v", err)
	} else if sh := b.Shape(); out.Cache.KVBytes != q.KVBytes(out.Cache.Capacity, sh.Layers, sh.KVHeads, sh.HeadDim, sh.ElemBytes) ||
		out.Cache.KVBytes >= compress.KVBytes(out.Cache.Capacity, sh.Layers, sh.KVHeads, sh.HeadDim, sh.ElemBytes) {
		t.Errorf("kvquant: KV bytes %d for %d slots, want the packed count", out.Cache.KVBytes, out.Cache.Capacity)
	}
	if _, err := b.Generate(ctx, llm.Request{Prompt: "x", Policy: "kvquant:bits=2", Sampling: llm.Sampling{MaxNew: 50}}); !errors.Is(err, llm.ErrContextOverflow) {
		t.Errorf("kvquant past the KV pool: %v", err)
	}
	if _, err := b.Generate(ctx, llm.Request{Prompt: "x", Policy: "snapstream:budget=16@int8"}); err == nil || !strings.Contains(err.Error(), "cpu backend") {
		t.Errorf("int8 policy: %v", err)
	}
	if err := b.CheckPolicy("snapstream:budget=16@int8"); err == nil {
		t.Error("CheckPolicy accepted @int8")
	}
	if err := b.CheckPolicy("snapkv:topk=8"); err != nil {
		t.Error(err)
	}
	for _, spec := range []string{"kvquant:bits=4", "kvquant:bits=8,group=64", "h2o:budget=8", "pyramidkv:budget=64"} {
		if err := b.CheckPolicy(spec); err != nil {
			t.Errorf("CheckPolicy(%q): %v", spec, err)
		}
	}
	if _, err := b.Generate(ctx, llm.Request{Messages: []llm.Message{{Role: "user", Content: "hi"}}}); err == nil || !strings.Contains(err.Error(), "chat template") {
		t.Errorf("chat without a template: %v", err)
	}
	if _, err := b.Inspect(ctx, []int{1, 2, 99999}, "full", 2); err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
		t.Errorf("bad token: %v", err)
	}
}

func TestPoolRowsBoundCapacity(t *testing.T) {
	t.Setenv("SNAPEVAL_CACHE", t.TempDir())
	b, err := Open(context.Background(), fixture, Options{Command: []string{os.Args[0]}, Env: []string{"SNAPEVAL_FAKE_WORKER=1", "FAKE_POOL=2,16"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if b.pool.cap != compress.KVBytes(32, 2, 2, 16, 2) {
		t.Errorf("Go's pool = %d bytes, want the worker's (2 rows of 16 slots)", b.pool.cap)
	}
	if bi := b.BackendInfo(); bi["pool_rows"] != "2" || bi["pool_capacity"] != "16" || bi["static_decode"] != "true" {
		t.Errorf("BackendInfo = %v", bi)
	}
	if out, err := b.Generate(ctx, llm.Request{Prompt: "x", Policy: "streaming:sinks=4,recent=16", Sampling: llm.Sampling{MaxNew: 5}}); err != nil || out.Cache.Capacity != 20 {
		t.Errorf("two rows: %+v %v", out, err)
	}
	_, err = b.Generate(ctx, llm.Request{Prompt: "x", Policy: "streaming:sinks=4,recent=30", Sampling: llm.Sampling{MaxNew: 5}})
	if !errors.Is(err, llm.ErrContextOverflow) || !strings.Contains(err.Error(), "needs 3 rows") {
		t.Errorf("three rows of two: %v", err)
	}
}

func TestWorkerArgs(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{}, "--model D --device cuda:0 --dtype bfloat16 --max-batch 32 --prefill-tokens 16384 --attn sdpa --decode-attn auto"},
		{Options{RandomWeights: true, KVMemoryBytes: 1 << 30, NoStaticDecode: true, NoCUDAGraphs: true, DecodeAttn: "split", TP: 2},
			"--model D --device cuda:0 --dtype bfloat16 --max-batch 32 --prefill-tokens 16384 --attn sdpa --decode-attn split " +
				"--random-weights --kv-pool-bytes 1073741824 --static-decode off --cuda-graphs off --tp 2"},
		{Options{TP: 1}, "--model D --device cuda:0 --dtype bfloat16 --max-batch 32 --prefill-tokens 16384 --attn sdpa --decode-attn auto"},
	} {
		if got := strings.Join(c.o.withDefaults().workerArgs("D"), " "); got != c.want {
			t.Errorf("workerArgs(%+v) =\n%s\nwant\n%s", c.o, got, c.want)
		}
	}
}

func TestAdmissionWaitsForTheKVPool(t *testing.T) {
	t.Setenv("SNAPEVAL_CACHE", t.TempDir())
	one := compress.KVBytes(36, 2, 2, 16, 2) // snapstream:budget=36
	b, err := Open(context.Background(), fixture, Options{Command: []string{os.Args[0]}, Env: []string{"SNAPEVAL_FAKE_WORKER=1"}, KVMemoryBytes: one + one/2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Generate(context.Background(), llm.Request{Prompt: fmt.Sprint(i), Policy: "snapstream:budget=36", Sampling: llm.Sampling{MaxNew: 20}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	data, _ := os.ReadFile(b.LogPath())
	if strings.Contains(string(data), "active 2") {
		t.Errorf("two caches were in the worker at once with room for one:\n%s", data)
	}
	if !strings.Contains(string(data), "active 1") {
		t.Errorf("no step logged:\n%s", data)
	}
	if b.pool.inUse() != 0 {
		t.Errorf("pool holds %d bytes after every request ended", b.pool.inUse())
	}
}

func TestCancelledContext(t *testing.T) {
	b := openFake(t)
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	// A stop function that cancels the context on the first token: Generate must return ctx.Err().
	req := llm.Request{Prompt: "long", Sampling: llm.Sampling{MaxNew: 4000}}
	go func() {
		for b.pool.inUse() == 0 {
			time.Sleep(time.Millisecond)
		}
		once.Do(cancel)
	}()
	if _, err := b.Generate(ctx, req); !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate: %v, want context.Canceled", err)
	}
	if !logHas(t, b, "cancel 1") {
		t.Error("the worker was not told to cancel")
	}
	for range 100 {
		if b.pool.inUse() == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("the KV pool was not released after the worker ended the cancelled request")
}

func TestInspectOnFakeWorker(t *testing.T) {
	b := openFake(t)
	var ins backends.Inspector = b
	res, err := ins.Inspect(context.Background(), []int{5, 6, 7, 8, 9, 10, 11, 12}, "streaming:sinks=2,recent=4", 3)
	if err != nil {
		t.Fatal(err)
	}
	if res.Capacity != 6 || res.Policy != "streaming:sinks=2,recent=4" || len(res.Greedy) != 3 {
		t.Errorf("Inspect = %+v", res)
	}
	if !reflect.DeepEqual(res.Kept[1][1], []int{0, 1, 4, 5, 6, 7}) {
		t.Errorf("kept = %v", res.Kept)
	}
	if len(res.LogitsLast) != 3 || res.LogitsLast[0] != 0.5 || !math.IsNaN(float64(res.LogitsLast[1])) {
		t.Errorf("logits = %v", res.LogitsLast)
	}
}

func TestTrace(t *testing.T) {
	b := openFake(t)
	ids := []int{5, 6, 7, 8}
	tr, err := b.Trace(context.Background(), ids, "snapstream:budget=16", llm.Sampling{MaxNew: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Tokens) != 5 || len(tr.Margins) != 5 || tr.Margins[4] != 1 || tr.PeakBytes != 12345 || tr.Capacity != 16 {
		t.Errorf("Trace = %+v", tr)
	}
	if tr.Tokens[2] != fakeToken(ids, wireSampling{}, 2, b.info.Vocab) {
		t.Errorf("tokens %v", tr.Tokens)
	}
}

func TestLogMovesToTheRunDirectory(t *testing.T) {
	b := openFake(t)
	dir := t.TempDir()
	if err := b.SetLogDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Generate(context.Background(), llm.Request{Prompt: "log", Sampling: llm.Sampling{MaxNew: 2}}); err != nil {
		t.Fatal(err)
	}
	if b.LogPath() != filepath.Join(dir, logName) || !logHas(t, b, "step 1 active 1") || !logHas(t, b, "running (FakeForCausalLM bfloat16 on Fake GPU)") {
		t.Errorf("log at %s does not hold the worker's stderr", b.LogPath())
	}
}

func TestUnpackIsKeyedByContent(t *testing.T) {
	cache := t.TempDir()
	d1, err := workerDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := workerDir(cache)
	if err != nil || d1 != d2 {
		t.Fatalf("second unpack: %s %v, want %s", d2, err, d1)
	}
	if !strings.HasSuffix(d1, "worker-"+workerVersion()) {
		t.Errorf("%s is not keyed by the content hash %s", d1, workerVersion())
	}
	for _, f := range []string{"__main__.py", "engine.py", "select.py", "protocol.py"} {
		if _, err := os.Stat(filepath.Join(d1, "snapworker", f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(d1, "tests")); err == nil {
		t.Error("the worker's tests were shipped")
	}
	other := os.DirFS(filepath.Join("..", "cpu", "testdata", "models"))
	a, _, _ := contentHash(other, "llama-gqa")
	c, _, _ := contentHash(other, "qwen2-tied")
	if a == c {
		t.Error("different contents, same hash")
	}
}
