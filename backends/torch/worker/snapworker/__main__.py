"""python3 -m snapworker: the torch backend's worker process (see server.py); python3 -m snapworker bench ...: the
measurements of `snapeval bench --backend torch` (see bench.py)."""
import sys

if len(sys.argv) > 1 and sys.argv[1] == "bench":
    from .bench import main as bench_main

    sys.exit(bench_main(sys.argv[2:]))

from .server import main

sys.exit(main())
