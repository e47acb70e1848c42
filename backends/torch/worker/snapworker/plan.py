"""The per-sequence cache layout, as computed on the Go side by compress.Policy.Plan and sent with each request.

Only slot_of, the spec's slot formula (compress.SlotOf), is computed here; every other number comes from Go, and
tests/test_plan.py checks slot_of and the prefill placement against a golden file written by the Go tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

# The methods of compress.Method the worker knows; every plan names one (cache.make_cache builds its cache).
METHODS = ("full", "streaming", "snapkv", "snapstream", "knorm", "kvquant", "h2o", "tova", "pyramidkv", "adakv")

_INT_FIELDS = ("prompt_len", "max_new", "capacity", "sinks", "ring", "topk", "lo", "hi", "valid_topk", "window",
               "kernel")
_BOOL_FIELDS = ("need_scores", "append_decode")


@dataclass(frozen=True)
class Plan:
    """The static layout of one sequence: [ sinks | ring | top-K | append (snapkv only) ] slots per layer/KV head."""

    prompt_len: int
    max_new: int
    capacity: int
    sinks: int
    ring: int
    topk: int
    lo: int
    hi: int
    valid_topk: int
    need_scores: bool
    window: int
    kernel: int
    append_decode: bool
    # The policy (compress.Policy) beyond the layout: its method, the base of pyramidkv and adakv, rerotate
    # (streaming, snapstream), evict (h2o, tova), kvquant's bits and group, pyramidkv's top-K per layer, adakv's
    # safeguard percentage, and the slots held per layer and KV head (Go's physSlots; 0: capacity).
    method: str = ""
    base: str = ""
    rerotate: bool = False
    evict: bool = False
    bits: int = 0
    group: int = 0
    layer_topk: Tuple[int, ...] = ()
    safeguard: int = 0
    slots: int = 0

    @classmethod
    def from_json(cls, d: Any) -> "Plan":
        """Reads a plan object of the protocol, naming the field that is missing or wrong."""
        if not isinstance(d, dict):
            raise ValueError("plan: want an object")
        vals: Dict[str, Any] = {}
        for f in _INT_FIELDS:
            v = d.get(f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"plan.{f}: want a non-negative integer, got {v!r}")
            vals[f] = v
        for f in _BOOL_FIELDS:
            v = d.get(f)
            if not isinstance(v, bool):
                raise ValueError(f"plan.{f}: want a boolean, got {v!r}")
            vals[f] = v
        method = d.get("method", "")  # absent (an older caller's plan): the layout alone, as SeqCache reads it
        if method not in METHODS + ("",):
            raise ValueError(f"plan.method: want one of {', '.join(METHODS)}, got {method!r}")
        vals["method"] = method
        base = d.get("base", "")
        if base not in ("", "snapkv", "snapstream"):
            raise ValueError(f"plan.base: want snapkv or snapstream, got {base!r}")
        vals["base"] = base
        for f in ("rerotate", "evict"):
            v = d.get(f, False)
            if not isinstance(v, bool):
                raise ValueError(f"plan.{f}: want a boolean, got {v!r}")
            vals[f] = v
        for f in ("bits", "group", "safeguard", "slots"):
            v = d.get(f, 0)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"plan.{f}: want a non-negative integer, got {v!r}")
            vals[f] = v
        lt = d.get("layer_topk", [])
        if not isinstance(lt, list) or any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in lt):
            raise ValueError(f"plan.layer_topk: want a list of non-negative integers, got {lt!r}")
        vals["layer_topk"] = tuple(lt)
        p = cls(**vals)
        p.check()
        return p

    def check(self) -> None:
        """Rejects layouts that cannot come from compress.Plan (blocks that do not fit the capacity)."""
        blocks = self.sinks + self.ring + self.topk + (self.max_new if self.append_decode else 0)
        if self.prompt_len < 1:
            raise ValueError("plan.prompt_len: must be positive")
        if blocks != self.capacity:
            raise ValueError(f"plan.capacity: {self.capacity} is not sinks+ring+topk(+max_new) = {blocks}")
        if not (self.lo <= self.hi <= self.prompt_len) or self.lo > self.sinks:
            raise ValueError(f"plan.lo/hi: [{self.lo}, {self.hi}) does not fit prompt {self.prompt_len}")
        if self.valid_topk > min(self.topk, self.hi - self.lo):
            raise ValueError(f"plan.valid_topk: {self.valid_topk} exceeds the top-K block or the candidates")
        if self.need_scores and (self.window < 1 or self.kernel < 1) and self.method not in ("knorm", "h2o", "tova"):
            raise ValueError("plan.window/kernel: must be positive when scores are needed")
        if self.slots and self.slots < self.capacity:
            raise ValueError(f"plan.slots: {self.slots} is less than the capacity {self.capacity}")
        if self.method == "kvquant" and (self.bits not in (2, 4, 8) or self.group < 1):
            raise ValueError(f"plan.bits/group: kvquant wants 2, 4 or 8 bits and a positive group, got {self.bits}/{self.group}")
        if self.method == "pyramidkv" and not self.layer_topk:
            raise ValueError("plan.layer_topk: pyramidkv needs the top-K of every layer")
        if self.rerotate and self.method not in ("streaming", "snapstream"):
            raise ValueError(f"plan.rerotate: only streaming and snapstream re-index positions, not {self.method}")
        if self.prompt_len - self.hi > self.ring:
            raise ValueError("plan.hi: more ring positions than ring slots")

    @property
    def held(self) -> int:
        """The slots held per layer and KV head (the pool row capacity a sequence needs)."""
        return self.slots or self.capacity

    @property
    def topk_base(self) -> int:
        """The first slot of the top-K block."""
        return self.sinks + self.ring

    def slot_of(self, p: int) -> int:
        """compress.SlotOf: the slot of position p when it is not a top-K position, -1 when it has none."""
        if p < 0:
            return -1
        if p < self.sinks:
            return p
        if self.append_decode and p >= self.prompt_len:
            if p - self.prompt_len >= self.max_new:
                return -1
            return self.sinks + self.ring + self.topk + (p - self.prompt_len)
        if self.ring == 0:
            return -1
        return self.sinks + (p - self.sinks) % self.ring

    def fixed_prefill(self) -> Tuple[List[int], List[int]]:
        """The kept prompt positions that do not depend on the selection (sinks [0, lo) and ring [hi, L)), with
        their slots, in ascending position order."""
        pos: List[int] = []
        slots: List[int] = []
        for p0, s0, n in self.fixed_runs():
            pos.extend(range(p0, p0 + n))
            slots.extend(range(s0, s0 + n))
        return pos, slots

    def fixed_runs(self) -> List[Tuple[int, int, int]]:
        """fixed_prefill as maximal runs (first position, first slot, length) over which position and slot both
        advance by one: the sinks, then the ring positions in at most two pieces (before and after the ring
        wraps), at most four in all; computed from the layout, not position by position."""
        out: List[Tuple[int, int, int]] = []

        def add(p0: int, s0: int, n: int) -> None:
            if n <= 0:
                return
            if out and out[-1][0] + out[-1][2] == p0 and out[-1][1] + out[-1][2] == s0:
                out[-1] = (out[-1][0], out[-1][1], out[-1][2] + n)
            else:
                out.append((p0, s0, n))

        add(0, 0, self.lo)  # lo <= sinks: slot p
        p = self.hi
        while p < self.prompt_len:
            if p < self.sinks:
                n = min(self.sinks, self.prompt_len) - p
            else:  # check() guarantees ring >= prompt_len - hi > 0 here
                n = min(self.prompt_len - p, self.ring - (p - self.sinks) % self.ring)
            add(p, self.slot_of(p), n)
            p += n
        return out

    def decode_slot(self, p: int) -> int:
        """The slot a decoded token at position p (p >= prompt_len) is written to; ValueError when it has none."""
        s = self.slot_of(p)
        if p < self.prompt_len or s < 0 or s >= self.capacity:
            raise ValueError(f"position {p} has no decode slot (prompt {self.prompt_len}, max new {self.max_new})")
        return s
