"""snapworker/alloc.py beyond the conformance fixtures (tests/test_policies.py): knorm's ties and NaN, its static
decode, pyramidkv's per-layer counts and slots, adakv's allocation against a plain port of compress.SelectAdaKV,
its per-layer totals and segments, and every policy whose budget covers the prompt (or whose allocation is the
base's) decoding as its base."""
from __future__ import annotations

import dataclasses
import math
import os
import random
import unittest
from typing import List

import torch

from . import minillama
from .harness import Collector, run_all
from .support import MODELS
from .test_policies import fixture, requests
from snapworker.alloc import AdaKVCache, KNormCache, PyramidKVCache, adakv_counts, flat_layers, knorm_topk
from snapworker.engine import Engine, Request
from snapworker.plan import Plan
from snapworker.pool import SlotPool

L, NEW = 160, 24


def snapkv_plan(topk: int, valid: int, need: bool, method: str = "snapkv", **kw: object) -> Plan:
    """A snapkv layout of the 160-token fixture prompt: window 32, kernel 5, top-K topk, 24 appended tokens."""
    return Plan(prompt_len=L, max_new=NEW, capacity=32 + topk + NEW, sinks=0, ring=32, topk=topk, lo=0, hi=128,
                valid_topk=valid, need_scores=need, window=32, kernel=5, append_decode=True, method=method,
                **kw)  # type: ignore[arg-type]


def knorm_plan(budget: int) -> Plan:
    """compress.Plan of knorm:budget=B for the fixture prompt."""
    b = min(budget, L)
    return Plan(prompt_len=L, max_new=NEW, capacity=b + NEW, sinks=0, ring=0, topk=b, lo=0, hi=L, valid_topk=b,
                need_scores=budget < L, window=0, kernel=0, append_decode=True, method="knorm")


def full_plan() -> Plan:
    """compress.Plan of full for the fixture prompt."""
    return Plan(prompt_len=L, max_new=NEW, capacity=L + NEW, sinks=L + NEW, ring=0, topk=0, lo=L, hi=L,
                valid_topk=0, need_scores=False, window=0, kernel=0, append_decode=False, method="full")


def run(model: str, plans: List[Plan], pool: bool = False) -> Collector:
    """Greedy decoding of the fixture prompt under each plan, one at a time (over a pool when pool)."""
    runner = minillama.load(os.path.join(MODELS, model))
    prompt = fixture(model)["prompt_ids"]
    col = Collector()
    for i, plan in enumerate(plans):
        sp = SlotPool(runner.layers, runner.kv_heads, runner.head_dim, 4, 256, runner.dtype,
                      runner.device) if pool else None
        eng = Engine(runner, col, max_batch=4, pool=sp)
        eng.submit(Request(id=i, prompt=prompt, plan=plan, max_new=NEW, want_kept=True))
        run_all(eng)
    return col


def plain_adakv(scores: List[List[float]], topk: int, safeguard: int) -> List[int]:
    """compress.SelectAdaKV's counts, written as the Go code reads (sort with a comparison, no tensors)."""
    kvh, c = len(scores), len(scores[0])

    def key(s: float, p: int) -> tuple:
        return (math.isnan(s), -s if not math.isnan(s) else 0.0, p)

    order = [sorted(range(c), key=lambda j, g=g: key(scores[g][j], j)) for g in range(kvh)]
    m = topk * safeguard // 100
    pool = [(g, r) for g in range(kvh) for r in range(m, c)]
    pool.sort(key=lambda e: key(scores[e[0]][order[e[0]][e[1]]], order[e[0]][e[1]]) + (e[0],))
    counts = [m] * kvh
    for g, _ in pool[:kvh * (topk - m)]:
        counts[g] += 1
    return counts


class KNormTest(unittest.TestCase):
    def test_ties_go_to_the_lower_position_and_nan_is_never_kept(self) -> None:
        # Squared norms of integer keys are exact in any order of summation: 4 1 9 1 nan 1 0 0 4.
        rows = [[2, 0], [1, 0], [3, 0], [0, 1], [float("nan"), 0], [0, -1], [0, 0], [0, 0], [0, 2]]
        keys = torch.tensor(rows, dtype=torch.float32)[None].repeat(2, 1, 1)
        keys[1] = keys[1].flip(0)  # head 1: the same norms in the reverse order of positions
        plan = dataclasses.replace(knorm_plan(4), prompt_len=9, hi=9, capacity=4 + NEW)
        got = knorm_topk(plan, keys).tolist()
        self.assertEqual(got, [[1, 3, 6, 7], [1, 2, 3, 5]])
        plan8 = dataclasses.replace(plan, topk=8, valid_topk=8, capacity=8 + NEW)
        self.assertNotIn(4, knorm_topk(plan8, keys)[0].tolist())  # the NaN key is the one left out

    def test_equals_a_sort_by_norm_then_position(self) -> None:
        gen = torch.Generator().manual_seed(7)
        keys = torch.randint(-3, 4, (3, 40, 4), generator=gen).float()  # many exact ties
        plan = dataclasses.replace(knorm_plan(11), prompt_len=40, hi=40, capacity=11 + NEW)
        got = knorm_topk(plan, keys).tolist()
        for g in range(3):
            norms = [sum(x * x for x in keys[g, p].tolist()) for p in range(40)]
            want = sorted(sorted(range(40), key=lambda p: (norms[p], p))[:11])
            self.assertEqual(got[g], want, f"head {g}")

    def test_budget_covering_the_prompt_is_full(self) -> None:
        col = run("llama-gqa", [full_plan(), knorm_plan(200)])
        self.assertEqual(col.tokens[1], col.tokens[0])
        self.assertEqual(col.done[1]["kept"], [[list(range(L))] * 2] * 2)

    def test_decodes_in_the_static_step(self) -> None:
        self.assertTrue(KNormCache.static_ok)
        runner = minillama.load(os.path.join(MODELS, "llama-gqa"))
        fx = fixture("llama-gqa")
        req = next(r for r in requests("llama-gqa") if r.plan.method == "knorm")
        pool = SlotPool(runner.layers, runner.kv_heads, runner.head_dim, 2, 256, runner.dtype, runner.device)
        col = Collector()
        eng = Engine(runner, col, max_batch=2, pool=pool)
        eng.submit(req)
        run_all(eng)
        assert eng.static is not None
        self.assertEqual(eng.static.eager_steps, NEW - 1)  # every decode step in the static step (no graphs: CPU)
        case = next(c for c in fx["cases"] if c["spec"] == "knorm:budget=42")
        self.assertEqual(col.tokens[req.id], case["greedy"])


class PyramidKVTest(unittest.TestCase):
    def test_per_layer_counts_reach_the_fixtures_kept_sizes(self) -> None:
        for model in ("llama-gqa", "qwen2-tied"):
            runner = minillama.load(os.path.join(MODELS, model))
            for r, case in zip(requests(model), fixture(model)["cases"]):
                if r.plan.method != "pyramidkv":
                    continue
                col = Collector()
                eng = Engine(runner, col, max_batch=1)
                eng.submit(r)
                eng.step()  # the prefill: the cache's masks before any decoded token
                cache = eng.running[r.id].cache
                assert isinstance(cache, PyramidKVCache)
                plan = r.plan
                nfixed = len(plan.fixed_prefill()[0])
                for layer, k in enumerate(plan.layer_topk):
                    n = nfixed + min(k, plan.hi - plan.lo)
                    with self.subTest(model=model, spec=case["spec"], layer=layer):
                        self.assertEqual(int(cache.lvalid[layer].sum()), n)
                        self.assertEqual([len(h) for h in case["kept"][layer]], [n] * runner.kv_heads)
                run_all(eng)
                self.assertEqual(col.done[r.id]["kept"], case["kept"])

    def test_decode_slots_stay_inside_the_held_slots(self) -> None:
        for model in ("llama-gqa",):
            for r in requests(model):
                if r.plan.method != "pyramidkv":
                    continue
                plan = r.plan
                cache = PyramidKVCache(plan, len(plan.layer_topk), 2, 4, torch.float32, torch.device("cpu"))
                slots = [cache.decode_slot(p) for p in range(L, L + NEW)]
                self.assertTrue(all(plan.sinks <= s < plan.held for s in slots), slots)
                top_end = plan.topk_base + max(plan.layer_topk)
                if plan.append_decode:
                    self.assertEqual(slots, list(range(top_end, top_end + NEW)))
                with self.assertRaises(ValueError):
                    cache.decode_slot(L + NEW if plan.append_decode else L - 1)

    def test_equal_counts_are_the_base(self) -> None:
        # c + W = 160 < 2T: PyramidTopK gives T = 100 to every layer, so pyramidkv is snapkv (a real selection).
        base = snapkv_plan(100, 100, True)
        pyr = dataclasses.replace(base, method="pyramidkv", base="snapkv", layer_topk=(100, 100))
        col = run("llama-gqa", [base, pyr])
        self.assertEqual(col.done[1]["kept"], col.done[0]["kept"])
        self.assertEqual(col.tokens[1], col.tokens[0])

    def test_bad_layer_counts_are_refused(self) -> None:
        plan = next(r for r in requests("llama-gqa") if r.plan.method == "pyramidkv").plan
        with self.assertRaisesRegex(ValueError, "2 layers, the model 3"):
            PyramidKVCache(plan, 3, 2, 4, torch.float32, torch.device("cpu"))
        wide = dataclasses.replace(plan, slots=plan.held + 1)
        with self.assertRaisesRegex(ValueError, "widest layer needs"):
            PyramidKVCache(wide, 2, 2, 4, torch.float32, torch.device("cpu"))


class AdaKVTest(unittest.TestCase):
    def test_counts_equal_the_go_algorithm(self) -> None:
        rnd = random.Random(3)
        for trial in range(200):
            kvh, c = rnd.randint(1, 5), rnd.randint(2, 30)
            topk = rnd.randint(1, c - 1)
            safeguard = rnd.choice([0, 20, 50, 99, 100])
            scores = [[rnd.choice([0.5, 1.0, 2.0, float("nan"), float("-inf"), rnd.random()]) for _ in range(c)]
                      for _ in range(kvh)]
            got, order = adakv_counts(torch.tensor(scores, dtype=torch.float64), topk, safeguard)
            with self.subTest(trial=trial):
                self.assertEqual(got.tolist(), plain_adakv(scores, topk, safeguard))
                self.assertEqual(int(got.sum()), kvh * topk)
                for g in range(kvh):  # each head's order is its candidates best first (NaN lowest, lower first)
                    want = sorted(range(c), key=lambda j: (math.isnan(scores[g][j]),
                                                           0.0 if math.isnan(scores[g][j]) else -scores[g][j], j))
                    self.assertEqual(order[g].tolist(), want)

    def test_totals_per_layer_and_segments(self) -> None:
        for model in ("llama-gqa", "qwen2-tied"):
            runner = minillama.load(os.path.join(MODELS, model))
            for r in requests(model):
                if r.plan.method != "adakv":
                    continue
                plan = r.plan
                col = Collector()
                eng = Engine(runner, col, max_batch=1)
                eng.submit(r)
                for _ in range(NEW - 1):  # the prefill and all but the last decode step (the sequence stays)
                    eng.step()
                cache = eng.running[r.id].cache
                assert isinstance(cache, AdaKVCache)
                n = runner.kv_heads * plan.held
                self.assertEqual(cache.nbytes, 2 * runner.layers * n * runner.head_dim * 4)
                for layer, counts in enumerate(cache.head_counts()):
                    with self.subTest(model=model, method=plan.base, layer=layer):
                        self.assertEqual(sum(counts), runner.kv_heads * plan.topk)
                        caps = [plan.capacity - plan.topk + k for k in counts]
                        owner = cache.owner[layer].tolist()
                        self.assertEqual([owner.count(g) for g in range(runner.kv_heads)], caps)
                        self.assertEqual(owner, sorted(owner))  # each head's segment is contiguous
                        valid = cache.lvalid[layer].tolist()
                        decoded = NEW - 2  # tokens fed: the first comes from the prefill
                        # snapkv appends every decoded token; snapstream's ring takes them until it is full.
                        room = decoded if plan.append_decode else plan.ring - (plan.prompt_len - plan.hi)
                        for g in range(runner.kv_heads):
                            held = sum(1 for o, v in zip(owner, valid) if o == g and v)
                            want = len(plan.fixed_prefill()[0]) + counts[g] + min(decoded, room)
                            self.assertEqual(held, want, f"head {g}")
                            self.assertLessEqual(held, caps[g])
                run_all(eng)

    def test_full_safeguard_is_the_base(self) -> None:
        # safeguard=100: every head keeps its own topk best, which is snapkv's selection.
        base = snapkv_plan(64, 64, True)
        ada = dataclasses.replace(base, method="adakv", base="snapkv", safeguard=100)
        for pool in (False, True):
            col = run("llama-gqa", [base, ada], pool=pool)
            self.assertEqual(col.done[1]["kept"], col.done[0]["kept"])
            self.assertEqual(col.tokens[1], col.tokens[0])

    def test_budget_covering_the_candidates_is_the_base(self) -> None:
        base = snapkv_plan(128, 128, False)
        ada = dataclasses.replace(base, method="adakv", base="snapkv", safeguard=20)
        col = run("llama-gqa", [base, ada, full_plan()])
        self.assertEqual(col.done[1]["kept"], col.done[0]["kept"])
        self.assertEqual(col.tokens[1], col.tokens[0])
        self.assertEqual(col.tokens[1], col.tokens[2])

    def test_flat_layers_refuse_storage_they_do_not_own(self) -> None:
        t = torch.zeros(2, 3, 8, 4)
        self.assertEqual(flat_layers(t, 8).shape, (2, 24, 4))
        with self.assertRaisesRegex(ValueError, "adakv: cache storage"):
            flat_layers(t.transpose(1, 2), 3)  # heads interleaved with slots
        with self.assertRaisesRegex(ValueError, "adakv: cache storage"):
            flat_layers(t.as_strided((2, 3, 8, 4), (96, 16, 4, 1)), 8)  # heads overlap
        with self.assertRaisesRegex(ValueError, "adakv: cache storage"):
            flat_layers(t.as_strided((2, 3, 8, 4), (64, 32, 4, 1)), 8)  # layers overlap
        pool = SlotPool(2, 3, 4, 2, 16, torch.float32, torch.device("cpu"))
        k, _, _ = pool.views(1, 1, 8)
        flat = flat_layers(k, 8)
        flat[1, 23, 0] = 1.0
        self.assertEqual(float(pool.k[1, 1].sum()), 1.0)  # writes land in the sequence's own row
        self.assertEqual(float(pool.k[:, 0].sum()), 0.0)


if __name__ == "__main__":
    unittest.main()
