"""`tree-votes`: AdaBoost's SAMME votes of single trees become one tree ensemble and a Softmax."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from normalize_helpers import assert_same_outputs, load, ops, rand, run_pass

from passes.name_nodes import NameNodes
from passes.tree_ensembles import TreeEnsembles
from passes.tree_votes import TreeVotes


def _adaboost(classes: int, depth: int) -> onnx.ModelProto:
    """skl2onnx's AdaBoostClassifier (SAMME, 8 trees of ``depth``) on 4 features, without ZipMap."""
    pytest.importorskip("sklearn")
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.ensemble import AdaBoostClassifier
    from sklearn.tree import DecisionTreeClassifier

    x = rand(120, 4, seed=1)
    y = np.digitize(x @ rand(4, seed=2) + rand(120, seed=3), np.linspace(-1.5, 1.5, classes - 1))
    booster = AdaBoostClassifier(DecisionTreeClassifier(max_depth=depth), n_estimators=8, random_state=0)
    booster.fit(x, y)
    return to_onnx(booster, initial_types=[("input", FloatTensorType([None, 4]))],
                   target_opset={"": 13, "ai.onnx.ml": 1}, options={id(booster): {"zipmap": False}})


def _votes(proto: onnx.ModelProto) -> object:
    """tree-votes after name-nodes and tree-ensembles (the order normalize runs them in)."""
    model = run_pass(TreeEnsembles, run_pass(NameNodes, load(proto)).model).model
    return run_pass(TreeVotes, model)


@pytest.mark.parametrize(("classes", "depth"), [(3, 1), (2, 1), (4, 3)])
def test_samme_votes_become_one_ensemble_and_a_softmax(classes: int, depth: int) -> None:
    proto = _adaboost(classes, depth)
    assert [n.op_type for n in proto.graph.node].count("TreeEnsembleClassifier") == 8
    result = _votes(proto)
    assert result.changed
    assert ops(result.model)[:2] == ["TreeEnsembleRegressor", "Softmax"]
    assert "Where" not in ops(result.model) and ops(result.model).count("TreeEnsembleRegressor") == 1
    trees = result.model.graph.nodes[0]
    assert len(set(trees.attrs["nodes_treeids"])) == 8
    for seed in range(8):
        assert_same_outputs(proto, result.model.to_proto(), {"input": rand(1, 4, seed=seed) * 1.5}, atol=1e-5,
                            names=["probabilities", "label"])


def _edited(proto: onnx.ModelProto, edit: str) -> onnx.ModelProto:
    """``proto`` with its probabilities left unnormalized ("head": the Exp's output) or votes that do
    not sum to 0 ("votes": a 0 for the classes not predicted)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    if edit == "head":
        div = next(n for n in copy.graph.node if n.output[0] == "probabilities")
        div.op_type = "Identity"
        del div.input[1:]
    else:
        weight = next(t for t in copy.graph.initializer if t.name == "symmetrix_weight")
        weight.CopyFrom(onnx.numpy_helper.from_array(np.zeros(1, np.float32), "symmetrix_weight"))
    return copy


@pytest.mark.parametrize("edit", ["head", "votes"])
def test_other_vote_graphs_are_left(edit: str) -> None:
    assert not _votes(_edited(_adaboost(3, 1), edit)).changed
