// Package model is a float32 forward pass for Hugging Face llama and qwen2 decoder checkpoints
// (bf16, f16 or f32 weights): embedding, RMSNorm, RoPE with llama3 scaling, grouped-query attention,
// SwiGLU MLP and lm_head, over a caller-owned per-sequence KV cache that can be dense (prefill) or
// a fixed set of slots (a compressed cache under a SnapStream policy).
package model

import (
	"encoding/json"
	"fmt"
	"math"
)

// Config is the subset of a Hugging Face config.json the forward pass needs, with defaults applied.
type Config struct {
	ModelType     string
	Hidden        int
	Intermediate  int
	Layers        int
	Heads         int
	KVHeads       int
	HeadDim       int
	Vocab         int
	MaxPositions  int
	RMSNormEps    float64
	RopeTheta     float64
	Rope          RopeScaling
	TieEmbeddings bool
	AttentionBias bool // q/k/v biases (always on for qwen2)
	DType         string
	BOS           int   // -1 when absent
	EOS           []int // from config.json; generation_config.json may override
}

// RopeScaling is the rope_scaling (or rope_parameters) block. Type is "default", "linear" or "llama3".
type RopeScaling struct {
	Type           string
	Factor         float64
	LowFreqFactor  float64
	HighFreqFactor float64
	OriginalMaxPos int
}

type rawRope struct {
	RopeType       string   `json:"rope_type"`
	Type           string   `json:"type"`
	RopeTheta      *float64 `json:"rope_theta"`
	Factor         *float64 `json:"factor"`
	LowFreqFactor  *float64 `json:"low_freq_factor"`
	HighFreqFactor *float64 `json:"high_freq_factor"`
	OriginalMaxPos *int     `json:"original_max_position_embeddings"`
}

type rawConfig struct {
	ModelType        string          `json:"model_type"`
	HiddenSize       int             `json:"hidden_size"`
	IntermediateSize int             `json:"intermediate_size"`
	Layers           int             `json:"num_hidden_layers"`
	Heads            int             `json:"num_attention_heads"`
	KVHeads          *int            `json:"num_key_value_heads"`
	HeadDim          *int            `json:"head_dim"`
	Vocab            int             `json:"vocab_size"`
	MaxPos           int             `json:"max_position_embeddings"`
	RMSNormEps       *float64        `json:"rms_norm_eps"`
	RopeTheta        *float64        `json:"rope_theta"`
	RopeScaling      *rawRope        `json:"rope_scaling"`
	RopeParameters   *rawRope        `json:"rope_parameters"`
	Tie              *bool           `json:"tie_word_embeddings"`
	AttentionBias    *bool           `json:"attention_bias"`
	MLPBias          bool            `json:"mlp_bias"`
	HiddenAct        string          `json:"hidden_act"`
	TorchDType       string          `json:"torch_dtype"`
	DType            string          `json:"dtype"`
	BOS              json.RawMessage `json:"bos_token_id"`
	EOS              json.RawMessage `json:"eos_token_id"`
	UseSlidingWindow bool            `json:"use_sliding_window"`
}

// ParseConfig parses config.json. name is used in error messages.
func ParseConfig(name string, b []byte) (Config, error) {
	var r rawConfig
	if err := json.Unmarshal(b, &r); err != nil {
		return Config{}, fmt.Errorf("%s: %v", name, err)
	}
	bad := func(field string, format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("%s: field %s: %s", name, field, fmt.Sprintf(format, args...))
	}
	c := Config{ModelType: r.ModelType, Hidden: r.HiddenSize, Intermediate: r.IntermediateSize, Layers: r.Layers,
		Heads: r.Heads, Vocab: r.Vocab, MaxPositions: r.MaxPos, RMSNormEps: 1e-6, RopeTheta: 10000}
	switch r.ModelType {
	case "llama":
		c.RMSNormEps = 1e-6
		if r.AttentionBias != nil {
			c.AttentionBias = *r.AttentionBias
		}
	case "qwen2":
		c.AttentionBias = true
		if r.UseSlidingWindow {
			return bad("use_sliding_window", "sliding-window attention is not supported")
		}
	default:
		return bad("model_type", "%q is not supported (want llama or qwen2)", r.ModelType)
	}
	if r.MLPBias {
		return bad("mlp_bias", "MLP biases are not supported")
	}
	if r.HiddenAct != "" && r.HiddenAct != "silu" {
		return bad("hidden_act", "%q is not supported (want silu)", r.HiddenAct)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"hidden_size", c.Hidden}, {"intermediate_size", c.Intermediate}, {"num_hidden_layers", c.Layers},
		{"num_attention_heads", c.Heads}, {"vocab_size", c.Vocab}, {"max_position_embeddings", c.MaxPositions}} {
		if f.v <= 0 || f.v > 1<<24 {
			return bad(f.name, "must be a positive integer, got %d", f.v)
		}
	}
	c.KVHeads = c.Heads
	if r.KVHeads != nil {
		c.KVHeads = *r.KVHeads
	}
	if c.KVHeads <= 0 || c.Heads%c.KVHeads != 0 {
		return bad("num_key_value_heads", "%d does not divide num_attention_heads %d", c.KVHeads, c.Heads)
	}
	if r.HeadDim != nil {
		c.HeadDim = *r.HeadDim
	} else if c.Hidden%c.Heads == 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	if c.HeadDim <= 0 || c.HeadDim%2 != 0 || c.HeadDim > 1024 {
		return bad("head_dim", "must be a positive even number, got %d", c.HeadDim)
	}
	if r.RMSNormEps != nil {
		c.RMSNormEps = *r.RMSNormEps
	}
	if !(c.RMSNormEps > 0 && c.RMSNormEps < 1) {
		return bad("rms_norm_eps", "must be in (0,1), got %v", c.RMSNormEps)
	}
	if r.Tie != nil {
		c.TieEmbeddings = *r.Tie
	}
	c.DType = r.DType
	if c.DType == "" {
		c.DType = r.TorchDType
	}
	// rope: rope_theta + rope_scaling (4.x) or rope_parameters (5.x, carries rope_theta too).
	rope := r.RopeScaling
	if r.RopeParameters != nil {
		rope = r.RopeParameters
		if rope.RopeTheta != nil {
			c.RopeTheta = *rope.RopeTheta
		}
	}
	if r.RopeTheta != nil {
		c.RopeTheta = *r.RopeTheta
	}
	if !(c.RopeTheta > 1) {
		return bad("rope_theta", "must be > 1, got %v", c.RopeTheta)
	}
	c.Rope.Type = "default"
	if rope != nil {
		t := rope.RopeType
		if t == "" {
			t = rope.Type
		}
		f := func(p *float64, def float64) float64 {
			if p == nil {
				return def
			}
			return *p
		}
		switch t {
		case "", "default":
		case "linear":
			c.Rope = RopeScaling{Type: "linear", Factor: f(rope.Factor, 1)}
			if !(c.Rope.Factor > 0) {
				return bad("rope_scaling.factor", "must be > 0, got %v", c.Rope.Factor)
			}
		case "llama3":
			c.Rope = RopeScaling{Type: "llama3", Factor: f(rope.Factor, 8), LowFreqFactor: f(rope.LowFreqFactor, 1),
				HighFreqFactor: f(rope.HighFreqFactor, 4), OriginalMaxPos: 8192}
			if rope.OriginalMaxPos != nil {
				c.Rope.OriginalMaxPos = *rope.OriginalMaxPos
			}
			if !(c.Rope.Factor > 0) || !(c.Rope.HighFreqFactor > c.Rope.LowFreqFactor) || c.Rope.LowFreqFactor <= 0 || c.Rope.OriginalMaxPos <= 0 {
				return bad("rope_scaling", "inconsistent llama3 parameters %+v", c.Rope)
			}
		default:
			return bad("rope_scaling.rope_type", "%q is not supported (want default, linear or llama3)", t)
		}
	}
	var err error
	c.BOS = -1
	if bos, e := parseIDs(r.BOS); e != nil {
		return bad("bos_token_id", "%v", e)
	} else if len(bos) > 0 {
		c.BOS = bos[0]
	}
	if c.EOS, err = parseIDs(r.EOS); err != nil {
		return bad("eos_token_id", "%v", err)
	}
	return c, nil
}

// parseIDs reads a token id field that may be null, an integer or a list of integers.
func parseIDs(raw json.RawMessage) ([]int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("want an integer or a list of integers, got %s", raw)
	}
	return many, nil
}

// GenerationConfig is what generation_config.json contributes: the EOS ids.
type GenerationConfig struct {
	EOS []int
}

// ParseGenerationConfig parses generation_config.json.
func ParseGenerationConfig(name string, b []byte) (GenerationConfig, error) {
	var r struct {
		EOS json.RawMessage `json:"eos_token_id"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return GenerationConfig{}, fmt.Errorf("%s: %v", name, err)
	}
	eos, err := parseIDs(r.EOS)
	if err != nil {
		return GenerationConfig{}, fmt.Errorf("%s: field eos_token_id: %v", name, err)
	}
	return GenerationConfig{EOS: eos}, nil
}

// InvFreq returns the RoPE inverse frequencies (head_dim/2 of them) in float64, with scaling applied
// as transformers' _compute_llama3_parameters / linear scaling do.
func (c *Config) InvFreq() []float64 {
	d := c.HeadDim
	inv := make([]float64, d/2)
	for i := range inv {
		inv[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(d))
	}
	switch c.Rope.Type {
	case "linear":
		for i := range inv {
			inv[i] /= c.Rope.Factor
		}
	case "llama3":
		r := c.Rope
		old := float64(r.OriginalMaxPos)
		lowWave := old / r.LowFreqFactor
		highWave := old / r.HighFreqFactor
		for i, f := range inv {
			wave := 2 * math.Pi / f
			switch {
			case wave < highWave:
			case wave > lowWave:
				inv[i] = f / r.Factor
			default:
				s := (old/wave - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
				inv[i] = (1-s)*f/r.Factor + s*f
			}
		}
	}
	return inv
}
