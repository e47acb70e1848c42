"""rerotate (docs/policies.md §14): streaming and snapstream with positions re-indexed inside the cache during decode.

The plan, the selection, the slots and the capacity are the base policy's. During a decode step, with
h_0 < ... < h_{n-1} the positions held by a layer's KV head (h_{n-1} = p, the token being decoded), the held key of
position h_r must act as its pre-RoPE key rotated for position r, and the query as rotated for n - 1. The worker
holds only post-RoPE keys (at their original positions) and sees post-RoPE queries (at p); RoPE is a rotation, so
rotating the stored key of h_r by the angle of delta_r = (p - h_r) - (n - 1 - r) gives the scores of the
re-indexed cache: q(p) . R(delta_r) k(h_r) = q . R(r - (n - 1)) k. That is done on a temporary copy of a layer's keys
at each step (the stored keys never change), in float32, with the angles delta_r * inv_freq computed in float64
from the model's inverse frequencies and rounded to float32 once. While the budget covers every position, every
delta is 0 (cos 1, sin 0) and the step is full's bit for bit.

It needs the model's RoPE to be plain: rotate_half over the whole head with no attention scaling
(runner.rope_style == "rotate_half" and runner.rope_inv_freq, float32 [head_dim / 2]); any other model is refused
per request (RerotateCache.refusal). Decodes in the packed step (static_ok False).
"""
from __future__ import annotations

from typing import Any, Optional

import torch

from .cache import SeqCache, slot_attention
from .plan import Plan

PLAIN = "rotate_half"

# The position of a slot that holds nothing: sorts after every real position.
_EMPTY = torch.iinfo(torch.int64).max


def rope_refusal(runner: Any, head_dim: int) -> str:
    """Why runner's RoPE cannot be re-indexed by rotating post-RoPE keys ("" when it can)."""
    style = getattr(runner, "rope_style", None)
    inv = getattr(runner, "rope_inv_freq", None)
    if style is not None and style != PLAIN:
        return ("rerotate needs plain rotate_half RoPE over the whole head with no attention scaling; this model has "
                f"{style}")
    if style is None or inv is None:
        return (f"rerotate needs the model's RoPE; this runner ({type(runner).__name__}) does not expose it "
                "(rope_inv_freq, rope_style)")
    if tuple(inv.shape) != (head_dim // 2,):
        return (f"rerotate needs one inverse frequency per channel pair ({head_dim // 2}); the model gives "
                f"{tuple(inv.shape)}")
    return ""


def rotate(k: torch.Tensor, delta: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """k [..., D] (post-RoPE, any dtype) rotated by delta [...] (int64) positions: float32 k * cos + rotate_half(k)
    * sin, with cos and sin of delta * inv_freq computed in float64 and rounded to float32."""
    ang = delta.to(torch.float64)[..., None] * inv_freq.to(torch.float64)
    cos = torch.cat([ang.cos(), ang.cos()], dim=-1).float()
    sin = torch.cat([ang.sin(), ang.sin()], dim=-1).float()
    x = k.float()
    h = x.shape[-1] // 2
    rot = torch.cat([-x[..., h:], x[..., :h]], dim=-1)
    return x * cos + rot * sin


class RerotateCache(SeqCache):
    """streaming / snapstream with rerotate=true: the base policy's cache, plus the position each slot holds per
    layer and KV head (pos, int64 [layers, kv_heads, held]) and, for the step being decoded, each slot's rotation
    delta (delta, same shape), computed once a step on the device (one sort) in begin_decode."""

    static_ok = False

    def __init__(self, plan: Plan, layers: int, kv_heads: int, head_dim: int, dtype: torch.dtype,
                 device: torch.device, storage: Any = None) -> None:
        super().__init__(plan, layers, kv_heads, head_dim, dtype, device, storage=storage)
        if plan.method not in ("streaming", "snapstream") or not plan.rerotate:
            raise ValueError(f"RerotateCache: want streaming or snapstream with rerotate, got {plan.method}")
        self.pos = torch.full((layers, kv_heads, plan.held), _EMPTY, dtype=torch.int64, device=device)
        self.delta = torch.zeros_like(self.pos)
        self.inv_freq: Optional[torch.Tensor] = None

    @classmethod
    def refusal(cls, plan: Plan, runner: Any) -> str:
        """Why the runner's model cannot run plan ("" when it can): its RoPE is not plain."""
        return rope_refusal(runner, int(runner.head_dim))

    def attach(self, runner: Any) -> None:
        why = rope_refusal(runner, int(runner.head_dim))
        if why:
            raise ValueError(why)
        self.inv_freq = runner.rope_inv_freq.detach().to(device=self.pos.device, dtype=torch.float32)

    def write_prefill(self, layer: int, k: torch.Tensor, v: torch.Tensor, topk: torch.Tensor) -> None:
        super().write_prefill(layer, k, v, topk)
        pl = self.pos[layer]
        for p0, s0, n in self.fixed_runs:
            pl[:, s0:s0 + n] = torch.arange(p0, p0 + n, dtype=torch.int64, device=pl.device)
        n = topk.shape[1]
        if n:
            base = self.plan.topk_base
            pl[:, base:base + n] = topk.to(torch.int64)

    def begin_decode(self, p: int) -> None:
        super().begin_decode(p)
        self.pos[:, :, self.slot] = p
        held = self.valid.to(torch.int64).sum()  # n, on the device
        order = torch.argsort(self.pos, dim=-1)
        rank = torch.empty_like(order)
        ar = torch.arange(order.shape[-1], dtype=torch.int64, device=order.device)
        rank.scatter_(-1, order, ar.expand_as(order).contiguous())
        delta = (p - self.pos) - (held - 1 - rank)
        self.delta = torch.where(self.valid, delta, torch.zeros_like(delta))

    def decode(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        assert self.inv_freq is not None
        self.write_decode(layer, self.slot, k, v)
        kl = self.k[layer]
        kr = rotate(kl, self.delta[layer], self.inv_freq).to(kl.dtype)
        return slot_attention(q, kr, self.v[layer], self.valid, scale)
