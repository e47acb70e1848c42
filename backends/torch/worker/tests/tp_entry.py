"""python -m tests.tp_entry ARGS: the tensor-parallel worker (snapworker.tp.main_tp, the same processes, groups,
loop and shard loader as `python -m snapworker --tp N`) over the plain-torch minillama instead of transformers, so
that the CPU tests run it with gloo where transformers is not installed. Takes the worker's arguments (--model,
--device cpu, --dtype, --tp, --random-weights, ...); unlike snapworker, --tp 1 also runs here (one rank, the same
shard loader: the baseline of the random-weight comparisons).

Faults for the tests, from SNAPWORKER_TEST_FAULT=KIND:RANK[:STEP]: "setup" fails RANK's model build; "oom" raises
an out-of-memory error in RANK's STEP-th forward; "exit" ends RANK's process (status 7) in its STEP-th forward;
"diverge" changes a token of RANK's STEP-th forward (the ranks disagree on the step). With
SNAPWORKER_TEST_FAULT_ONCE=PATH the fault fires only while PATH does not exist (it is created as the fault fires), so
that the restarted worker runs on.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, List, Optional

import torch

from . import minillama
from .support import load_json
from snapworker.protocol import Writer
from snapworker.server import _parse_args
from snapworker.shard import Checkpoint, Shape, ShardRunner, build, check_divides
from snapworker.tp import dtype_of, main_tp


def _fault(rank: int) -> Optional[List[str]]:
    once = os.environ.get("SNAPWORKER_TEST_FAULT_ONCE", "")
    if once and os.path.exists(once):
        return None
    spec = os.environ.get("SNAPWORKER_TEST_FAULT", "")
    parts = spec.split(":")
    return parts if len(parts) >= 2 and int(parts[1]) == rank else None


class Faulty:
    """A runner that fails on its n-th forward (the SNAPWORKER_TEST_FAULT step)."""

    def __init__(self, inner: ShardRunner, kind: str, step: int) -> None:
        self.inner, self.kind, self.step, self.calls = inner, kind, step, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def forward(self, ids: torch.Tensor, positions: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.step:
            once = os.environ.get("SNAPWORKER_TEST_FAULT_ONCE", "")
            if once:
                open(once, "w").close()
            if self.kind == "exit":
                os._exit(7)
            if self.kind == "diverge":  # this rank runs another step than the others
                ids = ids.clone()
                ids[0] = (ids[0] + 1) % self.inner.vocab
                return self.inner.forward(ids, positions, last)
            raise RuntimeError(f"CUDA out of memory. Tried to allocate 9.00 GiB (test fault on rank {self.inner.rank})")
        return self.inner.forward(ids, positions, last)


class MiniModels:
    """The minillama family for snapworker.tp: config.json and model.safetensors of a conformance fixture, or
    random weights of config.json's shape (std initializer_range; q/k/v biases when attention_bias is set)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cfg = load_json(os.path.join(args.model, "config.json"))
        c = self.cfg
        if args.random_weights:
            self.bias = bool(c.get("attention_bias"))
        else:
            ck = Checkpoint(args.model)
            self.bias = any(k.endswith("q_proj.bias") for k in ck.entries)
            ck.close()
        q = c["num_attention_heads"]
        self.shape = Shape(layers=c["num_hidden_layers"], q_heads=q, kv_heads=c.get("num_key_value_heads") or q,
                           head_dim=c.get("head_dim") or c["hidden_size"] // q, vocab=c["vocab_size"],
                           max_positions=c.get("max_position_embeddings", 0), intermediate=c["intermediate_size"],
                           architecture=",".join(c.get("architectures") or ["MiniLM"]),
                           model_type=c.get("model_type", ""))

    def precheck(self, world: int) -> str:
        return check_divides(self.shape, world)

    def build(self, rank: int, world: int, group: Any, device: torch.device) -> Any:
        fault = _fault(rank)
        if fault and fault[0] == "setup":
            raise RuntimeError(f"test fault: rank {rank} cannot load its shard")
        source = None if self.args.random_weights else Checkpoint(self.args.model)
        runner = build(lambda: minillama.MiniLM(self.cfg, self.bias), self.shape,
                       lambda m, ids, pos, last: m(ids, pos, last), rank, world, group, device,
                       dtype_of(self.args.dtype), source, seed=0, std=float(self.cfg.get("initializer_range", 0.02)))
        if source is not None:
            source.close()
        # As tp.HFModels.build: rerotate's RoPE facts and knorm's pre-RoPE keys (minillama's Attn notes them).
        runner.rope_inv_freq = minillama.inv_freq(self.cfg, self.shape.head_dim)
        runner.rope_style = "rotate_half"
        runner.pre_rope = True
        if fault and fault[0] in ("oom", "exit", "diverge"):
            return Faulty(runner, fault[0], int(fault[2]))
        return runner


def main(argv: Optional[List[str]] = None) -> int:
    """Runs one rank; the leader starts the others as python -m tests.tp_entry."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    return main_tp(_parse_args(args_list), args_list, Writer(sys.stdout), MiniModels, module="tests.tp_entry")


if __name__ == "__main__":
    sys.exit(main())
