"""h2o and tova (docs/policies.md §18-19): a cache of B slots per layer and KV head that evicts one position per
decode step once it is full, the arithmetic of compress.Evictor and compress.PromptScores in torch.

End of prefill (per layer): every prompt position's score from the prompt's causal attention (float32 logits
q.k * float32(1/sqrt(head_dim)), float64 softmax; h2o: summed over all L query rows in row order, then over the KV
head's query heads in head order; tova: the last row only, summed over the group in head order and divided by its
size); the kept set is every position when the prompt fits, else the ring [hi, L) (h2o's recent window; tova has
none) and the top-K of [lo, hi) (NaN lowest, ties to the lower position), in slots 0, 1, ... by ascending position,
each slot starting from its prompt score.

Decode step writing position p: while a slot is empty p takes the next one; once B are held, per layer and KV head
the candidate (h2o: held position <= p - R; tova: any) of lowest score is evicted (NaN first, ties to the higher
position) and p takes its slot with score 0. Attention over the held slots computes its float32 softmax weights
explicitly; then each slot's score grows by the group's weight sum (h2o, float64, head order) or becomes the group's
mean weight (tova). The slot state (position and score per slot) lives on the device as [layers, kv_heads, B]
tensors; a step's evictions for all layers are chosen in begin_decode with a few tensor operations (a layer's
scores are final once the previous step ran), so decode never synchronises with the host.
"""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch

from .cache import SeqCache, _bmm_f32
from .plan import Plan
from .select import causal_probs, top_positions

# The elements of one block of h2o's prompt rows ([KV heads, group, rows, keys] float64 probabilities): the rows per
# block are chosen so that a block stays below it (at least one row).
BLOCK_ELEMS = 1 << 24
# On a GPU h2o's prompt scores take prompt_scores_fast, in blocks of up to 2^27 float32 elements (512 MiB).
BLOCK_ELEMS_CUDA = 1 << 27


def _logits(q: torch.Tensor, k: torch.Tensor, r0: int, r1: int) -> torch.Tensor:
    """float32 logits of query rows [r0, r1) over keys [0, r1): q [H, L, D], k [KVH, L, D] -> [KVH, G, r1-r0, r1],
    each q.k times float32(1/sqrt(D)) (the scale compress uses for prompt scores, whatever the model's)."""
    h, _, d = q.shape
    kvh = k.shape[0]
    qg = q[:, r0:r1].float().reshape(kvh, h // kvh, r1 - r0, d)
    scale = torch.tensor(1.0 / math.sqrt(d), dtype=torch.float32, device=q.device)
    return torch.matmul(qg, k[:, None, :r1].float().transpose(-1, -2)).mul_(scale)


def prompt_scores(method: str, q: torch.Tensor, k: torch.Tensor, block: int = 0) -> torch.Tensor:
    """compress.PromptScores of one layer: q [H, L, D], k [KVH, L, D] post-RoPE -> [KVH, L] float64.

    h2o: the causal softmax probabilities of every prompt row, summed over the rows in row order (as Go's
    softmaxRows adds them: the running sum continues across blocks of `block` rows, 0: as many as BLOCK_ELEMS
    allows), then over the group's query heads in head order. tova: the last row's probabilities summed over the
    group in head order and divided by the group size. The in-order sums are cumulative sums (sequential on a CPU)."""
    h, length, _ = q.shape
    kvh = k.shape[0]
    if h % kvh or k.shape[1] != length:
        raise ValueError(f"prompt_scores: queries {tuple(q.shape)} do not fit keys {tuple(k.shape)}")
    group = h // kvh
    if method == "tova":
        probs = causal_probs(_logits(q, k, length - 1, length), length - 1)[:, :, 0]  # [KVH, G, L]
        return probs.cumsum(1)[:, -1] / float(group)
    if method != "h2o":
        raise ValueError(f"prompt_scores: method {method!r} is neither h2o nor tova")
    if q.device.type == "cuda":
        return prompt_scores_fast(q, k, block)
    if block <= 0:
        block = max(1, min(length, BLOCK_ELEMS // (h * length)))
    acc = torch.zeros(kvh, group, length, dtype=torch.float64, device=q.device)
    for r0 in range(0, length, block):
        r1 = min(length, r0 + block)
        probs = causal_probs(_logits(q, k, r0, r1), r0)  # [KVH, G, rows, r1]: keys past r1 get nothing
        probs[:, :, 0] += acc[:, :, :r1]
        acc[:, :, :r1] = probs.cumsum(2)[:, :, -1]
    return acc.cumsum(1)[:, -1]


def prompt_scores_fast(q: torch.Tensor, k: torch.Tensor, block: int = 0) -> torch.Tensor:
    """h2o's prompt scores as on a GPU (docs/policies.md §18, "Torch worker"): the same float32 logits, but each
    row's exponentials in float32 (max-subtracted, in place), its normaliser summed in float64, and the column sums
    of the normalised rows as one float32 matrix-vector product per block of rows, added across blocks in float64.
    About a quarter of the exact form's memory traffic (no float64 copy of the L x L probabilities, which made a 32k
    prompt take 76 s on an H100); the scores differ from it by float32 rounding (about 1e-7 relative), below the
    float32 attention weights h2o adds during decode and far below the fixtures' score margins (1e-3)."""
    h, length, _ = q.shape
    kvh = k.shape[0]
    group = h // kvh
    if block <= 0:
        block = max(1, min(length, BLOCK_ELEMS_CUDA // (h * length)))
    acc = torch.zeros(kvh, group, length, dtype=torch.float64, device=q.device)
    for r0 in range(0, length, block):
        r1 = min(length, r0 + block)
        ex = _logits(q, k, r0, r1)  # [KVH, G, rows, r1] float32
        cut = r0 + 1  # keys [cut, r1) are hidden from some rows
        if r1 > cut:
            keys = torch.arange(cut, r1, device=q.device)
            rows = torch.arange(r0, r1, device=q.device)
            ex[..., cut:].masked_fill_(keys[None, :] > rows[:, None], float("-inf"))
        ex.sub_(ex.amax(dim=-1, keepdim=True)).exp_()
        inv = (1.0 / ex.sum(dim=-1, dtype=torch.float64)).float()  # [KVH, G, rows]
        acc[..., :r1] += torch.matmul(inv[..., None, :], ex)[..., 0, :]
    return acc.cumsum(1)[:, -1]


def prefill_keep(plan: Plan, scores: Optional[torch.Tensor], kvh: int, device: torch.device) -> torch.Tensor:
    """compress.Evictor.Prefill's kept positions per KV head, ascending (slot i holds the i-th): LongTensor [KVH, n].
    Every prompt position when the candidates fit the top-K block (hi - lo <= topk); otherwise the top-K of [lo, hi)
    by score (NaN lowest, ties to the lower position) and the ring positions [hi, L). scores [KVH, L] float64 may
    be None only when everything is kept."""
    length = plan.prompt_len
    if plan.hi - plan.lo <= plan.topk:
        return torch.arange(length, device=device)[None, :].expand(kvh, -1).clone()
    if scores is None:
        raise ValueError(f"{plan.method}: the prompt ({length} positions) is cut but the plan needs no scores")
    top = top_positions(scores[:, plan.lo:plan.hi], plan.lo, plan.topk)
    ring = torch.arange(plan.hi, length, device=device)[None, :].expand(kvh, -1)
    return torch.cat([top, ring], dim=1)


def evict_slots(pos: torch.Tensor, score: torch.Tensor, p: int, ring: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """compress.Evictor.Decode's choice on full caches: pos [..., B] int64 held positions, score [..., B] float64.
    Among the candidates (held position <= p - ring; ring 0: every one) the slot that ranks last: a NaN score first,
    else the lowest score; ties to the higher position. Returns (slot, evicted position), both [...] int64. Every row
    must have a candidate (h2o's window is shorter than the budget)."""
    cand = pos <= p - ring
    nan = torch.isnan(score)
    bad = cand & nan
    ok = cand & ~nan
    v = score.masked_fill(~ok, float("inf"))
    low = ok & (v == v.amin(dim=-1, keepdim=True))
    sel = torch.where(bad.any(dim=-1, keepdim=True), bad, low)
    slot = torch.where(sel, pos, torch.full_like(pos, -1)).argmax(dim=-1)
    return slot, pos.gather(-1, slot[..., None])[..., 0]


def observe(score: torch.Tensor, weights: torch.Tensor, tova: bool) -> None:
    """compress.Evictor.Observe on score [KVH, n] float64 (the slots in use) in place, from weights [KVH, G, n]
    (float32 post-softmax): the group's sum in float64 and head order added (h2o) or its mean set (tova)."""
    t = weights.double().cumsum(1)[:, -1]
    if tova:
        score.copy_(t / float(weights.shape[1]))
    else:
        score += t


class EvictCache(SeqCache):
    """The cache of h2o and tova: B = plan.capacity slots per layer and KV head, each head's own positions in them
    (pos, score: [layers, kv_heads, B] device tensors; -1 an empty slot). Slots [0, n) are in use in every layer and
    head alike (n after prefill is min(L, B), then grows by one per step up to B), so the shared valid mask holds.
    It decodes in the packed step through decode (static_ok False: each head writes its own slot)."""

    static_ok = False

    def __init__(self, plan: Plan, layers: int, kv_heads: int, head_dim: int, dtype: torch.dtype,
                 device: torch.device,
                 storage: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None) -> None:
        if plan.method not in ("h2o", "tova") or not plan.evict:
            raise ValueError(f"EvictCache: plan of {plan.method!r} (evict {plan.evict}) is not h2o or tova")
        super().__init__(plan, layers, kv_heads, head_dim, dtype, device, storage=storage)
        b = plan.capacity
        self.pos = torch.full((layers, kv_heads, b), -1, dtype=torch.long, device=device)
        self.score = torch.zeros(layers, kv_heads, b, dtype=torch.float64, device=device)
        self.heads = torch.arange(kv_heads, device=device)
        self.n = 0  # slots in use
        self.prefilled: List[Optional[torch.Tensor]] = [None] * layers  # [KVH, n] kept positions per layer
        self.steps: List[Optional[torch.Tensor]] = []  # per decode step: [layers, KVH] evicted positions, None: none
        self.slots: Optional[torch.Tensor] = None  # this step's slot per layer and KV head when it evicts

    def prefill(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        """Scores the prompt (when the plan needs scores), keeps min(L, B) positions per KV head and copies their K
        and V into slots 0, 1, ... with their scores."""
        plan = self.plan
        if k.shape[1] != plan.prompt_len:
            raise ValueError(f"{plan.method} prefill: {k.shape[1]} keys for a {plan.prompt_len}-token prompt")
        kvh = k.shape[0]
        scores = prompt_scores(plan.method, q, k) if plan.need_scores else None
        keep = prefill_keep(plan, scores, kvh, k.device)
        n = keep.shape[1]
        if n > plan.capacity:
            raise ValueError(f"{plan.method} prefill: {n} kept positions exceed the capacity {plan.capacity}")
        idx = keep[:, :, None].expand(-1, -1, k.shape[2])
        self.k[layer][:, :n] = torch.gather(k, 1, idx)
        self.v[layer][:, :n] = torch.gather(v, 1, idx)
        self.pos[layer, :, :n] = keep
        if scores is not None:
            self.score[layer, :, :n] = torch.gather(scores, 1, keep)
        self.prefilled[layer] = keep
        self.n = n

    def end_prefill(self) -> None:
        """Marks slots [0, n) valid."""
        self.valid[:self.n] = True

    def begin_decode(self, p: int) -> None:
        """Gives position p a slot in every layer and KV head: the next empty one (the same everywhere), or the slot
        evict_slots chooses per layer and head once the cache is full (recorded for evicted)."""
        if self.n < self.plan.capacity:
            self.slot = self.n
            self.slots = None
            self.n += 1
            self.valid[self.slot] = True
            self.pos[:, :, self.slot] = p
            self.score[:, :, self.slot] = 0.0
            if self.record_evictions:
                self.steps.append(None)
            return
        slot, out = evict_slots(self.pos, self.score, p, self.plan.ring)
        self.pos.scatter_(-1, slot[..., None], p)
        self.score.scatter_(-1, slot[..., None], 0.0)
        self.slot = -1
        self.slots = slot
        if self.record_evictions:
            self.steps.append(out)

    def decode(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        """Writes the token at each KV head's slot, attends over slots [0, n) with explicit float32 softmax weights
        and updates the slots' scores from them (observe)."""
        if self.slots is None:
            self.k[layer][:, self.slot] = k[:, 0]
            self.v[layer][:, self.slot] = v[:, 0]
        else:
            sl = self.slots[layer]
            self.k[layer][self.heads, sl] = k[:, 0]
            self.v[layer][self.heads, sl] = v[:, 0]
        h, _, d = q.shape
        kvh, n = k.shape[0], self.n
        kk, vv = self.k[layer][:, :n], self.v[layer][:, :n]
        qg = q.reshape(kvh, h // kvh, d)
        w = torch.softmax(_bmm_f32(qg, kk.transpose(1, 2)) * scale, dim=-1)  # [KVH, G, n] float32
        out = _bmm_f32(w.to(vv.dtype), vv)
        observe(self.score[layer, :, :n], w, self.plan.method == "tova")
        return out.reshape(h, 1, d).to(q.dtype)

    def kept(self) -> List[List[List[int]]]:
        """[layer][kv head] the positions held right after prefill, ascending."""
        if any(t is None for t in self.prefilled):
            raise RuntimeError("kept: the prefill has not run")
        return torch.stack([t for t in self.prefilled if t is not None]).tolist()

    def evicted(self) -> Optional[List[List[List[int]]]]:
        """[step][layer][kv head] the position evicted at each decode step, -1 where the step took an empty slot
        (None unless record_evictions was set before decoding)."""
        if not self.record_evictions:
            return None
        layers, kvh = self.pos.shape[:2]
        none = torch.full((layers, kvh), -1, dtype=torch.long, device=self.pos.device)
        if not self.steps:
            return []
        return torch.stack([none if t is None else t for t in self.steps]).tolist()
