#!/usr/bin/env python3
"""Train snaptiny: a small Llama-architecture base model for snapeval's built-in "ruler" suite.

Everything happens in one run on one GPU (see README.md for the exact command):
  1. generate a small train-split sample with the Go generator (bin/synthgen), train a byte-level BPE tokenizer on it
     (Digits(individual) then ByteLevel, GPT-2 style) and measure the bytes-per-token ratio;
  2. generate the training data (train split) and the held-out items (eval split) at that ratio, so that the
     target lengths are close to real token counts, and tokenize them;
  3. train LlamaForCausalLM (bf16 autocast, SDPA attention, AdamW, time-based cosine schedule, loss on the answer
     tokens plus a small LM loss on the prompt, a length curriculum), saving a complete checkpoint periodically;
  4. reload the checkpoint with tinyllama in float32 (left padding masked) and greedy-decode the held-out items (full attention),
     grading as eval/synthetic.Score does; print accuracy per task and length and write eval.json.
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tinyllama as tl  # noqa: E402  (our own Llama: no dependency on transformers' model code)

T0 = time.time()
EOS = "<|endoftext|>"
EOS_ID = 0
TASKS = ["niah_single", "niah_multikey", "niah_multivalue", "niah_multiquery", "vt", "cwe"]
# Items per task at each train length (scale 1): about 13M train tokens per task, weighted towards short items.
TRAIN_N = {192: 4000, 256: 4000, 512: 3000, 768: 2000, 1024: 1600, 1536: 1000, 2048: 800, 3072: 500, 3968: 400}


def log(*a):
    print(f"[{time.time() - T0:7.1f}s]", *a, flush=True)


def synthgen(binary, split, seed, n, lengths, cpt, out):
    cmd = [binary, "-split", split, "-seed", str(seed), "-n", str(n), "-lengths", ",".join(map(str, lengths)),
           "-tasks", "all", "-chars-per-token", f"{cpt:.4f}", "-out", out]
    return subprocess.Popen(cmd)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def train_tokenizer(texts, vocab):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    assert tok.token_to_id(EOS) == EOS_ID, tok.token_to_id(EOS)
    return tok


def tokenize_rows(tok, rows, max_len):
    """Returns [(prompt_ids int32, answer_ids+EOS int32, row)] and the number of rows dropped for length."""
    out, dropped = [], 0
    for s in range(0, len(rows), 4096):
        chunk = rows[s:s + 4096]
        P = tok.encode_batch([r["prompt"] for r in chunk], add_special_tokens=False)
        A = tok.encode_batch([r["answer"] for r in chunk], add_special_tokens=False)
        for r, p, a in zip(chunk, P, A):
            pi = np.asarray(p.ids, dtype=np.int32)
            ai = np.asarray(a.ids + [EOS_ID], dtype=np.int32)
            if len(pi) + len(ai) > max_len:
                dropped += 1
                continue
            out.append((pi, ai, r))
    return out, dropped


def to_device(x, device):
    t = torch.from_numpy(x)
    if str(device).startswith("cuda"):
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def logits_of(model, inp):
    """Logits [B,T,V] of our own TinyLlama (tinyllama.py) or of a transformers LlamaForCausalLM."""
    if hasattr(model, "hf_state_dict"):
        return model(inp)
    return model(input_ids=inp, use_cache=False).logits


def make_batch(items, idxs, device):
    seqs = [np.concatenate([items[i][0], items[i][1]]) for i in idxs]
    T = max(len(s) for s in seqs) - 1
    B = len(seqs)
    inp = np.full((B, T), EOS_ID, dtype=np.int64)
    tgt = np.full((B, T), -100, dtype=np.int64)
    ans = np.zeros((B, T), dtype=bool)
    for b, (i, s) in enumerate(zip(idxs, seqs)):
        n = len(s) - 1
        inp[b, :n] = s[:-1]
        tgt[b, :n] = s[1:]
        ans[b, len(items[i][0]) - 1:n] = True  # targets that are answer tokens or the final EOS
    return to_device(inp, device), to_device(tgt, device), to_device(ans, device)


def losses(model, inp, tgt, ans):
    logits = logits_of(model, inp).float()
    V = logits.shape[-1]
    ce = F.cross_entropy(logits.view(-1, V), tgt.view(-1), ignore_index=-100, reduction="none").view(tgt.shape)
    valid = tgt != -100
    lm = valid & ~ans
    ans_loss = (ce * ans).sum() / ans.sum().clamp(min=1)
    lm_loss = (ce * lm).sum() / lm.sum().clamp(min=1)
    pred = logits.argmax(-1)
    row_ok = ((pred == tgt) | ~ans).all(dim=1)  # teacher-forced exact match of the whole answer + EOS
    return ans_loss, lm_loss, row_ok


def copy_batch(rng, vocab, batch_tokens, device, copy_vocab=0, max_n=256, max_noise=256, ids=None):
    """Induction warm-up batch: random tokens, then a repeat of their last n; loss on the repeat only.
    Without it the model never discovered retrieval in 11k steps (first run, see README).
    Tokens are drawn from ids 1..copy_vocab-1 (all ids when copy_vocab <= 1), or from the array ids when given."""
    n = int(rng.integers(min(16, max_n), max_n + 1))
    noise = int(rng.integers(0, max_noise + 1))
    B = max(1, batch_tokens // (noise + 2 * n))
    if ids is not None:
        toks = ids[rng.integers(0, len(ids), size=(B, noise + n))].astype(np.int32)
    else:
        hi = min(vocab, copy_vocab) if copy_vocab > 1 else vocab
        toks = rng.integers(1, hi, size=(B, noise + n)).astype(np.int32)
    items = [(toks[b], toks[b, noise:]) for b in range(B)]
    return make_batch(items, list(range(B)), device)


KEY_RE = re.compile(r"special magic numbers? for ([a-z]+-[a-z]+) ")
DENSE_PREFIX = ("Some special magic numbers are hidden in the following text. Memorize them. "
                "You will be asked about them at the end.\n\n")


def dense_keys(buckets, per_bucket=3000):
    """The needle keys of the training rows (adjective-noun pairs), for dense recall batches."""
    keys = set()
    for items in buckets.values():
        for it in items[:per_bucket]:
            keys.update(KEY_RE.findall(it[2]["prompt"]))
    return sorted(keys)


def dense_batch(rng, tok, keys, batch_tokens, device):
    """Dense associative recall (MQAR-like) in the suite's own wording: k needles back to back, then q questions,
    each followed by its answer and EOS; the loss covers every answer. Each sequence carries ~8q answer tokens
    instead of the ~8 of a suite item."""
    k = int(rng.integers(4, 33))
    q = int(rng.integers(2, k + 1))
    est = 30 + 16 * k + 45 * q  # tokens, generous
    B = max(1, batch_tokens // est)
    seqs = []
    for b in range(B):
        ks = [keys[i] for i in rng.choice(len(keys), size=k, replace=False)]
        vs = [str(100000 + int(v)) for v in rng.choice(900000, size=k, replace=False)]
        needles = " ".join(f"The special magic number for {kk} is {vv}." for kk, vv in zip(ks, vs))
        seq = [(DENSE_PREFIX + needles, False)]
        for j in rng.choice(k, size=q, replace=False):
            seq.append((f"\n\nWhat is the special magic number for {ks[j]} mentioned in the text above? "
                        f"Answer: The special magic number for {ks[j]} is", False))
            seq.append((" " + vs[j], True))
        seqs.append(seq)
    return encode_sequences(tok, seqs, device)


VT_PREFIX = ("Some sentences in the following text store numbers in variables or copy one variable into another. "
             "Memorize them. You will be asked about them at the end.\n\n")


def var_name(rng):
    return "".join(chr(65 + int(c)) for c in rng.integers(0, 26, size=5))


def encode_sequences(tok, seqs, device):
    """Batch of sequences given as [(text, is_answer)] pieces: answer pieces get EOS appended and carry the loss."""
    pieces, flags, owners = [], [], []
    for b, seq in enumerate(seqs):
        for text, is_ans in seq:
            pieces.append(text)
            flags.append(is_ans)
            owners.append(b)
    enc = tok.encode_batch(pieces, add_special_tokens=False)
    B = len(seqs)
    ids = [[] for _ in range(B)]
    marks = [[] for _ in range(B)]
    for e, is_ans, b in zip(enc, flags, owners):
        toks = e.ids + ([EOS_ID] if is_ans else [])
        ids[b].extend(toks)
        marks[b].extend([is_ans] * len(toks))
    T = max(len(x) for x in ids) - 1
    inp = np.full((B, T), EOS_ID, dtype=np.int64)
    tgt = np.full((B, T), -100, dtype=np.int64)
    ans = np.zeros((B, T), dtype=bool)
    for b in range(B):
        n = len(ids[b]) - 1
        arr = np.asarray(ids[b], dtype=np.int64)
        inp[b, :n] = arr[:-1]
        tgt[b, :n] = arr[1:]
        ans[b, :n] = np.asarray(marks[b][1:], dtype=bool)  # position j predicts token j+1
    return to_device(inp, device), to_device(tgt, device), to_device(ans, device)


def dense_vt_batch(rng, tok, batch_tokens, device):
    """Dense variable tracking in the suite's wording (eval/synthetic TaskVT): k chains of 2-4 variables
    ("The number N is stored in VAR A." then "The value of VAR A is copied into VAR B."), each chain in order,
    chains interleaved at random, no filler; then q questions, each followed by its answer (the chain's variables
    in order) and EOS. Every answer carries the loss, so a sequence holds ~q x 12 answer tokens instead of ~12."""
    k = int(rng.integers(2, 9))
    q = int(rng.integers(1, k + 1))
    est = 30 + 40 * k + 45 * q  # tokens, generous
    B = max(1, batch_tokens // est)
    seqs = []
    for _ in range(B):
        nums = [str(100000 + int(v)) for v in rng.choice(900000, size=k, replace=False)]
        names = set()
        while len(names) < 4 * k:
            names.add(var_name(rng))
        names = list(names)
        chains = []
        for c in range(k):
            m = int(rng.integers(2, 5))
            vs = names[4 * c:4 * c + m]
            sent = [f"The number {nums[c]} is stored in VAR {vs[0]}."]
            sent += [f"The value of VAR {vs[i]} is copied into VAR {vs[i + 1]}." for i in range(m - 1)]
            chains.append((vs, sent))
        order = rng.permutation([c for c, (_, sent) in enumerate(chains) for _ in sent])
        nxt = [0] * k
        body = []
        for c in order:
            body.append(chains[c][1][nxt[c]])
            nxt[c] += 1
        seq = [(VT_PREFIX + " ".join(body), False)]
        for c in rng.choice(k, size=q, replace=False):
            seq.append((f"\n\nWhich variables hold the number {nums[c]}? "
                        f"Answer: The variables that hold the number {nums[c]} are", False))
            seq.append((" " + " ".join(chains[c][0]), True))
        seqs.append(seq)
    return encode_sequences(tok, seqs, device)


CWE_PREFIX = "Below is a long list of words. A few words appear much more often than all the others.\n\n"
CWE_QUESTION = "\n\nWhat are the 3 most common words in the list above? Answer: The 3 most common words are"
CWE_PROBS = (0.12, 0.10, 0.08)  # eval/synthetic cweProbs


def cwe_words(buckets, per_bucket=3000):
    """The word pool of the training cwe rows (nouns and adjectives of eval/synthetic)."""
    words = set()
    for items in buckets.values():
        for it in items[:per_bucket]:
            r = it[2]
            if r["task"] == "cwe":
                words.update(r["prompt"][len(CWE_PREFIX):].split("\n\n")[0].split())
    return sorted(words)


def check_templates(buckets):
    """The extra steps (dense_vt_batch, cwe_batch) spell the suite's templates in Python; the suite itself is defined
    by eval/synthetic (Go). Fail loudly if the generator's rows no longer use the same wording."""
    rows = [it[2] for items in buckets.values() for it in items[:2000]]
    vt = [r for r in rows if r["task"] == "vt"]
    cwe = [r for r in rows if r["task"] == "cwe"]
    assert vt and cwe, "no vt or cwe rows to check the templates against"
    for r in vt[:50]:
        assert r["prompt"].startswith(VT_PREFIX), "vt prefix changed in eval/synthetic: update train.py"
        assert "\n\nWhich variables hold the number " in r["prompt"], "vt question changed: update train.py"
        assert re.search(r"The number \d+ is stored in VAR [A-Z]{5}\.", r["prompt"]), "vt needle changed"
        assert re.search(r"The value of VAR [A-Z]{5} is copied into VAR [A-Z]{5}\.", r["prompt"]), "vt hop changed"
    for r in cwe[:50]:
        assert r["prompt"].startswith(CWE_PREFIX) and r["prompt"].endswith(CWE_QUESTION), "cwe template changed"
        assert re.fullmatch(r" [a-z]+, [a-z]+, [a-z]+", r["answer"]), "cwe answer format changed"


def cwe_batch(rng, tok, pool, batch_tokens, device, boost):
    """Common-word extraction items like eval/synthetic's genCWE (three planted words, the rest uniform over the
    pool, answer = the three by count, ties by name, only when the third beats every other word) with the planted
    shares multiplied by boost (a curriculum: boost > 1 makes the common words stand out more), 40-400 words."""
    nw = int(rng.integers(40, 401))
    B = max(1, batch_tokens // (40 + int(nw * 1.6)))
    probs = np.array(CWE_PROBS) * boost
    seqs = []
    while len(seqs) < B:
        perm = rng.permutation(len(pool))
        common = [pool[i] for i in perm[:3]]
        rare = [pool[i] for i in perm[3:]]
        u = rng.random(nw)
        words = []
        for x in u:
            w = ""
            for i, p in enumerate(probs):
                if x < p:
                    w = common[i]
                    break
                x -= p
            words.append(w or rare[int(rng.integers(len(rare)))])
        counts = {}
        for w in words:
            counts[w] = counts.get(w, 0) + 1
        top = sorted(common, key=lambda w: (-counts.get(w, 0), w))
        if counts.get(top[2], 0) <= max([counts.get(w, 0) for w in rare] + [0]):
            continue
        seqs.append([(CWE_PREFIX + " ".join(words) + CWE_QUESTION, False), (" " + ", ".join(top), True)])
    return encode_sequences(tok, seqs, device)


def autocast(device):
    """bf16 autocast on CUDA; a no-op elsewhere (CPU smoke runs)."""
    if str(device).startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    import contextlib
    return contextlib.nullcontext()


def train_step(model, opt, inp, tgt, ans, lr, device, lm_weight):
    """One optimiser step at learning rate lr on the loss over answer tokens, plus lm_weight x the LM loss on the
    prompt (None: answer loss only). Returns the answer loss, the LM loss and the gradient norm before clipping."""
    for g in opt.param_groups:
        g["lr"] = lr
    with autocast(device):
        ans_loss, lm_loss, _ = losses(model, inp, tgt, ans)
        loss = ans_loss if lm_weight is None else ans_loss + lm_weight * lm_loss
    opt.zero_grad(set_to_none=True)
    loss.backward()
    gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return ans_loss, lm_loss, gn

def copy_phase(model, opt, rng, vocab, device, a):
    """Pure induction warm-up before the main mix: copy batches with SHORT spans, a small alphabet and small batches
    (many optimiser steps), constant lr after a short warm-up, until the running copy loss is below
    --copy-phase-target or --copy-phase-seconds pass. On a CPU the plateau before induction forms grew with the span
    length (README, "Diagnosis"), and it is counted in steps, so small batches get there sooner. Prints one line
    'COPY PHASE RESULT: formed|NOT formed ...' that gpu_session.sh reads."""
    t0 = time.time()
    uni = math.log(max(2, min(vocab, a.copy_phase_vocab) - 1))
    step, run, last = 0, None, t0
    model.train()
    while time.time() - t0 < a.copy_phase_seconds:
        f = (time.time() - t0) / a.copy_phase_seconds
        inp, tgt, ans = copy_batch(rng, vocab, a.copy_phase_batch_tokens, device, a.copy_phase_vocab,
                                   a.copy_phase_max_n, a.copy_phase_max_noise)
        loss, _, _ = train_step(model, opt, inp, tgt, ans, a.lr * min(1.0, f / 0.05), device, None)
        step += 1
        if step % 10 == 0:
            v = loss.item()
            run = v if run is None else 0.9 * run + 0.1 * v
            if time.time() - last > 5:
                log(f"copy phase step {step} loss {run:.3f} (uniform {uni:.3f})")
                last = time.time()
            if run < a.copy_phase_target:
                break
    ok = run is not None and run < a.copy_phase_target
    log(f"COPY PHASE RESULT: {'formed' if ok else 'NOT formed'} loss {run if run is not None else float('nan'):.3f} "
        f"uniform {uni:.3f} steps {step} seconds {time.time() - t0:.0f}")
    return ok


def lr_at(f, peak, warm=0.03, floor=0.1):
    """Time-based schedule: linear warm-up over the first `warm` of the run, then cosine down to floor*peak."""
    if f < warm:
        return peak * f / warm
    p = min(1.0, (f - warm) / (1 - warm))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


def max_len_at(f, c=1.0):
    """Length curriculum: the longest target length allowed at training progress f (c scales the phases)."""
    f = f / c if c > 0 else 1.0
    if f < 0.08:
        return 512
    if f < 0.2:
        return 1024
    if f < 0.35:
        return 2048
    return 1 << 30


def config_dict(a, vocab):
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": None,
        "eos_token_id": EOS_ID,
        "pad_token_id": EOS_ID,
        "dtype": "bfloat16",
        "head_dim": a.head_dim,
        "hidden_act": "silu",
        "hidden_size": a.hidden,
        "initializer_range": 0.02,
        "intermediate_size": a.intermediate,
        "max_position_embeddings": a.max_pos,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": a.heads,
        "num_hidden_layers": a.layers,
        "num_key_value_heads": a.kv_heads,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": a.rope_theta,
        "tie_word_embeddings": True,
        "use_cache": True,
        "vocab_size": vocab,
    }


def save_checkpoint(model, cfg, tok, out):
    """bf16 safetensors with the LlamaForCausalLM tensor names (either implementation), config.json, tokenizer."""
    os.makedirs(out, exist_ok=True)
    sd = {k: v.detach().to(torch.bfloat16).contiguous().cpu() for k, v in model.state_dict().items()
          if k != "lm_head.weight" and not k.endswith("inv_freq")}  # lm_head tied to model.embed_tokens.weight
    tl.save_safetensors(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": EOS_ID, "pad_token_id": EOS_ID, "do_sample": False}, f, indent=2)
    tok.save(os.path.join(out, "tokenizer.json"))


def score(answers, output):
    """eval/synthetic.Score: recall of the expected values, matched case-insensitively, not glued to [A-Za-z0-9]."""
    low = output.lower()
    found = [a for a in answers if re.search(r"(?<![0-9a-z])" + re.escape(a.lower()) + r"(?![0-9a-z])", low)]
    return len(found) / len(answers), len(found) == len(answers)


@torch.no_grad()
def tf_eval(model, groups, device, limit=8):
    """Teacher-forced exact match per (task, length) on up to `limit` held-out items each."""
    model.eval()
    res = {}
    for key, items in groups.items():
        items = items[:limit]
        inp, tgt, ans = make_batch(items, list(range(len(items))), device)
        with autocast(device):
            _, _, ok = losses(model, inp, tgt, ans)
        res[key] = ok.float().mean().item()
    model.train()
    return res


@torch.no_grad()
def check_reload(model, ckdir, groups, device):
    """Reloads the saved checkpoint with tinyllama (and with stock transformers when it is installed) and compares
    its logits with the trained model's."""
    items = next(iter(groups.values()))[:2]
    inp, _, _ = make_batch(items, [0, 1], device)
    model.eval()
    a = logits_of(model, inp).float()
    model.train()
    refs = [("tinyllama", tl.load_checkpoint(ckdir).to(device).eval())]
    try:
        from transformers import LlamaForCausalLM
        refs.append(("transformers", LlamaForCausalLM.from_pretrained(ckdir).float().to(device).eval()))
    except ImportError:
        pass
    for name, ref in refs:
        b = logits_of(ref, inp).float()
        rel = ((a - b).abs().max() / a.abs().max()).item()
        agree = (a.argmax(-1) == b.argmax(-1)).float().mean().item()
        log(f"reload check ({name}): max rel logit diff {rel:.4f} (trained vs bf16 saved), argmax agreement {agree:.4f}")


@torch.no_grad()
def greedy_eval(ckdir, tok, groups, device, batch=32, deadline=None):
    """Greedy decoding of the held-out items from the saved checkpoint (float32, full attention, tinyllama with
    left padding masked out), graded like eval/synthetic.Score."""
    model = tl.load_checkpoint(ckdir).to(device).eval()
    results = []
    for (task, length), items in groups.items():
        max_new = max(len(it[1]) for it in items) + 8
        for s in range(0, len(items), batch):
            if deadline and time.time() > deadline:
                log("greedy eval: deadline reached, stopping early")
                return results
            chunk = items[s:s + batch]
            L = max(len(it[0]) for it in chunk)
            ids = torch.full((len(chunk), L), EOS_ID, dtype=torch.long)
            pad = torch.tensor([L - len(it[0]) for it in chunk], dtype=torch.long)
            for i, it in enumerate(chunk):
                ids[i, L - len(it[0]):] = torch.from_numpy(it[0].astype(np.int64))
            ids, pad = ids.to(device), pad.to(device)
            done = torch.zeros(len(chunk), dtype=torch.bool, device=device)
            for _ in range(max_new):
                nxt = model(ids, pad_left=pad)[:, -1].float().argmax(-1)
                nxt = torch.where(done, torch.full_like(nxt, EOS_ID), nxt)
                ids = torch.cat([ids, nxt[:, None]], dim=1)
                done |= nxt == EOS_ID
                if bool(done.all()):
                    break
            for i, it in enumerate(chunk):
                new = ids[i, L:].tolist()
                if EOS_ID in new:
                    new = new[:new.index(EOS_ID)]
                text = tok.decode(new, skip_special_tokens=False).split("\n")[0]
                sc, ok = score(it[2]["answers"], text)
                results.append({"id": it[2]["id"], "task": task, "length": length, "prompt_tokens": int(len(it[0])),
                                "output": text, "expected": it[2]["answer"], "score": sc, "correct": ok})
    return results


def summarize(results):
    by = {}
    for r in results:
        by.setdefault((r["task"], r["length"]), []).append(r)
    lines, tot = [], []
    for (t, l), rs in sorted(by.items()):
        acc = sum(r["correct"] for r in rs) / len(rs)
        sc = sum(r["score"] for r in rs) / len(rs)
        toks = sum(r["prompt_tokens"] for r in rs) / len(rs)
        lines.append(f"  {t:16s} len {l:5d} (~{toks:6.0f} tok)  n={len(rs):3d}  acc {acc:.3f}  score {sc:.3f}")
        tot += rs
    if tot:
        lines.append(f"  ALL n={len(tot)} acc {sum(r['correct'] for r in tot) / len(tot):.3f} "
                     f"score {sum(r['score'] for r in tot) / len(tot):.3f}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--synthgen", default="bin/synthgen")
    ap.add_argument("--out", default=os.environ.get("OUT", "out"))
    ap.add_argument("--work", default="/tmp/snaptrain")
    ap.add_argument("--seed", type=int, default=1, help="data seed (train split) and torch seed")
    ap.add_argument("--eval-seed", type=int, default=1, help="seed of the held-out eval split")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies TRAIN_N")
    ap.add_argument("--train-seconds", type=float, default=420)
    ap.add_argument("--ckpt-seconds", type=float, default=60)
    ap.add_argument("--eval-n", type=int, default=20)
    ap.add_argument("--eval-lengths", default="512,1024,2048,3968")
    ap.add_argument("--eval-seconds", type=float, default=90)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--intermediate", type=int, default=768)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=32)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--max-pos", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch-tokens", type=int, default=65536)
    ap.add_argument("--lm-weight", type=float, default=0.1)
    ap.add_argument("--copy-early", type=float, default=0.5, help="share of copy steps while progress < 0.3")
    ap.add_argument("--copy-late", type=float, default=0.2, help="share of copy steps afterwards")
    ap.add_argument("--dense-early", type=float, default=0.0, help="share of dense-recall steps while progress < 0.3")
    ap.add_argument("--dense-late", type=float, default=0.0, help="share of dense-recall steps afterwards")
    ap.add_argument("--copy-vocab", type=int, default=0, help="draw copy-task tokens from ids below this (0: all)")
    ap.add_argument("--copy-max-n", type=int, default=256, help="longest repeated span of a copy item")
    ap.add_argument("--copy-max-noise", type=int, default=256, help="longest random prefix of a copy item")
    ap.add_argument("--copy-phase-seconds", type=float, default=0,
                    help="pure copy warm-up before the main mix (not counted in --train-seconds); 0: none")
    ap.add_argument("--copy-phase-vocab", type=int, default=32, help="copy alphabet of the warm-up")
    ap.add_argument("--copy-phase-max-n", type=int, default=32, help="longest repeated span of the warm-up")
    ap.add_argument("--copy-phase-max-noise", type=int, default=16, help="longest random prefix of the warm-up")
    ap.add_argument("--copy-phase-batch-tokens", type=int, default=8192)
    ap.add_argument("--copy-phase-target", type=float, default=0.5, help="stop the warm-up below this copy loss")
    ap.add_argument("--max-train-len", type=int, default=0, help="drop train buckets longer than this (0: keep all)")
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--warmup", type=float, default=0.03, help="warm-up share of the training time")
    ap.add_argument("--impl", choices=["own", "hf"], default="own",
                    help="own: tinyllama.py (default); hf: transformers LlamaForCausalLM built from the config")
    ap.add_argument("--copy-ids", default="", help="token id ranges of the mix's copy steps, e.g. 1-31,33-58 "
                    "(with the trained tokenizer ids 16-25 are the digits and 33-58 the upper-case letters); "
                    "overrides --copy-vocab")
    ap.add_argument("--copy-token-re", default="", help="add every token whose text (GPT-2 byte form, Ġ = space) "
                    "fully matches this regex to the mix's copy ids, e.g. 'Ġ?[A-Z]+' for the tokens of VAR names")
    ap.add_argument("--dense-vt", type=float, default=0.0, help="share of dense variable-tracking steps")
    ap.add_argument("--cwe-extra", type=float, default=0.0, help="share of extra common-word steps (cwe_batch)")
    ap.add_argument("--cwe-boost", type=float, default=2.0,
                    help="cwe_batch multiplies the planted shares by this at the start, falling linearly to 1 at "
                    "progress 0.6")
    ap.add_argument("--task-weight", default="", help="repeat train rows of these tasks, e.g. vt=4,cwe=4")
    ap.add_argument("--init-from", default="", help="continue from this checkpoint (its tokenizer and weights)")
    ap.add_argument("--curriculum", type=float, default=1.0, help="scales the curriculum phases (0: no curriculum)")
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    device = "cuda" if torch.cuda.is_available() else "cpu"
    os.makedirs(a.work, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    ckdir = os.path.join(a.out, "snaptiny")
    log("torch", torch.__version__, torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "impl", a.impl)

    # 1. tokenizer from a small train-split sample (seed+1000 so it is not the training data itself).
    p = synthgen(a.synthgen, "train", a.seed + 1000, 40, [256, 1024, 3968], 4.0, f"{a.work}/tok.jsonl")
    assert p.wait() == 0
    sample = read_jsonl(f"{a.work}/tok.jsonl")
    if a.init_from:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(os.path.join(a.init_from, "tokenizer.json"))
        log("tokenizer and weights from", a.init_from)
    else:
        tok = train_tokenizer((r["prompt"] + r["answer"] for r in sample), a.vocab)
    nchars = sum(len(r["prompt"]) for r in sample)
    ntoks = sum(len(e.ids) for e in tok.encode_batch([r["prompt"] for r in sample], add_special_tokens=False))
    cpt = nchars / ntoks
    log(f"tokenizer: vocab {tok.get_vocab_size()}, {cpt:.3f} bytes/token on {len(sample)} prompts")
    for r in sample[:1] + sample[-1:]:
        enc = tok.encode(r["answer"], add_special_tokens=False)
        log("answer", repr(r["answer"]), "->", enc.tokens)

    # 2. data
    procs = []
    if a.max_train_len:
        for L in [L for L in TRAIN_N if L > a.max_train_len]:
            del TRAIN_N[L]
    for L, n in TRAIN_N.items():
        procs.append(synthgen(a.synthgen, "train", a.seed, max(1, int(n * a.scale)), [L], cpt, f"{a.work}/train_{L}.jsonl"))
    eval_lengths = [int(x) for x in a.eval_lengths.split(",")]
    procs.append(synthgen(a.synthgen, "eval", a.eval_seed, a.eval_n, eval_lengths, cpt, f"{a.work}/eval.jsonl"))
    for p in procs:
        assert p.wait() == 0
    log("data generated")
    buckets = {}
    for L in TRAIN_N:
        items, dropped = tokenize_rows(tok, read_jsonl(f"{a.work}/train_{L}.jsonl"), a.max_pos)
        tw = {k: int(v) for k, v in (x.split("=") for x in a.task_weight.split(","))} if a.task_weight else {}
        items = [it for it in items for _ in range(tw.get(it[2]["task"], 1))]
        lens = np.array([len(i[0]) for i in items])
        buckets[L] = items
        log(f"bucket {L}: {len(items)} rows (dropped {dropped}), prompt tokens mean {lens.mean():.0f} max {lens.max()}")
    ntrain = sum(len(i[0]) + len(i[1]) for b in buckets.values() for i in b)
    log(f"train tokens: {ntrain / 1e6:.1f}M")
    eitems, edropped = tokenize_rows(tok, read_jsonl(f"{a.work}/eval.jsonl"), a.max_pos)
    groups = {}
    for it in eitems:
        groups.setdefault((it[2]["task"], it[2]["length"]), []).append(it)
    log(f"held-out: {len(eitems)} items (dropped {edropped} over {a.max_pos} tokens)")

    # 3. model
    cfg = config_dict(a, tok.get_vocab_size())
    if a.impl == "own":
        if a.init_from:
            model = tl.load_checkpoint(a.init_from).to(device)
        else:
            model = tl.TinyLlama(tl.Config(**cfg)).to(device)
        assert model.config.hidden_size == a.hidden and model.config.num_hidden_layers == a.layers, "shape mismatch"
    else:
        from transformers import LlamaConfig, LlamaForCausalLM
        hf_cfg = LlamaConfig(**{k: v for k, v in cfg.items() if k not in ("architectures", "dtype")})
        if a.init_from:
            model = LlamaForCausalLM.from_pretrained(a.init_from).float().to(device)
            assert model.config.hidden_size == a.hidden and model.config.num_hidden_layers == a.layers, "shape mismatch"
        else:
            model = LlamaForCausalLM(hf_cfg).to(device)
        log("attention:", getattr(model.config, "_attn_implementation", "?"), "rope_theta:",
            getattr(model.config, "rope_theta", None), getattr(model.config, "rope_parameters", None))
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "embeddings not tied"
    nparams = sum(p.numel() for p in model.parameters())
    log(f"model: {nparams / 1e6:.2f}M parameters (tied embeddings)", json.dumps(cfg))
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, **({"fused": True} if device == "cuda" else {}))
    maxlens = {L: max(len(i[0]) + len(i[1]) for i in b) for L, b in buckets.items()}
    save_checkpoint(model, cfg, tok, ckdir)

    if a.copy_phase_seconds > 0:
        copy_phase(model, opt, rng, tok.get_vocab_size(), device, a)
    step, seen, t_start = 0, 0, time.time()
    last_ck, last_log = t_start, t_start
    acc_ans = acc_lm = 0.0
    acc_n = 0
    acc_copy, acc_cn = 0.0, 0
    acc_dense, acc_dn = 0.0, 0
    keys = dense_keys(buckets) if max(a.dense_early, a.dense_late) > 0 else []
    if keys:
        log(f"dense recall: {len(keys)} keys")
    copy_ids = None
    if a.copy_ids or a.copy_token_re:
        ids = {i for r in a.copy_ids.split(",") if r for i in range(int(r.split("-")[0]), int(r.split("-")[-1]) + 1)}
        if a.copy_token_re:
            rx = re.compile(a.copy_token_re)
            ids |= {i for t, i in tok.get_vocab().items() if i != EOS_ID and rx.fullmatch(t)}
        copy_ids = np.array(sorted(ids), dtype=np.int64)
        assert copy_ids.min() >= 1 and copy_ids.max() < tok.get_vocab_size(), "--copy-ids out of range"
        log(f"copy ids: {len(copy_ids)} tokens:", " ".join(tok.id_to_token(int(i)) for i in copy_ids[:200]))
    if a.dense_vt > 0 or a.cwe_extra > 0:
        check_templates(buckets)
    pool = cwe_words(buckets) if a.cwe_extra > 0 else []
    if pool:
        log(f"cwe steps: {len(pool)} words")
    extra = {"dense_vt": 0.0, "cwe": 0.0}
    extra_n = {"dense_vt": 0, "cwe": 0}
    model.train()
    while True:
        f = (time.time() - t_start) / a.train_seconds
        if f >= 1:
            break
        if rng.random() < (a.copy_early if f < 0.3 else a.copy_late):
            inp, tgt, ans = copy_batch(rng, tok.get_vocab_size(), a.batch_tokens, device, a.copy_vocab,
                                       a.copy_max_n, a.copy_max_noise, ids=copy_ids)
            copy_loss, _, _ = train_step(model, opt, inp, tgt, ans, lr_at(f, a.lr, a.warmup), device, None)
            step += 1
            seen += inp.numel()
            if step % 5 == 0:
                acc_copy += copy_loss.item()
                acc_cn += 1
            continue
        if keys and rng.random() < (a.dense_early if f < 0.3 else a.dense_late):
            try:
                inp, tgt, ans = dense_batch(rng, tok, keys, a.batch_tokens, device)
            except Exception as e:  # never lose a training run to the untested dense path
                log("dense recall disabled:", repr(e))
                keys = []
                continue
            d_ans, _, _ = train_step(model, opt, inp, tgt, ans, lr_at(f, a.lr, a.warmup), device, a.lm_weight)
            step += 1
            seen += inp.numel()
            if step % 5 == 0:
                acc_dense += d_ans.item()
                acc_dn += 1
            continue
        kind = None
        if a.dense_vt > 0 or a.cwe_extra > 0:  # one more draw only when asked, so older commands replay exactly
            r = rng.random()
            kind = "dense_vt" if r < a.dense_vt else "cwe" if r < a.dense_vt + a.cwe_extra and pool else None
        if kind:
            if kind == "dense_vt":
                inp, tgt, ans = dense_vt_batch(rng, tok, a.batch_tokens, device)
            else:
                boost = 1 + (a.cwe_boost - 1) * max(0.0, 1 - f / 0.6)
                inp, tgt, ans = cwe_batch(rng, tok, pool, a.batch_tokens, device, boost)
            x_ans, _, _ = train_step(model, opt, inp, tgt, ans, lr_at(f, a.lr, a.warmup), device, a.lm_weight)
            step += 1
            seen += inp.numel()
            if step % 5 == 0:
                extra[kind] += x_ans.item()
                extra_n[kind] += 1
            continue
        allowed = [L for L in buckets if L <= max_len_at(f, a.curriculum) and buckets[L]]
        L = allowed[rng.integers(len(allowed))]
        items = buckets[L]
        B = max(1, a.batch_tokens // maxlens[L])
        idxs = rng.integers(0, len(items), size=B).tolist()
        inp, tgt, ans = make_batch(items, idxs, device)
        lr = lr_at(f, a.lr, a.warmup)
        ans_loss, lm_loss, gn = train_step(model, opt, inp, tgt, ans, lr, device, a.lm_weight)
        step += 1
        seen += inp.numel()
        if step % 5 == 0:
            acc_ans += ans_loss.item()
            acc_lm += lm_loss.item()
            acc_n += 1
        now = time.time()
        if now - last_log > 15:
            log(f"step {step} f {f:.3f} lr {lr:.2e} len<= {max(allowed)} ans_loss {acc_ans / max(acc_n, 1):.4f} "
                f"lm_loss {acc_lm / max(acc_n, 1):.4f} copy_loss {acc_copy / max(acc_cn, 1):.4f} "
                f"dense_ans_loss {acc_dense / max(acc_dn, 1):.4f} "
                + "".join(f"{k}_ans_loss {extra[k] / extra_n[k]:.4f} " for k in extra if extra_n[k])
                + f"gnorm {gn.item():.2f} tok/s {seen / (now - t_start) / 1e6:.2f}M")
            extra = dict.fromkeys(extra, 0.0)
            extra_n = dict.fromkeys(extra_n, 0)
            acc_ans = acc_lm = 0.0
            acc_n = 0
            acc_copy, acc_cn = 0.0, 0
            acc_dense, acc_dn = 0.0, 0
            last_log = now
        if now - last_ck > a.ckpt_seconds:
            save_checkpoint(model, cfg, tok, ckdir)
            tf = tf_eval(model, groups, device)
            log(f"checkpoint at step {step}; teacher-forced EM:",
                " ".join(f"{t}/{l}={v:.2f}" for (t, l), v in sorted(tf.items())))
            last_ck = time.time()
    train_time = time.time() - t_start
    save_checkpoint(model, cfg, tok, ckdir)
    log(f"training done: {step} steps, {seen / 1e6:.0f}M tokens, {train_time:.0f}s")
    tf = tf_eval(model, groups, device, limit=10 ** 9)
    log("final teacher-forced exact match (all held-out items):")
    for (t, l), v in sorted(tf.items()):
        print(f"  {t:16s} len {l:5d}  tf_em {v:.3f}", flush=True)
    check_reload(model, ckdir, groups, device)

    # 4. greedy eval from the saved checkpoint (tinyllama, float32)
    results = greedy_eval(ckdir, tok, groups, device, deadline=time.time() + a.eval_seconds)
    log("held-out greedy accuracy (float32, full attention, tinyllama reload):")
    print(summarize(results), flush=True)
    with open(os.path.join(a.out, "eval.json"), "w") as fo:
        json.dump({"train_seconds": train_time, "steps": step, "tokens": seen, "params": nparams, "config": cfg,
                   "bytes_per_token": cpt, "teacher_forced": {f"{t}/{l}": v for (t, l), v in tf.items()},
                   "results": results}, fo, indent=1)
    for r in results[:3] + [r for r in results if not r["correct"]][:12]:
        log("sample", r["id"], repr(r["output"]), "expected", repr(r["expected"]))
    log("done")


if __name__ == "__main__":
    sys.exit(main())
