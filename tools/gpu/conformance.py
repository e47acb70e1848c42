#!/usr/bin/env python3
"""Conformance of the torch backend's worker through Hugging Face transformers on a GPU (issue #20).

For both shared checkpoints (backends/cpu/testdata/models: llama-gqa, qwen2-tied), loaded by transformers with the
worker's attention function, in float32 with TF32 off: every policy case's kept positions per layer and KV head and
its 24 greedy tokens must equal reference.json, and the last prompt logits must agree within 1e-4 relative
(max-abs over max-abs); alone and with all six policies in flight together. In bfloat16: the agreement of each kept
set with the float32 run, and how many greedy tokens follow the reference. Plans come from
backends/torch/testdata/plans.json (written by the Go tests from package compress).

Usage: python3 tools/gpu/conformance.py --repo DIR --device cuda:0 --out results.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List


def load(path: str) -> Any:
    with open(path) as f:
        return json.load(f)


def run_cases(runner: Any, prompt: List[int], plans: List[Dict[str, Any]], greedy_len: int, together: bool) -> Dict[int, Any]:
    from snapworker.engine import Engine, Request
    from snapworker.plan import Plan

    events: Dict[int, Dict[str, Any]] = {}
    tokens: Dict[int, List[int]] = {}

    def emit(ev: Dict[str, Any]) -> None:
        if ev["ev"] == "tokens":
            for rid, tok in ev["t"]:
                tokens.setdefault(rid, []).append(tok)
        elif ev["ev"] in ("done", "error"):
            events[ev["id"]] = ev

    reqs = [Request(id=i, prompt=prompt, plan=Plan.from_json(p["plan"]), max_new=greedy_len, want_kept=True,
                    want_logits=True, want_margins=True) for i, p in enumerate(plans)]
    if together:
        eng = Engine(runner, emit, max_batch=len(reqs))
        for r in reqs:  # join at different steps
            eng.submit(r)
            eng.step()
            eng.step()
        while eng.busy():
            eng.step()
    else:
        for r in reqs:
            eng = Engine(runner, emit, max_batch=1)
            eng.submit(r)
            while eng.busy():
                eng.step()
    out = {}
    for i in range(len(reqs)):
        ev = events[i]
        out[i] = {"event": ev, "tokens": tokens.get(i, [])}
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.repo, "backends", "torch", "worker"))
    import torch
    import transformers
    from snapworker import attention as attn_mod
    from snapworker.hf import HFRunner

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    plans = load(os.path.join(args.repo, "backends", "torch", "testdata", "plans.json"))["fixtures"]
    report: Dict[str, Any] = {"torch": torch.__version__, "transformers": transformers.__version__,
                              "gpu": torch.cuda.get_device_name(0), "models": {}}
    ok = True
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {report['gpu']}")
    print("| model | dtype | mode | policy | kept = ref | greedy = ref | logits rel err | min margin | kept = fp32 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model in ("llama-gqa", "qwen2-tied"):
        d = os.path.join(args.repo, "backends", "cpu", "testdata", "models", model)
        ref = load(os.path.join(d, "reference.json"))
        want_logits = ref["logits_last"]
        den = max(abs(x) for x in want_logits)
        fp32_kept: Dict[int, Any] = {}
        rows = []
        for dtype_name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            t0 = time.time()
            runner = HFRunner(d, args.device, dtype, False)
            load_s = time.time() - t0
            for together in (False, True):
                if dtype_name == "bfloat16" and together:
                    continue
                res = run_cases(runner, ref["prompt_ids"], plans[model], 24, together)
                for i, case in enumerate(ref["cases"]):
                    ev, toks = res[i]["event"], res[i]["tokens"]
                    spec = plans[model][i]["spec"]
                    if ev["ev"] != "done":
                        ok = False
                        rows.append({"policy": spec, "dtype": dtype_name, "error": ev})
                        print(f"| {model} | {dtype_name} | {'together' if together else 'alone'} | {spec} | error: {ev} |")
                        continue
                    kept_ok = ev["kept"] == case["kept"]
                    greedy_ok = toks == case["greedy"]
                    agree = 0
                    for a, b in zip(toks, case["greedy"]):
                        if a != b:
                            break
                        agree += 1
                    rel = max(abs(a - b) for a, b in zip(ev["logits"], want_logits)) / den
                    mm = min(ev.get("margins") or [0.0])
                    if dtype_name == "float32" and not together:
                        fp32_kept[i] = ev["kept"]
                    same_fp32 = None
                    if dtype_name == "bfloat16":
                        pairs = [(a, b) for la, lb in zip(ev["kept"], fp32_kept.get(i, [])) for a, b in zip(la, lb)]
                        same = sum(1 for a, b in pairs if a == b)
                        inter = sum(len(set(a) & set(b)) for a, b in pairs)
                        union = sum(len(set(a) | set(b)) for a, b in pairs)
                        same_fp32 = {"identical_lists": f"{same}/{len(pairs)}", "jaccard": inter / union if union else 1.0}
                    row = {"policy": spec, "dtype": dtype_name, "together": together, "kept_equal": kept_ok,
                           "greedy_equal": greedy_ok, "greedy_prefix": agree, "logits_rel_err": rel, "min_margin": mm,
                           "kept_vs_fp32": same_fp32, "load_s": load_s}
                    rows.append(row)
                    if dtype_name == "float32" and not (kept_ok and greedy_ok and rel <= 1e-4):
                        ok = False
                    print(f"| {model} | {dtype_name} | {'together' if together else 'alone'} | {spec} | {kept_ok} | "
                          f"{greedy_ok} ({agree}/24) | {rel:.2e} | {mm:.3g} | "
                          f"{same_fp32['identical_lists'] + ' J=' + format(same_fp32['jaccard'], '.4f') if same_fp32 else '-'} |")
            del runner
            torch.cuda.empty_cache()
        report["models"][model] = rows
    report["attention_masks_seen"] = attn_mod.masks_seen
    report["pass_float32"] = ok
    print(f"attention masks built by transformers: {attn_mod.masks_seen} (want 0)")
    print("CONFORMANCE float32:", "PASS" if ok else "FAIL")
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
