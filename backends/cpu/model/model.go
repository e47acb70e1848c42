package model

import (
	"fmt"

	"github.com/snapeval/snapeval/backends/cpu/safetensors"
)

// Layer holds one decoder layer's weights. Q, K and V are fused into one matrix (rows q|k|v), and so are
// the MLP gate and up projections (rows gate|up), so that each is one pass over the inputs.
type Layer struct {
	AttnNorm, MLPNorm []float32
	QKV               Mat
	QKVBias           []float32 // nil without attention biases
	O                 Mat
	GateUp            Mat
	Down              Mat
}

// Model is a loaded decoder: weights kept as bfloat16, computed in float32.
type Model struct {
	Cfg     Config
	Embed   Mat // [Vocab][Hidden]
	Layers  []Layer
	Norm    []float32
	LMHead  Mat // aliases Embed when embeddings are tied
	invFreq []float64
}

// Load builds a model from a parsed config and a checkpoint. Errors name the tensor at fault.
func Load(cfg Config, ck *safetensors.Checkpoint) (*Model, error) {
	m := &Model{Cfg: cfg, invFreq: cfg.InvFreq()}
	H, d := cfg.Hidden, cfg.HeadDim
	qd, kvd := cfg.Heads*d, cfg.KVHeads*d
	get := func(name string, shape ...int) (*safetensors.Tensor, error) {
		t, err := ck.Get(name)
		if err != nil {
			return nil, err
		}
		ok := len(t.Shape) == len(shape)
		for i := 0; ok && i < len(shape); i++ {
			ok = t.Shape[i] == shape[i]
		}
		if !ok {
			return nil, fmt.Errorf("checkpoint %s: tensor %q has shape %v, config.json implies %v", ck.File(name), name, t.Shape, shape)
		}
		return t, nil
	}
	mat := func(rows, cols int, names ...string) (Mat, error) {
		out := Mat{Rows: rows, Cols: cols}
		per := rows / len(names)
		if len(names) == 1 {
			t, err := get(names[0], rows, cols)
			if err != nil {
				return out, err
			}
			out.W = t.BF16()
			return out, nil
		}
		out.W = make([]uint16, 0, rows*cols)
		for _, n := range names {
			r := per
			if len(names) == 3 && n != names[0] { // fused qkv: q rows differ from k/v rows
				r = kvd
			} else if len(names) == 3 {
				r = qd
			}
			t, err := get(n, r, cols)
			if err != nil {
				return out, err
			}
			out.W = append(out.W, t.BF16()...)
		}
		return out, nil
	}
	vec := func(name string, n int) ([]float32, error) {
		t, err := get(name, n)
		if err != nil {
			return nil, err
		}
		return t.Float32(), nil
	}
	var err error
	if m.Embed, err = mat(cfg.Vocab, H, "model.embed_tokens.weight"); err != nil {
		return nil, err
	}
	if m.Norm, err = vec("model.norm.weight", H); err != nil {
		return nil, err
	}
	if cfg.TieEmbeddings {
		m.LMHead = m.Embed
	} else if m.LMHead, err = mat(cfg.Vocab, H, "lm_head.weight"); err != nil {
		return nil, err
	}
	for i := 0; i < cfg.Layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		var L Layer
		if L.AttnNorm, err = vec(p+"input_layernorm.weight", H); err != nil {
			return nil, err
		}
		if L.MLPNorm, err = vec(p+"post_attention_layernorm.weight", H); err != nil {
			return nil, err
		}
		if L.QKV, err = mat(qd+2*kvd, H, p+"self_attn.q_proj.weight", p+"self_attn.k_proj.weight", p+"self_attn.v_proj.weight"); err != nil {
			return nil, err
		}
		if cfg.AttentionBias {
			for _, n := range []struct {
				name string
				len  int
			}{{"q_proj", qd}, {"k_proj", kvd}, {"v_proj", kvd}} {
				b, err := vec(p+"self_attn."+n.name+".bias", n.len)
				if err != nil {
					return nil, err
				}
				L.QKVBias = append(L.QKVBias, b...)
			}
		}
		if L.O, err = mat(H, qd, p+"self_attn.o_proj.weight"); err != nil {
			return nil, err
		}
		if L.GateUp, err = mat(2*cfg.Intermediate, H, p+"mlp.gate_proj.weight", p+"mlp.up_proj.weight"); err != nil {
			return nil, err
		}
		if L.Down, err = mat(H, cfg.Intermediate, p+"mlp.down_proj.weight"); err != nil {
			return nil, err
		}
		m.Layers = append(m.Layers, L)
	}
	return m, nil
}

// WeightBytes is the number of weight bytes one forward step reads (bf16, or int8 and their scales), counting a tied lm_head once more
// since it is read again as the output projection.
func (m *Model) WeightBytes() int64 {
	n := int64(0)
	for _, L := range m.Layers {
		n += L.QKV.bytes() + L.O.bytes() + L.GateUp.bytes() + L.Down.bytes()
	}
	return n + m.LMHead.bytes()
}

// bytes is the size of the matrix's weights (and scales) in memory.
func (w *Mat) bytes() int64 { return int64(2*len(w.W) + len(w.Q) + 4*len(w.S)) }
