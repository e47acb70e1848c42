"""SnapKV selection against the conformance fixture selection.json (plans from compress via plans.json)."""
from __future__ import annotations

import unittest

import torch

from .support import SELECTION, load_json, plans
from snapworker.plan import Plan
from snapworker.select import pool_candidates, select_topk, top_positions


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
