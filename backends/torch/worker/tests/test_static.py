"""The static decode path (sequences in SlotPool rows, one batched forward per step, CUDA graphs on a GPU) against
the packed per-sequence path (every sequence its own cache): same tokens, same kept positions, same prefill logits
and the same top-1/top-2 logit gap at every decoded token. On this CPU the static step runs eagerly, and where every
sequence has the row's capacity the two paths give the same bits."""
from __future__ import annotations

import os
import unittest
from typing import List

import torch

from . import minillama
from .harness import Collector, run_all, run_staggered
from .support import MODELS, plans, reference
from .test_conformance import requests as fixture_requests
from .test_engine import PROMPT, full_plan, snap_plan
from snapworker.engine import Engine, Request
from snapworker.plan import Plan
from snapworker.pool import SlotPool, pool_geometry
from snapworker.static import TRITON_TOL, buckets


def pool_for(runner: minillama.MiniRunner, rows: int, capacity: int) -> SlotPool:
    return SlotPool(runner.layers, runner.kv_heads, runner.head_dim, rows, capacity, runner.dtype, runner.device)


def reqs(plans_: List[Plan], prompts: List[List[int]]) -> List[Request]:
    return [Request(id=i, prompt=p, plan=pl, max_new=pl.max_new, want_kept=True, want_logits=True,
                    want_margins=True) for i, (pl, p) in enumerate(zip(plans_, prompts))]


class PoolTest(unittest.TestCase):
    def test_geometry(self) -> None:
        self.assertEqual(pool_geometry(32 * 1024 * 1000, 1000, 32, 0), (32, 1024))
        self.assertEqual(pool_geometry(32 * 1024 * 1000, 1000, 32, 600), (32, 768))  # max positions rounded up
        self.assertEqual(pool_geometry(4 * 256 * 1000, 1000, 32, 0), (4, 256))  # fewer rows, 256 slots each
        with self.assertRaises(ValueError):
            pool_geometry(255 * 1000, 1000, 32, 0)

    def test_rows_views_and_moves(self) -> None:
        p = SlotPool(2, 2, 4, 6, 8, torch.float32, torch.device("cpu"))
        self.assertEqual(p.nbytes, 2 * 2 * 2 * 4 * 4 * 6 * 8)
        self.assertEqual(p.alloc("a", 8), 0)  # single rows from the bottom
        self.assertEqual(p.alloc("b", 20), 3)  # three rows from the top
        self.assertEqual(p.alloc("c", 5), 1)
        self.assertIsNone(p.alloc("d", 17))  # three consecutive rows are not free
        self.assertIsNone(p.alloc("e", 49))  # more than the pool
        k, v, valid = p.views(3, 3, 20)
        self.assertEqual(tuple(k.shape), (2, 2, 20, 4))
        k[1, 1, 17] = 7.0  # slot 17 of the 3-row block is slot 1 of row 5
        valid[9] = True
        self.assertEqual(float(p.k[1, 5, 1, 1, 0]), 7.0)
        self.assertTrue(bool(p.valid[4, 1]))
        k1, _, valid1 = p.views(1, 1, 5)
        k1[0, 0, 4] = 3.0
        valid1[4] = True
        p.release(0, 1)
        p.move(1, 0)
        self.assertEqual(float(p.k[0, 0, 0, 4, 0]), 3.0)
        self.assertTrue(bool(p.valid[0, 4]))
        self.assertEqual(p.owner[:3], ["c", None, None])
        self.assertFalse(bool(p.valid[1].any()))  # the row moved from is cleared
        p.release(3, 3)
        self.assertFalse(bool(p.valid[3:].any()))  # released rows are cleared
        self.assertEqual(p.alloc("f", 3), 1)
        self.assertFalse(bool(p.valid[1].any()))  # a row is cleared when it is taken
        with self.assertRaises(RuntimeError):
            p.move(1, 0)

    def test_worker_pool_geometry(self) -> None:
        from snapworker.server import make_pool
        p = make_pool(minillama.random_model(), 4, 1 << 20)  # 256-byte slots (2 layers, 2 KV heads of 8, float32)
        self.assertEqual((p.rows, p.capacity, p.slot_bytes, p.nbytes), (4, 1024, 256, 1 << 20))

    def test_buckets(self) -> None:
        self.assertEqual(buckets(1), [1])
        self.assertEqual(buckets(8), [1, 2, 4, 8])
        self.assertEqual(buckets(12), [1, 2, 4, 8, 12])


class StaticTest(unittest.TestCase):
    def setUp(self) -> None:
        self.runner = minillama.random_model()

    def run_both(self, rs: List[Request], rows: int, capacity: int, every: int = 2) -> "tuple[Collector, Collector, Engine]":
        ref = Collector()
        run_staggered(Engine(self.runner, ref, max_batch=rows), rs, every)
        got = Collector()
        eng = Engine(self.runner, got, max_batch=rows, pool=pool_for(self.runner, rows, capacity))
        run_staggered(eng, rs, every)
        self.assertEqual(got.errors, {})
        self.assertEqual(set(got.done), set(ref.done))
        for rid, d in ref.done.items():
            g = got.done[rid]
            self.assertEqual(col_tokens(got, rid), col_tokens(ref, rid), f"request {rid}: tokens")
            for key in ("finish", "kept", "kv_bytes"):
                self.assertEqual(g[key], d[key], f"request {rid}: {key}")
            self.assertSameOrClose(g["logits"], d["logits"], f"request {rid}: logits")
        assert eng.pool is not None
        self.assertEqual(eng.pool.free_rows(), eng.pool.rows)  # every row came back
        return ref, got, eng

    def assertSameOrClose(self, got: List[float], want: List[float], msg: str) -> None:
        """Within 1e-5 relative: the two paths pack different rows into one forward, and BLAS libraries pick their
        kernel (and summation order) by shape. Debian's torch 1.13 on the development machines gives equal bits;
        torch 2.11 on the H100 machine's host CPU and on the GPU differed in the last bits (2026-12-07)."""
        self.assertEqual(len(got), len(want), msg)
        scale = max(1.0, max((abs(x) for x in want), default=0.0))
        worst = max((abs(a - b) for a, b in zip(got, want)), default=0.0)
        self.assertLessEqual(worst, 1e-5 * scale, msg)

    def test_same_capacity_gives_the_same_bits(self) -> None:
        rs = reqs([snap_plan(len(PROMPT) - i, 9 + i) for i in range(4)], [PROMPT[i:] for i in range(4)])
        ref, got, eng = self.run_both(rs, rows=4, capacity=13)
        for rid in ref.done:
            self.assertSameOrClose(got.done[rid]["margins"], ref.done[rid]["margins"], f"request {rid}: margins")
        assert eng.static is not None
        self.assertGreater(eng.static.eager_steps, 10)

    def test_mixed_policies_and_capacities_decode_together(self) -> None:
        ps = [full_plan(len(PROMPT), 12), snap_plan(len(PROMPT), 12), full_plan(11, 7), snap_plan(9, 10),
              full_plan(len(PROMPT) - 2, 5)]
        prompts = [PROMPT, PROMPT, PROMPT[:11], PROMPT[5:14], PROMPT[2:]]
        ref, got, _ = self.run_both(reqs(ps, prompts), rows=5, capacity=32, every=1)
        for rid in ref.done:
            for a, b in zip(got.done[rid]["margins"], ref.done[rid]["margins"]):
                self.assertAlmostEqual(a, b, delta=1e-5 * max(1.0, abs(b)))

    def test_a_sequence_longer_than_a_row_takes_several(self) -> None:
        # full: 30 slots, rows 3-4; three single-row sequences in rows 0-2 decode unpadded (row 3 is not free).
        ps = [full_plan(len(PROMPT), 12), snap_plan(len(PROMPT), 12), snap_plan(10, 8), snap_plan(len(PROMPT) - 1, 8)]
        prompts = [PROMPT, PROMPT, PROMPT[:10], PROMPT[1:]]
        _, got, eng = self.run_both(reqs(ps, prompts), rows=5, capacity=16, every=1)
        assert eng.static is not None
        self.assertGreater(eng.static.eager_steps, 0)

    def test_rows_are_compacted_when_sequences_leave(self) -> None:
        # Different max_new: sequences leave while others decode, so rows above the survivors are moved down and
        # batches of 3 run padded to 4.
        ps = [snap_plan(len(PROMPT), n) for n in (3, 14, 6, 20, 9)]
        rs = reqs(ps, [PROMPT] * 5)
        rs[2] = Request(id=2, prompt=PROMPT[:12], plan=snap_plan(12, 6), max_new=6, want_kept=True, want_logits=True,
                        want_margins=True)
        self.run_both(rs, rows=5, capacity=13, every=1)
        # Step by step: after every step each sequence's cache views are its own row of the pool.
        col = Collector()
        pool = pool_for(self.runner, 5, 13)
        eng = Engine(self.runner, col, max_batch=5, pool=pool)
        for r in rs:
            eng.submit(r)
        moved = 0
        while eng.busy():
            rows = {s.req.id: s.row for s in eng.running.values()}
            eng.step()
            for s in eng.running.values():
                moved += rows.get(s.req.id, s.row) != s.row
                self.assertEqual(s.cache.valid.data_ptr(), pool.valid[s.row].data_ptr())
                self.assertEqual(s.cache.k.data_ptr(), pool.k[0, s.row].data_ptr())
        self.assertGreater(moved, 0)

    def test_waits_for_free_rows(self) -> None:
        rs = reqs([snap_plan(len(PROMPT), 4)] * 3, [PROMPT] * 3)
        col = Collector()
        eng = Engine(self.runner, col, max_batch=8, pool=pool_for(self.runner, 2, 13))
        for r in rs:
            eng.submit(r)
        eng.step()
        self.assertEqual(len(eng.running), 2)
        self.assertEqual(len(eng.waiting), 1)
        run_all(eng)
        self.assertEqual(sorted(col.done), [0, 1, 2])
        eng.submit(Request(id=9, prompt=PROMPT, plan=full_plan(len(PROMPT), 20), max_new=20))
        self.assertIn("rows of the KV pool", col.errors[9]["msg"])  # 38 slots: more than 2 rows of 13

    def test_admit_prefilled(self) -> None:
        col = Collector()
        pool = pool_for(self.runner, 2, 16)
        eng = Engine(self.runner, col, pool=pool)
        plan = snap_plan(40, 5)
        self.assertTrue(eng.admit_prefilled(Request(id=1, prompt=[1] * 40, plan=plan, max_new=5), 7))
        valid = pool.valid[0, :plan.capacity].tolist()
        self.assertEqual(valid, [True] * 13)  # sinks, full ring, full top-K
        self.assertEqual(eng.running[1].cache.kept()[0][0], [0, 1, 2, 3, 4, 5, 6, 34, 35, 36, 37, 38, 39])
        run_all(eng)
        self.assertEqual(len(col.tokens[1]), 4)  # the first token stands for the prefill's and is not emitted
        self.assertEqual(col.done[1]["kv_bytes"], 2 * 2 * 2 * 8 * 13 * 4)

    def test_conformance_fixtures_all_in_the_pool(self) -> None:
        for model in ("llama-gqa", "qwen2-tied"):
            ref = reference(model)
            runner = minillama.load(os.path.join(MODELS, model))
            rs = fixture_requests(model, ref)
            cap = max(r.plan.capacity for r in rs)
            col = Collector()
            eng = Engine(runner, col, max_batch=len(rs), prefill_tokens=200,
                         pool=pool_for(runner, len(rs), cap))
            run_staggered(eng, rs, every=3)
            self.assertEqual(col.errors, {})
            for i, case in enumerate(ref["cases"]):
                spec = plans()["fixtures"][model][i]["spec"]
                self.assertEqual(col.done[i + 1]["kept"], case["kept"], f"{model} {spec}: kept")
                self.assertEqual(col.tokens[i + 1], case["greedy"], f"{model} {spec}: greedy")


def col_tokens(c: Collector, rid: int) -> List[int]:
    return c.tokens.get(rid, [])


@unittest.skipUnless(torch.cuda.is_available(), "no CUDA device here: the CUDA graph path runs on the GPU machine")
class GraphTest(unittest.TestCase):
    def test_graphs_replay_the_eager_tokens(self) -> None:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        runner = minillama.random_model().to("cuda")
        ps = [snap_plan(len(PROMPT) - i, 12 + 2 * i) for i in range(5)] + [full_plan(len(PROMPT), 10)]
        rs = reqs(ps, [PROMPT[i:] for i in range(5)] + [PROMPT])
        ref = Collector()
        run_staggered(Engine(runner, ref, max_batch=8), rs, 1)
        for impl in ("sdpa", "split"):
            got = Collector()
            eng = Engine(runner, got, max_batch=8, pool=pool_for(runner, 8, 64), decode_attn=impl)
            run_staggered(eng, rs, 1)
            assert eng.static is not None
            d = eng.static.describe()
            self.assertEqual(d["graph_error"], "", impl)
            self.assertGreater(d["replays"], 10, impl)
            for rid in ref.done:
                self.assertEqual(got.tokens.get(rid), ref.tokens.get(rid), f"{impl} request {rid}")
                self.assertEqual(got.done[rid]["kept"], ref.done[rid]["kept"], f"{impl} request {rid}")


def _triton_ok() -> bool:
    if not torch.cuda.is_available():
        return False
    from snapworker import triton_decode
    return triton_decode.available()[0]


@unittest.skipUnless(_triton_ok(), "no CUDA device or no Triton here: the split-K kernel (decode_attn=triton) runs "
                     "on the GPU machine; its arithmetic is tested on this CPU by test_splitk")
class TritonTest(unittest.TestCase):
    """The Triton split-K decode attention against SDPA, the float32 eager attention and splitk.emulate."""

    def rows(self, seed: int, b: int, kvh: int, g: int, d: int, c: int, dtype: torch.dtype):
        """Random pool rows: about a third of the slots invalid, row r ending at slot 1, c // 3 or c (r % 3); the
        slots at and above a row's end hold NaN, so that reading one shows."""
        gen = torch.Generator(device="cuda").manual_seed(seed)
        q = torch.randn(b, kvh, g, d, generator=gen, device="cuda").to(dtype)
        k = torch.randn(b, kvh, c, d, generator=gen, device="cuda").to(dtype)
        v = torch.randn(b, kvh, c, d, generator=gen, device="cuda").to(dtype)
        valid = torch.rand(b, c, generator=gen, device="cuda") > 0.3
        valid[:, 0] = True
        for r in range(b):
            end = [1, c // 3, c][r % 3]
            valid[r, end:] = False
            k[r, :, end:] = float("nan")
            v[r, :, end:] = float("nan")
        return q, k, v, valid

    def assertClose(self, got: torch.Tensor, want: torch.Tensor, tol: float, msg: str = "") -> None:
        """|got - want| <= tol * (1 + |want|) elementwise (outputs of unit scale: tol absolute, relative above 1)."""
        err = (got.float() - want.float()).abs() / (1 + want.float().abs())
        self.assertLessEqual(float(err.max()), tol, msg)

    def test_against_sdpa_and_the_emulation(self) -> None:
        from snapworker import cache, splitk, triton_decode
        torch.backends.cuda.matmul.allow_tf32 = False
        bf, fp16, fp32 = torch.bfloat16, torch.float16, torch.float32
        cases = [  # batch bucket, GQA group, head_dim, slots a row, dtype (few shapes: each compiles the kernels)
            (1, 4, 128, 4352, bf), (2, 1, 64, 1000, bf), (4, 8, 128, 777, bf), (8, 4, 128, 2048, bf),
            (2, 4, 64, 1000, fp16), (3, 4, 128, 1000, fp32)]
        for i, (b, g, d, c, dtype) in enumerate(cases):
            with self.subTest(dtype=str(dtype), b=b, g=g, d=d, c=c):
                q, k, v, valid = self.rows(i, b, 2 if g == 8 else 8, g, d, c, dtype)
                clean_k, clean_v = k.nan_to_num(0.0), v.nan_to_num(0.0)
                scale = d ** -0.5
                got = triton_decode.decode_attention(q, k, v, valid, splitk.high_water(valid), scale)
                self.assertFalse(torch.isnan(got).any(), "a slot above the high-water mark was read")
                want = cache.batched_slot_attention(q, clean_k, clean_v, valid, scale, "sdpa")
                self.assertClose(got, want, TRITON_TOL[dtype], "against sdpa")
                if b <= 2:  # the emulation loops in Python: small cases only
                    ns = splitk.num_splits(b, q.shape[1], c, triton_decode.sm_count(q.device))
                    emu = splitk.emulate(q, clean_k, clean_v, valid, scale, ns, triton_decode.BLOCK)
                    self.assertClose(got, emu, TRITON_TOL[dtype] / 2, "against the emulation")
                if i == 2:
                    for forced in (1, 64):  # any split count, empty splits included
                        other = triton_decode.decode_attention(q, k, v, valid, splitk.high_water(valid), scale,
                                                               nsplit=forced)
                        self.assertClose(other, want, TRITON_TOL[dtype], f"{forced} splits")

    def test_graph_capture_and_replay(self) -> None:
        from snapworker import splitk, triton_decode
        q, k, v, valid = self.rows(1, 4, 8, 4, 128, 2048, torch.bfloat16)
        k, v = k.nan_to_num(0.0), v.nan_to_num(0.0)
        hwm = splitk.high_water(valid)
        scale = 128 ** -0.5
        triton_decode.decode_attention(q, k, v, valid, hwm, scale)  # compiles outside the capture
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            triton_decode.decode_attention(q, k, v, valid, hwm, scale)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            hw = splitk.high_water(valid)
            out = triton_decode.decode_attention(q, k, v, valid, hw, scale)
        for seed in (2, 3):  # new contents, new high-water marks, same buffers
            q2, k2, v2, valid2 = self.rows(seed, 4, 8, 4, 128, 2048, torch.bfloat16)
            valid2 = valid2.roll(1, 0)
            q.copy_(q2)
            k.copy_(k2.nan_to_num(0.0))
            v.copy_(v2.nan_to_num(0.0))
            valid.copy_(valid2)
            g.replay()
            want = triton_decode.decode_attention(q, k, v, valid, splitk.high_water(valid), scale)
            self.assertTrue(torch.equal(out, want), f"seed {seed}")

    def test_engine_forced_triton_in_float32(self) -> None:
        # float32 is auto's sdpa; forced, the kernel (IEEE products) gives the eager path's tokens in CUDA graphs.
        torch.backends.cuda.matmul.allow_tf32 = False
        runner = minillama.random_model(head_dim=16).to("cuda")
        ps = [snap_plan(len(PROMPT) - i, 12 + 2 * i) for i in range(5)] + [full_plan(len(PROMPT), 10)]
        rs = reqs(ps, [PROMPT[i:] for i in range(5)] + [PROMPT])
        ref = Collector()
        run_staggered(Engine(runner, ref, max_batch=8), rs, 1)
        got = Collector()
        eng = Engine(runner, got, max_batch=8, pool=pool_for(runner, 8, 64), decode_attn="triton")
        run_staggered(eng, rs, 1)
        assert eng.static is not None
        d = eng.static.describe()
        self.assertEqual(d["graph_error"], "")
        self.assertGreater(d["replays"], 10)
        self.assertEqual(set(d["decode_attn"].values()), {"triton"})
        for rid in ref.done:
            self.assertEqual(got.tokens.get(rid), ref.tokens.get(rid), f"request {rid}")
        auto = Engine(runner, Collector(), max_batch=8, pool=pool_for(runner, 8, 64))
        run_staggered(auto, rs, 1)
        assert auto.static is not None
        self.assertNotIn("triton", auto.static.describe()["decode_attn"].values())  # float32: never auto

    def test_auto_checks_the_kernel_in_bfloat16(self) -> None:
        runner = minillama.random_model(head_dim=64).to("cuda")
        runner.model = runner.model.to(torch.bfloat16)
        runner.dtype = torch.bfloat16
        pool = SlotPool(runner.layers, runner.kv_heads, runner.head_dim, 4, 4096, torch.bfloat16, runner.device)
        eng = Engine(runner, Collector(), max_batch=4, pool=pool)
        assert eng.static is not None
        for b in (1, 2, 4):
            eng.static._impl(b)
            check = eng.static.triton_check[b]
            self.assertTrue(check["ok"], check)
            self.assertLessEqual(check["max_err"], TRITON_TOL[torch.bfloat16])
            self.assertIn("triton", eng.static.impl_ms[b])


if __name__ == "__main__":
    unittest.main()
