"""SnapKV selection against the conformance fixture selection.json (plans from compress via plans.json)."""
from __future__ import annotations

import unittest

import torch

from .support import SELECTION, load_json, plans
from snapworker.plan import Plan
from snapworker.select import head_scores, pool_candidates, select_topk, top_positions


def plain_head_scores(logits: torch.Tensor, first: int) -> torch.Tensor:
    """head_scores in its plain form (the whole [w, L] mask, out-of-place float64 steps): the reference."""
    w, length = logits.shape[-2:]
    allowed = torch.arange(length)[None, :] <= torch.arange(first, first + w)[:, None]
    m = logits.masked_fill(~allowed, float("-inf")).amax(dim=-1)
    ex = torch.exp(logits.double() - m.double()[..., None]).masked_fill(~allowed, 0.0)
    probs = ex * (1.0 / ex.sum(dim=-1))[..., None]
    score = torch.zeros(logits.shape[:-2] + (length,), dtype=torch.float64)
    for i in range(w):
        score += probs[..., i, :]
    return score


def per_head_topk(plan: Plan, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """The selection one KV head and one query head at a time, plain forms throughout: the reference."""
    kvh, length, d = keys.shape
    h, w, _ = queries.shape
    group = h // kvh
    scale = torch.tensor(1.0 / d ** 0.5, dtype=torch.float32)
    out = []
    for g in range(kvh):
        acc = torch.zeros(plan.hi - plan.lo, dtype=torch.float64)
        for j in range(group):
            lg = torch.matmul(queries[g * group + j].float(), keys[g].float().t()) * scale
            acc += pool_candidates(plain_head_scores(lg, length - w), plan.lo, plan.hi, plan.kernel)
        out.append(top_positions(acc / float(group), plan.lo, plan.valid_topk))
    return torch.stack(out)


class SelectTest(unittest.TestCase):
    def test_selection_fixture(self) -> None:
        cases = load_json(SELECTION)
        wire = plans()["selection"]
        self.assertEqual(len(cases), len(wire))
        for n, (c, w) in enumerate(zip(cases, wire)):
            plan = Plan.from_json(w)
            q = torch.tensor(c["queries"], dtype=torch.float32).transpose(0, 1)  # [H, w, D]
            k = torch.tensor(c["keys"], dtype=torch.float32).transpose(0, 1)  # [KVH, L, D]
            top = select_topk(plan, q, k)
            pos, _ = plan.fixed_prefill()
            for g in range(c["kv_heads"]):
                kept = sorted(pos + top[g].tolist())
                self.assertEqual(kept, c["kept"][g], f"case {n} kv head {g}")

    def test_head_scores_equal_the_plain_form(self) -> None:
        gen = torch.Generator().manual_seed(3)
        for lead, w, length in [((2, 3), 4, 50), ((1,), 1, 9), ((2,), 7, 7), ((3, 2), 32, 300)]:
            logits = torch.randn(lead + (w, length), generator=gen) * 4
            logits[..., 5] = logits[..., 4]  # ties
            got = head_scores(logits, length - w)
            self.assertTrue(torch.equal(got, plain_head_scores(logits, length - w)), (lead, w, length))

    def test_select_equals_per_head_selection(self) -> None:
        gen = torch.Generator().manual_seed(5)
        for kvh, group, length, window, ties in [(2, 2, 64, 8, False), (4, 1, 200, 16, True), (1, 4, 33, 33, False),
                                                 (8, 4, 1024, 32, True)]:
            plan = Plan(prompt_len=length, max_new=4, capacity=4 + 8 + 16, sinks=4, ring=8, topk=16, lo=4,
                        hi=length - 8, valid_topk=16, need_scores=True, window=window, kernel=5,
                        append_decode=False)
            d = 16
            q = torch.randn(kvh * group, min(window, length), d, generator=gen)
            k = torch.randn(kvh, length, d, generator=gen)
            if ties:
                k[:, 1::2] = k[:, 0:-1:2]  # equal keys: equal scores, kept by position
                q[:] = q[:1]
            self.assertEqual(select_topk(plan, q, k).tolist(), per_head_topk(plan, q, k).tolist(),
                             (kvh, group, length))

    def test_pool_is_avg_pool_with_zero_padding(self) -> None:
        score = torch.rand(3, 40, dtype=torch.float64)
        want = torch.nn.functional.avg_pool1d(score[:, None], 5, stride=1, padding=2, count_include_pad=True)[:, 0]
        got = pool_candidates(score, 4, 33, 5)
        self.assertTrue(torch.allclose(got, want[:, 4:33], rtol=0, atol=1e-15))

    def test_ties_go_to_the_lower_position_and_nan_is_lowest(self) -> None:
        v = torch.tensor([1.0, 3.0, float("nan"), 3.0, 2.0, 3.0], dtype=torch.float64)
        self.assertEqual(top_positions(v, 10, 3).tolist(), [11, 13, 15])
        self.assertEqual(top_positions(v, 10, 5).tolist(), [10, 11, 13, 14, 15])
        self.assertEqual(top_positions(v, 10, 6).tolist(), [10, 11, 12, 13, 14, 15])

    def test_no_scores_keeps_the_first_candidates(self) -> None:
        plan = Plan.from_json(plans()["slots"][9]["plan"])  # snapstream budget 32, prompt 20: every candidate kept
        self.assertFalse(plan.need_scores)
        top = select_topk(plan, torch.empty(0), torch.empty(2, 20, 4))
        self.assertEqual(top.tolist(), [list(range(plan.lo, plan.lo + plan.valid_topk))] * 2)


if __name__ == "__main__":
    unittest.main()
