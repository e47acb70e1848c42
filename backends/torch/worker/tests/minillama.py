"""A minimal plain-torch Llama / Qwen2 decoder (no transformers) that calls the worker's attention function the way
transformers' AttentionInterface does: post-RoPE q [1, H, T, D], k, v [1, KVH, T, D], returns [1, T, H, D].

Numerics follow transformers: RMSNorm in float32 then weight * x.to(dtype), rotate_half RoPE from float32 inverse
frequencies (llama3 scaling when the config asks), q/k/v biases when the checkpoint has them, SwiGLU MLP, tied or
untied output head. It loads the conformance fixtures (bf16 safetensors) for the CPU tests of the worker.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Any, Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .support import REPO, load_json

sys.path.insert(0, os.path.join(REPO, "tools", "train"))
from tinyllama import load_safetensors  # noqa: E402  (the repository's dependency-free safetensors reader)

from snapworker.attention import attention, note_pre_rope  # noqa: E402


def inv_freq(cfg: Dict[str, Any], head_dim: int) -> torch.Tensor:
    """RoPE inverse frequencies in float32, with llama3 scaling when rope_scaling says so."""
    base = float(cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0))
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    rs = cfg.get("rope_scaling") or {}
    if rs.get("rope_type", rs.get("type")) != "llama3":
        return inv
    factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old = rs["original_max_position_embeddings"]
    low_wl, high_wl = old / lo, old / hi
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > low_wl, inv / factor, inv)
    smooth = (old / wavelen - lo) / (hi - lo)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < high_wl) & ~(wavelen > low_wl)
    return torch.where(medium, smoothed, scaled)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class RMSNorm(nn.Module):
    def __init__(self, n: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


class Attn(nn.Module):
    def __init__(self, cfg: Dict[str, Any], layer_idx: int, bias: bool) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.nh, self.nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.hd = cfg.get("head_dim") or cfg["hidden_size"] // self.nh
        self.scaling = self.hd ** -0.5
        d = cfg["hidden_size"]
        self.q_proj = nn.Linear(d, self.nh * self.hd, bias=bias)
        self.k_proj = nn.Linear(d, self.nkv * self.hd, bias=bias)
        self.v_proj = nn.Linear(d, self.nkv * self.hd, bias=bias)
        self.o_proj = nn.Linear(self.nh * self.hd, d, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        t = x.shape[0]
        # -1 heads, as transformers does: a tensor-parallel shard (snapworker.shard) has a slice of them.
        q = self.q_proj(x).view(t, -1, self.hd).transpose(0, 1)
        kp = self.k_proj(x)
        note_pre_rope(self.layer_idx, kp, self.hd)
        k = kp.view(t, -1, self.hd).transpose(0, 1)
        v = self.v_proj(x).view(t, -1, self.hd).transpose(0, 1)
        c, s = cos.to(q.dtype), sin.to(q.dtype)
        q = q * c + rotate_half(q) * s
        k = k * c + rotate_half(k) * s
        o, _ = attention(self, q[None], k[None], v[None], None, scaling=self.scaling)
        return self.o_proj(o[0].reshape(t, -1))


class Layer(nn.Module):
    def __init__(self, cfg: Dict[str, Any], i: int, bias: bool) -> None:
        super().__init__()
        eps = cfg["rms_norm_eps"]
        self.input_layernorm = RMSNorm(cfg["hidden_size"], eps)
        self.self_attn = Attn(cfg, i, bias)
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], eps)
        d, m = cfg["hidden_size"], cfg["intermediate_size"]
        self.mlp = nn.Module()
        self.mlp.gate_proj = nn.Linear(d, m, bias=False)
        self.mlp.up_proj = nn.Linear(d, m, bias=False)
        self.mlp.down_proj = nn.Linear(m, d, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        h = self.post_attention_layernorm(x)
        return x + self.mlp.down_proj(F.silu(self.mlp.gate_proj(h)) * self.mlp.up_proj(h))


class MiniLM(nn.Module):
    """A decoder over one packed row of tokens: forward(ids [T], positions [T], last [n]) -> logits [n, V]."""

    def __init__(self, cfg: Dict[str, Any], bias: bool) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([Layer(cfg, i, bias) for i in range(cfg["num_hidden_layers"])])
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.lm_head: Optional[nn.Linear] = None
        if not cfg.get("tie_word_embeddings", False):
            self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        self.register_buffer("inv_freq", inv_freq(cfg, hd), persistent=False)

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        fr = positions.float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat([fr, fr], dim=-1)
        cos, sin = emb.cos()[None], emb.sin()[None]
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        x = self.norm(x[last])
        if self.lm_head is not None:  # the module, which a tensor-parallel shard replaces by a vocabulary split
            return self.lm_head(x)
        return x @ self.embed_tokens.weight.t()


class MiniRunner:
    """The engine's Runner over a MiniLM."""

    def __init__(self, model: MiniLM, dtype: torch.dtype) -> None:
        c = model.cfg
        self.model = model
        self.layers = c["num_hidden_layers"]
        self.kv_heads = c["num_key_value_heads"]
        self.head_dim = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
        self.q_heads = c["num_attention_heads"]
        self.vocab = c["vocab_size"]
        self.dtype = dtype
        self.device = torch.device("cpu")
        # The model's RoPE (what rerotate needs): rotate_half over the whole head, these float32 inverse frequencies
        # (llama3-scaled when the config asks; no attention scaling).
        self.rope_inv_freq: torch.Tensor = model.inv_freq
        self.rope_style = "rotate_half"
        self.pre_rope = True  # Attn.forward notes the keys before RoPE

    def to(self, device: str) -> "MiniRunner":
        """The same model on another device."""
        self.model = self.model.to(device)
        self.device = torch.device(device)
        self.rope_inv_freq = self.model.inv_freq
        return self

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model(ids, positions, last)


def load(model_dir: str, dtype: torch.dtype = torch.float32) -> MiniRunner:
    """A fixture checkpoint as a runner (weights converted from bf16 to dtype)."""
    cfg = load_json(os.path.join(model_dir, "config.json"))
    sd = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    bias = any(k.endswith("q_proj.bias") for k in sd)
    m = MiniLM(cfg, bias)
    own = {k.removeprefix("model."): v.to(dtype) for k, v in sd.items()}
    missing, unexpected = m.load_state_dict(own, strict=False)
    if unexpected or [k for k in missing if k != "inv_freq"]:
        raise ValueError(f"{model_dir}: missing {missing}, unexpected {unexpected}")
    return MiniRunner(m.to(dtype).eval(), dtype)


def random_model(seed: int = 0, vocab: int = 97, layers: int = 2, heads: int = 4, kv_heads: int = 2,
                 head_dim: int = 8) -> MiniRunner:
    """A small random model (no checkpoint): for engine and protocol tests."""
    cfg = {"vocab_size": vocab, "hidden_size": heads * head_dim, "intermediate_size": 48, "num_hidden_layers": layers,
           "num_attention_heads": heads, "num_key_value_heads": kv_heads, "head_dim": head_dim, "rms_norm_eps": 1e-6,
           "rope_theta": 10000.0, "tie_word_embeddings": True}
    torch.manual_seed(seed)
    m = MiniLM(cfg, False)
    for p in m.parameters():
        nn.init.normal_(p, std=0.5)
    return MiniRunner(m.eval(), torch.float32)
