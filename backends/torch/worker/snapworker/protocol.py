"""The worker's side of the protocol: one JSON object per line, commands on stdin, events on stdout.

Commands (Go -> worker):
  {"op": "submit", "id": N, "prompt": [ids], "plan": {...}, "max_new": M, "eos": [ids],
   "sampling": {"temperature": T, "top_p": P, "top_k": K, "seed": S}, "want_kept": bool, "want_logits": bool,
   "want_margins": bool}
  {"op": "cancel", "id": N}
  {"op": "shutdown"}
Events (worker -> Go):
  {"ev": "ready", "protocol": 1, "info": {...}}         once, after the model is loaded
  {"ev": "tokens", "t": [[id, token], ...]}              the tokens of one step (EOS excluded)
  {"ev": "done", "id": N, "finish": "stop"|"length"|"canceled", "tokens": n, "prefill_ms": x, "decode_ms": y,
   "kv_bytes": b, "kept": [[[pos]]]?, "logits": [float|null]?, "margins": [float]?, "peak_bytes": n?}
  {"ev": "error", "id": N, "kind": "request"|"oom", "msg": "..."}
  {"ev": "fatal", "kind": "setup"|"runtime"|"protocol", "msg": "..."}   then the worker exits
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import IO, Any, Dict, List, Optional

from .engine import Request
from .plan import Plan
from .sampling import Params


@dataclass(frozen=True)
class Command:
    """A parsed command: op is submit (with request), cancel (with id) or shutdown."""

    op: str
    id: int = 0
    request: Optional[Request] = None


def _int(d: Dict[str, Any], key: str, lo: int = 0) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise ValueError(f"{key}: want an integer >= {lo}, got {v!r}")
    return v


def _ints(d: Dict[str, Any], key: str, required: bool) -> List[int]:
    v = d.get(key)
    if v is None and not required:
        return []
    if not isinstance(v, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        raise ValueError(f"{key}: want a list of integers")
    return v


def _num(d: Dict[str, Any], key: str) -> float:
    v = d.get(key, 0)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v != v or v < 0:
        raise ValueError(f"sampling.{key}: want a non-negative number, got {v!r}")
    return float(v)


def parse_sampling(d: Any) -> Params:
    """Reads the sampling object (absent: greedy)."""
    if d is None:
        return Params()
    if not isinstance(d, dict):
        raise ValueError("sampling: want an object")
    return Params(temperature=_num(d, "temperature"), top_p=_num(d, "top_p"),
                  top_k=_int(d, "top_k") if "top_k" in d else 0, seed=_int(d, "seed") if "seed" in d else 0)


def parse_command(line: str) -> Command:
    """Parses one command line; ValueError names what is wrong."""
    try:
        d = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e}") from None
    if not isinstance(d, dict):
        raise ValueError("want a JSON object")
    op = d.get("op")
    if op == "shutdown":
        return Command("shutdown")
    if op == "cancel":
        return Command("cancel", _int(d, "id"))
    if op != "submit":
        raise ValueError(f"op: unknown {op!r} (want submit, cancel or shutdown)")
    rid = _int(d, "id")
    try:
        plan = Plan.from_json(d.get("plan"))
        prompt = _ints(d, "prompt", True)
        req = Request(id=rid, prompt=prompt, plan=plan, max_new=_int(d, "max_new"),
                      eos=frozenset(_ints(d, "eos", False)), sampling=parse_sampling(d.get("sampling")),
                      want_kept=bool(d.get("want_kept", False)), want_logits=bool(d.get("want_logits", False)),
                      want_margins=bool(d.get("want_margins", False)))
    except ValueError as e:
        raise ValueError(f"submit {rid}: {e}") from None
    return Command("submit", rid, req)


class Writer:
    """Writes events as JSON lines and flushes each."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def __call__(self, ev: Dict[str, Any]) -> None:
        self.out.write(json.dumps(ev, separators=(",", ":"), allow_nan=False) + "\n")
        self.out.flush()
