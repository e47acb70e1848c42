"""python -m snapworker bench --spec SPEC.json --out RESULT.json: the measurements of `snapeval bench --backend torch`.

The Go side writes the spec: the model, and a list of figures, each with its plans (computed by package compress),
sizes, rounds and a time limit. This module runs them in order in one process, on the worker's real engine (the
Engine with a SlotPool, its static decode step and CUDA graphs, exactly what `snapeval run --backend torch` runs),
and returns raw timings; the Go side computes medians, ratios and the verdicts against the targets. Each figure is
measured on its own: a failure (an exception, out of memory, its time limit, the deadline) is recorded in that
figure and the next one runs. The result file is rewritten after every figure, so a run that is killed keeps what it
measured.

Decode figures at long contexts admit their sequences with Engine.admit_prefilled (the cache holds random values;
the work of a decode step does not depend on them), so that no 128k prefill is needed to time a decode step; the
prefill figures run real prefills. Ratios come from rounds in which the compared sides alternate.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import signal
import sys
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

import torch

from .engine import Engine, Request
from .plan import Plan
from .pool import SlotPool


def round_slots(capacity: int) -> int:
    """capacity rounded up to a multiple of 256."""
    return -(-capacity // 256) * 256


class FigureTimeout(BaseException):
    """A figure ran past its time limit (a BaseException, so that no `except Exception` on the way, such as a CUDA
    graph capture's fallback, swallows it)."""


class Sink:
    """An emit callback that keeps the done and error events."""

    def __init__(self) -> None:
        self.done: Dict[int, Dict[str, Any]] = {}
        self.errors: Dict[int, Dict[str, Any]] = {}

    def __call__(self, ev: Dict[str, Any]) -> None:
        if ev["ev"] == "done":
            self.done[ev["id"]] = ev
        elif ev["ev"] == "error":
            self.errors[ev["id"]] = ev


class Bench:
    """Runs the figures of a spec on a runner (hf: the transformers side, None where transformers is absent)."""

    def __init__(self, runner: Any, spec: Dict[str, Any], out: str, hf: Optional["HFSide"] = None,
                 log: Callable[[str], None] = lambda s: None, t_start: Optional[float] = None) -> None:
        self.r = runner
        self.spec = spec
        self.out = out
        self.hf = hf
        self.log = log
        self.cuda = runner.device.type == "cuda"
        self.t_start = time.monotonic() if t_start is None else t_start  # the deadline counts from here
        self.deadline = float(spec.get("deadline_s") or 0)
        self.gen = torch.Generator().manual_seed(int(spec.get("seed", 0)))
        self.result: Dict[str, Any] = {"info": {}, "figures": {}, "order": []}

    # ---- helpers

    def now(self) -> float:
        """perf_counter after the device has finished its queued work."""
        if self.cuda:
            torch.cuda.synchronize(self.r.device)
        return time.perf_counter()

    def reset_memory(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.synchronize(self.r.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.r.device)

    def peak(self) -> int:
        return int(torch.cuda.max_memory_allocated(self.r.device)) if self.cuda else 0

    def prompt(self, n: int) -> List[int]:
        return torch.randint(0, self.r.vocab, (n,), generator=self.gen).tolist()

    def pool(self, rows: int, capacity: int, storage: Any = None, fill: bool = True) -> SlotPool:
        """A pool of rows of at least capacity slots, rounded up to a multiple of 256 as the worker's own pool is
        (the split decode kernel sums its values in chunks of 256 slots)."""
        p = SlotPool(self.r.layers, self.r.kv_heads, self.r.head_dim, rows, round_slots(capacity), self.r.dtype,
                     self.r.device, storage=storage)
        if fill and storage is None:
            p.k.normal_(0, 1, generator=None)
            p.v.normal_(0, 1, generator=None)
        return p

    def engine(self, pool: SlotPool, fig: Dict[str, Any], sink: Sink, prefill_tokens: int = 16384) -> Engine:
        return Engine(self.r, sink, max_batch=pool.rows, prefill_tokens=prefill_tokens, pool=pool,
                      cuda_graphs=bool(fig.get("cuda_graphs", True)), decode_attn=str(fig.get("decode_attn", "auto")))

    def admit(self, eng: Engine, plan: Plan, n: int, first_id: int = 1) -> None:
        """n sequences of plan admitted as if prefilled (their prompts are random tokens)."""
        for i in range(n):
            req = Request(id=first_id + i, prompt=self.prompt(plan.prompt_len), plan=plan, max_new=plan.max_new)
            if not eng.admit_prefilled(req, int(torch.randint(0, self.r.vocab, (1,), generator=self.gen))):
                raise RuntimeError(f"no pool row for sequence {i + 1} of {n}")

    def steps_ms(self, eng: Engine, steps: int) -> float:
        """Milliseconds per engine step over `steps` steps (the engine's own host work included)."""
        want = len(eng.running)
        t0 = self.now()
        for _ in range(steps):
            eng.step()
        ms = (self.now() - t0) * 1000 / steps
        if len(eng.running) != want:
            raise RuntimeError(f"{want - len(eng.running)} sequences ended during a timed round (max_new too small)")
        return ms

    def save(self) -> None:
        self.result["elapsed_s"] = round(time.monotonic() - self.t_start, 3)
        tmp = self.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.result, f, indent=1, allow_nan=False, default=str)
        os.replace(tmp, self.out)

    # ---- the run

    def run(self) -> Dict[str, Any]:
        """Runs every figure of the spec and returns (and saves) the result."""
        self.result["info"] = self.info()
        self.save()
        for fig in self.spec["figures"]:
            fid = str(fig["id"])
            self.result["order"].append(fid)
            self.result["figures"][fid] = self.figure(fig)
            self.save()
        return self.result

    def figure(self, fig: Dict[str, Any]) -> Dict[str, Any]:
        fid, kind = str(fig["id"]), str(fig["kind"])
        run = getattr(self, "fig_" + kind, None)
        if run is None:
            return {"ok": False, "error": f"unknown figure kind {kind!r}"}
        limit = float(fig.get("limit_s") or 0)
        if self.deadline:
            left = self.deadline - (time.monotonic() - self.t_start)
            if left < float(fig.get("min_s", 5)):
                return {"ok": False, "skipped": True, "error": f"skipped: {left:.0f} s left before the deadline"}
            limit = min(limit, left) if limit else left
        self.log(f"bench: {fid} ({kind}, limit {limit:.0f} s)")
        self.reset_memory()
        t0 = time.monotonic()
        res: Dict[str, Any]
        old = None
        if limit > 0 and hasattr(signal, "setitimer"):
            def on_alarm(signum: int, frame: Any) -> None:
                raise FigureTimeout(f"time limit of {limit:.0f} s")
            old = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            res = run(fig)
            res["ok"] = True
        except FigureTimeout as e:
            res = {"ok": False, "error": str(e)}
        except Exception as e:  # noqa: BLE001 - one figure's failure is reported and the run goes on
            res = {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=6)}
        finally:
            if old is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old)
        res["elapsed_s"] = round(time.monotonic() - t0, 3)
        res.setdefault("peak_bytes", self.peak())
        res["spec"] = {k: v for k, v in fig.items() if not isinstance(v, (dict, list))}
        if self.hf is not None:
            try:
                self.hf.use_snapeval()
            except Exception as e:  # noqa: BLE001 - the next figures would measure the wrong attention: say so
                res["ok"], res["error"] = False, f"switching back to the snapeval attention: {e}"
        self.reset_memory()
        self.log(f"bench: {fid}: {'ok' if res['ok'] else res.get('error')} in {res['elapsed_s']:.1f} s")
        return res

    def info(self) -> Dict[str, Any]:
        r = self.r
        d: Dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version(),
                             "device": str(r.device), "dtype": str(r.dtype).replace("torch.", ""),
                             "elem_bytes": torch.empty((), dtype=r.dtype).element_size(), "layers": r.layers,
                             "kv_heads": r.kv_heads, "head_dim": r.head_dim, "vocab": r.vocab,
                             "tf32": bool(torch.backends.cuda.matmul.allow_tf32)}
        if hasattr(r, "info"):
            d.update(r.info())
        else:
            d["weight_bytes"] = d["weight_bytes_read"] = sum(
                p.numel() * p.element_size() for p in r.model.parameters())
        if self.cuda:
            d["cuda"] = torch.version.cuda
            d["gpu"] = torch.cuda.get_device_name(r.device)
            free, total = torch.cuda.mem_get_info(r.device)
            d["device_memory_bytes"], d["free_bytes"] = int(total), int(free)
            d["sm_count"] = torch.cuda.get_device_properties(r.device).multi_processor_count
        if self.hf is not None:
            d["transformers"] = self.hf.version
        return d

    # ---- figures

    def fig_bandwidth(self, fig: Dict[str, Any]) -> Dict[str, Any]:
        """A device-to-device copy of a large buffer: bytes read plus written per second, a few samples."""
        n = int(fig.get("mib", 1024)) << 20
        reps, samples = int(fig.get("reps", 10)), int(fig.get("samples", 3))
        src = torch.empty(n, dtype=torch.uint8, device=self.r.device)
        src.random_(0, 255)
        dst = torch.empty_like(src)
        for _ in range(2):
            dst.copy_(src)
        gbs = []
        for _ in range(samples):
            t0 = self.now()
            for _ in range(reps):
                dst.copy_(src)
            gbs.append(2 * n * reps / (self.now() - t0) / 1e9)
        return {"bytes": n, "reps": reps, "gbs": gbs}

    def fig_decode(self, fig: Dict[str, Any]) -> Dict[str, Any]:
        """One sequence decoding at a context: engine step time per round; on a GPU also the graph replay alone."""
        plan = Plan.from_json(fig["plan"])
        sink = Sink()
        eng = self.engine(self.pool(1, plan.capacity), fig, sink)
        self.admit(eng, plan, 1)
        for _ in range(int(fig.get("warmup", 3))):
            eng.step()
        live0 = int(eng.pool.valid.sum()) if eng.pool is not None else 0
        rounds = [self.steps_ms(eng, int(fig["steps"])) for _ in range(int(fig["rounds"]))]
        live1 = int(eng.pool.valid.sum()) if eng.pool is not None else 0
        out: Dict[str, Any] = {"context": plan.prompt_len, "capacity": plan.capacity, "step_ms": rounds,
                               "live_slots_mean": (live0 + live1) / 2, "slot_bytes": eng.pool.slot_bytes if eng.pool else 0}
        if eng.static is not None:
            out["static"] = eng.static.describe()
            g = eng.static.graphs.get(1)
            if g is not None:
                reps = int(fig["steps"])
                t0 = self.now()
                for _ in range(reps):
                    g[0].replay()
                out["replay_ms"] = (self.now() - t0) * 1000 / reps
        return out

    def fig_flat(self, fig: Dict[str, Any]) -> Dict[str, Any]:
        """One sequence per context (same policy), the contexts alternating in every round."""
        engines = []
        for c in fig["contexts"]:
            plan = Plan.from_json(c["plan"])
            eng = self.engine(self.pool(1, plan.capacity), fig, Sink())
            self.admit(eng, plan, 1)
            for _ in range(int(fig.get("warmup", 3))):
                eng.step()
            engines.append((plan, eng))
        rounds = []
        for _ in range(int(fig["rounds"])):
            rounds.append({str(p.prompt_len): self.steps_ms(e, int(fig["steps"])) for p, e in engines})
        return {"contexts": [p.prompt_len for p, _ in engines], "capacity": [p.capacity for p, _ in engines],
                "kv_bytes": [next(iter(e.running.values())).cache.nbytes for _, e in engines], "rounds": rounds,
                "static": [e.static.describe() for _, e in engines if e.static is not None]}

    def fig_table5(self, fig: Dict[str, Any]) -> Dict[str, Any]:
        """Both sides' batches over the same KV memory (one storage viewed as each side's pool), alternating."""
        sides = []
        numel = 0
        for s in fig["sides"]:
            plan = Plan.from_json(s["plan"])
            numel = max(numel, int(s["batch"]) * round_slots(plan.capacity) * self.r.layers * self.r.kv_heads *
                        self.r.head_dim)
            sides.append((str(s["side"]), int(s["batch"]), plan))
        k = torch.empty(numel, dtype=self.r.dtype, device=self.r.device).normal_()
        v = torch.empty(numel, dtype=self.r.dtype, device=self.r.device).normal_()
        engines = []
        for name, batch, plan in sides:
            pool = self.pool(batch, plan.capacity, storage=(k, v))
            eng = self.engine(pool, fig, Sink())
            self.admit(eng, plan, batch)
            for _ in range(int(fig.get("warmup", 3))):
                eng.step()
            engines.append((name, batch, plan, eng))
        rounds = []
        for _ in range(int(fig["rounds"])):
            rounds.append({name: self.steps_ms(eng, int(fig["steps"])) for name, _, _, eng in engines})
        return {"storage_bytes": 2 * numel * k.element_size(), "rounds": rounds,
                "sides": [{"side": name, "batch": batch, "capacity": plan.capacity, "prompt": plan.prompt_len,
                           "kv_bytes_seq": next(iter(eng.running.values())).cache.nbytes,
                           "static": eng.static.describe() if eng.static is not None else {}}
                          for name, batch, plan, eng in engines]}

    def fig_vs_transformers(self, fig: Dict[str, Any]) -> Dict[str, Any]:
        """Decode tokens per second against transformers' generate with its default dynamic cache, same model
        object, per (batch, context); per round each side builds its cache, measures and frees it (both at once
        may not fit)."""
        out = []
        for c in fig["configs"]:
            plan = Plan.from_json(c["plan"])
            b, steps = int(c["batch"]), int(fig["steps"])
            row: Dict[str, Any] = {"batch": b, "context": plan.prompt_len, "rounds": [], "peak_bytes": {}}
            try:
                for _ in range(int(fig["rounds"])):
                    rd: Dict[str, float] = {}
                    self.reset_memory()
                    sink = Sink()
                    eng = self.engine(self.pool(b, plan.capacity), fig, sink)
                    self.admit(eng, plan, b)
                    for _ in range(int(fig.get("warmup", 2))):
                        eng.step()
                    rd["snapeval_ms"] = self.steps_ms(eng, steps)
                    row["peak_bytes"]["snapeval"] = self.peak()
                    if eng.static is not None:
                        row["static"] = eng.static.describe()
                    del eng, sink
                    if self.hf is not None:
                        self.reset_memory()
                        rd["transformers_ms"] = self.hf.generate_ms(b, plan.prompt_len, steps,
                                                                    int(fig.get("warmup", 2)), self)
                        row["peak_bytes"]["transformers"] = self.peak()
                    row["rounds"].append(rd)
            except FigureTimeout:
                raise
            except Exception as e:  # noqa: BLE001 - one configuration's failure (e.g. out of memory) is its own
                row["error"] = f"{type(e).__name__}: {e}"
            if self.hf is None:
                row["transformers_error"] = "transformers is not installed here"
            out.append(row)
            self.reset_memory()
        return {"configs": out}

    def fig_prefill(self, fig: Dict[str, Any]) -> Dict[str, Any]:
        """Real prefills of one prompt under each plan (and transformers' own forward), alternating per round."""
        plans = {name: Plan.from_json(p) for name, p in fig["plans"].items()}
        n = int(fig["prompt"])
        if any(p.prompt_len != n for p in plans.values()):
            raise ValueError(f"prefill: plans are not for a {n}-token prompt")
        prompt = self.prompt(n)
        sink = Sink()
        pool = self.pool(1, max(p.capacity for p in plans.values()), fill=False)
        eng = self.engine(pool, fig, sink, prefill_tokens=n)
        rid = [0]
        peaks: Dict[str, int] = {}
        kv: Dict[str, int] = {}

        def ours(name: str) -> float:
            rid[0] += 1
            self.reset_memory()
            t0 = self.now()
            eng.submit(Request(id=rid[0], prompt=prompt, plan=plans[name], max_new=plans[name].max_new))
            while eng.busy():
                eng.step()
            ms = (self.now() - t0) * 1000
            if rid[0] in sink.errors:
                raise RuntimeError(f"{name} prefill: {sink.errors[rid[0]]['msg']}")
            peaks[name] = max(peaks.get(name, 0), self.peak())
            kv[name] = int(sink.done[rid[0]]["kv_bytes"])
            return ms

        def theirs() -> float:
            assert self.hf is not None
            self.reset_memory()
            ms = self.hf.forward_ms(prompt, self)
            peaks["transformers"] = max(peaks.get("transformers", 0), self.peak())
            return ms

        sides: List[str] = list(plans)
        with_hf = bool(fig.get("transformers")) and self.hf is not None
        for _ in range(int(fig.get("warmup", 1))):
            for name in sides:
                ours(name)
            if with_hf:
                theirs()
        rounds = []
        for i in range(int(fig["rounds"])):
            rd: Dict[str, float] = {}
            for name in (sides if i % 2 == 0 else sides[::-1]):
                rd[name] = ours(name)
            if with_hf:
                rd["transformers"] = theirs()
            rounds.append(rd)
        res: Dict[str, Any] = {"prompt": n, "rounds": rounds, "side_peak_bytes": peaks, "kv_bytes": kv,
                               "capacity": {k: p.capacity for k, p in plans.items()}}
        if fig.get("transformers") and self.hf is None:
            res["transformers_error"] = "transformers is not installed here"
        return res

    def fig_profile(self, fig: Dict[str, Any]) -> Dict[str, Any]:
        """torch.profiler tables (top operators and kernels by device time) of decode steps (from the graph and
        eager) and of one prefill."""
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.cuda else [])
        out: Dict[str, Any] = {}
        plan = Plan.from_json(fig["decode_plan"])
        eng = self.engine(self.pool(1, plan.capacity), fig, Sink())
        self.admit(eng, plan, 1)
        for _ in range(3):
            eng.step()
        modes = [("decode_graph", True), ("decode_eager", False)] if eng.static and eng.static.graphs else \
            [("decode_eager", False)]
        for name, graphs in modes:
            assert eng.static is not None
            keep = eng.static.graphs_on
            eng.static.graphs_on = graphs
            eng.step()
            with profile(activities=acts) as prof:
                for _ in range(3):
                    eng.step()
                self.now()
            eng.static.graphs_on = keep
            out[name] = profile_summary(prof, 3)
        del eng
        self.reset_memory()
        pplan = Plan.from_json(fig["prefill_plan"])
        sink = Sink()
        eng = self.engine(self.pool(1, pplan.capacity, fill=False), fig, sink, prefill_tokens=pplan.prompt_len)
        prompt = self.prompt(pplan.prompt_len)
        with profile(activities=acts) as prof:
            eng.submit(Request(id=1, prompt=prompt, plan=pplan, max_new=pplan.max_new))
            while eng.busy():
                eng.step()
            self.now()
        out["prefill"] = profile_summary(prof, 1)
        out["prefill_prompt"] = pplan.prompt_len
        out["decode_context"] = plan.prompt_len
        return out


def _time_key(e: Any, self_time: bool) -> float:
    for a in (("self_device_time_total", "self_cuda_time_total") if self_time else
              ("device_time_total", "cuda_time_total")):
        if hasattr(e, a):
            try:
                return float(getattr(e, a))
            except Exception:  # noqa: BLE001
                continue
    return 0.0


def profile_summary(prof: Any, per: int, rows: int = 25) -> Dict[str, Any]:
    """The profiler's table sorted by device time and the top entries as data (microseconds per step)."""
    table = ""
    for key in ("self_device_time_total", "self_cuda_time_total", "device_time_total", "cuda_time_total",
                "self_cpu_time_total"):
        try:
            table = prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=70)
            break
        except Exception:  # noqa: BLE001
            continue
    evs = sorted(prof.key_averages(), key=lambda e: -_time_key(e, True))[:rows]
    top = [{"name": e.key, "count": int(e.count), "self_device_us": _time_key(e, True) / per,
            "cpu_us": float(getattr(e, "cpu_time_total", 0.0)) / per} for e in evs]
    return {"table": table, "top": top}


class HFSide:
    """transformers' own paths on the same model object: the forward with attn_implementation="sdpa" and
    use_cache=False, and generate with its default dynamic cache."""

    def __init__(self, runner: Any, chunk_ctl: Optional[Dict[str, int]] = None) -> None:
        import transformers

        self.r = runner
        self.model = runner.model
        self.version = transformers.__version__
        self.chunk_ctl = chunk_ctl
        self.attn = "snapeval"

    def _switch(self, name: str) -> None:
        if self.attn == name:
            return
        m = self.model
        setter = getattr(m, "set_attn_implementation", None)
        if setter is not None:
            try:
                setter(name)
            except Exception:  # noqa: BLE001 - set the config fields directly below
                pass
        if getattr(m.config, "_attn_implementation", None) != name:
            seen = set()
            for mod in m.modules():
                cfg = getattr(mod, "config", None)
                if cfg is not None and id(cfg) not in seen:
                    seen.add(id(cfg))
                    if hasattr(cfg, "_attn_implementation_internal"):
                        cfg._attn_implementation_internal = name
                    else:
                        cfg._attn_implementation = name
        if getattr(m.config, "_attn_implementation", name) != name:
            raise RuntimeError(f"could not switch the model to attn_implementation={name}")
        self.attn = name

    def use_sdpa(self) -> None:
        """transformers' own attention (and the MLPs unchunked)."""
        self._switch("sdpa")
        if self.chunk_ctl is not None:
            self.chunk_ctl["chunk"] = 0

    def use_snapeval(self) -> None:
        """Back to the worker's attention function."""
        from .hf import ATTN_NAME

        self._switch(ATTN_NAME)
        if self.chunk_ctl is not None:
            self.chunk_ctl["chunk"] = self.chunk_ctl.get("default", 0)

    def forward_ms(self, prompt: List[int], bench: Bench) -> float:
        """One forward of the prompt (logits of the last position only), in milliseconds."""
        self.use_sdpa()
        try:
            ids = torch.tensor([prompt], dtype=torch.long, device=self.r.device)
            with torch.no_grad():
                t0 = bench.now()
                self.model(input_ids=ids, use_cache=False, logits_to_keep=1)
                return (bench.now() - t0) * 1000
        finally:
            self.use_snapeval()

    def _cache(self, batch: int, context: int) -> Any:
        from transformers import DynamicCache

        try:
            cache = DynamicCache(config=self.model.config)
        except TypeError:
            cache = DynamicCache()
        shape = (batch, self.r.kv_heads, context, self.r.head_dim)
        for layer in range(self.r.layers):
            k = torch.randn(shape, dtype=self.r.dtype, device=self.r.device)
            v = torch.randn(shape, dtype=self.r.dtype, device=self.r.device)
            cache.update(k, v, layer)
        return cache

    def generate_ms(self, batch: int, context: int, steps: int, warmup: int, bench: Bench) -> float:
        """Milliseconds per generated token of greedy generate over a dynamic cache that already holds `context`
        random tokens per sequence (every generated token is a one-token decode step)."""
        self.use_sdpa()
        try:
            ids = torch.randint(0, self.r.vocab, (batch, context + 1), generator=bench.gen).to(self.r.device)
            mask = torch.ones_like(ids)
            kw = dict(do_sample=False, num_beams=1, pad_token_id=0, use_cache=True)
            if warmup > 0:
                cache = self._cache(batch, context)
                with torch.no_grad():
                    self.model.generate(input_ids=ids, attention_mask=mask, past_key_values=cache,
                                        max_new_tokens=warmup, min_new_tokens=warmup, **kw)
                del cache
            cache = self._cache(batch, context)
            with torch.no_grad():
                t0 = bench.now()
                out = self.model.generate(input_ids=ids, attention_mask=mask, past_key_values=cache,
                                          max_new_tokens=steps, min_new_tokens=steps, **kw)
                ms = (bench.now() - t0) * 1000 / steps
            if out.shape[1] != context + 1 + steps:
                raise RuntimeError(f"generate made {out.shape[1] - context - 1} tokens, asked for {steps}")
            del cache, out
            return ms
        finally:
            self.use_snapeval()


def fatal(out: str, msg: str) -> int:
    """Writes a result that says only why nothing was measured (a setup problem) and returns exit status 2."""
    with open(out, "w") as f:
        json.dump({"fatal": msg, "figures": {}, "order": []}, f)
    print(f"bench: {msg}", file=sys.stderr, flush=True)
    return 2


def main(argv: Optional[List[str]] = None) -> int:
    """Loads the model the spec names (random weights made on the device, or a checkpoint) and runs the bench."""
    t0 = time.monotonic()
    ap = argparse.ArgumentParser(prog="snapworker bench")
    ap.add_argument("--spec", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    with open(args.spec) as f:
        spec = json.load(f)

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    py = f"Python {platform.python_version()} at {sys.executable}"
    try:
        import transformers
    except ImportError as e:
        return fatal(args.out, f"{py} cannot import transformers ({e}): pip install 'transformers>=4.56'")
    from .hf import HFRunner, Refused

    transformers.logging.set_verbosity_error()
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[spec["dtype"]]
    if dtype == torch.float32:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    device = spec.get("device", "cuda:0")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return fatal(args.out, f"torch {torch.__version__} sees no CUDA device (device={device})")
        torch.cuda.set_device(torch.device(device).index or 0)
    log(f"bench: loading {spec['model']} ({'random weights' if spec.get('random_weights') else 'checkpoint'}, "
        f"{spec['dtype']}, {device})")
    try:
        runner = HFRunner(spec["model"], device, dtype, bool(spec.get("random_weights")),
                          mlp_chunk=int(spec.get("mlp_chunk", 32768)))
    except Refused as e:
        return fatal(args.out, str(e))
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        return fatal(args.out, f"loading {spec['model']}: {type(e).__name__}: {e}")
    hf = HFSide(runner, runner.mlp_ctl)
    bench = Bench(runner, spec, args.out, hf=hf, log=log, t_start=t0)
    bench.result["load_s"] = round(time.monotonic() - t0, 3)
    log(f"bench: model loaded in {bench.result['load_s']:.1f} s")
    bench.run()
    return 0
