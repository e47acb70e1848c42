"""Tensor parallelism over attention heads: one rank's shard of a decoder, built, loaded and run.

The plan (Megatron-style, the same for every llama-like decoder): q_proj, k_proj, v_proj and gate_proj, up_proj are
split by output rows (column-parallel), so that rank r holds query heads [r*H/N, (r+1)*H/N), the KV heads those
queries read, [r*KVH/N, (r+1)*KVH/N), and a slice of the MLP's intermediate features; o_proj and down_proj are split
by input columns (row-parallel) and their partial outputs are summed with one all-reduce each, so that the residual
stream, the norms and the embedding stay whole and identical on every rank. The output head is split by vocabulary
rows and its logits all-gathered (replicated when it is tied to the embedding or the vocabulary does not divide),
so every rank holds the same full logits and samples the same tokens. The attention function sees only its rank's
heads (q [1, H/N, T, D], k, v [1, KVH/N, T, D]) and each rank's slot caches hold its own KV heads: SnapKV selects per
KV head, so the selection shards with the heads and needs no communication.

The model is built with its matrices on the meta device (params_on_meta), split, and only then given memory: each
rank reads its slices from the checkpoint's safetensors files (Checkpoint, a reader of the format's header that
slices by offset, with no dependency), or draws random weights (the full tensor from a generator seeded by the
parameter's name, then sliced: the same model at every tp). A model whose weights this plan does not cover (fused
qkv or gate_up projections, experts, a vision tower) is refused (Unshardable) before anything is allocated.
"""
from __future__ import annotations

import contextlib
import json
import mmap
import os
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


class Unshardable(Exception):
    """The model cannot be split over the ranks, or its checkpoint does not fit the model (a setup error)."""


@dataclass(frozen=True)
class Slice:
    """The part of a parameter a rank holds: [start, start+length) along dim of the full shape."""

    dim: int
    start: int
    length: int
    full: Tuple[int, ...]


@dataclass(frozen=True)
class Shape:
    """The model's shape as the protocol reports it (whole model, not one rank's shard)."""

    layers: int
    q_heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_positions: int
    intermediate: int
    architecture: str
    model_type: str


def check_divides(shape: Shape, world: int) -> str:
    """Why tp=world cannot split this model ("" when it can): heads and MLP features must divide evenly."""
    if world < 1:
        return f"tp={world}: want a positive number of ranks"
    for n, what in ((shape.kv_heads, "KV heads (num_key_value_heads)"), (shape.q_heads, "query heads"),
                    (shape.intermediate, "MLP intermediate features (intermediate_size)")):
        if n % world:
            return (f"tp={world} does not divide the model's {n} {what}: tensor parallelism splits whole KV heads, "
                    f"so tp must divide {shape.kv_heads} (and {shape.intermediate})")
    return ""


@contextlib.contextmanager
def params_on_meta() -> Iterator[None]:
    """Builds modules with their matrices (parameters of two or more dimensions) on the meta device, so that a model
    larger than any one device can be made, split, and given memory shard by shard. Vectors (norm weights, biases)
    and buffers (RoPE frequencies) stay real: they are small and their constructors' values are the model's."""
    orig = nn.Module.register_parameter

    def register(self: nn.Module, name: str, param: Optional[nn.Parameter]) -> None:
        orig(self, name, param)
        p = self._parameters.get(name)
        if p is not None and p.dim() >= 2 and p.device.type != "meta":
            self._parameters[name] = nn.Parameter(p.to("meta"), requires_grad=False)

    nn.Module.register_parameter = register  # type: ignore[assignment]
    try:
        yield
    finally:
        nn.Module.register_parameter = orig  # type: ignore[assignment]


def _narrow(t: torch.Tensor, dim: int, start: int, length: int) -> nn.Parameter:
    part = t.detach().narrow(dim, start, length)
    return nn.Parameter(part if part.device.type == "meta" else part.clone(), requires_grad=False)


class RowParallelLinear(nn.Linear):
    """A linear layer whose input features are split over the ranks: each rank multiplies its slice and one
    all-reduce sums the partial outputs (then the bias, once)."""

    group: Any = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight)
        dist.all_reduce(y, group=self.group)
        return y if self.bias is None else y + self.bias


class GatherLinear(nn.Linear):
    """A linear layer whose output features are split over the ranks, all-gathered into the full output (the
    vocabulary-parallel output head: every rank ends with the same full logits)."""

    group: Any = None
    world: int = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias).contiguous()
        parts = [torch.empty_like(y) for _ in range(self.world)]
        dist.all_gather(parts, y, group=self.group)
        return torch.cat(parts, dim=-1)


def _column(lin: nn.Linear, start: int, length: int, cls: type = nn.Linear) -> nn.Linear:
    new = cls(lin.in_features, length, bias=lin.bias is not None, device="meta", dtype=lin.weight.dtype)
    new.weight = _narrow(lin.weight, 0, start, length)
    if lin.bias is not None:
        new.bias = _narrow(lin.bias, 0, start, length)
    return new


def _row(lin: nn.Linear, start: int, length: int, group: Any) -> RowParallelLinear:
    new = RowParallelLinear(length, lin.out_features, bias=lin.bias is not None, device="meta", dtype=lin.weight.dtype)
    new.weight = _narrow(lin.weight, 1, start, length)
    if lin.bias is not None:
        new.bias = nn.Parameter(lin.bias.detach(), requires_grad=False)
    new.group = group
    return new


def _linears(m: nn.Module, names: Tuple[str, ...]) -> bool:
    return all(isinstance(getattr(m, n, None), nn.Linear) for n in names)


_ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
_MLP = ("gate_proj", "up_proj", "down_proj")


def shard_model(model: nn.Module, shape: Shape, rank: int, world: int, group: Any) -> Dict[str, Slice]:
    """Replaces the model's projections by this rank's slices (in place) and returns the slice of every split
    parameter by name. Raises Unshardable when a matrix of the model has no rule or the heads do not divide."""
    why = check_divides(shape, world)
    if why:
        raise Unshardable(why)
    d = shape.head_dim
    qn, kn = shape.q_heads // world, shape.kv_heads // world
    slices: Dict[str, Slice] = {}

    def split(prefix: str, m: nn.Module, name: str, dim: int, start: int, length: int, row: bool = False) -> None:
        lin = getattr(m, name)
        full = tuple(lin.weight.shape)
        if full[dim] != length * world:
            raise Unshardable(f"{prefix}{name}.weight {full}: {full[dim]} features do not split into {world} x {length}")
        setattr(m, name, _row(lin, start, length, group) if row else _column(lin, start, length))
        slices[f"{prefix}{name}.weight"] = Slice(dim, start, length, full)
        if lin.bias is not None and not row:
            slices[f"{prefix}{name}.bias"] = Slice(0, start, length, (full[0],))

    attn = 0
    for mname, m in list(model.named_modules()):
        prefix = mname + "." if mname else ""
        if _linears(m, _ATTN):
            attn += 1
            split(prefix, m, "q_proj", 0, rank * qn * d, qn * d)
            split(prefix, m, "k_proj", 0, rank * kn * d, kn * d)
            split(prefix, m, "v_proj", 0, rank * kn * d, kn * d)
            split(prefix, m, "o_proj", 1, rank * qn * d, qn * d, row=True)
        elif _linears(m, _MLP):
            i = shape.intermediate // world
            split(prefix, m, "gate_proj", 0, rank * i, i)
            split(prefix, m, "up_proj", 0, rank * i, i)
            split(prefix, m, "down_proj", 1, rank * i, i, row=True)
    if attn != shape.layers:
        raise Unshardable(f"{shape.architecture}: found {attn} attention modules with separate q_proj, k_proj, v_proj "
                          f"and o_proj for {shape.layers} layers; tensor parallelism needs those projections")
    _shard_head(model, shape, rank, world, group, slices)
    _check_covered(model, shape, slices)
    return slices


def _tied(model: nn.Module) -> Dict[int, List[str]]:
    """Every parameter by identity, with all its names (a tied one has several), in the model's order."""
    names: Dict[int, List[str]] = {}
    for mname, m in model.named_modules(remove_duplicate=False):
        for pname, p in m._parameters.items():
            if p is not None:
                names.setdefault(id(p), []).append(f"{mname}.{pname}" if mname else pname)
    return names


def _shard_head(model: nn.Module, shape: Shape, rank: int, world: int, group: Any, slices: Dict[str, Slice]) -> None:
    """Splits an untied lm_head by vocabulary rows (GatherLinear); a tied one stays whole on every rank."""
    head = getattr(model, "lm_head", None)
    if not isinstance(head, nn.Linear) or shape.vocab % world or world == 1:
        return
    if len(_tied(model)[id(head.weight)]) > 1:
        return
    n = shape.vocab // world
    new = _column(head, rank * n, n, GatherLinear)
    new.group, new.world = group, world  # type: ignore[attr-defined]
    slices["lm_head.weight"] = Slice(0, rank * n, n, tuple(head.weight.shape))
    if head.bias is not None:
        slices["lm_head.bias"] = Slice(0, rank * n, n, (shape.vocab,))
    model.lm_head = new


def _check_covered(model: nn.Module, shape: Shape, slices: Dict[str, Slice]) -> None:
    for mname, m in model.named_modules():
        for pname, p in m.named_parameters(recurse=False):
            name = f"{mname}.{pname}" if mname else pname
            whole_ok = isinstance(m, nn.Embedding) or mname.split(".")[-1] == "lm_head"
            if p.dim() >= 2 and name not in slices and not whole_ok:
                raise Unshardable(f"{shape.architecture}: {name} {tuple(p.shape)} has no tensor-parallel rule (the plan "
                                  "splits separate q/k/v/o and gate/up/down projections only)")


# Safetensors dtype -> (numpy dtype of the stored bits, torch dtype). bf16 is read as int16 and reinterpreted.
_DTYPES: Dict[str, Tuple[Any, torch.dtype]] = {
    "BF16": (np.int16, torch.bfloat16), "F16": (np.float16, torch.float16), "F32": (np.float32, torch.float32),
    "F64": (np.float64, torch.float64), "I64": (np.int64, torch.int64), "I32": (np.int32, torch.int32),
    "I16": (np.int16, torch.int16), "I8": (np.int8, torch.int8), "U8": (np.uint8, torch.uint8),
    "BOOL": (np.bool_, torch.bool),
}


@dataclass(frozen=True)
class _Entry:
    path: str
    dtype: str
    shape: Tuple[int, ...]
    begin: int


class Checkpoint:
    """The tensors of a safetensors checkpoint (model.safetensors, or the shards its index names), read lazily: a
    rank maps the files and copies only its slices' bytes."""

    def __init__(self, model_dir: str) -> None:
        self.dir = model_dir
        index = os.path.join(model_dir, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                files = sorted(set(json.load(f)["weight_map"].values()))
        else:
            files = sorted(n for n in os.listdir(model_dir) if n.endswith(".safetensors"))
        if not files:
            raise Unshardable(f"{model_dir}: no .safetensors files")
        self.entries: Dict[str, _Entry] = {}
        self._maps: Dict[str, mmap.mmap] = {}
        for name in files:
            self._read_header(os.path.join(model_dir, name))

    def _read_header(self, path: str) -> None:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise Unshardable(f"{path}: shorter than a safetensors header")
            n = int.from_bytes(raw, "little")
            size = os.fstat(f.fileno()).st_size
            if n > size - 8:
                raise Unshardable(f"{path}: header of {n} bytes in a file of {size}")
            try:
                header = json.loads(f.read(n))
            except ValueError as e:
                raise Unshardable(f"{path}: header is not JSON: {e}") from None
        for key, v in header.items():
            if key == "__metadata__":
                continue
            dt, shape, (a, b) = v.get("dtype"), tuple(v.get("shape", ())), v.get("data_offsets", (0, 0))
            if dt not in _DTYPES:
                raise Unshardable(f"{path}: tensor {key} has dtype {dt}; tensor parallelism reads "
                                  f"{', '.join(_DTYPES)} (quantized checkpoints are not supported)")
            want = int(np.prod(shape, dtype=np.int64)) * np.dtype(_DTYPES[dt][0]).itemsize
            if b - a != want or 8 + n + b > size:
                raise Unshardable(f"{path}: tensor {key} {list(shape)} {dt}: data offsets [{a}, {b}) do not fit")
            self.entries[key] = _Entry(path, dt, shape, 8 + n + a)

    def key(self, names: List[str]) -> Optional[str]:
        """The checkpoint's name for a parameter known by any of names (with or without the "model." prefix)."""
        for n in names:
            for k in (n, "model." + n, n[len("model."):] if n.startswith("model.") else n):
                if k in self.entries:
                    return k
        return None

    def read(self, names: List[str], full: Tuple[int, ...], sl: Optional[Slice]) -> torch.Tensor:
        """The parameter's tensor (its slice when sl is given), in the checkpoint's dtype, on the CPU."""
        k = self.key(names)
        if k is None:
            raise Unshardable(f"{self.dir}: no tensor {names[0]} in the checkpoint")
        e = self.entries[k]
        if e.shape != tuple(full):
            raise Unshardable(f"{e.path}: tensor {k} is {list(e.shape)}, the model wants {list(full)}")
        mm = self._maps.get(e.path)
        if mm is None:
            with open(e.path, "rb") as f:
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self._maps[e.path] = mm
        npdt, tdt = _DTYPES[e.dtype]
        count = int(np.prod(e.shape, dtype=np.int64))
        arr = np.frombuffer(mm, dtype=npdt, count=count, offset=e.begin).reshape(e.shape)
        if sl is not None:
            idx = [slice(None)] * len(e.shape)
            idx[sl.dim] = slice(sl.start, sl.start + sl.length)
            arr = arr[tuple(idx)]
        t = torch.from_numpy(np.array(arr, copy=True))
        return t.view(tdt) if t.dtype != tdt else t

    def close(self) -> None:
        """Unmaps the files."""
        for mm in self._maps.values():
            mm.close()
        self._maps.clear()


def _seed(name: str, seed: int) -> int:
    return (seed * 1000003 + zlib.crc32(name.encode())) & ((1 << 63) - 1)


def random_param(name: str, full: Tuple[int, ...], sl: Optional[Slice], dtype: torch.dtype, device: torch.device,
                 seed: int, std: float) -> torch.Tensor:
    """A random matrix N(0, std) drawn whole from a generator seeded by its name, then sliced: every rank of every
    tp draws the same full tensor, so the model does not depend on the split."""
    g = torch.Generator(device=device)
    g.manual_seed(_seed(name, seed))
    t = torch.empty(full, dtype=dtype, device=device).normal_(0.0, std, generator=g)
    return t if sl is None else t.narrow(sl.dim, sl.start, sl.length).clone()


def redraw_by_name(model: nn.Module, seed: int, std: float) -> None:
    """Gives every matrix of an unsplit model (parameters of two or more dimensions) the random values the
    tensor-parallel build draws for it (random_param by its first name), in place: a random-weight model is then
    the same model at tp=1 as at any tp. Vectors keep their constructor's values, as in the split build."""
    with torch.no_grad():
        for names in _tied(model).values():
            p = model.get_parameter(names[0])
            if p.dim() >= 2:
                p.copy_(random_param(names[0], tuple(p.shape), None, p.dtype, p.device, seed, std))


def _set_param(model: nn.Module, name: str, p: nn.Parameter) -> None:
    mod, _, attr = name.rpartition(".")
    owner = model.get_submodule(mod) if mod else model
    owner._parameters[attr] = p


def materialize(model: nn.Module, slices: Dict[str, Slice], device: torch.device, source: Optional[Checkpoint],
                seed: int = 0, std: float = 0.02) -> None:
    """Gives every parameter memory on device: its slice read from source, or (source None) random matrices and the
    constructor's vectors. Tied parameters stay one tensor. Buffers move to device."""
    for names in _tied(model).values():
        p = model.get_parameter(names[0])
        sl = next((slices[n] for n in names if n in slices), None)
        full = sl.full if sl is not None else tuple(p.shape)
        if source is not None:
            t = source.read(names, full, sl)
        elif p.device.type == "meta":
            t = random_param(names[0], full, sl, p.dtype, device, seed, std)
        else:
            t = p.detach()
        new = nn.Parameter(t.to(device=device, dtype=p.dtype), requires_grad=False)
        if tuple(new.shape) != tuple(p.shape):
            raise Unshardable(f"{names[0]}: read {tuple(new.shape)}, the shard wants {tuple(p.shape)}")
        for n in names:
            _set_param(model, n, new)
    model.to(device)


def count_params(model: nn.Module, slices: Dict[str, Slice], world: int) -> int:
    """The whole model's parameter count, from one rank's shard."""
    total = 0
    for names in _tied(model).values():
        p = model.get_parameter(names[0])
        total += p.numel() * (world if any(n in slices for n in names) else 1)
    return total


class StepMismatch(RuntimeError):
    """The ranks were about to run different steps (a rank-local failure): the worker stops."""

    fatal = True  # never taken for a recoverable out-of-memory error (engine.is_oom)


def weight_bytes(model: nn.Module, slices: Dict[str, Slice], world: int) -> Tuple[int, int]:
    """The whole model's weight bytes, from one rank's shard, and those a decode step reads: all but the input
    embedding (one row of it), unless the output head is that same matrix (tied, or no lm_head of its own)."""
    total = 0
    for names in _tied(model).values():
        p = model.get_parameter(names[0])
        total += p.numel() * p.element_size() * (world if any(x in slices for x in names) else 1)
    head = getattr(model, "lm_head", None)
    embs = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    if not isinstance(head, nn.Linear) or len(embs) != 1 or head.weight is embs[0].weight:
        return total, total
    emb = embs[0].weight
    return total, total - emb.numel() * emb.element_size()


def _capturing(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_current_stream_capturing()


class ShardRunner:
    """The engine's Runner over one rank's shard: the engine sees this rank's KV heads (its slot caches and its
    share of the KV pool hold only those), and every forward checks that all ranks run the same step: before the
    model runs when it runs eagerly; after the replay when it is captured in a CUDA graph (the check's all-reduce is
    part of the graph, and tp.TPStaticDecoder reads its result after each replay)."""

    def __init__(self, model: nn.Module, shape: Shape, call: Callable[..., torch.Tensor], rank: int, world: int,
                 group: Any, device: torch.device, dtype: torch.dtype, params: int,
                 weights: Tuple[int, int] = (0, 0)) -> None:
        self.model = model.eval()
        self.shape = shape
        self.call = call
        self.rank, self.world, self.group = rank, world, group
        self.layers = shape.layers
        self.q_heads = shape.q_heads // world
        self.kv_heads = shape.kv_heads // world
        self.head_dim = shape.head_dim
        self.vocab = shape.vocab
        self.max_positions = shape.max_positions
        self.device = device
        self.dtype = dtype
        self.params = params
        self.weight_bytes, self.weight_bytes_read = weights
        # The signature tensor of the forward captured last (a CUDA graph's; checked after each replay).
        self.captured: Optional[torch.Tensor] = None

    def signature(self, ids: torch.Tensor, positions: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """All-reduces a signature of the step (sizes and weighted sums of ids, positions and last) with MAX over v
        and -v: [2, 5] int64 on the device. No host synchronisation: a CUDA graph captures it with the step."""
        n, m = ids.shape[0], last.shape[0]
        w = torch.arange(1, n + 1, device=ids.device, dtype=torch.int64)
        v = torch.zeros(5, dtype=torch.int64, device=ids.device)
        v[0] = n
        v[1] = m
        v[2] = (ids * w).sum()
        v[3] = (positions * w).sum()
        v[4] = (last * w[:m]).sum()
        both = torch.stack([v, -v])
        dist.all_reduce(both, op=dist.ReduceOp.MAX, group=self.group)
        return both

    def verify(self, both: torch.Tensor) -> None:
        """Raises StepMismatch unless every rank had the same signature."""
        hi, lo = both[0].tolist(), [-x for x in both[1].tolist()]
        if hi != lo:
            raise StepMismatch(f"rank {self.rank}: the ranks disagree on the step (tokens, rows, checksums: max {hi}, "
                               f"min {lo}); a rank failed alone, so the tensor-parallel worker stops")

    def check_step(self, ids: torch.Tensor, positions: torch.Tensor, last: torch.Tensor) -> None:
        """Raises StepMismatch unless every rank runs this step."""
        self.verify(self.signature(ids, positions, last))

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """ids, positions [T]; last [n] -> the full logits [n, V] at those rows, the same on every rank."""
        with torch.no_grad():
            sig = self.signature(ids, positions, last)
            if _capturing(self.device):
                self.captured = sig
            else:
                self.verify(sig)
            return self.call(self.model, ids, positions, last)

    def info(self) -> Dict[str, Any]:
        """What the manifest records about the (whole) model."""
        s = self.shape
        return {"architecture": s.architecture, "model_type": s.model_type, "layers": s.layers, "q_heads": s.q_heads,
                "kv_heads": s.kv_heads, "head_dim": s.head_dim, "vocab": s.vocab, "max_positions": s.max_positions,
                "params": self.params, "weight_bytes": self.weight_bytes, "weight_bytes_read": self.weight_bytes_read,
                "tp": self.world}


def build(make: Callable[[], nn.Module], shape: Shape, call: Callable[..., torch.Tensor], rank: int, world: int,
          group: Any, device: torch.device, dtype: torch.dtype, source: Optional[Checkpoint], seed: int = 0,
          std: float = 0.02) -> ShardRunner:
    """Makes the model with its matrices on meta (make runs under params_on_meta, after seeding torch with seed so
    that every rank's constructor draws the same vectors), splits it for rank, gives it memory and wraps it."""
    torch.manual_seed(seed)
    with params_on_meta():
        model = make()
    slices = shard_model(model, shape, rank, world, group)
    materialize(model, slices, device, source, seed, std)
    return ShardRunner(model, shape, call, rank, world, group, device, dtype, count_params(model, slices, world),
                       weight_bytes(model, slices, world))
