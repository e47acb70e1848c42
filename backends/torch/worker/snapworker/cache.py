"""The fixed-size slot cache of one sequence (spec sections 4-5) and the attention that reads it.

A sequence owns, for every layer, K and V tensors of [kv_heads, capacity, head_dim] allocated once at admission.
Keys are stored after RoPE at their original position and never moved. A boolean per slot (the same for every layer
and KV head: the top-K positions differ between them, their slots do not) masks the slots that hold nothing.
"""
from __future__ import annotations

import math
from typing import Any, Callable, List, Optional, Tuple

import torch
import torch.nn.functional as F

from .plan import Plan
from .select import select_topk

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")

# flash_attn_func, when attn=flash: the prefill's dense causal attention runs in flash-attn's kernel (bf16/fp16).
FLASH: Optional[Callable[..., torch.Tensor]] = None


def use_flash() -> None:
    """Routes half-precision prefill attention through flash-attn (ImportError when it is not installed)."""
    global FLASH
    from flash_attn import flash_attn_func  # type: ignore

    FLASH = flash_attn_func


def _attend_math(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: Optional[torch.Tensor],
                 scale: float) -> torch.Tensor:
    """Softmax attention of q [N, M, D] over k, v [N, S, D]; allowed [M, S] or [1, S] bool (None: everything)."""
    att = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale
    if allowed is not None:
        att = att.masked_fill(~allowed, float("-inf"))
    return torch.matmul(att.softmax(-1), v.float()).to(q.dtype)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Dense causal attention of one sequence's prompt: q [H, T, D], k, v [KVH, T, D] -> [H, T, D]."""
    h, t, d = q.shape
    kvh = k.shape[0]
    group = h // kvh
    if FLASH is not None and q.dtype in (torch.bfloat16, torch.float16):
        o = FLASH(q.transpose(0, 1)[None], k.transpose(0, 1)[None], v.transpose(0, 1)[None], causal=True,
                  softmax_scale=scale)
        return o[0].transpose(0, 1)
    if HAS_SDPA:
        if group > 1 and q.is_cuda and q.dtype in (torch.bfloat16, torch.float16):
            try:  # flash attention reads the KV heads in place (torch >= 2.5)
                return F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True, scale=scale,
                                                      enable_gqa=True)[0]
            except TypeError:
                pass
        # Only flash attention takes enable_gqa; float32 goes to the memory-efficient kernel with repeated heads.
        kk = k.repeat_interleave(group, dim=0) if group > 1 else k
        vv = v.repeat_interleave(group, dim=0) if group > 1 else v
        return F.scaled_dot_product_attention(q[None], kk[None], vv[None], is_causal=True, scale=scale)[0]
    allowed = torch.ones(t, t, dtype=torch.bool, device=q.device).tril()
    qg = q.reshape(kvh, group, t, d)
    return _attend_math(qg, k[:, None], v[:, None], allowed, scale).reshape(h, t, d)


def slot_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor,
                   scale: float) -> torch.Tensor:
    """Attention of decode queries over a slot cache: q [H, 1, D]; k, v [KVH, C, D]; valid [C] bool -> [H, 1, D].

    The query heads of a KV head are laid out as that head's rows, so the cache is read in place (no repeat)."""
    h, t, d = q.shape
    kvh = k.shape[0]
    qg = q.reshape(kvh, (h // kvh) * t, d)
    mask = valid[None, :]
    if HAS_SDPA:
        o = F.scaled_dot_product_attention(qg[None], k[None], v[None], attn_mask=mask[None, None], scale=scale)[0]
    else:
        o = _attend_math(qg, k, v, mask, scale)
    return o.reshape(h, t, d)


_OUT_F32: Optional[bool] = None  # whether torch.bmm takes out_dtype (CUDA, torch >= 2.8) here


def _bmm_f32(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b (3-D) with a float32 result: half-precision inputs accumulate and come out in float32 when torch.bmm
    takes out_dtype, and are rounded to their dtype first otherwise."""
    global _OUT_F32
    if a.dtype == torch.float32:
        return torch.bmm(a, b)
    if _OUT_F32 is None or _OUT_F32:
        try:
            out = torch.bmm(a, b, out_dtype=torch.float32)  # type: ignore[call-arg]
            _OUT_F32 = True
            return out
        except (TypeError, RuntimeError):
            _OUT_F32 = False
    return torch.bmm(a, b).float()


def split_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor, scale: float,
                    chunk: int = 256) -> torch.Tensor:
    """batched_slot_attention from matrix products, for a GPU: the scores of every slot in one product (parallel
    over slots), a float32 softmax, and the value sum split into chunks of `chunk` slots whose float32 partial
    sums are added at the end, so that one sequence's slots spread over the whole device as flash-decoding does."""
    b, kvh, g, d = q.shape
    c = k.shape[2]
    bk = b * kvh
    kk, vv = k.reshape(bk, c, d), v.reshape(bk, c, d)
    s = _bmm_f32(q.reshape(bk, g, d), kk.transpose(1, 2)).view(b, kvh, g, c) * scale
    s = s.masked_fill(~valid[:, None, None, :], float("-inf"))
    p = torch.softmax(s, dim=-1).to(v.dtype).view(bk, g, c)
    if c > chunk and c % chunk == 0:
        n = c // chunk
        pc = p.view(bk, g, n, chunk).transpose(1, 2).reshape(bk * n, g, chunk)
        o = _bmm_f32(pc, vv.reshape(bk * n, chunk, d)).view(bk, n, g, d).sum(1)
    else:
        o = _bmm_f32(p, vv)
    return o.view(b, kvh, g, d).to(q.dtype)


DECODE_ATTN = ("sdpa", "split", "triton")


def batched_slot_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor, scale: float,
                           impl: str = "sdpa", hwm: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Decode attention of b sequences in one call: q [b, KVH, G, D] (each KV head's query heads as its rows),
    k, v [b, KVH, C, D] (pool rows), valid [b, C] -> [b, KVH, G, D]. impl "sdpa" is one masked
    scaled_dot_product_attention (the math of slot_attention, batched); "split" is split_attention; "triton" is
    the split-K kernel of triton_decode.py, which reads only the slots below hwm [b] int32 (splitk.high_water of
    valid when None)."""
    if impl == "split":
        return split_attention(q, k, v, valid, scale)
    if impl == "triton":
        from . import triton_decode
        from .splitk import high_water

        return triton_decode.decode_attention(q, k, v, valid, high_water(valid) if hwm is None else hwm, scale)
    mask = valid[:, None, None, :]
    if HAS_SDPA:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    return _attend_math(q, k, v, mask, scale)


class SeqCache:
    """The slot cache of one sequence under one plan: its own tensors, or views into a SlotPool (storage: K and V
    [layers, kv_heads, held, head_dim] and valid [held], all False; held = plan.held).

    It is the cache of full, streaming, snapkv and snapstream; the other policies subclass it (make_cache picks the
    class) and override the hooks the engine and the attention function call: prefill (a layer's selection and
    writes), end_prefill, begin_decode (before a decode step's forward), decode (a layer's write and attention),
    kept and evicted. static_ok says whether the sequence may decode in the engine's static step (the batched
    attention over pool rows with one slot mask per row, CUDA graphs): only caches whose decode is a write at
    plan.decode_slot and attention over the row's valid slots; the others decode in the packed step through decode."""

    static_ok = True
    # wants_pre_rope: prefill is called with kraw, the layer's pre-RoPE keys [KVH, L, D] (attention.note_pre_rope).
    wants_pre_rope = False
    # record_evictions: keep what evicted() returns (the engine sets it for requests that want their kept positions;
    # otherwise a long generation would hold a record per step).
    record_evictions = False

    def __init__(self, plan: Plan, layers: int, kv_heads: int, head_dim: int, dtype: torch.dtype,
                 device: torch.device,
                 storage: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None) -> None:
        self.plan = plan
        if storage is None:
            shape = (layers, kv_heads, plan.held, head_dim)
            storage = (torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device),
                       torch.zeros(plan.held, dtype=torch.bool, device=device))
        self.rebind(*storage)
        # The sinks and ring positions as a few runs of consecutive positions and slots (plain slice copies; a
        # full cache's 131072 positions are one run).
        self.fixed_runs = plan.fixed_runs()
        self.topk: List[Optional[torch.Tensor]] = [None] * layers
        self.slot = -1  # the slot of the token being decoded (begin_decode)

    def rebind(self, k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor) -> None:
        """Points the cache at other storage holding the same contents (a pool row that moved)."""
        want = (self.plan.held,)
        if k.shape[2:3] != want or v.shape != k.shape or valid.shape != want:
            raise ValueError(f"cache storage {tuple(k.shape)} / {tuple(valid.shape)} does not fit {self.plan.held} "
                             "slots")
        self.k, self.v, self.valid = k, v, valid

    @property
    def nbytes(self) -> int:
        """The bytes held by K and V."""
        return 2 * self.k.numel() * self.k.element_size()

    def attach(self, runner: Any) -> None:
        """Called once by make_cache with the engine's runner (a policy that needs the model, e.g. its RoPE)."""

    def prefill(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """A layer's end of prefill: q [H, L, D] (post-RoPE queries of the whole prompt), k, v [KVH, L, D]. The
        SnapKV selection (over the last min(window, L) queries) when the plan needs scores, then the writes."""
        plan = self.plan
        w = min(plan.window, plan.prompt_len) if plan.need_scores else 0
        top = select_topk(plan, q[:, q.shape[1] - w:], k)
        self.write_prefill(layer, k, v, top)

    def end_prefill(self) -> None:
        """Called once after the prefill's forward (every layer's prefill has run)."""
        self.mark_prefill()

    def begin_decode(self, p: int) -> None:
        """Called before the forward of the decode step of position p (the token fed): marks its slot."""
        self.slot = self.plan.decode_slot(p)
        self.valid[self.slot] = True

    def decode(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        """A layer's decode step: q [H, 1, D], k, v [KVH, 1, D] of the token; returns the attention output [H, 1, D]."""
        self.write_decode(layer, self.slot, k, v)
        return self.attend(layer, q, scale)

    def evicted(self) -> Optional[List[List[List[int]]]]:
        """[step][layer][kv head] the position evicted at every decode step (-1 none), for policies that evict
        during decode; None for the others."""
        return None

    def mark_prefill(self) -> None:
        """Marks the slots the prefill fills: sinks, ring and the valid top-K slots."""
        for _, s0, n in self.fixed_runs:
            self.valid[s0:s0 + n] = True
        base = self.plan.topk_base
        self.valid[base:base + self.plan.valid_topk] = True

    def write_prefill(self, layer: int, k: torch.Tensor, v: torch.Tensor, topk: torch.Tensor) -> None:
        """Copies a layer's kept prompt K/V into the slots: k, v [KVH, L, D]; topk [KVH, valid_topk] positions."""
        for p0, s0, n in self.fixed_runs:
            self.k[layer][:, s0:s0 + n] = k[:, p0:p0 + n]
            self.v[layer][:, s0:s0 + n] = v[:, p0:p0 + n]
        n = topk.shape[1]
        if n:
            base = self.plan.topk_base
            idx = topk[:, :, None].expand(-1, -1, k.shape[2])
            self.k[layer][:, base:base + n] = torch.gather(k, 1, idx)
            self.v[layer][:, base:base + n] = torch.gather(v, 1, idx)
        self.topk[layer] = topk

    def write_decode(self, layer: int, slot: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Writes one decoded token's K/V ([KVH, 1, D]) at its slot."""
        self.k[layer][:, slot] = k[:, 0]
        self.v[layer][:, slot] = v[:, 0]

    def attend(self, layer: int, q: torch.Tensor, scale: float) -> torch.Tensor:
        """Decode attention of q [H, 1, D] over the valid slots of a layer."""
        return slot_attention(q, self.k[layer], self.v[layer], self.valid, scale)

    def kept(self) -> List[List[List[int]]]:
        """[layer][kv head] sorted positions held right after prefill (what compress.Slots.Kept returns)."""
        out = []
        fixed = self.plan.fixed_prefill()[0]
        for t in self.topk:
            if t is None:
                raise RuntimeError("kept: the prefill has not run")
            out.append([sorted(fixed + row) for row in t.tolist()])
        return out


def default_scale(head_dim: int) -> float:
    """1/sqrt(head_dim), the scaling of attention when the model gives none."""
    return 1.0 / math.sqrt(head_dim)
