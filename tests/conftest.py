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


def _weights(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def tiny_proto(kind: str = "mlp", *, opset: int = 13, ir_version: int = 8, seed: int = 0,
               text: str | None = None) -> onnx.ModelProto:
    """A small valid model.

    kind: "mlp" (x[N,4] -> MatMul -> Add -> Relu -> y[N,3]), "conv" (x[1,1,6,6] -> Conv 3x3 ->
    Relu -> y[1,2,4,4]), "two-inputs" (a[1,4] + b[1,4] -> Relu -> y). ``text`` parses ONNX text
    (onnx.parser) instead.
    """
    if text is not None:
        return onnx.parser.parse_model(text)
    if kind == "mlp":
        nodes = [oh.make_node("MatMul", ["x", "W"], ["h"], name="fc"),
                 oh.make_node("Add", ["h", "B"], ["z"], name="bias"),
                 oh.make_node("Relu", ["z"], ["y"], name="relu")]
        inits = [onnx.numpy_helper.from_array(_weights((4, 3), seed), "W"),
                 onnx.numpy_helper.from_array(_weights((3,), seed + 1), "B")]
        inputs = [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])]
        outputs = [oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3])]
    elif kind == "conv":
        nodes = [oh.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", kernel_shape=[3, 3]),
                 oh.make_node("Relu", ["c"], ["y"], name="relu")]
        inits = [onnx.numpy_helper.from_array(_weights((2, 1, 3, 3), seed), "W"),
                 onnx.numpy_helper.from_array(_weights((2,), seed + 1), "B")]
        inputs = [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 6, 6])]
        outputs = [oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2, 4, 4])]
    elif kind == "two-inputs":
        nodes = [oh.make_node("Add", ["a", "b"], ["s"], name="add"),
                 oh.make_node("Relu", ["s"], ["y"], name="relu")]
        inits = []
        inputs = [oh.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1, 4]) for n in ("a", "b")]
        outputs = [oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])]
    else:
        raise ValueError(f"unknown tiny model kind {kind!r}")
    graph = oh.make_graph(nodes, f"tiny_{kind.replace('-', '_')}", inputs, outputs, inits)
    return oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)], ir_version=ir_version,
                         producer_name="freeml-tx-tests")


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
