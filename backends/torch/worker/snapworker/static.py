"""Static-shape decode: one forward over the sequences in pool rows [0, b), replayed from a CUDA graph per bucket.

The batch of n decoding sequences is padded to the bucket b >= n (1, 2, 4, 8, ... up to the pool's rows; the padding
tokens write slot 0 of free rows, whose outputs are dropped and whose masks are cleared when a sequence takes them).
The step's inputs (token, position and slot of each row) are copied into static device buffers with one
host-to-device copy from pinned memory, and the forward reads only those buffers, the pool and the weights: so the
forward of bucket b is captured once in a CUDA graph (torch.cuda.CUDAGraph; the buckets share one memory pool, which is safe because a
step's logits are read before the next replay) and every later step of that bucket replays it, whatever sequences sit in the rows: no re-tracing, no allocation, no host synchronisation inside the
step. On a CPU, or when capture fails (the reason is kept in graph_error), the same forward runs eagerly.

The decode attention kernel is chosen per bucket on a GPU ("auto"): the masked scaled_dot_product_attention, the
split matrix-product form (cache.split_attention) and, in bfloat16 or float16, the Triton split-K kernel
(triton_decode.py) are timed on the pool's own shapes and the fastest is captured. The Triton kernel is a candidate
only where Triton imports and its output matches SDPA's on random rows with invalid slots (max abs difference within
TRITON_TOL of the dtype, values of unit scale) at the bucket's split count; in float32 (the exactness runs) auto
keeps to sdpa and split, and triton runs only when asked for by name.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import torch

from .attention import StaticStep, set_step
from .cache import DECODE_ATTN, batched_slot_attention
from .pool import SlotPool
from .splitk import high_water

# TRITON_TOL[dtype]: the largest |triton - sdpa| the startup check accepts on random unit-scale q, k, v (bfloat16:
# both round the softmax weights and the output to 8 significant bits, about 4e-3 at 1.0; the bound leaves a factor
# of 5 and is still ten times below what a wrong mask, split bound or merge gives).
TRITON_TOL = {torch.bfloat16: 2e-2, torch.float16: 4e-3, torch.float32: 1e-4}


def buckets(rows: int) -> List[int]:
    """The batch sizes graphs are captured for: powers of two below rows, and rows."""
    out, b = [], 1
    while b < rows:
        out.append(b)
        b *= 2
    return out + [rows]


class StaticDecoder:
    """Runs decode steps of pooled sequences over static buffers, eagerly or from CUDA graphs."""

    def __init__(self, runner: Any, pool: SlotPool, cuda_graphs: bool = True, impl: str = "auto") -> None:
        if impl != "auto" and impl not in DECODE_ATTN:
            raise ValueError(f"decode attention {impl!r}: want auto or one of {DECODE_ATTN}")
        dev = runner.device
        if impl == "triton":
            from . import triton_decode
            ok, why = triton_decode.available(dev)
            if not ok:
                raise ValueError(f"decode attention triton cannot run here: {why}")
        self.r, self.pool = runner, pool
        self.bmax = pool.rows
        self.buckets = buckets(self.bmax)
        self.buf = torch.zeros(self.bmax, 3, dtype=torch.long, device=dev)  # token, position, slot per row
        self.stage = torch.zeros(self.bmax, 3, dtype=torch.long, pin_memory=dev.type == "cuda")
        self.rows = torch.arange(self.bmax, device=dev)
        self.true = torch.ones((), dtype=torch.bool, device=dev)
        self.cuda = dev.type == "cuda"
        self.graphs_on = cuda_graphs and self.cuda
        self.graphs: Dict[int, Tuple[Any, torch.Tensor]] = {}
        self.graph_error = ""
        self.mempool: Any = None
        self.impl = impl
        self.impl_for: Dict[int, str] = {}
        # impl_ms[b][impl]: milliseconds of one layer's decode attention of bucket b (the "auto" choice's timings).
        self.impl_ms: Dict[int, Dict[str, float]] = {}
        # triton_check[b]: the startup check of the Triton kernel for bucket b (max_err, tol, ok, or error).
        self.triton_check: Dict[int, Dict[str, Any]] = {}
        self.replays = 0
        self.eager_steps = 0

    def bucket(self, n: int) -> int:
        """The smallest bucket that holds n sequences."""
        for b in self.buckets:
            if b >= n:
                return b
        raise ValueError(f"{n} sequences exceed the pool's {self.bmax} rows")

    def decode(self, tokens: List[int], positions: List[int], slots: List[int], span: int) -> torch.Tensor:
        """Logits [n, V] of one step of the sequences in rows [0, n): row i feeds tokens[i] at positions[i], written
        at slots[i]. span is the most slots any of them holds (an eager step reads only those)."""
        n = len(tokens)
        b = self.bucket(n)
        if any(o is not None for o in self.pool.owner[n:b]):
            b = n  # a longer sequence holds rows above: no padding into them
        pad = [(0, 0, 0)] * (b - n)
        self.stage[:b] = torch.tensor(list(zip(tokens, positions, slots)) + pad, dtype=torch.long)
        self.buf[:b].copy_(self.stage[:b], non_blocking=True)
        impl = self._impl(b)
        if self.graphs_on and b in self.buckets:
            g = self.graphs.get(b) or self._capture(b, impl)
            if g is not None:
                g[0].replay()
                self.replays += 1
                return g[1][:n]
        self.eager_steps += 1
        return self._forward(b, span if not self.cuda else self.pool.capacity, impl)[:n]

    def _forward(self, b: int, span: int, impl: str) -> torch.Tensor:
        rows, slots = self.rows[:b], self.buf[:b, 2]
        p = self.pool
        p.valid.index_put_((rows, slots), self.true)
        flat = ((rows[:, None] * p.kv_heads + p.heads[None, :]) * p.capacity + slots[:, None]).view(-1)
        hwm = high_water(p.valid[:b, :span]) if impl == "triton" else None
        set_step(StaticStep(p, rows, slots, span, impl, flat, hwm))
        try:
            return self.r.forward(self.buf[:b, 0], self.buf[:b, 1], rows)
        finally:
            set_step(None)

    def _capture(self, b: int, impl: str) -> Optional[Tuple[Any, torch.Tensor]]:
        """Captures bucket b's forward (after one eager warm-up run with the step's own inputs, whose writes the
        replay repeats); on failure turns graphs off, keeps the reason and returns None."""
        first: List[BaseException] = []  # what failed inside the capture (ending it then fails too)
        try:
            if self.mempool is None:
                self.mempool = torch.cuda.graph_pool_handle()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                self._forward(b, self.pool.capacity, impl)
            torch.cuda.current_stream().wait_stream(side)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g, pool=self.mempool):
                try:
                    out = self._forward(b, self.pool.capacity, impl)
                except BaseException as e:
                    first.append(e)
                    raise
            self.graphs[b] = (g, out)
            return self.graphs[b]
        except Exception as e:  # noqa: BLE001 - any capture failure falls back to eager steps
            root = first[0] if first else e
            if not isinstance(root, Exception):
                raise root  # an interruption (a time limit), not a failure of the capture
            self.graphs_on = False
            self.graph_error = f"bucket {b}: {type(root).__name__}: {root}"
            self.graphs.clear()
            return None

    def _impl(self, b: int) -> str:
        """The decode attention kernel of bucket b: the one asked for, sdpa on a CPU, else the faster of both."""
        if b in self.impl_for:
            return self.impl_for[b]
        impl = self.impl
        if impl == "auto":
            impl = self._tune(b) if self.cuda else "sdpa"
        self.impl_for[b] = impl
        return impl

    def _tune(self, b: int) -> str:
        """Times each candidate kernel on layer 0's rows [0, b) with random queries and every slot valid; ties and
        any failure go to sdpa. triton is a candidate only in half precision and after passing _check_triton."""
        p = self.pool
        g = self.r.q_heads // p.kv_heads if hasattr(self.r, "q_heads") else 1
        q = torch.randn(b, p.kv_heads, g, p.head_dim, dtype=p.dtype, device=p.device)
        valid = torch.ones(b, p.capacity, dtype=torch.bool, device=p.device)
        hwm = high_water(valid)
        k, v = p.k[0][:b], p.v[0][:b]
        ms: Dict[str, float] = {}
        for impl in DECODE_ATTN:
            if impl == "triton" and (p.dtype == torch.float32 or not self._check_triton(b, g)):
                continue
            try:
                for _ in range(2):
                    batched_slot_attention(q, k, v, valid, 0.1, impl, hwm)
                t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                t0.record()
                for _ in range(5):
                    batched_slot_attention(q, k, v, valid, 0.1, impl, hwm)
                t1.record()
                t1.synchronize()
                ms[impl] = t0.elapsed_time(t1) / 5
            except Exception:  # noqa: BLE001
                continue
        self.impl_ms[b] = ms
        if not ms:
            return "sdpa"
        return min(ms, key=lambda k_: (ms[k_], k_ != "sdpa"))

    def _check_triton(self, b: int, g: int) -> bool:
        """The Triton kernel against SDPA on b random rows of min(capacity, 4096) slots (about a third invalid,
        rows with their high-water mark at 1, a third and all of the slots) at the split count of the pool's real
        shape; keeps the result in triton_check[b]."""
        from . import triton_decode
        from .splitk import num_splits

        p = self.pool
        tol = TRITON_TOL[p.dtype]
        res: Dict[str, Any] = {"tol": tol}
        self.triton_check[b] = res
        ok, why = triton_decode.available(p.device)
        if not ok:
            res.update(ok=False, error=why)
            return False
        try:
            c = min(p.capacity, 4096)
            gen = torch.Generator(device=p.device)
            gen.manual_seed(b)
            shape = (b, p.kv_heads, c, p.head_dim)
            q = torch.randn(b, p.kv_heads, g, p.head_dim, generator=gen, device=p.device).to(p.dtype)
            k = torch.randn(shape, generator=gen, device=p.device).to(p.dtype)
            v = torch.randn(shape, generator=gen, device=p.device).to(p.dtype)
            valid = torch.rand(b, c, generator=gen, device=p.device) > 0.3
            valid[:, 0] = True
            ends = [1, c // 3, c]
            for r in range(b):
                valid[r, ends[r % 3]:] = False
            ns = num_splits(b, p.kv_heads, p.capacity, triton_decode.sm_count(p.device))
            scale = 1.0 / p.head_dim ** 0.5
            got = triton_decode.decode_attention(q, k, v, valid, high_water(valid), scale, nsplit=ns)
            want = batched_slot_attention(q, k, v, valid, scale, "sdpa")
            err = float((got.float() - want.float()).abs().max())
            res.update(ok=err <= tol, max_err=err, splits=ns)
            del q, k, v
            return err <= tol
        except Exception as e:  # noqa: BLE001 - a kernel that fails to compile or run is not a candidate
            res.update(ok=False, error=f"{type(e).__name__}: {e}")
            return False

    def describe(self) -> Dict[str, Any]:
        """What ran: graphs captured, replays, eager steps, the kernel per bucket and its timings."""
        return {"cuda_graphs": self.graphs_on, "graph_error": self.graph_error, "graphs": sorted(self.graphs),
                "replays": self.replays, "eager_steps": self.eager_steps,
                "decode_attn": {str(k): v for k, v in sorted(self.impl_for.items())},
                "decode_attn_ms": {str(k): v for k, v in sorted(self.impl_ms.items())},
                "triton_check": {str(k): v for k, v in sorted(self.triton_check.items())}}
