#!/usr/bin/env python3
"""Compares tinyllama's logits with snapeval's Go engine (backends/cpu) on the same checkpoint.

  python3 tools/train/check_go.py --snapeval /tmp/snapeval [--model DIR] [--random]

--random builds a random model (init std 0.2 so logits are far from zero; vocab 2048 with the shipped tokenizer),
saves it as bf16 safetensors, and compares; --model DIR compares an existing checkpoint. Each case runs a prompt,
then greedy-decodes --max-new tokens in both engines; it prints the relative max-abs difference of the last-position
logits and whether the greedy ids agree, and exits 1 if rel > --tol or the greedy ids differ."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tinyllama as tl  # noqa: E402


def go_inspect(snapeval, d, ids, max_new):
    out = subprocess.run([snapeval, "inspect", "--model", d, "--prompt-ids", ",".join(map(str, ids)),
                          "--policy", "full", "--max-new", str(max_new)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def compare(snapeval, d, prompts, max_new, tol):
    m = tl.load_checkpoint(d, torch.float32).eval()  # bf16 weights widened to float32: same numbers as Go reads
    ok = True
    for ids in prompts:
        r = go_inspect(snapeval, d, ids, max_new)
        with torch.no_grad():
            seq = list(ids)
            first = None
            for _ in range(max_new):
                lg = m(torch.tensor([seq]))[0, -1]
                if first is None:
                    first = lg
                seq.append(int(lg.argmax()))
        go = torch.tensor(r["logits_last"], dtype=torch.float32)
        rel = ((go - first).abs().max() / first.abs().max()).item()
        g_ok = seq[len(ids):] == r["greedy"]
        ok &= rel <= tol and g_ok
        print(f"  T={len(ids):4d} rel max|dlogit| {rel:.2e}  torch greedy {seq[len(ids):]}  go greedy {r['greedy']}"
              f"  {'OK' if rel <= tol and g_ok else 'MISMATCH'}")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--snapeval", default="bin/snapeval")
    ap.add_argument("--model", default="")
    ap.add_argument("--random", action="store_true")
    ap.add_argument("--tokenizer", default="models/snaptiny/tokenizer.json")
    ap.add_argument("--max-new", type=int, default=4)
    ap.add_argument("--tol", type=float, default=1e-3)
    a = ap.parse_args()
    g = torch.Generator().manual_seed(5)
    prompts = [torch.randint(1, 2048, (n,), generator=g).tolist() for n in (3, 17, 130)]
    ok = True
    if a.random:
        torch.manual_seed(3)
        c = tl.Config(vocab_size=2048, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16, initializer_range=0.2)
        m = tl.TinyLlama(c)
        with torch.no_grad():  # non-trivial norm weights so a mix-up of the norms shows
            for n, p in m.named_parameters():
                if n.endswith("layernorm.weight") or n.endswith("norm.weight"):
                    p.uniform_(0.5, 1.5)
        with tempfile.TemporaryDirectory() as d:
            tl.save_checkpoint(m, d, a.tokenizer)
            print("random model (d 64, 2 layers, 4 heads x 16, 2 KV heads):")
            ok &= compare(a.snapeval, d, prompts, a.max_new, a.tol)
    if a.model:
        print("checkpoint", a.model)
        ok &= compare(a.snapeval, a.model, prompts, a.max_new, a.tol)
    print("ALL OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
