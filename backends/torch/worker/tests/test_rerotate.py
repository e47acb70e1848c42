"""rerotate in the worker (snapworker/rerotate.py): a covering budget gives full's greedy tokens (as the Go
TestRerotateCoveringEqualsFull), rotating a post-RoPE key by delta equals RoPE at the shifted position, each slot's
delta is (p - h_r) - (n - 1 - r) over the held positions, and a model whose RoPE is not plain rotate_half (or a
runner that does not say) is refused per request, naming why; hf.rope_facts classifies transformers' RoPE."""
from __future__ import annotations

import os
import unittest
from types import SimpleNamespace
from typing import Any, List

import torch
import torch.nn as nn

from . import minillama
from .harness import Collector, run_all
from .support import MODELS, reference
from snapworker.engine import Engine, Request
from snapworker.hf import rope_facts
from snapworker.plan import Plan
from snapworker.rerotate import RerotateCache, rotate

N = 24


def full_plan(L: int) -> Plan:
    cap = L + N
    return Plan(prompt_len=L, max_new=N, capacity=cap, sinks=cap, ring=0, topk=0, lo=L, hi=L, valid_topk=0,
                need_scores=False, window=0, kernel=0, append_decode=False, method="full", slots=cap)


def covering_plan(method: str, L: int) -> Plan:
    """streaming:sinks=4,recent=L+N,rerotate=true or snapstream:sinks=4,recent=L+N,topk=8,rerotate=true (as
    compress.Plan lays them out: the ring holds every prompt position past the sinks, no top-K candidates)."""
    topk = 8 if method == "snapstream" else 0
    ring = L + N
    return Plan(prompt_len=L, max_new=N, capacity=4 + ring + topk, sinks=4, ring=ring, topk=topk, lo=4, hi=4,
                valid_topk=0, need_scores=False, window=8 if topk else 0, kernel=5 if topk else 0,
                append_decode=False, method=method, rerotate=True, slots=4 + ring + topk)


def run(runner: Any, plans: List[Plan], prompt: List[int]) -> Collector:
    col = Collector()
    for i, p in enumerate(plans):
        eng = Engine(runner, col, max_batch=1)
        eng.submit(Request(id=i, prompt=prompt, plan=p, max_new=N, want_logits=True))
        run_all(eng)
    return col


class RerotateTest(unittest.TestCase):
    def test_covering_budget_equals_full(self) -> None:
        for model in ("llama-gqa", "qwen2-tied"):
            runner = minillama.load(os.path.join(MODELS, model))
            prompt = reference(model)["prompt_ids"]
            L = len(prompt)
            col = run(runner, [full_plan(L), covering_plan("streaming", L), covering_plan("snapstream", L)], prompt)
            self.assertEqual(col.errors, {})
            self.assertEqual(len(col.tokens[0]), N)
            for i in (1, 2):
                self.assertEqual(col.tokens[i], col.tokens[0], f"{model} plan {i}")
                # bit for bit on torch 1.13; torch 2.11 picks its attention kernels' summation order by shape (the
                # re-rotated copy is a new tensor), so the last bits may differ there
                want = col.done[0]["logits_last"]
                den = max(abs(x) for x in want)
                err = max(abs(a - b) for a, b in zip(col.done[i]["logits_last"], want)) / den
                self.assertLess(err, 1e-5, f"{model} plan {i} logits")

    def test_rotation_composes_with_rope(self) -> None:
        torch.manual_seed(1)
        d = 16
        inv = 1.0 / (10000.0 ** (torch.arange(0, d, 2, dtype=torch.float64) / d))

        def rope(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
            ang = pos.double()[..., None] * inv
            cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
            return x * cos + torch.cat([-x[..., d // 2:], x[..., :d // 2]], -1) * sin

        k0 = torch.randn(3, 5, d, dtype=torch.float64)
        pos = torch.tensor([[0, 7, 30, 31, 100]] * 3)
        delta = torch.tensor([[5, 0, 2, 1, 40]] * 3)
        got = rotate(rope(k0, pos).float(), delta, inv.float())
        want = rope(k0, pos + delta)
        self.assertLess((got.double() - want).abs().max().item(), 1e-5)
        self.assertTrue(torch.equal(rotate(k0.float(), torch.zeros_like(delta), inv.float()), k0.float()))

    def test_delta_is_rank_distance(self) -> None:
        # streaming sinks=2, ring=3 over a prompt of 6: held after prefill 0, 1 | 3, 4, 5 (slots 2..4 ring).
        plan = Plan(prompt_len=6, max_new=4, capacity=5, sinks=2, ring=3, topk=0, lo=2, hi=3, valid_topk=0,
                    need_scores=False, window=0, kernel=0, append_decode=False, method="streaming", rerotate=True)
        c = RerotateCache(plan, 1, 2, 4, torch.float32, torch.device("cpu"))
        c.attach(SimpleNamespace(head_dim=4, rope_style="rotate_half", rope_inv_freq=torch.ones(2)))
        k = torch.randn(2, 6, 4)
        c.prefill(0, torch.randn(2, 6, 4), k, k)
        c.end_prefill()
        c.begin_decode(6)  # 6 replaces 3: held 0, 1, 4, 5, 6 at ranks 0..4; n = 5
        want = {0: 6 - 0 - 4, 1: 6 - 1 - 3, 4: 6 - 4 - 2, 5: 6 - 5 - 1, 6: 0}
        slot_pos = c.pos[0, 0].tolist()
        for s, p in enumerate(slot_pos):
            self.assertEqual(c.delta[0, :, s].tolist(), [want[p]] * 2, f"slot {s} position {p}")


class RefusalTest(unittest.TestCase):
    def test_non_plain_rope_is_refused_per_request(self) -> None:
        runner = minillama.random_model()
        plan = Plan(prompt_len=6, max_new=2, capacity=5, sinks=2, ring=3, topk=0, lo=2, hi=3, valid_topk=0,
                    need_scores=False, window=0, kernel=0, append_decode=False, method="streaming", rerotate=True)
        for style, why in (("yarn RoPE scaling", "yarn"), (None, "does not expose")):
            runner.rope_style = style
            col = Collector()
            eng = Engine(runner, col)
            eng.submit(Request(id=7, prompt=[1, 2, 3, 4, 5, 6], plan=plan, max_new=2))
            run_all(eng)
            self.assertEqual(col.errors[7]["kind"], "request")
            self.assertIn("rerotate", col.errors[7]["msg"])
            self.assertIn(why, col.errors[7]["msg"])
            self.assertNotIn(7, col.done)
        runner.rope_style = "rotate_half"  # the same model, plain: it runs
        col = Collector()
        eng = Engine(runner, col)
        eng.submit(Request(id=7, prompt=[1, 2, 3, 4, 5, 6], plan=plan, max_new=2))
        run_all(eng)
        self.assertEqual(col.errors, {})
        self.assertEqual(len(col.tokens[7]), 2)

    def test_hf_rope_facts(self) -> None:
        class LlamaRotaryEmbedding(nn.Module):
            def __init__(self, n: int, scaling: float = 1.0) -> None:
                super().__init__()
                self.register_buffer("inv_freq", torch.arange(1, n + 1, dtype=torch.float32))
                self.attention_scaling = scaling

        def model(n: int = 4, scaling: float = 1.0) -> nn.Module:
            m = nn.Module()
            m.rotary_emb = LlamaRotaryEmbedding(n, scaling)
            return m

        def cfg(mt: str, **kw: Any) -> SimpleNamespace:
            return SimpleNamespace(model_type=mt, **kw)

        inv, style = rope_facts(cfg("llama", rope_scaling={"rope_type": "llama3", "factor": 8.0}), model(), 8)
        self.assertEqual(style, "rotate_half")
        assert inv is not None
        self.assertEqual(inv.tolist(), [1.0, 2.0, 3.0, 4.0])
        self.assertEqual(rope_facts(cfg("qwen2", rope_parameters={"rope_type": "default"}), model(), 8)[1],
                         "rotate_half")
        for c, m, want in ((cfg("glm"), model(), "model_type glm"),
                           (cfg("llama", rope_scaling={"rope_type": "yarn", "factor": 4.0}), model(), "yarn"),
                           (cfg("phi3", rope_scaling={"type": "longrope"}), model(), "longrope"),
                           (cfg("llama", rope_scaling={"rope_type": "dynamic"}), model(), "dynamic"),
                           (cfg("phi3", partial_rotary_factor=0.5), model(), "partial_rotary_factor 0.5"),
                           (cfg("llama"), model(scaling=1.2), "attention_scaling 1.2"),
                           (cfg("llama"), model(n=2), "2 frequencies for head_dim 8"),
                           (cfg("llama"), nn.Linear(2, 2), "no rotary embedding")):
            inv, style = rope_facts(c, m, 8)
            self.assertIsNone(inv, want)
            self.assertIn(want, style)


if __name__ == "__main__":
    unittest.main()
