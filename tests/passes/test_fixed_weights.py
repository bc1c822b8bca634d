"""Weights a normalize rewrite built exactly (a crop's one-hot kernel, an interpolation's weights)
are not learned layers: the training engine keeps them constant and SparseComp leaves them alone."""

from __future__ import annotations

import numpy as np
from compress_helpers import context
from onnx import TensorProto, helper, numpy_helper

from transpiler.data import Dataset
from transpiler.model import OnnxModel

from passes.compress_size import model_size
from passes.normalize import Normalize
from passes.normalize_util import FIXED_WEIGHTS
from passes.sparsify import Sparsify, SparsifyOptions
from passes.train import build_net


def _cropped_cnn() -> OnnxModel:
    """x [1,2,8,8] -> Conv 3x3 pad 1 -> Relu -> x[:, :, 1:-1, 1:-1] -> Flatten -> Gemm 144 -> 5."""
    rng = np.random.default_rng(0)
    large = rng.random((5, 144)) < 0.25          # a trained layer's few large weights: prunable
    inits = {"w": rng.normal(0, 0.5, (4, 2, 3, 3)), "b": rng.normal(0, 0.1, 4),
             "fw": rng.normal(0, 0.2, (5, 144)) * np.where(large, 1.0, 0.02),
             "fb": np.zeros(5), "starts": np.array([1, 1]), "ends": np.array([-1, -1]), "axes": np.array([2, 3])}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Slice", ["r", "starts", "ends", "axes"], ["s"]),
             helper.make_node("Flatten", ["s"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
                              [numpy_helper.from_array(v.astype(np.int64 if k in ("starts", "ends", "axes")
                                                                else np.float32), k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    return Normalize().run(OnnxModel.from_proto(proto, "crop.onnx")).model


def test_a_crop_kernel_is_neither_trained_nor_pruned() -> None:
    """Even with any accuracy drop allowed, sparsify prunes the learned layers only."""
    model = _cropped_cnn()
    crops = [n for n in model.graph.nodes if n.op == "Conv" and model.annotations.get(n.inputs[1].name, FIXED_WEIGHTS)]
    assert len(crops) == 1
    kernel = crops[0].inputs[1].name
    before = np.array(crops[0].inputs[1].values)
    assert kernel not in build_net(model).param_names
    x = np.random.default_rng(1).normal(size=(300, 1, 2, 8, 8)).astype(np.float32).reshape(300, 2, 8, 8)
    net = build_net(model)
    labels = net.forward({"x": x}, [net.logits])[net.logits].argmax(axis=1)
    data = Dataset.from_arrays({"x": x}, labels)
    result = Sparsify(SparsifyOptions(budget=model_size(model).total * 75 // 100, max_drop=100.0, epochs=2,
                                      final_epochs=2), context(data)).run(model)
    assert result.changed and kernel not in {layer["node"] for layer in result.stats["layers"]
                                             if layer["density"] < 1.0}
    after = next(n for n in result.model.graph.nodes if n.op == "Conv" and n.inputs[1].name == kernel)
    np.testing.assert_array_equal(np.asarray(after.inputs[1].values), before)
