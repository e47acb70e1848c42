"""The worker's main loop: a reader thread turns stdin lines into commands, the main thread runs engine steps.

Setup problems (no transformers, no CUDA device, an architecture it cannot compress, a GPU too small for the model)
are reported as one fatal event with kind "setup" before ready; the Go side turns them into a setup error (exit 2)
that says what to install or change. A CUDA error during a step is fatal (kind "runtime"): the process exits and the
Go side restarts it.
"""
from __future__ import annotations

import argparse
import platform
import queue
import sys
import threading
import traceback
from typing import IO, Any, Callable, Dict, Optional

from . import PROTOCOL_VERSION
from .protocol import Command, Writer, parse_command

_EOF = object()


def _reader(inp: IO[str], q: "queue.Queue[Any]") -> None:
    for line in inp:
        if line.strip():
            q.put(line)
    q.put(_EOF)


def serve(engine: Any, inp: IO[str], emit: Callable[[Dict[str, Any]], None]) -> int:
    """Runs commands and steps until shutdown or the end of input; returns the exit status."""
    q: "queue.Queue[Any]" = queue.Queue()
    threading.Thread(target=_reader, args=(inp, q), daemon=True).start()
    while True:
        block = not engine.busy()
        while True:
            try:
                item = q.get(block=block)
            except queue.Empty:
                break
            block = False
            if item is _EOF:
                return 0
            try:
                cmd = parse_command(item)
            except ValueError as e:
                emit({"ev": "fatal", "kind": "protocol", "msg": f"bad command: {e}"})
                return 3
            if not apply(engine, cmd):
                return 0
        engine.step()


def apply(engine: Any, cmd: Command) -> bool:
    """Applies one command; False for shutdown."""
    if cmd.op == "shutdown":
        return False
    if cmd.op == "cancel":
        engine.cancel(cmd.id)
    elif cmd.request is not None:
        engine.submit(cmd.request)
    return True


def _parse_args(argv: Optional[list]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="snapworker")
    ap.add_argument("--model", required=True, help="checkpoint directory (config.json, weights)")
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--prefill-tokens", type=int, default=16384)
    ap.add_argument("--random-weights", action="store_true", help="initialise the weights from the config (seed 0)")
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "flash"])
    ap.add_argument("--kv-pool-bytes", type=int, default=0,
                    help="the KV pool allocated at start (default: 60%% of the device memory free after loading the "
                         "model; 4 GiB on a CPU)")
    ap.add_argument("--static-decode", default="on", choices=["on", "off"],
                    help="off: no pool, every sequence owns its cache and decodes in the packed forward")
    ap.add_argument("--cuda-graphs", default="on", choices=["on", "off"])
    ap.add_argument("--decode-attn", default="auto", choices=["auto", "sdpa", "split", "triton"])
    ap.add_argument("--tp", type=int, default=1, help="tensor parallelism: run as this many processes (tp.py)")
    ap.add_argument("--tp-rank", type=int, default=0, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def make_pool(runner: Any, rows: int, budget: int) -> Any:
    """The worker's SlotPool: `rows` rows (max_batch) of as many slots as budget bytes allow (pool_geometry); budget
    0 means 60% of the device memory free now, or 4 GiB on a CPU."""
    import torch

    from .pool import SlotPool, pool_geometry

    if budget <= 0:
        if runner.device.type == "cuda":
            budget = int(torch.cuda.mem_get_info(runner.device)[0] * 0.6)
        else:
            budget = 4 << 30
    elem = torch.empty((), dtype=runner.dtype).element_size()
    slot = 2 * runner.layers * runner.kv_heads * runner.head_dim * elem
    n, cap = pool_geometry(budget, slot, rows, getattr(runner, "max_positions", 0))
    return SlotPool(runner.layers, runner.kv_heads, runner.head_dim, n, cap, runner.dtype, runner.device)


def decode_line(rank: int, engine: Any) -> str:
    """The worker log's line about how a rank (0 for the single-device worker) decoded, written at shutdown:
    "snapworker rank K: static decode {...}" with StaticDecoder.describe() (graphs captured, replays, eager steps,
    kernels), or "static decode off"."""
    import json

    d = engine.static.describe() if engine.static is not None else None
    return f"snapworker rank {rank}: static decode " + (json.dumps(d, sort_keys=True) if d is not None else "off")


def _setup(emit: Callable[[Dict[str, Any]], None], msg: str) -> int:
    emit({"ev": "fatal", "kind": "setup", "msg": msg})
    return 2


def main(argv: Optional[list] = None) -> int:
    """Loads the model, announces ready and serves stdin until it ends."""
    emit = Writer(sys.stdout)
    args = _parse_args(argv)
    py = f"Python {platform.python_version()} at {sys.executable}"
    try:
        import torch
    except ImportError as e:
        return _setup(emit, f"{py} cannot import torch ({e}): install PyTorch (pip install torch) or point "
                            "--backend-opt python=PATH at a Python that has it")
    try:
        import transformers
    except ImportError as e:
        return _setup(emit, f"{py} cannot import transformers ({e}): pip install 'transformers>=4.56'")
    if not hasattr(transformers, "AttentionInterface"):
        return _setup(emit, f"transformers {transformers.__version__} has no AttentionInterface: "
                            "pip install -U 'transformers>=4.56'")
    if args.tp != 1:
        from .tp import HFModels, main_tp
        return main_tp(args, list(sys.argv[1:] if argv is None else argv), emit, HFModels)
    from .engine import Engine
    from .hf import HFRunner, Refused, device_info

    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            return _setup(emit, f"torch {torch.__version__} sees no CUDA device (device={args.device}): install a "
                                "CUDA build of PyTorch, or set --backend-opt device=cpu")
        idx = torch.device(args.device).index or 0
        if idx >= torch.cuda.device_count():
            return _setup(emit, f"device {args.device} does not exist ({torch.cuda.device_count()} CUDA devices)")
        torch.cuda.set_device(idx)
    if args.attn == "flash":
        from .cache import use_flash
        try:
            use_flash()
        except ImportError:
            return _setup(emit, "attn=flash needs the flash-attn package (pip install flash-attn), or use attn=sdpa")
    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[args.dtype]
    if dtype == torch.float32:  # float32 means float32: no TF32 in matmuls or convolutions
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    try:
        runner = HFRunner(args.model, args.device, dtype, args.random_weights)
    except Refused as e:
        return _setup(emit, str(e))
    except Exception as e:  # noqa: BLE001
        from .engine import is_oom
        if is_oom(e):
            info = device_info(args.device)
            return _setup(emit, f"the model does not fit {info['gpu'] or args.device} "
                                f"({info['device_memory_bytes'] / 2**30:.1f} GiB) in {args.dtype}: {e}; use a larger "
                                "GPU or a smaller dtype")
        traceback.print_exc()
        return _setup(emit, f"loading {args.model} with transformers {transformers.__version__}: "
                            f"{type(e).__name__}: {e}")
    info: Dict[str, Any] = {"torch": torch.__version__, "transformers": transformers.__version__,
                            "python": platform.python_version(), "device": args.device, "dtype": args.dtype,
                            "elem_bytes": torch.empty((), dtype=dtype).element_size(), "attn": args.attn,
                            "tf32": bool(torch.backends.cuda.matmul.allow_tf32), "tp": 1}
    info.update(runner.info())
    pool = None
    if args.static_decode == "on":
        try:
            pool = make_pool(runner, args.max_batch, args.kv_pool_bytes)
        except ValueError as e:
            return _setup(emit, f"{e}: give the KV pool more memory (kv_memory_gib) or use a larger GPU")
        except Exception as e:  # noqa: BLE001
            from .engine import is_oom
            if not is_oom(e):
                raise
            return _setup(emit, f"the KV pool does not fit the device after loading the model: {e}; lower "
                                "kv_memory_gib")
        info.update({"kv_pool_bytes": pool.nbytes, "pool_rows": pool.rows, "pool_capacity": pool.capacity})
    info.update({"static_decode": pool is not None, "cuda_graphs": pool is not None and args.cuda_graphs == "on"
                 and args.device.startswith("cuda"), "decode_attn": args.decode_attn})
    info.update(device_info(args.device))
    engine = Engine(runner, emit, max_batch=args.max_batch, prefill_tokens=args.prefill_tokens, pool=pool,
                    cuda_graphs=args.cuda_graphs == "on", decode_attn=args.decode_attn)
    emit({"ev": "ready", "protocol": PROTOCOL_VERSION, "info": info})
    try:
        code = serve(engine, sys.stdin, emit)
        print(decode_line(0, engine), file=sys.stderr, flush=True)  # how it decoded (the GPU sessions read it)
        return code
    except Exception as e:  # noqa: BLE001 - a CUDA error leaves the context unusable: report and exit
        traceback.print_exc()
        emit({"ev": "fatal", "kind": "runtime", "msg": f"{type(e).__name__}: {e}"})
        return 1
