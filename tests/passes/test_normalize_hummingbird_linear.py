"""hummingbird-ml's linear classifiers through `normalize`: the label ``Gather(classes, ArgMax(z))`` and the
binary ``Gather(classes, Cast(Squeeze(Greater(z, 0))))`` go (`strip-classifier-tail`), the one-vs-rest
``Sigmoid(z) / ReduceSum(Sigmoid(z))`` with its axes in a Constant node becomes a final Sigmoid
(`sigmoid-l1`). The graphs are written as hummingbird writes them, so hummingbird is not needed."""

from __future__ import annotations

import numpy as np
import onnx

from normalize_helpers import load, ops, ort_run, parse, rand, run_pass

from passes.check_supported import check_normal_form
from passes.classifier_tail import ANNOTATION, TARGET
from passes.normalize import Normalize
from passes.sigmoid_l1 import SigmoidL1

MULTI = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 4] input_0) => (int64[N] variable, float[N, 3] probabilities) {
    z = Gemm (input_0, w, b)
    index = ArgMax <axis = 1, keepdims = 0, select_last_index = 0> (z)
    variable = Gather <axis = 0> (classes, index)
    s = Sigmoid (z)
    axes = Constant <value = int64[1] {1}> ()
    total = ReduceSum <keepdims = 1> (s, axes)
    probabilities = Div (s, total)
}
"""

BINARY = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 4] input_0) => (int64[N] variable, float[N, 2] probabilities) {
    z = Gemm (input_0, w, b)
    zero = Constant <value = float {0}> ()
    above = Greater (z, zero)
    flat = Squeeze (above)
    index = Cast <to = 7> (flat)
    variable = Gather <axis = 0> (classes, index)
    s = Sigmoid (z)
    one = Constant <value = float {1}> ()
    rest = Sub (one, s)
    probabilities = Concat <axis = 1> (rest, s)
}
"""


def _multi() -> onnx.ModelProto:
    return parse(MULTI, w=rand(4, 3), b=rand(3, seed=1), classes=np.array([3, 5, 7], np.int64))


def _label_follows_scores(proto: onnx.ModelProto, after: onnx.ModelProto, labels: list[int]) -> None:
    for seed in range(2, 12):
        feeds = {"input_0": rand(1, 4, seed=seed) * 2}
        got = labels[int(np.argmax(ort_run(after, feeds)["probabilities"]))]
        assert got == int(np.asarray(ort_run(proto, feeds)["variable"]).reshape(-1)[0])


def test_sigmoid_l1_reads_axes_from_a_constant_node() -> None:
    result = run_pass(SigmoidL1, load(_multi()))
    assert result.changed
    assert not {"ReduceSum", "Div"} & set(ops(result.model)) and "Sigmoid" in ops(result.model)


def test_multi_class_label_gather_and_sigmoid_sum_normalize() -> None:
    proto = _multi()
    model = run_pass(Normalize, load(proto)).model
    assert check_normal_form(model) == []
    assert ops(model) == ["Gemm", "Sigmoid"]
    assert model.annotations.get(TARGET, ANNOTATION) == {
        "kind": "argmax-labels", "labels": [3, 5, 7], "label_output": "variable",
        "scores_output": "probabilities", "zipmap": False}
    after = model.to_proto()
    assert [o.name for o in after.graph.output] == ["probabilities"]
    _label_follows_scores(proto, after, [3, 5, 7])


def test_binary_threshold_label_goes_and_scores_become_two_logits() -> None:
    proto = parse(BINARY, w=rand(4, 1), b=rand(1, seed=1), classes=np.array([4, 9], np.int64))
    model = run_pass(Normalize, load(proto)).model
    assert check_normal_form(model) == []
    assert ops(model) == ["Gemm", "Sigmoid"]
    assert model.annotations.get(TARGET, ANNOTATION)["labels"] == [4, 9]
    after = model.to_proto()
    _label_follows_scores(proto, after, [4, 9])
    for seed in range(3, 8):      # 1 - s(z), s(z) = s(-z), s(z)
        feeds = {"input_0": rand(1, 4, seed=seed)}
        np.testing.assert_allclose(ort_run(after, feeds)["probabilities"], ort_run(proto, feeds)["probabilities"],
                                   rtol=1e-5, atol=1e-6)
