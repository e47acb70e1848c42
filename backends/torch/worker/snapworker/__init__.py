"""snapworker: the Python side of snapeval's torch backend.

The Go backend (backends/torch) starts ``python3 -m snapworker`` and talks to it in JSON lines over stdin/stdout
(protocol.py). The worker loads a Hugging Face checkpoint with transformers, registers its own attention function
(attention.py) that owns a fixed-size slot cache per sequence (cache.py) laid out by the plan the Go side computed
with package compress (plan.py), selects the SnapKV top-K at the end of each sequence's prefill (select.py) and runs
continuous batching (engine.py) with per-request seeded sampling (sampling.py).
"""

PROTOCOL_VERSION = 1
