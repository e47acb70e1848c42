package torch

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/llm"
)

func TestCheckTP(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, config string
		tp           int
		want         string // "" for accepted
	}{
		{"divides", `{"num_attention_heads": 32, "num_key_value_heads": 8}`, 4, ""},
		{"tp 1 reads nothing", `not json`, 1, ""},
		{"does not divide", `{"num_attention_heads": 32, "num_key_value_heads": 8}`, 3, "tp=3 does not divide the model's 8 KV heads"},
		{"multi-head attention", `{"num_attention_heads": 12}`, 4, ""},
		{"multi-head, does not divide", `{"num_attention_heads": 12}`, 8, "12 KV heads (" + filepath.Join(dir, "config.json") + " num_attention_heads)"},
		{"nested text config", `{"text_config": {"num_attention_heads": 16, "num_key_value_heads": 2}}`, 4, "tp=4 does not divide the model's 2 KV heads"},
		{"no heads", `{"hidden_size": 64}`, 2, "no positive num_key_value_heads"},
		{"bad json", `{"num_key_value_heads": "eight"}`, 2, "config.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}
			err := checkTP(dir, c.tp)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("checkTP: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("checkTP = %v, want an error saying %q", err, c.want)
			}
		})
	}
}

// TestTPOnFakeWorker checks what the Go side does with tp: the worker command and environment, the identity and
// manifest, and the setup errors (a tp that does not divide the KV heads, a worker that does not run tp).
func TestTPOnFakeWorker(t *testing.T) {
	t.Setenv("SNAPEVAL_CACHE", t.TempDir())
	b, err := Open(context.Background(), fixture, Options{Python: os.Args[0], TP: 2, KVMemoryBytes: 1 << 30,
		Env: []string{"SNAPEVAL_FAKE_WORKER=1", "FAKE_TP=2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !logHas(t, b, "--tp 2") || !logHas(t, b, `NCCL_NVLS_ENABLE="0"`) || !logHas(t, b, "-m snapworker") {
		data, _ := os.ReadFile(b.LogPath())
		t.Errorf("the worker was not started with --tp 2 and NVLS off; log:\n%s", data)
	}
	if want := "torch:llama-gqa@" + mustFingerprint(t) + "+bfloat16+tp2"; b.Identity() != want {
		t.Errorf("Identity = %q, want %q", b.Identity(), want)
	}
	if bi := b.BackendInfo(); bi["tp"] != "2" {
		t.Errorf("BackendInfo tp = %q", bi["tp"])
	}
	if _, err := b.Generate(context.Background(), llm.Request{Prompt: "hello", Policy: "snapkv:topk=16,window=4,kernel=3", Sampling: llm.Sampling{MaxNew: 5}}); err != nil {
		t.Fatal(err)
	}
	// adakv moves top-K slots between all KV heads of a layer: refused up front at tp>1, every other policy runs.
	if err := b.CheckPolicy("adakv:budget=64"); err == nil || !strings.Contains(err.Error(), "tp=1") {
		t.Errorf("CheckPolicy(adakv) at tp=2: %v", err)
	}
	if err := b.CheckPolicy("h2o:budget=64"); err != nil {
		t.Errorf("CheckPolicy(h2o) at tp=2: %v", err)
	}

	qwen := filepath.Join("..", "cpu", "testdata", "models", "qwen2-tied")
	cases := []struct {
		name string
		dir  string
		opts Options
		want string
	}{
		{"one KV head", qwen, Options{TP: 2, Command: []string{filepath.Join(t.TempDir(), "never-started")}},
			"tp=2 does not divide the model's 1 KV heads"},
		{"two KV heads, tp 4", fixture, Options{TP: 4, Command: []string{filepath.Join(t.TempDir(), "never-started")}},
			"tp=4 does not divide the model's 2 KV heads"},
		{"worker without tp", fixture, Options{TP: 2, Command: []string{os.Args[0]}, Env: []string{"SNAPEVAL_FAKE_WORKER=1"}},
			"the worker runs tp=1, not 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(context.Background(), c.dir, c.opts)
			var se *SetupError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Open: %v, want a setup error saying %q", err, c.want)
			}
		})
	}
}

// TestTensorParallelWorkerOnCPU runs the real tensor-parallel worker (snapworker.tp over minillama, two processes
// joined by gloo: worker/tests/tp_entry.py) through the Go side: its ready info is the whole model's and the whole
// KV pool's, kept positions and greedy tokens of two policies (decoded by the static step over the pool) equal the
// conformance reference, and a rank that dies in the middle of a request takes the worker down, which is restarted
// and the request retried to the same result.
func TestTensorParallelWorkerOnCPU(t *testing.T) {
	py := pythonWithTorch()
	if py == "" {
		t.Skip("no Python with torch here (apt-get install python3-torch, or set SNAPEVAL_TEST_PYTHON): the tensor-parallel worker did not run")
	}
	if exec.Command(py, "-c", "import sys, torch.distributed as d; sys.exit(0 if d.is_available() and d.is_gloo_available() else 1)").Run() != nil {
		t.Skip(py + "'s torch has no torch.distributed with gloo: the tensor-parallel worker did not run")
	}
	t.Parallel() // with the worker's Python tests and the bench's (the cache is TestMain's)
	wd, err := filepath.Abs("worker")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs(fixture)
	if err != nil {
		t.Fatal(err)
	}
	once := filepath.Join(t.TempDir(), "rank1-died")
	b, err := Open(context.Background(), dir, Options{TP: 2, DType: "float32", Device: "cpu", KVMemoryBytes: 1 << 30,
		Command: []string{py, "-m", "tests.tp_entry", "--model", dir, "--device", "cpu", "--dtype", "float32", "--tp", "2"},
		Env:     []string{"PYTHONPATH=" + wd, "PYTHONDONTWRITEBYTECODE=1", "SNAPWORKER_TEST_FAULT=exit:1:60", "SNAPWORKER_TEST_FAULT_ONCE=" + once}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if i := b.WorkerInfo(); i.TP != 2 || i.KVHeads != 2 || i.QHeads != 4 {
		t.Errorf("worker info %+v: want tp 2 and the whole model's 4/2 heads", i)
	}
	// The KV pool of both ranks (each holds its KV head): 32 rows (max_batch) of 4096 slots (max positions) of
	// 2 layers x 2 KV heads x 16 x K and V x 4 bytes.
	if i := b.WorkerInfo(); !i.StaticDecode || i.PoolRows != 32 || i.PoolCapacity != 4096 || i.KVPoolBytes != 32*4096*512 {
		t.Errorf("worker info %+v: want the static decode over a pool of 32 rows of 4096 slots, 64 MiB in all", i)
	}
	var ref struct {
		PromptIDs  []int     `json:"prompt_ids"`
		LogitsLast []float64 `json:"logits_last"`
		Cases      []struct {
			Kept   [][][]int `json:"kept"`
			Greedy []int     `json:"greedy"`
		} `json:"cases"`
	}
	var plans struct {
		Fixtures map[string][]struct {
			Spec string `json:"spec"`
		} `json:"fixtures"`
	}
	readJSON(t, filepath.Join(dir, "reference.json"), &ref)
	readJSON(t, filepath.Join("testdata", "plans.json"), &plans)
	check := func(i, maxNew int) {
		t.Helper()
		spec := plans.Fixtures["llama-gqa"][i].Spec
		res, err := b.Inspect(context.Background(), ref.PromptIDs, spec, maxNew)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if !reflect.DeepEqual(res.Kept, ref.Cases[i].Kept) {
			t.Errorf("%s: kept positions differ from the reference", spec)
		}
		if len(res.Greedy) != maxNew || !reflect.DeepEqual(res.Greedy[:24], ref.Cases[i].Greedy) {
			t.Errorf("%s: greedy %v, want %d tokens starting %v", spec, res.Greedy, maxNew, ref.Cases[i].Greedy)
		}
		den, num := 0.0, 0.0
		for j, w := range ref.LogitsLast {
			den = math.Max(den, math.Abs(w))
			num = math.Max(num, math.Abs(float64(res.LogitsLast[j])-w))
		}
		if num/den > 1e-4 {
			t.Errorf("%s: last logits %.2e relative from the reference", spec, num/den)
		}
	}
	check(1, 24)
	check(4, 24)
	if b.Restarts() != 0 {
		t.Fatalf("restarts before the fault: %d", b.Restarts())
	}
	// Rank 1 ends itself (exit 7) in its 60th forward (the two requests above ran 48): in the middle of this request, whose retry runs on a new
	// worker (the fault fires once).
	check(2, 60)
	if _, err := os.Stat(once); err != nil {
		t.Fatalf("the fault did not fire: %v", err)
	}
	if b.Restarts() != 1 {
		t.Errorf("restarts = %d, want 1", b.Restarts())
	}
	for _, s := range []string{"tensor-parallel rank 1", "exit status 7", "retrying a request"} {
		if !logHas(t, b, s) {
			t.Errorf("the worker log does not say %q", s)
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
