"""decode_attn=triton: the split-K decode attention kernel of the static step (splitk.py has its arithmetic).

Two Triton kernels per layer: _split over a grid of (pool row x KV head, split) writes each split's float32 partial
(m, l, acc) for the G query heads of its KV head (GQA handled natively: the pool's K/V are read in place, once per KV
head, never expanded), reading only the slots below the row's high-water mark; _merge combines the splits. Both take
only device tensors and shapes fixed per batch bucket, and nothing synchronises with the host, so a CUDA graph
captures them. Triton is imported on first use: on a machine without it (or without CUDA) available() says why and
nothing else here is touched.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import torch

from .splitk import LOG2E, num_splits

BLOCK = 64  # slots per block of a program's loop (a tensor-core product of [GP, D] x [D, BLOCK])

_kernels: Optional[Tuple[Any, Any]] = None
_error: Optional[str] = None
_sms: Dict[int, int] = {}


def available(device: Optional[torch.device] = None) -> Tuple[bool, str]:
    """Whether the kernels can run here (on device, when given: only a CUDA device), and why not."""
    global _error
    if not torch.cuda.is_available():
        return False, "no CUDA device"
    if device is not None and device.type != "cuda":
        return False, f"the model runs on {device}, not a CUDA device"
    if _kernels is None and _error is None:
        try:
            _build()
        except Exception as e:  # noqa: BLE001 - ImportError, or a Triton too old for the language used here
            _error = f"{type(e).__name__}: {e}"
    if _error is not None:
        return False, f"triton: {_error}"
    return True, ""


def _build() -> None:
    global _kernels
    from . import triton_kernels

    _kernels = (triton_kernels.split_kernel, triton_kernels.merge_kernel)


def sm_count(device: torch.device) -> int:
    """The device's multiprocessors (cached)."""
    i = device.index if device.index is not None else torch.cuda.current_device()
    if i not in _sms:
        _sms[i] = torch.cuda.get_device_properties(i).multi_processor_count
    return _sms[i]


def decode_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor, hwm: torch.Tensor,
                     scale: float, nsplit: int = 0) -> torch.Tensor:
    """q [b, KVH, G, D]; k, v [b, KVH, C, D] (last dimension contiguous, e.g. pool rows); valid [b, C] bool;
    hwm [b] int32 (one past each row's highest valid slot: splitk.high_water) -> [b, KVH, G, D] in q's dtype.
    nsplit 0 picks splitk.num_splits for the device."""
    ok, why = available()
    if not ok:
        raise RuntimeError(f"decode_attn=triton: {why}")
    assert _kernels is not None
    split_k, merge_k = _kernels
    b, kvh, g, d = q.shape
    c = k.shape[2]
    if d < 16 or d & (d - 1):
        raise ValueError(f"decode_attn=triton: head_dim {d}, want a power of two >= 16")
    if q.stride(-1) != 1:
        q = q.contiguous()
    if k.stride(-1) != 1 or v.stride(-1) != 1 or valid.stride(-1) != 1:
        raise ValueError("decode_attn=triton: K, V and the slot mask must be contiguous in their last dimension")
    gp = max(16, 1 << (g - 1).bit_length())
    ns = nsplit or num_splits(b, kvh, c, sm_count(q.device))
    mo = torch.empty(b * kvh * ns * g * d, dtype=torch.float32, device=q.device)
    mml = torch.empty(b * kvh * ns * 2 * gp, dtype=torch.float32, device=q.device)
    out = torch.empty(b, kvh, g, d, dtype=q.dtype, device=q.device)
    vu8 = valid.view(torch.uint8) if valid.dtype == torch.bool else valid
    ieee = q.dtype == torch.float32
    split_k[(b * kvh, ns)](q, k, v, vu8, hwm, mo, mml, q.stride(0), q.stride(1), q.stride(2), k.stride(0),
                           k.stride(1), k.stride(2), v.stride(0), v.stride(1), v.stride(2), vu8.stride(0),
                           float(scale * LOG2E), KVH=kvh, G=g, GP=gp, D=d, BLOCK_N=BLOCK, NSPLIT=ns, IEEE=ieee)
    merge_k[(b * kvh,)](mo, mml, out, out.stride(0), out.stride(1), out.stride(2), KVH=kvh, G=g, GP=gp, D=d,
                        NSPLIT=ns)
    return out
