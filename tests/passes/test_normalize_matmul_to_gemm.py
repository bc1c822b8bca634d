"""`matmul-to-gemm`: MatMul(+Add) and odd Gemms become Gemm(x, B[N,K], C[N]) {transB=1}."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
import pytest

from normalize_helpers import assert_same_outputs, check_pass, ops, parse, rand, run_pass, static, torch_export

from passes.matmul_to_gemm import MatMulToGemm
from passes.normalize_util import ORIGIN, const_value


def _canonical(node: gs.Node) -> None:
    assert node.op == "Gemm"
    assert node.attrs == {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 1}
    n, k = const_value(node.inputs[1]).shape
    if len(node.inputs) > 2:
        assert const_value(node.inputs[2]).shape == (n,)


@pytest.mark.parametrize("bias_shape, bias_first", [((3,), False), ((1, 3), True), ((), False)])
def test_matmul_add_becomes_one_gemm(bias_shape: tuple[int, ...], bias_first: bool) -> None:
    add = "y = Add(b, m)" if bias_first else "y = Add(m, b)"
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[N, 4] x) => (float[N, 3] y) {{
        m = MatMul(x, w)
        {add}
    }}
    """, w=rand(4, 3), b=rand(*bias_shape, seed=1) if bias_shape else np.array(0.5, np.float32))
    result = check_pass(MatMulToGemm, proto, {"x": rand(1, 4, seed=2)})
    assert ops(result.model) == ["Gemm"]
    gemm = result.model.graph.nodes[0]
    _canonical(gemm)
    assert gemm.outputs[0].name == "y"
    assert result.model.annotations.get(gemm.name, ORIGIN) == ["MatMul_0", "Add_1"]


def test_matmul_without_add_and_shared_output() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 3] y, float[1, 3] z) {
        m = MatMul(x, w)
        y = Add(m, b)
        z = Relu(m)
    }
    """, w=rand(4, 3), b=rand(3, seed=1))
    result = check_pass(MatMulToGemm, proto, {"x": rand(1, 4, seed=2)})
    assert ops(result.model) == ["Gemm", "Add", "Relu"]
    _canonical(result.model.graph.nodes[0])


@pytest.mark.parametrize("attrs, c_shape", [
    ("alpha = 0.5, beta = 2.0", (1, 3)),
    ("transB = 0", (3,)),
    ("alpha = 2.0, transB = 0", None),
    ("transB = 1", (1,)),
])
def test_gemm_canonicalized(attrs: str, c_shape: tuple[int, ...] | None) -> None:
    trans_b = "transB = 1" in attrs
    weight = rand(3, 4) if trans_b else rand(4, 3)
    inputs = "x, w, c" if c_shape else "x, w"
    extra = {"c": rand(*c_shape, seed=1)} if c_shape else {}
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 3] y) {{
        y = Gemm <{attrs}> ({inputs})
    }}
    """, w=weight, **extra)
    result = check_pass(MatMulToGemm, proto, {"x": rand(1, 4, seed=2)})
    _canonical(result.model.graph.nodes[0])


def test_gemm_then_bias_add_folds_and_canonical_gemm_is_unchanged() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 3] y) {
        m = Gemm <alpha = 1.0, beta = 1.0, transA = 0, transB = 1> (x, w, c)
        y = Add(m, d)
    }
    """, w=rand(3, 4), c=rand(3, seed=1), d=rand(3, seed=5))
    result = check_pass(MatMulToGemm, proto, {"x": rand(1, 4, seed=2)})
    assert ops(result.model) == ["Gemm"] and result.stats["bias-adds-folded"] == 1
    again = run_pass(MatMulToGemm, result.model)
    assert not again.changed


def test_unconvertible_ones_are_left_for_check_supported() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 4] x, float[4, 3] v, float[4, 2] t) => (float[1, 2, 3] y, float[2, 3] z, float[2, 3] u) {
        y = MatMul(x, w)
        z = Gemm <transA = 1> (t, w)
        s = Flatten <axis = 2> (x)
        u = Gemm <transB = 0> (s, v)
    }
    """, w=rand(4, 3))
    result = run_pass(MatMulToGemm, static(proto))
    assert ops(result.model) == ["MatMul", "Gemm", "Flatten", "Gemm"] and not result.changed


def test_gemm_of_a_transposed_column_reads_the_row() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[4, 1] t) => (float[1, 3] z) {
        z = Gemm <transA = 1, beta = 0.5> (t, w, c)
    }
    """, w=rand(4, 3), c=rand(1, 3, seed=1))
    result = check_pass(MatMulToGemm, proto, {"t": rand(4, 1, seed=2)})
    reshape, gemm = result.model.graph.nodes
    assert reshape.op == "Reshape" and [int(d) for d in const_value(reshape.inputs[1])] == [1, 4]
    assert gemm.inputs[0] is reshape.outputs[0]
    _canonical(gemm)
    assert int(gemm.attrs["transA"]) == 0


def test_torch_linear_and_matmul_export() -> None:
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(5, 3))
            self.b = torch.nn.Parameter(torch.randn(3))
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            return self.fc(torch.relu(x @ self.w + self.b))

    proto = torch_export(Net(), torch.randn(1, 5))
    assert "MatMul" in ops(proto)
    result = run_pass(MatMulToGemm, static(proto))
    assert ops(result.model) == ["Gemm", "Relu", "Gemm"]
    for node in (result.model.graph.nodes[0], result.model.graph.nodes[2]):
        _canonical(node)
    assert_same_outputs(proto, result.model.to_proto(), {"input": rand(1, 5)})


def test_an_activation_as_c_becomes_an_add_after_the_gemm() -> None:
    """TFLite's LSTM cell through tf2onnx: ``Gemm(x, W, Squeeze(h @ U))``, the recurrent term as C."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 8] x, float[1, 12] h) => (float[1, 48] y) {
        u = MatMul(h, U)
        s = Reshape(u, vector)
        z = Gemm(x, W, s)
        y = Add(z, b)
    }
    """, U=rand(12, 48, seed=1), W=rand(8, 48, seed=2), vector=np.array([48], np.int64), b=rand(48, seed=3))
    result = check_pass(MatMulToGemm, proto, {"x": rand(1, 8, seed=4), "h": rand(1, 12, seed=5)})
    assert sorted(ops(result.model)) == ["Add", "Add", "Gemm", "Gemm", "Reshape"], ops(result.model)
    assert result.stats["activation-bias-split"] == 1
    for gemm in (n for n in result.model.graph.nodes if n.op == "Gemm"):
        assert gemm.attrs["transB"] == 1 and all(t.name in ("x", "h") or const_value(t) is not None
                                                  for t in gemm.inputs)     # canonical, constant B and C
