"""kvquant in the worker (snapworker/kvquant.py): the quantizer bit for bit against compress/kvquant's reference
vectors (written by tools/policies/reference.py --vectors, the arithmetic the CPU engine's fixtures come from),
float16 saturation and zero-scale groups, and QuantCache's timing: prompt tail keys held until the decode step that
completes their group, that group quantized before the step attends, values quantized on write."""
from __future__ import annotations

import os
import unittest
from typing import List

import torch

from .support import REPO, load_json
from snapworker.cache import slot_attention
from snapworker.kvquant import QuantCache, dequantized_keys, dequantized_values, quantize
from snapworker.plan import Plan

VECTORS = os.path.join(REPO, "compress", "kvquant", "testdata", "vectors.json")


def half_bits(h: torch.Tensor) -> List[int]:
    """float16 tensor -> its IEEE bits as ints."""
    return [int(x) & 0xFFFF for x in h.contiguous().view(torch.int16).flatten().tolist()]


def f32(xs: List[float]) -> torch.Tensor:
    t = torch.tensor(xs, dtype=torch.float64)
    if not torch.equal(t.float().double(), t):
        raise AssertionError("input is not float32")
    return t.float()


class QuantizerVectorsTest(unittest.TestCase):
    def test_reference_vectors_bit_for_bit(self) -> None:
        cases = load_json(VECTORS)["cases"]
        self.assertGreaterEqual(len(cases), 6)
        for ci, c in enumerate(cases):
            bits, g, d = c["bits"], c["group"], c["d"]
            with self.subTest(case=ci, bits=bits, group=g, d=d):
                x = f32(c["keys"]["x"]).reshape(-1, d)  # n positions of one head: one key group, per channel
                deq, code, hs, hz = quantize(x, bits, dim=0)
                self.assertEqual(code.tolist(), c["keys"]["codes"])
                par = [v for pair in zip(half_bits(hs), half_bits(hz)) for v in pair]
                self.assertEqual(par, c["keys"]["par"])
                self.assertEqual(deq.double().flatten().tolist(), c["keys"]["deq"])
                if x.shape[0] == g:  # the cache's path: positions in groups of G
                    self.assertEqual(dequantized_keys(x[None], bits, g)[0].double().flatten().tolist(),
                                     c["keys"]["deq"])
                v = f32(c["values"]["x"])  # one token's value row, groups of G channels (the last narrower)
                par, codes = [], []
                for j in range(0, d, g):
                    _, cj, sj, zj = quantize(v[j:j + g], bits, dim=-1)
                    codes += cj.tolist()
                    par += [half_bits(sj)[0], half_bits(zj)[0]]
                self.assertEqual(codes, c["values"]["codes"])
                self.assertEqual(par, c["values"]["par"])
                got = dequantized_values(v[None], bits, g)[0]
                self.assertEqual(got.double().tolist(), c["values"]["deq"])

    def test_saturation_and_constant_groups(self) -> None:
        # A range beyond float16: the scale saturates at 65504 (not inf); a constant group gets code 0 and
        # dequantizes to fp16(mn).
        x = torch.tensor([[-1e9, 1e9], [0.3, 0.3]], dtype=torch.float32).t()  # columns: two groups along dim 0
        deq, code, hs, hz = quantize(x, 8, dim=0)
        self.assertEqual(half_bits(hs), [0x7BFF, 0])
        self.assertEqual(half_bits(hz)[0], 0xFBFF)  # -65504
        self.assertEqual(code[:, 1].tolist(), [0, 0])
        self.assertEqual(deq[:, 1].tolist(), [float(torch.tensor(0.3).half().float())] * 2)
        self.assertTrue(torch.isfinite(deq).all())


def kvquant_plan(prompt: int, max_new: int, bits: int, group: int) -> Plan:
    cap = prompt + max_new
    return Plan(prompt_len=prompt, max_new=max_new, capacity=cap, sinks=cap, ring=0, topk=0, lo=prompt, hi=prompt,
                valid_topk=0, need_scores=False, window=0, kernel=0, append_decode=False, method="kvquant",
                bits=bits, group=group, slots=cap)


class QuantCacheTest(unittest.TestCase):
    def test_group_completion_during_decode(self) -> None:
        torch.manual_seed(0)
        L, new, G, bits, kvh, h, d = 10, 8, 4, 4, 2, 4, 8
        plan = kvquant_plan(L, new, bits, G)
        c = QuantCache(plan, 1, kvh, d, torch.float32, torch.device("cpu"))
        k, v = torch.randn(kvh, L, d), torch.randn(kvh, L, d)
        c.prefill(0, torch.randn(h, L, d), k, v)
        c.end_prefill()
        # Two complete groups quantized, positions 8 and 9 held as they came; every value row quantized.
        self.assertTrue(torch.equal(c.k[0][:, :8], dequantized_keys(k[:, :8], bits, G)))
        self.assertTrue(torch.equal(c.k[0][:, 8:10], k[:, 8:]))
        self.assertTrue(torch.equal(c.v[0][:, :L], dequantized_values(v, bits, G)))
        self.assertEqual(c.kept(), [[list(range(L))] * kvh])
        raw = k.clone()
        for p in range(L, L + new):
            kn, vn, q = torch.randn(kvh, 1, d), torch.randn(kvh, 1, d), torch.randn(h, 1, d)
            raw = torch.cat([raw, kn], dim=1)
            c.begin_decode(p)
            out = c.decode(0, q, kn, vn, 0.5)
            a = (p + 1) // G * G  # positions before a are in complete groups
            want_k = torch.cat([dequantized_keys(raw[:, :a], bits, G), raw[:, a:]], dim=1)
            self.assertTrue(torch.equal(c.k[0][:, :p + 1], want_k), f"keys after position {p}")
            self.assertTrue(torch.equal(c.v[0][:, p], dequantized_values(vn[:, 0], bits, G)), f"value {p}")
            # Attention read the cache as it is after the step's quantization (the group completed by p included).
            want = slot_attention(q, c.k[0], c.v[0], c.valid, 0.5)
            self.assertTrue(torch.equal(out, want), f"attention at {p}")
            if (p + 1) % G == 0:
                self.assertFalse(torch.equal(c.k[0][:, p], kn[:, 0]), f"position {p} completes a group")
            else:
                self.assertTrue(torch.equal(c.k[0][:, p], kn[:, 0]), f"position {p} is held")

    def test_prompt_shorter_than_a_group(self) -> None:
        plan = kvquant_plan(3, 2, 8, 32)
        c = QuantCache(plan, 1, 1, 4, torch.float32, torch.device("cpu"))
        k, v = torch.randn(1, 3, 4), torch.randn(1, 3, 4)
        c.prefill(0, torch.randn(2, 3, 4), k, v)
        self.assertTrue(torch.equal(c.k[0][:, :3], k))  # no complete group: every key held
        self.assertTrue(torch.equal(c.v[0][:, :3], dequantized_values(v, 8, 32)))

    def test_rejects_a_layout_that_is_not_full(self) -> None:
        plan = Plan(prompt_len=10, max_new=2, capacity=6, sinks=2, ring=4, topk=0, lo=2, hi=10, valid_topk=0,
                    need_scores=False, window=0, kernel=0, append_decode=False, method="streaming")
        with self.assertRaises(ValueError):
            QuantCache(plan, 1, 1, 4, torch.float32, torch.device("cpu"))


if __name__ == "__main__":
    unittest.main()
