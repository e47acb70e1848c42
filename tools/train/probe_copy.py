#!/usr/bin/env python3
"""probe_copy: does in-context copying (an induction head) form? Trains tinyllama on train.py's own copy_batch
(random tokens, then a repeat of their last n; loss on the repeat) with train.py's optimiser recipe and prints the
copy loss as training goes. Small enough for a CPU:

  nice -n 5 python3 tools/train/probe_copy.py --steps 600 --hidden 64 --layers 2 --heads 4 --kv-heads 2 \\
      --vocab 256 --copy-vocab 64 --copy-max-n 48 --copy-max-noise 32 --batch-tokens 4096

Uniform guessing over the copy alphabet costs ln(copy_vocab - 1) nats; a working induction head takes the loss
towards ~0 (only the first token of each repeat is unpredictable)."""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tinyllama as tl  # noqa: E402
from train import autocast, copy_batch, losses, lr_at  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--intermediate", type=int, default=0, help="0: 3 x hidden")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--copy-vocab", type=int, default=64)
    ap.add_argument("--copy-max-n", type=int, default=48)
    ap.add_argument("--copy-max-noise", type=int, default=32)
    ap.add_argument("--batch-tokens", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--beta2", type=float, default=0.95)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--warmup", type=float, default=0.03)
    ap.add_argument("--lr-floor", type=float, default=0.1, help="cosine decays to this x lr (1: constant)")
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--init-std", type=float, default=0.02)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--shared-emb", type=float, default=0.0,
                    help="diagnostic: add this x init-std x sqrt(hidden) along one shared unit direction to every embedding")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1, help="more than 1 thrashes on a shared 2-core box")
    ap.add_argument("--max-seconds", type=float, default=280)
    ap.add_argument("--target", type=float, default=0.5,
                    help="PROBE formed when the mean copy loss of the last log interval is below this; exit 3 if not")
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    c = tl.Config(vocab_size=a.vocab, hidden_size=a.hidden, intermediate_size=a.intermediate or 3 * a.hidden,
                  num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
                  head_dim=a.head_dim, rope_theta=a.rope_theta, initializer_range=a.init_std)
    model = tl.TinyLlama(c)
    if a.shared_emb:
        with torch.no_grad():
            u = torch.randn(a.hidden)
            model.model.embed_tokens.weight += a.shared_emb * a.init_std * u  # |u| ~ sqrt(hidden)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr, betas=(0.9, a.beta2), eps=1e-8)
    model.to(device)
    print(f"device {device}; params {sum(p.numel() for p in model.parameters()) / 1e3:.0f}k; uniform loss "
          f"ln({a.copy_vocab - 1}) = {math.log(a.copy_vocab - 1):.3f}; args {vars(a)}", flush=True)
    t0, acc, n, first_below, last_mean = time.time(), 0.0, 0, None, float("inf")
    for step in range(1, a.steps + 1):
        lr = lr_at((step - 1) / a.steps, a.lr, a.warmup, a.lr_floor)
        for g in opt.param_groups:
            g["lr"] = lr
        inp, tgt, ans = copy_batch(rng, a.vocab, a.batch_tokens, device, a.copy_vocab, a.copy_max_n,
                                   a.copy_max_noise)
        with autocast(device):
            loss, _, _ = losses(model, inp, tgt, ans)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip if a.clip > 0 else 1e9)
        opt.step()
        acc += loss.item()
        n += 1
        if first_below is None and loss.item() < 0.5 * math.log(a.copy_vocab - 1):
            first_below = step
        if step % a.log_every == 0 or step == a.steps:
            print(f"step {step:5d} lr {lr:.2e} copy_loss {acc / n:.3f} gnorm {gn.item():.2f} "
                  f"{time.time() - t0:.0f}s", flush=True)
            last_mean = acc / n
            acc, n = 0.0, 0
        if time.time() - t0 > a.max_seconds:
            print("time limit", flush=True)
            break
    if n:
        last_mean = acc / n
    ok = last_mean < a.target
    print(f"RESULT first step with copy loss < half of uniform: {first_below}; final mean copy loss {last_mean:.3f}; "
          f"PROBE {'formed' if ok else 'NOT formed'}", flush=True)
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
