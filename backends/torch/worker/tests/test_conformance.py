"""The conformance fixtures through the engine and a plain-torch model in float32: every policy's kept positions
per layer and KV head and its 24 greedy tokens equal reference.json, the last prompt logits within 1e-4 relative;
alone, and with all policies in flight together (joining the decode batch at different steps)."""
from __future__ import annotations

import os
import unittest
from typing import Any, Dict, List

from . import minillama
from .harness import Collector, run_all, run_staggered
from .support import MODELS, plans, reference
from snapworker.engine import Engine, Request
from snapworker.plan import Plan


def requests(model: str, ref: Dict[str, Any]) -> List[Request]:
    out = []
    for i, (case, fp) in enumerate(zip(ref["cases"], plans()["fixtures"][model])):
        plan = Plan.from_json(fp["plan"])
        out.append(Request(id=i + 1, prompt=ref["prompt_ids"], plan=plan, max_new=len(case["greedy"]),
                           want_kept=True, want_logits=True))
    return out


class ConformanceTest(unittest.TestCase):
    def check(self, model: str, ref: Dict[str, Any], col: Collector) -> None:
        want = ref["logits_last"]
        den = max(abs(x) for x in want)
        for i, case in enumerate(ref["cases"]):
            rid = i + 1
            done = col.done[rid]
            spec = plans()["fixtures"][model][i]["spec"]
            self.assertEqual(done["finish"], "length", spec)
            self.assertEqual(done["kept"], case["kept"], f"{model} {spec}: kept")
            self.assertEqual(col.tokens[rid], case["greedy"], f"{model} {spec}: greedy")
            num = max(abs(a - b) for a, b in zip(done["logits"], want))
            self.assertLess(num / den, 1e-4, f"{model} {spec}: logits_last")

    def test_each_policy_alone(self) -> None:
        for model in ("llama-gqa", "qwen2-tied"):
            ref = reference(model)
            runner = minillama.load(os.path.join(MODELS, model))
            col = Collector()
            for r in requests(model, ref):
                eng = Engine(runner, col, max_batch=1)
                eng.submit(r)
                run_all(eng)
            self.check(model, ref, col)

    def test_all_policies_in_flight_together(self) -> None:
        for model in ("llama-gqa", "qwen2-tied"):
            ref = reference(model)
            runner = minillama.load(os.path.join(MODELS, model))
            col = Collector()
            eng = Engine(runner, col, max_batch=4, prefill_tokens=200)
            run_staggered(eng, requests(model, ref), every=3)
            self.check(model, ref, col)
            self.assertEqual(col.errors, {})


if __name__ == "__main__":
    unittest.main()
