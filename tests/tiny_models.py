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


def cifar_like(c1: int = 16, c2: int = 16, hw: int = 32, n: int = 16, seed: int = 0
               ) -> tuple[onnx.ModelProto, np.ndarray]:
    """A small CIFAR-10-shaped CNN with random (He-scaled) weights and ``n`` random inputs:
    x[N,3,hw,hw] -> Conv 3->c1 3x3 pad 1 -> Relu -> MaxPool 2 -> Conv c1->c2 3x3 pad 1 -> Relu ->
    GlobalAveragePool -> Flatten -> Gemm -> y[N,10]. Its first feature map (c1 x hw x hw int16:
    32 KiB for c1 = 16 at 32x32, 64 KiB for 32) does not fit the MSP430FR5994's lower FRAM beside
    the code; plan-memory puts it in HIFRAM. The inputs are pixel noise with a contrast and a
    per-channel brightness of their own, as photos vary: on noise alone the global average pool
    gives every image nearly the same logits, and top-1 would compare near-ties."""
    rng = np.random.default_rng(seed)

    def he(*shape: int) -> np.ndarray:
        fan = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan)).astype(np.float32)

    inits = [onnx.numpy_helper.from_array(he(c1, 3, 3, 3), "W1"),
             onnx.numpy_helper.from_array((0.1 * rng.standard_normal(c1)).astype(np.float32), "B1"),
             onnx.numpy_helper.from_array(he(c2, c1, 3, 3), "W2"),
             onnx.numpy_helper.from_array((0.1 * rng.standard_normal(c2)).astype(np.float32), "B2"),
             onnx.numpy_helper.from_array(he(10, c2), "W3"),
             onnx.numpy_helper.from_array((0.1 * rng.standard_normal(10)).astype(np.float32), "B3")]
    nodes = [oh.make_node("Conv", ["x", "W1", "B1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             oh.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             oh.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
             oh.make_node("Conv", ["p1", "W2", "B2"], ["c2"], name="conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             oh.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             oh.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
             oh.make_node("Flatten", ["g"], ["f"], name="flatten"),
             oh.make_node("Gemm", ["f", "W3", "B3"], ["y"], name="fc", transB=1)]
    graph = oh.make_graph(nodes, "cifar_like", [oh.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3, hw, hw])],
                          [oh.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 10])], inits)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)], ir_version=8,
                          producer_name="freeml-tx-tests")
    x = (rng.standard_normal((n, 3, hw, hw)) * rng.uniform(0.5, 1.5, (n, 1, 1, 1))
         + rng.standard_normal((n, 3, 1, 1)))
    return model, x.astype(np.float32)
