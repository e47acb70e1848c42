package engine

import (
	"context"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/llm"
)

// TestOversizedCachesRefused: a cache larger than the model's positions or the memory budget, and a max new
// tokens past the positions, are refused by CheckPolicy and Generate before anything is allocated for them.
func TestOversizedCachesRefused(t *testing.T) {
	m, ref := loadFixture(t, "llama-gqa")
	const budget = 1 << 20
	e := New(m, Options{Slots: 2, MemoryBytes: budget})
	defer e.Close()
	sh := e.shape()
	// The largest snapstream budget whose cache fits 1 MiB, and the one after it.
	fits := int((budget - int64(sh.Vocab)*4) / (2 * int64(sh.Layers*sh.KVHeads*sh.HeadDim) * ElemBytes))
	tests := []struct {
		name, spec string
		maxNew     int
		prompt     int
		want       string // in the error
	}{
		{"snapkv topk", "snapkv:topk=100000000", 4, 8, "exceeds the model's 4096 positions"},
		{"snapstream budget", "snapstream:budget=2147483647", 4, 8, "exceeds the model's 4096 positions"},
		{"streaming recent", "streaming:sinks=4,recent=200000000", 4, 8, "exceeds the model's 4096 positions"},
		{"one slot past the positions", "snapstream:budget=4097", 4, 8, "exceeds the model's 4096 positions"},
		{"over the memory budget", "snapstream:budget=" + strconv.Itoa(fits+1), 4, 8, "memory budget"},
		{"max new past the positions", "full", math.MaxInt, 8, "exceeds the model's 4096 positions"},
		{"full cache over the memory budget", "full", 16, fits, "memory budget"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pol := compress.MustParse(tc.spec)
			prompt := make([]int, tc.prompt)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := e.Generate(context.Background(), Job{Prompt: prompt, Policy: pol, MaxNew: tc.maxNew})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, llm.ErrContextOverflow) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Generate: %v, want ErrContextOverflow saying %q", err, tc.want)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
				t.Errorf("refusing the job allocated %d bytes", n)
			}
			if tc.maxNew < math.MaxInt && tc.prompt < 100 {
				if err := e.CheckPolicy(pol); !errors.Is(err, llm.ErrContextOverflow) {
					t.Errorf("CheckPolicy: %v, want ErrContextOverflow", err)
				}
			}
		})
	}
	// The largest cache that fits is accepted, and the engine still works after the refusals.
	if err := e.CheckPolicy(compress.MustParse("snapstream:budget=" + strconv.Itoa(min(fits, 4096)))); err != nil {
		t.Errorf("CheckPolicy at the limit: %v", err)
	}
	full := ref.Cases[0].Greedy
	if r, err := e.Generate(context.Background(), Job{Prompt: ref.PromptIDs, Policy: compress.MustParse("full"), MaxNew: 5}); err != nil || !reflect.DeepEqual(r.Tokens, full[:5]) {
		t.Errorf("after the refusals: %v %v", r.Tokens, err)
	}
}

// stepAll queues jobs in a fresh scheduler all at once (so that every job waits at the first admission) and steps
// it until they are done; it returns their results and the most memory the scheduler held.
func stepAll(t *testing.T, e *Engine, jobs []Job) ([]Result, int64) {
	t.Helper()
	s := newScheduler(e.m, e.opts)
	defer s.pool.Close()
	var reqs []*request
	for _, j := range jobs {
		plan, err := e.Check(j)
		if err != nil {
			t.Fatal(err)
		}
		r := &request{ctx: context.Background(), job: j, plan: plan, out: make(chan reply, 1)}
		reqs = append(reqs, r)
		s.enqueue(r)
	}
	for steps := 0; !s.idle(); steps++ {
		if steps > 10000 {
			t.Fatal("the scheduler does not finish")
		}
		s.step()
	}
	res := make([]Result, len(reqs))
	for i, r := range reqs {
		rep := <-r.out
		if rep.err != nil {
			t.Fatal(rep.err)
		}
		res[i] = rep.res
	}
	return res, s.peak
}

// TestMemoryBudgetAdmission: with a budget that holds one sequence and its prefill but not two, jobs queued together
// are admitted one after another (the memory held never exceeds the budget) and give the same tokens as without
// that limit, where they are all admitted at once.
func TestMemoryBudgetAdmission(t *testing.T) {
	m, ref := loadFixture(t, "llama-gqa")
	var jobs []Job
	for i := range 4 {
		p := append([]int(nil), ref.PromptIDs...)
		p[len(p)-1] = (p[len(p)-1] + i) % m.Cfg.Vocab // distinct prompts: no shared prefill
		jobs = append(jobs, Job{Prompt: p, Policy: compress.MustParse("full"), MaxNew: 12})
	}
	sh := &modelShape{Layers: m.Cfg.Layers, KVHeads: m.Cfg.KVHeads, HeadDim: m.Cfg.HeadDim, Heads: m.Cfg.Heads, Vocab: m.Cfg.Vocab}
	L := len(ref.PromptIDs)
	one := slotBytes(sh, compress.MustParse("full"), L+12) + taskBytes(sh, L, min(L, 64))

	free := New(m, Options{Slots: 4, PrefixCacheBytes: -1})
	defer free.Close()
	want, peak := stepAll(t, free, jobs)
	if peak < 4*one {
		t.Fatalf("without a limit the scheduler held at most %d bytes, not four sequences' %d", peak, 4*one)
	}
	e := New(m, Options{Slots: 4, PrefixCacheBytes: -1, MemoryBytes: one + one/2})
	defer e.Close()
	got, peak := stepAll(t, e, jobs)
	for i := range jobs {
		if !reflect.DeepEqual(got[i].Tokens, want[i].Tokens) || len(got[i].Tokens) != 12 {
			t.Errorf("job %d: tokens %v under the budget, %v without", i, got[i].Tokens, want[i].Tokens)
		}
	}
	if peak > e.opts.MemoryBytes || peak < one {
		t.Errorf("held at most %d bytes under a budget of %d (one sequence: %d)", peak, e.opts.MemoryBytes, one)
	}
}

// TestKVQuantMemory: a kvquant sequence reports the packed size of docs/policies.md §10 (compress.Policy.KVBytes)
// and the scheduler holds no more (its batch slot keeps the quantized cache only, sized by that formula), admits
// jobs within a budget counted in packed bytes, and gives the same tokens in a batch slot reused across cache
// kinds, formats and lengths as in a fresh engine.
func TestKVQuantMemory(t *testing.T) {
	m, ref := loadFixture(t, "llama-gqa")
	sh := &modelShape{Layers: m.Cfg.Layers, KVHeads: m.Cfg.KVHeads, HeadDim: m.Cfg.HeadDim, Heads: m.Cfg.Heads, Vocab: m.Cfg.Vocab}
	L := len(ref.PromptIDs)
	q4 := compress.MustParse("kvquant:bits=4")
	var jobs []Job
	for i := range 4 {
		p := append([]int(nil), ref.PromptIDs...)
		p[len(p)-1] = (p[len(p)-1] + i) % m.Cfg.Vocab
		jobs = append(jobs, Job{Prompt: p, Policy: q4, MaxNew: 12})
	}
	one := slotBytes(sh, q4, L+12) + taskBytes(sh, L, min(L, 64))
	e := New(m, Options{Slots: 4, PrefixCacheBytes: -1, MemoryBytes: one + one/2})
	defer e.Close()
	res, peak := stepAll(t, e, jobs)
	if peak > e.opts.MemoryBytes || peak < one {
		t.Errorf("held at most %d bytes under a budget of %d (one kvquant sequence: %d)", peak, e.opts.MemoryBytes, one)
	}
	want := q4.Quant().Bytes(L+12, sh.Layers, sh.KVHeads, sh.HeadDim, ElemBytes)
	for i, r := range res {
		if r.KVBytes != want || r.Plan.Capacity != L+12 {
			t.Errorf("job %d: capacity %d, KV bytes %d; want %d and %d", i, r.Plan.Capacity, r.KVBytes, L+12, want)
		}
	}
	if float := compress.KVBytes(L+12, sh.Layers, sh.KVHeads, sh.HeadDim, ElemBytes); want*3 > float {
		t.Errorf("4-bit cache of %d bytes is not under a third of the float32 one (%d)", want, float)
	}

	// One batch slot, reused: full, kvquant at 8 and 4 bits, a shorter kvquant prompt, full again.
	specs := []string{"full", "kvquant:bits=8", "kvquant:bits=4", "kvquant:bits=4,group=16", "full"}
	var seq []Job
	for i, s := range specs {
		seq = append(seq, Job{Prompt: ref.PromptIDs[:L-10*i], Policy: compress.MustParse(s), MaxNew: 8})
	}
	reused := New(m, Options{Slots: 1, PrefixCacheBytes: -1})
	defer reused.Close()
	got, _ := stepAll(t, reused, seq)
	for i, j := range seq {
		fresh := New(m, Options{Slots: 1, PrefixCacheBytes: -1})
		r, err := fresh.Generate(context.Background(), j)
		fresh.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[i].Tokens, r.Tokens) {
			t.Errorf("%s in a reused slot: %v, fresh %v", specs[i], got[i].Tokens, r.Tokens)
		}
	}
}
