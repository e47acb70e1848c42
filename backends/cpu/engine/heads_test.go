package engine

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/snapeval/snapeval/compress"
)

// headedSpecs are per-head policies over the fixture prompt (160 tokens): the prompt cut at prefill and evictions
// at every step, caches that fill during decode and then evict, per-layer and per-head top-K on both bases.
var headedSpecs = []string{"h2o:budget=40", "h2o:budget=40,recent=1", "h2o:budget=170,recent=20", "tova:budget=40", "tova:budget=170",
	"pyramidkv:budget=96", "pyramidkv:base=snapstream,budget=64,beta=3", "adakv:budget=96", "adakv:base=snapstream,budget=64,safeguard=0"}

// TestHeadedCacheProperties steps per-head policies one decode step at a time and checks, after every step, that no
// layer and KV head holds more positions than its capacity, that the layers' regions add up to the plan's
// capacity (what KV bytes count), that the batch slot's memory does not change during decode, and that an
// eviction cache holds the whole prompt and every decoded token up to its budget.
func TestHeadedCacheProperties(t *testing.T) {
	m, ref := loadFixture(t, "llama-gqa")
	c := &m.Cfg
	s := newScheduler(m, Options{Slots: len(headedSpecs), PrefillChunk: 64, PrefixCacheBytes: -1, Threads: 2}.withDefaults())
	defer s.pool.Close()
	var reqs []*request
	for _, spec := range headedSpecs {
		j := Job{Prompt: ref.PromptIDs, Policy: compress.MustParse(spec), MaxNew: 40}
		plan, err := j.Policy.Plan(len(j.Prompt), j.MaxNew)
		if err != nil {
			t.Fatal(err)
		}
		r := &request{ctx: context.Background(), job: j, plan: plan, out: make(chan reply, 1)}
		reqs = append(reqs, r)
		s.enqueue(r)
	}
	for s.hasPrefill() {
		s.step()
	}
	mem := map[*request]int64{}
	for step := 0; len(s.active) > 0; step++ {
		for _, q := range s.active {
			if q.fin {
				continue
			}
			plan := q.req.plan
			spec := plan.Policy.String()
			if b, ok := mem[q.req]; ok && b != q.mem.bytes() {
				t.Fatalf("%s step %d: the slot's memory went from %d to %d bytes", spec, step, b, q.mem.bytes())
			}
			mem[q.req] = q.mem.bytes()
			total := 0
			for l := range c.Layers {
				layer := 0
				for h := range c.KVHeads {
					hc := q.kv.Heads[l*c.KVHeads+h]
					held := 0
					for _, p := range hc.Live[:hc.Cap] {
						if p >= 0 {
							held++
						}
					}
					if held > hc.Cap || hc.Cap > q.kv.Cap || (hc.Off+hc.Cap)*c.HeadDim > len(q.kv.K[l]) {
						t.Fatalf("%s step %d layer %d head %d: %d held in %d slots at %d (layer cache %d floats)", spec, step, l, h, held, hc.Cap, hc.Off, len(q.kv.K[l]))
					}
					if plan.Evict && held != min(plan.Capacity, plan.PromptLen+step) {
						t.Fatalf("%s step %d layer %d head %d: %d held, want %d", spec, step, l, h, held, min(plan.Capacity, plan.PromptLen+step))
					}
					layer += hc.Cap
				}
				if layer*c.HeadDim != len(q.kv.K[l]) {
					t.Fatalf("%s layer %d: regions of %d slots in a layer cache of %d", spec, l, layer, len(q.kv.K[l])/c.HeadDim)
				}
				total += layer
			}
			if total != c.Layers*c.KVHeads*plan.Capacity {
				t.Fatalf("%s: %d slots in all, want layers x KV heads x capacity %d", spec, total, c.Layers*c.KVHeads*plan.Capacity)
			}
		}
		s.step()
		if step > 100 {
			t.Fatal("the scheduler does not finish")
		}
	}
	for i, r := range reqs {
		rep := <-r.out
		if rep.err != nil {
			t.Fatal(rep.err)
		}
		if want := compress.KVBytes(r.plan.Capacity, c.Layers, c.KVHeads, c.HeadDim, ElemBytes); rep.res.KVBytes != want || len(rep.res.Tokens) != 40 {
			t.Errorf("%s: %d KV bytes (want %d), %d tokens", headedSpecs[i], rep.res.KVBytes, want, len(rep.res.Tokens))
		}
	}
}

// TestHeadedCoveringEqualsFull: budgets that hold the whole sequence (never evicting, every candidate kept) give
// full's tokens and keep every prompt position; h2o and tova hold the positions in order, so their logits are
// full's bit for bit.
func TestHeadedCoveringEqualsFull(t *testing.T) {
	for _, name := range fixtures {
		m, ref := loadFixture(t, name)
		e := New(m, Options{Slots: 4, PrefillChunk: 64})
		n := 24
		L := len(ref.PromptIDs)
		specs := []string{"full", fmt.Sprintf("h2o:budget=%d", L+n-1), fmt.Sprintf("h2o:budget=%d,recent=1", L+n), fmt.Sprintf("tova:budget=%d", L+n-1),
			fmt.Sprintf("pyramidkv:topk=%d,window=32", L), fmt.Sprintf("adakv:topk=%d,window=8", L),
			fmt.Sprintf("pyramidkv:base=snapstream,recent=%d,topk=8", L+n), fmt.Sprintf("adakv:base=snapstream,recent=%d,topk=8", L+n)}
		var jobs []Job
		for _, s := range specs {
			jobs = append(jobs, Job{Prompt: ref.PromptIDs, Policy: compress.MustParse(s), MaxNew: n, WantKept: true, WantEvicted: true})
		}
		res := runAll(t, e, jobs)
		e.Close()
		all := make([]int, L)
		for i := range all {
			all[i] = i
		}
		for i := 1; i < len(res); i++ {
			if !reflect.DeepEqual(res[i].Tokens, res[0].Tokens) {
				t.Errorf("%s %s: %v, full %v", name, specs[i], res[i].Tokens, res[0].Tokens)
			}
			for l := range res[i].Kept {
				for h, kept := range res[i].Kept[l] {
					if !reflect.DeepEqual(kept, all) {
						t.Errorf("%s %s layer %d head %d: kept %v", name, specs[i], l, h, kept)
					}
				}
			}
			for step, ev := range res[i].Evicted {
				for l := range ev {
					for _, p := range ev[l] {
						if p >= 0 {
							t.Errorf("%s %s step %d: evicted %d", name, specs[i], step, p)
						}
					}
				}
			}
		}
	}
}
