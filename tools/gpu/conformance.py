#!/usr/bin/env python3
"""Conformance of the torch backend's worker through Hugging Face transformers on a GPU (issues #20 and #23).

For both shared checkpoints (backends/cpu/testdata/models: llama-gqa, qwen2-tied), loaded by transformers with the
worker's attention function, in float32 with TF32 off: every policy case's kept positions per layer and KV head and
its 24 greedy tokens must equal reference.json, and the last prompt logits must agree within 1e-4 relative
(max-abs over max-abs); alone and with all six policies in flight together. In bfloat16: the agreement of each kept
set with the float32 run, and how many greedy tokens follow the reference. Plans come from
backends/torch/testdata/plans.json (written by the Go tests from package compress).

--set policies checks issue #23's policies instead (rerotate, knorm, kvquant, h2o, tova, pyramidkv, adakv) against
backends/cpu/engine/testdata/policies-MODEL.json: kept positions, evictions (h2o, tova) and greedy tokens equal, and
kvquant's last logits within 1e-3 relative (the fixture's tolerance); "together" runs them all at once over a KV
pool, as the worker holds them. --mini runs the plain-torch test model (backends/torch/worker/tests/minillama.py)
instead of transformers: a dry run of this script where transformers is missing (CPU, float32 only).

Usage: python3 tools/gpu/conformance.py --repo DIR --device cuda:0 --out results.json [--set shared|policies]
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


def run_cases(runner: Any, prompt: List[int], plans: List[Dict[str, Any]], greedy_len: int, together: bool,
              pool_rows: int = 0) -> Dict[int, Any]:
    from snapworker.engine import Engine, Request
    from snapworker.plan import Plan
    from snapworker.pool import SlotPool

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
        pool = None
        if pool_rows:
            pool = SlotPool(runner.layers, runner.kv_heads, runner.head_dim, pool_rows, 256, runner.dtype, runner.device)
        eng = Engine(runner, emit, max_batch=len(reqs), pool=pool)
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
    ap.add_argument("--set", default="shared", choices=("shared", "policies"))
    ap.add_argument("--mini", action="store_true", help="the plain-torch test model instead of transformers")
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.repo, "backends", "torch", "worker"))
    import torch
    from snapworker import attention as attn_mod

    if args.mini:
        from tests import minillama

        def make_runner(d: str, dtype: Any) -> Any:
            return minillama.load(d, dtype)
        version, gpu = "none (--mini)", "cpu"
    else:
        import transformers
        from snapworker.hf import HFRunner

        def make_runner(d: str, dtype: Any) -> Any:
            return HFRunner(d, args.device, dtype, False)
        version, gpu = transformers.__version__, torch.cuda.get_device_name(0)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    policies = args.set == "policies"
    golden = load(os.path.join(args.repo, "backends", "torch", "testdata", "plans.json"))
    plans = golden["policies" if policies else "fixtures"]
    report: Dict[str, Any] = {"torch": torch.__version__, "transformers": version, "gpu": gpu, "set": args.set,
                              "models": {}}
    ok = True
    print(f"torch {torch.__version__}, transformers {version}, {gpu}")
    print("| model | dtype | mode | policy | kept (and evicted) = ref | greedy = ref | logits rel err | min margin | kept = fp32 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model in ("llama-gqa", "qwen2-tied"):
        d = os.path.join(args.repo, "backends", "cpu", "testdata", "models", model)
        ref = load(os.path.join(d, "reference.json"))
        if policies:  # the fixture's cases, plus two shared cases riding along in the "together" run
            ref = load(os.path.join(args.repo, "backends", "cpu", "engine", "testdata", f"policies-{model}.json"))
        fp32_kept: Dict[int, Any] = {}
        rows = []
        for dtype_name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            if args.mini and dtype_name == "bfloat16":
                continue
            t0 = time.time()
            runner = make_runner(d, dtype)
            load_s = time.time() - t0
            for together in (False, True):
                if dtype_name == "bfloat16" and together:
                    continue
                res = run_cases(runner, ref["prompt_ids"], plans[model], 24, together,
                                pool_rows=len(plans[model]) if policies else 0)
                for i, case in enumerate(ref["cases"]):
                    ev, toks = res[i]["event"], res[i]["tokens"]
                    spec = plans[model][i]["spec"]
                    want_logits = case.get("logits_last") if policies else ref["logits_last"]
                    tol = 1e-3 if policies else 1e-4
                    if ev["ev"] != "done":
                        ok = False
                        rows.append({"policy": spec, "dtype": dtype_name, "error": ev})
                        print(f"| {model} | {dtype_name} | {'together' if together else 'alone'} | {spec} | error: {ev} |")
                        continue
                    kept_ok = ev["kept"] == case["kept"] and ev.get("evicted") == case.get("evicted")
                    greedy_ok = toks == case["greedy"]
                    agree = 0
                    for a, b in zip(toks, case["greedy"]):
                        if a != b:
                            break
                        agree += 1
                    rel = 0.0
                    if want_logits:
                        den = max(abs(x) for x in want_logits)
                        got = ev["logits_last"] if policies else ev["logits"]  # the fixtures': the last step's
                        rel = max(abs(a - b) for a, b in zip(got, want_logits)) / den
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
                    if dtype_name == "float32" and not (kept_ok and greedy_ok and rel <= tol):
                        ok = False
                    print(f"| {model} | {dtype_name} | {'together' if together else 'alone'} | {spec} | {kept_ok} | "
                          f"{greedy_ok} ({agree}/24) | {rel:.2e} | {mm:.3g} | "
                          f"{same_fp32['identical_lists'] + ' J=' + format(same_fp32['jaccard'], '.4f') if same_fp32 else '-'} |")
            del runner
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        report["models"][model] = rows
    report["attention_masks_seen"] = attn_mod.masks_seen
    report["pass_float32"] = ok
    print(f"attention masks built by transformers: {attn_mod.masks_seen} (want 0)")
    print(f"CONFORMANCE ({args.set}) float32:", "PASS" if ok else "FAIL")
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
