"""The split-K decode attention (decode_attn=triton): its arithmetic in plain torch (splitk.emulate: chunk bounds,
empty splits, masking, the online softmax and the merge) against the eager attention on this CPU; the kernel itself
against SDPA and the emulation on a GPU (test_static.TritonTest)."""
from __future__ import annotations

import unittest

import torch

from . import support  # noqa: F401 - puts the worker on sys.path
from snapworker import cache, splitk


def pools(seed: int, b: int, kvh: int, g: int, d: int, c: int, dtype: torch.dtype = torch.float32):
    """Random q, k, v and a slot mask with about a third of the slots invalid; row r % 4 ends at: slot 1, a third,
    every slot, no valid slot at all."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(b, kvh, g, d, generator=gen).to(dtype)
    k = torch.randn(b, kvh, c, d, generator=gen).to(dtype)
    v = torch.randn(b, kvh, c, d, generator=gen).to(dtype)
    valid = torch.rand(b, c, generator=gen) > 0.3
    valid[:, 0] = True
    for r in range(b):
        end = [1, c // 3, c, 0][r % 4]
        valid[r, end:] = False
    return q, k, v, valid


def eager(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor, scale: float) -> torch.Tensor:
    """The reference: float32 softmax attention per row (cache._attend_math), 0 for a row with no valid slot."""
    out = cache._attend_math(q.float(), k.float(), v.float(), valid[:, None, None, :], scale)
    return torch.where(valid.any(-1)[:, None, None, None], out, torch.zeros_like(out))


class SplitKTest(unittest.TestCase):
    def test_emulation_matches_the_eager_attention(self) -> None:
        cases = [  # b, kvh, g, d, capacity, splits, block
            (4, 2, 4, 16, 300, 1, 16),
            (4, 2, 4, 16, 300, 4, 16),
            (4, 1, 8, 32, 257, 8, 32),  # more splits than live blocks in the short rows: empty splits
            (5, 4, 1, 16, 64, 2, 64),  # one block a row
            (3, 2, 2, 8, 1000, 16, 16),
        ]
        for i, (b, kvh, g, d, c, ns, blk) in enumerate(cases):
            with self.subTest(case=i):
                q, k, v, valid = pools(i, b, kvh, g, d, c)
                scale = d ** -0.5
                got = splitk.emulate(q, k, v, valid, scale, ns, blk)
                want = eager(q, k, v, valid, scale)
                self.assertFalse(torch.isnan(got).any())
                self.assertLess(float((got - want).abs().max()), 1e-5)

    def test_half_precision_weights(self) -> None:
        # bfloat16 inputs: the weights are rounded to bfloat16 before the value product, as the kernel does.
        q, k, v, valid = pools(7, 4, 2, 4, 32, 200, torch.bfloat16)
        got = splitk.emulate(q, k, v, valid, 32 ** -0.5, 4, 16)
        want = eager(q, k, v, valid, 32 ** -0.5)
        self.assertEqual(got.dtype, torch.bfloat16)
        self.assertLess(float((got.float() - want).abs().max()), 2e-2)

    def test_high_water(self) -> None:
        valid = torch.tensor([[True, False, True, False], [False] * 4, [False, False, False, True]])
        self.assertEqual(splitk.high_water(valid).tolist(), [3, 0, 4])
        self.assertEqual(splitk.high_water(valid).dtype, torch.int32)

    def test_geometry(self) -> None:
        for hwm, ns, blk, per in [(4096, 32, 64, 128), (4097, 32, 64, 192), (1, 8, 64, 64), (0, 8, 64, 0),
                                  (100, 1, 64, 128)]:
            self.assertEqual(splitk.chunk(hwm, ns, blk), per, (hwm, ns, blk))
            self.assertGreaterEqual(per * ns, hwm)
        cases = [  # batch, kv heads, capacity, SMs -> splits
            (1, 8, 4352, 132, 17),  # 132 / 8 -> 32, but no split under 256 slots of the capacity
            (1, 8, 32768, 132, 32),
            (8, 8, 32768, 132, 4),
            (2, 8, 131072, 132, 16),
            (1, 8, 128, 132, 1),
            (64, 8, 4096, 132, 1),
        ]
        for b, kvh, c, sms, want in cases:
            self.assertEqual(splitk.num_splits(b, kvh, c, sms), want, (b, kvh, c, sms))

    def test_triton_is_refused_off_a_gpu(self) -> None:
        if torch.cuda.is_available():
            self.skipTest("a CUDA device is here: the GPU tests (test_static.TritonTest) run the kernel")
        from snapworker import triton_decode
        ok, why = triton_decode.available()
        self.assertFalse(ok)
        self.assertIn("no CUDA device", why)
        q, k, v, valid = pools(0, 1, 1, 1, 16, 16)
        with self.assertRaisesRegex(RuntimeError, "decode_attn=triton: no CUDA device"):
            cache.batched_slot_attention(q, k, v, valid, 0.25, "triton")


if __name__ == "__main__":
    unittest.main()
