"""Which cache class holds a sequence under its plan's policy (docs/policies.md): make_cache.

full, streaming, snapkv and snapstream (and a plan that names no method: its layout alone) are cache.SeqCache; the policies of issue #23 subclass it in modules of their
own, registered in CACHES by method (rerotate under "streaming+rerotate" and "snapstream+rerotate"). A method with
no class here is refused per request (unsupported), never run as another.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Type

import torch

from . import alloc
from .cache import SeqCache
from .evict import EvictCache
from .kvquant import QuantCache
from .plan import Plan
from .rerotate import RerotateCache

Storage = Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
Factory = Type[SeqCache]

CACHES: Dict[str, Factory] = {m: SeqCache for m in ("", "full", "streaming", "snapkv", "snapstream")}
CACHES.update({"kvquant": QuantCache, "streaming+rerotate": RerotateCache, "snapstream+rerotate": RerotateCache})
CACHES.update({"h2o": EvictCache, "tova": EvictCache})
CACHES.update(alloc.CACHES)  # knorm, pyramidkv, adakv


def _key(plan: Plan) -> str:
    return plan.method + ("+rerotate" if plan.rerotate else "")


def unsupported(plan: Plan, tp: int = 1, runner: Any = None) -> str:
    """Why this worker cannot hold a sequence under plan ("" when it can); with the engine's runner, also why its
    model cannot (a cache class's refusal(plan, runner), e.g. rerotate's RoPE check)."""
    if _key(plan) not in CACHES:
        what = f"{plan.method} with rerotate" if plan.rerotate else plan.method
        return f"policy method {what} is not implemented by this torch worker"
    if tp > 1 and plan.method == "adakv":
        return ("adakv allocates top-K slots across all KV heads of a layer, which tensor parallelism splits between "
                "ranks; run it with tp=1")
    refusal = getattr(CACHES[_key(plan)], "refusal", None)
    if runner is not None and refusal is not None:
        return str(refusal(plan, runner))
    return ""


def cache_class(plan: Plan) -> Factory:
    """The cache class of plan's policy (KeyError when unsupported says it has none)."""
    return CACHES[_key(plan)]


def make_cache(plan: Plan, runner: Any, storage: Storage = None, record_evictions: bool = False) -> SeqCache:
    """The cache of a sequence under plan for the engine's runner (its shape, dtype and device), in storage (pool
    views) or its own tensors, keeping its evictions when asked (SeqCache.record_evictions); ValueError when
    unsupported says it cannot be held."""
    why = unsupported(plan)
    if why:
        raise ValueError(why)
    r = runner
    cache = CACHES[_key(plan)](plan, r.layers, r.kv_heads, r.head_dim, r.dtype, r.device, storage=storage)
    cache.record_evictions = record_evictions
    cache.attach(runner)
    return cache
