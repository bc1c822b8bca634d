"""`name-nodes` (unique names, origin annotations) and `upgrade-opset` (old opsets -> 13)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from normalize_helpers import assert_same_outputs, load, ops, rand, run_pass

from passes.name_nodes import NameNodes
from passes.normalize import Normalize
from passes.normalize_util import ORIGIN, opset_of
from passes.upgrade_opset import UpgradeOpset
from transpiler.errors import UnsupportedError


def _model(nodes: list[onnx.NodeProto], opset: int, out_shape: list[int] | None = None) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT,
                                                             out_shape or ["N", 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    return model


def test_anonymous_and_duplicate_names_become_unique_with_origins() -> None:
    proto = _model([helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["b"], name="r"),
                    helper.make_node("Neg", ["b"], ["c"], name="r"), helper.make_node("Relu", ["c"], ["y"])], 13)
    result = run_pass(NameNodes, load(proto))
    names = [n.name for n in result.model.graph.nodes]
    assert names == ["Relu_0", "r", "r_1", "Relu_1"]
    origins = [result.model.annotations.get(n, ORIGIN) for n in names]
    assert origins == [["Relu_0"], ["r"], ["r"], ["Relu_1"]]
    assert result.stats["generated"] == 2 and result.stats["renamed"] == 1
    again = run_pass(NameNodes, result.model)
    assert not again.changed


def test_origins_of_removed_nodes_are_pruned() -> None:
    proto = _model([helper.make_node("Relu", ["x"], ["a"], name="keep"),
                    helper.make_node("Identity", ["a"], ["y"], name="gone")], 13)
    model = run_pass(NameNodes, load(proto)).model
    model.annotations.set("gone", ORIGIN, ["gone"])
    model.graph.nodes.pop()
    model.graph.outputs = [model.graph.nodes[0].outputs[0]]
    result = run_pass(NameNodes, model)
    assert result.model.annotations.targets(ORIGIN) == ["keep"] and result.stats["pruned-origins"] == 1


def test_opset_6_clip_attributes_become_inputs() -> None:
    proto = _model([helper.make_node("Clip", ["x"], ["y"], name="relu6", min=0.0, max=6.0)], 6)
    result = run_pass(UpgradeOpset, load(proto))
    assert opset_of(result.model) == 13 and result.stats == {"opset": 13, "from-opset": 6}
    clip = [n for n in result.model.graph.nodes if n.op == "Clip"][0]
    assert clip.name == "relu6" and len(clip.inputs) == 3 and not clip.attrs
    x = (rand(1, 4) * 10).astype(np.float32)
    assert_same_outputs(proto, result.model.to_proto(), {"x": x})


def test_opset_13_and_newer_are_kept() -> None:
    proto = _model([helper.make_node("Relu", ["x"], ["y"])], 17)
    assert not run_pass(UpgradeOpset, load(proto)).changed


def test_whole_normalize_on_an_opset_9_model() -> None:
    nodes = [helper.make_node("Clip", ["x"], ["c"], min=-1.0, max=1.0),
             helper.make_node("Dropout", ["c"], ["d"], ratio=0.3),
             helper.make_node("Flatten", ["d"], ["y"])]
    proto = _model(nodes, 9)
    result = run_pass(Normalize, load(proto))
    assert ops(result.model) == ["Clip"]
    assert_same_outputs(proto, result.model.to_proto(), {"x": (rand(1, 4) * 3).astype(np.float32)})


def test_unconvertible_old_model_is_rejected_with_a_hint() -> None:
    proto = _model([helper.make_node("Relu", ["x"], ["y"])], 9)
    proto.graph.node[0].op_type = "NotAnOnnxOp"  # no schema: the converter cannot move it
    with pytest.raises(UnsupportedError) as info:
        run_pass(UpgradeOpset, load(proto))
    assert "opset 9" in info.value.message and "opset 13 or newer" in info.value.render()


def test_ir3_opset8_model_with_initializers_as_inputs() -> None:
    # the ONNX model zoo's MNIST (opset 8, IR 3): weights listed as graph inputs, Conv auto_pad, bias Add
    rng = np.random.default_rng(0)
    inits = [onnx.numpy_helper.from_array(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), "W"),
             onnx.numpy_helper.from_array(rng.standard_normal((2, 1, 1)).astype(np.float32), "B"),
             onnx.numpy_helper.from_array(np.array([1, 32], np.int64), "shape"),
             onnx.numpy_helper.from_array(rng.standard_normal((32, 3)).astype(np.float32), "M")]
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], auto_pad="SAME_UPPER", kernel_shape=[3, 3]),
             helper.make_node("Add", ["c", "B"], ["a"]), helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Reshape", ["p", "shape"], ["f"]), helper.make_node("MatMul", ["f", "M"], ["y"])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])]
    inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    graph = helper.make_graph(nodes, "zoo", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                              initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)], ir_version=3)
    onnx.checker.check_model(proto)
    result = run_pass(Normalize, load(proto))
    assert opset_of(result.model) == 13 and ops(result.model) == ["Conv", "Relu", "MaxPool", "Reshape", "Gemm"]
    after = result.model.to_proto()
    onnx.checker.check_model(after)
    assert after.ir_version >= 4
    assert_same_outputs(proto, after, {"x": rand(1, 1, 8, 8)})
