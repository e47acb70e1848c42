"""The worker's transformers glue against the installed transformers, on a tiny random llama (testdata/mini-shape):
the static decode path through transformers' own model classes (eager on a CPU; captured in CUDA graphs on a GPU)
gives the packed per-sequence path's tokens, the MLP chunking changes nothing, and the bench's transformers side
(its forward with sdpa and its generate with a dynamic cache on the same model object) runs. Skipped where
transformers is not installed (the development machines); tools/gpu/bench_session.sh runs it on the GPU machine
before the bench."""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import unittest
from typing import List

import torch

from .harness import Collector, run_staggered
from .support import REPO, load_json
from .test_engine import PROMPT, full_plan, snap_plan
from snapworker.engine import Engine, Request
from snapworker.pool import SlotPool

HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None
SHAPE = os.path.join(REPO, "backends", "torch", "testdata", "mini-shape")
SPEC = os.path.join(REPO, "backends", "torch", "testdata", "bench-spec-mini.json")


def runner(device: str, mlp_chunk: int = 32768):  # type: ignore[no-untyped-def]
    """The mini shape through transformers, float32 (TF32 off), weights drawn wide enough for clear greedy margins."""
    from snapworker.hf import HFRunner

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    r = HFRunner(SHAPE, device, torch.float32, random_weights=True, mlp_chunk=mlp_chunk)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in r.model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return r


def requests() -> List[Request]:
    ps = [snap_plan(len(PROMPT) - i, 10 + 2 * i) for i in range(4)] + [full_plan(len(PROMPT), 9)]
    prompts = [PROMPT[i:] for i in range(4)] + [PROMPT]
    return [Request(id=i, prompt=p, plan=pl, max_new=pl.max_new, want_kept=True) for i, (pl, p) in
            enumerate(zip(ps, prompts))]


@unittest.skipUnless(HAS_TRANSFORMERS, "transformers is not installed here (the GPU machine's session runs this)")
class TransformersTest(unittest.TestCase):
    def test_static_decode_through_transformers(self) -> None:
        for dev in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
            r = runner(dev)
            ref = Collector()
            run_staggered(Engine(r, ref, max_batch=8), requests(), 1)
            pool = SlotPool(r.layers, r.kv_heads, r.head_dim, 8, 256, r.dtype, r.device)
            got = Collector()
            eng = Engine(r, got, max_batch=8, pool=pool)
            run_staggered(eng, requests(), 1)
            self.assertEqual(got.errors, {}, dev)
            for rid in ref.done:
                self.assertEqual(got.tokens.get(rid), ref.tokens.get(rid), f"{dev} request {rid}")
                self.assertEqual(got.done[rid]["kept"], ref.done[rid]["kept"], f"{dev} request {rid}")
            assert eng.static is not None
            d = eng.static.describe()
            if dev == "cuda":
                self.assertEqual(d["graph_error"], "", "the decode step of transformers' model was not captured")
                self.assertGreater(d["replays"], 5)
            else:
                self.assertGreater(d["eager_steps"], 5)

    def test_mlp_chunks_change_nothing(self) -> None:
        a, b = runner("cpu", mlp_chunk=0), runner("cpu", mlp_chunk=7)
        self.assertEqual((a.mlp_ctl["modules"], b.mlp_ctl["modules"]), (2, 2))
        plan = full_plan(len(PROMPT), 1)
        outs = []
        for r in (a, b):
            col = Collector()
            eng = Engine(r, col)
            eng.submit(Request(id=1, prompt=PROMPT, plan=plan, max_new=1, want_logits=True))
            while eng.busy():
                eng.step()
            outs.append(torch.tensor(col.done[1]["logits"]))
        self.assertTrue(torch.allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5))
        self.assertEqual(a.weight_bytes_read, a.weight_bytes)  # tied: the embedding is the head, read every step

    def test_bench_transformers_side(self) -> None:
        from snapworker.bench import Bench, HFSide

        r = runner("cpu")
        spec = load_json(SPEC)
        spec["figures"] = [f for f in spec["figures"] if f["id"] in ("vs_transformers", "prefill_32k")]
        d = tempfile.mkdtemp()
        try:
            res = Bench(r, spec, os.path.join(d, "out.json"), hf=HFSide(r, r.mlp_ctl)).run()
        finally:
            shutil.rmtree(d)
        for fid, f in res["figures"].items():
            self.assertTrue(f["ok"], f"{fid}: {f.get('error')} {f.get('traceback', '')}")
        for c in res["figures"]["vs_transformers"]["configs"]:
            self.assertNotIn("error", c)
            self.assertTrue(all(rd.get("transformers_ms", 0) > 0 for rd in c["rounds"]), c)
        self.assertTrue(all(rd.get("transformers", 0) > 0 for rd in res["figures"]["prefill_32k"]["rounds"]))
        self.assertEqual(r.model.config._attn_implementation, "snapeval")  # switched back
        self.assertEqual(r.mlp_ctl["chunk"], r.mlp_ctl["default"])
        self.assertIn("transformers", res["info"])


if __name__ == "__main__":
    unittest.main()
