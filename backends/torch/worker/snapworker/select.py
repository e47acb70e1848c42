"""SnapKV top-K selection at the end of a sequence's prefill, the arithmetic of compress.SelectTopK in torch.

Per query head: float32 logits q.k * float32(1/sqrt(head_dim)) of the last W' = min(W, L) prompt queries over every
key of its causal row; float64 max-subtracted exponentials, normalised per row (full-row softmax) and summed over the
W' rows in row order; average pooling with kernel k over the whole length-L vector (zero padding, always divided by
k, summed left to right); the pooled vectors of a KV head's query heads summed in head order and divided by the group
size; the K highest candidates of [lo, hi) kept, NaN lowest, ties to the lower position. Given the same float32
logits, every float64 step adds in the order compress does; only exp may differ in the last bit.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .plan import Plan


def causal_probs(logits: torch.Tensor, first: int) -> torch.Tensor:
    """logits [..., w, L] float32 for queries at positions first..first+w-1; returns [..., w, L] float64, each
    row's causal softmax (keys after the row's position get 0), the probabilities head_scores sums. Leading
    dimensions are independent: each element is computed as for one head alone.

    Only the last w-1 keys are masked for some rows (keys up to `first` are visible to all), so the masking touches
    only that tail; the exponentials are computed in place in one float64 buffer. Every element gets the value of
    the plain form: max over the visible keys, exp(x - max) in float64, 0 for masked keys, the same row sums."""
    w, length = logits.shape[-2:]
    cut = first + 1  # keys [cut, L) are visible to some rows only
    keys = torch.arange(cut, length, device=logits.device)
    rows = torch.arange(first, first + w, device=logits.device)
    hidden = keys[None, :] > rows[:, None]  # [w, L - cut]: the masked part of the tail
    m = logits[..., :cut].amax(dim=-1)  # [..., w] float32
    if length > cut:
        m = torch.maximum(m, logits[..., cut:].masked_fill(hidden, float("-inf")).amax(dim=-1))
    ex = logits.to(torch.float64, copy=True)  # never the caller's tensor, whatever its dtype
    ex.sub_(m.double()[..., None]).exp_()
    if length > cut:
        ex[..., cut:].masked_fill_(hidden, 0.0)
    inv = 1.0 / ex.sum(dim=-1)  # [..., w]
    return ex.mul_(inv[..., None])


def head_scores(logits: torch.Tensor, first: int) -> torch.Tensor:
    """logits [..., w, L] float32 for observation queries at positions first..first+w-1; returns [..., L] float64,
    the sum over the w rows (in row order) of each row's causal softmax (causal_probs)."""
    w, length = logits.shape[-2:]
    probs = causal_probs(logits, first)
    score = torch.zeros(logits.shape[:-2] + (length,), dtype=torch.float64, device=logits.device)
    for i in range(w):
        score += probs[..., i, :]
    return score


def pool_candidates(score: torch.Tensor, lo: int, hi: int, kernel: int) -> torch.Tensor:
    """score [..., L] float64 -> [..., hi-lo]: the average pool with kernel k centred on each candidate, zero
    padding k//2 on both sides, divided by k (avg_pool1d with count_include_pad), summed left to right."""
    padded = F.pad(score, (kernel // 2, kernel // 2))  # padded[j + d] is score[j - k//2 + d]
    acc = padded[..., lo:hi].clone()
    for d in range(1, kernel):
        acc += padded[..., lo + d:hi + d]
    return acc / float(kernel)


def top_positions(group: torch.Tensor, lo: int, n: int) -> torch.Tensor:
    """group [..., C] float64 scores of candidates lo..lo+C-1 -> the n best of each row as ascending positions
    (NaN lowest, ties to the lower position)."""
    v = torch.nan_to_num(group, nan=float("-inf"), posinf=float("inf"), neginf=float("-inf"))
    order = torch.sort(v, descending=True, stable=True).indices[..., :n]
    return torch.sort(order + lo, dim=-1).values


def select_topk(plan: Plan, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """The kept top-K positions of one layer per KV head: LongTensor [KVH, valid_topk], ascending rows.

    queries [H, w, D]: the post-RoPE queries of the last w = min(window, L) prompt positions; keys [KVH, L, D]: the
    post-RoPE keys of the whole prompt. Query head h belongs to KV head h // (H // KVH). Without need_scores every
    candidate is kept and the inputs are not read."""
    if not plan.need_scores:
        row = torch.arange(plan.lo, plan.lo + plan.valid_topk, device=keys.device)
        return row[None, :].expand(keys.shape[0], -1).clone()
    return top_positions(candidate_scores(plan, queries, keys), plan.lo, plan.valid_topk)


def candidate_scores(plan: Plan, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """G of docs/policies.md §8 for the candidates [lo, hi) of every KV head: float64 [KVH, hi-lo] (select_topk's
    inputs). The logits are one product per KV head (as compress computes them); every later step runs on all KV
    heads at once, element by element in the order of one head alone."""
    kvh = keys.shape[0]
    device = keys.device
    h, w, d = queries.shape
    length = keys.shape[1]
    if length != plan.prompt_len or w != min(plan.window, length) or h % kvh:
        raise ValueError(f"candidate_scores: queries {tuple(queries.shape)} / keys {tuple(keys.shape)} do not fit the "
                         f"plan (prompt {plan.prompt_len}, window {plan.window})")
    group = h // kvh
    scale = torch.tensor(1.0 / math.sqrt(d), dtype=torch.float32, device=device)
    first = length - w
    logits = torch.empty(kvh, group, w, length, dtype=torch.float32, device=device)  # [KVH, G, w, L]
    for g in range(kvh):
        torch.matmul(queries[g * group:(g + 1) * group].float(), keys[g].float().t(), out=logits[g])
        logits[g].mul_(scale)
    pooled = pool_candidates(head_scores(logits, first), plan.lo, plan.hi, plan.kernel)  # [KVH, G, C]
    acc = torch.zeros(kvh, plan.hi - plan.lo, dtype=torch.float64, device=device)
    for j in range(group):
        acc += pooled[:, j]
    acc /= float(group)
    return acc
