"""`binary-scores`: ``Concat(1 - s(z), s(z))`` of a one-logit Gemm becomes Sigmoid(two-row Gemm)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnx
import pytest

from normalize_helpers import assert_same_outputs, check_pass, load, ops, ort_run, parse, rand, run_pass, static

from passes.binary_scores import BinaryScores
from passes.check_supported import check_normal_form
from passes.classifier_tail import ANNOTATION, TARGET
from passes.normalize import Normalize

TAIL = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 5] x) => (float[1, 2] p{extra}) {{
    z = Gemm <transB = 1> (x, w, b)
    s = Sigmoid(z)
    n = Sub(one, s)
    p = Concat <axis = 1> (n, s){more}
}}
"""


def _tail(extra: str = "", more: str = "") -> onnx.ModelProto:
    return parse(TAIL.format(extra=extra, more=more), w=rand(1, 5), b=rand(1, seed=1),
                 one=np.ones(1, np.float32))


def test_tail_becomes_sigmoid_of_two_rows() -> None:
    proto = _tail()
    result = check_pass(BinaryScores, proto, {"x": rand(1, 5, seed=2)})
    assert result.changed and ops(result.model) == ["Gemm", "Sigmoid"]
    gemm = result.model.graph.nodes[0]
    weight, bias = np.asarray(gemm.inputs[1].values), np.asarray(gemm.inputs[2].values)
    assert weight.shape == (2, 5)
    np.testing.assert_array_equal(weight[0], -weight[1])
    np.testing.assert_array_equal(bias[0], -bias[1])
    after = result.model.to_proto()
    for seed in range(3, 13):  # the argmax of p is the class z > 0, as the original's
        feeds = {"x": rand(1, 5, seed=seed)}
        assert_same_outputs(proto, after, feeds)
        z = float(feeds["x"][0] @ weight[1] + bias[1])
        assert int(np.argmax(ort_run(after, feeds)["p"])) == int(z > 0)


def test_sigmoid_read_elsewhere_is_left_alone() -> None:
    proto = _tail(extra=", float[1, 1] q", more="\n    q = Relu(s)")
    assert not run_pass(BinaryScores, static(proto)).changed


def _skl(clf: Any) -> tuple[onnx.ModelProto, np.ndarray]:
    pytest.importorskip("sklearn")
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(x, y)
        proto = to_onnx(clf, initial_types=[("input", FloatTensorType([None, 6]))],
                        options={id(clf): {"zipmap": False}}, target_opset={"": 13, "ai.onnx.ml": 1})
    return proto, x[:6]


@pytest.mark.parametrize("kind", ["mlp", "sgd"])
def test_skl2onnx_binary_classifiers_normalize(kind: str) -> None:
    from sklearn.linear_model import SGDClassifier
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier((5,), max_iter=300, random_state=0) if kind == "mlp" else \
        SGDClassifier(loss="log_loss", random_state=0)
    proto, x = _skl(clf)
    model = run_pass(Normalize, load(proto)).model
    assert ops(model) == (["Gemm", "Relu", "Gemm", "Sigmoid"] if kind == "mlp" else ["Gemm", "Sigmoid"])
    assert check_normal_form(model) == []
    after = model.to_proto()
    tail = model.annotations.get(TARGET, ANNOTATION)
    for row in x:
        feeds = {"input": row[None]}
        assert_same_outputs(proto, after, feeds, names=["probabilities"])
        p = ort_run(after, feeds)["probabilities"]
        assert tail["labels"][int(np.argmax(p))] == int(ort_run(proto, feeds)["label"][0])
