"""Continuous batching over one model: sequences join and leave the decode batch at any step.

With a SlotPool (what the worker runs), every sequence's slot cache is a row (or, when it has more slots than a row,
consecutive rows) of tensors allocated once. A step first decodes the sequences held in single rows in one static
forward over pool rows [0, n) (static.StaticDecoder: one batched attention call per layer, replayed from a CUDA graph
per batch-size bucket on a GPU), whatever their policies and capacities; then it packs, in one row of tokens, the
next token of the sequences held in several rows and the whole prompt of the sequences admitted in this step
(prefill runs per sequence, inside the packed row, and compresses that sequence's cache at its end) and runs that
forward; then it samples one token per sequence (the greedy ones in one argmax over all rows). Without a pool every
sequence owns its cache and every step is the packed forward (the reference the static path is tested against).
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Deque, Dict, FrozenSet, List, Optional, Protocol

import torch

from .attention import Segment, Step, set_step
from .plan import Plan
from .policies import cache_class, make_cache, unsupported
from .pool import SlotPool
from .sampling import Params, Sampler
from .static import StaticDecoder


class Runner(Protocol):
    """A model run over a packed row: the engine's view of transformers (hf.py) or of a test model."""

    layers: int
    kv_heads: int
    head_dim: int
    vocab: int
    dtype: torch.dtype
    device: torch.device

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """ids, positions [T] long; last [n] long row indices -> logits [n, V] at those rows. It must not
        synchronise with the device (the static decode step is captured in a CUDA graph)."""
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
    last_row: Optional[torch.Tensor] = None  # want_logits: the logits row the latest token was sampled from
    margins: List[float] = field(default_factory=list)
    row: int = -1  # the first pool row it holds (-1: its own cache)
    nrows: int = 0


def is_oom(e: BaseException) -> bool:
    """Whether e is an out-of-memory error of the device (the step's sequences fail; the worker goes on). An error
    marked fatal (a tensor-parallel rank's, tp.RankFailure) is not one, whatever its message says."""
    if getattr(e, "fatal", False):
        return False
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    return (oom is not None and isinstance(e, oom)) or "out of memory" in str(e).lower()


def top2_margin(row: torch.Tensor) -> float:
    """The gap between the two largest logits of a row (how close greedy decoding was to another token)."""
    top = torch.topk(torch.nan_to_num(row.float(), nan=float("-inf")), 2).values.tolist()
    gap = top[0] - top[1]
    return gap if math.isfinite(gap) else 0.0


class Engine:
    """The scheduler. emit receives the events of the protocol (tokens, done, error) as dicts. With a pool, the
    sequences' caches live in it and single-row sequences decode in the static step (cuda_graphs: captured per
    bucket on a GPU; decode_attn: auto, sdpa, split or triton); without one, each sequence allocates its own cache."""

    def __init__(self, runner: Runner, emit: Callable[[dict], None], max_batch: int = 32,
                 prefill_tokens: int = 16384, pool: Optional[SlotPool] = None, cuda_graphs: bool = True,
                 decode_attn: str = "auto") -> None:
        self.r = runner
        self.emit = emit
        self.max_batch = max(1, max_batch)
        self.prefill_tokens = max(1, prefill_tokens)
        self.waiting: Deque[Request] = deque()
        self.running: Dict[int, _Seq] = {}
        self.canceled: set = set()
        self.pool = pool
        self.static = StaticDecoder(runner, pool, cuda_graphs, decode_attn) if pool is not None else None
        self.tp = 1  # the tensor-parallel world size (TPEngine sets it)

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
        if req.prompt and not 0 <= min(req.prompt) <= max(req.prompt) < self.r.vocab:  # C loops; then find it
            for i, t in enumerate(req.prompt):
                if not 0 <= t < self.r.vocab:
                    return f"prompt token {t} (index {i}) outside the vocabulary of {self.r.vocab}"
        why = unsupported(req.plan, self.tp, self.r)
        if why:
            return why
        if self.pool is not None and self.pool.rows_for(req.plan.held) > self.pool.rows:
            return (f"a cache of {req.plan.held} slots needs {self.pool.rows_for(req.plan.held)} rows of the "
                    f"KV pool's {self.pool.rows} rows of {self.pool.capacity} slots")
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

    def admit_prefilled(self, req: Request, first_token: int) -> bool:
        """Admits a request as if its prefill had run and sampled first_token: its cache keeps whatever its slots
        hold, with the slots a prefill fills marked valid and the first top-K candidates standing for the
        selection. For benchmarks of decode at long contexts (a decode step's work does not depend on the cache's
        values). False when there is no room now."""
        if self._invalid(req) or not 0 <= first_token < self.r.vocab:
            raise ValueError(f"admit_prefilled: request {req.id}: {self._invalid(req) or 'bad first token'}")
        s = self._place(req)
        if s is None:
            return False
        if not s.cache.static_ok:
            self._free(s)
            raise ValueError(f"admit_prefilled: request {req.id}: policy {req.plan.method} has no prefill to skip")
        plan = req.plan
        top = torch.arange(plan.lo, plan.lo + plan.valid_topk, device=self.r.device)[None, :]
        for layer in range(self.r.layers):
            s.cache.topk[layer] = top.expand(self.r.kv_heads, -1)
        s.cache.mark_prefill()
        s.out.append(first_token)
        s.t_first = time.perf_counter()
        if req.max_new <= 1:
            self._done(s, "length")
        else:
            self.running[req.id] = s
        return True

    def step(self) -> None:
        """Runs one engine step: the static decode of single-row pool sequences, then one packed forward over the
        other decoding sequences and the newly admitted prompts, then sampling."""
        for rid in list(self.canceled):
            s = self.running.pop(rid, None)
            if s is not None:
                self._done(s, "canceled")
        self.canceled.clear()
        static, eager = self._split(list(self.running.values()))
        seqs: List[_Seq] = []
        parts: List[torch.Tensor] = []
        if static:
            try:
                parts.append(self._static_step(static))
                seqs.extend(static)
            except Exception as e:  # noqa: BLE001 - an OOM fails this step's sequences; anything else ends the worker
                if not is_oom(e):
                    raise
                self._fail(static, "oom", f"out of memory in a decode step of {len(static)} sequences: {e}")
        prefill = self._admit(len(self.running))
        if eager or prefill:
            logits = self._packed_step(eager, prefill)
            if logits is not None:
                parts.append(logits)
                seqs.extend(eager + prefill)
        if parts:
            self._sample(seqs, parts[0] if len(parts) == 1 else torch.cat(parts))

    def _split(self, running: List[_Seq]) -> "tuple[List[_Seq], List[_Seq]]":
        """The sequences of the static step (single-row, packed into rows [0, n) first) and the others."""
        if self.static is None or not running:
            return [], running
        singles = [s for s in running if s.nrows == 1 and s.cache.static_ok]
        self._compact(singles)
        singles.sort(key=lambda s: s.row)
        if [s.row for s in singles] != list(range(len(singles))):
            return [], running  # other sequences hold low rows: everything runs packed this step
        return singles, [s for s in running if s.nrows != 1 or not s.cache.static_ok]

    def _compact(self, singles: List[_Seq]) -> None:
        """Moves the single-row sequences above row n-1 into the free rows below n (n = how many there are)."""
        assert self.pool is not None
        n = len(singles)
        holes = [r for r in range(n) if self.pool.owner[r] is None]
        high = sorted((s for s in singles if s.row >= n), key=lambda s: -s.row)
        for hole, s in zip(holes, high):
            self.pool.move(s.row, hole)
            s.row = hole
            s.cache.rebind(*self.pool.views(hole, 1, s.req.plan.held))

    def _static_step(self, seqs: List[_Seq]) -> torch.Tensor:
        assert self.static is not None
        toks, pos, slots = [], [], []
        for s in seqs:
            p = s.req.plan.prompt_len + len(s.out) - 1
            toks.append(s.out[-1])
            pos.append(p)
            slots.append(s.cache.plan.decode_slot(p))
        return self.static.decode(toks, pos, slots, max(s.req.plan.held for s in seqs))

    def _packed_step(self, decode: List[_Seq], prefill: List[_Seq]) -> Optional[torch.Tensor]:
        ids: List[int] = []
        pos: List[int] = []
        segs: List[Segment] = []
        last: List[int] = []
        for s in decode:
            p = s.req.plan.prompt_len + len(s.out) - 1
            s.cache.begin_decode(p)
            segs.append(Segment(s.cache, len(ids), 1, False))
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
            return None
        finally:
            set_step(None)
        for s in prefill:
            s.cache.end_prefill()
        return logits

    def _place(self, req: Request) -> Optional[_Seq]:
        """A sequence with its cache: pool rows (None when none are free now) or its own tensors."""
        r = self.r
        plan = req.plan
        if self.pool is not None:
            cap = plan.held
            # A sequence that decodes in the packed step takes high rows, so that the static step's stay [0, n).
            row = self.pool.alloc(req.id, cap, high=not cache_class(plan).static_ok)
            if row is None:
                return None
            k = self.pool.rows_for(cap)
            cache = make_cache(plan, r, storage=self.pool.views(row, k, cap), record_evictions=req.want_kept)
            return _Seq(req, cache, Sampler(req.sampling, r.device), t_admit=time.perf_counter(), row=row, nrows=k)
        cache = make_cache(plan, r, record_evictions=req.want_kept)
        return _Seq(req, cache, Sampler(req.sampling, r.device), t_admit=time.perf_counter())

    def _admit(self, running: int) -> List[_Seq]:
        out: List[_Seq] = []
        budget = self.prefill_tokens
        while self.waiting and running + len(out) < self.max_batch:
            req = self.waiting[0]
            if out and len(req.prompt) > budget:
                break
            try:
                s = self._place(req)
            except Exception as e:  # noqa: BLE001
                if not is_oom(e):
                    raise
                self.waiting.popleft()
                self._release()
                self.emit({"ev": "error", "id": req.id, "kind": "oom",
                           "msg": f"out of memory allocating a cache of {req.plan.held} slots: {e}"})
                continue
            if s is None:
                break  # no free pool rows: it waits for a sequence to finish
            self.waiting.popleft()
            out.append(s)
            budget -= len(req.prompt)
        return out

    def _sample(self, seqs: List[_Seq], logits: torch.Tensor) -> None:
        greedy = [i for i, s in enumerate(seqs) if s.sampler.gen is None]
        picks: Dict[int, int] = {}
        if greedy:
            rows = logits if len(greedy) == len(seqs) else logits[torch.tensor(greedy, device=logits.device)]
            for i, t in zip(greedy, torch.nan_to_num(rows.float(), nan=float("-inf")).argmax(-1).tolist()):
                picks[i] = t
        toks: List[List[int]] = []
        finished = []
        for i, (s, row) in enumerate(zip(seqs, logits)):
            first = not s.out and s.t_first == 0.0
            if first and s.req.want_logits:
                s.logits = [x if math.isfinite(x) else None for x in row.float().tolist()]
            if s.req.want_logits:
                s.last_row = row
            if first and s.req.max_new == 0:
                s.t_first = time.perf_counter()
                finished.append((s, "length"))
                continue
            tok = picks[i] if i in picks else s.sampler.sample(row)
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
            evicted = s.cache.evicted()
            if evicted is not None:
                ev["evicted"] = evicted
        if s.logits is not None:
            ev["logits"] = s.logits
        if s.last_row is not None:  # the last step's (the CPU engine's LastLogits; kvquant's fixtures compare them)
            ev["logits_last"] = [x if math.isfinite(x) else None for x in s.last_row.float().tolist()]
        if s.req.want_margins:
            ev["margins"] = s.margins
        if torch.cuda.is_available() and self.r.device.type == "cuda":
            ev["peak_bytes"] = int(torch.cuda.max_memory_allocated(self.r.device))
        self._free(s)
        self.emit(ev)

    def _free(self, s: _Seq) -> None:
        if self.pool is not None and s.row >= 0:
            self.pool.release(s.row, s.nrows)
            s.row = -1

    def _fail(self, seqs: List[_Seq], kind: str, msg: str) -> None:
        for s in seqs:
            self.running.pop(s.req.id, None)
            self._free(s)
        self._release()
        for s in seqs:
            self.emit({"ev": "error", "id": s.req.id, "kind": kind, "msg": msg})

    def _release(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
