#!/usr/bin/env python3
"""Decode and prefill speed of the torch worker at tp=1 and tp=N on one machine (issue #24: tp=2 / tp=1 >= 1.4).

Each tp runs in its own worker process (python -m snapworker --random-weights, the model of --model's config.json
made on the GPUs), driven over the line protocol with the full-cache policy:
  - decode: for each batch size B, B requests of --prompt random tokens and --new greedy tokens submitted at once;
    the decode rate counts the tokens of the steps where all B sequences decode (the tokens events of B tokens),
    from the second such step to the last, over the time between them;
  - prefill: one request of --prefill-len tokens, the worker's prefill_ms (after one warm-up request).
It prints a table (tok/s per tp and the ratio to tp=1), how each rank decoded (CUDA graph replays, eager steps, the
decode kernel per batch bucket: the log line each rank writes at shutdown) and writes the rows as JSON.

Usage: python3 tools/gpu/tp_bench.py --repo DIR --model tools/gpu/llama31-8b-shape --tp 2 --out FILE
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from typing import Any, Dict, List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tp_conformance import Worker, decode_reports  # noqa: E402


def full_plan(prompt_len: int, max_new: int) -> Dict[str, Any]:
    """The full-cache plan (compress.Plan of "full"): every prompt and generated token has a slot."""
    n = prompt_len + max_new
    return dict(prompt_len=prompt_len, max_new=max_new, capacity=n, sinks=n, ring=0, topk=0, lo=prompt_len,
                hi=prompt_len, valid_topk=0, need_scores=False, window=0, kernel=0, append_decode=False)


def decode_rate(w: Worker, vocab: int, batch: int, prompt: int, new: int, seed: int, timeout: float) -> Dict[str, Any]:
    """Runs batch requests at once; tokens per second over the steps where all of them decode."""
    rng = random.Random(seed)
    reqs = [{"id": seed * 1000 + i, "prompt": [rng.randrange(vocab) for _ in range(prompt)],
             "plan": full_plan(prompt, new), "max_new": new} for i in range(batch)]
    for r in reqs:
        w.submit(r)
    full_steps: List[float] = []
    done = 0
    t0 = time.perf_counter()
    while done < batch:
        ev = w.next(timeout)
        if ev["ev"] == "tokens" and len(ev["t"]) == batch:
            full_steps.append(time.perf_counter())
        elif ev["ev"] == "error":
            raise RuntimeError(f"request {ev['id']}: {ev['msg']}")
        elif ev["ev"] == "done":
            done += 1
    wall = time.perf_counter() - t0
    if len(full_steps) < 3:
        return {"batch": batch, "error": f"only {len(full_steps)} steps with all {batch} sequences decoding"}
    span = full_steps[-1] - full_steps[0]
    steps = len(full_steps) - 1
    return {"batch": batch, "prompt": prompt, "new": new, "steps": steps, "step_ms": 1000 * span / steps,
            "decode_tok_s": batch * steps / span, "wall_s": wall}


def prefill_ms(w: Worker, vocab: int, length: int, timeout: float) -> float:
    """The worker's prefill time of one prompt of length tokens (one new token)."""
    rng = random.Random(length)
    res = w.run([{"id": 900000 + length, "prompt": [rng.randrange(vocab) for _ in range(length)],
                  "plan": full_plan(length, 1), "max_new": 1}], False, timeout)
    ev = next(iter(res.values()))
    if ev["ev"] != "done":
        raise RuntimeError(f"prefill of {length}: {ev.get('msg')}")
    return float(ev["prefill_ms"])


def bench(opts: argparse.Namespace, tp: int) -> Dict[str, Any]:
    """Starts a worker at tp and measures it."""
    args = ["--model", os.path.abspath(opts.model), "--device", opts.device, "--dtype", opts.dtype, "--tp", str(tp),
            "--random-weights", "--max-batch", str(max(opts.batches)), "--prefill-tokens", str(opts.prefill_tokens),
            *opts.worker_args.split()]
    log = os.path.join(opts.logs, f"bench-tp{tp}.log")
    w = Worker(opts.python, opts.module, os.path.join(opts.repo, "backends", "torch", "worker"), args, log)
    out: Dict[str, Any] = {"tp": tp}
    try:
        t0 = time.perf_counter()
        ready = w.next(opts.timeout)
        out["load_s"] = time.perf_counter() - t0
        info = ready["info"]
        out["info"] = info
        vocab = int(info["vocab"])
        decode_rate(w, vocab, 1, 64, 8, 1, opts.timeout)  # warm-up: kernels, allocator
        out["decode"] = [decode_rate(w, vocab, b, opts.prompt, opts.new, 10 + b, opts.timeout) for b in opts.batches]
        prefill_ms(w, vocab, 512, opts.timeout)
        out["prefill_ms"] = prefill_ms(w, vocab, opts.prefill_len, opts.timeout)
        out["prefill_tok_s"] = opts.prefill_len / (out["prefill_ms"] / 1000)
    finally:
        out["exit"] = w.close()
        out["decode_report"] = decode_reports(log)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", required=True)
    ap.add_argument("--model", required=True, help="a directory with config.json (random weights of its shape)")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--tp", type=int, default=2)
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--prompt", type=int, default=1024)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--prefill-len", type=int, default=8192)
    ap.add_argument("--prefill-tokens", type=int, default=16384)
    ap.add_argument("--module", default="snapworker")
    ap.add_argument("--worker-args", default="", help="more worker arguments (e.g. '--cuda-graphs off')")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--out", required=True)
    opts = ap.parse_args()
    opts.batches = [int(b) for b in opts.batches.split(",")]
    opts.logs = os.path.dirname(os.path.abspath(opts.out))
    os.makedirs(opts.logs, exist_ok=True)
    runs = [bench(opts, 1), bench(opts, opts.tp)]
    base, par = runs
    print(f"model {opts.model} ({base['info'].get('params', 0) / 1e9:.2f} B parameters), {opts.dtype}, "
          f"{base['info'].get('gpu')} vs {par['info'].get('gpu')}; load {base['load_s']:.1f} s / {par['load_s']:.1f} s")
    print(f"| batch | prompt | new | tp=1 step ms | tp=1 tok/s | tp={opts.tp} step ms | tp={opts.tp} tok/s | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    ok = True
    for a, b in zip(base["decode"], par["decode"]):
        if "error" in a or "error" in b:
            print(f"| {a['batch']} | error: {a.get('error')} / {b.get('error')} |")
            ok = False
            continue
        ratio = b["decode_tok_s"] / a["decode_tok_s"]
        b["ratio"] = ratio
        print(f"| {a['batch']} | {a['prompt']} | {a['new']} | {a['step_ms']:.2f} | {a['decode_tok_s']:.1f} | "
              f"{b['step_ms']:.2f} | {b['decode_tok_s']:.1f} | {ratio:.2f} |")
    pr = par["prefill_tok_s"] / base["prefill_tok_s"]
    print(f"prefill of {opts.prefill_len} tokens: tp=1 {base['prefill_ms']:.0f} ms, tp={opts.tp} "
          f"{par['prefill_ms']:.0f} ms (ratio {pr:.2f})")
    for run in runs:
        for rank, d in sorted(run["decode_report"].items()):
            d = d or {}
            print(f"tp={run['tp']} rank {rank}: {d.get('replays', 0)} CUDA graph replays, {d.get('eager_steps', 0)} "
                  f"eager steps, graphs {d.get('graphs')}, kernels {d.get('decode_attn')}"
                  + (f", capture error: {d['graph_error']}" if d.get("graph_error") else ""))
    best = max((d.get("ratio", 0.0) for d in par["decode"]), default=0.0)
    print(f"decode tok/s tp={opts.tp} / tp=1: best {best:.2f} (target >= 1.4: {'met' if best >= 1.4 else 'NOT met'})")
    with open(opts.out, "w") as f:
        json.dump({"runs": runs, "prefill_ratio": pr, "best_decode_ratio": best}, f, indent=1)
    return 0 if ok and base["exit"] == 0 and par["exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
