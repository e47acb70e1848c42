package reports

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/eval"
	"github.com/snapeval/snapeval/llm"
)

// synthPolicies are the policies of the synthetic run with the probability that each answers correctly.
var synthPolicies = []struct {
	spec     string
	acc      float64
	capacity int
}{
	{"full", 0.80, 8192},
	{"streaming:sinks=4,recent=1020", 0.55, 1024},
	{"snapstream:budget=1024", 0.66, 1024},
	{"snapstream:budget=4096", 0.78, 4096},
	{"snapkv:topk=992,window=32,kernel=5", 0.70, 1024},
	{"snapstream:budget=2048,adaptive=true", 0.76, 2048},
	{"kvquant:bits=8,group=32", 0.79, 8192},
	{"kvquant:bits=4,group=32", 0.73, 8192},
}

// unit maps a string to a deterministic number in [0, 1).
func unit(s string) float64 {
	h := sha256.Sum256([]byte(s))
	return float64(binary.BigEndian.Uint64(h[:8])>>11) / (1 << 53)
}

// synthRun builds a deterministic run: "aime24" (12 items x 4 samples, extracted answers for cons@k) and
// "longbench" (40 items x 1 sample, tagged by difficulty and length) under every synthPolicies policy.
// The same uniform decides every policy's outcome of an (item, sample), so policies are positively correlated,
// as on real data. A few records are errors: streaming overflows on some long items, one timeout under snapkv.
func synthRun() (eval.Manifest, []eval.Record) {
	var specs []string
	// the manifest lists the policies as a user would write them (non-canonical on purpose for the last)
	for _, p := range synthPolicies {
		specs = append(specs, p.spec)
	}
	specs[1] = "streaming:budget=1024"
	m := eval.Manifest{RunID: "synth-0001", Backend: "cpu/test", Config: eval.RunConfig{
		Benches: []string{"longbench", "aime24"}, Backend: "cpu", Model: "tiny-test", Policies: specs, Samples: 4, Seed: 1}}
	var recs []eval.Record
	add := func(bench, item string, sample int, tags string, long bool) {
		u := unit(fmt.Sprintf("%s/%s/%d", bench, item, sample))
		for pi, p := range synthPolicies {
			r := eval.Record{RunID: m.RunID, Bench: bench, ItemID: item, Policy: p.spec, Sample: sample, Seed: uint64(sample + 1),
				PromptTokens: 900, OutputTokens: 100 + int(300*unit(item+p.spec)), Capacity: p.capacity,
				KVBytes: compress.MustParse(p.spec).KVBytes(p.capacity, 4, 2, 64, 2), Backend: "cpu/test", Tags: tags, FinishReason: "stop"}
			switch {
			case long && pi == 1:
				r.ErrorKind, r.Error = llm.ErrKindContextOverflow, "prompt too long"
				r.OutputTokens, r.FinishReason = 0, ""
			case bench == "aime24" && item == "p03" && sample == 2 && pi == 4:
				r.ErrorKind, r.Error = llm.ErrKindTimeout, "deadline exceeded"
				r.OutputTokens, r.FinishReason = 0, ""
			default:
				r.Correct = u < p.acc
				if r.Correct {
					r.Score, r.Extracted, r.Verdict = 1, "42", "pass"
				} else {
					r.Extracted, r.Verdict = fmt.Sprint(int(10*unit(item+p.spec+fmt.Sprint(sample)))), "wrong_answer"
				}
				r.Output = "The answer is " + r.Extracted
			}
			recs = append(recs, r)
		}
	}
	for i := range 12 {
		for s := range 4 {
			add("aime24", fmt.Sprintf("p%02d", i), s, "", false)
		}
	}
	diffs := []string{"easy", "hard"}
	lengths := []string{"short", "medium", "long"}
	for i := range 40 {
		length := lengths[i%3]
		add("longbench", fmt.Sprintf("lb%03d", i), 0, fmt.Sprintf("difficulty=%s;length=%s", diffs[i%2], length), length == "long" && i%4 == 2)
	}
	return m, recs
}
