package compress_test

import (
	"fmt"

	"github.com/snapeval/snapeval/compress"
)

// Example parses a policy, lays out a 100k-token prompt with up to 8k new tokens, and follows the slot
// bookkeeping of one layer and KV head through prefill and two decode steps.
func Example() {
	p, err := compress.Parse("snapstream:budget=4096")
	if err != nil {
		panic(err)
	}
	fmt.Println(p, "=", p.Split())

	plan, err := p.Plan(100_000, 8192)
	if err != nil {
		panic(err)
	}
	fmt.Printf("capacity %d: sinks [0,%d) candidates [%d,%d) ring [%d,%d) keep %d of them, scores needed: %v\n",
		plan.Capacity, plan.Lo, plan.Lo, plan.Hi, plan.Hi, plan.PromptLen, plan.ValidTopK, plan.NeedScores)
	fmt.Printf("KV memory, 32 layers x 8 KV heads x 128 dims in bf16: %d MiB (full: %d MiB)\n",
		compress.KVBytes(plan.Capacity, 32, 8, 128, 2)>>20,
		compress.KVBytes(compress.MustParse("full").Capacity(100_000, 8192), 32, 8, 128, 2)>>20)

	// A backend would take the top-K from SelectTopK; here: the first ValidTopK candidates.
	top := make([]int, plan.ValidTopK)
	for i := range top {
		top[i] = plan.Lo + i
	}
	slots := compress.NewSlots(plan)
	assign := slots.Prefill(top)
	fmt.Println("prefill writes", len(assign), "positions; last:", assign[len(assign)-1])
	fmt.Println("token 100000 -> slot", slots.Decode(100_000), "token 100001 -> slot", slots.Decode(100_001))

	// Output:
	// snapstream:budget=4096 = S=4 K=2044 R=2048 W=32 k=5
	// capacity 4096: sinks [0,4) candidates [4,97952) ring [97952,100000) keep 2044 of them, scores needed: true
	// KV memory, 32 layers x 8 KV heads x 128 dims in bf16: 512 MiB (full: 13524 MiB)
	// prefill writes 4096 positions; last: {99999 1695}
	// token 100000 -> slot 1696 token 100001 -> slot 1697
}

// ExampleParse_weights shows the @int8 suffix: the same cache policy on int8 weights, a separate policy in a
// run and its report (the cache plan does not change).
func ExampleParse_weights() {
	p := compress.MustParse("snapstream:budget=256,sinks=4@int8")
	q := compress.MustParse("snapstream:budget=256")
	fmt.Println(p, p.Weights, p == q, p.Split() == q.Split())
	// Output:
	// snapstream:budget=256@int8 int8 false true
}
