"""`ml-to-onnx`: skl2onnx's Scaler / LinearClassifier / Normalizer as standard ops, through `normalize`."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from normalize_helpers import assert_same_outputs, load, ops, ort_run, rand, run_pass, static

from passes.check_supported import check_normal_form
from passes.classifier_tail import ANNOTATION, TARGET
from passes.ml_ops import MlOpsToOnnx
from passes.normalize import Normalize
from transpiler.errors import UnsupportedError

ML = "ai.onnx.ml"


def _skl(clf: Any, classes: int, zipmap: bool | None, opset: int = 13,
         options: dict[str, Any] | None = None) -> tuple[onnx.ModelProto, np.ndarray]:
    """Fit ``clf`` on seeded data with ``classes`` classes; its skl2onnx export (``zipmap`` and other
    converter ``options``) and 5 inputs."""
    pytest.importorskip("sklearn")
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    rng = np.random.default_rng(0)
    base = rng.normal(size=(120, 6))
    y = np.argmax(base[:, :classes], axis=1)
    x = (base * [1, 2, 3, 0.5, 1, 4] + [0, 1, -2, 3, 0, 5]).astype(np.float32)  # scales for StandardScaler
    last = clf.steps[-1][1] if hasattr(clf, "steps") else clf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(x, y)
        chosen = dict(options or {}) if zipmap is None else {"zipmap": zipmap, **(options or {})}
        options = {id(last): chosen} if chosen else None
        proto = to_onnx(clf, initial_types=[("input", FloatTensorType([None, 6]))], options=options,
                        target_opset={"": opset, "ai.onnx.ml": 1})
    return proto, x[:5]


def _normalized_agrees(proto: onnx.ModelProto, x: np.ndarray, scores: str, label: str) -> Any:
    """Normalize; the scores equal onnxruntime's, the recorded labels give the removed label output."""
    model = run_pass(Normalize, load(proto)).model
    assert check_normal_form(model) == []
    after = model.to_proto()
    assert [o.name for o in after.graph.output] == [scores]
    for row in x:
        feeds = {"input": row[None]}
        assert_same_outputs(proto, after, feeds, names=[scores])
        tail = model.annotations.get(TARGET, ANNOTATION)
        got = ort_run(after, feeds)[scores]
        assert tail["labels"][int(np.argmax(got))] == ort_run(proto, feeds)[label].reshape(-1)[0]
    return model


@pytest.mark.parametrize("zipmap", [True, False])
def test_logistic_regression_becomes_gemm_softmax(zipmap: bool) -> None:
    from sklearn.linear_model import LogisticRegression

    # skl2onnx writes LinearClassifier{SOFTMAX} -> Normalizer{L1} (-> ZipMap); with zipmap its
    # default-domain opset is 9 (only a Cast), which the loader and upgrade-opset accept
    proto, x = _skl(LogisticRegression(max_iter=500), 3, zipmap)
    assert "LinearClassifier" in ops(proto) and "Normalizer" in ops(proto)
    scores, label = ("output_probability", "output_label") if zipmap else ("probabilities", "label")
    model = _normalized_agrees(proto, x, scores, label)
    assert ops(model) == ["Gemm", "Softmax"]
    assert model.annotations.get(TARGET, ANNOTATION)["labels"] == [0, 1, 2]


def test_linear_svc_becomes_one_gemm() -> None:
    from sklearn.svm import LinearSVC

    proto, x = _skl(LinearSVC(), 4, None)
    model = _normalized_agrees(proto, x, "probabilities", "label")
    assert ops(model) == ["Gemm"]


def test_scaler_pipeline_folds_into_the_classifier() -> None:
    """The Scaler becomes Add + Mul (ml-to-onnx), which fold into the Gemm (fold-into-next)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    proto, x = _skl(make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)), 3, False)
    assert "Scaler" in ops(proto)
    model = _normalized_agrees(proto, x, "probabilities", "label")
    assert ops(model) == ["Gemm", "Softmax"]


def _linear_classifier(post: str, coefficients: list[float], intercepts: list[float],
                       labels: dict[str, Any], default_domain: bool = True) -> onnx.ModelProto:
    node = helper.make_node("LinearClassifier", ["x"], ["label", "scores"], domain=ML, name="lc",
                            coefficients=coefficients, intercepts=intercepts, post_transform=post, **labels)
    label_type = TensorProto.STRING if "classlabels_strings" in labels else TensorProto.INT64
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("label", label_type, ["N"]),
                               helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", None])])
    imports = [helper.make_opsetid("", 13)] if default_domain else []
    proto = helper.make_model(graph, opset_imports=[*imports, helper.make_opsetid(ML, 1)])
    onnx.checker.check_model(proto)
    return proto


def _same_outputs(before: onnx.ModelProto, after: onnx.ModelProto, x: np.ndarray) -> None:
    want, got = ort_run(before, {"x": x}), ort_run(after, {"x": x})
    np.testing.assert_allclose(got["scores"], want["scores"], rtol=1e-5, atol=1e-6)
    assert got["label"].tolist() == want["label"].tolist()


def test_binary_logistic_classifier_with_one_row_scores_both_classes() -> None:
    # one weight row and two labels: onnxruntime scores [1 - s(z), s(z)] = s([-z, z])
    proto = _linear_classifier("LOGISTIC", [0.5, -1.0, 0.25], [0.1], {"classlabels_ints": [3, 7]})
    result = run_pass(MlOpsToOnnx, load(proto))
    assert result.changed and result.stats["linear-classifiers"] == 1
    after = result.model.to_proto()
    assert ops(after) == ["Gemm", "Sigmoid", "ArgMax", "ArrayFeatureExtractor", "Reshape"]
    _same_outputs(proto, after, rand(8, 3))
    weights = next(i for i in after.graph.initializer if i.name == "lc_weights")
    assert list(weights.dims) == [2, 3]


def test_one_row_without_transform_is_left_alone() -> None:
    # onnxruntime: scores [1 - z, z] but label z > 0, which no argmax of the scores reproduces
    proto = _linear_classifier("NONE", [0.5, -1.0, 0.25], [0.1], {"classlabels_ints": [0, 1]})
    assert not run_pass(MlOpsToOnnx, load(proto)).changed


@pytest.mark.parametrize("default_domain", [True, False])
def test_string_labels_and_three_rows(default_domain: bool) -> None:
    # a model of ai.onnx.ml ops only may import no default domain: the new nodes need it
    proto = _linear_classifier("SOFTMAX", [float(v) for v in rand(9, seed=1)], [0.0, 0.5, -0.5],
                               {"classlabels_strings": ["ant", "bee", "cow"]}, default_domain)
    result = run_pass(MlOpsToOnnx, load(proto))
    after = result.model.to_proto()
    onnx.checker.check_model(after)
    assert any(o.domain == "" and o.version >= 13 for o in after.opset_import)
    _same_outputs(proto, after, rand(8, 3, seed=2))


@pytest.mark.parametrize("post", ["PROBIT", "SOFTMAX_ZERO"])
def test_other_post_transforms_are_left_and_reported(post: str) -> None:
    proto = _linear_classifier(post, [float(v) for v in rand(6)], [0.0, 0.1], {"classlabels_ints": [0, 1]})
    assert not run_pass(MlOpsToOnnx, static(proto)).changed
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    assert "'lc' (LinearClassifier, ai.onnx.ml" in info.value.render()


def test_binary_linear_svc_decision_column_keeps_its_values_and_labels() -> None:
    from sklearn.svm import LinearSVC

    # skl2onnx: LinearClassifier -> ArrayFeatureExtractor(scores, [1]), the decision value alone;
    # it stays the output, and the label is the argmax of both rows (the class-scores output)
    proto, x = _skl(LinearSVC(), 2, None)
    model = run_pass(Normalize, load(proto)).model
    assert check_normal_form(model) == [] and ops(model) == ["Gemm", "Gemm"]
    after = model.to_proto()
    scores = model.annotations.get("graph", "class-scores")
    assert [o.name for o in after.graph.output] == ["probabilities", scores]
    for row in x:
        feeds = {"input": row[None]}
        assert_same_outputs(proto, after, feeds, names=["probabilities"])
        tail = model.annotations.get(TARGET, ANNOTATION)
        got = ort_run(after, feeds)[scores]
        assert tail["labels"][int(np.argmax(got))] == ort_run(proto, feeds)["label"].reshape(-1)[0]
    raw, _ = _skl(LinearSVC(), 2, None, options={"raw_scores": True})
    model = _normalized_agrees(raw, x, "probabilities", "label")
    assert ops(model) == ["Gemm"]


def _regressor(reg: Any, targets: int, opset: int) -> tuple[onnx.ModelProto, np.ndarray]:
    """Fit ``reg`` on seeded data with ``targets`` outputs; its skl2onnx export and 5 inputs."""
    pytest.importorskip("sklearn")
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    rng = np.random.default_rng(1)
    x = (rng.normal(size=(80, 6)) * [1, 2, 3, 0.5, 1, 4] + [0, 1, -2, 3, 0, 5]).astype(np.float32)
    y = x @ rng.normal(size=(6, targets)) + rng.normal(size=targets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(x, y[:, 0] if targets == 1 else y)
        proto = to_onnx(reg, initial_types=[("input", FloatTensorType([None, 6]))],
                        target_opset={"": opset, "ai.onnx.ml": 1})
    return proto, x[:5]


@pytest.mark.parametrize("opset", [12, 17])
@pytest.mark.parametrize("targets", [1, 3])
@pytest.mark.parametrize("kind", ["LinearRegression", "Ridge", "pipeline"])
def test_linear_regressor_becomes_one_gemm(kind: str, targets: int, opset: int) -> None:
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    reg = {"LinearRegression": LinearRegression, "Ridge": Ridge,
           "pipeline": lambda: make_pipeline(StandardScaler(), LinearRegression())}[kind]()
    proto, x = _regressor(reg, targets, opset)
    assert "LinearRegressor" in ops(proto)
    result = run_pass(Normalize, load(proto))
    model = result.model
    assert check_normal_form(model) == []
    assert ops(model) == ["Gemm"]  # a pipeline's Scaler (Add, Mul) folds into it
    assert result.stats["ml-to-onnx"]["linear-regressors"] == 1
    after = model.to_proto()
    assert [o.name for o in after.graph.output] == [o.name for o in proto.graph.output]
    for row in x:
        assert_same_outputs(proto, after, {"input": row[None]}, rtol=1e-4, atol=1e-4)


def test_linear_regressor_with_post_transform_is_left_and_reported() -> None:
    node = helper.make_node("LinearRegressor", ["x"], ["y"], domain=ML, coefficients=[0.5, -1.0, 0.25],
                            intercepts=[0.1], post_transform="PROBIT", name="lr")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(ML, 1)])
    assert not run_pass(MlOpsToOnnx, static(proto)).changed
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    text = info.value.render()
    assert "'lr' (LinearRegressor, ai.onnx.ml" in text and "post_transform NONE" in text
