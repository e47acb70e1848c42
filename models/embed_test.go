package models

import (
	"encoding/binary"
	"encoding/json"
	"io/fs"
	"strings"
	"testing"

	"github.com/snapeval/snapeval/backends/cpu/tokenizer"
	"github.com/snapeval/snapeval/eval/synthetic"
)

type llamaConfig struct {
	Architectures []string `json:"architectures"`
	ModelType     string   `json:"model_type"`
	HiddenSize    int      `json:"hidden_size"`
	Intermediate  int      `json:"intermediate_size"`
	Layers        int      `json:"num_hidden_layers"`
	Heads         int      `json:"num_attention_heads"`
	KVHeads       int      `json:"num_key_value_heads"`
	HeadDim       int      `json:"head_dim"`
	Vocab         int      `json:"vocab_size"`
	MaxPos        int      `json:"max_position_embeddings"`
	Tied          bool     `json:"tie_word_embeddings"`
	EOS           int      `json:"eos_token_id"`
	RopeTheta     float64  `json:"rope_theta"`
	RMSNormEps    float64  `json:"rms_norm_eps"`
	HiddenAct     string   `json:"hidden_act"`
	AttentionBias bool     `json:"attention_bias"`
}

func readConfig(t *testing.T) llamaConfig {
	t.Helper()
	b, err := fs.ReadFile(SnapTiny, "config.json")
	if err != nil {
		t.Fatal(err)
	}
	var c llamaConfig
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfig(t *testing.T) {
	c := readConfig(t)
	if len(c.Architectures) != 1 || c.Architectures[0] != "LlamaForCausalLM" || c.ModelType != "llama" {
		t.Errorf("architecture %v / %s", c.Architectures, c.ModelType)
	}
	if c.Heads*c.HeadDim != c.HiddenSize || c.Heads%c.KVHeads != 0 || c.KVHeads != 2 || !c.Tied || c.MaxPos != 4096 {
		t.Errorf("shape %+v", c)
	}
	if c.HiddenAct != "silu" || c.AttentionBias || c.RopeTheta <= 0 || c.RMSNormEps <= 0 {
		t.Errorf("config %+v", c)
	}
	var gc struct {
		EOS int `json:"eos_token_id"`
	}
	b, err := fs.ReadFile(SnapTiny, "generation_config.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &gc); err != nil || gc.EOS != c.EOS {
		t.Errorf("generation_config eos %d (%v), config eos %d", gc.EOS, err, c.EOS)
	}
}

// TestWeights checks the safetensors header against the config: every tensor of a tied-embedding llama, in bf16,
// with its shape, laid out back to back, and nothing else.
func TestWeights(t *testing.T) {
	c := readConfig(t)
	b, err := fs.ReadFile(SnapTiny, "model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 25<<20 {
		t.Errorf("checkpoint is %d bytes, over 25 MiB", len(b))
	}
	n := binary.LittleEndian.Uint64(b[:8])
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{
		"model.embed_tokens.weight": {c.Vocab, c.HiddenSize},
		"model.norm.weight":         {c.HiddenSize},
	}
	q, kv := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	for l := range c.Layers {
		p := "model.layers." + itoa(l) + "."
		want[p+"input_layernorm.weight"] = []int{c.HiddenSize}
		want[p+"post_attention_layernorm.weight"] = []int{c.HiddenSize}
		want[p+"self_attn.q_proj.weight"] = []int{q, c.HiddenSize}
		want[p+"self_attn.k_proj.weight"] = []int{kv, c.HiddenSize}
		want[p+"self_attn.v_proj.weight"] = []int{kv, c.HiddenSize}
		want[p+"self_attn.o_proj.weight"] = []int{c.HiddenSize, q}
		want[p+"mlp.gate_proj.weight"] = []int{c.Intermediate, c.HiddenSize}
		want[p+"mlp.up_proj.weight"] = []int{c.Intermediate, c.HiddenSize}
		want[p+"mlp.down_proj.weight"] = []int{c.HiddenSize, c.Intermediate}
	}
	total := 0
	for name, raw := range hdr {
		if name == "__metadata__" {
			continue
		}
		var tinfo struct {
			Dtype   string `json:"dtype"`
			Shape   []int  `json:"shape"`
			Offsets [2]int `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &tinfo); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		shape, ok := want[name]
		if !ok {
			t.Errorf("unexpected tensor %s", name)
			continue
		}
		delete(want, name)
		elems := 1
		for _, d := range tinfo.Shape {
			elems *= d
		}
		if tinfo.Dtype != "BF16" || !equal(tinfo.Shape, shape) || tinfo.Offsets[1]-tinfo.Offsets[0] != 2*elems {
			t.Errorf("%s: %s %v %v, want BF16 %v", name, tinfo.Dtype, tinfo.Shape, tinfo.Offsets, shape)
		}
		total += 2 * elems
	}
	for name := range want {
		t.Errorf("missing tensor %s", name)
	}
	if int(n)+8+total != len(b) {
		t.Errorf("file is %d bytes, header+tensors %d", len(b), int(n)+8+total)
	}
}

// TestTokenizer loads the shipped tokenizer with the project's tokenizer package and checks what the suite relies
// on: EOS is token 0, digits are single tokens, and suite prompts are sized exactly by it.
func TestTokenizer(t *testing.T) {
	c := readConfig(t)
	b, err := fs.ReadFile(SnapTiny, "tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Parse(b, "snaptiny/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := tok.TokenID("<|endoftext|>"); !ok || id != c.EOS {
		t.Errorf("EOS id %d %v, config says %d", id, ok, c.EOS)
	}
	if tok.VocabSize() != c.Vocab {
		t.Errorf("tokenizer vocab %d, config %d", tok.VocabSize(), c.Vocab)
	}
	ids := tok.Encode(" 656430")
	if len(ids) != 7 || tok.Decode(ids) != " 656430" {
		t.Errorf("Encode(\" 656430\") = %v", ids)
	}
	items, err := synthetic.Generate(synthetic.Config{Split: synthetic.SplitEval, Seed: 1, Tasks: synthetic.Tasks,
		Lengths: []int{1024}, N: 1, Tok: tok})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range items {
		n := len(tok.Encode(s.Prompt))
		if n > 1024 || n < 990 || tok.Decode(tok.Encode(s.Prompt)) != s.Prompt {
			t.Errorf("%s: %d tokens (round trip %v)", s.ID, n, tok.Decode(tok.Encode(s.Prompt)) == s.Prompt)
		}
		if !strings.HasPrefix(s.Answer, " ") {
			t.Errorf("%s: answer %q", s.ID, s.Answer)
		}
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
