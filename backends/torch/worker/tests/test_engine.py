"""The scheduler: EOS, max new tokens, cancel, errors, out-of-memory steps and seeded sampling."""
from __future__ import annotations

import unittest
from typing import List

import torch

from . import minillama
from .harness import Collector, run_all
from .support import plans
from snapworker.engine import Engine, Request
from snapworker.plan import Plan
from snapworker.sampling import Params, Sampler


def full_plan(prompt_len: int, max_new: int) -> Plan:
    return Plan(prompt_len=prompt_len, max_new=max_new, capacity=prompt_len + max_new, sinks=prompt_len + max_new,
                ring=0, topk=0, lo=prompt_len, hi=prompt_len, valid_topk=0, need_scores=False, window=0, kernel=0,
                append_decode=False)


def snap_plan(prompt_len: int, max_new: int) -> Plan:
    """snapstream sinks 2, ring 6, top-K 5, window 4, kernel 3 (computed as compress does, checked below)."""
    lo, hi = min(2, prompt_len), max(min(2, prompt_len), prompt_len - 6)
    return Plan(prompt_len=prompt_len, max_new=max_new, capacity=13, sinks=2, ring=6, topk=5, lo=lo, hi=hi,
                valid_topk=min(5, hi - lo), need_scores=hi - lo > 5, window=4, kernel=3, append_decode=False)


PROMPT = [5, 17, 3, 88, 42, 9, 1, 60, 33, 21, 70, 2, 11, 4, 8, 19, 27, 51]


def greedy(runner: minillama.MiniRunner, plan: Plan, prompt: List[int], n: int) -> List[int]:
    col = Collector()
    eng = Engine(runner, col)
    eng.submit(Request(id=1, prompt=prompt, plan=plan, max_new=n))
    run_all(eng)
    return col.tokens.get(1, [])


class EngineTest(unittest.TestCase):
    def setUp(self) -> None:
        self.runner = minillama.random_model()

    def test_snap_plan_matches_compress(self) -> None:
        want = next(c for c in plans()["slots"] if c["spec"] == "snapstream:sinks=2,recent=6,topk=10,window=4,kernel=3")
        self.assertEqual(want["plan"]["lo"], 2)  # the helper above follows the same partition rule
        p = snap_plan(40, 13)
        self.assertEqual((p.lo, p.hi), (want["plan"]["lo"], want["plan"]["hi"]))

    def test_eos_stops_without_the_eos_token(self) -> None:
        toks = greedy(self.runner, full_plan(len(PROMPT), 12), PROMPT, 12)
        self.assertEqual(len(toks), 12)
        eos = toks[4]
        cut = toks.index(eos)
        col = Collector()
        eng = Engine(self.runner, col)
        eng.submit(Request(id=7, prompt=PROMPT, plan=full_plan(len(PROMPT), 12), max_new=12, eos=frozenset({eos})))
        run_all(eng)
        self.assertEqual(col.tokens.get(7, []), toks[:cut])
        self.assertEqual(col.done[7]["finish"], "stop")
        self.assertEqual(col.done[7]["tokens"], cut)

    def test_max_new_zero_prefills_only(self) -> None:
        col = Collector()
        eng = Engine(self.runner, col)
        eng.submit(Request(id=3, prompt=PROMPT, plan=full_plan(len(PROMPT), 0), max_new=0, want_logits=True,
                           want_kept=True))
        run_all(eng)
        self.assertNotIn(3, col.tokens)
        self.assertEqual(col.done[3]["finish"], "length")
        self.assertEqual(len(col.done[3]["logits"]), self.runner.vocab)
        self.assertEqual(col.done[3]["kept"][0][0], list(range(len(PROMPT))))

    def test_batching_does_not_change_greedy_tokens(self) -> None:
        alone = {i: greedy(self.runner, snap_plan(len(PROMPT) - i, 9), PROMPT[i:], 9) for i in range(4)}
        col = Collector()
        eng = Engine(self.runner, col, max_batch=3, prefill_tokens=20)
        for i in range(4):
            eng.submit(Request(id=i, prompt=PROMPT[i:], plan=snap_plan(len(PROMPT) - i, 9), max_new=9))
            eng.step()
        run_all(eng)
        for i in range(4):
            self.assertEqual(col.tokens[i], alone[i], f"request {i}")

    def test_margins_follow_the_tokens(self) -> None:
        col = Collector()
        eng = Engine(self.runner, col)
        eng.submit(Request(id=1, prompt=PROMPT, plan=full_plan(len(PROMPT), 6), max_new=6, want_margins=True,
                           want_logits=True))
        run_all(eng)
        m = col.done[1]["margins"]
        self.assertEqual(len(m), 6)
        self.assertTrue(all(x >= 0 for x in m))
        top = torch.topk(torch.tensor(col.done[1]["logits"]), 2).values
        self.assertAlmostEqual(m[0], float(top[0] - top[1]), places=5)

    def test_cancel_waiting_and_running(self) -> None:
        col = Collector()
        eng = Engine(self.runner, col, max_batch=1)
        eng.submit(Request(id=1, prompt=PROMPT, plan=full_plan(len(PROMPT), 50), max_new=50))
        eng.submit(Request(id=2, prompt=PROMPT, plan=full_plan(len(PROMPT), 50), max_new=50))
        eng.step()
        eng.step()
        eng.cancel(2)  # still waiting
        eng.cancel(1)  # running
        eng.cancel(99)  # unknown: ignored
        run_all(eng)
        self.assertEqual(col.done[2]["finish"], "canceled")
        self.assertEqual(col.done[1]["finish"], "canceled")
        self.assertLess(len(col.tokens[1]), 50)

    def test_bad_requests_are_error_events(self) -> None:
        col = Collector()
        eng = Engine(self.runner, col)
        eng.submit(Request(id=1, prompt=[1, 2, 500], plan=full_plan(3, 2), max_new=2))
        eng.submit(Request(id=2, prompt=[1, 2], plan=full_plan(3, 2), max_new=2))
        eng.submit(Request(id=3, prompt=[1, 2, 3], plan=full_plan(3, 2), max_new=4))
        self.assertFalse(eng.busy())
        self.assertIn("outside the vocabulary", col.errors[1]["msg"])
        self.assertIn("plan for 3", col.errors[2]["msg"])
        self.assertIn("max_new 4", col.errors[3]["msg"])

    def test_out_of_memory_fails_the_step_and_goes_on(self) -> None:
        runner = self.runner
        calls = {"n": 0}

        class Flaky:
            layers, kv_heads, head_dim, vocab = runner.layers, runner.kv_heads, runner.head_dim, runner.vocab
            dtype, device = runner.dtype, runner.device

            def forward(self, ids: torch.Tensor, pos: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
                calls["n"] += 1
                if calls["n"] == 2:
                    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
                return runner.forward(ids, pos, last)

        col = Collector()
        eng = Engine(Flaky(), col)
        eng.submit(Request(id=1, prompt=PROMPT, plan=full_plan(len(PROMPT), 5), max_new=5))
        run_all(eng)
        self.assertEqual(col.errors[1]["kind"], "oom")
        eng.submit(Request(id=2, prompt=PROMPT, plan=full_plan(len(PROMPT), 5), max_new=5))
        run_all(eng)
        self.assertEqual(col.done[2]["finish"], "length")

    def test_other_errors_end_the_worker(self) -> None:
        class Broken:
            layers, kv_heads, head_dim, vocab = 2, 2, 8, 97
            dtype, device = torch.float32, torch.device("cpu")

            def forward(self, ids: torch.Tensor, pos: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
                raise RuntimeError("CUDA error: an illegal memory access was encountered")

        eng = Engine(Broken(), Collector())
        eng.submit(Request(id=1, prompt=[1, 2], plan=full_plan(2, 1), max_new=1))
        with self.assertRaises(RuntimeError):
            eng.step()


class SamplingTest(unittest.TestCase):
    def test_seeded_sampling_repeats_and_depends_on_the_seed(self) -> None:
        logits = torch.randn(500, generator=torch.Generator().manual_seed(3))
        s1 = Sampler(Params(temperature=1.0, top_p=0.9, top_k=50, seed=11), torch.device("cpu"))
        s2 = Sampler(Params(temperature=1.0, top_p=0.9, top_k=50, seed=11), torch.device("cpu"))
        a = [s1.sample(logits) for _ in range(40)]
        b = [s2.sample(logits) for _ in range(40)]
        self.assertEqual(a, b)
        s3 = Sampler(Params(temperature=1.0, top_p=0.9, top_k=50, seed=12), torch.device("cpu"))
        self.assertNotEqual(a, [s3.sample(logits) for _ in range(40)])
        big = Sampler(Params(temperature=1.0, seed=2**64 - 1), torch.device("cpu"))  # the whole uint64 range
        self.assertIn(big.sample(logits), range(500))

    def test_filters(self) -> None:
        logits = torch.tensor([0.0, 5.0, 5.0, 1.0, float("nan")])
        self.assertEqual(Sampler(Params(), torch.device("cpu")).sample(logits), 1)  # lowest index on ties
        one = Sampler(Params(temperature=2.0, top_k=1, seed=5), torch.device("cpu"))
        self.assertEqual({one.sample(logits) for _ in range(20)}, {1})
        nucleus = Sampler(Params(temperature=1.0, top_p=0.4, seed=5), torch.device("cpu"))
        self.assertEqual({nucleus.sample(logits) for _ in range(20)}, {1})  # token 1 alone holds 0.494
        picks = {Sampler(Params(temperature=1.0, top_p=0.5, seed=s), torch.device("cpu")).sample(logits)
                 for s in range(40)}
        self.assertEqual(picks, {1, 2})


if __name__ == "__main__":
    unittest.main()
