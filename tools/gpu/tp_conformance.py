#!/usr/bin/env python3
"""Conformance of the tensor-parallel torch worker (issue #24): tp=N against tp=1 and reference.json, in float32.

Each conformance checkpoint (backends/cpu/testdata/models) runs in the worker process at tp=1 and at tp=N, through
the line protocol the Go side speaks: every policy case of backends/torch/testdata/plans.json alone, then all of
them in flight together (each submitted after the previous one has decoded two tokens, so they join the decode
batch at different steps). Checks, in float32 (TF32 off):
  - kept positions per layer and KV head and the 24 greedy tokens equal reference.json, at tp=1 and at tp=N;
  - last prompt logits within 1e-4 relative (max-abs error over max-abs) of reference.json;
  - tp=N against tp=1: kept positions, greedy tokens and KV bytes equal, last logits within --tp-tol relative. The
    row-parallel projections (o_proj, down_proj) sum N partial dot products with one all-reduce instead of one
    long sum, which reorders float32 additions: each dot product may move by a few units in the last place, and the
    logits by ~1e-6 relative after a few layers; 1e-5 leaves an order of magnitude and still catches a wrong slice
    (which moves them by 1e-1 or more).
A checkpoint whose KV heads tp=N does not divide must be refused as a setup error (exit 2) naming tp.
With --random-model DIR (a config.json), random weights of that shape run at tp=1 and tp=N (the same weights: the
shard loader draws each full matrix from a seed of its name) and must agree with each other as above.
With --packed, each checkpoint also runs at tp=N with --static-decode off (no KV pool: every sequence its own cache,
decoded in the packed forward) and must agree with tp=1 (which runs the static decode over the pool) as above;
--random-args adds worker arguments to the random model's tp=N run only (the CPU tests run it packed that way).

The static decode (each rank's share of the KV pool, one batched forward per step) must run the same way on every
rank: the log line each rank writes at shutdown ("snapworker rank K: static decode {...}") must be there for every
rank, with the same eager steps, graph replays, graphs and kernels, and some steps decoded; on CUDA (unless
--cuda-graphs off is passed through --worker-args) every rank must have replayed CUDA graphs with no capture error.
The workers run concurrently (--jobs).

--set policies runs issue #23's policies instead: every case of backends/cpu/engine/testdata/policies-MODEL.json
(plans.json "policies"), whose kept positions, evictions (h2o, tova) and greedy tokens must equal the fixture at
tp=1 and tp=N, kvquant's last-step logits within 1e-3 relative; adakv, whose top-K slots move between all KV heads
of a layer, must be refused per request at tp=N (an error event naming tp=1).

Usage (GPU, transformers):  python3 tools/gpu/tp_conformance.py --repo DIR --device cuda:0 --tp 2 --out FILE
Usage (CPU, the tests):     ... --device cpu --module tests.tp_entry (minillama instead of transformers, gloo)
Exit status 0 when every check passes.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

REF_TOL = 1e-4
POLICY_TOL = 1e-3  # kvquant's last-step logits against the float64 fixture (docs/policies.md §17)


class WorkerFailed(Exception):
    """The worker ended or reported a fatal event."""


class Worker:
    """One worker process (python -m MODULE ARGS in the worker directory) driven over its line protocol."""

    def __init__(self, python: str, module: str, worker_dir: str, args: List[str], log: str,
                 env: Optional[Dict[str, str]] = None) -> None:
        self.log = open(log, "w")
        self.p = subprocess.Popen([python, "-m", module, *args], cwd=worker_dir, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=self.log, text=True,
                                  env=dict(os.environ if env is None else env, PYTHONUNBUFFERED="1",
                                           PYTHONDONTWRITEBYTECODE="1"))
        self.events: "queue.Queue[Optional[Dict[str, Any]]]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            if line.strip():
                self.events.put(json.loads(line))
        self.events.put(None)

    def next(self, timeout: float) -> Dict[str, Any]:
        """The next event; WorkerFailed when the worker ended or sent a fatal event."""
        try:
            ev = self.events.get(timeout=timeout)
        except queue.Empty:
            raise WorkerFailed(f"no event within {timeout:.0f} s") from None
        if ev is None:
            raise WorkerFailed(f"the worker ended (exit {self.p.wait()})")
        if ev["ev"] == "fatal":
            raise WorkerFailed(f"fatal {ev.get('kind')}: {ev['msg']}")
        return ev

    def submit(self, d: Dict[str, Any]) -> None:
        """Writes one submit command."""
        assert self.p.stdin is not None
        self.p.stdin.write(json.dumps(dict(d, op="submit")) + "\n")
        self.p.stdin.flush()

    def run(self, reqs: List[Dict[str, Any]], stagger: bool, timeout: float) -> Dict[int, Dict[str, Any]]:
        """Submits reqs (all at once, or each after the previous one's second token) and collects, per id, the done
        or error event with the tokens it generated."""
        out: Dict[int, Dict[str, Any]] = {}
        toks: Dict[int, List[int]] = {}
        pending = list(reqs)
        self.submit(pending.pop(0))
        while not stagger and pending:
            self.submit(pending.pop(0))
        last_id = reqs[0]["id"]
        while len(out) < len(reqs):
            ev = self.next(timeout)
            if ev["ev"] == "tokens":
                for rid, tok in ev["t"]:
                    toks.setdefault(rid, []).append(tok)
            elif ev["ev"] in ("done", "error"):
                out[ev["id"]] = dict(ev, generated=toks.get(ev["id"], []))
            if pending and (len(toks.get(last_id, [])) >= 2 or last_id in out):
                last_id = pending[0]["id"]
                self.submit(pending.pop(0))
        return out

    def kill(self) -> None:
        """Ends the worker at once (if it still runs) and closes its pipes and log."""
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        for f in (self.p.stdin, self.p.stdout):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        self.log.close()

    def close(self) -> int:
        """Shuts the worker down and returns its exit status."""
        try:
            assert self.p.stdin is not None
            self.p.stdin.write('{"op":"shutdown"}\n')
            self.p.stdin.close()
        except OSError:
            pass
        try:
            rc = self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self.log.close()
        return rc


def load(path: str) -> Any:
    with open(path) as f:
        return json.load(f)


def rel_err(a: List[Optional[float]], b: List[Optional[float]]) -> float:
    """max |a-b| / max |b| (inf when a value is missing)."""
    if len(a) != len(b) or any(x is None for x in a + b):
        return float("inf")
    den = max(abs(x) for x in b) or 1.0
    return max(abs(x - y) for x, y in zip(a, b)) / den


def decode_reports(log: str) -> Dict[int, Any]:
    """The static decode line of each rank in a worker log: rank -> StaticDecoder.describe() (None: "off")."""
    out: Dict[int, Any] = {}
    with open(log) as f:
        for m in re.finditer(r"snapworker rank (\d+): static decode (.*)$", f.read(), re.M):
            out[int(m.group(1))] = None if m.group(2).strip() == "off" else json.loads(m.group(2))
    return out


def run_model(opts: argparse.Namespace, model_dir: str, tp: int, plans: List[Dict[str, Any]], prompt: List[int],
              n_new: int, random: bool, tag: str, extra: Optional[List[str]] = None) -> Dict[str, Any]:
    """Runs every plan alone, then all together, at tp; returns the events by mode ("alone", "together"), the
    ready info ("info") and each rank's static decode report ("decode")."""
    args = ["--model", model_dir, "--device", opts.device, "--dtype", "float32", "--tp", str(tp), "--max-batch", "8",
            *opts.worker_args.split(), *(extra or [])]
    if random:
        args.append("--random-weights")
    log = os.path.join(opts.logs, f"{tag}-tp{tp}.log")
    w = Worker(opts.python, opts.module, opts.worker_dir, args, log)
    try:
        info = w.next(opts.timeout)
        if info["ev"] != "ready":
            raise WorkerFailed(f"first event {info['ev']}, want ready")
        reqs = [{"id": i + 1, "prompt": prompt, "plan": p["plan"], "max_new": n_new, "want_kept": True,
                 "want_logits": True, "want_margins": True} for i, p in enumerate(plans)]
        res: Dict[str, Any] = {"alone": {}}
        for r in reqs:
            res["alone"].update(w.run([r], False, opts.timeout))
        res["together"] = w.run([dict(r, id=r["id"] + 100) for r in reqs], True, opts.timeout)
        res["together"] = {k - 100: v for k, v in res["together"].items()}
    finally:
        rc = w.close()
    if rc != 0:
        raise WorkerFailed(f"{tag} at tp={tp}: the worker exited {rc} after shutdown (log {log})")
    res["info"] = info["info"]
    res["decode"] = decode_reports(log)
    return res


def check_decode(tag: str, tp: int, info: Dict[str, Any], reports: Dict[int, Any], cuda: bool) -> List[str]:
    """What is wrong with the ranks' static decode reports of one run ([] when nothing is)."""
    if not info.get("static_decode"):
        return [] if all(r is None for r in reports.values()) else [f"{tag} tp={tp}: static decode off, yet reported"]
    bad = []
    if sorted(reports) != list(range(tp)):
        return [f"{tag} tp={tp}: static decode reports from ranks {sorted(reports)}, want 0..{tp - 1}"]
    keys = ("eager_steps", "replays", "graphs", "decode_attn", "cuda_graphs")
    first = {k: reports[0][k] for k in keys}
    for r in range(1, tp):
        mine = {k: reports[r][k] for k in keys}
        if mine != first:
            bad.append(f"{tag} tp={tp}: rank {r} decoded differently from rank 0: {mine} vs {first}")
    if first["eager_steps"] + first["replays"] == 0:
        bad.append(f"{tag} tp={tp}: no step ran in the static decode")
    if cuda and info.get("cuda_graphs"):
        for r in range(tp):
            if reports[r]["graph_error"] or not reports[r]["replays"]:
                bad.append(f"{tag} tp={tp}: rank {r} replayed {reports[r]['replays']} CUDA graphs "
                           f"(capture error: {reports[r]['graph_error'] or 'none'})")
    return bad


def compare(rows: List[Dict[str, Any]], model: str, plans: List[Dict[str, Any]], got: Dict[str, Any],
            tp: int, ref: Optional[Dict[str, Any]], base: Optional[Dict[str, Any]], tp_tol: float,
            decode: str) -> bool:
    """Appends one row per policy and mode; False when a check fails."""
    ok = True
    for mode in ("alone", "together"):
        evs = got[mode]
        for i, p in enumerate(plans):
            ev = evs[i + 1]
            row: Dict[str, Any] = {"model": model, "tp": tp, "decode": decode, "mode": mode,
                                   "policy": p["spec"]}
            if tp > 1 and p["plan"].get("method") == "adakv":  # refused per request at tp > 1
                row["refused"] = ev["ev"] == "error" and "tp=1" in ev.get("msg", "")
                row["error"] = ev.get("msg", "")
                rows.append(row)
                ok = ok and row["refused"]
                continue
            if ev["ev"] != "done" or ev.get("finish") != "length":
                row["error"] = ev.get("msg") or ev.get("finish")
                rows.append(row)
                ok = False
                continue
            if ref is not None:
                case = ref["cases"][i]
                row["kept_eq_ref"] = ev["kept"] == case["kept"] and ev.get("evicted") == case.get("evicted")
                row["greedy_eq_ref"] = ev["generated"] == case["greedy"]
                if "logits_last" in ref:  # the shared reference: the prompt's logits
                    row["logits_rel_err_ref"] = rel_err(ev["logits"], ref["logits_last"])
                    tol = REF_TOL
                else:  # a policy fixture: the last step's, for kvquant only
                    row["logits_rel_err_ref"] = rel_err(ev["logits_last"], case["logits_last"]) \
                        if "logits_last" in case else 0.0
                    tol = POLICY_TOL
                ok = ok and row["kept_eq_ref"] and row["greedy_eq_ref"] and row["logits_rel_err_ref"] <= tol
            if base is not None:
                b = base[mode][i + 1]
                row["kept_eq_tp1"] = ev["kept"] == b["kept"]
                row["greedy_eq_tp1"] = ev["generated"] == b["generated"]
                row["logits_rel_err_tp1"] = rel_err(ev["logits"], b["logits"])
                row["kv_bytes_eq_tp1"] = ev["kv_bytes"] == b["kv_bytes"]  # the whole cache's, over the ranks
                ok = (ok and row["kept_eq_tp1"] and row["greedy_eq_tp1"] and row["logits_rel_err_tp1"] <= tp_tol
                      and row["kv_bytes_eq_tp1"])
            row["min_margin"] = min(ev.get("margins") or [0.0])
            rows.append(row)
    return ok


def expect_refusal(opts: argparse.Namespace, model_dir: str, tag: str) -> Dict[str, Any]:
    """Starts the worker at tp=N on a model whose KV heads N does not divide: it must exit 2 with a setup event."""
    w = Worker(opts.python, opts.module, opts.worker_dir, ["--model", model_dir, "--device", opts.device, "--dtype",
               "float32", "--tp", str(opts.tp)], os.path.join(opts.logs, f"{tag}-tp{opts.tp}-refusal.log"))
    msg = ""
    try:
        ev = w.next(opts.timeout)
        msg = f"unexpected {ev['ev']} event"
    except WorkerFailed as e:
        msg = str(e)
    rc = w.close()
    ok = rc == 2 and msg.startswith("fatal setup") and f"tp={opts.tp}" in msg
    return {"model": tag, "tp": opts.tp, "refused": ok, "exit": rc, "msg": msg}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", required=True, help="the repository (or the carried copy of its files)")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--tp", type=int, default=2)
    ap.add_argument("--module", default="snapworker", help="the worker module (tests.tp_entry: minillama on the CPU)")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--models", default="llama-gqa,qwen2-tied")
    ap.add_argument("--random-model", default="", help="a config.json directory: random weights, tp=N vs tp=1")
    ap.add_argument("--packed", action="store_true", help="also tp=N with --static-decode off, against tp=1")
    ap.add_argument("--random-args", default="", help="more worker arguments for the random model's tp=N run")
    ap.add_argument("--worker-args", default="", help="more worker arguments for every run (e.g. '--cuda-graphs off')")
    ap.add_argument("--jobs", type=int, default=8, help="workers run at once")
    ap.add_argument("--tp-tol", type=float, default=1e-5)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--set", default="shared", choices=("shared", "policies"),
                    help="the shared reference's six policies, or issue #23's policy fixtures")
    ap.add_argument("--out", required=True)
    opts = ap.parse_args()
    opts.worker_dir = os.path.join(opts.repo, "backends", "torch", "worker")
    opts.logs = os.path.dirname(os.path.abspath(opts.out))
    os.makedirs(opts.logs, exist_ok=True)
    policies = opts.set == "policies"
    fixtures = load(os.path.join(opts.repo, "backends", "torch", "testdata", "plans.json"))[
        "policies" if policies else "fixtures"]
    report: Dict[str, Any] = {"device": opts.device, "tp": opts.tp, "module": opts.module, "tp_tol": opts.tp_tol,
                              "set": opts.set,
                              "worker_args": opts.worker_args, "rows": [], "refusals": [], "info": {}, "decode": {},
                              "problems": []}
    t0 = time.time()
    gqa_ref = load(os.path.join(opts.repo, "backends", "cpu", "testdata", "models", "llama-gqa", "reference.json"))
    # Every run, started at once: (model, kind) -> a future of run_model's result (or of expect_refusal's).
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, opts.jobs))
    runs: Dict[Tuple[str, str], Any] = {}
    models: List[Tuple[str, str, Dict[str, Any], List[Dict[str, Any]], bool]] = []  # tag, dir, ref, plans, random
    for model in [m for m in opts.models.split(",") if m]:
        d = os.path.abspath(os.path.join(opts.repo, "backends", "cpu", "testdata", "models", model))
        cfg = load(os.path.join(d, "config.json"))
        kv = cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
        if kv % opts.tp:
            runs[(model, "refusal")] = pool.submit(expect_refusal, opts, d, model)
            continue
        ref_path = (os.path.join(opts.repo, "backends", "cpu", "engine", "testdata", f"policies-{model}.json")
                    if policies else os.path.join(d, "reference.json"))
        models.append((model, d, load(ref_path), fixtures[model], False))
    if opts.random_model and not policies:
        d = os.path.abspath(opts.random_model)
        models.append(("random:" + os.path.basename(d), d, gqa_ref, fixtures["llama-gqa"], True))
    for tag, d, ref, plans, random in models:
        name = tag.replace(":", "-")
        runs[(tag, "tp1")] = pool.submit(run_model, opts, d, 1, plans, ref["prompt_ids"], 24, random, name)
        runs[(tag, "tpN")] = pool.submit(run_model, opts, d, opts.tp, plans, ref["prompt_ids"], 24, random, name,
                                         opts.random_args.split() if random else [])
        if opts.packed and not random:
            runs[(tag, "packed")] = pool.submit(run_model, opts, d, opts.tp, plans, ref["prompt_ids"], 24, random,
                                                name + "-packed", ["--static-decode", "off"])
    ok = True
    for (tag, kind), fut in runs.items():
        if kind != "refusal":
            continue
        r = fut.result()
        report["refusals"].append(r)
        ok = ok and r["refused"]
        print(f"{tag}: tp={opts.tp} refused={r['refused']} (exit {r['exit']}): {r['msg']}")
    cuda = opts.device.startswith("cuda")
    for tag, d, ref, plans, random in models:
        try:
            base = runs[(tag, "tp1")].result()
            got = runs[(tag, "tpN")].result()
            packed = runs[(tag, "packed")].result() if (tag, "packed") in runs else None
        except WorkerFailed as e:
            report["problems"].append(f"{tag}: {e}")
            ok = False
            continue
        report["info"][tag] = {"tp1": base["info"], f"tp{opts.tp}": got["info"]}
        report["decode"][tag] = {"tp1": base["decode"], f"tp{opts.tp}": got["decode"]}
        problems = check_decode(tag, opts.tp, got["info"], got["decode"], cuda)
        if not random:
            ok = compare(report["rows"], tag, plans, base, 1, ref, None, opts.tp_tol,
                         "static" if base["info"].get("static_decode") else "packed") and ok
        decode = "static" if got["info"].get("static_decode") else "packed"
        ok = compare(report["rows"], tag, plans, got, opts.tp, None if random else ref, base, opts.tp_tol,
                     decode) and ok
        if packed is not None:
            report["info"][tag]["packed"] = packed["info"]
            problems += check_decode(tag + " packed", opts.tp, packed["info"], packed["decode"], cuda)
            ok = compare(report["rows"], tag, plans, packed, opts.tp, ref, base, opts.tp_tol, "packed") and ok
        report["problems"] += problems
        ok = ok and not problems
    pool.shutdown()
    report["pass"] = ok
    report["seconds"] = round(time.time() - t0, 1)
    cols = ["model", "tp", "decode", "mode", "policy", "kept_eq_ref", "greedy_eq_ref", "logits_rel_err_ref",
            "kept_eq_tp1", "greedy_eq_tp1", "logits_rel_err_tp1", "kv_bytes_eq_tp1", "min_margin", "refused", "error"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in report["rows"]:
        cells = [f"{r[c]:.2e}" if isinstance(r.get(c), float) and c != "min_margin" else
                 (f"{r[c]:.3g}" if c == "min_margin" and c in r else str(r.get(c, "-"))) for c in cols]
        print("| " + " | ".join(cells) + " |")
    for p in report["problems"]:
        print("PROBLEM:", p)
    for tag, by in report["decode"].items():
        for run, ranks in by.items():
            for rank, d in sorted(ranks.items()):
                print(f"{tag} {run} rank {rank} static decode: {json.dumps(d, sort_keys=True)}")
    print(f"TP CONFORMANCE tp={opts.tp} float32: {'PASS' if ok else 'FAIL'} ({report['seconds']} s)")
    with open(opts.out, "w") as f:
        json.dump(report, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
