"""snapworker.bench on the tests' plain-torch model with the quick spec Go writes for testdata/mini-shape
(backends/torch/testdata/bench-spec-mini.json): what each figure reports, and that a failing, slow or late figure is
reported and the run goes on."""
from __future__ import annotations

import copy
import json
import os
import tempfile
import unittest
from typing import Any, Dict, List

from . import minillama
from .support import REPO, load_json
from snapworker.bench import Bench

SPEC = os.path.join(REPO, "backends", "torch", "testdata", "bench-spec-mini.json")


def spec_with(ids: List[str], **over: Any) -> Dict[str, Any]:
    s = load_json(SPEC)
    s["figures"] = [f for f in s["figures"] if f["id"] in ids]
    s.update(over)
    return s


class BenchTest(unittest.TestCase):
    def setUp(self) -> None:
        self.runner = minillama.random_model()
        self.dir = tempfile.TemporaryDirectory()
        self.out = os.path.join(self.dir.name, "result.json")

    def tearDown(self) -> None:
        self.dir.cleanup()

    def run_spec(self, spec: Dict[str, Any]) -> Dict[str, Any]:
        res = Bench(self.runner, spec, self.out).run()
        with open(self.out) as f:
            self.assertEqual(json.load(f)["figures"].keys(), res["figures"].keys())
        return res

    def test_figures(self) -> None:
        res = self.run_spec(spec_with(["decode", "flat", "table5", "prefill_32k", "vs_transformers"]))
        figs = res["figures"]
        for fid, f in figs.items():
            self.assertTrue(f["ok"], f"{fid}: {f.get('error')} {f.get('traceback', '')}")
        slot = 2 * 2 * 2 * 8 * 4  # K and V, 2 layers, 2 KV heads of 8, float32
        d = figs["decode"]
        self.assertEqual((d["context"], d["capacity"], len(d["step_ms"]), d["slot_bytes"]), (512, 526, 2, slot))
        self.assertEqual(d["static"]["eager_steps"], 2 + 2 * 4)  # warm-up and rounds, each one static step
        self.assertEqual(d["live_slots_mean"], 512 + 2 + 8 / 2)  # the prompt, warm-up, then the rounds' midpoint
        fl = figs["flat"]
        self.assertEqual((fl["contexts"], fl["capacity"], fl["kv_bytes"]), ([512, 2048], [256, 256], [256 * slot] * 2))
        self.assertEqual(sorted(fl["rounds"][0]), ["2048", "512"])
        t5 = figs["table5"]
        self.assertEqual([(s["side"], s["batch"], s["capacity"], s["kv_bytes_seq"]) for s in t5["sides"]],
                         [("full", 2, 2080, 2080 * slot), ("snapstream", 16, 256, 256 * slot)])
        self.assertEqual(t5["storage_bytes"], 2 * 2304 * slot)  # one storage for both sides (rows of 2080 -> 2304)
        pf = figs["prefill_32k"]
        self.assertEqual(pf["kv_bytes"], {"full": 1025 * slot, "snapstream": 256 * slot})
        self.assertEqual(len(pf["rounds"]), 2)
        self.assertEqual(sorted(pf["rounds"][0]), ["full", "snapstream"])
        self.assertIn("not installed", pf["transformers_error"])
        vs = figs["vs_transformers"]["configs"]
        self.assertEqual([(c["batch"], c["context"], len(c["rounds"])) for c in vs], [(1, 512, 2), (4, 512, 2)])
        self.assertEqual(figs["table5"]["spec"]["policy"], "snapstream:budget=256")

    def test_a_failure_is_reported_and_the_run_goes_on(self) -> None:
        s = spec_with(["decode", "flat"])
        bad = copy.deepcopy(s["figures"][0])
        bad["id"], bad["plan"]["capacity"] = "broken", 3
        short = copy.deepcopy(s["figures"][0])
        short["id"], short["steps"] = "short", 50  # more steps than max_new allows
        s["figures"] = [bad, {"id": "odd", "kind": "nope"}, short] + s["figures"]
        figs = self.run_spec(s)["figures"]
        self.assertFalse(figs["broken"]["ok"])
        self.assertIn("plan.capacity", figs["broken"]["error"])
        self.assertIn("unknown figure kind", figs["odd"]["error"])
        self.assertIn("max_new too small", figs["short"]["error"])
        self.assertTrue(figs["decode"]["ok"] and figs["flat"]["ok"])

    def test_time_limit_and_deadline(self) -> None:
        s = spec_with(["bandwidth", "decode"])
        s["figures"][0].update(limit_s=0.2, reps=10**6)
        figs = self.run_spec(s)["figures"]
        self.assertIn("time limit", figs["bandwidth"]["error"])
        self.assertTrue(figs["decode"]["ok"])
        s = spec_with(["decode"], deadline_s=0.001)
        s["figures"][0]["min_s"] = 5
        figs = self.run_spec(s)["figures"]
        self.assertTrue(figs["decode"]["skipped"])
        self.assertIn("deadline", figs["decode"]["error"])


if __name__ == "__main__":
    unittest.main()
