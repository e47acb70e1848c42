"""h2o and tova's cache (snapworker/evict.py, docs/policies.md §18-19): the doc's worked example (ExampleEvictor)
through prefill_keep, evict_slots and observe; the eviction rule's ties and NaN; prompt scores in blocks against
their plain form; a prompt shorter than the budget; a budget covering prompt and decode reproduces full's tokens;
the held slots never exceed the capacity and follow the eviction rule step by step; evictions gathered from the
ranks under tensor parallelism."""
from __future__ import annotations

import os
import unittest
from typing import Any, Dict, List, Tuple

import torch

from . import minillama
from .harness import Collector, run_all
from .support import MODELS, reference
from snapworker.engine import Engine, Request
from snapworker.evict import EvictCache, evict_slots, observe, prefill_keep, prompt_scores, prompt_scores_fast
from snapworker.plan import Plan
from snapworker.tp import RankEmit


def evict_plan(method: str, prompt: int, max_new: int, budget: int, recent: int = -1,
               need_scores: bool = True) -> Plan:
    """The plan compress.Policy.Plan gives h2o:budget=B[,recent=R] (R = B//2 by default) or tova:budget=B."""
    ring = (budget // 2 if recent < 0 else recent) if method == "h2o" else 0
    hi = max(0, prompt - ring)
    top = budget - ring
    return Plan(prompt_len=prompt, max_new=max_new, capacity=budget, sinks=0, ring=ring, topk=top, lo=0, hi=hi,
                valid_topk=min(top, hi), need_scores=need_scores, window=0, kernel=0, append_decode=False,
                method=method, evict=True, slots=budget)


def full_plan(prompt: int, max_new: int) -> Plan:
    """full's plan: every position in its own slot."""
    cap = prompt + max_new
    return Plan(prompt_len=prompt, max_new=max_new, capacity=cap, sinks=cap, ring=0, topk=0, lo=prompt, hi=prompt,
                valid_topk=0, need_scores=False, window=0, kernel=0, append_decode=False, method="full", slots=cap)


class WorkedExampleTest(unittest.TestCase):
    def test_example_evictor(self) -> None:
        # docs/policies.md §18 ExampleEvictor: h2o:budget=4,recent=2, prompt scores 5 1 4 0 2 3, one query head.
        plan = evict_plan("h2o", 6, 3, 4, 2)
        scores = torch.tensor([[5.0, 1.0, 4.0, 0.0, 2.0, 3.0]], dtype=torch.float64)
        keep = prefill_keep(plan, scores, 1, torch.device("cpu"))
        self.assertEqual(keep.tolist(), [[0, 2, 4, 5]])
        pos = keep.clone()
        score = scores.gather(1, keep)
        steps = [(6, [0.1, 0.2, 0.6, 0.1], 4, 2, [0, 2, 6, 5], [5.1, 4.2, 0.6, 3.1]),
                 (7, [0.3, 0.3, 0.2, 0.2], 5, 3, [0, 2, 6, 7], [5.4, 4.5, 0.8, 0.2])]
        for p, w, want_ev, want_slot, want_pos, want_score in steps:
            slot, ev = evict_slots(pos, score, p, plan.ring)
            self.assertEqual((ev.tolist(), slot.tolist()), ([want_ev], [want_slot]), f"write {p}")
            pos.scatter_(-1, slot[..., None], p)
            score.scatter_(-1, slot[..., None], 0.0)
            observe(score, torch.tensor([[w]], dtype=torch.float32), tova=False)
            self.assertEqual(pos.tolist(), [want_pos], f"write {p}")
            self.assertEqual([round(x, 6) for x in score[0].tolist()], want_score, f"write {p}")

    def test_tova_replaces_by_group_mean(self) -> None:
        score = torch.tensor([[9.0, 9.0, 9.0]], dtype=torch.float64)
        w = torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]]], dtype=torch.float32)
        observe(score, w, tova=True)
        want = [(float(a) + float(b)) / 2 for a, b in zip(w[0, 0].tolist(), w[0, 1].tolist())]
        self.assertEqual(score[0].tolist(), want)


class EvictRuleTest(unittest.TestCase):
    def test_evict_slots(self) -> None:
        nan = float("nan")
        # (name, held positions, scores, p, ring, want slot)
        cases: List[Tuple[str, List[int], List[float], int, int, int]] = [
            ("lowest score", [0, 1, 2, 3], [3, 1, 2, 4], 4, 0, 1),
            ("ties to the higher position", [5, 1, 7, 3], [1, 2, 1, 1], 8, 0, 2),
            ("NaN first", [0, 1, 2, 3], [0, nan, -1, 2], 4, 0, 1),
            ("NaNs: the higher position", [4, 9, 2, 6], [nan, 1, nan, 0], 10, 0, 0),
            ("recent window excluded", [0, 7, 8, 9], [5, 1, 0, 0], 10, 3, 1),
            ("recent window excludes NaN", [0, 1, 8, 9], [5, 6, nan, 0], 10, 3, 0),
            ("tova: every position", [0, 7, 8, 9], [5, 3, 4, 0], 10, 0, 3),
        ]
        for name, pos, sc, p, ring, want in cases:
            with self.subTest(name):
                pt = torch.tensor([pos])
                slot, ev = evict_slots(pt, torch.tensor([sc], dtype=torch.float64), p, ring)
                self.assertEqual(slot.tolist(), [want])
                self.assertEqual(ev.tolist(), [pos[want]])

    def test_prefill_keep_ranks(self) -> None:
        nan = float("nan")
        plan = evict_plan("tova", 6, 2, 3)
        sc = torch.tensor([[1, 2, 2, nan, 2, 0], [nan, nan, nan, nan, 1, nan]], dtype=torch.float64)
        keep = prefill_keep(plan, sc, 2, torch.device("cpu"))
        self.assertEqual(keep.tolist(), [[1, 2, 4], [0, 1, 4]])  # ties to the lower position, NaN lowest
        h2o = evict_plan("h2o", 6, 2, 3, 1)
        self.assertEqual(prefill_keep(h2o, sc, 2, torch.device("cpu")).tolist(), [[1, 2, 5], [0, 4, 5]])


class RecordTest(unittest.TestCase):
    def test_evictions_are_kept_only_when_asked(self) -> None:
        """A sequence that did not ask for its kept positions holds no record per decode step."""
        g = torch.Generator().manual_seed(2)
        plan = evict_plan("h2o", 6, 8, 4, 2)
        for record in (False, True):
            cache = EvictCache(plan, 1, 1, 8, torch.float32, torch.device("cpu"))
            cache.record_evictions = record
            cache.prefill(0, torch.randn(2, 6, 8, generator=g), torch.randn(1, 6, 8, generator=g),
                          torch.randn(1, 6, 8, generator=g))
            cache.end_prefill()
            for p in range(6, 12):
                cache.begin_decode(p)
                cache.decode(0, torch.randn(2, 1, 8, generator=g), torch.randn(1, 1, 8, generator=g),
                             torch.randn(1, 1, 8, generator=g), 0.3)
            self.assertEqual(len(cache.steps), 6 if record else 0)
            self.assertEqual(cache.evicted() is None, not record)


class PromptScoresTest(unittest.TestCase):
    def test_fast_form_agrees(self) -> None:
        """The GPU form (float32 exponentials, float64 normalisers and block sums) is the exact one within float32
        rounding, whatever the block, with large logits (the max subtraction) and a prompt of one row."""
        g = torch.Generator().manual_seed(5)
        for kvh, group, length, d, mag in ((2, 3, 29, 8, 2.0), (1, 4, 64, 16, 6.0), (2, 1, 1, 8, 1.0)):
            q = torch.randn(kvh * group, length, d, generator=g) * mag
            k = torch.randn(kvh, length, d, generator=g) * mag
            want = prompt_scores("h2o", q, k)
            for block in (0, 1, 5, length):
                torch.testing.assert_close(prompt_scores_fast(q, k, block), want, rtol=2e-5, atol=1e-9,
                                           msg=f"L={length} block {block}")

    def test_blocks_and_plain_form(self) -> None:
        g = torch.Generator().manual_seed(3)
        kvh, group, length, d = 2, 3, 29, 8
        q = torch.randn(kvh * group, length, d, generator=g) * 2
        k = torch.randn(kvh, length, d, generator=g) * 2
        whole = prompt_scores("h2o", q, k, block=length)
        for block in (1, 4, 7):
            # a row's softmax sum over its r1 keys or over all L (zeros past r1) may round apart in the last bit, and
            # torch 2.11's cumsum (the GPU machine's, on its CPU too) does not add strictly left to right (1e-12 relative
            # failed there on a small score)
            torch.testing.assert_close(prompt_scores("h2o", q, k, block=block), whole, rtol=1e-10, atol=1e-14,
                                       msg=f"block {block}")
        logits = torch.matmul(q.double().reshape(kvh, group, length, d), k.double()[:, None].transpose(-1, -2))
        logits = logits / d ** 0.5
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        probs = logits.masked_fill(~causal, float("-inf")).softmax(-1)  # [KVH, G, L, L]
        torch.testing.assert_close(whole, probs.sum(dim=(1, 2)), rtol=1e-5, atol=1e-9)
        torch.testing.assert_close(prompt_scores("tova", q, k), probs[:, :, -1].mean(1), rtol=1e-5, atol=1e-9)


def run(runner: minillama.MiniLlama, reqs: List[Request]) -> Collector:
    col = Collector()
    for r in reqs:
        eng = Engine(runner, col, max_batch=1)
        eng.submit(r)
        run_all(eng)
    return col


class EngineTest(unittest.TestCase):
    model = "llama-gqa"

    def setUp(self) -> None:
        self.runner = minillama.load(os.path.join(MODELS, self.model))
        self.prompt: List[int] = reference(self.model)["prompt_ids"]

    def test_prompt_shorter_than_budget(self) -> None:
        prompt = self.prompt[:20]
        for method in ("h2o", "tova"):
            with self.subTest(method):
                col = run(self.runner, [Request(id=1, prompt=prompt, plan=evict_plan(method, 20, 10, 24, 6),
                                                max_new=10, want_kept=True)])
                done = col.done[1]
                self.assertEqual(done["kept"], [[list(range(20))] * 2] * self.runner.layers)
                ev = done["evicted"]
                self.assertEqual(len(ev), 9)
                for step, e in enumerate(ev):
                    full = 20 + step >= 24  # positions 20..23 take the empty slots
                    for layer in e:
                        for x in layer:
                            self.assertEqual(x >= 0, full, f"step {step}: {e}")
                            if method == "h2o" and full:
                                self.assertLessEqual(x, 20 + step - 6, "evicted inside the recent window")

    def test_covering_budget_is_full(self) -> None:
        n, m = len(self.prompt), 24
        reqs = [Request(id=1, prompt=self.prompt, plan=full_plan(n, m), max_new=m)]
        for i, method in enumerate(("h2o", "tova")):
            for j, need in enumerate((False, True)):
                reqs.append(Request(id=10 + 2 * i + j, prompt=self.prompt, max_new=m, want_kept=True,
                                    plan=evict_plan(method, n, m, n + m, need_scores=need)))
        col = run(self.runner, reqs)
        self.assertEqual(len(col.tokens[1]), m)
        for r in reqs[1:]:
            with self.subTest(method=r.plan.method, need_scores=r.plan.need_scores):
                self.assertEqual(col.tokens[r.id], col.tokens[1])
                self.assertTrue(all(x == -1 for e in col.done[r.id]["evicted"] for row in e for x in row))


class CapacityTest(unittest.TestCase):
    def test_held_slots_follow_the_rule(self) -> None:
        layers, kvh, group, d = 3, 2, 2, 8
        g = torch.Generator().manual_seed(11)
        for method, budget, recent in (("h2o", 9, 3), ("h2o", 6, 1), ("h2o", 5, 5), ("tova", 7, 0)):
            with self.subTest(method=method, budget=budget):
                length, steps = 15, 20
                plan = evict_plan(method, length, steps + 1, budget, recent)
                cache = EvictCache(plan, layers, kvh, d, torch.float32, torch.device("cpu"))
                cache.record_evictions = True
                for layer in range(layers):
                    cache.prefill(layer, torch.randn(kvh * group, length, d, generator=g),
                                  torch.randn(kvh, length, d, generator=g), torch.randn(kvh, length, d, generator=g))
                cache.end_prefill()
                held: Dict[Tuple[int, int], List[int]] = {}
                for layer, row in enumerate(cache.kept()):
                    for h, kept in enumerate(row):
                        self.assertEqual(len(kept), budget)
                        held[(layer, h)] = list(kept)
                for step in range(steps):
                    p = length + step
                    before = list(zip(cache.pos.tolist(), cache.score.tolist()))
                    cache.begin_decode(p)
                    ks = []
                    for layer in range(layers):
                        k = torch.randn(kvh, 1, d, generator=g)
                        ks.append(k)
                        cache.decode(layer, torch.randn(kvh * group, 1, d, generator=g), k,
                                     torch.randn(kvh, 1, d, generator=g), 0.3)
                    ev = cache.evicted()[-1]
                    self.assertEqual(int(cache.valid.sum()), budget)
                    self.assertLessEqual(cache.n, plan.capacity)
                    for (layer, h), pos in held.items():
                        x = ev[layer][h]
                        self.assertIn(x, pos)
                        # the candidate of lowest score before the step, ties to the higher position
                        pb, sb = before[layer][0][h], before[layer][1][h]
                        want = min((sc, -q) for q, sc in zip(pb, sb) if q <= p - plan.ring)
                        self.assertEqual(x, -want[1], f"step {step} layer {layer} head {h}")
                        pos.remove(x)
                        pos.append(p)
                        now = cache.pos[layer, h].tolist()
                        self.assertEqual(sorted(now), sorted(pos))
                        slot = now.index(p)
                        self.assertTrue(torch.equal(cache.k[layer, h, slot], ks[layer][h, 0]))


class OtherRank:
    """The control group of rank 0 beside one rank that answers each gather with the next of its answers."""

    world = 2

    def __init__(self, answers: List[Any]) -> None:
        self.answers = answers

    def gather(self, obj: Any) -> List[Any]:
        return [obj, self.answers.pop(0)]


class TensorParallelTest(unittest.TestCase):
    def test_evictions_gathered_from_the_ranks(self) -> None:
        # two layers, one KV head per rank, two decode steps: rank 1's heads follow rank 0's
        got: List[Dict[str, Any]] = []
        other = OtherRank([[[[2, 3]], [[2, 4]]], [[[6], [-1]], [[7], [3]]]])
        emit = RankEmit(other, got.append)  # type: ignore[arg-type]
        emit({"ev": "done", "id": 1, "kept": [[[0, 1]], [[0, 5]]], "evicted": [[[5], [-1]], [[-1], [0]]]})
        self.assertEqual(got[0]["kept"], [[[0, 1], [2, 3]], [[0, 5], [2, 4]]])
        self.assertEqual(got[0]["evicted"], [[[5, 6], [-1, -1]], [[-1, 7], [0, 3]]])


if __name__ == "__main__":
    unittest.main()
