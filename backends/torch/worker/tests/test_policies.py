"""Issue #23's policies (rerotate, knorm, kvquant, h2o, tova, pyramidkv, adakv; docs/policies.md §14-§21) through the
engine and the plain-torch model in float32, against backends/cpu/engine/testdata/policies-MODEL.json (written by
tools/policies/reference.py in float64, which the CPU engine reproduces): every case's kept positions per layer and
KV head after prefill, its evictions per decode step (h2o, tova) and its 24 greedy tokens; kvquant's last logits
within 1e-3 relative (the fixture's tolerance, §17). Each case alone without a pool, then all of them with two of
the shared fixtures' policies in flight together over a KV pool (joining the decode batch at different steps, the
static step's sequences beside the packed ones)."""
from __future__ import annotations

import os
import unittest
from typing import Any, Dict, List

from . import minillama
from .harness import Collector, run_all, run_staggered
from .support import MODELS, REPO, load_json, plans, reference
from .test_conformance import requests as shared_requests
from snapworker.engine import Engine, Request
from snapworker.plan import Plan
from snapworker.policies import unsupported
from snapworker.pool import SlotPool

FIXTURES = os.path.join(REPO, "backends", "cpu", "engine", "testdata")


def fixture(model: str) -> Dict[str, Any]:
    """policies-MODEL.json."""
    return load_json(os.path.join(FIXTURES, f"policies-{model}.json"))


def requests(model: str) -> List[Request]:
    """One request per fixture case, with the plan Go computed (testdata/plans.json "policies")."""
    fx = fixture(model)
    out = []
    for i, (case, fp) in enumerate(zip(fx["cases"], plans()["policies"][model])):
        if fp["spec"] != case["spec"]:
            raise AssertionError(f"plans.json policies differ from the fixture: {fp['spec']} / {case['spec']}")
        out.append(Request(id=100 + i, prompt=fx["prompt_ids"], plan=Plan.from_json(fp["plan"]),
                           max_new=len(case["greedy"]), want_kept=True, want_logits=True))
    return out


class PolicyConformanceTest(unittest.TestCase):
    def check(self, model: str, col: Collector) -> None:
        fx = fixture(model)
        for i, case in enumerate(fx["cases"]):
            rid, spec = 100 + i, case["spec"]
            with self.subTest(model=model, spec=spec):
                if "not implemented by this torch worker" in col.errors.get(rid, {}).get("msg", ""):
                    continue  # test_every_method_is_implemented fails for it
                self.assertNotIn(rid, col.errors)
                done = col.done[rid]
                self.assertEqual(done["finish"], "length")
                self.assertEqual(done["kept"], case["kept"], "kept")
                if "evicted" in case:
                    self.assertEqual(done.get("evicted"), case["evicted"], "evicted")
                self.assertEqual(col.tokens[rid], case["greedy"], "greedy")
                if "logits_last" in case:
                    want = case["logits_last"]
                    den = max(abs(x) for x in want)
                    num = max(abs(a - b) for a, b in zip(done["logits_last"], want))
                    self.assertLess(num / den, 1e-3, "logits_last")

    def test_every_method_is_implemented(self) -> None:
        for model in ("llama-gqa", "qwen2-tied"):
            for r in requests(model):
                self.assertEqual(unsupported(r.plan), "", f"{model} {r.plan.method}")

    def test_each_policy_alone(self) -> None:
        for model in ("llama-gqa", "qwen2-tied"):
            runner = minillama.load(os.path.join(MODELS, model))
            col = Collector()
            for r in requests(model):
                eng = Engine(runner, col, max_batch=1)
                eng.submit(r)
                run_all(eng)
            self.check(model, col)

    def test_all_in_flight_over_a_pool(self) -> None:
        for model in ("llama-gqa", "qwen2-tied"):
            runner = minillama.load(os.path.join(MODELS, model))
            ref = reference(model)
            pool = SlotPool(runner.layers, runner.kv_heads, runner.head_dim, 24, 256, runner.dtype, runner.device)
            col = Collector()
            eng = Engine(runner, col, max_batch=24, prefill_tokens=400, pool=pool)
            shared = shared_requests(model, ref)
            run_staggered(eng, requests(model) + [shared[1], shared[3]], every=2)
            self.check(model, col)
            for r in (shared[1], shared[3]):
                case = ref["cases"][r.id - 1]
                self.assertEqual(col.tokens[r.id], case["greedy"], f"{model} shared case {r.id} beside the policies")


if __name__ == "__main__":
    unittest.main()
