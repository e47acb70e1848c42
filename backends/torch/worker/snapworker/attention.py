"""The attention function the model runs with: it owns the slot caches of the sequences in the current step.

The engine packs every sequence of a step into one row of tokens (batch 1) with explicit position ids and no
attention mask, and sets the step's segments here before the forward. The model calls attention(module, q, k, v, ...)
per layer with post-RoPE q [1, H, T, D] and k, v [1, KVH, T, D] (transformers' AttentionInterface convention); for
each segment this function runs dense causal attention and hands the layer's prompt to its cache (SeqCache.prefill:
the policy's selection and writes), or hands the token to its cache (SeqCache.decode: write and attention).

A StaticStep instead is the decode of the sequences held in rows [0, b) of the engine's SlotPool, one token each, in
one batched attention call per layer over static buffers: what the engine captures in a CUDA graph per batch size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

import torch

from .cache import SeqCache, batched_slot_attention, causal_attention, default_scale
from .pool import SlotPool


@dataclass
class Segment:
    """A run of tokens of one sequence within the packed step: [start, start+length)."""

    cache: SeqCache
    start: int
    length: int
    prefill: bool


class Step:
    """The segments of the forward in progress."""

    def __init__(self, segments: List[Segment]) -> None:
        self.segments = segments


class StaticStep:
    """A decode step over pool rows [0, b): token i of the row of tokens is the next token of the sequence in pool
    row i (padding rows hold no sequence), written at slot slots[i]. Every tensor is the engine's static buffer or
    computed from them once a step, so the same Python calls serve an eager step and the capture of a CUDA graph.
    span is how many slots of each row attention reads (the pool's row capacity in a graph). Computed once a step
    for every layer: flat [b * KVH], the index of (row i, KV head h, slots[i]) in a layer's K or V viewed as
    [rows * KVH * capacity, D] (one index_copy_ writes a layer's new keys); hwm, for impl "triton", each row's
    high-water mark (splitk.high_water of its slot mask). The boolean slot mask goes to SDPA as it is: SDPA converts
    it per backend (cuDNN's fill is -65504, not -inf), so a float mask made here could change its results."""

    def __init__(self, pool: SlotPool, rows: torch.Tensor, slots: torch.Tensor, span: int, impl: str,
                 flat: torch.Tensor, hwm: Optional[torch.Tensor] = None) -> None:
        self.pool, self.rows, self.slots, self.span, self.impl = pool, rows, slots, span, impl
        self.flat, self.hwm = flat, hwm


_current: Optional[Union[Step, StaticStep]] = None

# The pre-RoPE keys of the forward in progress, per layer ([KVH, T, D] of the packed row), noted by the model's key
# projection (hf.note_pre_rope_keys's hooks, or a test model calling note_pre_rope) while a step's prefill asks for
# them: a cache with wants_pre_rope (knorm, docs/policies.md §15) ranks keys by their pre-RoPE norm.
_pre_rope: Dict[int, torch.Tensor] = {}
_want_pre_rope = False


def note_pre_rope(layer: int, k: torch.Tensor, head_dim: int) -> None:
    """Keeps layer's pre-RoPE keys of this forward (k: the key projection's output, [T, KVH * D] or
    [1, T, KVH * D], or a key norm's [1, T, KVH, D]) when the step asks for them; otherwise does nothing (no work in a
    decode step)."""
    if _want_pre_rope:
        t = k.shape[-3] if k.dim() == 4 else k.shape[-2]
        _pre_rope[layer] = k.reshape(t, -1, head_dim).transpose(0, 1)

# masks_seen counts calls that received an attention mask: the model must build none (the GPU session checks 0).
masks_seen = 0


def set_step(step: Optional[Union[Step, StaticStep]]) -> None:
    """Installs the segments of the next forward (None after it)."""
    global _current, _want_pre_rope
    _current = step
    _pre_rope.clear()
    _want_pre_rope = isinstance(step, Step) and any(seg.prefill and seg.cache.wants_pre_rope for seg in step.segments)


def _prefill(cache: SeqCache, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, a: int, b: int) -> None:
    """Hands a layer's prompt (rows [a, b) of the packed row) to its cache, with the pre-RoPE keys of those rows when
    the cache wants them (RuntimeError when the model noted none)."""
    if not cache.wants_pre_rope:
        cache.prefill(layer, q, k, v)
        return
    raw = _pre_rope.get(layer)
    if raw is None:
        raise RuntimeError(f"layer {layer}: the model noted no pre-RoPE keys (a policy ranking keys by their norm needs "
                           "them: attention.note_pre_rope)")
    cache.prefill(layer, q, k, v, kraw=raw[:, a:b])


def attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: Optional[torch.Tensor], dropout: float = 0.0, scaling: Optional[float] = None,
              **kwargs: Any) -> Tuple[torch.Tensor, None]:
    """The AttentionInterface function "snapeval": returns (output [1, T, H, D], None)."""
    global masks_seen
    if attention_mask is not None:
        masks_seen += 1
    step = _current
    if step is None:
        raise RuntimeError("snapeval attention called outside an engine step")
    if kwargs.get("sliding_window") is not None or kwargs.get("softcap") is not None:
        raise RuntimeError("snapeval attention: sliding-window or soft-capped attention is not supported")
    if query.shape[0] != 1:
        raise RuntimeError(f"snapeval attention: batch {query.shape[0]}, want 1 packed row")
    layer = int(module.layer_idx)
    scale = float(scaling) if scaling is not None else default_scale(query.shape[-1])
    if isinstance(step, StaticStep):
        return _static(step, layer, query, key, value, scale), None
    q, k, v = query[0], key[0], value[0]
    if len(step.segments) == 1 and step.segments[0].prefill and step.segments[0].length == q.shape[1]:
        # One prompt fills the row (a long prefill): attention's output is returned as it comes, without a copy into
        # a row-sized buffer (the flash kernels' output is already laid out as [T, H, D]).
        seg = step.segments[0]
        o = causal_attention(q, k, v, scale)
        _prefill(seg.cache, layer, q, k, v, 0, seg.length)
        return o.transpose(0, 1)[None].contiguous(), None
    out = torch.empty_like(q)
    for seg in step.segments:
        a, b = seg.start, seg.start + seg.length
        if seg.prefill:
            out[:, a:b] = causal_attention(q[:, a:b], k[:, a:b], v[:, a:b], scale)
            _prefill(seg.cache, layer, q[:, a:b], k[:, a:b], v[:, a:b], a, b)
        else:
            out[:, a:b] = seg.cache.decode(layer, q[:, a:b], k[:, a:b], v[:, a:b], scale)
    return out.transpose(0, 1)[None].contiguous(), None


def _static(step: StaticStep, layer: int, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
            scale: float) -> torch.Tensor:
    """A StaticStep's layer: every token's K/V written at (its row, its slot) in one index_copy_ per tensor, then one
    batched attention over the rows' slots. No host synchronisation, no allocation that depends on the data."""
    pool = step.pool
    b = step.rows.shape[0]
    q = query[0].transpose(0, 1)  # [b, H, D]
    kl, vl = pool.k[layer], pool.v[layer]
    h, d = q.shape[1], q.shape[2]
    kl.view(-1, d).index_copy_(0, step.flat, key[0].transpose(0, 1).reshape(-1, d))
    vl.view(-1, d).index_copy_(0, step.flat, value[0].transpose(0, 1).reshape(-1, d))
    kvh = kl.shape[1]
    c = step.span
    qg = q.reshape(b, kvh, h // kvh, d)
    o = batched_slot_attention(qg, kl[:b, :, :c], vl[:b, :, :c], pool.valid[:b, :c], scale, step.impl, step.hwm)
    return o.reshape(b, h, d)[None]
