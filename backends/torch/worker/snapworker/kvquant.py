"""kvquant (docs/policies.md §17): the full cache with keys and values quantized KIVI-style, simulated.

The arithmetic is compress/kvquant's, in torch and vectorised over groups: every operation in float32, the scale and
zero point rounded to float16 (round to nearest even, saturating at +-65504), codes rounded half to even, code 0
where the scale is 0, and x' = float32(code * scale) + zero as two roundings (two separate tensor operations, never a
fused multiply-add). Keys are quantized per channel over groups of G consecutive positions, values per token over
groups of G consecutive channels (the last group narrower when G does not divide the head size).

Storage is simulated: QuantCache keeps the full cache's layout (slot = position) in the cache's own dtype and holds
the DEQUANTIZED values there, so attention reads exactly what a dequantize-on-read kernel would produce (in float32;
rounded to the cache's dtype in bfloat16). The device memory is therefore the unquantized cache's; the packed store
with a dequantizing kernel is not built. The records' KV bytes count the packed size (the Go side, Policy.KVBytes).
"""
from __future__ import annotations

from typing import Any, Tuple

import torch

from .cache import SeqCache

FP16_MAX = 65504.0


def to_fp16(x: torch.Tensor) -> torch.Tensor:
    """float32 -> float16, round to nearest even, saturating at +-65504 (NaN stays NaN), as kvquant.ToFloat16."""
    return x.clamp(-FP16_MAX, FP16_MAX).to(torch.float16)


def quantize(x: torch.Tensor, bits: int, dim: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quantizes groups of x (float32) that run along dim: every slice along dim is one group. Returns (dequantized
    float32 like x, codes uint8 like x, scale float16, zero float16), the parameters with dim kept as size 1."""
    if x.dtype != torch.float32:
        raise TypeError(f"quantize: want float32, got {x.dtype}")
    maxq = float((1 << bits) - 1)
    mn = x.amin(dim=dim, keepdim=True)
    mx = x.amax(dim=dim, keepdim=True)
    # A tensor divisor, not a Python number: CUDA divides by a scalar as a multiplication by its reciprocal.
    hs = to_fp16((mx - mn) / torch.full_like(mx, maxq))
    hz = to_fp16(mn)
    s, z = hs.float(), hz.float()
    zero_scale = s == 0
    t = ((x - z) / torch.where(zero_scale, torch.ones_like(s), s)).clamp(0.0, maxq)
    code = torch.where(zero_scale, torch.zeros_like(t), torch.round(t))
    prod = code * s  # rounded to float32 here, then the sum: no fused multiply-add
    deq = prod + z
    return deq, code.to(torch.uint8), hs, hz


def dequantized_keys(k: torch.Tensor, bits: int, group: int) -> torch.Tensor:
    """Keys k [..., n*group, D] (n complete groups of positions) quantized per channel over each group of group
    positions and dequantized: float32 of k's shape."""
    *lead, n, d = k.shape
    g = k.float().reshape(*lead, n // group, group, d)
    return quantize(g, bits, dim=-2)[0].reshape(*lead, n, d)


def dequantized_values(v: torch.Tensor, bits: int, group: int) -> torch.Tensor:
    """Values v [..., D] quantized per token over groups of group channels (the last one narrower) and
    dequantized: float32 of v's shape."""
    d = v.shape[-1]
    x = v.float()
    full = (d // group) * group
    parts = []
    if full:
        head = x[..., :full]
        parts.append(quantize(head.reshape(*x.shape[:-1], d // group, group), bits, dim=-1)[0].reshape(head.shape))
    if full < d:
        parts.append(quantize(x[..., full:], bits, dim=-1)[0])
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)


class QuantCache(SeqCache):
    """The kvquant cache: the full cache's layout (slot = position, every position kept), holding dequantized values.

    Prefill: every prompt value row is quantized, every complete key group of G positions is quantized; the keys of
    the last, incomplete group are held as they came (the cache's dtype) until the decode step that completes it.
    Decode: the new value is quantized on write; the new key is held, and when its position completes a group
    (p % G == G - 1) that group's G keys are quantized BEFORE the step attends, so a token attends to its own
    quantized value and to its own key unquantized unless it completed a group. Decodes in the packed step
    (static_ok False): quantizing at a data-independent but per-sequence position is not the static step's write."""

    static_ok = False

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        plan = self.plan
        if plan.method != "kvquant" or plan.lo != plan.hi or plan.slot_of(plan.prompt_len) != plan.prompt_len:
            raise ValueError("QuantCache: want a kvquant plan with the full cache's layout (slot = position)")
        self.bits, self.group = plan.bits, plan.group
        self.quantize_keys = False  # whether the token being decoded completes a key group
        self.pos = -1

    def prefill(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """Quantizes the prompt's values and complete key groups into slots [0, L); the tail keys are held."""
        n = k.shape[1]
        full = (n // self.group) * self.group
        dt = self.k.dtype
        if full:
            self.k[layer][:, :full] = dequantized_keys(k[:, :full], self.bits, self.group).to(dt)
        if full < n:
            self.k[layer][:, full:n] = k[:, full:]
        self.v[layer][:, :n] = dequantized_values(v, self.bits, self.group).to(dt)
        self.topk[layer] = torch.empty(k.shape[0], 0, dtype=torch.long, device=k.device)

    def begin_decode(self, p: int) -> None:
        super().begin_decode(p)
        self.pos = p
        self.quantize_keys = p % self.group == self.group - 1

    def decode(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        s, g = self.slot, self.group
        kl = self.k[layer]
        kl[:, s] = k[:, 0]
        self.v[layer][:, s] = dequantized_values(v[:, 0], self.bits, g).to(self.v.dtype)
        if self.quantize_keys:
            a = s + 1 - g
            kl[:, a:s + 1] = dequantized_keys(kl[:, a:s + 1], self.bits, g).to(kl.dtype)
        return self.attend(layer, q, scale)

