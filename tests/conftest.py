"""Shared test setup: verification on, the samples folder, and a factory of tiny ONNX models."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnx.helper as oh
import onnx.parser
import pytest
from tiny_models import tiny_proto
from hypothesis import settings

# CI runs are reproducible: the same examples every run (derandomize), and no example database.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Every semantics-preserving pass is checked with onnxruntime in the tests (and their subprocesses).
os.environ["FREEML_TX_VERIFY"] = "1"

REPO = Path(__file__).resolve().parent.parent
TinyModel = Callable[..., Path]


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The repository's samples/ folder (models and data made by samples/make_all.py)."""
    return REPO / "samples"


@pytest.fixture
def tiny_model(tmp_path: Path) -> TinyModel:
    """Factory: ``tiny_model("mlp", opset=13, name="m.onnx", text=None) -> Path`` of a saved model."""

    def make(kind: str = "mlp", *, name: str | None = None, **kwargs: object) -> Path:
        proto = tiny_proto(kind, **kwargs)  # type: ignore[arg-type]
        path = tmp_path / (name or f"{kind}.onnx")
        onnx.save(proto, str(path))
        return path

    return make


@pytest.fixture
def register_passes(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Register test passes into a copy of the registry that is dropped after the test."""
    from transpiler import pass_infra

    pass_infra.registry()  # load the built-in and entry-point passes into the real registry first
    monkeypatch.setattr(pass_infra, "_REGISTRY", dict(pass_infra._REGISTRY))

    def add(*classes: type) -> None:
        for cls in classes:
            pass_infra.register(cls)

    return add
