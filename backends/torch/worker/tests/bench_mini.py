"""python -m tests.bench_mini bench --spec SPEC --out RESULT: snapworker's bench on the tests' random plain-torch
model (minillama.random_model: 2 layers, 4 query / 2 KV heads of 8, vocab 97, float32, CPU) instead of a
transformers checkpoint, so that Go's `snapeval bench --backend torch` path runs end to end where transformers is
not installed (backends/torch TestBenchOnTheMiniModel). transformers' own side is reported as not measured."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import List, Optional

from . import minillama
from snapworker.bench import Bench


def main(argv: Optional[List[str]] = None) -> int:
    t0 = time.monotonic()
    ap = argparse.ArgumentParser(prog="bench_mini")
    ap.add_argument("cmd", choices=["bench"])
    ap.add_argument("--spec", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    with open(args.spec) as f:
        spec = json.load(f)
    Bench(minillama.random_model(), spec, args.out, log=lambda s: print(s, file=sys.stderr, flush=True),
          t_start=t0).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
