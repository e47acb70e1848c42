package model

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/backends/cpu/safetensors"
)

// reference is the conformance fixture reference.json.
type reference struct {
	PromptIDs   []int     `json:"prompt_ids"`
	LogitsLast  []float64 `json:"logits_last"`
	LogitsPos10 []float64 `json:"logits_pos10"`
	Cases       []struct {
		Policy map[string]any `json:"policy"`
		Kept   [][][]int      `json:"kept"`
		Greedy []int          `json:"greedy"`
	} `json:"cases"`
}

var fixtures = []string{"llama-gqa", "qwen2-tied"}

func loadFixture(t testing.TB, name string) (*Model, *reference) {
	t.Helper()
	dir := filepath.Join("..", "testdata", "models", name)
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig("config.json", b)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := Load(cfg, ck)
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	b, err = os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	return m, &ref
}

// relErr is max|a-b| / max|b|.
func relErr(a []float32, b []float64) float64 {
	var num, den float64
	for i := range b {
		num = math.Max(num, math.Abs(float64(a[i])-b[i]))
		den = math.Max(den, math.Abs(b[i]))
	}
	return num / den
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// prefillLogits runs a dense prefill of ids and returns the last logits.
func prefillLogits(t testing.TB, m *Model, ws *Workspace, ids []int, chunk int) ([]float32, *Seq) {
	seq := m.NewSeq(len(ids) + 32)
	logits := make([]float32, m.Cfg.Vocab)
	for p := 0; p < len(ids); p += chunk {
		e := min(p+chunk, len(ids))
		seg := Segment{Seq: seq, Tokens: ids[p:e], Pos: p}
		if e == len(ids) {
			seg.Logits = logits
		}
		if err := m.Forward(ws, []Segment{seg}); err != nil {
			t.Fatal(err)
		}
	}
	return logits, seq
}

func TestFixtureLogitsAndFullGreedy(t *testing.T) { bothPaths(t, testFixtureLogitsAndFullGreedy) }

func testFixtureLogitsAndFullGreedy(t *testing.T) {
	pool := NewPool(0)
	defer pool.Close()
	for _, name := range fixtures {
		t.Run(name, func(t *testing.T) {
			m, ref := loadFixture(t, name)
			ws := NewWorkspace(pool)
			for _, chunk := range []int{len(ref.PromptIDs), 7} {
				logits, seq := prefillLogits(t, m, ws, ref.PromptIDs, chunk)
				t.Logf("chunk %d: logits_last rel err %.2g", chunk, relErr(logits, ref.LogitsLast))
				if e := relErr(logits, ref.LogitsLast); e > 1e-3 {
					t.Errorf("chunk %d: logits_last relative error %.3g", chunk, e)
				}
				l10, _ := prefillLogits(t, m, ws, ref.PromptIDs[:11], chunk)
				if e := relErr(l10, ref.LogitsPos10); e > 1e-3 {
					t.Errorf("chunk %d: logits_pos10 relative error %.3g", chunk, e)
				}
				// Greedy decode with the dense cache is the "full" policy.
				var full []int
				for _, c := range ref.Cases {
					if c.Policy["method"] == "full" {
						full = c.Greedy
					}
				}
				tok := argmax(logits)
				var got []int
				for i := 0; i < len(full); i++ {
					got = append(got, tok)
					seg := Segment{Seq: seq, Tokens: []int{tok}, Pos: len(ref.PromptIDs) + i, Logits: logits}
					if err := m.Forward(ws, []Segment{seg}); err != nil {
						t.Fatal(err)
					}
					tok = argmax(logits)
				}
				for i := range full {
					if got[i] != full[i] {
						t.Fatalf("chunk %d: greedy = %v, want %v", chunk, got, full)
					}
				}
			}
		})
	}
}

func TestLoadErrorsNameTheTensor(t *testing.T) {
	dir := filepath.Join("..", "testdata", "models", "qwen2-tied")
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig("config.json", b)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	bad := cfg
	bad.Intermediate++
	if _, err := Load(bad, ck); err == nil || !strings.Contains(err.Error(), "mlp.gate_proj.weight") || !strings.Contains(err.Error(), "shape") {
		t.Errorf("shape mismatch: err = %v", err)
	}
	delete(ck.Tensors, "model.layers.1.self_attn.k_proj.bias")
	if _, err := Load(cfg, ck); err == nil || !strings.Contains(err.Error(), `"model.layers.1.self_attn.k_proj.bias" not found`) {
		t.Errorf("missing tensor: err = %v", err)
	}
}
