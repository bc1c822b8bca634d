"""`fold-constants`: Constant nodes, shape arithmetic and initializer inputs become initializers."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from normalize_helpers import assert_same_outputs, load, ops, parse, rand, run_pass, static, torch_export

from passes.fold_constants import FoldConstants
from passes.infer_shapes import InferShapes
from passes.normalize_util import const_value


def test_constant_node_forms_keep_their_onnx_dtypes() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2] x) => (float[1, 2] y) {
        a = Constant <value_floats = [1.5, -2.0]> ()
        b = Constant <value_float = 3.0> ()
        s = Constant <value_ints = [1, 2]> ()
        t = Add(x, a)
        u = Mul(t, b)
        y = Reshape(u, s)
    }
    """)
    result = run_pass(FoldConstants, load(proto))
    model = result.model
    assert ops(model) == ["Add", "Mul", "Reshape"]
    dtypes = {n.op: const_value(n.inputs[1]).dtype for n in model.graph.nodes}
    assert dtypes == {"Add": np.float32, "Mul": np.float32, "Reshape": np.int64}
    assert result.stats["constant-nodes"] == 3
    assert_same_outputs(proto, model.to_proto(), {"x": rand(1, 2)})


def test_constant_subgraph_becomes_one_initializer() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3] x) => (float[1, 2] y) {
        wt = Transpose(w)
        w2 = Mul(wt, two)
        y = MatMul(x, w2)
    }
    """, w=rand(2, 3), two=np.array(2.0, np.float32))
    model = run_pass(FoldConstants, load(proto)).model
    assert ops(model) == ["MatMul"]
    np.testing.assert_allclose(const_value(model.graph.nodes[0].inputs[1]), rand(2, 3).T * 2)
    assert_same_outputs(proto, model.to_proto(), {"x": rand(1, 3)})


def test_initializer_listed_as_input_is_not_an_input() -> None:
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 2], [1.0, 2.0, 3.0, 4.0])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2]),
                               helper.make_tensor_value_info("w", TensorProto.FLOAT, [2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    model = run_pass(FoldConstants, load(proto)).model
    after = model.to_proto()
    assert [i.name for i in after.graph.input] == ["x"]
    assert_same_outputs(proto, after, {"x": rand(1, 2)})


def test_graph_output_stays_computed_when_it_folds() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2] x) => (float[1, 2] y, float[2] z) {
        y = Relu(x)
        z = Add(c, c)
    }
    """, c=np.array([1.0, 2.0], np.float32))
    result = run_pass(FoldConstants, load(proto))
    after = result.model.to_proto()
    assert [o.name for o in after.graph.output] == ["y", "z"]
    assert_same_outputs(proto, after, {"x": rand(1, 2)})


def test_torch_view_batch_pattern_folds_once_shapes_are_static() -> None:
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3)
            self.fc = torch.nn.Linear(2 * 4 * 4, 3)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            y = torch.relu(self.conv(x))
            return self.fc(y.view(y.size(0), -1))

    proto = torch_export(Net(), torch.randn(1, 1, 6, 6), opset_version=13)
    assert {"Shape", "Gather", "Unsqueeze", "Concat"} <= set(ops(proto))
    model = static(proto)  # infer-shapes, fold-constants, infer-shapes
    assert ops(model) == ["Conv", "Relu", "Reshape", "Gemm"]
    reshape = model.graph.nodes[2]
    assert list(const_value(reshape.inputs[1])) == [1, -1]
    assert_same_outputs(proto, model.to_proto(), {"input": rand(1, 1, 6, 6)})
    onnx.checker.check_model(model.to_proto())


@pytest.mark.parametrize("source", ["Constant <value = double eps_0 = {1e-6}> ()", "Constant <value_float = 1e-6> ()"])
def test_cast_like_of_a_constant_folds_to_the_reference_type(source: str) -> None:
    """jax2onnx's RMSNorm (opset 23) casts its epsilon like the activation it is added to: the
    CastLike reads a computed tensor, so only its constant input decides its value."""
    proto = parse(f"""
    <ir_version: 10, opset_import: ["" : 23]>
    g (float[1, 8, 16] x) => (float[1, 8, 16] y) {{
        r = Relu(x)
        e = {source}
        c = CastLike(e, r)
        q = Mul(r, r)
        m = ReduceMean <keepdims = 1> (q, axes)
        a = Add(m, c)
        s = Sqrt(a)
        y = Div(r, s)
    }}
    """, axes=np.array([-1], np.int64))
    typed = run_pass(InferShapes, load(proto)).model         # what normalize runs first: r's type is known
    result = run_pass(FoldConstants, typed)
    assert "CastLike" not in ops(result.model) and result.changed
    add = next(n for n in result.model.graph.nodes if n.op == "Add")
    eps = const_value(add.inputs[1])
    assert eps is not None and eps.dtype == np.float32 and float(eps) == pytest.approx(1e-6)
    assert_same_outputs(proto, result.model.to_proto(), {"x": rand(1, 8, 16, seed=1)})
