"""`rows-elementwise`: element-wise ops between a flatten to rows and the next Gemm run on the unflattened tensor
(onnx-simplifier's batch-1 form of a channels-last ``Linear, GELU, Linear``)."""

from __future__ import annotations

import numpy as np

import onnx

from normalize_helpers import assert_same_outputs, check_pass, load, ops, parse, rand, run_pass, static

from passes.check_supported import check_normal_form
from passes.gemm_rows import GemmRows
from passes.normalize import Normalize
from passes.rows_elementwise import RowsElementwise

MLP = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[1, 4, 4, 3] x) => (float[1, 4, 4, 3] y) {
    rows = Reshape (x, flat)
    a = Gemm <transB = 1> (rows, w1, b1)
    d = Div (a, root2)
    e = Erf (d)
    one_plus = Add (e, one)
    m = Mul (a, one_plus)
    half_m = Mul (m, half)
    scaled = Mul (half_m, per_column)
    b = Gemm <transB = 1> (scaled, w2, b2)
    y = Reshape (b, back)
}
"""


def _mlp():
    return parse(MLP, flat=np.array([16, 3], np.int64), back=np.array([1, 4, 4, 3], np.int64), w1=rand(5, 3),
                 b1=rand(5, seed=1), w2=rand(3, 5, seed=2), b2=rand(3, seed=3), root2=np.array(1.4142135, np.float32),
                 one=np.array(1.0, np.float32), half=np.array(0.5, np.float32),
                 per_column=np.linspace(0.5, 1.5, 5).astype(np.float32))


def _after_gemm_rows(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``proto`` once `gemm-rows` made its first Gemm a MatMul on ``x`` and a flatten of its output."""
    result = run_pass(GemmRows, static(proto))
    assert result.changed
    return result.model.to_proto()


def test_gelu_between_row_gemms_moves_before_the_flatten() -> None:
    result = check_pass(RowsElementwise, _after_gemm_rows(_mlp()), {"x": rand(1, 4, 4, 3, seed=4)})
    assert result.changed
    nodes = result.model.graph.nodes
    reshapes = [n for n in nodes if n.op == "Reshape"]
    # the GELU reads the first Gemm's output through no flatten; the second Gemm reads a new flatten
    assert [r.outputs[0].name for r in reshapes if r.outputs[0].name != "y"] == ["scaled"]
    erf = next(n for n in nodes if n.op == "Erf")
    assert erf.outputs[0].shape is not None


def test_channels_last_mlp_in_rows_normalizes() -> None:
    proto = _mlp()
    model = run_pass(Normalize, load(proto)).model
    assert check_normal_form(model) == []
    assert "Gemm" not in ops(model) or all(len(n.inputs[0].shape) == 2 and n.inputs[0].shape[0] == 1
                                           for n in model.graph.nodes if n.op == "Gemm")
    assert_same_outputs(proto, model.to_proto(), {"x": rand(1, 4, 4, 3, seed=5)})


def test_a_per_row_constant_stops_the_region() -> None:
    # a [16, 5] constant does not broadcast alike on the rows and on [1, 4, 4, 5]
    proto = parse(MLP.replace("Mul (half_m, per_column)", "Mul (half_m, per_row)"),
                  flat=np.array([16, 3], np.int64), back=np.array([1, 4, 4, 3], np.int64), w1=rand(5, 3),
                  b1=rand(5, seed=1), w2=rand(3, 5, seed=2), b2=rand(3, seed=3),
                  root2=np.array(1.4142135, np.float32), one=np.array(1.0, np.float32),
                  half=np.array(0.5, np.float32), per_row=rand(16, 5, seed=6))
    result = check_pass(RowsElementwise, _after_gemm_rows(proto), {"x": rand(1, 4, 4, 3, seed=4)})
    assert result.changed     # the GELU moves, the Mul by the per-row constant reads a flatten
    mul = next(n for n in result.model.graph.nodes if n.op == "Mul" and n.outputs[0].name == "scaled")
    assert tuple(mul.inputs[0].shape) == (16, 5)
