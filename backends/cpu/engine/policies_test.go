package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/snapeval/snapeval/backends/cpu/model"
	"github.com/snapeval/snapeval/compress"
)

// policyFixture is testdata/policies-MODEL.json, written by tools/policies/reference.py (float64): for each
// policy spec, the kept positions after prefill ([layer][kv head]) and the greedy tokens; for kvquant also the
// logits of the last step; for h2o and tova the position evicted at every decode step ([step][layer][kv head],
// -1 none).
type policyFixture struct {
	PromptIDs []int `json:"prompt_ids"`
	Cases     []struct {
		Spec       string    `json:"spec"`
		Kept       [][][]int `json:"kept"`
		Greedy     []int     `json:"greedy"`
		LogitsLast []float64 `json:"logits_last"`
		Evicted    [][][]int `json:"evicted"`
		Margin     *float64  `json:"margin"`
	} `json:"cases"`
}

// lastLogitsTol bounds the relative error (largest difference over largest reference logit) of a kvquant case's
// last logits: the engine's float32 keys and values against the reference's float64 ones, through the same
// quantizer (docs/policies.md §17).
const lastLogitsTol = 1e-3

// relErr is the largest absolute difference between a and b over the largest |b|.
func relErr(a []float32, b []float64) float64 {
	var num, den float64
	for i := range b {
		num = math.Max(num, math.Abs(float64(a[i])-b[i]))
		den = math.Max(den, math.Abs(b[i]))
	}
	return num / den
}

// TestPolicyConformance: the policies beyond the shared fixtures (rerotate, knorm, kvquant, h2o, tova, pyramidkv,
// adakv) reproduce the float64 reference's kept positions, evictions and greedy tokens exactly, on both kernel
// paths, alone and batched with the shared fixtures' policies, and again from the prefix cache; kvquant's last
// logits agree within lastLogitsTol.
func TestPolicyConformance(t *testing.T) {
	prev := model.SIMD()
	defer model.SetSIMD(prev)
	for _, simd := range []bool{true, false} {
		model.SetSIMD(simd)
		for _, name := range fixtures {
			m, ref := loadFixture(t, name)
			b, err := os.ReadFile(filepath.Join("testdata", "policies-"+name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			var fx policyFixture
			if err := json.Unmarshal(b, &fx); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fx.PromptIDs, ref.PromptIDs) {
				t.Fatalf("%s: fixture prompt differs from reference.json", name)
			}
			for _, slots := range []int{1, 4} {
				t.Run(fmt.Sprintf("simd=%v/%s/slots=%d", model.SIMD(), name, slots), func(t *testing.T) {
					e := New(m, Options{Slots: slots, PrefillChunk: 64})
					defer e.Close()
					var jobs []Job
					for _, c := range fx.Cases {
						jobs = append(jobs, Job{Prompt: fx.PromptIDs, Policy: compress.MustParse(c.Spec), MaxNew: len(c.Greedy), WantKept: true,
							WantLogits: c.LogitsLast != nil, WantEvicted: c.Evicted != nil})
					}
					// Two of the shared cases ride along (a plain streaming and snapstream in the same batches).
					jobs = append(jobs, job(t, ref, ref.Cases[1]), job(t, ref, ref.Cases[3]))
					for round := range 2 {
						res := runAll(t, e, jobs)
						for i, c := range fx.Cases {
							if !reflect.DeepEqual(res[i].Kept, c.Kept) {
								t.Errorf("round %d %s: kept differs from the reference\n got %v\nwant %v", round, c.Spec, res[i].Kept, c.Kept)
							}
							if !reflect.DeepEqual(res[i].Tokens, c.Greedy) {
								t.Errorf("round %d %s: greedy = %v, want %v", round, c.Spec, res[i].Tokens, c.Greedy)
							}
							if c.Evicted != nil && !reflect.DeepEqual(res[i].Evicted, c.Evicted) {
								t.Errorf("round %d %s: evictions differ from the reference\n got %v\nwant %v", round, c.Spec, res[i].Evicted, c.Evicted)
							}
							if c.LogitsLast != nil {
								e := relErr(res[i].LastLogits, c.LogitsLast)
								if round == 0 && slots == 1 {
									t.Logf("%s: last logits relative error %.2g", c.Spec, e)
								}
								if e > lastLogitsTol {
									t.Errorf("round %d %s: last logits relative error %.3g > %g", round, c.Spec, e, lastLogitsTol)
								}
							}
						}
						for j, c := range []refCase{ref.Cases[1], ref.Cases[3]} {
							if r := res[len(fx.Cases)+j]; !reflect.DeepEqual(r.Tokens, c.Greedy) {
								t.Errorf("round %d %s beside the new policies: greedy = %v, want %v", round, c.Policy.Spec(), r.Tokens, c.Greedy)
							}
						}
					}
				})
			}
		}
	}
}

// TestRerotateCoveringEqualsFull: with a budget that is never exceeded, re-indexed positions are the
// original ones, so rerotate must give full's tokens bit for bit (every key re-rotated from its pre-RoPE copy).
func TestRerotateCoveringEqualsFull(t *testing.T) {
	m, ref := loadFixture(t, "llama-gqa")
	e := New(m, Options{Slots: 2, PrefillChunk: 64})
	defer e.Close()
	n := 24
	L := len(ref.PromptIDs)
	specs := []string{"full", fmt.Sprintf("streaming:sinks=4,recent=%d,rerotate=true", L+n), fmt.Sprintf("snapstream:sinks=4,recent=%d,topk=8,rerotate=true", L+n)}
	var jobs []Job
	for _, s := range specs {
		jobs = append(jobs, Job{Prompt: ref.PromptIDs, Policy: compress.MustParse(s), MaxNew: n})
	}
	res := runAll(t, e, jobs)
	for i := 1; i < len(res); i++ {
		if !reflect.DeepEqual(res[i].Tokens, res[0].Tokens) {
			t.Errorf("%s: %v, full %v", specs[i], res[i].Tokens, res[0].Tokens)
		}
	}
}

// TestReferencePyramidMatchesGo: tools/policies/reference.py's pyramid schedule (exact fractions) and
// compress.PyramidTopK (integers) agree on random shapes; the fixtures cover only two and three layers.
func TestReferencePyramidMatchesGo(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3: the reference's pyramid schedule was not compared")
	}
	rng := rand.New(rand.NewPCG(13, 14))
	var cases [][5]int
	for range 500 {
		cases = append(cases, [5]int{rng.IntN(400), rng.IntN(1200), 1 + rng.IntN(64), 1 + rng.IntN(30), 1 + rng.IntN(80)})
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", "import json, sys; sys.path.insert(0, sys.argv[1]); import reference as r; "+
		"print(json.dumps([r.pyramid_topk(*c) for c in json.load(sys.stdin)]))", filepath.Join("..", "..", "..", "tools", "policies"))
	cmd.Stdin = bytes.NewReader(in)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference.py: %v", err)
	}
	var want [][]int
	if err := json.Unmarshal(out, &want); err != nil || len(want) != len(cases) {
		t.Fatalf("reference.py printed %d schedules (%v)", len(want), err)
	}
	for i, c := range cases {
		if got := compress.PyramidTopK(c[0], c[1], c[2], c[3], c[4]); !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("PyramidTopK%v = %v, reference.py %v", c, got, want[i])
		}
	}
}
