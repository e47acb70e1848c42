"""Paths and fixtures shared by the worker's tests (run from any directory)."""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.dirname(HERE)
REPO = os.path.abspath(os.path.join(WORKER, "..", "..", ".."))
MODELS = os.path.join(REPO, "backends", "cpu", "testdata", "models")
PLANS = os.path.join(REPO, "backends", "torch", "testdata", "plans.json")
SELECTION = os.path.join(REPO, "compress", "testdata", "selection.json")

if WORKER not in sys.path:
    sys.path.insert(0, WORKER)


def load_json(path: str) -> Any:
    """Reads a JSON file."""
    with open(path) as f:
        return json.load(f)


def plans() -> Dict[str, Any]:
    """testdata/plans.json, written by the Go test TestGoldenPlans."""
    return load_json(PLANS)


def reference(model: str) -> Dict[str, Any]:
    """A conformance model's reference.json."""
    return load_json(os.path.join(MODELS, model, "reference.json"))
