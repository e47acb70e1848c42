// Package perf measures the CPU backend: prefill and decode throughput, the machine's memory bandwidth,
// and SnapStream's claims on this engine (flat decode step time over context, KV bytes per sequence, the
// Table 5 batch-size experiment under a fixed KV budget, and SnapKV selection cost as a share of prefill).
// It backs `snapeval bench`.
package perf

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/snapeval/snapeval/backends/cpu/model"
	"github.com/snapeval/snapeval/backends/cpu/safetensors"
)

// shapes are the named model shapes `--shape` accepts (config.json contents; random bf16 weights).
var shapes = map[string]string{
	// SmolLM2-135M: hidden 576, intermediate 1536, 30 layers, 9 heads / 3 KV heads, head_dim 64, vocab
	// 49152, tied. Positions raised to 65536 so that the 32k-context measurements fit.
	"smollm2-135m": `{"model_type":"llama","hidden_size":576,"intermediate_size":1536,"num_hidden_layers":30,
"num_attention_heads":9,"num_key_value_heads":3,"head_dim":64,"vocab_size":49152,"max_position_embeddings":65536,
"rms_norm_eps":1e-5,"rope_theta":100000,"tie_word_embeddings":true,"torch_dtype":"bfloat16"}`,
}

// Shapes lists the named shapes.
func Shapes() []string {
	var s []string
	for k := range shapes {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// RandomModel builds a model of a named shape with random bf16 weights (uniform, scaled like an
// initialisation), loaded through safetensors as a real checkpoint is.
func RandomModel(shape string) (*model.Model, error) {
	js, ok := shapes[strings.ToLower(shape)]
	if !ok {
		return nil, fmt.Errorf("unknown shape %q (known: %s)", shape, strings.Join(Shapes(), ", "))
	}
	cfg, err := model.ParseConfig(shape+" config.json", []byte(js))
	if err != nil {
		return nil, err
	}
	state := uint64(1)
	rnd := func(name string, scale float64, shape ...int) *safetensors.Tensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]byte, 2*n)
		for i := 0; i < n; i++ {
			state = state*6364136223846793005 + 1442695040888963407
			u := float64(state>>40)/float64(1<<24)*2 - 1
			binary.LittleEndian.PutUint16(data[2*i:], safetensors.F32ToBF16(float32(u*scale)))
		}
		return &safetensors.Tensor{Name: name, DType: safetensors.BF16, Shape: shape, Data: data}
	}
	ones := func(name string, n int) *safetensors.Tensor {
		data := make([]byte, 2*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint16(data[2*i:], 0x3f80)
		}
		return &safetensors.Tensor{Name: name, DType: safetensors.BF16, Shape: []int{n}, Data: data}
	}
	H, I, d := cfg.Hidden, cfg.Intermediate, cfg.HeadDim
	ts := []*safetensors.Tensor{rnd("model.embed_tokens.weight", 1, cfg.Vocab, H), ones("model.norm.weight", H)}
	s := math.Sqrt(3.0 / float64(H))
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		ts = append(ts, ones(p+"input_layernorm.weight", H), ones(p+"post_attention_layernorm.weight", H),
			rnd(p+"self_attn.q_proj.weight", s, cfg.Heads*d, H), rnd(p+"self_attn.k_proj.weight", s, cfg.KVHeads*d, H),
			rnd(p+"self_attn.v_proj.weight", s, cfg.KVHeads*d, H), rnd(p+"self_attn.o_proj.weight", s, H, cfg.Heads*d),
			rnd(p+"mlp.gate_proj.weight", s, I, H), rnd(p+"mlp.up_proj.weight", s, I, H),
			rnd(p+"mlp.down_proj.weight", math.Sqrt(3.0/float64(I)), H, I))
	}
	enc, err := safetensors.Encode(ts, nil)
	if err != nil {
		return nil, err
	}
	ck, err := safetensors.FromBytes(shape+".safetensors", enc)
	if err != nil {
		return nil, err
	}
	return model.Load(cfg, ck)
}

// LoadDir loads a checkpoint directory (config.json and model.safetensors or a sharded index).
func LoadDir(dir string) (*model.Model, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := model.ParseConfig(path, b)
	if err != nil {
		return nil, err
	}
	ck, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	return model.Load(cfg, ck)
}
