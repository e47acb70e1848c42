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
