"""Tensor parallelism on the CPU with gloo: the shard plan and loader in one process, and the whole tensor-parallel
worker (snapworker.tp, run over minillama by tests.tp_entry) as processes: conformance at tp=2 against tp=1 and the
reference fixtures, and a rank that fails or dies taking the whole worker down."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from typing import Any, Dict, List, Optional
from unittest import mock

import torch
import torch.distributed as dist
import torch.nn as nn

from . import minillama
from .harness import Collector
from .support import MODELS, REPO, WORKER, load_json, plans
from .test_engine import PROMPT, snap_plan
from snapworker.engine import Request, is_oom
from snapworker.pool import SlotPool
from snapworker.shard import (Checkpoint, Shape, ShardRunner, Slice, StepMismatch, Unshardable, build, check_divides,
                              params_on_meta, random_param, shard_model)
from snapworker.static import StaticDecoder
from snapworker.tp import RankFailure, Ranks, TPEngine, TPStaticDecoder, failed_line

sys.path.insert(0, os.path.join(REPO, "tools", "train"))
from tinyllama import load_safetensors  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "tools", "gpu"))
import tp_conformance  # noqa: E402

GLOO = dist.is_available() and dist.is_gloo_available()
NO_GLOO = "torch.distributed with gloo is not available here: the tensor-parallel tests did not run"
GQA = os.path.join(MODELS, "llama-gqa")
RANDOM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata", "random-qwen2-bias")


def fixture_shape(d: str) -> Shape:
    c = load_json(os.path.join(d, "config.json"))
    q = c["num_attention_heads"]
    return Shape(layers=c["num_hidden_layers"], q_heads=q, kv_heads=c["num_key_value_heads"],
                 head_dim=c.get("head_dim") or c["hidden_size"] // q, vocab=c["vocab_size"], max_positions=4096,
                 intermediate=c["intermediate_size"], architecture="LlamaForCausalLM", model_type="llama")


class CheckpointTest(unittest.TestCase):
    def test_slices_equal_the_whole_tensors(self) -> None:
        for model in ("llama-gqa", "qwen2-tied"):
            d = os.path.join(MODELS, model)
            whole = load_safetensors(os.path.join(d, "model.safetensors"))
            ck = Checkpoint(d)
            self.assertEqual(set(ck.entries), set(whole))
            for name, t in whole.items():
                full = tuple(t.shape)
                self.assertTrue(torch.equal(ck.read([name], full, None), t), name)
                if t.dim() == 2:
                    for dim in (0, 1):
                        half = full[dim] // 2
                        got = ck.read([name], full, Slice(dim, half, full[dim] - half, full))
                        self.assertTrue(torch.equal(got, t.narrow(dim, half, full[dim] - half)), f"{name} dim {dim}")
            self.assertEqual(ck.key(["layers.0.self_attn.q_proj.weight"]), "model.layers.0.self_attn.q_proj.weight")
            with self.assertRaisesRegex(Unshardable, "is \\[.*\\], the model wants"):
                ck.read(["model.norm.weight"], (3,), None)
            with self.assertRaisesRegex(Unshardable, "no tensor nope"):
                ck.read(["nope"], (1,), None)
            ck.close()

    def test_bad_files_name_the_file(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "model.safetensors")
            cases = [(b"\x01", "shorter than"), ((500).to_bytes(8, "little") + b"{}", "header of 500 bytes"),
                     ((2).to_bytes(8, "little") + b"{x", "not JSON"),
                     (self._file({"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, 1), "quantized"),
                     (self._file({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, 8), "do not fit")]
            for data, want in cases:
                with open(path, "wb") as f:
                    f.write(data)
                with self.assertRaises(Unshardable) as cm:
                    Checkpoint(d)
                self.assertIn(want, str(cm.exception))
                self.assertIn("model.safetensors", str(cm.exception))

    @staticmethod
    def _file(header: Dict[str, Any], nbytes: int) -> bytes:
        h = json.dumps(header).encode()
        return len(h).to_bytes(8, "little") + h + b"\0" * nbytes


class PlanTest(unittest.TestCase):
    def test_params_on_meta_keeps_vectors_and_buffers(self) -> None:
        cfg = load_json(os.path.join(GQA, "config.json"))
        with params_on_meta():
            m = minillama.MiniLM(cfg, False)
        self.assertEqual(m.layers[0].self_attn.q_proj.weight.device.type, "meta")
        self.assertEqual(m.embed_tokens.weight.device.type, "meta")
        self.assertTrue(torch.equal(m.norm.weight, torch.ones(64)))
        self.assertEqual(m.inv_freq.device.type, "cpu")
        self.assertEqual(nn.Linear(3, 2).weight.device.type, "cpu")  # the patch is gone afterwards

    def test_divisibility(self) -> None:
        s = fixture_shape(GQA)
        self.assertEqual(check_divides(s, 2), "")
        self.assertIn("tp=4 does not divide the model's 2 KV heads", check_divides(s, 4))
        self.assertIn("160 MLP intermediate", check_divides(Shape(**{**s.__dict__, "intermediate": 160, "kv_heads": 3,
                                                                     "q_heads": 6}), 3))

    def test_unknown_matrices_are_refused(self) -> None:
        cfg = load_json(os.path.join(GQA, "config.json"))

        class Fused(nn.Module):  # a phi-3-like attention: one qkv projection
            def __init__(self) -> None:
                super().__init__()
                self.qkv_proj = nn.Linear(64, 128)
                self.o_proj = nn.Linear(64, 64)

        with params_on_meta():
            m = minillama.MiniLM(cfg, False)
        for layer in m.layers:
            layer.self_attn = Fused()
        with self.assertRaisesRegex(Unshardable, "found 0 attention modules"):
            shard_model(m, fixture_shape(GQA), 0, 2, None)
        with params_on_meta():
            m = minillama.MiniLM(cfg, False)
        m.layers[1].extra = nn.Linear(64, 64)
        with self.assertRaisesRegex(Unshardable, r"layers.1.extra.weight \(64, 64\) has no tensor-parallel rule"):
            shard_model(m, fixture_shape(GQA), 0, 2, None)

    def test_shard_shapes(self) -> None:
        cfg = load_json(os.path.join(GQA, "config.json"))
        with params_on_meta():
            m = minillama.MiniLM(cfg, False)
        slices = shard_model(m, fixture_shape(GQA), 1, 2, None)
        a = m.layers[0].self_attn
        self.assertEqual((a.q_proj.out_features, a.k_proj.out_features, a.o_proj.in_features), (32, 16, 32))
        self.assertEqual(slices["layers.0.self_attn.k_proj.weight"].start, 16)  # rank 1 owns KV head 1
        self.assertEqual(slices["layers.1.mlp.down_proj.weight"].dim, 1)
        self.assertEqual(slices["lm_head.weight"].start, 750)
        self.assertNotIn("embed_tokens.weight", slices)

    def test_random_weights_do_not_depend_on_the_split(self) -> None:
        cpu = torch.device("cpu")
        whole = random_param("w", (6, 4), None, torch.float32, cpu, 0, 0.5)
        parts = [random_param("w", (6, 4), Slice(0, r * 3, 3, (6, 4)), torch.float32, cpu, 0, 0.5) for r in (0, 1)]
        self.assertTrue(torch.equal(torch.cat(parts), whole))
        self.assertFalse(torch.equal(random_param("v", (6, 4), None, torch.float32, cpu, 0, 0.5), whole))


@unittest.skipUnless(GLOO, NO_GLOO)
class OneRankTest(unittest.TestCase):
    """The shard loader at world 1 (one gloo process) gives the model minillama.load gives."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.mkdtemp()
        dist.init_process_group("gloo", init_method="file://" + os.path.join(cls.tmp, "store"), rank=0, world_size=1)

    @classmethod
    def tearDownClass(cls) -> None:
        dist.destroy_process_group()

    def test_same_logits_as_the_plain_loader(self) -> None:
        ref = minillama.load(GQA)
        cfg = load_json(os.path.join(GQA, "config.json"))
        ck = Checkpoint(GQA)
        runner = build(lambda: minillama.MiniLM(cfg, False), fixture_shape(GQA), lambda m, i, p, l: m(i, p, l), 0, 1,
                       None, torch.device("cpu"), torch.float32, ck)
        ck.close()
        self.assertEqual(runner.params, sum(p.numel() for p in ref.model.parameters()))
        ids = torch.tensor([5, 17, 3, 88, 42, 9], dtype=torch.long)
        pos = torch.arange(6)
        last = torch.tensor([5])
        from snapworker.attention import Segment, Step, set_step
        from snapworker.cache import SeqCache
        from snapworker.plan import Plan

        plan = Plan(prompt_len=6, max_new=1, capacity=7, sinks=7, ring=0, topk=0, lo=6, hi=6, valid_topk=0,
                    need_scores=False, window=0, kernel=0, append_decode=False)
        outs = []
        for r in (ref, runner):
            set_step(Step([Segment(SeqCache(plan, 2, 2, 16, torch.float32, torch.device("cpu")), 0, 6, True)]))
            outs.append(r.forward(ids, pos, last))
            set_step(None)
        self.assertTrue(torch.equal(outs[0], outs[1]))

    def test_random_weights_are_one_model_at_any_tp(self) -> None:
        """hf.HFRunner (tp=1) and tp.HFModels (the split build, here one rank) with random weights, over the
        stand-in for transformers, give the same logits: both draw every matrix by its name (the H100 machine's
        run of 2026-12-07 found tp=1 on transformers' own initialisation and tp=2 on the named draws)."""
        from types import SimpleNamespace

        fake, made = _fake_transformers(load_json(os.path.join(GQA, "config.json")))
        saved = sys.modules.get("transformers")
        sys.modules["transformers"] = fake
        try:
            from snapworker.hf import HFRunner
            from snapworker.tp import HFModels

            whole = HFRunner(GQA, "cpu", torch.float32, True)
            split = HFModels(SimpleNamespace(model=GQA, dtype="float32", random_weights=True)).build(  # type: ignore
                0, 1, None, torch.device("cpu"))
        finally:
            if saved is None:
                del sys.modules["transformers"]
            else:
                sys.modules["transformers"] = saved
        self.assertEqual(len(made), 2)
        ref = minillama.load(GQA)
        ids = torch.tensor([5, 17, 3, 88, 42, 9], dtype=torch.long)
        from snapworker.attention import Segment, Step, set_step
        from snapworker.cache import SeqCache
        from snapworker.plan import Plan

        plan = Plan(prompt_len=6, max_new=1, capacity=7, sinks=7, ring=0, topk=0, lo=6, hi=6, valid_topk=0,
                    need_scores=False, window=0, kernel=0, append_decode=False)
        outs = []
        for r in (whole, split, ref):
            set_step(Step([Segment(SeqCache(plan, 2, 2, 16, torch.float32, torch.device("cpu")), 0, 6, True)]))
            outs.append(r.forward(ids, torch.arange(6), torch.tensor([2, 5])))
            set_step(None)
        self.assertTrue(torch.equal(outs[0], outs[1]), (outs[0] - outs[1]).abs().max())
        self.assertFalse(torch.equal(outs[0], outs[2]))  # random weights, not the checkpoint's

    def test_transformers_glue(self) -> None:
        """snapworker.tp.HFModels over a stand-in for the four names of transformers it uses (AutoConfig,
        AutoModelForCausalLM.from_config, AttentionInterface, __version__) and a model laid out as transformers lays
        out a causal LM (model.layers..., lm_head): transformers itself is not installed here; tp_session.sh runs
        the real one."""
        from types import SimpleNamespace

        fake, made = _fake_transformers(load_json(os.path.join(GQA, "config.json")))
        saved = sys.modules.get("transformers")
        sys.modules["transformers"] = fake
        try:
            from snapworker.tp import HFModels

            args = SimpleNamespace(model=GQA, dtype="float32", random_weights=False)
            fam = HFModels(args)  # type: ignore[arg-type]
            self.assertEqual(fam.precheck(2), "")
            self.assertIn("tp=4", fam.precheck(4))
            runner = fam.build(0, 1, None, torch.device("cpu"))
        finally:
            if saved is None:
                del sys.modules["transformers"]
            else:
                sys.modules["transformers"] = saved
        self.assertEqual(made, [{"dtype": torch.float32, "attn_implementation": "snapeval"}])
        self.assertEqual(runner.info()["kv_heads"], 2)
        self.assertEqual(runner.info()["tp"], 1)
        ref = minillama.load(GQA)
        ids = torch.tensor([5, 17, 3, 88, 42, 9], dtype=torch.long)
        from snapworker.attention import Segment, Step, set_step
        from snapworker.cache import SeqCache
        from snapworker.plan import Plan

        plan = Plan(prompt_len=6, max_new=1, capacity=7, sinks=7, ring=0, topk=0, lo=6, hi=6, valid_topk=0,
                    need_scores=False, window=0, kernel=0, append_decode=False)
        outs = []
        for r in (ref, runner):
            set_step(Step([Segment(SeqCache(plan, 2, 2, 16, torch.float32, torch.device("cpu")), 0, 6, True)]))
            outs.append(r.forward(ids, torch.arange(6), torch.tensor([2, 5])))
            set_step(None)
        self.assertTrue(torch.equal(outs[0], outs[1]))


class FakeGroup:
    """The control group of rank 0 among ranks whose answers to each gather are given in order."""

    def __init__(self, answers: List[List[Any]]) -> None:
        self.world = 1 + len(answers[0]) if answers else 1
        self.answers = answers
        self.asked: List[Any] = []

    def gather(self, obj: Any) -> List[Any]:
        self.asked.append(obj)
        return [obj] + self.answers.pop(0)


class SigRunner:
    """A runner that checks signatures as ShardRunner does (verify) and records them."""

    rank = 0

    def __init__(self) -> None:
        self.inner = minillama.random_model()
        self.captured: Optional[torch.Tensor] = None
        self.verified: List[torch.Tensor] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def verify(self, sig: torch.Tensor) -> None:
        self.verified.append(sig)
        ShardRunner.verify(self, sig)  # type: ignore[arg-type]


class FakeGraph:
    def __init__(self) -> None:
        self.replays = 0

    def replay(self) -> None:
        self.replays += 1


class RankEngineTest(unittest.TestCase):
    """One rank's engine and static decoder, in this process, with the other ranks' answers made up: what the CPU
    cannot run (CUDA graphs, kernel timings) is replaced by stand-ins; the agreement between ranks is what is
    tested."""

    def pool(self, r: Any, rows: int = 4) -> SlotPool:
        return SlotPool(r.layers, r.kv_heads, r.head_dim, rows, 16, r.dtype, r.device)

    def test_fatal_errors_are_not_out_of_memory(self) -> None:
        self.assertTrue(is_oom(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")))
        self.assertFalse(is_oom(RankFailure("rank 1: out of memory in a step")))
        self.assertFalse(is_oom(StepMismatch("rank 1: out of memory")))

    def test_out_of_memory_in_admission_ends_the_worker(self) -> None:
        col = Collector()
        eng = TPEngine(1, None, minillama.random_model(), col)
        eng.submit(Request(id=3, prompt=PROMPT, plan=snap_plan(len(PROMPT), 4), max_new=4))

        def oom(*a: Any, **k: Any) -> None:
            raise RuntimeError("CUDA out of memory. Tried to allocate 9.00 GiB")

        with mock.patch("snapworker.engine.make_cache", oom):
            with self.assertRaisesRegex(RankFailure, "rank 1: out of memory allocating a cache of 13 slots"):
                eng.step()
        self.assertEqual(col.events, [])  # no error event: the other ranks admitted it

    def test_out_of_memory_in_a_step_ends_the_worker(self) -> None:
        runner = minillama.random_model()
        col = Collector()
        eng = TPEngine(0, None, runner, col)
        eng.submit(Request(id=1, prompt=PROMPT, plan=snap_plan(len(PROMPT), 4), max_new=4))

        def oom(*a: Any) -> None:
            raise RuntimeError("CUDA out of memory. Tried to allocate 9.00 GiB")

        with mock.patch.object(runner, "forward", oom):
            with self.assertRaisesRegex(RankFailure, "rank 0: out of memory in a step of 18 tokens"):
                eng.step()
        self.assertEqual(col.errors, {})

    def test_engine_decodes_through_the_rank_decoder(self) -> None:
        runner = minillama.random_model()
        eng = TPEngine(0, FakeGroup([]), runner, Collector(), pool=self.pool(runner))  # type: ignore[arg-type]
        self.assertIsInstance(eng.static, TPStaticDecoder)

    def capture(self, sig: torch.Tensor) -> Any:
        """A stand-in for StaticDecoder._capture on the CPU: the forward runs eagerly once (the warm-up), the
        "graph" replays nothing and returns that forward's logits; the runner's captured signature is sig."""

        def fake(dec: StaticDecoder, b: int, impl: str) -> Any:
            out = dec._forward(b, dec.pool.capacity, impl)
            dec.r.captured = sig
            dec.graphs[b] = (FakeGraph(), out)
            return dec.graphs[b]

        return fake

    def decoder(self, answers: List[List[Any]]) -> "tuple[TPStaticDecoder, SigRunner]":
        runner = SigRunner()
        dec = TPStaticDecoder(runner, self.pool(runner), True, "sdpa", FakeGroup(answers))  # type: ignore[arg-type]
        dec.graphs_on = True  # as on a GPU
        return dec, runner

    def test_each_replay_checks_the_captured_signature(self) -> None:
        dec, runner = self.decoder([[""]])
        sig = torch.tensor([[1, 2, 3], [-1, -2, -3]])
        with mock.patch.object(StaticDecoder, "_capture", self.capture(sig)), \
                mock.patch.object(torch.cuda, "synchronize", lambda *a: None):
            dec.decode([5], [3], [3], 4)
            dec.decode([6], [4], [4], 5)
            self.assertEqual((dec.replays, dec.eager_steps, len(runner.verified)), (2, 0, 2))
            self.assertIs(runner.verified[-1], sig)
            sig[1, 2] = -4  # another rank replayed another step
            with self.assertRaisesRegex(StepMismatch, "the ranks disagree on the step"):
                dec.decode([7], [5], [5], 6)

    def test_a_capture_failed_elsewhere_turns_graphs_off_everywhere(self) -> None:
        dec, runner = self.decoder([["bucket 1: RuntimeError: capture failed"]])
        with mock.patch.object(StaticDecoder, "_capture", self.capture(torch.zeros(2, 5, dtype=torch.long))), \
                mock.patch.object(torch.cuda, "synchronize", lambda *a: None):
            logits = dec.decode([5], [3], [3], 4)
        self.assertEqual(tuple(logits.shape), (1, runner.vocab))
        self.assertEqual((dec.graphs_on, dec.graphs, dec.replays, dec.eager_steps), (False, {}, 0, 1))
        self.assertEqual(dec.graph_error, "rank 1: bucket 1: RuntimeError: capture failed")
        self.assertEqual(dec.group.asked, [""])  # type: ignore[attr-defined]

    def test_the_kernel_is_the_fastest_on_the_slowest_rank(self) -> None:
        def tune(dec: StaticDecoder, b: int) -> str:
            dec.impl_ms[b] = {"sdpa": 1.0, "split": 2.0}
            return "sdpa"

        for others, want in [([{"sdpa": 5.0, "split": 3.0}], "split"), ([{"sdpa": 0.5, "split": 0.7}], "sdpa"),
                             ([{"sdpa": 5.0}], "sdpa"), ([{"sdpa": 2.0, "split": 2.0}], "sdpa")]:
            dec, _ = self.decoder([others])
            with mock.patch.object(StaticDecoder, "_tune", tune):
                self.assertEqual(dec._tune(4), want, others)


class RanksTest(unittest.TestCase):
    def test_a_rank_that_said_it_fails_is_waited_for(self) -> None:
        """When the leader's own step or setup fails, the message names the rank that failed first: one that has
        written its failure line is waited for until it ends (a loaded machine may take seconds), one that has not
        only for the short wait."""
        events: List[Dict[str, Any]] = []
        ranks = Ranks(events.append)
        line = failed_line(1) + "setup: boom"
        say = f"import sys, time; print({line!r}, file=sys.stderr, flush=True); time.sleep(1.5)"
        ranks.spawn(1, [sys.executable, "-c", say], dict(os.environ))
        ranks.spawn(2, [sys.executable, "-c", "import time; time.sleep(30)"], dict(os.environ))
        deadline = time.time() + 10
        while not any(failed_line(1) in line for line in ranks.tails[1]) and time.time() < deadline:
            time.sleep(0.02)
        t0 = time.time()
        msg = ranks.first_death(0.2)
        self.assertGreater(time.time() - t0, 0.5)
        self.assertIn("tensor-parallel rank 1", msg)
        self.assertIn("exit status 0", msg)
        self.assertIn("setup: boom", msg)
        ranks.procs.pop(0)
        ranks.tails.pop(1)
        t0 = time.time()
        self.assertEqual(ranks.first_death(0.2), "")  # rank 2 said nothing: no long wait
        self.assertLess(time.time() - t0, 3)
        ranks.kill()
        self.assertEqual(events, [])  # the watchers stay quiet while the leader stops


def rank_pids(log: str) -> Dict[int, int]:
    """The children the leader started, from its log."""
    with open(log) as f:
        return {int(r): int(p) for r, p in re.findall(r"tensor-parallel rank (\d+) started, pid (\d+)", f.read())}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (ended, not yet reaped by a parent that is itself gone) counts as ended
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


# The rank failures: fault (tests/tp_entry.py), what the fatal event says, what it or the log says, the exit status.
# Forward 1 of a request is its prefill (the packed forward); the next ones are static decode steps. A follower's own
# exception (its out-of-memory RankFailure, RankEngineTest) ends it as diverge:1:4's StepMismatch does.
FAILURES = [("exit:1:2", "fatal runtime: tensor-parallel rank 1", "exit status 7", 1),
            ("oom:0:3", "fatal runtime: RankFailure: rank 0: out of memory", "cannot fail on one rank alone", 1),
            ("diverge:1:4", "fatal runtime: ", "the ranks disagree on the step", 1),
            ("setup:1", "fatal setup: tensor-parallel rank 1", "cannot load its shard", 2)]


@unittest.skipUnless(GLOO, NO_GLOO)
class ProcessTest(unittest.TestCase):
    """The tensor-parallel worker as processes (python -m tests.tp_entry --tp 2 --device cpu, gloo). The workers of
    all tests start together (they wait for commands), which saves most of their start-up time on a small machine."""

    workers: Dict[str, tp_conformance.Worker] = {}
    logs: Dict[str, str] = {}
    first: Dict[str, str] = {}  # each worker's first event: "ready", or the fatal message it started with

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.mkdtemp()
        cls.workers, cls.logs = {}, {}
        qwen = os.path.join(MODELS, "qwen2-tied")
        plain = [("kill-rank", "", GQA, []), ("kill-leader", "", GQA, []), ("indivisible", "", qwen, []),
                 ("tiny-pool", "", GQA, ["--kv-pool-bytes", "4096"]),
                 ("triton", "", GQA, ["--decode-attn", "triton"])]
        for name, fault, model, extra in plain + [(f[0], f[0], GQA, []) for f in FAILURES]:
            cls.logs[name] = os.path.join(cls.tmp, name.replace(":", "-") + ".log")
            env = dict(os.environ, SNAPWORKER_TEST_FAULT=fault)
            cls.workers[name] = tp_conformance.Worker(
                sys.executable, "tests.tp_entry", WORKER,
                ["--model", model, "--device", "cpu", "--dtype", "float32", "--tp", "2", *extra], cls.logs[name],
                env=env)
        # The conformance run (its own workers) starts with them: test_conformance_at_tp2 waits for it. Its refusal
        # of qwen2-tied at tp=2 is the "indivisible" worker's test here.
        cls.conformance_out = os.path.join(cls.tmp, "conformance", "conformance.json")
        cls.conformance = subprocess.Popen(
            [sys.executable, os.path.join(REPO, "tools", "gpu", "tp_conformance.py"), "--repo", REPO, "--device", "cpu",
             "--module", "tests.tp_entry", "--models", "llama-gqa", "--random-model", RANDOM,
             "--random-args", "--static-decode off", "--out", cls.conformance_out],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # Issue #23's policy fixtures at tp=2 (and tp=1) through the same processes: test_policies_at_tp2.
        cls.policies_out = os.path.join(cls.tmp, "policies", "policies.json")
        cls.policies = subprocess.Popen(
            [sys.executable, os.path.join(REPO, "tools", "gpu", "tp_conformance.py"), "--repo", REPO, "--device", "cpu",
             "--module", "tests.tp_entry", "--models", "llama-gqa", "--set", "policies", "--out", cls.policies_out],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        cls.first = {}
        for name, w in cls.workers.items():  # all started before the tests run
            try:
                cls.first[name] = w.next(120)["ev"]
            except tp_conformance.WorkerFailed as e:
                cls.first[name] = str(e)

    @classmethod
    def tearDownClass(cls) -> None:
        for w in cls.workers.values():
            w.kill()
        for p in (cls.conformance, cls.policies):
            if p.poll() is None:
                p.kill()
            p.communicate()

    def request(self, rid: int, n: int = 40) -> Dict[str, Any]:
        prompt = [5, 17, 3, 88, 42, 9, 1, 60]
        plan = dict(prompt_len=8, max_new=n, capacity=8 + n, sinks=8 + n, ring=0, topk=0, lo=8, hi=8, valid_topk=0,
                    need_scores=False, window=0, kernel=0, append_decode=False)
        return {"id": rid, "prompt": prompt, "plan": plan, "max_new": n}

    def fatal(self, name: str) -> str:
        """Runs a request on a worker that started, and returns the fatal message the worker ends with (or the one
        it started with)."""
        w = self.workers[name]
        if self.first[name] != "ready":
            return self.first[name]
        w.submit(self.request(1))
        with self.assertRaises(tp_conformance.WorkerFailed) as cm:
            while True:
                w.next(120)
        return str(cm.exception)

    def log(self, name: str) -> str:
        with open(self.logs[name]) as f:
            return f.read()

    def test_conformance_at_tp2(self) -> None:
        try:
            out, _ = self.conformance.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            self.conformance.kill()
            out, _ = self.conformance.communicate()
        self.assertEqual(self.conformance.returncode, 0, out[-8000:])
        rep = load_json(self.conformance_out)
        rows = [r for r in rep["rows"] if r["tp"] == 2]
        # llama-gqa (static decode) and the random model (packed: --static-decode off), six policies, alone and
        # together, each against tp=1 (static decode)
        self.assertEqual(len(rows), 24)
        self.assertEqual(sorted({(r["model"], r["decode"]) for r in rows}),
                         [("llama-gqa", "static"), ("random:random-qwen2-bias", "packed")])
        self.assertEqual(rep["problems"], [])
        ranks = rep["decode"]["llama-gqa"]["tp2"]  # both ranks ran the same static decode steps
        self.assertEqual(sorted(ranks), ["0", "1"])
        self.assertGreater(ranks["0"]["eager_steps"], 100)
        self.assertEqual(ranks["0"], ranks["1"])
        self.assertEqual(rep["decode"]["random:random-qwen2-bias"]["tp2"], {"0": None, "1": None})
        gqa = rep["info"]["llama-gqa"]
        self.assertEqual((gqa["tp2"]["pool_rows"], gqa["tp2"]["pool_capacity"]), (8, 4096))
        self.assertEqual(gqa["tp2"]["kv_pool_bytes"], gqa["tp1"]["kv_pool_bytes"])  # each rank holds half
        for r in rows:
            self.assertTrue(r["kept_eq_tp1"] and r["greedy_eq_tp1"] and r["kv_bytes_eq_tp1"], r)
            self.assertLessEqual(r["logits_rel_err_tp1"], 1e-5, r)
            if r["model"] == "llama-gqa":
                self.assertTrue(r["kept_eq_ref"] and r["greedy_eq_ref"], r)
                self.assertLessEqual(r["logits_rel_err_ref"], 1e-4, r)
        self.assertEqual(rep["refusals"], [])  # qwen2-tied was not asked for
        self.assertEqual(rep["info"]["llama-gqa"]["tp2"]["tp"], 2)
        self.assertEqual(rep["info"]["llama-gqa"]["tp2"]["kv_heads"], 2)  # the whole model's, not one rank's

    def test_policies_at_tp2(self) -> None:
        """Every case of the #23 policy fixtures (rerotate, knorm, kvquant, h2o, tova, pyramidkv, adakv) at tp=2 keeps
        and evicts the fixture's positions and gives its tokens, as tp=1 does; adakv is refused per request."""
        try:
            out, _ = self.policies.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            self.policies.kill()
            out, _ = self.policies.communicate()
        self.assertEqual(self.policies.returncode, 0, out[-8000:])
        rep = load_json(self.policies_out)
        rows = [r for r in rep["rows"] if r["tp"] == 2]
        cases = len(plans()["policies"]["llama-gqa"])
        self.assertEqual(len(rows), 2 * cases)  # alone and together
        refused = [r for r in rows if r["policy"].startswith("adakv")]
        self.assertEqual(len(refused), 4)
        self.assertTrue(all(r["refused"] for r in refused), refused)
        for r in rows:
            if r in refused:
                continue
            self.assertTrue(r["kept_eq_ref"] and r["greedy_eq_ref"] and r["kept_eq_tp1"] and r["greedy_eq_tp1"], r)
            self.assertLessEqual(r["logits_rel_err_ref"], 1e-3, r)
        self.assertEqual(rep["problems"], [])

    def test_killed_rank_takes_the_worker_down(self) -> None:
        w = self.workers["kill-rank"]
        self.assertEqual(self.first["kill-rank"], "ready")
        pid = rank_pids(self.logs["kill-rank"])[1]
        os.kill(pid, signal.SIGKILL)
        with self.assertRaises(tp_conformance.WorkerFailed) as cm:
            w.next(120)
        msg = str(cm.exception)
        self.assertIn("fatal runtime: tensor-parallel rank 1", msg)
        self.assertIn("killed by SIGKILL", msg)
        self.assertEqual(w.p.wait(30), 1)

    def test_killed_leader_takes_its_ranks_along(self) -> None:
        w = self.workers["kill-leader"]
        self.assertEqual(self.first["kill-leader"], "ready")
        pid = rank_pids(self.logs["kill-leader"])[1]
        w.p.kill()
        w.p.wait(30)
        self.assertTrue(wait_gone(pid, 15), f"rank 1 (pid {pid}) outlived its leader")

    def test_rank_failures(self) -> None:
        for fault, want, detail, code in FAILURES:
            with self.subTest(fault=fault):
                w = self.workers[fault]
                msg = self.fatal(fault)
                self.assertIn(want, msg)
                self.assertIn(detail, msg + self.log(fault))
                self.assertEqual(w.p.wait(30), code)
                for pid in rank_pids(self.logs[fault]).values():
                    self.assertTrue(wait_gone(pid, 15), f"{fault}: rank pid {pid} still running")

    def test_a_pool_too_small_is_a_setup_error(self) -> None:
        w = self.workers["tiny-pool"]
        msg = self.fatal("tiny-pool")
        self.assertIn("fatal setup: a KV pool of 0.00 GiB holds less than 256 slots (256 bytes a slot) on each of the "
                      "2 ranks: give the KV pool more memory (kv_memory_gib)", msg)
        self.assertEqual(w.p.wait(30), 2)
        for pid in rank_pids(self.logs["tiny-pool"]).values():
            self.assertTrue(wait_gone(pid, 15), f"rank pid {pid} still running")

    def test_a_decode_kernel_that_cannot_run_is_a_setup_error(self) -> None:
        w = self.workers["triton"]
        msg = self.fatal("triton")
        self.assertIn("fatal setup: decode attention triton cannot run here", msg)
        self.assertEqual(w.p.wait(30), 2)
        for pid in rank_pids(self.logs["triton"]).values():
            self.assertTrue(wait_gone(pid, 15), f"rank pid {pid} still running")

    def test_tp_that_does_not_divide_is_a_setup_error(self) -> None:
        w = self.workers["indivisible"]
        msg = self.fatal("indivisible")
        self.assertIn("fatal setup: tp=2 does not divide the model's 1 KV heads", msg)
        self.assertEqual(w.p.wait(30), 2)
        self.assertEqual(rank_pids(self.logs["indivisible"]), {})  # refused before starting any rank


TWO_GPUS = torch.cuda.is_available() and torch.cuda.device_count() >= 2 and dist.is_nccl_available()


@unittest.skipUnless(TWO_GPUS, "fewer than two CUDA devices here: tools/gpu/tp_session.sh runs this on a GPU machine")
class GPUTest(unittest.TestCase):
    """The same conformance on two GPUs with NCCL, minillama in place of transformers: the static decode replayed
    from each rank's CUDA graphs (the all-reduces and the step signature inside them) against tp=1, the packed path
    too, and the reference fixtures."""

    def test_conformance_at_tp2_with_cuda_graphs(self) -> None:
        tmp = tempfile.mkdtemp()
        out = os.path.join(tmp, "conformance.json")
        p = subprocess.run([sys.executable, os.path.join(REPO, "tools", "gpu", "tp_conformance.py"), "--repo", REPO,
                            "--device", "cuda:0", "--module", "tests.tp_entry", "--random-model", RANDOM, "--packed",
                            "--out", out], capture_output=True, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stdout[-8000:] + p.stderr[-4000:])
        rep = load_json(out)
        self.assertEqual(rep["problems"], [])
        for model in ("llama-gqa", "random:random-qwen2-bias"):
            ranks = rep["decode"][model]["tp2"]
            self.assertEqual(sorted(ranks), ["0", "1"])
            for r in ranks.values():
                self.assertGreater(r["replays"], 100, model)
                self.assertEqual(r["graph_error"], "", model)


if __name__ == "__main__":
    unittest.main()


def _fake_transformers(raw: Dict[str, Any]) -> "tuple[Any, List[Dict[str, Any]]]":
    """A stand-in for the names of transformers the worker uses (AutoConfig, AutoModelForCausalLM.from_config,
    AttentionInterface, __version__) over minillama laid out as transformers lays out a causal LM; returns it and
    the keyword arguments of every from_config call."""
    import types
    from types import SimpleNamespace

    class CausalLM(nn.Module):
        def __init__(self, config: Any) -> None:
            super().__init__()
            self.model = minillama.MiniLM(config.raw, False)
            self.lm_head = self.model.lm_head
            self.model.lm_head = None

        def get_input_embeddings(self) -> nn.Module:
            return self.model.embed_tokens

        def get_output_embeddings(self) -> Optional[nn.Module]:
            return self.lm_head

        def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, use_cache: bool,
                    logits_to_keep: torch.Tensor) -> Any:
            assert use_cache is False
            self.model.lm_head = self.lm_head
            try:
                return SimpleNamespace(logits=self.model(input_ids[0], position_ids[0], logits_to_keep)[None])
            finally:
                self.model.lm_head = None

    fake = types.ModuleType("transformers")
    fake.__version__ = "5.17.0"  # type: ignore[attr-defined]
    fake.AttentionInterface = SimpleNamespace(register=lambda name, fn: None)  # type: ignore[attr-defined]
    fake.AutoConfig = SimpleNamespace(from_pretrained=lambda d: SimpleNamespace(raw=raw, **raw))  # type: ignore
    made: List[Dict[str, Any]] = []

    def from_config(config: Any, **kw: Any) -> nn.Module:
        made.append(kw)
        return CausalLM(config)

    fake.AutoModelForCausalLM = SimpleNamespace(from_config=from_config)  # type: ignore[attr-defined]
    return fake, made
