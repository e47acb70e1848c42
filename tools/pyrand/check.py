#!/usr/bin/env python3
"""Print the reference values that internal/pyrand's tests compare against (stdlib only).

The call sequence below is mirrored exactly by TestAgainstCPython in internal/pyrand/pyrand_test.go; each output
line is a JSON object {"seed": S, "call": NAME, "value": V}. Regenerate the golden file with:

    python3 tools/pyrand/check.py > internal/pyrand/testdata/cpython.jsonl
"""
from __future__ import annotations

import json
import random
import string
import sys
import uuid
from typing import Any

SEEDS: list[int] = [0, 42, 43, 2**40 + 5]


def calls(r: random.Random) -> list[tuple[str, Any]]:
    """Draw one value of each kind the RULER generators use, in a fixed order."""
    out: list[tuple[str, Any]] = []
    out.append(("random", repr(r.random())))
    for k in (0, 1, 5, 31, 32, 33, 63, 64):
        out.append((f"getrandbits{k}", r.getrandbits(k)))
    out.append(("getrandbits128", str(r.getrandbits(128))))
    out.append(("randint", r.randint(1000000, 9999999)))
    out.append(("choice", r.choice(range(6171620))))
    out.append(("sample_small", r.sample(range(40), 3)))
    out.append(("sample_large", r.sample(range(100000), 50)))
    out.append(("sample_all", r.sample(range(7), 7)))
    xs = list(range(20))
    r.shuffle(xs)
    out.append(("shuffle", xs))
    out.append(("choices", "".join(r.choices(string.ascii_uppercase, k=5))))
    out.append(("uuid4", str(uuid.UUID(int=r.getrandbits(128), version=4))))
    out.append(("random_last", repr(r.random())))
    return out


def main() -> int:
    for seed in SEEDS:
        r = random.Random(seed)
        for name, value in calls(r):
            print(json.dumps({"seed": seed, "call": name, "value": value}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
