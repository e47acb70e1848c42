package model

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

const baseLlama = `"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100,"max_position_embeddings":512`

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name  string
		json  string
		check func(c Config) bool
	}{
		{"defaults", `{` + baseLlama + `}`, func(c Config) bool {
			return c.KVHeads == 4 && c.HeadDim == 16 && c.RopeTheta == 10000 && c.Rope.Type == "default" && !c.TieEmbeddings && !c.AttentionBias && c.BOS == -1
		}},
		{"4.x spelling", `{` + baseLlama + `,"torch_dtype":"bfloat16","rope_theta":500000,"rope_scaling":{"rope_type":"llama3","factor":32,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":8192},"eos_token_id":[128001,128009],"bos_token_id":128000}`,
			func(c Config) bool {
				return c.DType == "bfloat16" && c.RopeTheta == 500000 && c.Rope == (RopeScaling{"llama3", 32, 1, 4, 8192}) &&
					reflect.DeepEqual(c.EOS, []int{128001, 128009}) && c.BOS == 128000
			}},
		{"rope_parameters", `{` + baseLlama + `,"dtype":"bfloat16","rope_parameters":{"rope_type":"llama3","rope_theta":500000,"factor":8}}`,
			func(c Config) bool {
				return c.RopeTheta == 500000 && c.Rope.Type == "llama3" && c.Rope.Factor == 8 && c.DType == "bfloat16"
			}},
		{"old type key", `{` + baseLlama + `,"rope_scaling":{"type":"linear","factor":2}}`, func(c Config) bool { return c.Rope.Type == "linear" && c.Rope.Factor == 2 }},
		{"qwen2", `{"model_type":"qwen2","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100,"max_position_embeddings":512,"tie_word_embeddings":true,"eos_token_id":7,"rope_scaling":null}`,
			func(c Config) bool {
				return c.AttentionBias && c.TieEmbeddings && c.KVHeads == 2 && reflect.DeepEqual(c.EOS, []int{7})
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig("config.json", []byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct{ json, field string }{
		{`{"model_type":"gpt2"}`, "model_type"},
		{`{` + baseLlama + `,"num_key_value_heads":3}`, "num_key_value_heads"},
		{`{` + baseLlama + `,"hidden_act":"gelu"}`, "hidden_act"},
		{`{` + baseLlama + `,"rope_scaling":{"rope_type":"yarn","factor":4}}`, "rope_type"},
		{`{` + baseLlama + `,"eos_token_id":"x"}`, "eos_token_id"},
		{`{` + baseLlama + `,"head_dim":7}`, "head_dim"},
		{`{"model_type":"llama","hidden_size":0}`, "hidden_size"},
		{`{` + baseLlama + `,"rms_norm_eps":-1}`, "rms_norm_eps"},
		{`{"model_type":"qwen2","use_sliding_window":true}`, "use_sliding_window"},
		{`[`, "config.json"},
	}
	for _, tc := range tests {
		_, err := ParseConfig("config.json", []byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), "config.json") {
			t.Errorf("%s: err = %v, want mention of %s", tc.json, err, tc.field)
		}
	}
}

func TestGenerationConfig(t *testing.T) {
	for in, want := range map[string][]int{`{"eos_token_id":2}`: {2}, `{"eos_token_id":[1,2]}`: {1, 2}, `{}`: nil, `{"eos_token_id":null}`: nil} {
		g, err := ParseGenerationConfig("g", []byte(in))
		if err != nil || !reflect.DeepEqual(g.EOS, want) {
			t.Errorf("%s: %v %v", in, g.EOS, err)
		}
	}
	if _, err := ParseGenerationConfig("g", []byte(`{"eos_token_id":{}}`)); err == nil {
		t.Error("bad eos accepted")
	}
}

// TestLlama3InvFreq checks the three llama3 bands against transformers' formula.
func TestLlama3InvFreq(t *testing.T) {
	c := Config{HeadDim: 128, RopeTheta: 500000, Rope: RopeScaling{"llama3", 8, 1, 4, 8192}}
	inv := c.InvFreq()
	base := func(i int) float64 { return 1 / math.Pow(500000, float64(2*i)/128) }
	if inv[0] != base(0) {
		t.Errorf("high-frequency band scaled: %v", inv[0])
	}
	if last := len(inv) - 1; math.Abs(inv[last]-base(last)/8) > 1e-18 {
		t.Errorf("low-frequency band: %v, want %v", inv[last], base(last)/8)
	}
	for i, f := range inv {
		if f > base(i) || f < base(i)/8 {
			t.Errorf("inv[%d] = %v outside [base/8, base]", i, f)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{` + baseLlama + `}`))
	f.Add([]byte(`{` + baseLlama + `,"rope_parameters":{"rope_type":"llama3","rope_theta":5e5}}`))
	f.Add([]byte(`{"model_type":"qwen2","hidden_size":64,"intermediate_size":1,"num_hidden_layers":1,"num_attention_heads":3,"vocab_size":1,"max_position_embeddings":1,"eos_token_id":[1]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if g, err := ParseGenerationConfig("fuzz", b); err == nil && g.EOS == nil && len(b) == 0 {
			t.Fatal("empty generation config accepted")
		}
		c, err := ParseConfig("fuzz", b)
		if err != nil {
			return
		}
		if c.Heads%c.KVHeads != 0 || c.HeadDim <= 0 || c.HeadDim%2 != 0 || c.Layers <= 0 {
			t.Fatalf("accepted inconsistent config %+v", c)
		}
		for _, f := range c.InvFreq() {
			if math.IsNaN(f) || f < 0 {
				t.Fatalf("inv freq %v from %+v", f, c)
			}
		}
	})
}
