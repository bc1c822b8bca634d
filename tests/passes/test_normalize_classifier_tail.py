"""`strip-classifier-tail` on skl2onnx classifiers (zipmap on and off), through `normalize`."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from normalize_helpers import assert_same_outputs, load, ops, ort_run, run_pass, static

from passes.check_supported import check_normal_form
from passes.classifier_tail import ANNOTATION, TARGET, StripClassifierTail
from passes.normalize import Normalize

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")


def _mlp(zipmap: bool, classes: int = 3, string_labels: bool = False) -> tuple[onnx.ModelProto, np.ndarray]:
    from sklearn.neural_network import MLPClassifier
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 6)).astype(np.float32)
    y = np.argmax(x[:, :classes], axis=1)
    if string_labels:
        y = np.array(["cat", "dog", "emu"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=300, random_state=0).fit(x, y)
    proto = to_onnx(clf, initial_types=[("input", FloatTensorType([None, 6]))],
                    options={id(clf): {"zipmap": zipmap}}, target_opset={"": 15, "ai.onnx.ml": 1})
    return proto, x[:1]


@pytest.mark.parametrize("zipmap", [True, False])
def test_mlp_classifier_normalizes_to_gemm_relu_gemm_softmax(zipmap: bool) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto, x = _mlp(zipmap)
    scores = "output_probability" if zipmap else "probabilities"
    label = "output_label" if zipmap else "label"
    result = run_pass(Normalize, load(proto))
    model = result.model
    assert ops(model) == ["Gemm", "Relu", "Gemm", "Softmax"]
    assert check_normal_form(model) == []
    after = model.to_proto()
    assert [o.name for o in after.graph.output] == [scores]
    assert_same_outputs(proto, after, {"input": x}, names=[scores])
    tail = model.annotations.get(TARGET, ANNOTATION)
    assert tail == {"kind": "argmax-labels", "labels": [0, 1, 2], "label_output": label,
                    "scores_output": scores, "zipmap": zipmap}
    before = ort_run(proto, {"input": x})
    assert tail["labels"][int(np.argmax(ort_run(after, {"input": x})[scores]))] == int(before[label][0])


def test_string_labels_are_recorded_as_text() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto, _ = _mlp(False, string_labels=True)
    model = run_pass(StripClassifierTail, static(proto)).model
    assert model.annotations.get(TARGET, ANNOTATION)["labels"] == ["cat", "dog", "emu"]
    assert "ArgMax" not in ops(model) and "ArrayFeatureExtractor" not in ops(model)


def test_model_without_a_tail_is_unchanged() -> None:
    import onnx.parser

    proto = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] y, int64[1] k) {
        y = Softmax(x)
        k = ArgMax <axis = 1, keepdims = 0, select_last_index = 1> (y)
    }
    """)
    # the last index among ties is not what lower's argmax step gives (the first)
    result = run_pass(StripClassifierTail, static(proto))
    assert not result.changed and ops(result.model) == ["Softmax", "ArgMax"]


TORCH_TAIL = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 4] x) => (float[N, 3] probs, int64[N] label) {{
    z = Gemm <transB = 1> (x, w, b)
    probs = {final}
    label = ArgMax <axis = {axis}, keepdims = 0> ({reads})
}}
"""


@pytest.mark.parametrize("final, reads", [("Softmax <axis = 1> (z)", "z"), ("Sigmoid(z)", "z"),
                                          ("LogSoftmax <axis = -1> (z)", "probs"), ("Relu(z)", "probs")])
def test_argmax_output_beside_the_scores_is_stripped(final: str, reads: str) -> None:
    from normalize_helpers import parse, rand

    proto = parse(TORCH_TAIL.format(final=final, axis=1, reads=reads), w=rand(3, 4), b=rand(3, seed=1))
    model = run_pass(Normalize, load(proto)).model
    assert check_normal_form(model) == []
    after = model.to_proto()
    assert [o.name for o in after.graph.output] == ["probs"]
    assert model.annotations.get(TARGET, ANNOTATION) == {"kind": "argmax-index", "label_output": "label",
                                                         "scores_output": "probs"}
    for seed in range(2, 8):
        feeds = {"x": rand(1, 4, seed=seed)}
        assert int(np.argmax(ort_run(after, feeds)["probs"])) == int(ort_run(proto, feeds)["label"][0])


def test_argmax_over_another_axis_is_kept_and_reported() -> None:
    from normalize_helpers import parse, rand

    from transpiler.errors import UnsupportedError

    proto = parse(TORCH_TAIL.format(final="Softmax <axis = 1> (z)", axis=0, reads="z").replace(
        "int64[N] label", "int64[3] label"), w=rand(3, 4), b=rand(3, seed=1))
    assert not run_pass(StripClassifierTail, static(proto)).changed
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    assert "ArgMax" in info.value.render()
