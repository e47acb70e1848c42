#!/usr/bin/env python3
"""A stdlib-only mimic of RULER's generators' random call sequence, for checking eval/ruler against CPython.

It follows NVIDIA/RULER's scripts/data/synthetic/{niah,variable_tracking,common_words_extraction,
freq_words_extraction,qa}.py call for call (global `random` seeded with the seed; NumPy's legacy generator
reproduced by seeding an MT19937 with init_genrand through random.setstate), with a whitespace tokenizer
(len(text.split())) and the "base" model template, on the fixtures in eval/ruler/testdata. It writes one JSON row per
sample for the (task, length) pairs of TestAgainstReference:

    python3 tools/ruler/reference.py eval/ruler/testdata > eval/ruler/testdata/reference.jsonl

The word lists are read from eval/ruler/words. Essay haystacks are not covered (their sentence splitter is NLTK's).
"""
from __future__ import annotations

import json
import math
import os
import random
import string
import sys
import uuid
from typing import Any, Callable

SEED = 42
NOISE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
NEEDLE = "One of the special magic {type_needle_v} for {key} is: {value}."
T_NIAH = ("Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. "
          "I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic "
          "{type_needle_v} for {query} mentioned in the provided text?")
P_NIAH = " The special magic {type_needle_v} for {query} mentioned in the provided text are"
T_VT = ("Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\n"
        "Question: Find all variables that are assigned the value {query} in the text above.")
P_VT = (" Answer: According to the chain(s) of variable assignment in the text above, {num_v} variables are "
        "assigned the value {query}, they are: ")
T_CWE = ("Below is a numbered list of words. In these words, some appear more often than others. Memorize the ones "
         "that appear most often.\n{context}\nQuestion: What are the 10 most common words in the above list?")
P_CWE = " Answer: The top 10 words that appear most often in the list are:"
T_FWE = ("Read the following coded text and track the frequency of each coded word. Find the three most frequently "
         "appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore the dots '....'. "
         "What are the three most frequently appeared words in the above coded text?")
P_FWE = " Answer: According to the coded text above, the three most frequently appeared words are:"
T_QA = ("Answer the question based on the given documents. Only give me the answer and do not output any other "
        "words.\n\nThe following are given documents.\n\n{context}\n\nAnswer the question based on the given "
        "documents. Only give me the answer and do not output any other words.\n\nQuestion: {query}")
P_QA = " Answer:"
DEPTHS = [round(i * (100 / 39)) for i in range(39)] + [100]


def ntok(text: str) -> int:
    return len(text.split())


class NumpyLegacy:
    """numpy.random.seed(s) / randint(low, high) for 32-bit ranges, on a random.Random set to init_genrand(s)."""

    def __init__(self, seed: int) -> None:
        mt = [0] * 624
        mt[0] = seed & 0xFFFFFFFF
        for i in range(1, 624):
            mt[i] = (1812433253 * (mt[i - 1] ^ (mt[i - 1] >> 30)) + i) & 0xFFFFFFFF
        self.r = random.Random()
        self.r.setstate((3, tuple(mt) + (624,), None))

    def randint(self, low: int, high: int) -> int:
        rng = high - low - 1
        mask = (1 << rng.bit_length()) - 1
        while True:
            v = self.r.getrandbits(32) & mask
            if v <= rng:
                return low + v


def words_dir() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "eval", "ruler", "words")


def word_file(name: str) -> list[str]:
    with open(os.path.join(words_dir(), name)) as f:
        return [w.rstrip() for w in f.readlines()]


def cut_prefix(text: str, prefix: str) -> tuple[str, str]:
    i = text.rfind(prefix[:10])
    return text[:i], text[i:]


def binary_search(lo: int, hi: int, max_seq: int, extra: int, probe: Callable[[int], str]) -> int:
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        if ntok(probe(mid)) + extra <= max_seq:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return best


def shrink_loop(size: int, step: int, max_seq: int, make: Callable[[int], tuple[str, Any, int]]) -> tuple[str, Any, int]:
    while True:
        try:
            text, ans, length = make(size)
            assert length <= max_seq
            return text, ans, length
        except Exception:
            if size > step:
                size -= step


def niah(task: dict[str, Any], max_seq: int, n: int) -> list[dict[str, Any]]:
    random.seed(SEED)
    keys_words = sorted(set(f"{a}-{b}" for a in word_file("adjectivelist.txt") for b in word_file("nounlist.txt")))
    num_k = max(task["k"], task["q"])

    def rnd(kind: str) -> str:
        if kind == "numbers":
            return str(random.randint(10**6, 10**7 - 1))
        if kind == "words":
            return random.choice(keys_words)
        return str(uuid.UUID(int=random.getrandbits(128), version=4))

    def make(num: int) -> tuple[str, list[str]]:
        keys, values, needles = [], [], []
        for _ in range(num_k):
            keys.append(rnd(task["tk"]))
            vals = []
            for _ in range(task["v"]):
                vals.append(rnd(task["tv"]))
                needles.append(NEEDLE.format(type_needle_v=task["tv"], key=keys[-1], value=vals[-1]))
            values.append(vals)
        random.Random(SEED).shuffle(needles)
        if task["hay"] == "noise":
            sents = [NOISE] * num
        else:
            sents = []
            for _ in range(num):
                k = rnd(task["tk"])
                v = rnd(task["tv"])
                sents.append(NEEDLE.format(type_needle_v=task["tv"], key=k, value=v))
        for at, nd in zip(sorted(random.sample(range(num), len(needles)), reverse=True), needles):
            sents.insert(at, nd)
        context = "\n".join(sents)
        picks = random.sample(range(num_k), task["q"])
        queries = [keys[i] for i in picks]
        answers = [a for i in picks for a in values[i]]
        query = ", ".join(queries[:-1]) + ", and " + queries[-1] if len(queries) > 1 else queries[0]
        tmpl, tv = T_NIAH + P_NIAH, task["tv"]
        if task["q"] * task["v"] == 1:
            for a, b in (("Some", "A"), ("are all", "is"), ("are", "is"), ("answers", "answer")):
                tmpl = tmpl.replace(a, b)
            tv = tv[:-1]
        return tmpl.format(type_needle_v=tv, context=context, query=query), answers

    inc = 25 if max_seq >= 4096 else 5
    per = ntok(make(inc)[0]) / inc
    best = binary_search(inc, max(int((max_seq / per) * 3), inc * 2), max_seq, 128, lambda m: make(m)[0])
    best = inc if best is None else best
    rows = []
    for _ in range(n):
        def attempt(size: int) -> tuple[str, Any, int]:
            text, ans = make(size)
            return text, ans, ntok(text) + 128
        text, ans, length = shrink_loop(best, inc, max_seq, attempt)
        inp, prefix = cut_prefix(text, P_NIAH)
        at = inp.find(ans[0])
        rows.append({"index": at, "input": inp, "outputs": ans, "length": length, "length_w_model_temp": length,
                     "answer_prefix": prefix, "token_position_answer": ntok(inp[:at])})
    return rows


def vt(max_seq: int, n: int) -> list[dict[str, Any]]:
    random.seed(SEED)
    np = NumpyLegacy(SEED)
    hops = 4

    def chains(icl: bool) -> tuple[list[list[str]], list[list[str]]]:
        k, h = (3, min(10, hops)) if icl else (5, hops)
        names = ["".join(random.choices(string.ascii_uppercase, k=k)).upper() for _ in range(h + 1)]
        while len(set(names)) < h + 1:
            names.append("".join(random.choices(string.ascii_uppercase, k=k)).upper())
        vs, cs = [], []
        for i in range(0, len(names), h + 1):
            this = names[i:i + h + 1]
            vs.append(this)
            c = [f"VAR {this[0]} = {12345 if icl else np.randint(10000, 99999)}"]
            for j in range(h):
                c.append(f"VAR {this[j + 1]} = VAR {this[j]} ")
            cs.append(c)
        return vs, cs

    def make(num: int, icl: bool) -> tuple[str, list[str]]:
        vs, cs = chains(icl)
        value = cs[0][0].split("=")[-1].strip()
        sents = [NOISE] * num
        for c in cs:
            pos = sorted(random.sample(range(len(sents)), len(c)))
            for p, j in zip(pos, range(len(c))):
                sents.insert(p + j, c[j])
        context = "\n".join(sents).replace(". \n", ".\n")
        return (T_VT + P_VT).format(context=context, query=value, num_v=(min(10, hops) if icl else hops) + 1), vs[0]

    def run(samples: int, limit: int, icl_ex: str | None) -> list[dict[str, Any]]:
        ttg = 30 if icl_ex is not None else 0
        inc = (10 if max_seq >= 4096 else 5) if icl_ex is not None else 5
        ex_tokens = ntok(icl_ex) if icl_ex is not None else 0
        is_icl = icl_ex is None
        per = ntok(make(inc, is_icl)[0]) / inc
        best = binary_search(inc, max(int((limit / per) * 3), inc * 2), limit, ex_tokens + ttg, lambda m: make(m, is_icl)[0])
        best = inc if best is None else best
        out = []
        for i in range(samples):
            def attempt(size: int) -> tuple[str, Any, int]:
                text, ans = make(size, is_icl)
                if icl_ex is not None:
                    cut = text.index(T_VT[:20])
                    ex = icl_ex
                    for item in ex.strip().split()[-hops - 1:]:
                        ex = ex.replace(item, "".join(random.choices(string.ascii_uppercase, k=len(item))).upper())
                    ex = ex.replace("12345", str(np.randint(10000, 99999)))
                    text = text[:cut] + ex + "\n" + text[cut:]
                return text, ans, ntok(text) + ttg
            text, ans, length = shrink_loop(best, inc, limit, attempt)
            if icl_ex is None:
                out.append({"index": i, "input": text, "outputs": ans, "length": length})
            else:
                inp, prefix = cut_prefix(text, P_VT)
                out.append({"index": i, "input": inp, "outputs": ans, "length": length, "length_w_model_temp": length,
                            "answer_prefix": prefix})
        return out

    ex = run(1, 500, None)[0]
    return run(n, max_seq, ex["input"] + " " + " ".join(ex["outputs"]) + "\n")


def cwe(max_seq: int, n: int) -> list[dict[str, Any]]:
    random.seed(SEED)
    pool = sorted(set(word_file("nounlist.txt") + word_file("adjectivelist.txt") + word_file("verblist.txt")))
    random.Random(SEED).shuffle(pool)

    def example(num: int, cr: int, ur: int) -> tuple[str, list[str]]:
        picked = random.sample(pool, num)
        common, rest = picked[:10], picked[10:]
        lst = common * cr + rest * ur
        random.Random(SEED).shuffle(lst)
        return " ".join(f"{i + 1}. {w}" for i, w in enumerate(lst)), common

    def make(num: int) -> tuple[str, list[str]]:
        small = max_seq < 4096
        ctx, ans = example(20, 3, 1) if small else example(40, 10, 3)
        shot = (T_CWE + P_CWE).format(context=ctx) + " " + " ".join(f"{i + 1}. {w}" for i, w in enumerate(ans))
        ctx, ans = example(num, 6, 1) if small else example(num, 30, 3)
        return shot + "\n" + (T_CWE + P_CWE).format(context=ctx), ans

    per = ntok(make(4096)[0]) / 4096
    best = binary_search(10, max(int(max_seq // per) * 2, 20), max_seq, 120, lambda m: make(m)[0])
    best = 10 if best is None else best
    rows = []
    for i in range(n):
        def attempt(size: int) -> tuple[str, Any, int]:
            text, ans = make(size)
            return text, ans, ntok(text) + 120
        text, ans, length = shrink_loop(best, 10, max_seq, attempt)
        inp, prefix = cut_prefix(text, P_CWE)
        rows.append({"index": i, "input": inp, "outputs": ans, "length": length, "length_w_model_temp": length,
                     "answer_prefix": prefix})
    return rows


def fwe(max_seq: int, n: int) -> list[dict[str, Any]]:
    random.seed(SEED)
    limit = max_seq - 50
    vocab_size, inc = limit // 50, limit // 32
    zeta2 = math.pi ** 2 / 6

    def gen_text(vocab: list[str], num: int) -> tuple[str, list[str]]:
        words = []
        for k, w in enumerate(vocab, start=1):
            words += [w] * int(num * (k ** -2.0) / zeta2)
        random.Random(SEED).shuffle(words)
        return (T_FWE + P_FWE).format(context=" ".join(words)), vocab[1:4]

    def make(num: int) -> tuple[str, list[str], int]:
        vocab = ["".join(random.choices(string.ascii_lowercase, k=6)) for _ in range(vocab_size)]
        while len(set(vocab)) < vocab_size:
            vocab.append("".join(random.choices(string.ascii_lowercase, k=6)))
        vocab = sorted(set(vocab))
        random.Random(SEED).shuffle(vocab)
        vocab[0] = "..."
        if num > 0:
            text, _ = gen_text(vocab, num)
            while ntok(text) > limit:
                num -= inc
                text, _ = gen_text(vocab, num)
        else:
            num = limit // 6
            text, _ = gen_text(vocab, num)
            while ntok(text) < limit:
                num += inc
                text, _ = gen_text(vocab, num)
            num -= inc
        text, ans = gen_text(vocab, num)
        return text, ans, num

    num = make(-1)[2]
    rows = []
    for i in range(n):
        text, ans, _ = make(num)
        length = ntok(text) + 50
        inp, prefix = cut_prefix(text, P_FWE)
        rows.append({"index": i, "input": inp, "outputs": ans, "length": length, "length_w_model_temp": length,
                     "answer_prefix": prefix})
    return rows


def load_qa(data_dir: str, which: str) -> tuple[list[dict[str, Any]], list[str]]:
    if which == "squad":
        with open(os.path.join(data_dir, "squad.json")) as f:
            data = json.load(f)
        docs = sorted(set(p["context"] for d in data["data"] for p in d["paragraphs"]))
        idx = {c: i for i, c in enumerate(docs)}
        qas = []
        for d in data["data"]:
            more = [idx[p["context"]] for p in d["paragraphs"]]
            for p in d["paragraphs"]:
                for q in p["qas"]:
                    if not q["is_impossible"]:
                        own = idx[p["context"]]
                        qas.append({"query": q["question"], "outputs": [a["text"] for a in q["answers"]],
                                    "context": [own], "more": [m for m in more if m != own]})
        return qas, docs
    with open(os.path.join(data_dir, "hotpotqa.json")) as f:
        data = json.load(f)
    docs = sorted(set(f"{t}\n{''.join(p)}" for d in data for t, p in d["context"]))
    idx = {c: i for i, c in enumerate(docs)}
    qas = [{"query": d["question"], "outputs": [d["answer"]], "context": [idx[f"{t}\n{''.join(p)}"] for t, p in d["context"]],
            "more": []} for d in data]
    return qas, docs


def qa(data_dir: str, which: str, max_seq: int, n: int) -> list[dict[str, Any]]:
    random.seed(SEED)
    qas, docs = load_qa(data_dir, which)

    def make(index: int, num: int) -> tuple[str, list[str]]:
        q = qas[index]
        own, more = q["context"], q["more"]
        if num < len(docs):
            if (num - len(own)) > len(more):
                extra = [i for i, _ in enumerate(docs) if i not in own + more]
                chosen = own + more + random.sample(extra, max(0, num - len(own) - len(more)))
            else:
                chosen = own + random.sample(more, num - len(own))
            chosen_docs = [docs[i] for i in chosen]
        else:
            chosen_docs = (docs * ((num + len(docs) - 1) // len(docs)))[:num]
        random.Random(SEED).shuffle(chosen_docs)
        ctx = "\n\n".join(f"Document {i + 1}:\n{d}" for i, d in enumerate(chosen_docs))
        return (T_QA + P_QA).format(context=ctx, query=q["query"]), q["outputs"]

    per = ntok(make(0, 10)[0]) / 10
    best = binary_search(10, max(int((max_seq / per) * 3), 20), max_seq, 32, lambda m: make(0, m)[0])
    best = 10 if best is None else best
    rows = []
    for i in range(n):
        def attempt(size: int) -> tuple[str, Any, int]:
            text, ans = make(i, size)
            return text, ans, ntok(text) + 32
        text, ans, length = shrink_loop(best, 10, max_seq, attempt)
        inp, prefix = cut_prefix(text, P_QA)
        rows.append({"index": i, "input": inp, "outputs": ans, "length": length, "length_w_model_temp": length,
                     "answer_prefix": prefix})
    return rows


CASES: list[tuple[str, int]] = [
    ("niah_single_1", 300), ("niah_single_1", 4096), ("niah_multikey_2", 600), ("niah_multikey_3", 800),
    ("vt", 1200), ("vt", 4096), ("cwe", 600), ("cwe", 4096), ("fwe", 800), ("qa_1", 500), ("qa_2", 700),
]
NIAH = {
    "niah_single_1": {"hay": "noise", "tk": "words", "tv": "numbers", "k": 1, "v": 1, "q": 1},
    "niah_multikey_2": {"hay": "needle", "tk": "words", "tv": "numbers", "k": 1, "v": 1, "q": 1},
    "niah_multikey_3": {"hay": "needle", "tk": "uuids", "tv": "uuids", "k": 1, "v": 1, "q": 1},
}


def main(argv: list[str]) -> int:
    data_dir = argv[1] if len(argv) > 1 else "eval/ruler/testdata"
    for task, max_seq in CASES:
        if task in NIAH:
            rows = niah(NIAH[task], max_seq, 3)
        elif task == "vt":
            rows = vt(max_seq, 3)
        elif task == "cwe":
            rows = cwe(max_seq, 3)
        elif task == "fwe":
            rows = fwe(max_seq, 3)
        else:
            rows = qa(data_dir, "squad" if task == "qa_1" else "hotpotqa", max_seq, 3)
        for r in rows:
            print(json.dumps({"task": task, "max_seq": max_seq, **r}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
