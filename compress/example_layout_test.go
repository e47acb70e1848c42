package compress_test

import (
	"fmt"
	"strings"

	"github.com/snapeval/snapeval/compress"
)

// The examples in this file are the worked examples of docs/policies.md: each prints what the document shows,
// so the document cannot drift from the code without a test failing.

// printLayout prints a plan's partition of the prompt and, slot by slot, the position each slot holds after
// prefill with the given top-K choice (nil: the plan needs no scores), then where the given decode positions go.
func printLayout(spec string, promptLen, maxNew int, topK []int, decode []int) {
	plan, err := compress.MustParse(spec).Plan(promptLen, maxNew)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s, prompt %d, max new %d\n", spec, promptLen, maxNew)
	fmt.Printf("capacity %d = sinks %d + ring %d + top-K %d", plan.Capacity, plan.Sinks, plan.Ring, plan.TopK)
	if plan.AppendDecode {
		fmt.Printf(" + append %d", plan.MaxNew)
	}
	fmt.Println()
	fmt.Printf("prompt: sinks [0,%d) candidates [%d,%d) ring [%d,%d); keep %d of %d candidates, scores needed: %v\n",
		plan.Lo, plan.Lo, plan.Hi, plan.Hi, plan.PromptLen, plan.ValidTopK, plan.Hi-plan.Lo, plan.NeedScores)
	s := compress.NewSlots(plan)
	s.Prefill(topK)
	blocks := []struct {
		name   string
		lo, hi int
	}{
		{"sinks", 0, plan.Sinks},
		{"ring", plan.Sinks, plan.Sinks + plan.Ring},
		{"top-K", plan.Sinks + plan.Ring, plan.Sinks + plan.Ring + plan.TopK},
		{"append", plan.Sinks + plan.Ring + plan.TopK, plan.Capacity},
	}
	for _, b := range blocks {
		if b.lo == b.hi {
			continue
		}
		var held []string
		for _, p := range s.Pos[b.lo:b.hi] {
			if p < 0 {
				held = append(held, "-")
			} else {
				held = append(held, fmt.Sprint(p))
			}
		}
		fmt.Printf("  slots %2d..%-2d %-6s %s\n", b.lo, b.hi-1, b.name, strings.Join(held, " "))
	}
	if len(decode) > 0 {
		var moves []string
		for _, p := range decode {
			slot := s.Decode(p)
			moves = append(moves, fmt.Sprintf("%d->%d", p, slot))
		}
		fmt.Println("decode (position->slot):", strings.Join(moves, " "))
	}
}

// ExampleParse shows the spec grammar: defaults filled in, budget= derived splits, and the canonical form that
// String prints (and that records and reports carry).
func ExampleParse() {
	for _, spec := range []string{
		"full",
		"streaming:recent=1024",
		"streaming:budget=256",
		"snapkv:topk=2048",
		"snapkv:budget=256",
		"snapstream:budget=4096",
		"snapstream:budget=4097",
		"snapstream:budget=256,topk=64",
		"snapstream:recent=16,topk=24",
		"snapstream:kernel=7,budget=4096,adaptive=true",
		"snapstream:budget=256@int8",
		"kvquant:bits=4",
		"kvquant:bits=8,group=128@int8",
		"snapstream:budget=6",
		"streaming:sinks=4,recent=0",
	} {
		p, err := compress.Parse(spec)
		if err != nil {
			fmt.Printf("%-46s error: %v\n", spec, err)
			continue
		}
		fmt.Println(strings.TrimRight(fmt.Sprintf("%-46s %-56s %s", spec, p, p.Split()), " "))
	}
	// Output:
	// full                                           full
	// streaming:recent=1024                          streaming:sinks=4,recent=1024                            S=4 R=1024
	// streaming:budget=256                           streaming:sinks=4,recent=252                             S=4 R=252
	// snapkv:topk=2048                               snapkv:topk=2048,window=32,kernel=5                      K=2048 W=32 k=5 (+decoded)
	// snapkv:budget=256                              snapkv:topk=224,window=32,kernel=5                       K=224 W=32 k=5 (+decoded)
	// snapstream:budget=4096                         snapstream:budget=4096                                   S=4 K=2044 R=2048 W=32 k=5
	// snapstream:budget=4097                         snapstream:budget=4097                                   S=4 K=2045 R=2048 W=32 k=5
	// snapstream:budget=256,topk=64                  snapstream:sinks=4,recent=188,topk=64,window=32,kernel=5 S=4 K=64 R=188 W=32 k=5
	// snapstream:recent=16,topk=24                   snapstream:sinks=4,recent=16,topk=24,window=32,kernel=5  S=4 K=24 R=16 W=32 k=5
	// snapstream:kernel=7,budget=4096,adaptive=true  snapstream:budget=4096,kernel=7,adaptive=true            S=4 K=2044 R=2048 W=32 k=7 adaptive
	// snapstream:budget=256@int8                     snapstream:budget=256@int8                               S=4 K=124 R=128 W=32 k=5
	// kvquant:bits=4                                 kvquant:bits=4,group=32                                  all, 4-bit K/V, group 32
	// kvquant:bits=8,group=128@int8                  kvquant:bits=8,group=128@int8                            all, 8-bit K/V, group 128
	// snapstream:budget=6                            error: policy "snapstream:budget=6": budget 6 too small for sinks 4, recent 3, topk -1 (the default split needs budget >= 7)
	// streaming:sinks=4,recent=0                     error: policy "streaming:sinks=4,recent=0": budget 4 must exceed sinks 4
}

// ExamplePlan lays out a snapstream sequence (the parameters of the shared selection fixture) and follows its ring
// through prefill and decode. The top-K positions stand for what SelectTopK would return.
func ExamplePlan() {
	topK := []int{5, 9, 12, 17, 23, 30, 31, 38, 44, 47, 50, 55}
	printLayout("snapstream:sinks=4,recent=8,topk=12,window=8,kernel=5", 64, 10, topK, []int{64, 65, 66, 67, 68, 69, 70, 71, 72})
	// Output:
	// snapstream:sinks=4,recent=8,topk=12,window=8,kernel=5, prompt 64, max new 10
	// capacity 24 = sinks 4 + ring 8 + top-K 12
	// prompt: sinks [0,4) candidates [4,56) ring [56,64); keep 12 of 52 candidates, scores needed: true
	//   slots  0..3  sinks  0 1 2 3
	//   slots  4..11 ring   60 61 62 63 56 57 58 59
	//   slots 12..23 top-K  5 9 12 17 23 30 31 38 44 47 50 55
	// decode (position->slot): 64->8 65->9 66->10 67->11 68->4 69->5 70->6 71->7 72->8
}

// ExamplePlan_shortPrompt: when the prompt has no more candidates than top-K slots, every candidate is kept
// without scoring and the unused top-K slots stay masked (-) for the life of the sequence.
func ExamplePlan_shortPrompt() {
	printLayout("snapstream:sinks=4,recent=8,topk=12,window=8,kernel=5", 16, 6, nil, []int{16, 17, 18, 19, 20, 21})
	// Output:
	// snapstream:sinks=4,recent=8,topk=12,window=8,kernel=5, prompt 16, max new 6
	// capacity 24 = sinks 4 + ring 8 + top-K 12
	// prompt: sinks [0,4) candidates [4,8) ring [8,16); keep 4 of 4 candidates, scores needed: false
	//   slots  0..3  sinks  0 1 2 3
	//   slots  4..11 ring   12 13 14 15 8 9 10 11
	//   slots 12..23 top-K  4 5 6 7 - - - - - - - -
	// decode (position->slot): 16->8 17->9 18->10 19->11 20->4 21->5
}

// ExamplePlan_adaptive: the same short prompt with adaptive=true. The candidates kept are the same; the eight
// unused top-K slots join the ring, so decoding fills empty slots before it overwrites any prompt position.
func ExamplePlan_adaptive() {
	printLayout("snapstream:sinks=4,recent=8,topk=12,window=8,kernel=5,adaptive=true", 16, 18, nil,
		[]int{16, 17, 18, 19, 20, 21, 22, 23, 24, 25})
	// Output:
	// snapstream:sinks=4,recent=8,topk=12,window=8,kernel=5,adaptive=true, prompt 16, max new 18
	// capacity 24 = sinks 4 + ring 16 + top-K 4
	// prompt: sinks [0,4) candidates [4,8) ring [8,16); keep 4 of 4 candidates, scores needed: false
	//   slots  0..3  sinks  0 1 2 3
	//   slots  4..19 ring   - - - - 8 9 10 11 12 13 14 15 - - - -
	//   slots 20..23 top-K  4 5 6 7
	// decode (position->slot): 16->16 17->17 18->18 19->19 20->4 21->5 22->6 23->7 24->8 25->9
}

// ExamplePlan_streaming: StreamingLLM keeps the sinks and the ring; the candidates in between are dropped.
func ExamplePlan_streaming() {
	printLayout("streaming:sinks=2,recent=4", 10, 3, nil, []int{10, 11, 12})
	// Output:
	// streaming:sinks=2,recent=4, prompt 10, max new 3
	// capacity 6 = sinks 2 + ring 4 + top-K 0
	// prompt: sinks [0,2) candidates [2,6) ring [6,10); keep 0 of 4 candidates, scores needed: false
	//   slots  0..1  sinks  0 1
	//   slots  2..5  ring   6 7 8 9
	// decode (position->slot): 10->2 11->3 12->4
}

// ExamplePlan_snapkv: SnapKV has no sinks; the observation window is the "ring" block (slot p mod W, never
// overwritten) and decoded tokens go to an append block after the top-K.
func ExamplePlan_snapkv() {
	printLayout("snapkv:topk=4,window=4,kernel=5", 14, 3, []int{0, 3, 7, 9}, []int{14, 15, 16})
	// Output:
	// snapkv:topk=4,window=4,kernel=5, prompt 14, max new 3
	// capacity 11 = sinks 0 + ring 4 + top-K 4 + append 3
	// prompt: sinks [0,0) candidates [0,10) ring [10,14); keep 4 of 10 candidates, scores needed: true
	//   slots  0..3  ring   12 13 10 11
	//   slots  4..7  top-K  0 3 7 9
	//   slots  8..10 append - - -
	// decode (position->slot): 14->8 15->9 16->10
}

// ExamplePlan_full: the full cache is all sinks, slot(p) = p.
func ExamplePlan_full() {
	printLayout("full", 5, 3, nil, []int{5, 6, 7})
	// Output:
	// full, prompt 5, max new 3
	// capacity 8 = sinks 8 + ring 0 + top-K 0
	// prompt: sinks [0,5) candidates [5,5) ring [5,5); keep 0 of 0 candidates, scores needed: false
	//   slots  0..7  sinks  0 1 2 3 4 - - -
	// decode (position->slot): 5->5 6->6 7->7
}

// ExampleSelectTopK scores an 8-token prompt under snapkv:topk=2,window=2,kernel=3 with one query head, one KV
// head and head_dim 1, so that every logit is q*k. Candidates are [0,6); the window is [6,8).
func ExampleSelectTopK() {
	plan, err := compress.MustParse("snapkv:topk=2,window=2,kernel=3").Plan(8, 0)
	if err != nil {
		panic(err)
	}
	// Uniform attention (zero queries): every key up to row i gets 1/(i+1) from observation row i, so positions
	// 0..6 score 1/7 + 1/8 each and position 7 scores 1/8. Pooling with zero padding, always divided by 3, leaves
	// position 0 at 2/3 of the others; positions 1..5 tie and the two lowest win.
	keys := []float32{0, 0, 0, 0, 0, 0, 0, 0}
	fmt.Println("uniform:", compress.SelectTopK(plan, []float32{0, 0}, keys, 1, 1, 1, nil)[0])

	// One key stands out (logit 4 for both observation queries): the pooled scores of 3, 4 and 5 each include
	// it and are equal, so the tie goes to the lower positions 3 and 4, not to 4 and 5.
	keys[4] = 4
	fmt.Println("spike at 4:", compress.SelectTopK(plan, []float32{1, 1}, keys, 1, 1, 1, nil)[0])

	// GQA: two query heads share the one KV head (head_dim 2 now). Head 0 attends to position 1, head 1 more
	// sharply to position 4. The KV head keeps one top-K for the group, ranked by the mean of the two heads' pooled
	// scores: with four slots, 3, 4 and 5 (around head 1's spike) and 1 (head 0's; it ties with 2, lower wins).
	plan4, err := compress.MustParse("snapkv:topk=4,window=2,kernel=3").Plan(8, 0)
	if err != nil {
		panic(err)
	}
	keys2 := make([]float32, 8*2) // [position][KV head][head_dim]
	keys2[1*2+0] = 1              // position 1 = (1, 0)
	keys2[4*2+1] = 1              // position 4 = (0, 1)
	queries := []float32{         // [observation query][query head][head_dim]
		3, 0, 0, 6, // query at position 6: head 0 = (3, 0), head 1 = (0, 6)
		3, 0, 0, 6, // query at position 7: the same
	}
	fmt.Println("GQA pair:", compress.SelectTopK(plan4, queries, keys2, 2, 1, 2, nil)[0])
	// Output:
	// uniform: [1 2]
	// spike at 4: [3 4]
	// GQA pair: [1 3 4 5]
}

// ExampleKVBytes computes the KV memory that reports print, for the shipped model (4 layers, 2 KV heads,
// head_dim 32) held in float32 by the CPU backend, on a 1000-token prompt with up to 16 new tokens. kvquant
// counts its packed size (Policy.KVBytes).
func ExampleKVBytes() {
	for _, spec := range []string{"full", "snapstream:budget=256", "streaming:sinks=4,recent=252", "snapkv:topk=224,window=32,kernel=5",
		"kvquant:bits=8,group=32", "kvquant:bits=4,group=32", "kvquant:bits=2,group=32"} {
		p := compress.MustParse(spec)
		c := p.Capacity(1000, 16)
		b := p.KVBytes(c, 4, 2, 32, 4)
		fmt.Printf("%-36s capacity %4d  %7d bytes  %.2f MiB\n", spec, c, b, float64(b)/(1<<20))
	}
	// Output:
	// full                                 capacity 1016  2080768 bytes  1.98 MiB
	// snapstream:budget=256                capacity  256   524288 bytes  0.50 MiB
	// streaming:sinks=4,recent=252         capacity  256   524288 bytes  0.50 MiB
	// snapkv:topk=224,window=32,kernel=5   capacity  272   557056 bytes  0.53 MiB
	// kvquant:bits=8,group=32              capacity 1016   611072 bytes  0.58 MiB
	// kvquant:bits=4,group=32              capacity 1016   354048 bytes  0.34 MiB
	// kvquant:bits=2,group=32              capacity 1016   225536 bytes  0.22 MiB
}

// ExamplePyramidTopK prints the per-layer top-K counts of docs/policies.md §20: KVCache-Factory's example shape
// (224 top-K slots, window 32, beta 20) on 4 and 5 layers, and a prompt too short for a pyramid.
func ExamplePyramidTopK() {
	fmt.Println(compress.PyramidTopK(224, 5000, 32, 20, 4))
	fmt.Println(compress.PyramidTopK(224, 5000, 32, 20, 5))
	fmt.Println(compress.PyramidTopK(100, 150, 32, 20, 3))
	// Output:
	// [437 295 153 11]
	// [437 331 224 117 11]
	// [100 100 100]
}

// ExampleEvictor walks h2o:budget=4,recent=2 (two heavy-hitter slots; the current token and the one before it
// protected) through a 6-token prompt and two decode steps, with given prompt scores and attention weights
// (docs/policies.md §18).
func ExampleEvictor() {
	pl, _ := compress.MustParse("h2o:budget=4,recent=2").Plan(6, 3)
	e := compress.NewEvictor(pl)
	e.Prefill([]float64{5, 1, 4, 0, 2, 3})
	fmt.Println("after prefill: kept", e.Kept(nil), "slots", e.Pos)
	for i, w := range [][]float32{{0.1, 0.2, 0.6, 0.1}, {0.3, 0.3, 0.2, 0.2}} {
		p := 6 + i
		slot := e.Decode(p)
		e.Observe(w, 1, 4)
		fmt.Printf("write %d: evict %d, slot %d; slots %v scores %.1f\n", p, e.Evicted(), slot, e.Pos, e.Score)
	}
	// Output:
	// after prefill: kept [0 2 4 5] slots [0 2 4 5]
	// write 6: evict 4, slot 2; slots [0 2 6 5] scores [5.1 4.2 0.6 3.1]
	// write 7: evict 5, slot 3; slots [0 2 6 7] scores [5.4 4.5 0.8 0.2]
}
