"""Tiny valid ONNX models for tests (a plain module: test files import it by name, which a
conftest cannot safely be, since tests/*/conftest.py files share that module name)."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.helper as oh
import onnx.parser


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
