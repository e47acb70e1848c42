"""The caches of the policies that choose which prompt positions to keep, or how many, differently from SnapKV's one
top-K count (docs/policies.md §15 knorm, §20 pyramidkv, §21 adakv); registered in policies.CACHES.

- KNormCache: snapkv's layout with no window ([ top-K: B | append: max_new ]); per layer and KV head the B prompt
  keys of lowest L2 norm. Its mask is the base's (the same for every layer and head), so it decodes in the static
  step.
- PyramidKVCache: the base's layout with the widest layer's top-K block in every layer (plan.held slots); layer l
  selects its own count plan.layer_topk[l] by SnapKV scoring and masks the rest of the block. One mask per layer,
  so it decodes in the packed step.
- AdaKVCache: per layer, each KV head's top-K count from the layer's pooled SnapKV scores (compress.SelectAdaKV);
  a layer's KV heads share its kv_heads x held slots as one flat run in which each head has a segment of its own
  capacity (compress.Plan.HeadPlan), so that the memory held is the KV bytes counted. Packed step; decode attends
  all query heads over the flat layer at once with a mask of each head's own segment.
"""
from __future__ import annotations

import dataclasses
from typing import Any, List, Optional, Tuple

import torch

from .cache import SeqCache, _bmm_f32, slot_attention
from .plan import Plan
from .select import candidate_scores, select_topk, top_positions

Storage = Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def knorm_topk(plan: Plan, keys: torch.Tensor) -> torch.Tensor:
    """compress.selectKNorm: per KV head the valid_topk candidates of [lo, hi) whose key (keys [KVH, L, D], the
    keys before RoPE, as KNormCache passes them) has the lowest sum of squares of its components in float64; NaN never kept before a number, ties to
    the lower position. LongTensor [KVH, valid_topk], ascending rows; every candidate when the plan needs no
    scores (the prompt fits)."""
    if not plan.need_scores:
        return select_topk(plan, keys[:, :0], keys)
    cand = keys[:, plan.lo:plan.hi].double()
    return top_positions(-(cand * cand).sum(-1), plan.lo, plan.valid_topk)


class KNormCache(SeqCache):
    """knorm (docs/policies.md §15): SeqCache with the key-norm selection in place of SnapKV's. The kept slots are
    [0, valid_topk) in every layer and head and decoded tokens go to plan.decode_slot (the append block): the
    static step's write and mask."""

    static_ok = True
    wants_pre_rope = True

    @classmethod
    def refusal(cls, plan: Plan, runner: Any) -> str:
        """Why the runner's model cannot run knorm ("" when it can): it does not note its pre-RoPE keys."""
        if not getattr(runner, "pre_rope", False):
            return (f"knorm ranks keys by their pre-RoPE norm; this runner ({type(runner).__name__}) does not note its "
                    "pre-RoPE keys")
        return ""

    def prefill(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                kraw: Optional[torch.Tensor] = None) -> None:
        """A layer's end of prefill: the keys of lowest pre-RoPE norm per KV head (kraw; q is not read). The
        norm is the post-RoPE one in exact arithmetic; taken before RoPE, equal keys (a token repeated in the
        first layer) tie exactly and go to the lower position, where rotated ones would be ranked by rounding."""
        if kraw is None:
            raise RuntimeError("knorm: no pre-RoPE keys")
        self.write_prefill(layer, k, v, knorm_topk(self.plan, kraw))


def layer_plan(plan: Plan, k: int) -> Plan:
    """compress.Plan.withTopK: plan with k top-K slots (capacity, valid_topk and need_scores follow)."""
    c = plan.hi - plan.lo
    return dataclasses.replace(plan, topk=k, capacity=plan.capacity - plan.topk + k, valid_topk=min(c, k),
                               need_scores=k > 0 and c > k)


class PyramidKVCache(SeqCache):
    """pyramidkv (docs/policies.md §20). Every layer holds plan.held slots laid out [ sinks | ring | top-K: the
    widest layer's count | append (snapkv base) ]; layer l keeps its own plan.layer_topk[l] candidates by SnapKV
    scoring (valid min(hi - lo, K_l)) and a mask of its own, lvalid [layers, held]. Decoded tokens go to the ring
    (snapstream base) or the append block after the widest top-K block (snapkv base), the same slot in every layer.
    The pool row's shared mask (valid) is not used."""

    static_ok = False

    def __init__(self, plan: Plan, layers: int, kv_heads: int, head_dim: int, dtype: torch.dtype,
                 device: torch.device, storage: Storage = None) -> None:
        if len(plan.layer_topk) != layers:
            raise ValueError(f"pyramidkv: the plan has top-K counts of {len(plan.layer_topk)} layers, the model "
                             f"{layers}")
        widest = max(plan.layer_topk)
        want = plan.sinks + plan.ring + widest + (plan.max_new if plan.append_decode else 0)
        if plan.held != want:
            raise ValueError(f"pyramidkv: the plan holds {plan.held} slots, its widest layer needs {want}")
        super().__init__(plan, layers, kv_heads, head_dim, dtype, device, storage)
        self.widest = widest
        self.layer_plans = [layer_plan(plan, k) for k in plan.layer_topk]
        self.lvalid = torch.zeros(layers, plan.held, dtype=torch.bool, device=device)

    def prefill(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """A layer's end of prefill: SnapKV's selection with the layer's count, then the writes and its mask."""
        lp = self.layer_plans[layer]
        w = min(lp.window, lp.prompt_len) if lp.need_scores else 0
        top = select_topk(lp, q[:, q.shape[1] - w:], k)
        self.write_prefill(layer, k, v, top)
        lv = self.lvalid[layer]
        for _, s0, n in self.fixed_runs:
            lv[s0:s0 + n] = True
        base = self.plan.topk_base
        lv[base:base + lp.valid_topk] = True

    def end_prefill(self) -> None:
        """Nothing: each layer's mask was set by its prefill."""

    def decode_slot(self, p: int) -> int:
        """The slot of the decoded token at position p in every layer."""
        plan = self.plan
        if plan.append_decode:
            if not plan.prompt_len <= p < plan.prompt_len + plan.max_new:
                raise ValueError(f"position {p} has no decode slot (prompt {plan.prompt_len}, max new "
                                 f"{plan.max_new})")
            return plan.topk_base + self.widest + (p - plan.prompt_len)
        return plan.decode_slot(p)

    def begin_decode(self, p: int) -> None:
        """Marks the token's slot in every layer's mask."""
        self.slot = self.decode_slot(p)
        self.lvalid[:, self.slot] = True

    def attend(self, layer: int, q: torch.Tensor, scale: float) -> torch.Tensor:
        """Decode attention of q [H, 1, D] over the layer's own valid slots."""
        return slot_attention(q, self.k[layer], self.v[layer], self.lvalid[layer], scale)


def best_first(scores: torch.Tensor) -> torch.Tensor:
    """The column indices of each row of scores [..., C] best first: score descending, NaN lowest (below -inf),
    ties to the lower index (compress's rank)."""
    v = torch.nan_to_num(scores, nan=float("-inf"), posinf=float("inf"), neginf=float("-inf"))
    order = torch.sort(v, dim=-1, descending=True, stable=True).indices
    nan = torch.isnan(scores).gather(-1, order).to(torch.uint8)
    return order.gather(-1, torch.sort(nan, dim=-1, stable=True).indices)


def adakv_counts(scores: torch.Tensor, topk: int, safeguard: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """compress.SelectAdaKV's allocation over one layer's candidate scores [KVH, C] float64 (C > topk): with
    m = floor(topk * safeguard / 100), every KV head keeps its own m best and the other KVH x (topk - m) go to the
    best of the remaining candidates pooled over the heads (score descending, NaN lowest, then lower position, then
    lower head). Returns the counts [KVH] long (summing to KVH x topk) and each head's candidate indices best first
    [KVH, C] (head g keeps the first counts[g])."""
    kvh, c = scores.shape
    m = topk * safeguard // 100
    order = best_first(scores)
    rest = order[:, m:]
    s = scores.gather(1, rest).reshape(-1)
    heads = torch.arange(kvh, device=scores.device)[:, None].expand(-1, c - m).reshape(-1)
    # Least significant key first, each sort stable: (position, head), then score, then NaN last.
    idx = torch.argsort(rest.reshape(-1) * kvh + heads)
    idx = idx[best_first(s[idx])]
    won = heads[idx[:kvh * (topk - m)]]
    return torch.bincount(won, minlength=kvh) + m, order


def flat_layers(t: torch.Tensor, held: int) -> torch.Tensor:
    """t [layers, kv_heads, held, D] (a sequence's own tensor or its pool rows' view) viewed [layers, kv_heads x
    held, D]: per layer the first kv_heads x held slots of the memory the sequence owns, in whatever order the
    pool laid its heads out (every slot of a layer's rows is the sequence's)."""
    layers, kvh, c, d = t.shape
    if c != held or t.stride(3) != 1 or t.stride(2) != d or t.stride(1) < held * d or t.stride(0) < kvh * t.stride(1):
        raise ValueError(f"adakv: cache storage {tuple(t.shape)} strides {t.stride()} is not a layer-contiguous "
                         f"run of {held} slots per head")
    return t.as_strided((layers, kvh * held, d), (t.stride(0), d, 1), t.storage_offset())


class AdaKVCache(SeqCache):
    """adakv (docs/policies.md §21). Per layer, the kv_heads x held slots are one flat run [kv_heads x held, D]
    (fk, fv) in which KV head g has the segment [start_g, start_g + cap_g), cap_g = capacity - topk + K_g, laid out
    [ sinks | ring | top-K: K_g | append (snapkv base) ] (compress.Plan.HeadPlan); owner [layers, kv_heads x held]
    names each slot's head and lvalid masks the filled ones. Decoded tokens go to each head's own append slot
    (snapkv) or ring slot (snapstream) of its segment; decode attends all query heads over the flat layer with the
    mask of their KV head's segment (one product, float32 softmax). The pool row's shared mask is not used."""

    static_ok = False

    def __init__(self, plan: Plan, layers: int, kv_heads: int, head_dim: int, dtype: torch.dtype,
                 device: torch.device, storage: Storage = None) -> None:
        super().__init__(plan, layers, kv_heads, head_dim, dtype, device, storage)
        n = kv_heads * plan.held
        self.kv_heads = kv_heads
        self.lvalid = torch.zeros(layers, n, dtype=torch.bool, device=device)
        self.owner = torch.full((layers, n), -1, dtype=torch.long, device=device)
        # dec_base[l, g] + off(p) is the flat slot of the token at position p in layer l, head g.
        self.dec_base = torch.zeros(layers, kv_heads, dtype=torch.long, device=device)
        self.counts: List[Optional[List[int]]] = [None] * layers
        self.dest = self.dec_base
        pos, slots = plan.fixed_prefill()
        self.fixed_pos = torch.tensor(pos, dtype=torch.long, device=device)
        self.fixed_slots = torch.tensor(slots, dtype=torch.long, device=device)
        self.qhead: Optional[torch.Tensor] = None  # the KV head of each query head (first decode)

    def rebind(self, k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor) -> None:
        """SeqCache.rebind, with the flat views of every layer."""
        super().rebind(k, v, valid)
        self.fk, self.fv = flat_layers(k, self.plan.held), flat_layers(v, self.plan.held)

    def prefill(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """A layer's end of prefill: every head's count and kept candidates, its segment, the writes and masks."""
        plan = self.plan
        kvh, length, d = k.shape
        dev = k.device
        if plan.need_scores:
            w = min(plan.window, length)
            counts_t, order = adakv_counts(candidate_scores(plan, q[:, length - w:], k), plan.topk, plan.safeguard)
            counts = counts_t.tolist()  # the segments' sizes: one host read per layer, at prefill only
        else:
            counts = [plan.topk] * kvh
            order = torch.arange(plan.hi - plan.lo, device=dev)[None, :].expand(kvh, -1)
        self.counts[layer] = counts
        caps = [plan.capacity - plan.topk + n for n in counts]
        starts = [sum(caps[:g]) for g in range(kvh)]
        valid = [min(n, plan.hi - plan.lo) for n in counts]
        widest = max(valid)
        # Head g's kept candidates ascending in the first valid[g] columns (the others pushed past them).
        cols = torch.arange(widest, device=dev)
        nvalid = torch.tensor(valid, dtype=torch.long, device=dev)
        start = torch.tensor(starts, dtype=torch.long, device=dev)
        keep = cols[None, :] < nvalid[:, None]  # [KVH, widest]
        top = torch.sort(order[:, :widest].masked_fill(~keep, plan.hi - plan.lo) + plan.lo, dim=-1).values
        self.topk[layer] = top.masked_fill(~keep, -1)
        heads = torch.arange(kvh, device=dev)
        src = torch.cat([(heads[:, None] * length + self.fixed_pos[None, :]).reshape(-1),
                         (heads[:, None] * length + top)[keep]])
        dst = torch.cat([(start[:, None] + self.fixed_slots[None, :]).reshape(-1),
                         (start[:, None] + plan.topk_base + cols[None, :])[keep]])
        self.fk[layer].index_copy_(0, dst, k.reshape(kvh * length, d)[src].to(self.fk.dtype))
        self.fv[layer].index_copy_(0, dst, v.reshape(kvh * length, d)[src].to(self.fv.dtype))
        self.lvalid[layer, dst] = True
        total = sum(caps)
        self.owner[layer, :total] = torch.repeat_interleave(heads, torch.tensor(caps, dtype=torch.long, device=dev))
        ntop = torch.tensor(counts, dtype=torch.long, device=dev)
        self.dec_base[layer] = start + ((plan.topk_base + ntop) if plan.append_decode else 0)

    def end_prefill(self) -> None:
        """Nothing: each layer's masks were set by its prefill."""

    def begin_decode(self, p: int) -> None:
        """The token's flat slot in every layer and head (dest [layers, kv_heads]), marked valid."""
        plan = self.plan
        if plan.append_decode:
            if not plan.prompt_len <= p < plan.prompt_len + plan.max_new:
                raise ValueError(f"position {p} has no decode slot (prompt {plan.prompt_len}, max new "
                                 f"{plan.max_new})")
            off = p - plan.prompt_len
        else:
            off = plan.decode_slot(p)
        self.dest = self.dec_base + off
        self.lvalid.scatter_(1, self.dest, True)

    def decode(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        """Writes each head's token into its segment, then attention of every query head over its segment."""
        idx = self.dest[layer]
        self.fk[layer].index_copy_(0, idx, k[:, 0].to(self.fk.dtype))
        self.fv[layer].index_copy_(0, idx, v[:, 0].to(self.fv.dtype))
        if self.qhead is None:
            h = q.shape[0]
            self.qhead = torch.arange(h, device=q.device) // (h // self.kv_heads)
        allowed = self.lvalid[layer][None, :] & (self.owner[layer][None, :] == self.qhead[:, None])
        return segment_attention(q, self.fk[layer], self.fv[layer], allowed, scale)

    def kept(self) -> List[List[List[int]]]:
        """[layer][kv head] sorted positions held right after prefill."""
        fixed = self.plan.fixed_prefill()[0]
        out = []
        for t, counts in zip(self.topk, self.counts):
            if t is None or counts is None:
                raise RuntimeError("kept: the prefill has not run")
            out.append([sorted(fixed + row[:min(n, self.plan.hi - self.plan.lo)])
                        for row, n in zip(t.tolist(), counts)])
        return out

    def head_counts(self) -> List[List[int]]:
        """[layer][kv head] the top-K slots each head got (K_g of docs/policies.md §21)."""
        return [list(c) if c is not None else [] for c in self.counts]


def segment_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor,
                      scale: float) -> torch.Tensor:
    """Attention of q [H, 1, D] over one flat layer k, v [S, D] with allowed [H, S]: one product for every query
    head, float32 scores and softmax, one product with the values -> [H, 1, D] in q's dtype."""
    s = _bmm_f32(q.transpose(0, 1), k.t()[None])[0] * scale  # [H, S]
    p = s.masked_fill(~allowed, float("-inf")).softmax(-1)
    return torch.matmul(p.to(v.dtype), v).to(q.dtype)[:, None]


CACHES = {"knorm": KNormCache, "pyramidkv": PyramidKVCache, "adakv": AdaKVCache}
