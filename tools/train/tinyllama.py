#!/usr/bin/env python3
"""tinyllama: a minimal Llama (LlamaForCausalLM-compatible) in plain PyTorch, with no dependency on transformers.

The state_dict uses exactly the Hugging Face LlamaForCausalLM tensor names (model.embed_tokens.weight,
model.layers.{i}.self_attn.{q,k,v,o}_proj.weight, model.layers.{i}.mlp.{gate,up,down}_proj.weight,
model.layers.{i}.{input,post_attention}_layernorm.weight, model.norm.weight; lm_head.weight tied to the embedding
and not saved), so a checkpoint written by save_checkpoint() loads in transformers and in snapeval's Go engine
(backends/cpu). The numerics follow HF Llama: RMSNorm computed in float32, RoPE with the rotate_half (GPT-NeoX)
convention at absolute positions 0..T-1, GQA by repeating KV heads, SwiGLU MLP, causal softmax attention scaled by
1/sqrt(head_dim). It works with torch 1.13 (CPU, no F.scaled_dot_product_attention) and torch 2.x (uses SDPA).

Also here: a dependency-free safetensors reader/writer (bf16/f32/f16) and config.json handling.

Self-check: python3 tools/train/tinyllama.py selftest
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


class Config:
    """The subset of a HF LlamaConfig that the model uses (same field names as config.json)."""

    def __init__(self, vocab_size=2048, hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                 num_attention_heads=8, num_key_value_heads=2, head_dim=None, rope_theta=10000.0,
                 rms_norm_eps=1e-5, max_position_embeddings=4096, initializer_range=0.02, tie_word_embeddings=True,
                 eos_token_id=0, **_):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.head_dim = head_dim or hidden_size // num_attention_heads
        self.rope_theta = float(rope_theta)
        self.rms_norm_eps = rms_norm_eps
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.tie_word_embeddings = tie_word_embeddings
        self.eos_token_id = eos_token_id
        if not tie_word_embeddings:
            raise ValueError("tinyllama: only tied embeddings are supported")
        if num_attention_heads % num_key_value_heads:
            raise ValueError("tinyllama: num_attention_heads must be a multiple of num_key_value_heads")

    @classmethod
    def from_json(cls, path):
        with open(path) as f:
            d = json.load(f)
        rp = d.get("rope_parameters") or {}
        if "rope_theta" not in d and "rope_theta" in rp:
            d["rope_theta"] = rp["rope_theta"]
        if d.get("rope_scaling") not in (None, {}) or rp.get("rope_type", "default") != "default":
            raise ValueError(f"{path}: only default RoPE is supported")
        return cls(**d)

    def to_hf_dict(self):
        """config.json in the transformers spelling (the Go engine and transformers 4.x/5.x read it)."""
        return {
            "architectures": ["LlamaForCausalLM"],
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": None,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.eos_token_id,
            "dtype": "bfloat16",
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "initializer_range": self.initializer_range,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "mlp_bias": False,
            "model_type": "llama",
            "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers,
            "num_key_value_heads": self.num_key_value_heads,
            "pretraining_tp": 1,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_scaling": None,
            "rope_theta": self.rope_theta,
            "tie_word_embeddings": True,
            "use_cache": True,
            "vocab_size": self.vocab_size,
        }


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        dt = x.dtype
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dt)


def rope_cos_sin(head_dim, theta, T, device, offset=0):
    """cos, sin of shape [T, head_dim] (HF layout: the half-dim frequencies repeated twice), float32."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim))
    pos = torch.arange(offset, offset + T, dtype=torch.float32, device=device)
    fr = torch.outer(pos, inv)
    emb = torch.cat([fr, fr], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.nh, self.nkv, self.hd = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        self.q_proj = nn.Linear(c.hidden_size, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(c.hidden_size, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(c.hidden_size, self.nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.nh * self.hd, c.hidden_size, bias=False)

    def forward(self, x, cos, sin, return_probs=False, mask=None):
        """mask: None (causal) or a bool [B,1,T,T] allowed-mask (causal and padding already combined)."""
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        c, s = cos.to(q.dtype), sin.to(q.dtype)
        q = q * c + rotate_half(q) * s
        k = k * c + rotate_half(k) * s
        rep = self.nh // self.nkv
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)  # query head h uses KV head h // rep, as HF repeat_kv
            v = v.repeat_interleave(rep, dim=1)
        probs = None
        if HAS_SDPA and not return_probs:
            if mask is None:
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            att = (q @ k.transpose(-1, -2)).float() / math.sqrt(self.hd)
            if mask is None:
                mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            att = att.masked_fill(~mask, float("-inf"))
            probs = att.softmax(-1)
            o = probs.to(v.dtype) @ v
        o = o.transpose(1, 2).reshape(B, T, self.nh * self.hd)
        return self.o_proj(o), probs


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.mlp = MLP(c)

    def forward(self, x, cos, sin, return_probs=False, mask=None):
        a, p = self.self_attn(self.input_layernorm(x), cos, sin, return_probs, mask)
        x = x + a
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, p


class Body(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList([Layer(c) for _ in range(c.num_hidden_layers)])
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)


class TinyLlama(nn.Module):
    """LlamaForCausalLM with tied embeddings. forward(ids [B,T]) -> logits [B,T,V]."""

    def __init__(self, c):
        super().__init__()
        self.config = c
        self.model = Body(c)
        self.reset_parameters()

    def reset_parameters(self):
        """HF Llama init: every Linear and the embedding ~ N(0, initializer_range), norms = 1."""
        std = self.config.initializer_range
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=std)
            elif isinstance(m, RMSNorm):
                nn.init.ones_(m.weight)

    @property
    def lm_weight(self):
        return self.model.embed_tokens.weight

    def forward(self, ids, return_probs=False, pad_left=None):
        """ids [B,T] -> logits [B,T,V] (float32 unless autocast). pad_left: optional LongTensor [B] of left-padding
        lengths; then row b's real tokens sit at positions 0.. from column pad_left[b] on, and the padding is never
        attended (like HF generate with a left-padded attention_mask)."""
        c = self.config
        B, T = ids.shape
        mask = None
        if pad_left is None:
            cos, sin = rope_cos_sin(c.head_dim, c.rope_theta, T, ids.device)
        else:
            pos = (torch.arange(T, device=ids.device)[None, :] - pad_left[:, None]).clamp(min=0)  # [B,T]
            cos, sin = rope_cos_sin(c.head_dim, c.rope_theta, T, ids.device)  # rows 0..T-1 cover every pos
            cos, sin = cos[pos][:, None], sin[pos][:, None]  # [B,1,T,hd]
            col = torch.arange(T, device=ids.device)
            causal = col[None, :] <= col[:, None]  # [T(query), T(key)]
            valid = col[None, :] >= pad_left[:, None]  # [B, T(key)]
            mask = causal[None, None] & valid[:, None, None, :]
            mask = mask | torch.eye(T, dtype=torch.bool, device=ids.device)[None, None]  # pad rows: no NaN
        x = self.model.embed_tokens(ids)
        probs = []
        for layer in self.model.layers:
            x, p = layer(x, cos, sin, return_probs, mask)
            probs.append(p)
        x = self.model.norm(x)
        logits = F.linear(x, self.lm_weight)
        return (logits, probs) if return_probs else logits

    def hf_state_dict(self):
        """The tensors of a LlamaForCausalLM checkpoint (lm_head.weight omitted: tied)."""
        return {k: v for k, v in self.state_dict().items()}

    def load_hf_state_dict(self, sd):
        sd = {k: v for k, v in sd.items() if k != "lm_head.weight" and not k.endswith("rotary_emb.inv_freq")}
        missing, unexpected = self.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise ValueError(f"checkpoint mismatch: missing {missing}, unexpected {unexpected}")


# ---------- safetensors without the safetensors package ----------

_DT = {"BF16": (torch.bfloat16, 2), "F32": (torch.float32, 4), "F16": (torch.float16, 2)}
_DT_NAME = {torch.bfloat16: "BF16", torch.float32: "F32", torch.float16: "F16"}


def _to_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def save_safetensors(tensors, path, metadata=None):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        b = _to_bytes(t)
        header[name] = {"dtype": _DT_NAME[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def load_safetensors(path):
    import numpy as np
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        dt, size = _DT[h["dtype"]]
        a, b = h["data_offsets"]
        raw = data[base + a:base + b]
        if dt == torch.bfloat16:
            t = torch.from_numpy(np.frombuffer(raw, dtype=np.int16).copy()).view(torch.bfloat16)
        elif dt == torch.float16:
            t = torch.from_numpy(np.frombuffer(raw, dtype=np.float16).copy())
        else:
            t = torch.from_numpy(np.frombuffer(raw, dtype=np.float32).copy())
        out[name] = t.reshape(h["shape"])
    return out


def save_checkpoint(model, out, tokenizer_json=None):
    """Writes model.safetensors (bf16), config.json and generation_config.json (and tokenizer.json if given: a path
    to copy, or an object with .save(path))."""
    os.makedirs(out, exist_ok=True)
    sd = {k: v.to(torch.bfloat16) for k, v in model.hf_state_dict().items()}
    save_safetensors(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(model.config.to_hf_dict(), f, indent=2)
    eos = model.config.eos_token_id
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": eos, "pad_token_id": eos, "do_sample": False}, f, indent=2)
    if tokenizer_json is not None:
        dst = os.path.join(out, "tokenizer.json")
        if isinstance(tokenizer_json, str):
            if os.path.abspath(tokenizer_json) != os.path.abspath(dst):
                with open(tokenizer_json, "rb") as fi, open(dst, "wb") as fo:
                    fo.write(fi.read())
        else:
            tokenizer_json.save(dst)


def load_checkpoint(d, dtype=torch.float32):
    c = Config.from_json(os.path.join(d, "config.json"))
    m = TinyLlama(c)
    sd = load_safetensors(os.path.join(d, "model.safetensors"))
    m.load_hf_state_dict({k: v.to(dtype) for k, v in sd.items()})
    return m.to(dtype)


def _selftest():
    """Shapes, the safetensors round trip and causality (the logits at t do not depend on tokens after t)."""
    torch.manual_seed(0)
    c = Config(vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, head_dim=8)
    m = TinyLlama(c).eval()
    ids = torch.randint(0, 50, (2, 12))
    with torch.no_grad():
        a = m(ids)
        ids2 = ids.clone()
        ids2[:, 7:] = (ids2[:, 7:] + 1) % 50
        b = m(ids2)
        assert torch.allclose(a[:, :7], b[:, :7], atol=1e-5), "not causal"
        assert not torch.allclose(a[:, 7:], b[:, 7:]), "later positions ignore their tokens"
        l1, p1 = m(ids, return_probs=True)
        assert torch.allclose(a, l1, atol=1e-4), "SDPA and explicit attention differ"
        padded = torch.cat([torch.full((2, 3), 7), ids], dim=1)
        lp = m(padded, pad_left=torch.tensor([3, 3]))
        assert torch.allclose(lp[:, 3:], a, atol=1e-4), "left padding changes the logits"
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        save_checkpoint(m, d)
        m2 = load_checkpoint(d)
        names = set(load_safetensors(os.path.join(d, "model.safetensors")))
    assert "lm_head.weight" not in names and "model.embed_tokens.weight" in names, names
    with torch.no_grad():
        rel = ((m2(ids) - a).abs().max() / a.abs().max()).item()
    assert rel < 2e-2, rel
    print("tinyllama selftest ok: causal, SDPA==explicit, left padding, bf16 round trip rel", f"{rel:.4f}", "tensors", len(names))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "selftest":
        _selftest()
