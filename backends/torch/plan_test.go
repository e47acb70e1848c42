package torch

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/snapeval/snapeval/compress"
	"github.com/snapeval/snapeval/internal/conformance"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenPlans is testdata/plans.json: the plans the Python tests run with (the worker computes none of them) and
// compress.SlotOf and Slots.Prefill over a grid of plans, which the worker's slot formula must reproduce.
type goldenPlans struct {
	Note     string                   `json:"note"`
	Fixtures map[string][]fixturePlan `json:"fixtures"`
	// Policies are the plans of the cases of backends/cpu/engine/testdata/policies-MODEL.json (issue #23's policies).
	Policies  map[string][]fixturePlan `json:"policies"`
	Selection []wirePlan               `json:"selection"`
	Slots     []slotCase               `json:"slots"`
}

type fixturePlan struct {
	Spec string   `json:"spec"`
	Plan wirePlan `json:"plan"`
}

type slotCase struct {
	Spec    string   `json:"spec"`
	Plan    wirePlan `json:"plan"`
	SlotOf  []int    `json:"slot_of"` // compress.SlotOf for positions 0 .. prompt_len+max_new+1
	Prefill [][2]int `json:"prefill"` // Slots.Prefill with the first valid_topk candidates as the top-K
}

// fixtureSpecs reads the policies of a conformance model's reference.json as spec strings.
func fixtureSpecs(t *testing.T, model string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "cpu", "testdata", "models", model, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []struct {
			Policy conformance.Policy `json:"policy"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range ref.Cases {
		out = append(out, c.Policy.Spec())
	}
	return out
}

// modelLayers is num_hidden_layers of a conformance model's config.json.
func modelLayers(t *testing.T, model string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "cpu", "testdata", "models", model, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Layers int `json:"num_hidden_layers"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Layers < 1 {
		t.Fatalf("%s config.json: num_hidden_layers %d (%v)", model, c.Layers, err)
	}
	return c.Layers
}

func mustPlan(t *testing.T, p compress.Policy, L, maxNew int) compress.Plan {
	t.Helper()
	pl, err := p.Plan(L, maxNew)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

func buildGolden(t *testing.T) goldenPlans {
	g := goldenPlans{Note: "written by `go test ./backends/torch -run TestGoldenPlans -update`; read by worker/tests",
		Fixtures: map[string][]fixturePlan{}, Policies: map[string][]fixturePlan{}}
	for _, m := range []string{"llama-gqa", "qwen2-tied"} {
		layers := modelLayers(t, m)
		for _, spec := range fixtureSpecs(t, m) {
			g.Fixtures[m] = append(g.Fixtures[m], fixturePlan{Spec: spec, Plan: toWire(mustPlan(t, compress.MustParse(spec), 160, 24), layers)})
		}
		b, err := os.ReadFile(filepath.Join("..", "cpu", "engine", "testdata", "policies-"+m+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var fx struct {
			PromptIDs []int `json:"prompt_ids"`
			Cases     []struct {
				Spec   string `json:"spec"`
				Greedy []int  `json:"greedy"`
			} `json:"cases"`
		}
		if err := json.Unmarshal(b, &fx); err != nil {
			t.Fatal(err)
		}
		for _, c := range fx.Cases {
			pl := mustPlan(t, compress.MustParse(c.Spec), len(fx.PromptIDs), len(c.Greedy))
			g.Policies[m] = append(g.Policies[m], fixturePlan{Spec: c.Spec, Plan: toWire(pl, layers)})
		}
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "compress", "testdata", "selection.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sel []struct {
		PromptLen int `json:"prompt_len"`
		Sinks     int `json:"sinks"`
		Recent    int `json:"recent"`
		TopK      int `json:"topk"`
		Window    int `json:"window"`
		Kernel    int `json:"kernel"`
	}
	if err := json.Unmarshal(b, &sel); err != nil {
		t.Fatal(err)
	}
	for _, c := range sel {
		pol := compress.Policy{Method: compress.MethodSnapStream, Sinks: c.Sinks, Recent: c.Recent, TopK: c.TopK,
			Window: c.Window, Kernel: c.Kernel, Budget: c.Sinks + c.Recent + c.TopK}
		g.Selection = append(g.Selection, toWire(mustPlan(t, pol, c.PromptLen, 0), 0))
	}
	grid := []struct {
		spec      string
		L, maxNew int
	}{
		{"full", 7, 5}, {"full", 1, 0},
		{"streaming:sinks=4,recent=8", 30, 20}, {"streaming:sinks=4,recent=8", 3, 20}, {"streaming:sinks=0,recent=5", 12, 9},
		{"snapkv:topk=6,window=4,kernel=3", 25, 7}, {"snapkv:topk=30,window=8,kernel=5", 12, 3}, {"snapkv:topk=6,window=40,kernel=3", 25, 4},
		{"snapstream:budget=32", 100, 50}, {"snapstream:budget=32", 20, 50}, {"snapstream:sinks=2,recent=6,topk=10,window=4,kernel=3", 40, 13},
		{"snapstream:budget=32,adaptive=true", 20, 50}, {"snapstream:budget=32,adaptive=true", 200, 50},
	}
	for _, c := range grid {
		pl := mustPlan(t, compress.MustParse(c.spec), c.L, c.maxNew)
		sc := slotCase{Spec: c.spec, Plan: toWire(pl, 0)}
		for p := 0; p < c.L+c.maxNew+2; p++ {
			sc.SlotOf = append(sc.SlotOf, compress.SlotOf(pl, p))
		}
		top := make([]int, pl.ValidTopK)
		for i := range top {
			top[i] = pl.Lo + i
		}
		for _, a := range compress.NewSlots(pl).Prefill(top) {
			sc.Prefill = append(sc.Prefill, [2]int{a.Pos, a.Slot})
		}
		g.Slots = append(g.Slots, sc)
	}
	return g
}

// TestGoldenPlans keeps testdata/plans.json equal to what package compress computes today (-update rewrites it).
func TestGoldenPlans(t *testing.T) {
	b, err := json.MarshalIndent(buildGolden(t), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	golden(t, "plans.json", b)
}

// golden compares got with testdata/name, which -update rewrites.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old, got) {
		t.Errorf("%s is stale: run go test ./backends/torch -run %s -update", path, t.Name())
	}
}

// TestToWirePolicies: the wire plan names each policy and carries its parameters; pyramidkv's layers sum to the
// layers' share of the top-K and the worker holds the widest layer's capacity.
func TestToWirePolicies(t *testing.T) {
	const layers = 4
	for _, c := range []struct {
		spec   string
		L, new int
		check  func(w wirePlan, p compress.Plan) string
	}{
		{"kvquant:bits=4,group=16", 100, 8, func(w wirePlan, p compress.Plan) string {
			if w.Method != "kvquant" || w.Bits != 4 || w.Group != 16 || w.Slots != p.Capacity {
				return "kvquant fields"
			}
			return ""
		}},
		{"h2o:budget=64,recent=16", 100, 8, func(w wirePlan, p compress.Plan) string {
			if w.Method != "h2o" || !w.Evict || w.Ring != 16 || w.TopK != 48 || w.Slots != 64 {
				return "h2o fields"
			}
			return ""
		}},
		{"snapstream:budget=64,rerotate=true", 100, 8, func(w wirePlan, p compress.Plan) string {
			if w.Method != "snapstream" || !w.Rerotate {
				return "rerotate"
			}
			return ""
		}},
		{"adakv:base=snapstream,budget=64,safeguard=30", 100, 8, func(w wirePlan, p compress.Plan) string {
			if w.Method != "adakv" || w.Base != "snapstream" || w.Safeguard != 30 || w.Slots != p.Capacity {
				return "adakv fields"
			}
			return ""
		}},
		{"pyramidkv:budget=256", 2000, 8, func(w wirePlan, p compress.Plan) string {
			sum, widest := 0, 0
			for _, k := range w.LayerTopK {
				sum += k
				widest = max(widest, k)
			}
			if w.Method != "pyramidkv" || len(w.LayerTopK) != layers || sum != layers*p.TopK || widest <= p.TopK ||
				w.Slots != p.Capacity-p.TopK+widest {
				return fmt.Sprintf("pyramidkv layers %v (sum %d, top-K %d), slots %d", w.LayerTopK, sum, p.TopK, w.Slots)
			}
			return ""
		}},
		{"full", 10, 2, func(w wirePlan, p compress.Plan) string {
			if w.Method != "full" || w.Slots != 12 || w.LayerTopK != nil {
				return "full"
			}
			return ""
		}},
	} {
		p := mustPlan(t, compress.MustParse(c.spec), c.L, c.new)
		if msg := c.check(toWire(p, layers), p); msg != "" {
			t.Errorf("%s: %s", c.spec, msg)
		}
	}
}
