"""`quadratic-scores`: a softmax of separable quadratic scores of the input becomes Gemms + Softmax."""

from __future__ import annotations

import numpy as np
import pytest
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


def _cross_model(head: str) -> object:
    """``J = Gemm(x) + ReduceSum((x W)^2)`` (cross terms: a quadratic form per class through a
    MatMul of the input), read by a softmax in the form ``head``: "Softmax" or "max" (Exp(J -
    ReduceMax(J)) / ReduceSum)."""
    n = helper.make_node
    nodes = [n("Gemm", ["x", "W1", "b"], ["g1"], transB=1)]
    for c in range(3):
        nodes += [n("MatMul", ["x", f"P{c}"], [f"m{c}"]), n("Mul", [f"m{c}", f"m{c}"], [f"s{c}"]),
                  n("ReduceSum", [f"s{c}", "one"], [f"r{c}"], keepdims=1)]
    nodes += [n("Concat", ["r0", "r1", "r2"], ["q"], axis=1), n("Add", ["g1", "q"], ["J"])]
    if head == "Softmax":
        nodes += [n("Softmax", ["J"], ["p"], axis=1)]
    else:
        nodes += [n("ReduceMax", ["J"], ["mx"], axes=[1], keepdims=1), n("Sub", ["J", "mx"], ["d"]),
                  n("Exp", ["d"], ["e"]), n("ReduceSum", ["e", "one"], ["t"], keepdims=1), n("Div", ["e", "t"], ["p"])]
    values = {"W1": rand(3, 4, seed=2), "b": rand(3, seed=3), "one": np.array([1], np.int64),
              **{f"P{c}": rand(4, 2, seed=10 + c) for c in range(3)}}
    inits = [numpy_helper.from_array(v if v.dtype == np.int64 else v.astype(np.float32), k) for k, v in values.items()]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("head", ["Softmax", "max"])
def test_scores_with_cross_terms_become_a_projection_its_square_and_gemms(head: str) -> None:
    proto = _cross_model(head)
    result = run_pass(QuadraticScores, load(proto))
    assert result.changed
    assert sorted(ops(result.model)) == sorted(["Gemm", "Gemm", "Mul", "Gemm", "Add", "Softmax"])
    for seed in range(4):
        assert_same_outputs(proto, result.model.to_proto(), {"x": rand(1, 4, seed=seed) * 3}, atol=1e-4)


def test_a_plain_softmax_classifier_is_left() -> None:
    n = helper.make_node
    graph = helper.make_graph([n("Gemm", ["x", "W", "b"], ["J"], transB=1), n("Softmax", ["J"], ["p"], axis=1)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 3])],
                              [numpy_helper.from_array(rand(3, 4).astype(np.float32), "W"),
                               numpy_helper.from_array(rand(3).astype(np.float32), "b")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    assert not run_pass(QuadraticScores, load(proto)).changed


def _step_model(binarizer: str, nonlinear: bool = False) -> object:
    """BernoulliNB's scores as skl2onnx writes them: ``J = b W + c``, ``b = Cast(Greater(x, t))``
    (``binarizer`` "Greater", per-feature thresholds) or ``ai.onnx.ml`` ``Binarizer(x) {threshold}``
    ("Binarizer"), read by ``Exp(J - ReduceLogSumExp(J))``; ``nonlinear``: ``J`` squared (no step
    form)."""
    n = helper.make_node
    if binarizer == "Greater":
        front = [n("Greater", ["x", "t"], ["g"]), n("Cast", ["g"], ["b"], to=TensorProto.FLOAT)]
    else:
        front = [n("Binarizer", ["x"], ["b"], domain="ai.onnx.ml", threshold=0.25)]
    nodes = [*front, n("MatMul", ["b", "W"], ["m"]), n("Add", ["m", "c"], ["s"])]
    nodes += [n("Mul", ["s", "s"], ["J"])] if nonlinear else [n("Identity", ["s"], ["J"])]
    nodes += [n("ReduceLogSumExp", ["J"], ["r"], axes=[1], keepdims=1), n("Sub", ["J", "r"], ["l"]),
              n("Exp", ["l"], ["p"])]
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in
             {"t": rand(4, seed=1), "W": rand(4, 3, seed=2), "c": rand(3, seed=3)}.items()]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 3])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("ai.onnx.ml", 1)])


@pytest.mark.parametrize("binarizer", ["Greater", "Binarizer"])
def test_linear_scores_of_a_binarized_input_become_stumps(binarizer: str) -> None:
    proto = _step_model(binarizer)
    result = run_pass(QuadraticScores, load(proto))
    assert result.changed and ops(result.model) == ["TreeEnsembleRegressor", "Softmax"]
    trees = result.model.graph.nodes[0]
    assert trees.attrs["nodes_modes"].count("BRANCH_LEQ") == 4
    for seed in range(8):
        assert_same_outputs(proto, result.model.to_proto(), {"x": rand(1, 4, seed=seed)}, atol=1e-5)
    t = np.full((1, 4), 0.25, np.float32) if binarizer == "Binarizer" else rand(4, seed=1).astype(np.float32)[None]
    assert_same_outputs(proto, result.model.to_proto(), {"x": t}, atol=1e-5)     # x == t: not above it


def test_nonlinear_scores_of_a_binarized_input_are_left() -> None:
    assert not run_pass(QuadraticScores, load(_step_model("Greater", nonlinear=True))).changed
