"""`hummingbird-trees`: hummingbird-ml's GEMM-form trees become one TreeEnsembleRegressor; its tree walks are
rejected by name. The graphs are written here as hummingbird writes them (Gemm, LessOrEqual, MatMul, Equal,
MatMul, ReduceSum, Transpose, with Constant shapes), so hummingbird is not needed."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from normalize_helpers import load, ops, ort_run, run_pass

from passes.hummingbird_trees import HummingbirdTrees
from passes.tree_ensembles import is_canonical
from transpiler.errors import UnsupportedError

FEATURES = 4
# Two trees padded to I=3 branches and L=4 leaves, 2 outputs. Tree 0: x0 <= 0.5 ? (x2 <= -1 ? a : b) : c.
# Tree 1: x1 <= 0 ? d : e, its third branch row padding (all zero). Padding leaves (a zero row of C): tree 1's
# third is always reached (D = 0) and adds its values to every sample, the fourth leaves of both never (D = 9).
A = np.zeros((6, FEATURES), np.float32)
A[0, 0] = A[1, 2] = A[3, 1] = 1.0
B = np.array([[0.5], [-1.0], [0.0], [0.0], [0.0], [0.0]], np.float32)
C = np.zeros((2, 4, 3), np.float32)
C[0, 0] = [1, 1, 0]     # a: x0 <= 0.5 and x2 <= -1
C[0, 1] = [1, -1, 0]    # b: x0 <= 0.5 and not x2 <= -1
C[0, 2] = [-1, 0, 0]    # c: not x0 <= 0.5
C[1, 0] = [1, 0, 0]     # d
C[1, 1] = [-1, 0, 0]    # e
D = np.array([[2], [1], [0], [9], [1], [0], [0], [9]], np.float32)
E = np.zeros((2, 2, 4), np.float32)
E[0] = [[1.0, 2.0, 3.0, 5.0], [-1.0, 0.5, 0.25, 7.0]]
E[1] = [[10.0, 20.0, 0.125, 0.0], [0.0, -4.0, 100.0, 0.0]]


def _gemm_trees(d: np.ndarray = D, comparison: str = "LessOrEqual") -> onnx.ModelProto:
    """The GEMM form of the module's two trees over ``x [N, 4]`` -> ``y [N, 2]``."""
    def shape(name: str, values: list[int]) -> onnx.NodeProto:
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(values, np.int64)))

    nodes = [
        helper.make_node("Gemm", ["A", "x"], ["s"], alpha=1.0, beta=0.0, transB=1),
        helper.make_node(comparison, ["s", "B"], ["c"]),
        shape("shape0", [2, 3, -1]), helper.make_node("Reshape", ["c", "shape0"], ["c3"]),
        helper.make_node("Cast", ["c3"], ["cf"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["C", "cf"], ["p"]),
        shape("shape1", [8, -1]), helper.make_node("Reshape", ["p", "shape1"], ["p2"]),
        helper.make_node("Equal", ["D", "p2"], ["h"]),
        shape("shape2", [2, 4, -1]), helper.make_node("Reshape", ["h", "shape2"], ["h3"]),
        helper.make_node("Cast", ["h3"], ["hf"], to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["E", "hf"], ["v"]),
        shape("shape3", [2, 2, -1]), helper.make_node("Reshape", ["v", "shape3"], ["v3"]),
        helper.make_node("Constant", [], ["axes"], value=numpy_helper.from_array(np.array([0], np.int64))),
        helper.make_node("ReduceSum", ["v3", "axes"], ["r"], keepdims=0),
        helper.make_node("Transpose", ["r"], ["y"], perm=[1, 0]),
    ]
    graph = helper.make_graph(nodes, "hummingbird", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
                              [numpy_helper.from_array(v, n) for n, v in (("A", A), ("B", B), ("C", C), ("D", d),
                                                                          ("E", E))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _rows() -> np.ndarray:
    """Random rows, and rows exactly at the thresholds (where LessOrEqual and Less differ)."""
    rng = np.random.default_rng(0)
    rows = rng.normal(0.0, 1.5, (200, FEATURES)).astype(np.float32)
    rows[:20, 0], rows[20:40, 2], rows[40:60, 1] = 0.5, -1.0, 0.0
    return rows


@pytest.mark.parametrize("comparison", ["LessOrEqual", "Less"])
def test_gemm_trees_become_one_tree_ensemble(comparison: str) -> None:
    proto = _gemm_trees(comparison=comparison)
    result = run_pass(HummingbirdTrees, load(proto))
    assert result.changed and result.stats == {"ensembles": 1, "trees": 2, "walks": 0}
    assert ops(result.model) == ["TreeEnsembleRegressor"]
    assert is_canonical(result.model.graph.nodes[0])
    after = result.model.to_proto()
    onnx.checker.check_model(after)
    x = _rows()
    want, got = ort_run(proto, {"x": x})["y"], ort_run(after, {"x": x})["y"]
    assert np.array_equal(got, want)      # the same sums of the same float32 leaf values
    # leaf a (x0 <= 0.5, x2 <= -1) + leaf d (x1 <= 0) + the always-reached padding leaf
    assert np.array_equal(ort_run(after, {"x": np.array([[0.4, -1.0, -2.0, 9.0]], np.float32)})["y"],
                          [[1.0 + 10.0 + 0.125, -1.0 + 0.0 + 100.0]])
    modes = result.model.graph.nodes[0].attrs["nodes_modes"]
    assert set(modes) == {"LEAF", "BRANCH_LEQ" if comparison == "LessOrEqual" else "BRANCH_LT"}


def test_padding_leaves_reached_always_are_the_base() -> None:
    result = run_pass(HummingbirdTrees, load(_gemm_trees()))
    node = result.model.graph.nodes[0]
    assert list(node.attrs["base_values"]) == [0.125, 100.0]      # tree 1's padding leaf with D = 0
    assert len([m for m in node.attrs["nodes_modes"] if m == "LEAF"]) == 5


def test_a_leaf_whose_count_is_not_its_path_is_left() -> None:
    # D = 1 for leaf a (two +1 on its path): it would be reached with either branch true, not a tree
    d = D.copy()
    d[0] = 1.0
    result = run_pass(HummingbirdTrees, load(_gemm_trees(d)))
    assert not result.changed and "TreeEnsembleRegressor" not in ops(result.model)


def test_tree_walk_tables_are_rejected_by_name() -> None:
    # tree_trav: Gather(thresholds, node index) ... one level per step; the tables are hummingbird's names
    nodes = [helper.make_node("Gather", ["_operators.0.lefts", "i"], ["l"], axis=0),
             helper.make_node("Cast", ["l"], ["y"], to=TensorProto.FLOAT)]
    graph = helper.make_graph(nodes, "walk", [helper.make_tensor_value_info("i", TensorProto.INT64, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
                              [numpy_helper.from_array(np.array([1, 2, -1], np.int64), "_operators.0.lefts")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedError) as raised:
        run_pass(HummingbirdTrees, load(proto))
    assert "tree_trav" in str(raised.value) and "'gemm'" in raised.value.hint
    assert raised.value.location.op == "Gather"


def _ensemble_outputs(trees: list, targets: int, x: np.ndarray) -> np.ndarray:
    """onnxruntime's TreeEnsembleRegressor of ``trees`` on the rows ``x``."""
    from passes.hummingbird_trees import Ensemble
    from passes.tree_ensembles import ML_DOMAIN, regressor_attrs

    ens = Ensemble(trees, targets, [], "NONE", "SUM", None)
    attrs = regressor_attrs(ens, [leaf for tree in trees for leaf in tree.leaves.values()], [0.0] * targets)
    node = helper.make_node("TreeEnsembleRegressor", ["x"], ["y"], domain=ML_DOMAIN, **attrs)
    graph = helper.make_graph([node], "trees",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, FEATURES])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(ML_DOMAIN, 1)])
    return ort_run(proto, {"x": x})["y"]


def test_tree_trav_tables_read_back_as_the_walk_goes() -> None:
    from passes.hummingbird_trees import _trav_trees

    # tree 0: x0 <= 0.5 ? (x1 <= -1 ? n3 : n4) : n2; tree 1: x2 <= 0 ? n1 : n2, nodes 3, 4 padding
    tables = {"lefts": np.array([1, 3, 2, 3, 4, 1, 1, 2, 3, 4]), "rights": np.array([2, 4, 2, 3, 4, 2, 1, 2, 3, 4]),
              "features": np.array([0, 1, 0, 0, 0, 2, 0, 0, 0, 0]),
              "thresholds": np.array([0.5, -1.0, 0, 0, 0, 0.0, 0, 0, 0, 0], np.float32),
              "values": np.arange(20, dtype=np.float32).reshape(10, 2) / 4, "nodes_offset": np.array([[0, 5]])}
    trees = _trav_trees(tables, "BRANCH_LEQ")
    assert trees is not None and [len(t.leaves) for t in trees] == [3, 2]
    x = _rows()
    index = np.repeat(tables["nodes_offset"], len(x), axis=0)          # hummingbird's walk, depth 2
    for _ in range(2):
        at = index
        go = x[np.arange(len(x))[:, None], tables["features"][at]] <= tables["thresholds"][at]
        index = np.where(go, tables["lefts"][at], tables["rights"][at]) + tables["nodes_offset"]
    want = tables["values"][index].reshape(len(x), -1)
    assert np.array_equal(_ensemble_outputs(trees, 4, x), want)


def test_perfect_tree_tables_read_back_as_the_walk_goes() -> None:
    from passes.hummingbird_trees import _perfect_trees

    rng = np.random.default_rng(3)
    tables = {"root_nodes": np.array([0, 3]), "root_biases": np.array([0.5, -0.25], np.float32),
              "nodes.0": np.array([1, 2, 2, 0]), "biases.0": np.array([-1.0, 0.0, 0.75, 0.1], np.float32),
              "leaf_nodes": rng.normal(size=(8, 3)).astype(np.float32)}
    trees = _perfect_trees(tables, "BRANCH_LEQ")
    assert trees is not None and [len(t.leaves) for t in trees] == [4, 4]
    x = _rows()
    rows = np.arange(len(x))[:, None]
    index = (x[:, tables["root_nodes"]] <= tables["root_biases"]).astype(np.int64) + np.array([0, 2])
    index = 2 * index + (x[rows, tables["nodes.0"][index]] <= tables["biases.0"][index])
    want = tables["leaf_nodes"][index].reshape(len(x), -1)
    assert np.array_equal(_ensemble_outputs(trees, 6, x), want)
