"""Hand-made ONNX graphs: forms the exporters of the other case modules do not write, node by node.

Gemm with alpha/beta/transA and a 2-D bias, Reshape with 0 and -1, Squeeze/Unsqueeze with axes as
attribute (opset 11) and as input (13), Constant nodes, the shape arithmetic of old torch exports
(Shape, Gather, Concat, Slice, ConstantOfShape), symbolic dims, two outputs, an intermediate tensor
that is also an output, opsets 7-9 with IR version 3 (initializers listed as inputs), float16 and
float64 graphs, float16 weights Cast to float, input normalisation, broadcasts and an explicit Pad.

Each graph draws its weights and samples from its own generator, seeded from its name, so a case
is the same model whatever else runs. Every graph passes ``onnx.checker``.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as onh

from bench.exporter_cases.common import SAMPLES, Case, ExportedModel


class Draws:
    """Seeded weights and samples of one graph."""

    def __init__(self, name: str) -> None:
        self.rng = np.random.default_rng(zlib.crc32(name.encode()))

    def weights(self, *shape: int, scale: float = 0.4) -> np.ndarray:
        """Normal float32 weights times ``scale``."""
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def samples(self, *shape: int) -> np.ndarray:
        """``SAMPLES`` standard normal float32 inputs of ``shape`` each."""
        return self.rng.standard_normal((SAMPLES, *shape)).astype(np.float32)


def value_info(name: str, shape: list[int | str], elem_type: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    """A graph input/output declaration."""
    return oh.make_tensor_value_info(name, elem_type, shape)


def graph_model(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto],
                initializers: dict[str, np.ndarray], opset: int = 13, float_dtype: type = np.float32,
                initializers_as_inputs: bool = False) -> onnx.ModelProto:
    """A checked model; float initializers in ``float_dtype``; IR version 3 with the initializers also
    listed as graph inputs (the old exporters' form) when ``initializers_as_inputs``, else 7 (opset < 15)
    or 8."""
    tensors = {k: v.astype(float_dtype) if v.dtype.kind == "f" else v for k, v in initializers.items()}
    graph = oh.make_graph(nodes, "g", inputs, outputs, [onh.from_array(v, k) for k, v in tensors.items()])
    if initializers_as_inputs:
        graph.input.extend(value_info(k, list(v.shape), oh.np_dtype_to_tensor_dtype(v.dtype))
                           for k, v in tensors.items())
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)])
    model.ir_version = 3 if initializers_as_inputs else (7 if opset < 15 else 8)
    onnx.checker.check_model(model)
    return model


def gemm_alpha_beta(d: Draws) -> ExportedModel:
    """Gemm(alpha 0.5, beta 2, W not transposed) -> Relu -> Gemm(transB, alpha 1.5)."""
    nodes = [oh.make_node("Gemm", ["x", "W1", "b1"], ["h1"], alpha=0.5, beta=2.0, transB=0),
             oh.make_node("Relu", ["h1"], ["r"]),
             oh.make_node("Gemm", ["r", "W2", "b2"], ["y"], transB=1, alpha=1.5)]
    return ExportedModel(graph_model(nodes, [value_info("x", [1, 8])], [value_info("y", [1, 4])],
                                     {"W1": d.weights(8, 12), "b1": d.weights(12), "W2": d.weights(4, 12),
                                      "b2": d.weights(4)}), {"x": d.samples(8)})


def gemm_trans_a(d: Draws) -> ExportedModel:
    """Transpose [1, 0] of the input -> Gemm(transA, beta 0.5, a [1, 12] bias) -> Relu -> Gemm without bias."""
    nodes = [oh.make_node("Transpose", ["x"], ["xt"], perm=[1, 0]),
             oh.make_node("Gemm", ["xt", "W1", "b1"], ["h1"], transA=1, beta=0.5),
             oh.make_node("Relu", ["h1"], ["r"]),
             oh.make_node("Gemm", ["r", "W2"], ["y"])]
    return ExportedModel(graph_model(nodes, [value_info("x", [1, 8])], [value_info("y", [1, 4])],
                                     {"W1": d.weights(8, 12), "b1": d.weights(1, 12), "W2": d.weights(12, 4)}),
                         {"x": d.samples(8)})


def gemm_bias_2d(d: Draws) -> ExportedModel:
    """A symbolic batch ``N``; Gemm with a [1, 12] bias, Relu, Gemm with a one-element bias."""
    nodes = [oh.make_node("Gemm", ["x", "W1", "b1"], ["h1"], transB=1),
             oh.make_node("Relu", ["h1"], ["r"]),
             oh.make_node("Gemm", ["r", "W2", "b2"], ["y"])]
    return ExportedModel(graph_model(nodes, [value_info("x", ["N", 8])], [value_info("y", ["N", 4])],
                                     {"W1": d.weights(12, 8), "b1": d.weights(1, 12), "W2": d.weights(12, 4),
                                      "b2": np.float32([0.3])}), {"x": d.samples(8)})


def reshape_zero_minus_one(d: Draws) -> ExportedModel:
    """Conv -> Relu -> Reshape [0, -1] -> Gemm."""
    nodes = [oh.make_node("Conv", ["x", "Wc", "bc"], ["c"], pads=[1, 1, 1, 1]),
             oh.make_node("Relu", ["c"], ["r"]),
             oh.make_node("Reshape", ["r", "shape"], ["f"]),
             oh.make_node("Gemm", ["f", "W", "b"], ["y"], transB=1)]
    return ExportedModel(graph_model(nodes, [value_info("x", [1, 2, 6, 6])], [value_info("y", [1, 5])],
                                     {"Wc": d.weights(3, 2, 3, 3), "bc": d.weights(3), "shape": np.int64([0, -1]),
                                      "W": d.weights(5, 108, scale=0.1), "b": d.weights(5)}),
                         {"x": d.samples(2, 6, 6)})


def reshape_3d_reduce_mean(d: Draws) -> ExportedModel:
    """Conv -> Relu -> Reshape [1, 4, 6, 6] to [1, 4, 36] -> ReduceMean over axis 2 -> Gemm."""
    nodes = [oh.make_node("Conv", ["x", "Wc", "bc"], ["c"], pads=[1, 1, 1, 1]),
             oh.make_node("Relu", ["c"], ["r"]),
             oh.make_node("Reshape", ["r", "shape"], ["f"]),
             oh.make_node("ReduceMean", ["f"], ["m"], axes=[2], keepdims=0),
             oh.make_node("Gemm", ["m", "W", "b"], ["y"], transB=1)]
    return ExportedModel(graph_model(nodes, [value_info("x", [1, 2, 6, 6])], [value_info("y", [1, 3])],
                                     {"Wc": d.weights(4, 2, 3, 3), "bc": d.weights(4), "shape": np.int64([1, 4, -1]),
                                      "W": d.weights(3, 4), "b": d.weights(3)}), {"x": d.samples(2, 6, 6)})


def squeeze_unsqueeze(d: Draws, opset: int) -> ExportedModel:
    """Unsqueeze [1, 16] to [1, 1, 16] -> Conv1d -> Relu -> Unsqueeze to [1, 4, 16, 1] -> GlobalAveragePool ->
    Squeeze -> Gemm; the axes are attributes before opset 13 and inputs from 13."""
    def axes_node(op: str, inputs: list[str], output: str, axes: list[int], name: str) -> onnx.NodeProto:
        if opset < 13:
            return oh.make_node(op, inputs, [output], axes=axes)
        initializers[name] = np.int64(axes)
        return oh.make_node(op, [*inputs, name], [output])

    initializers = {"Wc": d.weights(4, 1, 3), "bc": d.weights(4), "W": d.weights(3, 4), "b": d.weights(3)}
    nodes = [axes_node("Unsqueeze", ["x1"], "u", [1], "axes1"),
             oh.make_node("Conv", ["u", "Wc", "bc"], ["c"], pads=[1, 1]),
             oh.make_node("Relu", ["c"], ["r"]),
             axes_node("Unsqueeze", ["r"], "r4", [3], "axes3"),
             oh.make_node("GlobalAveragePool", ["r4"], ["g"]),
             axes_node("Squeeze", ["g"], "s", [2, 3], "axes23"),
             oh.make_node("Gemm", ["s", "W", "b"], ["y"], transB=1)]
    return ExportedModel(graph_model(nodes, [value_info("x1", [1, 16])], [value_info("y", [1, 3])], initializers,
                                     opset=opset), {"x1": d.samples(16)})


def constant_nodes(d: Draws) -> ExportedModel:
    """Weights and the target shape as Constant nodes; Reshape -> MatMul by a Transposed constant -> Add
    -> Relu -> Gemm."""
    def constant(name: str, value: np.ndarray) -> onnx.NodeProto:
        return oh.make_node("Constant", [], [name], value=onh.from_array(value, f"{name}_value"))

    nodes = [constant("W1", d.weights(12, 8)), constant("b1", d.weights(12)), constant("W2", d.weights(8, 12)),
             constant("shape", np.int64([1, -1])),
             oh.make_node("Reshape", ["x", "shape"], ["xf"]),
             oh.make_node("Transpose", ["W1"], ["W1T"]),
             oh.make_node("MatMul", ["xf", "W1T"], ["m"]),
             oh.make_node("Add", ["m", "b1"], ["a"]),
             oh.make_node("Relu", ["a"], ["r"]),
             oh.make_node("Gemm", ["r", "W2"], ["y"], transB=1)]
    return ExportedModel(graph_model(nodes, [value_info("x", [1, 2, 4])], [value_info("y", [1, 8])], {}),
                         {"x": d.samples(2, 4)})


def shape_chain(d: Draws) -> ExportedModel:
    """Old torch exports' shape arithmetic: Reshape(r, Concat(Unsqueeze(Gather(Shape(r), 0)), [-1])), and a
    ConstantOfShape of a Slice of a Shape added to it; a symbolic batch."""
    nodes = [oh.make_node("Conv", ["x", "Wc", "bc"], ["c"], pads=[1, 1, 1, 1]),
             oh.make_node("Relu", ["c"], ["r"]),
             oh.make_node("Shape", ["r"], ["sh"]),
             oh.make_node("Gather", ["sh", "zero"], ["n"], axis=0),
             oh.make_node("Unsqueeze", ["n", "axis0"], ["n1"]),
             oh.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             oh.make_node("Reshape", ["r", "shape"], ["f"]),
             oh.make_node("Shape", ["f"], ["fs"]),
             oh.make_node("Slice", ["fs", "one", "two", "axis0"], ["fs1"]),
             oh.make_node("ConstantOfShape", ["fs1"], ["quarter"], value=onh.from_array(np.float32([0.25]), "v")),
             oh.make_node("Gemm", ["f", "W", "b"], ["g"], transB=1),
             oh.make_node("Add", ["f", "quarter"], ["f2"]),
             oh.make_node("Gemm", ["f2", "W", "b"], ["g2"], transB=1),
             oh.make_node("Add", ["g", "g2"], ["y"])]
    return ExportedModel(graph_model(nodes, [value_info("x", ["batch", 2, 5, 5])], [value_info("y", ["batch", 4])],
                                     {"Wc": d.weights(3, 2, 3, 3), "bc": d.weights(3), "zero": np.int64(0),
                                      "axis0": np.int64([0]), "minus1": np.int64([-1]), "one": np.int64([1]),
                                      "two": np.int64([2]), "W": d.weights(4, 75, scale=0.1), "b": d.weights(4)}),
                         {"x": d.samples(2, 5, 5)})


def symbolic_dims(d: Draws) -> ExportedModel:
    """An input [N, 3, L] with symbolic N and L: Conv1d -> Relu -> GlobalAveragePool -> Flatten -> Gemm."""
    nodes = [oh.make_node("Conv", ["x", "Wc", "bc"], ["c"], pads=[1, 1]),
             oh.make_node("Relu", ["c"], ["r"]),
             oh.make_node("GlobalAveragePool", ["r"], ["g"]),
             oh.make_node("Flatten", ["g"], ["f"]),
             oh.make_node("Gemm", ["f", "W", "b"], ["y"], transB=1)]
    return ExportedModel(graph_model(nodes, [value_info("x", ["N", 3, "L"])], [value_info("y", ["N", 4])],
                                     {"Wc": d.weights(5, 3, 3), "bc": d.weights(5), "W": d.weights(4, 5),
                                      "b": d.weights(4)}), {"x": d.samples(3, 24)})


def two_outputs(d: Draws) -> ExportedModel:
    """Gemm -> Relu shared by two Gemm outputs."""
    nodes = [oh.make_node("Gemm", ["x", "W1", "b1"], ["h1"], transB=1),
             oh.make_node("Relu", ["h1"], ["r"]),
             oh.make_node("Gemm", ["r", "W2", "b2"], ["y1"], transB=1),
             oh.make_node("Gemm", ["r", "W3", "b3"], ["y2"], transB=1)]
    return ExportedModel(graph_model(nodes, [value_info("x", [1, 6])], [value_info("y1", [1, 3]),
                                                                        value_info("y2", [1, 2])],
                                     {"W1": d.weights(10, 6), "b1": d.weights(10), "W2": d.weights(3, 10),
                                      "b2": d.weights(3), "W3": d.weights(2, 10), "b3": d.weights(2)}),
                         {"x": d.samples(6)})


def hidden_output(d: Draws) -> ExportedModel:
    """An intermediate activation that is also a graph output."""
    nodes = [oh.make_node("Gemm", ["x", "W1", "b1"], ["h1"], transB=1),
             oh.make_node("Relu", ["h1"], ["feat"]),
             oh.make_node("Gemm", ["feat", "W2", "b2"], ["y"], transB=1)]
    return ExportedModel(graph_model(nodes, [value_info("x", [1, 6])], [value_info("y", [1, 3]),
                                                                        value_info("feat", [1, 10])],
                                     {"W1": d.weights(10, 6), "b1": d.weights(10), "W2": d.weights(3, 10),
                                      "b2": d.weights(3)}), {"x": d.samples(6)})


def old_opset(d: Draws, opset: int) -> ExportedModel:
    """IR version 3: Conv -> BatchNormalization (``spatial`` before opset 9) -> Relu -> MaxPool -> Flatten
    -> Gemm -> Clip with min/max attributes (before 11) or Relu."""
    bn_attributes: dict[str, float | int] = {"epsilon": 1e-5}
    if opset < 9:
        bn_attributes["spatial"] = 1
    last = (oh.make_node("Clip", ["g"], ["y"], min=-1.0, max=1.0) if opset < 11
            else oh.make_node("Relu", ["g"], ["y"]))
    nodes = [oh.make_node("Conv", ["x", "Wc", "bc"], ["c"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
             oh.make_node("BatchNormalization", ["c", "s", "bb", "mu", "var"], ["bn"], **bn_attributes),
             oh.make_node("Relu", ["bn"], ["r"]),
             oh.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             oh.make_node("Flatten", ["p"], ["f"], axis=1),
             oh.make_node("Gemm", ["f", "W", "b"], ["g"], transB=1),
             last]
    return ExportedModel(graph_model(nodes, [value_info("x", [1, 2, 6, 6])], [value_info("y", [1, 5])],
                                     {"Wc": d.weights(4, 2, 3, 3), "bc": d.weights(4), "s": np.abs(d.weights(4)) + 0.5,
                                      "bb": d.weights(4), "mu": d.weights(4), "var": np.abs(d.weights(4)) + 0.5,
                                      "W": d.weights(5, 36, scale=0.2), "b": d.weights(5)},
                                     opset=opset, initializers_as_inputs=True), {"x": d.samples(2, 6, 6)})


def float_graph(d: Draws, float_dtype: type) -> ExportedModel:
    """A graph whose input, weights and output are ``float_dtype``: Gemm -> Relu -> MatMul -> Add."""
    elem_type = oh.np_dtype_to_tensor_dtype(np.dtype(float_dtype))
    nodes = [oh.make_node("Gemm", ["x", "W1", "b1"], ["h1"], transB=1),
             oh.make_node("Relu", ["h1"], ["r"]),
             oh.make_node("MatMul", ["r", "W2"], ["m"]),
             oh.make_node("Add", ["m", "b2"], ["y"])]
    return ExportedModel(graph_model(nodes, [value_info("x", [1, 6], elem_type)], [value_info("y", [1, 3], elem_type)],
                                     {"W1": d.weights(10, 6), "b1": d.weights(10), "W2": d.weights(10, 3),
                                      "b2": d.weights(3)}, float_dtype=float_dtype), {"x": d.samples(6)})


def cast_float16_weights(d: Draws) -> ExportedModel:
    """A float32 graph whose first weights are float16, Cast to float before the Gemm."""
    nodes = [oh.make_node("Cast", ["W1h"], ["W1"], to=TensorProto.FLOAT),
             oh.make_node("Gemm", ["x", "W1", "b1"], ["h1"], transB=1),
             oh.make_node("Relu", ["h1"], ["r"]),
             oh.make_node("Gemm", ["r", "W2", "b2"], ["y"], transB=1)]
    initializers = [onh.from_array(d.weights(10, 6).astype(np.float16), "W1h"), onh.from_array(d.weights(10), "b1"),
                    onh.from_array(d.weights(3, 10), "W2"), onh.from_array(d.weights(3), "b2")]
    graph = oh.make_graph(nodes, "g", [value_info("x", [1, 6])], [value_info("y", [1, 3])], initializers)
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return ExportedModel(model, {"x": d.samples(6)})


def sub_div_input(d: Draws) -> ExportedModel:
    """``(x - mean) / std`` per channel at the input -> Conv -> Relu -> GlobalAveragePool -> Flatten -> Gemm;
    samples around the mean."""
    nodes = [oh.make_node("Sub", ["x", "mean"], ["a"]),
             oh.make_node("Div", ["a", "std"], ["scaled"]),
             oh.make_node("Conv", ["scaled", "Wc", "bc"], ["c"], pads=[1, 1, 1, 1]),
             oh.make_node("Relu", ["c"], ["r"]),
             oh.make_node("GlobalAveragePool", ["r"], ["g"]),
             oh.make_node("Flatten", ["g"], ["f"]),
             oh.make_node("Gemm", ["f", "W", "b"], ["y"], transB=1)]
    return ExportedModel(graph_model(nodes, [value_info("x", [1, 3, 6, 6])], [value_info("y", [1, 4])],
                                     {"mean": np.float32([0.5, 0.4, 0.3]).reshape(1, 3, 1, 1),
                                      "std": np.float32([0.25, 0.3, 0.2]).reshape(1, 3, 1, 1),
                                      "Wc": d.weights(5, 3, 3, 3), "bc": d.weights(5), "W": d.weights(4, 5),
                                      "b": d.weights(4)}), {"x": d.samples(3, 6, 6) * 0.3 + 0.4})


def broadcast_add_activation(d: Draws) -> ExportedModel:
    """``r + GlobalAveragePool(r)``: an activation plus its per-channel mean broadcast over H and W."""
    nodes = [oh.make_node("Conv", ["x", "Wc", "bc"], ["c"], pads=[1, 1, 1, 1]),
             oh.make_node("Relu", ["c"], ["r"]),
             oh.make_node("GlobalAveragePool", ["r"], ["g"]),
             oh.make_node("Add", ["r", "g"], ["s"]),
             oh.make_node("Flatten", ["s"], ["f"]),
             oh.make_node("Gemm", ["f", "W", "b"], ["y"], transB=1)]
    return ExportedModel(graph_model(nodes, [value_info("x", [1, 2, 4, 4])], [value_info("y", [1, 3])],
                                     {"Wc": d.weights(3, 2, 3, 3), "bc": d.weights(3), "W": d.weights(3, 48, scale=0.2),
                                      "b": d.weights(3)}), {"x": d.samples(2, 4, 4)})


def scalar_constants(d: Draws) -> ExportedModel:
    """``relu(h) * 0.5 + 1`` with scalar (rank 0) initializers between two Gemms."""
    nodes = [oh.make_node("Gemm", ["x", "W1", "b1"], ["h1"], transB=1),
             oh.make_node("Relu", ["h1"], ["r"]),
             oh.make_node("Mul", ["r", "half"], ["m"]),
             oh.make_node("Add", ["m", "one"], ["a"]),
             oh.make_node("Gemm", ["a", "W2", "b2"], ["y"], transB=1)]
    return ExportedModel(graph_model(nodes, [value_info("x", [1, 6])], [value_info("y", [1, 3])],
                                     {"W1": d.weights(10, 6), "b1": d.weights(10), "half": np.float32(0.5),
                                      "one": np.float32(1.0), "W2": d.weights(3, 10), "b2": d.weights(3)}),
                         {"x": d.samples(6)})


def pad_then_conv(d: Draws) -> ExportedModel:
    """An explicit constant Pad (asymmetric: 1 row, 2 columns on each side) before an unpadded Conv."""
    nodes = [oh.make_node("Pad", ["x", "pads"], ["p"], mode="constant"),
             oh.make_node("Conv", ["p", "Wc", "bc"], ["c"]),
             oh.make_node("Relu", ["c"], ["r"]),
             oh.make_node("Flatten", ["r"], ["f"]),
             oh.make_node("Gemm", ["f", "W", "b"], ["y"], transB=1)]
    return ExportedModel(graph_model(nodes, [value_info("x", [1, 2, 5, 5])], [value_info("y", [1, 3])],
                                     {"pads": np.int64([0, 0, 1, 2, 0, 0, 1, 2]), "Wc": d.weights(3, 2, 3, 3),
                                      "bc": d.weights(3), "W": d.weights(3, 3 * 5 * 7, scale=0.2), "b": d.weights(3)}),
                         {"x": d.samples(2, 5, 5)})


def _build(name: str, graph: Callable[[Draws], ExportedModel]) -> ExportedModel:
    """``graph`` with the draws seeded from the case name."""
    return graph(Draws(name))


def hand_cases() -> list[Case]:
    """One case per graph of this module; ``dynamic``: the graph's batch axis is symbolic."""
    graphs: list[tuple[str, int, str, Callable[[Draws], ExportedModel]]] = [
        ("h_gemm_alpha_beta", 13, "1", gemm_alpha_beta),
        ("h_gemm_transA", 13, "1", gemm_trans_a),
        ("h_gemm_bias2d_symN", 13, "dynamic", gemm_bias_2d),
        ("h_reshape_0_-1", 13, "1", reshape_zero_minus_one),
        ("h_reshape_3d_reducemean", 13, "1", reshape_3d_reduce_mean),
        ("h_squeeze_unsqueeze_op11", 11, "1", functools.partial(squeeze_unsqueeze, opset=11)),
        ("h_squeeze_unsqueeze_op13", 13, "1", functools.partial(squeeze_unsqueeze, opset=13)),
        ("h_constant_nodes", 13, "1", constant_nodes),
        ("h_shape_chain", 13, "dynamic", shape_chain),
        ("h_symbolic_N_L", 13, "dynamic", symbolic_dims),
        ("h_two_outputs", 13, "1", two_outputs),
        ("h_hidden_output", 13, "1", hidden_output),
        ("h_opset7", 7, "1", functools.partial(old_opset, opset=7)),
        ("h_opset8", 8, "1", functools.partial(old_opset, opset=8)),
        ("h_opset9", 9, "1", functools.partial(old_opset, opset=9)),
        ("h_float64", 13, "1", functools.partial(float_graph, float_dtype=np.float64)),
        ("h_float16", 13, "1", functools.partial(float_graph, float_dtype=np.float16)),
        ("h_cast_fp16_weights", 13, "1", cast_float16_weights),
        ("h_sub_div_input", 13, "1", sub_div_input),
        ("h_broadcast_add_act", 13, "1", broadcast_add_activation),
        ("h_add_scalar_const", 13, "1", scalar_constants),
        ("h_pad_conv", 13, "1", pad_then_conv),
    ]
    return [Case(name, "hand", opset, batch, (), functools.partial(_build, name, graph))
            for name, opset, batch, graph in graphs]
