"""slot_of and the prefill placement against compress (testdata/plans.json), and plan validation."""
from __future__ import annotations

import copy
import unittest

from .support import plans
from snapworker.plan import Plan


class PlanTest(unittest.TestCase):
    def test_slot_of_matches_compress(self) -> None:
        for case in plans()["slots"]:
            p = Plan.from_json(case["plan"])
            got = [p.slot_of(i) for i in range(len(case["slot_of"]))]
            self.assertEqual(got, case["slot_of"], case["spec"])

    def test_prefill_placement_matches_compress(self) -> None:
        for case in plans()["slots"]:
            p = Plan.from_json(case["plan"])
            pos, slots = p.fixed_prefill()
            placed = dict(zip(pos, slots))
            for i in range(p.valid_topk):  # the Go side kept the first valid_topk candidates
                placed[p.lo + i] = p.topk_base + i
            self.assertEqual(sorted(placed.items()), [tuple(x) for x in case["prefill"]], case["spec"])

    def test_fixed_runs_are_the_positions_one_by_one(self) -> None:
        # The runs against slot_of position by position: every golden plan, and rings that wrap once.
        ps = [Plan.from_json(c["plan"]) for c in plans()["slots"]]
        ps.append(Plan(prompt_len=30, max_new=4, capacity=15, sinks=2, ring=8, topk=5, lo=2, hi=22, valid_topk=5,
                       need_scores=True, window=4, kernel=3, append_decode=False))
        ps.append(Plan(prompt_len=31, max_new=4, capacity=19, sinks=3, ring=8, topk=4, lo=1, hi=24, valid_topk=4,
                       need_scores=True, window=4, kernel=3, append_decode=True))
        for p in ps:
            want = list(range(p.lo)) + list(range(p.hi, p.prompt_len))
            pairs = [(q, p.slot_of(q)) for q in want]
            runs = p.fixed_runs()
            got = [(p0 + i, s0 + i) for p0, s0, n in runs for i in range(n)]
            self.assertEqual(got, pairs, p)
            self.assertLessEqual(len(runs), 4, p)
            for (p0, s0, n), (p1, s1, _) in zip(runs, runs[1:]):  # maximal: neighbours do not continue each other
                self.assertFalse(p0 + n == p1 and s0 + n == s1, p)
        self.assertEqual(len(ps[-2].fixed_runs()), 3)  # sinks, then the ring before and after it wraps

    def test_decode_slot_refuses_positions_without_slot(self) -> None:
        full = Plan.from_json(plans()["slots"][0]["plan"])  # full, prompt 7, max new 5
        self.assertEqual(full.decode_slot(11), 11)
        for bad in (6, 12):
            with self.assertRaises(ValueError):
                full.decode_slot(bad)

    def test_from_json_names_the_bad_field(self) -> None:
        good = plans()["slots"][8]["plan"]
        for field, value in [("capacity", 7), ("ring", -1), ("need_scores", 1), ("lo", "x"), ("hi", 1000)]:
            d = copy.deepcopy(good)
            d[field] = value
            with self.assertRaises(ValueError) as cm:
                Plan.from_json(d)
            self.assertIn("plan.", str(cm.exception))
        d = copy.deepcopy(good)
        del d["kernel"]
        with self.assertRaisesRegex(ValueError, "plan.kernel"):
            Plan.from_json(d)
        with self.assertRaises(ValueError):
            Plan.from_json([1, 2])


if __name__ == "__main__":
    unittest.main()
