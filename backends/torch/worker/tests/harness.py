"""Runs requests through an Engine and collects the protocol events per request."""
from __future__ import annotations

from typing import Any, Dict, List

from snapworker.engine import Engine, Request


class Collector:
    """The emit callback of an Engine: tokens, done and error events per request id."""

    def __init__(self) -> None:
        self.events: List[Dict[str, Any]] = []
        self.tokens: Dict[int, List[int]] = {}
        self.done: Dict[int, Dict[str, Any]] = {}
        self.errors: Dict[int, Dict[str, Any]] = {}

    def __call__(self, ev: Dict[str, Any]) -> None:
        self.events.append(ev)
        if ev["ev"] == "tokens":
            for rid, tok in ev["t"]:
                self.tokens.setdefault(rid, []).append(tok)
        elif ev["ev"] == "done":
            self.done[ev["id"]] = ev
        elif ev["ev"] == "error":
            self.errors[ev["id"]] = ev


def run_all(engine: Engine, max_steps: int = 10000) -> None:
    """Steps until no work is left."""
    for _ in range(max_steps):
        if not engine.busy():
            return
        engine.step()
    raise AssertionError("engine still busy after max_steps")


def run_staggered(engine: Engine, reqs: List[Request], every: int) -> None:
    """Submits one request every `every` steps while the others decode, then runs to the end."""
    for r in reqs:
        engine.submit(r)
        for _ in range(every):
            engine.step()
    run_all(engine)
