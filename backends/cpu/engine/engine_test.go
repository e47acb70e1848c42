package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/snapeval/snapeval/backends/cpu/model"
	"github.com/snapeval/snapeval/backends/cpu/safetensors"
	"github.com/snapeval/snapeval/backends/cpu/sample"
	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/internal/conformance"
	"github.com/snapeval/snapeval/llm"
)

type refCase struct {
	Policy conformance.Policy `json:"policy"`
	Kept   [][][]int          `json:"kept"`
	Greedy []int              `json:"greedy"`
}

type reference struct {
	PromptIDs []int     `json:"prompt_ids"`
	Cases     []refCase `json:"cases"`
}

var fixtures = []string{"llama-gqa", "qwen2-tied"}

func loadFixture(t testing.TB, name string) (*model.Model, *reference) {
	t.Helper()
	dir := filepath.Join("..", "testdata", "models", name)
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := model.ParseConfig("config.json", b)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := model.Load(cfg, ck)
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if b, err = os.ReadFile(filepath.Join(dir, "reference.json")); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	return m, &ref
}

func job(t testing.TB, ref *reference, c refCase) Job {
	return Job{Prompt: ref.PromptIDs, Policy: compress.MustParse(c.Policy.Spec()), MaxNew: len(c.Greedy), WantKept: true, WantLogits: true}
}

// runAll runs jobs concurrently and returns their results in order.
func runAll(t testing.TB, e *Engine, jobs []Job) []Result {
	t.Helper()
	res := make([]Result, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = e.Generate(context.Background(), jobs[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
	}
	return res
}

// TestConformance runs the fixtures on the assembly kernels (where the CPU has them) and on the portable
// Go kernels: kept lists and greedy tokens must be exact on both.
func TestConformance(t *testing.T) {
	prev := model.SIMD()
	defer model.SetSIMD(prev)
	for _, simd := range []bool{true, false} {
		model.SetSIMD(simd)
		t.Run(fmt.Sprintf("simd=%v", model.SIMD()), testConformance)
	}
}

func testConformance(t *testing.T) {
	for _, name := range fixtures {
		m, ref := loadFixture(t, name)
		for _, slots := range []int{1, 3, 8} {
			t.Run(fmt.Sprintf("%s/slots=%d", name, slots), func(t *testing.T) {
				e := New(m, Options{Slots: slots, PrefillChunk: 64})
				defer e.Close()
				var jobs []Job
				for _, c := range ref.Cases {
					jobs = append(jobs, job(t, ref, c))
				}
				// Twice: the second round runs from the prefix cache, in another batch composition.
				res := append(runAll(t, e, jobs), runAll(t, e, jobs[1:])...)
				for i, r := range res {
					c := ref.Cases[i%len(ref.Cases)]
					if i >= len(ref.Cases) {
						c = ref.Cases[i-len(ref.Cases)+1]
					}
					spec := c.Policy.Spec()
					if !reflect.DeepEqual(r.Kept, c.Kept) {
						t.Errorf("%s: kept differs from the reference\n got %v\nwant %v", spec, r.Kept, c.Kept)
					}
					if !reflect.DeepEqual(r.Tokens, c.Greedy) {
						t.Errorf("%s: greedy = %v, want %v", spec, r.Tokens, c.Greedy)
					}
					if r.Finish != "length" || r.Plan.Capacity < len(c.Kept[0][0]) {
						t.Errorf("%s: finish %q capacity %d", spec, r.Finish, r.Plan.Capacity)
					}
				}
			})
		}
	}
}

func TestPrefixReuseIsBitIdentical(t *testing.T) {
	m, ref := loadFixture(t, "llama-gqa")
	run := func(cacheBytes int64, slots int) []Result {
		e := New(m, Options{Slots: slots, PrefixCacheBytes: cacheBytes, PrefillChunk: 50})
		defer e.Close()
		var out []Result
		for _, c := range ref.Cases {
			j := job(t, ref, c)
			j.Sampling = sample.Params{Temperature: 0.8, TopP: 0.95, Seed: 42}
			r, err := e.Generate(context.Background(), j)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out
	}
	with, without := run(0, 2), run(-1, 1)
	for i := range with {
		if i > 0 && !with[i].PrefixReused {
			t.Errorf("case %d: prefix cache not used", i)
		}
		if without[i].PrefixReused {
			t.Errorf("case %d: prefix reused with the cache disabled", i)
		}
		if !reflect.DeepEqual(with[i].Tokens, without[i].Tokens) || !reflect.DeepEqual(with[i].Kept, without[i].Kept) ||
			!reflect.DeepEqual(with[i].PromptLogits, without[i].PromptLogits) {
			t.Errorf("case %d: results differ with and without the prefix cache", i)
		}
	}
}

func TestSampledBatchIndependence(t *testing.T) {
	m, ref := loadFixture(t, "qwen2-tied")
	var jobs []Job
	for i := 0; i < 8; i++ {
		c := ref.Cases[i%len(ref.Cases)]
		j := job(t, ref, c)
		j.Prompt = ref.PromptIDs[:100+7*i] // different prompts, so prefill and decode overlap
		j.Sampling = sample.Params{Temperature: 1, TopK: 40, Seed: uint64(i)}
		jobs = append(jobs, j)
	}
	var first []Result
	for _, slots := range []int{1, 3, 8} {
		e := New(m, Options{Slots: slots, PrefillChunk: 32, PrefixCacheBytes: -1})
		res := runAll(t, e, jobs)
		e.Close()
		if first == nil {
			first = res
			continue
		}
		for i := range res {
			if !reflect.DeepEqual(res[i].Tokens, first[i].Tokens) {
				t.Errorf("slots=%d job %d: tokens %v, with 1 slot %v", slots, i, res[i].Tokens, first[i].Tokens)
			}
		}
	}
}

func TestStopsAndErrors(t *testing.T) {
	m, ref := loadFixture(t, "llama-gqa")
	e := New(m, Options{Slots: 2})
	defer e.Close()
	full := ref.Cases[0].Greedy
	tests := []struct {
		name   string
		job    Job
		tokens []int
		finish string
	}{
		{"eos", Job{Prompt: ref.PromptIDs, Policy: compress.MustParse("full"), MaxNew: 24, EOS: []int{full[3]}}, full[:3], "stop"},
		{"callback", Job{Prompt: ref.PromptIDs, Policy: compress.MustParse("full"), MaxNew: 24,
			OnToken: func(tok int) bool { return tok == full[1] }}, full[:2], "stop"},
		{"length", Job{Prompt: ref.PromptIDs, Policy: compress.MustParse("full"), MaxNew: 5}, full[:5], "length"},
		{"zero", Job{Prompt: ref.PromptIDs, Policy: compress.MustParse("full"), MaxNew: 0}, []int{}, "length"},
	}
	for _, tc := range tests {
		r, err := e.Generate(context.Background(), tc.job)
		if err != nil || !reflect.DeepEqual(r.Tokens, tc.tokens) || r.Finish != tc.finish {
			t.Errorf("%s: tokens %v finish %q err %v, want %v %q", tc.name, r.Tokens, r.Finish, err, tc.tokens, tc.finish)
		}
	}
	_, err := e.Generate(context.Background(), Job{Prompt: make([]int, 4000), Policy: compress.MustParse("full"), MaxNew: 200})
	if !errors.Is(err, llm.ErrContextOverflow) {
		t.Errorf("overflow: err = %v", err)
	}
	if _, err := e.Generate(context.Background(), Job{Prompt: []int{1, 99999}, Policy: compress.MustParse("full"), MaxNew: 2}); err == nil {
		t.Error("out-of-vocabulary token accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Generate(ctx, Job{Prompt: ref.PromptIDs, Policy: compress.MustParse("full"), MaxNew: 5}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
	// The engine still works after a cancellation.
	if r, err := e.Generate(context.Background(), tests[2].job); err != nil || !reflect.DeepEqual(r.Tokens, full[:5]) {
		t.Errorf("after cancel: %v %v", r.Tokens, err)
	}
}

// TestDecodeStepNoAllocs checks that a steady-state decode step (7 sequences, compressed caches, per-head caches
// evicting at every step included) allocates nothing.
func TestDecodeStepNoAllocs(t *testing.T) {
	m, ref := loadFixture(t, "llama-gqa")
	specs := []string{"full", "snapstream:sinks=4,recent=16,topk=24,window=8,kernel=5", "snapkv:topk=48,window=16,kernel=5",
		"h2o:budget=64", "tova:budget=48", "pyramidkv:budget=96", "adakv:base=snapstream,budget=64"}
	s := newScheduler(m, Options{Slots: len(specs), PrefillChunk: 512, PrefixCacheBytes: -1, QueryKeep: 64, Threads: 2}.withDefaults())
	defer s.pool.Close()
	for i, spec := range specs {
		j := Job{Prompt: ref.PromptIDs[:150+i], Policy: compress.MustParse(spec), MaxNew: 1000}
		plan, err := j.Policy.Plan(len(j.Prompt), j.MaxNew)
		if err != nil {
			t.Fatal(err)
		}
		s.enqueue(&request{ctx: context.Background(), job: j, plan: plan, out: make(chan reply, 1)})
	}
	for s.hasPrefill() {
		s.step()
	}
	for i := 0; i < 3; i++ {
		s.step()
	}
	if len(s.active) != len(specs) {
		t.Fatalf("%d sequences decoding, want %d", len(s.active), len(specs))
	}
	if a := testing.AllocsPerRun(50, s.step); a != 0 {
		t.Errorf("decode step allocates %.1f times", a)
	}
}
