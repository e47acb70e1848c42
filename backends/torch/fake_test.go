package torch

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"
	"time"
)

// The fake worker: the test binary re-run with SNAPEVAL_FAKE_WORKER=1 speaks the worker's protocol with a
// deterministic "model" (fakeToken), so that the Go side is tested on every machine, with no Python. Failures are
// injected through the environment:
//
//	FAKE_SETUP=msg          a fatal setup event instead of ready, exit 2
//	FAKE_DIE_EARLY=1        a traceback on stderr and exit 1 before ready
//	FAKE_CRASH_AFTER=n      after n tokens: a CUDA error on stderr and SIGKILL of itself; with FAKE_MARK=path only
//	                        while path does not exist (it is created first), so the restarted worker runs on
//	FAKE_OOM_MARK=path      the first request (while path does not exist) gets an "oom" error event
//	FAKE_GARBAGE=1          a line that is not JSON after the first step
//	FAKE_STEP_US=n          each step takes n microseconds more
//	FAKE_DTYPE, FAKE_VOCAB, FAKE_MAXPOS, FAKE_TP   what ready reports
//	FAKE_POOL=rows,capacity                         ready reports a KV pool of that geometry
func TestMain(m *testing.M) {
	if os.Getenv("SNAPEVAL_FAKE_WORKER") == "1" {
		if len(os.Args) > 1 && os.Args[1] == "bench" {
			os.Exit(fakeBench(os.Args[2:]))
		}
		os.Exit(fakeWorker(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(runTests(m))
}

// runTests runs the package's tests with a cache of their own (SNAPEVAL_CACHE: a test that does not set its own,
// such as the parallel ones, which cannot, never touches the user's) and the worker's Python tests started first.
func runTests(m *testing.M) int {
	cache, err := os.MkdirTemp("", "snapeval-torch-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(cache)
	os.Setenv("SNAPEVAL_CACHE", cache)
	startEarlyWorkerTests()
	defer stopEarlyWorkerTests()
	return m.Run()
}

// fakeToken is the fake model: the i-th token of a request depends on its prompt, sampling and i only.
func fakeToken(prompt []int, s wireSampling, i, vocab int) int {
	h := 0
	for _, t := range prompt {
		h = (h*31 + t) % 1000003
	}
	if s.Temperature > 0 {
		h += int(s.Seed % 97)
	}
	return (h + 7*i*i + 3*i) % vocab
}

type fakeSeq struct {
	cmd    command
	out    int
	cancel bool
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func fakeWorker(in io.Reader, out io.Writer, errw io.Writer) int {
	fmt.Fprintf(errw, "fake worker pid %d args %v NCCL_NVLS_ENABLE=%q\n", os.Getpid(), os.Args[1:], os.Getenv("NCCL_NVLS_ENABLE"))
	w := bufio.NewWriter(out)
	emit := func(v any) {
		b, _ := json.Marshal(v)
		w.Write(append(b, '\n'))
		w.Flush()
	}
	if msg := os.Getenv("FAKE_SETUP"); msg != "" {
		emit(map[string]any{"ev": "fatal", "kind": "setup", "msg": msg})
		return 2
	}
	if os.Getenv("FAKE_DIE_EARLY") != "" {
		fmt.Fprintln(errw, "Traceback (most recent call last):\nModuleNotFoundError: No module named 'torch'")
		return 1
	}
	vocab := envInt("FAKE_VOCAB", 1500)
	dtype := os.Getenv("FAKE_DTYPE")
	if dtype == "" {
		dtype = "bfloat16"
	}
	info := Info{Torch: "0.0-fake", Transformers: "0.0-fake",
		Python: "none", Device: "cuda:0", GPU: "Fake GPU", DType: dtype, Attn: "sdpa", ElemBytes: 2, Architecture: "FakeForCausalLM",
		Layers: 2, QHeads: 4, KVHeads: 2, HeadDim: 16, Vocab: vocab, MaxPositions: envInt("FAKE_MAXPOS", 4096),
		FreeBytes: 1 << 30, DeviceMemoryBytes: 2 << 30, TP: envInt("FAKE_TP", 0)}
	if p := os.Getenv("FAKE_POOL"); p != "" {
		fmt.Sscanf(p, "%d,%d", &info.PoolRows, &info.PoolCapacity)
		info.KVPoolBytes = int64(info.PoolRows*info.PoolCapacity) * 2 * 2 * 2 * 16 * 2
		info.StaticDecode, info.CUDAGraphs, info.DecodeAttn = true, true, "auto"
	}
	emit(map[string]any{"ev": "ready", "protocol": protocolVersion, "info": info})
	cmds := make(chan command)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var c command
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				emit(map[string]any{"ev": "fatal", "kind": "protocol", "msg": err.Error()})
				os.Exit(3)
			}
			cmds <- c
		}
		close(cmds)
	}()
	var seqs []*fakeSeq
	emitted, steps := 0, 0
	crashAfter := envInt("FAKE_CRASH_AFTER", -1)
	if mark := os.Getenv("FAKE_MARK"); mark != "" && crashAfter >= 0 {
		if _, err := os.Stat(mark); err == nil {
			crashAfter = -1
		}
	}
	handle := func(c command) bool {
		switch c.Op {
		case "shutdown":
			return false
		case "cancel":
			for _, s := range seqs {
				if s.cmd.ID == c.ID {
					s.cancel = true
				}
			}
			fmt.Fprintf(errw, "cancel %d\n", c.ID)
		case "submit":
			if mark := os.Getenv("FAKE_OOM_MARK"); mark != "" {
				if _, err := os.Stat(mark); err != nil {
					os.WriteFile(mark, nil, 0o644)
					emit(map[string]any{"ev": "error", "id": c.ID, "kind": "oom", "msg": "CUDA out of memory. Tried to allocate 9 GiB"})
					return true
				}
			}
			seqs = append(seqs, &fakeSeq{cmd: c})
		}
		return true
	}
	for {
		if len(seqs) == 0 {
			c, ok := <-cmds
			if !ok || !handle(c) {
				return 0
			}
		}
	drain:
		for {
			select {
			case c, ok := <-cmds:
				if !ok || !handle(c) {
					return 0
				}
			default:
				break drain
			}
		}
		steps++
		if steps == 2 && os.Getenv("FAKE_GARBAGE") != "" {
			w.WriteString("{this is not json\n")
			w.Flush()
		}
		fmt.Fprintf(errw, "step %d active %d\n", steps, len(seqs))
		if us := envInt("FAKE_STEP_US", 0); us > 0 {
			time.Sleep(time.Duration(us) * time.Microsecond)
		}
		var toks [][2]int64
		var live []*fakeSeq
		type fin struct {
			s      *fakeSeq
			finish string
		}
		var done []fin
		for _, s := range seqs {
			if s.cancel {
				done = append(done, fin{s, "canceled"})
				continue
			}
			if s.cmd.MaxNew == 0 {
				done = append(done, fin{s, "length"})
				continue
			}
			t := fakeToken(s.cmd.Prompt, *s.cmd.Sampling, s.out, vocab)
			eos := false
			for _, e := range s.cmd.EOS {
				eos = eos || e == t
			}
			if eos {
				done = append(done, fin{s, "stop"})
				continue
			}
			s.out++
			toks = append(toks, [2]int64{s.cmd.ID, int64(t)})
			if s.out >= s.cmd.MaxNew {
				done = append(done, fin{s, "length"})
			} else {
				live = append(live, s)
			}
		}
		seqs = live
		if len(toks) > 0 {
			emit(map[string]any{"ev": "tokens", "t": toks})
		}
		emitted += len(toks)
		if crashAfter >= 0 && emitted >= crashAfter {
			if mark := os.Getenv("FAKE_MARK"); mark != "" {
				os.WriteFile(mark, nil, 0o644)
			}
			fmt.Fprintln(errw, "RuntimeError: CUDA error: an illegal memory access was encountered")
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				p.Kill()
			}
		}
		for _, d := range done {
			ev := map[string]any{"ev": "done", "id": d.s.cmd.ID, "finish": d.finish, "tokens": d.s.out,
				"prefill_ms": 1.5, "decode_ms": 2.5, "kv_bytes": 0}
			if d.s.cmd.WantKept {
				p := d.s.cmd.Plan
				var kept []int
				for q := 0; q < p.Lo; q++ {
					kept = append(kept, q)
				}
				for q := p.Lo; q < p.Lo+p.ValidTopK; q++ {
					kept = append(kept, q)
				}
				for q := p.Hi; q < p.PromptLen; q++ {
					kept = append(kept, q)
				}
				ev["kept"] = [][][]int{{kept, kept}, {kept, kept}}
			}
			if d.s.cmd.WantMargins {
				m := make([]float64, d.s.out)
				for i := range m {
					m[i] = float64(i) / 4
				}
				ev["margins"] = m
				ev["peak_bytes"] = 12345
			}
			if d.s.cmd.WantLogits {
				ev["logits"] = []any{0.5, nil, -1.25}
			}
			emit(ev)
		}
	}
}
