"""`quadratic-scores`: a softmax of separable quadratic scores of the input becomes Gemms + Softmax."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from normalize_helpers import assert_same_outputs, load, ops, rand, run_pass

from passes.quadratic_scores import QuadraticScores


def _model(inner: str) -> object:
    """``p = softmax(J)`` as ``Exp(J - ReduceLogSumExp(J))``, ``J = Gemm(x) + Gemm(f(x - c))`` with f
    a square (``inner`` "Mul") or tanh ("Tanh")."""
    n = helper.make_node
    f = [n("Mul", ["d", "d"], ["f"])] if inner == "Mul" else [n("Tanh", ["d"], ["f"])]
    nodes = [n("Sub", ["x", "c"], ["d"]), *f, n("Gemm", ["f", "W2"], ["g2"], transB=1),
             n("Gemm", ["x", "W1", "b"], ["g1"], transB=1), n("Add", ["g1", "g2"], ["J"]),
             n("ReduceLogSumExp", ["J"], ["r"], axes=[1], keepdims=1), n("Sub", ["J", "r"], ["l"]),
             n("Exp", ["l"], ["p"])]
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in
             {"c": rand(4, seed=1), "W1": rand(3, 4, seed=2), "b": rand(3, seed=3), "W2": rand(3, 4, seed=4)}.items()]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_a_quadratic_log_softmax_becomes_two_gemms() -> None:
    proto = _model("Mul")
    result = run_pass(QuadraticScores, load(proto))
    assert result.changed and ops(result.model) == ["Gemm", "Mul", "Gemm", "Add", "Softmax"]
    for seed in range(4):
        assert_same_outputs(proto, result.model.to_proto(), {"x": rand(1, 4, seed=seed) * 3}, atol=1e-4)


def test_other_scores_are_left() -> None:
    proto = _model("Tanh")
    assert not run_pass(QuadraticScores, load(proto)).changed
