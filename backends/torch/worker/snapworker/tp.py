"""The tensor-parallel worker (--tp N): N processes, one per device, that the Go side sees as one worker.

The process Go starts is rank 0 (the leader). It starts ranks 1..N-1 as children (the same command with --tp-rank k
and torchrun's environment: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), joins them in a process group
(NCCL on CUDA, gloo on the CPU) for the model's all-reduces and a gloo group for control, and alone speaks the line
protocol. Each loop it sends the followers the command lines it read (none, in most decode steps), every rank applies
them to its own Engine and runs the same step over its shard (shard.py), so every rank holds the same sequences,
samples the same tokens from the same full logits, and only the leader emits events. The kept positions of a request
(want_kept) are gathered from the ranks, each owning its KV heads, in rank order.

Each rank allocates its share of the KV pool at start (pool.SlotPool over its own KV heads; the same rows and slots
per row on every rank, sized by the rank with the least memory), so that the engine's static decode step runs on
every rank over the same rows: eagerly on the CPU, and from a CUDA graph per batch-size bucket on GPUs, each rank
capturing its own graphs with the step's collectives inside (TPStaticDecoder: a bucket's graph is used only where every
rank captured it, and the "auto" decode kernel is chosen on the slowest rank's timings, among the kernels every rank
timed: Triton's only where every rank's startup check passed). Every forward checks that the
ranks run the same step (shard.ShardRunner.signature): before the model runs when eager, after each replay for graphs.

A rank that fails takes the group down: the leader watches its children and, when one ends, reports a fatal event
naming it and exits (the Go side sees the worker die, restarts it and retries the requests it held); a child dies
with its leader (PR_SET_PDEATHSIG, and a watch of its parent); an out-of-memory step, which the single-device worker
survives by failing that step's requests, is fatal here, because the other ranks cannot be told to fail the same
step; and every forward first checks that all ranks run the same step (shard.ShardRunner.check_step). NVLink
multicast (NVLS) stays off in every rank's environment.

transformers' own tensor parallelism is not used: its API moved within 5.x (from_pretrained(tp_plan="auto") under
torchrun, then DistributedConfig(tp_size=N) with tp_plan removed, then restored with a deprecation: transformers PRs
44996, 47353, 48300), it has no path for random weights of a shape larger than one device, and it cannot run where
transformers is absent. shard.py's plan needs only nn.Linear modules named as every llama-like model names them, is
the same code on the CPU tests (minillama) and on GPUs, and leaves transformers to run the layers it always runs.
"""
from __future__ import annotations

import argparse
import collections
import ctypes
import datetime
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from typing import IO, Any, Callable, Deque, Dict, List, NoReturn, Optional, Protocol, Tuple

import torch
import torch.distributed as dist

from . import PROTOCOL_VERSION
from .cache import DECODE_ATTN
from .engine import Engine, is_oom
from .pool import SlotPool
from .protocol import parse_command
from .static import StaticDecoder

# Kept in every rank's environment: NVLink SHARP / multicast stays off (the lent machines require it).
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}

# How long a rank waits in a compute collective for the others (a step's slowest layer, not an idle worker).
COMPUTE_TIMEOUT = datetime.timedelta(minutes=10)
# The followers wait for the leader's next command as long as the worker lives.
CONTROL_TIMEOUT = datetime.timedelta(days=3650)

_EOF = object()


class Models(Protocol):
    """What the tensor-parallel worker needs from a model family: a check before any process starts, and one
    rank's runner (shard.build). snapworker.tp.HFModels loads transformers checkpoints; the tests load minillama."""

    def precheck(self, world: int) -> str:
        """Why the model cannot run at tp=world ("" when it can)."""
        ...

    def build(self, rank: int, world: int, group: Any, device: torch.device) -> Any:
        """This rank's runner (a shard.ShardRunner)."""
        ...


class HFModels:
    """Hugging Face checkpoints split by shard.py: transformers' model class with the snapeval attention function,
    built with its matrices on meta and loaded slice by slice from the safetensors files."""

    def __init__(self, args: argparse.Namespace) -> None:
        from transformers import AutoConfig

        from .hf import check_architecture, register

        register()
        self.args = args
        self.config = AutoConfig.from_pretrained(args.model)
        check_architecture(self.config)
        tc = getattr(self.config, "get_text_config", lambda: self.config)()
        q = int(tc.num_attention_heads)
        from .shard import Shape

        self.shape = Shape(layers=int(tc.num_hidden_layers), q_heads=q,
                           kv_heads=int(getattr(tc, "num_key_value_heads", None) or q),
                           head_dim=int(getattr(tc, "head_dim", None) or tc.hidden_size // q), vocab=int(tc.vocab_size),
                           max_positions=int(getattr(tc, "max_position_embeddings", 0) or 0),
                           intermediate=int(getattr(tc, "intermediate_size", 0) or 0),
                           architecture=",".join(getattr(self.config, "architectures", None) or []),
                           model_type=getattr(self.config, "model_type", ""))
        self.std = float(getattr(tc, "initializer_range", 0.02) or 0.02)

    def precheck(self, world: int) -> str:
        from .shard import check_divides

        return check_divides(self.shape, world)

    def build(self, rank: int, world: int, group: Any, device: torch.device) -> Any:
        import transformers
        from transformers import AutoModelForCausalLM

        from .hf import ATTN_NAME, _dtype_kw, chunk_mlps, note_pre_rope_keys, rope_facts
        from .shard import Checkpoint, build

        dtype = dtype_of(self.args.dtype)
        kw: Dict[str, Any] = {_dtype_kw(transformers.__version__): dtype, "attn_implementation": ATTN_NAME}
        source = None if self.args.random_weights else Checkpoint(self.args.model)
        try:
            runner = build(lambda: AutoModelForCausalLM.from_config(self.config, **kw), self.shape, _hf_call, rank,
                           world, group, device, dtype, source, seed=0, std=self.std)
        finally:
            if source is not None:
                source.close()
        # Long prompts run the MLPs in slices, as hf.HFRunner does (each slice's down_proj all-reduces on its own).
        runner.mlp_ctl = chunk_mlps(runner.model, 32768)
        # As hf.HFRunner: rerotate's RoPE facts (refused where they cannot be read) and knorm's pre-RoPE keys.
        runner.rope_inv_freq, runner.rope_style = rope_facts(self.config, runner.model, self.shape.head_dim)
        runner.pre_rope = note_pre_rope_keys(runner.model, self.shape.head_dim)
        return runner


def _hf_call(model: Any, ids: torch.Tensor, positions: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    out = model(input_ids=ids[None], position_ids=positions[None], use_cache=False, logits_to_keep=last)
    logits = out.logits[0]
    if logits.shape[0] != last.shape[0]:
        raise RuntimeError(f"model returned {logits.shape[0]} logits rows, asked for {last.shape[0]}")
    return logits


def dtype_of(name: str) -> torch.dtype:
    """The torch dtype of a --dtype name."""
    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def rank_devices(device: str, world: int) -> List[str]:
    """The device of each rank: cpu for all, or cuda:K..cuda:K+world-1 for device cuda[:K]."""
    if device == "cpu":
        return ["cpu"] * world
    base = torch.device(device).index or 0
    return [f"cuda:{base + r}" for r in range(world)]


class Group:
    """The ranks' process groups: the default one (NCCL on CUDA, gloo on the CPU) carries the model's collectives;
    a gloo group carries the leader's commands, the kept positions and the device reports."""

    def __init__(self, rank: int, world: int, device: torch.device) -> None:
        self.rank, self.world = rank, world
        kw: Dict[str, Any] = {"init_method": "env://", "rank": rank, "world_size": world, "timeout": COMPUTE_TIMEOUT}
        if device.type == "cuda":
            try:  # torch >= 2.3 binds the communicator to the device at once
                dist.init_process_group("nccl", device_id=device, **kw)
            except TypeError:
                dist.init_process_group("nccl", **kw)
        else:
            dist.init_process_group("gloo", **kw)
        self.compute: Any = None  # the default group
        self.control = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT)

    def send(self, lines: List[str], stop: Optional[int]) -> None:
        """Leader: the command lines of this loop and whether to stop (one 8-byte broadcast when there are none)."""
        payload = json.dumps({"lines": lines, "stop": stop}).encode() if lines or stop is not None else b""
        dist.broadcast(torch.tensor([len(payload)], dtype=torch.int64), 0, group=self.control)
        if payload:
            dist.broadcast(torch.frombuffer(bytearray(payload), dtype=torch.uint8), 0, group=self.control)

    def receive(self) -> Tuple[List[str], Optional[int]]:
        """Follower: what the leader sent."""
        n = torch.zeros(1, dtype=torch.int64)
        dist.broadcast(n, 0, group=self.control)
        if int(n.item()) == 0:
            return [], None
        buf = torch.empty(int(n.item()), dtype=torch.uint8)
        dist.broadcast(buf, 0, group=self.control)
        d = json.loads(bytes(buf.numpy()))
        return list(d["lines"]), d["stop"]

    def gather(self, obj: Any) -> List[Any]:
        """Every rank's obj, in rank order, on every rank."""
        out: List[Any] = [None] * self.world
        dist.all_gather_object(out, obj, group=self.control)
        return out

    def close(self) -> None:
        """Leaves the process groups."""
        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001 - a group that failed cannot always be torn down cleanly
            pass


class RankFailure(RuntimeError):
    """A step failed on this rank: the whole tensor-parallel worker stops (the Go side restarts it)."""

    fatal = True  # never taken for a recoverable out-of-memory error (engine.is_oom)


class _Replay:
    """A rank's CUDA graph of a decode bucket: each replay leaves the step's signature (captured with the graph)
    for TPStaticDecoder to check."""

    def __init__(self, graph: Any, sig: Optional[torch.Tensor], owner: "TPStaticDecoder") -> None:
        self.graph, self.sig, self.owner = graph, sig, owner

    def replay(self) -> None:
        self.graph.replay()
        self.owner.replayed = self.sig


class TPStaticDecoder(StaticDecoder):
    """The static decode of one rank. Every rank runs the same decode steps over its share of the pool (its KV
    heads), and must run them the same way: a bucket's CUDA graph is used only when every rank captured it (a
    capture that fails on one rank turns graphs off on all), the "auto" attention kernel is the one fastest on the
    slowest rank, and each replay's step signature (ShardRunner.signature, inside the graph) is checked afterwards."""

    def __init__(self, runner: Any, pool: SlotPool, cuda_graphs: bool, impl: str, group: "Group") -> None:
        super().__init__(runner, pool, cuda_graphs, impl)
        self.group = group
        self.replayed: Optional[torch.Tensor] = None

    def decode(self, tokens: List[int], positions: List[int], slots: List[int], span: int) -> torch.Tensor:
        self.replayed = None
        out = super().decode(tokens, positions, slots, span)
        if self.replayed is not None:
            self.r.verify(self.replayed)
        return out

    def _capture(self, b: int, impl: str) -> Optional[Tuple[Any, torch.Tensor]]:
        # No collective of an earlier step may still be in flight for NCCL's watchdog to poll during the capture.
        torch.cuda.synchronize(self.r.device)
        got = super()._capture(b, impl)
        errors = self.group.gather("" if got is not None else self.graph_error or "capture failed")
        bad = [f"rank {r}: {e}" for r, e in enumerate(errors) if e]
        if bad:
            self.graphs_on = False
            self.graphs.clear()
            self.graph_error = "; ".join(bad)
            return None
        assert got is not None
        self.graphs[b] = (_Replay(got[0], self.r.captured, self), got[1])
        return self.graphs[b]

    def _tune(self, b: int) -> str:
        super()._tune(b)
        worst: Dict[str, float] = {}
        for ms in self.group.gather(self.impl_ms.get(b, {})):
            for k in DECODE_ATTN:
                worst[k] = max(worst.get(k, 0.0), ms.get(k, float("inf")))
        worst = {k: v for k, v in worst.items() if v != float("inf")}
        self.impl_ms[b] = worst
        if not worst:
            return "sdpa"
        return min(worst, key=lambda k: (worst[k], k != "sdpa"))


class TPEngine(Engine):
    """The engine of one rank, over its shard and its share of the KV pool. A failure that the single-device engine
    survives by failing some requests (out of memory in a step or an allocation) ends the worker here: the other
    ranks ran, or are blocked in, the same step."""

    def __init__(self, rank: int, group: Optional["Group"], runner: Any, emit: Callable[[Dict[str, Any]], None],
                 max_batch: int = 32, prefill_tokens: int = 16384, pool: Optional[SlotPool] = None,
                 cuda_graphs: bool = True, decode_attn: str = "auto") -> None:
        """group (the ranks' groups) is needed with a pool: the static decoders of the ranks agree through it."""
        super().__init__(runner, emit, max_batch=max_batch, prefill_tokens=prefill_tokens, pool=pool,
                         cuda_graphs=cuda_graphs, decode_attn=decode_attn)
        self.rank = rank
        self.tp = group.world if group is not None else 1
        if pool is not None:
            if group is None:
                raise ValueError("TPEngine: a pool needs the ranks' group")
            self.static = TPStaticDecoder(runner, pool, cuda_graphs, decode_attn, group)

    def _fail(self, seqs: List[Any], kind: str, msg: str) -> None:
        raise RankFailure(f"rank {self.rank}: {msg}; a tensor-parallel step cannot fail on one rank alone, so the "
                          "worker stops")

    def _place(self, req: Any) -> Any:
        try:
            return super()._place(req)
        except Exception as e:  # noqa: BLE001
            if not is_oom(e):
                raise
            raise RankFailure(f"rank {self.rank}: out of memory allocating a cache of {req.plan.capacity} slots: {e}; "
                              "a tensor-parallel admission cannot fail on one rank alone, so the worker stops") from e


class RankEmit:
    """The emit callback of every rank's engine: done events with kept (and evicted) positions gather them from all
    ranks (each holds its own KV heads) and report the KV bytes of all ranks; only the leader writes events."""

    def __init__(self, group: Group, out: Optional[Callable[[Dict[str, Any]], None]]) -> None:
        self.group, self.out = group, out

    def __call__(self, ev: Dict[str, Any]) -> None:
        if ev.get("ev") == "done" and "kept" in ev:
            parts = self.group.gather(ev["kept"])
            ev = dict(ev, kept=[[h for part in parts for h in part[layer]] for layer in range(len(ev["kept"]))])
        if ev.get("ev") == "done" and "evicted" in ev:  # h2o, tova: [step][layer][kv head], the heads likewise
            parts = self.group.gather(ev["evicted"])
            ev = dict(ev, evicted=[[[h for part in parts for h in part[i][layer]] for layer in range(len(step))]
                                   for i, step in enumerate(ev["evicted"])])
        if ev.get("ev") == "done" and "kv_bytes" in ev:  # every rank holds the same bytes for its KV heads
            ev = dict(ev, kv_bytes=ev["kv_bytes"] * self.group.world)
        if self.out is not None:
            self.out(ev)


class Locked:
    """An emit callback safe to call from several threads (the rank watchers write fatal events)."""

    def __init__(self, emit: Callable[[Dict[str, Any]], None]) -> None:
        self.emit = emit
        self.lock = threading.Lock()

    def __call__(self, ev: Dict[str, Any]) -> None:
        with self.lock:
            self.emit(ev)


def _stderr_line(line: str, lock: threading.Lock) -> None:
    with lock:
        sys.stderr.write(line if line.endswith("\n") else line + "\n")
        sys.stderr.flush()


def describe_exit(rc: int) -> str:
    """An exit status in words: "exit status 2" or "killed by SIGKILL"."""
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


class Ranks:
    """The leader's children (ranks 1..N-1): their output goes to the leader's stderr (the worker log) with a
    "[rank k]" prefix, and the end of any of them, unless the leader is stopping, is a fatal event and the end of the
    leader."""

    def __init__(self, out: Callable[[Dict[str, Any]], None]) -> None:
        self.out = out
        self.procs: List[subprocess.Popen] = []
        self.tails: Dict[int, Deque[str]] = {}
        self.stopping = False
        self.ready = False
        self.lock = threading.Lock()

    def spawn(self, rank: int, argv: List[str], env: Dict[str, str]) -> None:
        """Starts rank `rank` (from the main thread: a child's death signal follows the thread that forked it)."""
        p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, errors="replace")
        self.procs.append(p)
        self.tails[rank] = collections.deque(maxlen=20)
        pumps = [threading.Thread(target=self._pump, args=(rank, s), daemon=True) for s in (p.stdout, p.stderr)]
        for t in pumps:
            t.start()
        threading.Thread(target=self._watch, args=(rank, p, pumps), daemon=True).start()
        _stderr_line(f"snapworker: tensor-parallel rank {rank} started, pid {p.pid}", self.lock)

    def _pump(self, rank: int, stream: Optional[IO[str]]) -> None:
        if stream is None:
            return
        for line in stream:
            self.tails[rank].append(line.rstrip("\n"))
            _stderr_line(f"[rank {rank}] {line}", self.lock)

    def _watch(self, rank: int, p: subprocess.Popen, pumps: List[threading.Thread]) -> None:
        rc = p.wait()
        for t in pumps:
            t.join(timeout=2)
        if self.stopping:
            return
        ready = self.ready
        msg = self.death(rank, p, rc)
        _stderr_line(f"snapworker: {msg}", self.lock)
        self.out({"ev": "fatal", "kind": "runtime" if ready else "setup", "msg": msg})
        self.kill()
        os._exit(1 if ready else 2)

    def death(self, rank: int, p: subprocess.Popen, rc: int) -> str:
        """Why the worker stops when rank ended with status rc: its exit and its last output."""
        tail = " | ".join(self.tails[rank])
        return (f"tensor-parallel rank {rank} (pid {p.pid}) ended ({describe_exit(rc)}), so the whole worker stops"
                + (f"; its last output: {tail}" if tail else ""))

    def first_death(self, wait_s: float, grace_s: float = 15.0) -> str:
        """The death message of a child that has ended or ends within wait_s ("" if none): when the leader's own
        step fails, a dead rank is usually why (its collective lost a peer), and the better message. A child that
        has written why it fails (failed_line) but not yet ended is waited for up to grace_s (a loaded machine can
        take seconds to end a process)."""
        self.stopping = True
        start = time.monotonic()
        while True:
            for rank, p in enumerate(self.procs, start=1):
                rc = p.poll()
                if rc is not None:
                    time.sleep(0.2)  # let the pumps take its last lines
                    return self.death(rank, p, rc)
            waited = time.monotonic() - start
            failing = any(line.startswith(failed_line(rank)) for rank, tail in self.tails.items() for line in tail)
            if waited >= (grace_s if failing else wait_s):
                return ""
            time.sleep(0.05)

    def kill(self) -> None:
        """Kills every child at once."""
        self.stopping = True
        for p in self.procs:
            if p.poll() is None:
                p.kill()

    def stop(self, wait_s: float) -> None:
        """Waits up to wait_s for the children to end (they were told to stop), then kills the rest."""
        self.stopping = True
        deadline = time.monotonic() + wait_s
        for p in self.procs:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        self.kill()


def failed_line(rank: int) -> str:
    """How a follower's last line, written before it ends on a failure, begins."""
    return f"snapworker rank {rank} failed: "


def _exit_failed(rank: int, why: str, code: int) -> NoReturn:
    """Ends a follower that failed: says why (the leader reports it), then exits at once, without the interpreter's
    teardown (which, with a peer gone, can wait on the process group)."""
    print(failed_line(rank) + why, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(code)


def free_port() -> int:
    """A TCP port free on the loopback interface now (the leader's rendezvous store binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent(parent: int) -> None:
    """A follower ends when its leader does: PR_SET_PDEATHSIG where Linux has it, and a watch of the parent pid."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _setup_device(args: argparse.Namespace, device: str) -> str:
    """Per-rank device settings (the single-device worker's, in server.main); a problem as a message."""
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    else:  # the ranks share the CPU: each takes its part of the cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.tp))
    if args.attn == "flash":
        from .cache import use_flash

        try:
            use_flash()
        except ImportError:
            return "attn=flash needs the flash-attn package (pip install flash-attn), or use attn=sdpa"
    if args.dtype == "float32":  # float32 means float32: no TF32 in matmuls or convolutions
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return ""


def _check_devices(args: argparse.Namespace) -> str:
    if not dist.is_available():
        return f"torch {torch.__version__} has no torch.distributed: tp={args.tp} needs a build with it"
    if args.device == "cpu":
        return "" if dist.is_gloo_available() else f"torch {torch.__version__} has no gloo backend for tp on the CPU"
    if not torch.cuda.is_available():
        return (f"torch {torch.__version__} sees no CUDA device (device={args.device}): install a CUDA build of "
                "PyTorch, or set --backend-opt device=cpu")
    if not dist.is_nccl_available():
        return f"torch {torch.__version__} has no NCCL: tp={args.tp} on CUDA needs it"
    need = rank_devices(args.device, args.tp)[-1]
    have = torch.cuda.device_count()
    if torch.device(need).index >= have:
        return (f"tp={args.tp} from {args.device} needs devices up to {need}; this machine has {have} CUDA devices "
                "(tp must not exceed the GPUs from device on)")
    return ""


def device_report(device: torch.device) -> Dict[str, Any]:
    """A rank's device: name, memory, memory free after loading its shard."""
    from .hf import device_info

    return device_info(str(device))


class PoolTooSmall(Exception):
    """The KV pool's share of a rank holds less than one row of 256 slots (the same on every rank)."""


def rank_pool(args: argparse.Namespace, runner: Any, group: "Group") -> Optional[SlotPool]:
    """This rank's share of the KV pool (None with --static-decode off): the same rows and slots per row on every
    rank, over its own KV heads. The budget (--kv-pool-bytes) is the whole pool's, split evenly; by default each
    rank offers 60% of the device memory free on it (4 GiB in all on a CPU), and the least offer sets every share."""
    if args.static_decode != "on":
        return None
    from .server import make_pool

    world = group.world
    if args.kv_pool_bytes > 0:
        budget = args.kv_pool_bytes // world
    elif runner.device.type == "cuda":
        budget = int(torch.cuda.mem_get_info(runner.device)[0] * 0.6)
    else:
        budget = (4 << 30) // world
    budget = max(1, min(group.gather(budget)))
    try:
        return make_pool(runner, args.max_batch, budget)
    except ValueError as e:
        raise PoolTooSmall(f"{e} on each of the {world} ranks") from None


def merge_devices(reports: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The ready event's device fields for all ranks: "2 x NAME", total memory, and N times the least free memory
    (the KV caches split evenly over the ranks, so the rank with the least room bounds them)."""
    names = [r["gpu"] for r in reports]
    n = len(reports)
    gpu = "" if not any(names) else (f"{n} x {names[0]}" if len(set(names)) == 1 else " + ".join(names))
    return {"gpu": gpu, "device_memory_bytes": sum(int(r["device_memory_bytes"]) for r in reports),
            "free_bytes": n * min(int(r["free_bytes"]) for r in reports)}


def serve_leader(engine: Engine, inp: IO[str], emit: Callable[[Dict[str, Any]], None], group: Group) -> int:
    """server.serve for rank 0: each loop's command lines go to the followers before anyone applies them."""
    from .server import apply

    q: "queue.Queue[Any]" = queue.Queue()

    def read() -> None:
        for line in inp:
            if line.strip():
                q.put(line)
        q.put(_EOF)

    threading.Thread(target=read, daemon=True).start()
    while True:
        block = not engine.busy()
        lines: List[str] = []
        cmds: List[Any] = []
        stop: Optional[int] = None
        while stop is None:
            try:
                item = q.get(block=block)
            except queue.Empty:
                break
            block = False
            if item is _EOF:
                stop = 0
                break
            try:
                cmd = parse_command(item)
            except ValueError as e:
                emit({"ev": "fatal", "kind": "protocol", "msg": f"bad command: {e}"})
                stop = 3
                break
            lines.append(item)
            cmds.append(cmd)
            if cmd.op == "shutdown":
                stop = 0
        group.send(lines, stop)
        for cmd in cmds:  # the followers parse the same lines
            if not apply(engine, cmd):
                return 0
        if stop is not None:
            return stop
        engine.step()


def serve_follower(engine: Engine, group: Group) -> int:
    """The loop of ranks 1..N-1: apply what the leader sent, run the same step."""
    from .server import apply

    while True:
        lines, stop = group.receive()
        for line in lines:
            if not apply(engine, parse_command(line)):
                return 0
        if stop is not None:
            return stop
        engine.step()


def main_tp(args: argparse.Namespace, argv: List[str], emit: Callable[[Dict[str, Any]], None],
            models: Callable[[argparse.Namespace], Models], module: str = "snapworker") -> int:
    """Runs one rank of the tensor-parallel worker (args.tp_rank; 0 is the leader, which starts the others as
    `python -m module ARGV --tp-rank k`). Returns the exit status."""
    os.environ.update(NO_MULTICAST)
    if args.tp_rank == 0:
        return _lead(args, argv, Locked(emit), models, module)
    return _follow(args, models)


def _lead(args: argparse.Namespace, argv: List[str], out: Callable[[Dict[str, Any]], None],
          models: Callable[[argparse.Namespace], Models], module: str) -> int:
    def setup(msg: str) -> int:
        out({"ev": "fatal", "kind": "setup", "msg": msg})
        return 2

    from .hf import Refused
    from .shard import Unshardable

    world = args.tp
    if world < 1:
        return setup(f"tp={world}: want a positive number of ranks")
    problem = _check_devices(args)
    if problem:
        return setup(problem)
    try:
        fam = models(args)
    except (Refused, Unshardable) as e:
        return setup(str(e))
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        return setup(f"reading {args.model}: {type(e).__name__}: {e}")
    problem = fam.precheck(world)
    if problem:
        return setup(problem)
    devices = rank_devices(args.device, world)
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(world),
               SNAPWORKER_TP_LEADER=str(os.getpid()), **NO_MULTICAST)
    ranks = Ranks(out)
    for k in range(1, world):
        ranks.spawn(k, [sys.executable, "-m", module, *argv, "--tp-rank", str(k)],
                    dict(env, RANK=str(k), LOCAL_RANK=str(k)))
    os.environ.update({k: env[k] for k in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE")}, RANK="0", LOCAL_RANK="0")
    code = 1
    try:
        problem = _setup_device(args, devices[0])
        if problem:
            return setup(problem)
        dev = torch.device(devices[0])
        pooling = False
        try:
            group = Group(0, world, dev)
            runner = fam.build(0, world, group.compute, dev)
            pooling = True
            pool = rank_pool(args, runner, group)
            info = _info(args, runner, pool, merge_devices(group.gather(device_report(dev))))
        except (Refused, Unshardable) as e:
            return setup(str(e))
        except PoolTooSmall as e:
            return setup(f"{e}: give the KV pool more memory (kv_memory_gib) or use larger GPUs")
        except Exception as e:  # noqa: BLE001 - ours, or a rank that failed to load (its collective lost a peer)
            traceback.print_exc()
            why = ranks.first_death(1.0)
            if why:
                return setup(why)
            if is_oom(e) and pooling:
                return setup(f"rank 0's share of the KV pool does not fit {devices[0]} after loading its shard of the "
                             f"model: {e}; lower kv_memory_gib")
            if is_oom(e):
                return setup(f"rank 0's shard of the model does not fit {devices[0]} at tp={world} in {args.dtype}: "
                             f"{e}; use more GPUs (tp) or a smaller dtype")
            return setup(f"loading rank 0's shard of {args.model}: {type(e).__name__}: {e}")
        try:
            engine = TPEngine(0, group, runner, RankEmit(group, out), max_batch=args.max_batch,
                              prefill_tokens=args.prefill_tokens, pool=pool, cuda_graphs=args.cuda_graphs == "on",
                              decode_attn=args.decode_attn)
        except ValueError as e:  # a decode kernel asked for by name that cannot run here (so on no rank)
            return setup(str(e))
        ranks.ready = True
        out({"ev": "ready", "protocol": PROTOCOL_VERSION, "info": info})
        try:
            code = serve_leader(engine, sys.stdin, out, group)
            from .server import decode_line

            _stderr_line(decode_line(0, engine), ranks.lock)
        except Exception as e:  # noqa: BLE001 - a collective or CUDA error: report, and take the ranks down
            traceback.print_exc()
            why = ranks.first_death(1.0)
            ranks.kill()
            out({"ev": "fatal", "kind": "runtime", "msg": why or f"{type(e).__name__}: {e}"})
            return 1
        if code == 0:
            ranks.stop(30)
            group.close()
        return code
    finally:
        ranks.kill()


def _info(args: argparse.Namespace, runner: Any, pool: Optional[SlotPool], devices: Dict[str, Any]) -> Dict[str, Any]:
    import platform

    try:
        import transformers

        tv = transformers.__version__
    except ImportError:
        tv = ""
    dtype = dtype_of(args.dtype)
    info: Dict[str, Any] = {"torch": torch.__version__, "transformers": tv, "python": platform.python_version(),
                            "device": args.device, "dtype": args.dtype,
                            "elem_bytes": torch.empty((), dtype=dtype).element_size(), "attn": args.attn,
                            "tf32": bool(torch.backends.cuda.matmul.allow_tf32),
                            "devices": rank_devices(args.device, args.tp)}
    info.update(runner.info())
    if pool is not None:  # the whole pool: every rank's share holds the same rows for its own KV heads
        info.update({"kv_pool_bytes": pool.nbytes * args.tp, "pool_rows": pool.rows, "pool_capacity": pool.capacity})
    info.update({"static_decode": pool is not None, "cuda_graphs": pool is not None and args.cuda_graphs == "on"
                 and args.device.startswith("cuda"), "decode_attn": args.decode_attn})
    info.update(devices)
    return info


def _follow(args: argparse.Namespace, models: Callable[[argparse.Namespace], Models]) -> int:
    rank, world = args.tp_rank, args.tp
    leader = int(os.environ.get("SNAPWORKER_TP_LEADER", "0"))
    if leader:
        _die_with_parent(leader)
    device = rank_devices(args.device, world)[rank]
    try:
        problem = _setup_device(args, device)
        if problem:
            raise RuntimeError(problem)
        fam = models(args)
        dev = torch.device(device)
        group = Group(rank, world, dev)
        runner = fam.build(rank, world, group.compute, dev)
        pool = rank_pool(args, runner, group)
    except PoolTooSmall:  # the leader reports it (every rank finds the same): wait for it to end this process
        time.sleep(120)
        return 2
    except Exception as e:  # noqa: BLE001 - the leader reports our end with this output
        traceback.print_exc()
        _exit_failed(rank, f"setup: {type(e).__name__}: {e}", 2)
    group.gather(device_report(dev))
    try:
        engine = TPEngine(rank, group, runner, RankEmit(group, None), max_batch=args.max_batch,
                          prefill_tokens=args.prefill_tokens, pool=pool, cuda_graphs=args.cuda_graphs == "on",
                          decode_attn=args.decode_attn)
    except ValueError:  # the leader reports it (every rank finds the same): wait for it to end this process
        time.sleep(120)
        return 2
    try:
        code = serve_follower(engine, group)
        from .server import decode_line

        print(decode_line(rank, engine), file=sys.stderr, flush=True)
        if code == 0:
            group.close()
        return code
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        _exit_failed(rank, f"{type(e).__name__}: {e}", 1)
