"""Transposes that only move axes of length 1 (a channels-last grayscale image turned channels
first, a row turned into a column for ``Gemm(transA=1)``) move no element: normalize makes them
Reshapes, the model compiles, the C equals the interpreter bit for bit and agrees with onnxruntime
on the original model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter
from onnx import TensorProto, helper, numpy_helper
from test_activations_e2e import TOP1, against_onnxruntime, compile_program

from transpiler.data import Dataset
from transpiler.lir.qio import quantize_inputs
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext


def _model(nodes: list[onnx.NodeProto], x_shape: list[int], inits: dict[str, np.ndarray]) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "unit_axes", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(np.asarray(v, np.float32), n) for n, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return proto


def channels_last_grayscale() -> tuple[onnx.ModelProto, list[int]]:
    """x [1,8,8,1] -> Transpose [0,3,1,2] -> Conv 3x3 -> Relu -> Flatten -> Gemm."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t", "W", "B"], ["c"], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "G", "C"], ["y"], transB=1)]
    inits = {"W": rng.normal(0, 0.5, (4, 1, 3, 3)), "B": rng.normal(0, 0.1, 4),
             "G": rng.normal(0, 0.2, (4, 4 * 6 * 6)), "C": rng.normal(0, 0.1, 4)}
    return _model(nodes, [1, 8, 8, 1], inits), [1, 8, 8, 1]


def transposed_row() -> tuple[onnx.ModelProto, list[int]]:
    """x [1,8] -> Transpose [1,0] -> Gemm(transA=1, beta=0.5) -> Relu -> Gemm."""
    rng = np.random.default_rng(1)
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
             helper.make_node("Gemm", ["t", "W1", "b1"], ["h"], transA=1, beta=0.5),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "W2"], ["y"])]
    inits = {"W1": rng.normal(0, 0.5, (8, 12)), "b1": rng.normal(0, 0.1, (1, 12)), "W2": rng.normal(0, 0.4, (12, 4))}
    return _model(nodes, [1, 8], inits), [1, 8]


@pytest.mark.parametrize("build", [channels_last_grayscale, transposed_row], ids=["nhwc-gray", "gemm-transA"])
def test_unit_axis_transposes_compile_and_agree(build: Callable[[], tuple[onnx.ModelProto, list[int]]],
                                                tmp_path: Path) -> None:
    proto, shape = build()
    xs = np.random.default_rng(7).standard_normal((100, *shape[1:])).astype(np.float32)
    normalized = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)[0]
    assert "Transpose" not in [n.op for n in normalized.graph.nodes]
    program = compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": xs}), tmp_path / "gen")
    figures = against_onnxruntime(program, OnnxModel.from_proto(proto), xs, "x")
    assert figures["top1"] >= TOP1, figures
    inputs = [quantize_inputs(program, {"x": x[None]}) for x in xs[:10]]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, build.__name__)
