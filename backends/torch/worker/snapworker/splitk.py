"""The split-K ("flash-decoding") decode attention's geometry and arithmetic, in plain torch.

The Triton kernel (triton_decode.py) runs one program per (pool row, KV head, split). Row r's live slots are
[0, hwm[r]) (hwm: one past its highest valid slot, a device tensor computed once a step); split s of nsplit covers
[s * per, min((s + 1) * per, hwm)) with per = ceil(ceil(hwm / nsplit) / block) * block, read in blocks of `block`
slots. A program holds the G query heads of its KV head as the rows of one block (GQA without expanding K/V) and
keeps a float32 online softmax in base 2: m (running max of the scores times scale * log2(e)), l (sum of
exp2(score - m)) and acc (sum of exp2(score - m) * v, the weights rounded to V's dtype before the product, as the
kernel's tensor-core product takes them); invalid slots score -inf. A second kernel merges the splits' (m, l, acc):
M = max m, L = sum l * exp2(m - M), out = sum acc * exp2(m - M) / L (0 where a row has no valid slot).

emulate() is that arithmetic step by step on any device, so that the algorithm (the chunk bounds, empty splits,
masking, the merge) is tested on a CPU against the eager attention; the kernel is tested against it and against SDPA
on a GPU.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch

LOG2E = 1.0 / math.log(2.0)
M_INIT = -1.0e30  # the running max before any score: finite, so that exp2(m - m_new) is never nan


def num_splits(batch: int, kv_heads: int, capacity: int, sms: int, min_slots: int = 256) -> int:
    """The splits per (row, KV head) of a bucket: about one program per SM in all (a power of two), but no split
    shorter than min_slots of the row's capacity (a split's partial result costs a write and a read)."""
    want = max(1, -(-sms // max(1, batch * kv_heads)))
    n = 1
    while n < want:
        n *= 2
    return max(1, min(n, capacity // min_slots))


def chunk(hwm: int, nsplit: int, block: int) -> int:
    """The slots a split covers when the row's live slots are [0, hwm): ceil(hwm / nsplit) rounded up to block."""
    per = -(-hwm // nsplit)
    return -(-per // block) * block


def high_water(valid: torch.Tensor) -> torch.Tensor:
    """valid [b, C] bool -> int32 [b]: one past the highest valid slot of each row (0 when none)."""
    pos = torch.arange(1, valid.shape[-1] + 1, dtype=torch.int32, device=valid.device)
    return (valid.to(torch.int32) * pos).amax(-1)


def emulate(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor, scale: float, nsplit: int,
            block: int) -> torch.Tensor:
    """The kernel's result step by step: q [b, KVH, G, D]; k, v [b, KVH, C, D]; valid [b, C] -> [b, KVH, G, D]."""
    b, kvh, g, d = q.shape
    hwm = high_water(valid).tolist()
    out = torch.empty_like(q)
    for r in range(b):
        per = chunk(int(hwm[r]), nsplit, block)
        for h in range(kvh):
            parts = [_split(q[r, h], k[r, h], v[r, h], valid[r], scale, s * per, min((s + 1) * per, int(hwm[r])),
                            block) for s in range(nsplit)]
            out[r, h] = _merge(parts).to(q.dtype)
    return out


def _split(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor, scale: float, start: int,
           end: int, block: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One program: q [G, D] over slots [start, end) of k, v [C, D] -> (m [G], l [G], acc [G, D]) float32."""
    g, d = q.shape
    m = torch.full((g,), M_INIT, dtype=torch.float32, device=q.device)
    l_ = torch.zeros(g, dtype=torch.float32, device=q.device)
    acc = torch.zeros(g, d, dtype=torch.float32, device=q.device)
    for n0 in range(start, end, block):
        n1 = min(n0 + block, end)
        s = (q.float() @ k[n0:n1].float().t()) * (scale * LOG2E)
        s = s.masked_fill(~valid[None, n0:n1], float("-inf"))
        m_new = torch.maximum(m, s.amax(-1))
        alpha = torch.exp2(m - m_new)
        p = torch.exp2(s - m_new[:, None])
        l_ = l_ * alpha + p.sum(-1)
        acc = acc * alpha[:, None] + p.to(v.dtype).float() @ v[n0:n1].float()
        m = m_new
    return m, l_, acc


def _merge(parts: "list[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]") -> torch.Tensor:
    """The merge kernel: the splits' (m, l, acc) in split order -> [G, D] float32."""
    g, d = parts[0][2].shape
    dev = parts[0][2].device
    m_run = torch.full((g,), M_INIT, dtype=torch.float32, device=dev)
    l_run = torch.zeros(g, dtype=torch.float32, device=dev)
    acc = torch.zeros(g, d, dtype=torch.float32, device=dev)
    for m, l_, a in parts:
        m_new = torch.maximum(m_run, m)
        c0, c1 = torch.exp2(m_run - m_new), torch.exp2(m - m_new)
        l_run = l_run * c0 + l_ * c1
        acc = acc * c0[:, None] + a * c1[:, None]
        m_run = m_new
    return acc / torch.where(l_run > 0, l_run, torch.ones_like(l_run))[:, None]
