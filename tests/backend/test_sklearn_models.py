"""scikit-learn models through the command line: compile, verify, run, and the C against onnxruntime
on the ORIGINAL skl2onnx model (not the normalized one).

Each model is fitted on 300 rows of seeded ``make_classification`` / ``make_regression`` data (6
features, scaled and shifted so that no feature is centred) and checked on the next 200:

- ``freeml-tx verify`` passes (top-1 agreement >= 99.5 %, every output within its error bound),
- the C class output, through the recorded labels, equals onnxruntime's label output on >= 99.5 %,
- the C scores pick onnxruntime's top-1 (one of its exactly tied largest scores) on >= 99.5 % (a
  regressor: within 3 % of its largest value).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from emit_c_helpers import import_all_passes

from transpiler.cli import main

import_all_passes()

FEATURES = 6
TRAIN = 300
SAMPLES = 200
AGREEMENT = 0.995


def _data(classes: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train x, train y, test x); ``classes`` None: a regression target."""
    from sklearn.datasets import make_classification, make_regression

    rows = TRAIN + SAMPLES
    if classes is None:
        x, y = make_regression(n_samples=rows, n_features=FEATURES, noise=0.5, random_state=1)
    else:
        x, y = make_classification(n_samples=rows, n_features=FEATURES, n_informative=4, n_classes=classes,
                                   n_clusters_per_class=1, random_state=1)
    x = (x * 1.5 + 0.7).astype(np.float32)
    return x[:TRAIN], y[:TRAIN], x[TRAIN:]


def _export(estimator: Any, classes: int | None, zipmap: bool | None = False,
            options: dict[str, Any] | None = None) -> tuple[Any, np.ndarray]:
    """Fit and convert at opset 13 (ai.onnx.ml 1); the model and the test inputs."""
    pytest.importorskip("sklearn")
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    x_train, y_train, x_test = _data(classes)
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    chosen = dict(options or {})
    if classes is not None and zipmap is not None:
        chosen["zipmap"] = zipmap
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(x_train, y_train)
        proto = to_onnx(estimator, initial_types=[("input", FloatTensorType([None, FEATURES]))],
                        target_opset={"": 13, "ai.onnx.ml": 1}, options={id(final): chosen} if chosen else None)
    return proto, x_test


def _original(proto: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """onnxruntime on the original model, one row at a time; a ZipMap's dicts become their values."""
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    rows: dict[str, list[np.ndarray]] = {}
    for row in x:
        for meta, value in zip(session.get_outputs(), session.run(None, {"input": row[None]})):
            if isinstance(value, list) and value and isinstance(value[0], dict):
                value = [[item[k] for k in sorted(item)] for item in value]
            rows.setdefault(meta.name, []).append(np.asarray(value).reshape(-1))
    return {name: np.stack(values) for name, values in rows.items()}


def compile_and_compare(proto: Any, x: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                        regressor: bool = False) -> dict[str, Any]:
    """Compile, verify and run ``proto`` on ``x``; check the C against onnxruntime on ``proto`` (module
    docstring). Returns verify's JSON."""
    import onnx

    onnx.save(proto, str(tmp_path / "model.onnx"))
    np.savez(tmp_path / "data.npz", input=x)
    out = tmp_path / "build"
    assert main([str(tmp_path / "model.onnx"), "-o", str(out), "--data", str(tmp_path / "data.npz")]) == 0, \
        capsys.readouterr().err
    capsys.readouterr()
    code = main(["verify", str(out), "--data", str(tmp_path / "data.npz"), "--json"])
    text = capsys.readouterr().out
    doc = json.loads(text)
    assert code == 0 and doc["pass"], text
    assert main(["run", str(out), "--input", str(tmp_path / "data.npz"), "--output", str(tmp_path / "y.npz")]) == 0
    capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    with np.load(tmp_path / "y.npz") as saved:
        c = {name: saved[name].reshape(len(x), -1).astype(np.float64) for name in saved.files}
    want = _original(proto, x)
    labels = [v for v in want.values() if v.shape[1] == 1 and v.dtype.kind in "iu"]
    scores = [name for name in c if name != manifest.get("class_output")]
    assert len(scores) == 1
    got = c[scores[0]]
    reference = next(v for name, v in want.items() if v.dtype.kind == "f" and v.shape == got.shape)
    if regressor:
        assert np.abs(got - reference).max() <= 0.03 * np.abs(reference).max()
        return doc
    # the C's top-1 is one of the original's largest scores (exact ties: saturated float32 sigmoids)
    assert float(np.mean(reference[np.arange(len(x)), got.argmax(axis=1)] == reference.max(axis=1))) >= AGREEMENT
    if labels:
        index = c[manifest["class_output"]][:, 0].astype(int)
        names = np.array(manifest["labels"])[index]
        assert float(np.mean(names == labels[0][:, 0])) >= AGREEMENT
    return doc


@pytest.mark.parametrize(("kernel", "classes"), [("linear", 2), ("rbf", 2), ("sigmoid", 2), ("poly", 2),
                                                 ("linear", 3), ("rbf", 3), ("sigmoid", 3), ("rbf", 4)])
def test_kernel_svc(kernel: str, classes: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.svm import SVC

    proto, x = _export(SVC(kernel=kernel), classes, zipmap=classes == 3)
    assert "SVMClassifier" in [n.op_type for n in proto.graph.node]
    doc = compile_and_compare(proto, x, tmp_path, capsys)
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    if classes > 2:    # the class comes from the hard votes, an ONNX tensor that is no port
        assert manifest["class_source"] == "label_votes" and "label_votes" not in manifest["outputs"]
        assert any(row["output"] == "class" and row["agreement"] >= AGREEMENT for row in doc["outputs"])
    else:              # onnxruntime's binary label is class 0 when its score s > 0: scores [-s, s]
        assert manifest["labels"] == [1, 0]


@pytest.mark.parametrize(("options", "why"), [
    ({"kernel": "poly"}, "polynomial kernel with several classes"),
    ({"kernel": "rbf", "probability": True}, "probability=True")])
def test_unsupported_svc_is_a_clear_error(options: dict[str, Any], why: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import onnx
    from sklearn.svm import SVC

    proto, x = _export(SVC(**options), 3)
    onnx.save(proto, str(tmp_path / "model.onnx"))
    np.savez(tmp_path / "data.npz", input=x)
    assert main([str(tmp_path / "model.onnx"), "-o", str(tmp_path / "b"), "--data", str(tmp_path / "data.npz")]) == 2
    err = capsys.readouterr().err
    assert "SVMClassifier" in err and why in err and not (tmp_path / "b").exists()
    assert "kernel='rbf'" in err or "probability=False" in err


@pytest.mark.parametrize(("kind", "weights", "zipmap"), [("classifier", "uniform", True), ("classifier", "uniform", False),
                                                      ("classifier", "distance", False), ("regressor", "uniform", None)])
def test_knn_is_a_clear_error(kind: str, weights: str, zipmap: bool | None, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    # skl2onnx's k-NN: a Scan of the distances to the stored points and a TopK, which the LIR cannot
    # select; the error names the TopK first, with k, the stored points and what to train instead
    import onnx
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    estimator = (KNeighborsClassifier if kind == "classifier" else KNeighborsRegressor)(4, weights=weights)
    proto, x = _export(estimator, 3 if kind == "classifier" else None, zipmap=zipmap)
    assert {"Scan", "TopK"} <= {n.op_type for n in proto.graph.node}
    onnx.save(proto, str(tmp_path / "model.onnx"))
    np.savez(tmp_path / "data.npz", input=x)
    assert main([str(tmp_path / "model.onnx"), "-o", str(tmp_path / "b"), "--data", str(tmp_path / "data.npz")]) == 2
    err = capsys.readouterr().err
    first = next(line for line in err.splitlines() if line.startswith("  '"))
    assert "(TopK," in first and f"k = 4 of {TRAIN} stored points of {FEATURES} features" in first
    assert "no top-k selection" in first and "without stored points" in first
    assert ("weighted by distance" in first) == (weights == "distance")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(("kernel", "zipmap"), [("rbf", False), ("rbf", True), ("linear", False), ("sigmoid", False)])
def test_binary_svc_with_probabilities(kernel: str, zipmap: bool, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    # onnxruntime's [p, 1 - p], p = 1 - sigmoid(a s + b) (Platt): a Gemm of the kernel row and a final
    # Sigmoid (dropped: the device returns its logits); its label votes (class 0 when s > 0), which
    # is not the probabilities' argmax when 0 < s < -b/a: the class comes from [s, -s]
    from sklearn.svm import SVC

    proto, x = _export(SVC(kernel=kernel, probability=True, random_state=0), 2, zipmap=zipmap)
    assert "SVMClassifier" in [n.op_type for n in proto.graph.node]
    compile_and_compare(proto, x, tmp_path, capsys)
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    assert manifest["class_source"] == "label_votes" and manifest["labels"] == [0, 1]
    labels, probabilities = sorted(_original(proto, x).values(), key=lambda v: v.dtype.kind == "f")
    with np.load(tmp_path / "y.npz") as saved:
        logits = next(saved[name] for name in saved.files if name != "class").reshape(len(x), 2)
        assert np.array_equal(np.array(manifest["labels"])[saved["class"].reshape(-1).astype(int)], labels[:, 0])
    # onnxruntime stops its coupling iteration at a tolerance of 0.0025: up to 0.0032 from [p, 1 - p]
    assert np.abs(1.0 / (1.0 + np.exp(-logits)) - probabilities).max() <= 0.006


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_kernel_svr(kernel: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn.svm import SVR

    proto, x = _export(SVR(kernel=kernel, C=10.0), None)
    assert "SVMRegressor" in [n.op_type for n in proto.graph.node]
    compile_and_compare(proto, x, tmp_path, capsys, regressor=True)


@pytest.mark.parametrize("zipmap", [True, False])
def test_one_vs_rest_logistic_regression(zipmap: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # skl2onnx: one binary LinearClassifier per class, their positive columns concatenated and
    # divided by their sum (LpNormalization p=1): one Gemm + a final Sigmoid (dropped: the device
    # returns the k logits, whose argmax is the class)
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    proto, x = _export(OneVsRestClassifier(LogisticRegression(max_iter=500)), 4, zipmap=zipmap)
    assert "LpNormalization" in [n.op_type for n in proto.graph.node]
    doc = compile_and_compare(proto, x, tmp_path, capsys)
    assert all(row.get("agreement", 1.0) == 1.0 for row in doc["outputs"])


@pytest.mark.parametrize(("kernel", "zipmap"), [("rbf", True), ("rbf", False), ("linear", False)])
def test_one_vs_rest_svc(kernel: str, zipmap: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # skl2onnx: one binary SVMClassifier per class, column 1 of its scores [-s, s] sliced out, the
    # columns concatenated and divided by the sum of their |s| (LpNormalization p=1): one Gemm per
    # class and a Concat; the device returns the decision values, whose L1 share is onnxruntime's
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.svm import SVC

    proto, x = _export(OneVsRestClassifier(SVC(kernel=kernel)), 3, zipmap=zipmap)
    assert {"SVMClassifier", "Slice", "LpNormalization"} <= {n.op_type for n in proto.graph.node}
    compile_and_compare(proto, x, tmp_path, capsys)
    probabilities = next(v for v in _original(proto, x).values() if v.dtype.kind == "f")
    with np.load(tmp_path / "y.npz") as saved:
        scores = next(saved[name] for name in saved.files if name != "class").reshape(len(x), 3)
    assert np.abs(scores / np.abs(scores).sum(axis=1, keepdims=True) - probabilities).max() <= 0.01


def test_binary_linear_svc_without_raw_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # skl2onnx gives a binary LinearSVC only its decision column [N, 1]: the device outputs that
    # column, and its class comes from both rows (an ONNX tensor that is no port)
    from sklearn.svm import LinearSVC

    proto, x = _export(LinearSVC(), 2, zipmap=None)
    assert [o.name for o in proto.graph.output] == ["label", "probabilities"]
    doc = compile_and_compare(proto, x, tmp_path, capsys, regressor=True)
    manifest = json.loads((tmp_path / "build" / "manifest.json").read_text())
    assert manifest["class_source"] == "label_scores" and [p["name"] for p in manifest["outputs"]] == \
        ["probabilities", "class"]
    assert any(row["output"] == "class" and row["agreement"] >= AGREEMENT for row in doc["outputs"])
    labels = _original(proto, x)["label"][:, 0]
    with np.load(tmp_path / "y.npz") as saved:
        assert float(np.mean(np.array(manifest["labels"])[saved["class"].reshape(-1).astype(int)] == labels)) \
            >= AGREEMENT


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_normalizer_pipeline(norm: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # y = x / |x|: the squares (magnitudes) summed by a Gemm, a table of sum^(-1/2) (sum^-1) from the
    # smallest calibrated norm / 1.2 up, widened by a Gemm of ones, a mul step
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    proto, x = _export(make_pipeline(Normalizer(norm=norm), LogisticRegression(max_iter=500)), 3, zipmap=True)
    compile_and_compare(proto, x, tmp_path, capsys)


def test_normalizer_without_data_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import onnx
    from sklearn.preprocessing import Normalizer

    proto, _ = _export(Normalizer(), None)
    onnx.save(proto, str(tmp_path / "model.onnx"))
    assert main([str(tmp_path / "model.onnx"), "-o", str(tmp_path / "b"), "--input-shape", "input=1x6"]) == 2
    err = capsys.readouterr().err
    assert "'Normalizer'" in err and "needs calibration data" in err and "--data" in err


@pytest.mark.parametrize("zipmap", [True, False])
def test_gaussian_naive_bayes(zipmap: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # log-likelihoods a + b x + q x^2 (fitted off skl2onnx's broadcast graph): two Gemms, a final
    # Softmax (dropped: the device returns the log-likelihoods)
    from sklearn.naive_bayes import GaussianNB

    proto, x = _export(GaussianNB(), 3, zipmap=zipmap)
    assert "ReduceLogSumExp" in [n.op_type for n in proto.graph.node]
    compile_and_compare(proto, x, tmp_path, capsys)


@pytest.mark.parametrize("kind", ["multinomial", "complement", "minmax-multinomial"])
def test_linear_naive_bayes(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # MultinomialNB / ComplementNB on word counts: log-likelihoods linear in x (quadratic-scores
    # fits q = 0 and writes one Gemm), behind a MinMaxScaler too
    pytest.importorskip("sklearn")
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.naive_bayes import ComplementNB, MultinomialNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    rng = np.random.default_rng(3)
    rates = rng.uniform(0.2, 4.0, (3, FEATURES))
    y = rng.integers(0, 3, TRAIN + SAMPLES)
    x = rng.poisson(rates[y]).astype(np.float32)
    estimator = {"multinomial": MultinomialNB(), "complement": ComplementNB(),
                 "minmax-multinomial": make_pipeline(MinMaxScaler(), MultinomialNB())}[kind]
    estimator.fit(x[:TRAIN], y[:TRAIN])
    proto = to_onnx(estimator, initial_types=[("input", FloatTensorType([None, FEATURES]))],
                    target_opset={"": 13, "ai.onnx.ml": 1})
    doc = compile_and_compare(proto, x[TRAIN:], tmp_path, capsys)
    import onnx

    normalized = onnx.load(str(tmp_path / "build" / "normalized.onnx"))
    assert [n.op_type for n in normalized.graph.node if n.op_type in ("Gemm", "Mul")] == ["Gemm"], doc


@pytest.mark.parametrize("kind", ["bernoulli", "bernoulli-4-classes", "binarizer-logreg"])
def test_binarized_input(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # BernoulliNB (Greater(x, t) + Cast, then linear log-likelihoods) and a Binarizer pipeline
    # (ai.onnx.ml Binarizer): scores a + sum_f [x_f > t_f] w_f as one stump per feature (the tree
    # kernel's exact threshold compare) and a Softmax (dropped: the device returns the scores)
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import BernoulliNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Binarizer

    estimator, classes = {"bernoulli": (BernoulliNB(), 3), "bernoulli-4-classes": (BernoulliNB(binarize=1.0), 4),
                          "binarizer-logreg": (make_pipeline(Binarizer(threshold=0.5),
                                                             LogisticRegression(max_iter=500)), 3)}[kind]
    proto, x = _export(estimator, classes, zipmap=kind != "bernoulli")
    assert {"Greater", "Binarizer"} & {n.op_type for n in proto.graph.node}
    compile_and_compare(proto, x, tmp_path, capsys)
    _check_tree_softmax(proto, x, classes, tmp_path)


@pytest.mark.parametrize(("classes", "depth", "zipmap"), [(3, 1, True), (2, 1, False), (4, 3, False)])
def test_adaboost_classifier(classes: int, depth: int, zipmap: bool, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    # SAMME: per estimator an ArgMax, a Where vote and a weight, summed, then a softmax: one tree
    # ensemble whose leaves write their tree's weighted vote, and a Softmax (dropped)
    from sklearn.ensemble import AdaBoostClassifier
    from sklearn.tree import DecisionTreeClassifier

    booster = AdaBoostClassifier(DecisionTreeClassifier(max_depth=depth), n_estimators=12, random_state=0)
    proto, x = _export(booster, classes, zipmap=zipmap)
    assert {"ArgMax", "Where", "Sum"} <= {n.op_type for n in proto.graph.node}
    compile_and_compare(proto, x, tmp_path, capsys)
    _check_tree_softmax(proto, x, classes, tmp_path)


@pytest.mark.parametrize(("zipmap", "scale"), [(True, 1.0), (False, 1.0), (False, 6.0)])
def test_log_loss_sgd_classifier(zipmap: bool, scale: float, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    # one sigmoid per class divided by their guarded sum: a Gemm and a final Sigmoid (dropped: the
    # device returns the logits; their sigmoids over their sum are onnxruntime's probabilities);
    # scaled inputs saturate several sigmoids to 1 in float32, where onnxruntime's label is the
    # first of them: the logits are clipped where the sigmoid saturates
    from sklearn.linear_model import SGDClassifier

    proto, x = _export(SGDClassifier(loss="log_loss", random_state=0), 3, zipmap=zipmap)
    assert {"Reciprocal", "ReduceSum"} <= {n.op_type for n in proto.graph.node}
    x = x * np.float32(scale)
    if scale > 1.0:
        saturated = next(v for v in _original(proto, x).values() if v.dtype.kind == "f")
        assert float(np.mean((saturated == saturated.max(axis=1, keepdims=True)).sum(axis=1) > 1)) > 0.05
    compile_and_compare(proto, x, tmp_path, capsys)
    probabilities = next(v for v in _original(proto, x).values() if v.dtype.kind == "f")
    with np.load(tmp_path / "y.npz") as saved:
        logits = next(saved[name] for name in saved.files if name != "class").reshape(len(x), 3)
    sigmoids = 1.0 / (1.0 + np.exp(-np.clip(logits, -60.0, 60.0)))
    assert np.abs(sigmoids / sigmoids.sum(axis=1, keepdims=True) - probabilities).max() <= 0.01


@pytest.mark.parametrize("zipmap", [True, False])
def test_modified_huber_sgd_classifier(zipmap: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # (clip(z, -1, 1) + 1) / 2 per class divided by the guarded sum: the device returns the
    # unnormalized scores (a Gemm and a Clip), whose share of their sum is onnxruntime's probabilities
    from sklearn.linear_model import SGDClassifier

    proto, x = _export(SGDClassifier(loss="modified_huber", random_state=0), 3, zipmap=zipmap)
    assert {"Clip", "ReduceSum", "Not"} <= {n.op_type for n in proto.graph.node}
    compile_and_compare(proto, x, tmp_path, capsys)
    probabilities = next(v for v in _original(proto, x).values() if v.dtype.kind == "f")
    with np.load(tmp_path / "y.npz") as saved:
        scores = next(saved[name] for name in saved.files if name != "class").reshape(len(x), 3)
    total = scores.sum(axis=1, keepdims=True)
    share = np.where(total > 0, scores / np.where(total > 0, total, 1.0), 1.0 / 3)
    assert np.abs(share - probabilities).max() <= 0.01


def test_soft_voting_classifier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the members' probabilities (a LogisticRegression's and a GaussianNB's softmax inside the
    # network) weighted and summed by an ONNX Sum: a chain of Adds
    from sklearn.ensemble import VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB

    voting = VotingClassifier([("lr", LogisticRegression(max_iter=500)), ("nb", GaussianNB())], voting="soft",
                              flatten_transform=False)
    proto, x = _export(voting, 3, zipmap=False)
    assert "Sum" in [n.op_type for n in proto.graph.node]
    compile_and_compare(proto, x, tmp_path, capsys)


def test_bagging_classifier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the members' probabilities stacked by a Concat over axis 0 and averaged by a ReduceMean over
    # it: the mean of the members (activation-arith), each a LogisticRegression's softmax
    from sklearn.ensemble import BaggingClassifier
    from sklearn.linear_model import LogisticRegression

    bagging = BaggingClassifier(LogisticRegression(max_iter=500), n_estimators=4, random_state=0)
    proto, x = _export(bagging, 3, zipmap=False)
    assert {"Concat", "ReduceMean"} <= {n.op_type for n in proto.graph.node}
    compile_and_compare(proto, x, tmp_path, capsys)


@pytest.mark.parametrize("kind", ["qda", "poly-logreg"])
def test_quadratic_scores_with_cross_terms(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # QuadraticDiscriminantAnalysis (full covariances) and PolynomialFeatures(2) + LogisticRegression
    # (ArrayFeatureExtractor + ReduceProd per monomial): scores a + b x + x' M_c x, fitted off the
    # graph and written as a projection on M_c's scaled eigenvectors, its exact square and a Gemm
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    estimator = QuadraticDiscriminantAnalysis(reg_param=0.1) if kind == "qda" else \
        make_pipeline(PolynomialFeatures(2), LogisticRegression(max_iter=2000))
    proto, x = _export(estimator, 3, zipmap=False)
    compile_and_compare(proto, x, tmp_path, capsys)
    import onnx

    normalized = onnx.load(str(tmp_path / "build" / "normalized.onnx"))
    assert [n.op_type for n in normalized.graph.node if n.op_type in ("Gemm", "Mul")] == ["Gemm", "Gemm", "Mul", "Gemm"]


def _check_tree_softmax(proto: Any, x: np.ndarray, classes: int, tmp_path: Path) -> None:
    """The compiled model is one tree ensemble and a (dropped) Softmax, and the softmax of the C's
    scores is onnxruntime's probabilities on the original model within 1e-3 on nearly every row (an
    input within half an input LSB of a threshold may take the other side, the tree kernel's too)."""
    import onnx

    normalized = onnx.load(str(tmp_path / "build" / "normalized.onnx"))
    assert [n.op_type for n in normalized.graph.node] == ["TreeEnsembleRegressor", "Softmax"]
    probabilities = next(v for v in _original(proto, x).values() if v.dtype.kind == "f")
    with np.load(tmp_path / "y.npz") as saved:
        scores = next(saved[name] for name in saved.files if name != "class").reshape(len(x), classes)
    softmax = np.exp(scores - scores.max(axis=1, keepdims=True))
    error = np.abs(softmax / softmax.sum(axis=1, keepdims=True) - probabilities).max(axis=1)
    assert float(np.mean(error <= 1e-3)) >= AGREEMENT
