"""python3 -m snapworker: the torch backend's worker process (see server.py); python3 -m snapworker bench ...: the
measurements of `snapeval bench --backend torch` (see bench.py)."""
import sys

if len(sys.argv) > 1 and sys.argv[1] == "bench":
    try:
        from .bench import main as bench_main
    except ImportError as e:
        print(f"snapworker bench: Python {sys.version.split()[0]} at {sys.executable} cannot import {e.name} ({e}): "
              "install PyTorch and transformers, or point --backend-opt python=PATH at a Python that has them",
              file=sys.stderr)
        sys.exit(2)
    sys.exit(bench_main(sys.argv[2:]))

from .server import main

sys.exit(main())
