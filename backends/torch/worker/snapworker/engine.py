"""Continuous batching over one model: sequences join and leave the decode batch at any step.

Each step packs, in one row of tokens, the next token of every decoding sequence and the whole prompt of the
sequences admitted in this step (prefill runs per sequence, inside the packed row, and compresses that sequence's
cache at its end), runs one forward, and samples one token per sequence from the logits of its last row. Sequences of
different policies and capacities decode together; each reads only its own slot cache.
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, FrozenSet, List, Optional, Protocol

import torch

from .attention import Segment, Step, set_step
from .cache import SeqCache
from .plan import Plan
from .sampling import Params, Sampler


class Runner(Protocol):
    """A model run over a packed row: the engine's view of transformers (hf.py) or of a test model."""

    layers: int
    kv_heads: int
    head_dim: int
    vocab: int
    dtype: torch.dtype
    device: torch.device

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """ids, positions [T] long; last [n] long row indices -> logits [n, V] at those rows."""
        ...


@dataclass
class Request:
    """One generation as the Go side submits it."""

    id: int
    prompt: List[int]
    plan: Plan
    max_new: int
    eos: FrozenSet[int] = frozenset()
    sampling: Params = Params()
    want_kept: bool = False
    want_logits: bool = False
    want_margins: bool = False


@dataclass
class _Seq:
    req: Request
    cache: SeqCache
    sampler: Sampler
    out: List[int] = field(default_factory=list)
    t_admit: float = 0.0
    t_first: float = 0.0
    logits: Optional[List[Optional[float]]] = None
    margins: List[float] = field(default_factory=list)


def is_oom(e: BaseException) -> bool:
    """Whether e is an out-of-memory error of the device (the step's sequences fail; the worker goes on)."""
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(e, oom)) or "out of memory" in str(e).lower()


def top2_margin(row: torch.Tensor) -> float:
    """The gap between the two largest logits of a row (how close greedy decoding was to another token)."""
    top = torch.topk(torch.nan_to_num(row.float(), nan=float("-inf")), 2).values.tolist()
    gap = top[0] - top[1]
    return gap if math.isfinite(gap) else 0.0


class Engine:
    """The scheduler. emit receives the events of the protocol (tokens, done, error) as dicts."""

    def __init__(self, runner: Runner, emit: Callable[[dict], None], max_batch: int = 32,
                 prefill_tokens: int = 16384) -> None:
        self.r = runner
        self.emit = emit
        self.max_batch = max(1, max_batch)
        self.prefill_tokens = max(1, prefill_tokens)
        self.waiting: Deque[Request] = deque()
        self.running: Dict[int, _Seq] = {}
        self.canceled: set = set()

    def busy(self) -> bool:
        """Whether a step has work to do."""
        return bool(self.waiting or self.running)

    def submit(self, req: Request) -> None:
        """Queues a request; a bad one is answered with an error event at once."""
        msg = self._invalid(req)
        if msg:
            self.emit({"ev": "error", "id": req.id, "kind": "request", "msg": msg})
            return
        self.waiting.append(req)

    def _invalid(self, req: Request) -> str:
        if req.id in self.running or any(w.id == req.id for w in self.waiting):
            return f"request {req.id} is already in flight"
        if len(req.prompt) != req.plan.prompt_len:
            return f"prompt of {len(req.prompt)} tokens, plan for {req.plan.prompt_len}"
        if req.max_new != req.plan.max_new:
            return f"max_new {req.max_new}, plan for {req.plan.max_new}"
        for i, t in enumerate(req.prompt):
            if not 0 <= t < self.r.vocab:
                return f"prompt token {t} (index {i}) outside the vocabulary of {self.r.vocab}"
        return ""

    def cancel(self, rid: int) -> None:
        """Ends a request early (finish "canceled"); unknown ids are ignored (it may have just finished)."""
        for w in list(self.waiting):
            if w.id == rid:
                self.waiting.remove(w)
                self.emit({"ev": "done", "id": rid, "finish": "canceled", "tokens": 0})
                return
        if rid in self.running:
            self.canceled.add(rid)

    def step(self) -> None:
        """Runs one forward over every running sequence and the newly admitted prompts."""
        for rid in list(self.canceled):
            s = self.running.pop(rid, None)
            if s is not None:
                self._done(s, "canceled")
        self.canceled.clear()
        decode = list(self.running.values())
        prefill = self._admit(len(decode))
        if not decode and not prefill:
            return
        ids: List[int] = []
        pos: List[int] = []
        segs: List[Segment] = []
        last: List[int] = []
        for s in decode:
            p = s.req.plan.prompt_len + len(s.out) - 1
            slot = s.cache.plan.decode_slot(p)
            s.cache.valid[slot] = True
            segs.append(Segment(s.cache, len(ids), 1, False, slot))
            ids.append(s.out[-1])
            pos.append(p)
            last.append(len(ids) - 1)
        for s in prefill:
            n = len(s.req.prompt)
            segs.append(Segment(s.cache, len(ids), n, True))
            ids.extend(s.req.prompt)
            pos.extend(range(n))
            last.append(len(ids) - 1)
        dev = self.r.device
        set_step(Step(segs))
        try:
            logits = self.r.forward(torch.tensor(ids, dtype=torch.long, device=dev),
                                    torch.tensor(pos, dtype=torch.long, device=dev),
                                    torch.tensor(last, dtype=torch.long, device=dev))
        except Exception as e:  # noqa: BLE001 - an OOM fails this step's sequences; anything else ends the worker
            if not is_oom(e):
                raise
            self._fail(decode + prefill, "oom", f"out of memory in a step of {len(ids)} tokens: {e}")
            return
        finally:
            set_step(None)
        for s in prefill:
            s.cache.mark_prefill()
        self._sample(decode + prefill, logits)

    def _admit(self, running: int) -> List[_Seq]:
        out: List[_Seq] = []
        budget = self.prefill_tokens
        while self.waiting and running + len(out) < self.max_batch:
            req = self.waiting[0]
            if out and len(req.prompt) > budget:
                break
            self.waiting.popleft()
            try:
                cache = SeqCache(req.plan, self.r.layers, self.r.kv_heads, self.r.head_dim, self.r.dtype,
                                 self.r.device)
            except Exception as e:  # noqa: BLE001
                if not is_oom(e):
                    raise
                self._release()
                self.emit({"ev": "error", "id": req.id, "kind": "oom",
                           "msg": f"out of memory allocating a cache of {req.plan.capacity} slots: {e}"})
                continue
            out.append(_Seq(req, cache, Sampler(req.sampling, self.r.device), t_admit=time.perf_counter()))
            budget -= len(req.prompt)
        return out

    def _sample(self, seqs: List[_Seq], logits: torch.Tensor) -> None:
        toks: List[List[int]] = []
        finished = []
        for s, row in zip(seqs, logits):
            first = not s.out and s.t_first == 0.0
            if first and s.req.want_logits:
                s.logits = [x if math.isfinite(x) else None for x in row.float().tolist()]
            if first and s.req.max_new == 0:
                s.t_first = time.perf_counter()
                finished.append((s, "length"))
                continue
            tok = s.sampler.sample(row)
            if s.req.want_margins:
                s.margins.append(top2_margin(row))
            if first:
                s.t_first = time.perf_counter()
            if tok in s.req.eos:
                finished.append((s, "stop"))
                continue
            s.out.append(tok)
            toks.append([s.req.id, tok])
            if len(s.out) >= s.req.max_new:
                finished.append((s, "length"))
            else:
                self.running[s.req.id] = s
        if toks:
            self.emit({"ev": "tokens", "t": toks})
        for s, why in finished:
            self.running.pop(s.req.id, None)
            self._done(s, why)

    def _done(self, s: _Seq, finish: str) -> None:
        now = time.perf_counter()
        ev: Dict[str, object] = {"ev": "done", "id": s.req.id, "finish": finish, "tokens": len(s.out),
                                 "prefill_ms": round((s.t_first - s.t_admit) * 1000, 3) if s.t_first else 0.0,
                                 "decode_ms": round((now - s.t_first) * 1000, 3) if s.t_first else 0.0,
                                 "kv_bytes": s.cache.nbytes}
        if s.req.want_kept and s.t_first:
            ev["kept"] = s.cache.kept()
        if s.logits is not None:
            ev["logits"] = s.logits
        if s.req.want_margins:
            ev["margins"] = s.margins
        if torch.cuda.is_available() and self.r.device.type == "cuda":
            ev["peak_bytes"] = int(torch.cuda.max_memory_allocated(self.r.device))
        self.emit(ev)

    def _fail(self, seqs: List[_Seq], kind: str, msg: str) -> None:
        for s in seqs:
            self.running.pop(s.req.id, None)
        self._release()
        for s in seqs:
            self.emit({"ev": "error", "id": s.req.id, "kind": kind, "msg": msg})

    def _release(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
