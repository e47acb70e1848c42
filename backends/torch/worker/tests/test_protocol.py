"""The line protocol: command parsing, the serve loop over a real engine, and setup errors of the process."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import unittest
from typing import Iterator, List

from . import minillama
from .harness import Collector
from .support import WORKER, plans
from snapworker.engine import Engine
from snapworker.protocol import parse_command
from snapworker.server import serve


def submit(rid: int, prompt: List[int], max_new: int, **extra: object) -> str:
    plan = dict(prompt_len=len(prompt), max_new=max_new, capacity=len(prompt) + max_new, sinks=len(prompt) + max_new,
                ring=0, topk=0, lo=len(prompt), hi=len(prompt), valid_topk=0, need_scores=False, window=0, kernel=0,
                append_decode=False)
    d = {"op": "submit", "id": rid, "prompt": prompt, "plan": plan, "max_new": max_new}
    d.update(extra)
    return json.dumps(d) + "\n"


class ParseTest(unittest.TestCase):
    def test_commands(self) -> None:
        self.assertEqual(parse_command('{"op":"shutdown"}').op, "shutdown")
        self.assertEqual(parse_command('{"op":"cancel","id":4}').id, 4)
        c = parse_command(submit(3, [1, 2, 3], 4, eos=[0], sampling={"temperature": 0.7, "top_p": 0.9, "top_k": 5,
                                                                      "seed": 2**64 - 1}, want_kept=True))
        self.assertEqual((c.op, c.id), ("submit", 3))
        assert c.request is not None
        self.assertEqual(c.request.eos, frozenset({0}))
        self.assertEqual(c.request.sampling.seed, 2**64 - 1)
        self.assertTrue(c.request.want_kept)
        self.assertEqual(c.request.plan.capacity, 7)
        real = plans()["fixtures"]["llama-gqa"][1]["plan"]
        d = json.loads(submit(1, [1] * 160, 24))
        d["plan"] = real
        self.assertEqual(parse_command(json.dumps(d)).request.plan.topk, 24)

    def test_bad_commands_name_the_problem(self) -> None:
        cases = [("not json", "not JSON"), ("[1]", "object"), ('{"op":"fly"}', "unknown"),
                 ('{"op":"cancel"}', "id"), ('{"op":"cancel","id":-1}', "id"),
                 (submit(1, [1, 2], 2).replace('"prompt": [1, 2]', '"prompt": [1, "x"]'), "prompt"),
                 (submit(1, [1, 2], 2).replace('"max_new": 2}', '"max_new": true}'), "max_new"),
                 (submit(1, [1, 2], 2, sampling={"temperature": -1}), "sampling.temperature"),
                 (submit(1, [1, 2], 2, sampling=[1]), "sampling"),
                 (submit(1, [1, 2], 2).replace('"capacity": 4', '"capacity": 5'), "plan.capacity")]
        for line, want in cases:
            with self.assertRaises(ValueError, msg=line) as cm:
                parse_command(line)
            self.assertIn(want, str(cm.exception), line)


class _Feed:
    """Stdin for serve(): the given lines, then the end of input once `until` is set."""

    def __init__(self, lines: List[str], until: threading.Event) -> None:
        self.lines, self.until = lines, until

    def __iter__(self) -> Iterator[str]:
        yield from self.lines
        self.until.wait(30)


class ServeTest(unittest.TestCase):
    def test_requests_run_to_done_and_end_of_input_exits(self) -> None:
        finished = threading.Event()
        col = Collector()

        def emit(ev: dict) -> None:
            col(ev)
            if len(col.done) == 3:
                finished.set()

        eng = Engine(minillama.random_model(), emit, max_batch=2)
        lines = [submit(1, [1, 2, 3], 5), "\n", submit(2, [4, 5], 3), submit(3, [9], 4, eos=[])]
        self.assertEqual(serve(eng, _Feed(lines, finished), emit), 0)
        self.assertEqual({k: v["finish"] for k, v in col.done.items()}, {1: "length", 2: "length", 3: "length"})
        self.assertEqual([len(col.tokens[i]) for i in (1, 2, 3)], [5, 3, 4])

    def test_bad_line_is_fatal(self) -> None:
        col = Collector()
        eng = Engine(minillama.random_model(), col)
        done = threading.Event()
        done.set()
        self.assertEqual(serve(eng, _Feed(['{"op": 1}\n'], done), col), 3)
        self.assertEqual(col.events[-1]["ev"], "fatal")
        self.assertIn("bad command", col.events[-1]["msg"])


class ProcessTest(unittest.TestCase):
    @unittest.skipIf(importlib.util.find_spec("transformers") is not None, "transformers is installed here")
    def test_missing_transformers_is_a_setup_error(self) -> None:
        env = dict(os.environ, PYTHONPATH=WORKER)
        p = subprocess.run([sys.executable, "-m", "snapworker", "--model", "/nonexistent", "--device", "cpu"],
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(p.returncode, 2, p.stderr)
        ev = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual((ev["ev"], ev["kind"]), ("fatal", "setup"))
        self.assertIn("pip install", ev["msg"])
        self.assertIn("transformers", ev["msg"])


if __name__ == "__main__":
    unittest.main()
