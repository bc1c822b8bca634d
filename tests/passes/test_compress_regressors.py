"""Compressing regressors: the task is inferred (or given), regressors are fine-tuned on the mean
squared error and bounded by R^2 instead of the argmax of their outputs, a single-logit binary
classifier trains on its sigmoid, and gNet refuses a regressor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from compress_helpers import SAMPLES, context, make_model
from onnx import helper

from transpiler.cli import main
from transpiler.data import Dataset, _labels
from transpiler.errors import DataError, PassError
from transpiler.model import OnnxModel

from passes.attach_gnet import AttachGnet, AttachGnetOptions
from passes.compress_size import model_size
from passes.finetune import infer_task, r2_score, target_scale
from passes.sparsify import Sparsify, SparsifyOptions
from passes.train import build_net, cross_entropy, distillation, evaluate

FAST = {"epochs": 3, "final_epochs": 3}


def mlp(sizes: list[int], seed: int = 0, relu_last: bool = False) -> OnnxModel:
    """x [1, sizes[0]] -> Gemm/Relu layers -> y [1, sizes[-1]] with random weights, a third of them
    large and the rest small (like a trained network's: pruning the small ones costs little)."""
    rng = np.random.default_rng(seed)
    nodes, inits, prev = [], {}, "x"
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        large = rng.random((b, a)) < 1 / 3
        inits[f"w{i}"] = rng.normal(0, 1.5 / np.sqrt(a), (b, a)) * np.where(large, 1.7, 0.05)
        inits[f"b{i}"] = rng.normal(0, 0.1, b)
        out = "y" if i == len(sizes) - 2 and not relu_last else f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [out], transB=1))
        if out != "y":
            relu_out = "y" if i == len(sizes) - 2 else f"r{i}"
            nodes.append(helper.make_node("Relu", [out], [relu_out]))
            out = relu_out
        prev = out
    return make_model(nodes, [1, sizes[0]], "y", inits)


def outputs(model: OnnxModel, x: np.ndarray) -> np.ndarray:
    net = build_net(model)
    return net.forward({"x": x.astype(np.float32)}, [net.logits])[net.logits].reshape(len(x), -1)


def marks(n: int) -> np.ndarray:
    return np.array(["train"] * (n * 6 // 10) + ["val"] * (n * 2 // 10) + ["test"] * (n - n * 8 // 10))


@pytest.mark.parametrize(("labels", "shape", "inputs", "tail", "kind", "why"), [
    (np.array([0.5, 1.5]), (3,), [(8,)], False, "regress", "real numbers"),
    (np.array([0, 2]), (3,), [(8,)], False, "classify", "class indices"),
    (np.array([0, 1]), (1,), [(8,)], False, "classify", "class indices"),        # one logit: two classes
    (np.array([8, 40]), (1,), [(8,)], False, "regress", "cannot index its 1 output"),
    (np.array([0, 3]), (3,), [(8,)], False, "regress", "cannot index its 3 outputs"),
    (np.array([-1, 2]), (3,), [(8,)], False, "regress", "whole numbers (-1..2)"),
    (np.array([0, 3]), (3,), [(8,)], True, "classify", "class indices"),        # a Softmax says classes
    (None, (3,), [(8,)], True, "classify", "Softmax"),
    (None, (2, 4, 4), [(1, 8, 8)], False, "regress", "a map"),
    (None, (1,), [(8,)], False, "regress", "single output"),
    (None, (64,), [(64,)], False, "regress", "autoencoder"),
    (None, (8,), [(8,)], False, "classify", "assumed: 8 class scores"),
    (None, (10, 1, 1), [(3, 8, 8)], False, "classify", "assumed: 10 class scores"),
])
def test_the_task_is_inferred_from_labels_and_outputs(labels: np.ndarray | None, shape: tuple[int, ...],
                                                      inputs: list[tuple[int, ...]], tail: bool, kind: str,
                                                      why: str) -> None:
    task = infer_task("auto", labels, shape, inputs, tail)
    assert task.kind == kind and why in task.why
    assert infer_task("regress", labels, shape, inputs, tail).kind == "regress"
    assert infer_task("classify", None, (8,), [(8,)], False).kind == "classify"


def test_r2_is_one_for_the_targets_and_zero_for_their_mean() -> None:
    rng = np.random.default_rng(0)
    t = rng.normal(size=(50, 3)) * np.array([1.0, 100.0, 0.01])
    scale = target_scale(t)
    assert r2_score(t, t, scale) == pytest.approx(1.0)
    assert r2_score(np.broadcast_to(t.mean(axis=0), t.shape), t, scale) == pytest.approx(0.0, abs=1e-12)
    # standardised columns: an error of one spread on the tiny column costs as much as on the big one
    noisy = t.copy()
    noisy[:, 2] += scale[2]
    noisy2 = t.copy()
    noisy2[:, 1] += scale[1]
    assert r2_score(noisy, t, scale) == pytest.approx(r2_score(noisy2, t, scale), rel=1e-3)


def test_label_free_regressor_is_bounded_by_r2_of_the_original_outputs() -> None:
    """An argmax bound would let the pass prune a regressor into noise; the R^2 bound keeps its
    outputs: the compressed model explains the original's outputs on the untouched test part. (Six
    outputs without labels could be class scores: task=regress says they are not.)"""
    model = mlp([12, 48, 48, 6])
    original = mlp([12, 48, 48, 6])
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 12)).astype(np.float32)
    data = Dataset.from_arrays({"x": x}, marks=marks(len(x)))
    budget = model_size(model).total * 55 // 100
    lines: list[str] = []
    result = Sparsify(SparsifyOptions(budget=budget, max_drop=2.0, task="regress", **FAST),
                      context(data, lines)).run(model)
    stats = result.stats
    assert stats["measure"] == "R^2 vs the original model's outputs (no labels)" and stats["loss"] == "mse"
    assert model_size(result.model).total <= budget and stats["drop"] <= 2.0
    test = x[marks(len(x)) == "test"]
    want = outputs(original, test)
    got = outputs(result.model, test)
    assert r2_score(got, want, target_scale(want)) >= 0.95
    assert any("R^2" in line for line in lines)


def test_labelled_regressor_fits_the_labels() -> None:
    teacher = mlp([10, 32, 3], seed=3)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 10)).astype(np.float32)
    y = outputs(teacher, x) + rng.normal(0, 0.05, size=(len(x), 3))
    data = Dataset.from_arrays({"x": x}, y, marks=marks(len(x)))
    assert data.labels is not None and data.labels.dtype.kind == "f" and data.labels.shape == (500, 3)
    model = mlp([10, 32, 3], seed=3)
    result = Sparsify(SparsifyOptions(budget=model_size(model).total * 6 // 10, max_drop=1.0, **FAST),
                      context(data)).run(model)
    assert result.stats["measure"] == "R^2 vs the labels" and result.stats["loss"] == "mse"
    assert result.stats["accuracy_reference"] > 0.9 and result.stats["drop"] <= 1.0


def test_whole_number_targets_of_a_regressor_are_regression_labels() -> None:
    """Targets that are whole numbers (counts, ages; stored as floats 20.0 they load as integers) for
    a single-output model were taken as class indices: "labels range over [8, 40] but the model has 2
    classes". They cannot index its output, so they are regression targets (float) with R^2 the measure."""
    teacher = mlp([10, 32, 1], seed=4)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 10)).astype(np.float32)
    y = np.round(20 + 5 * outputs(teacher, x)[:, 0]).astype(np.float64)
    data = Dataset.from_arrays({"x": x}, y, marks=marks(len(x)))
    assert data.labels is not None and data.labels.dtype.kind == "i" and data.labels.max() > 1
    model = mlp([10, 32, 1], seed=4)
    result = Sparsify(SparsifyOptions(budget=model_size(model).total * 8 // 10, max_drop=100.0, **FAST),
                      context(data)).run(model)
    assert result.stats["measure"] == "R^2 vs the labels" and result.stats["loss"] == "mse"


def test_autoencoder_without_labels_is_a_regressor_and_gnet_refuses_real_labels() -> None:
    model = mlp([32, 6, 32], seed=4)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 32)).astype(np.float32)
    data = Dataset.from_arrays({"x": x}, marks=marks(len(x)))
    result = Sparsify(SparsifyOptions(budget=model_size(model).total * 8 // 10, max_drop=5.0, **FAST),
                      context(data)).run(model)
    assert result.stats["measure"].startswith("R^2")
    real = Dataset.from_arrays({"x": x}, outputs(mlp([32, 6, 32], seed=4), x), marks=marks(len(x)))
    with pytest.raises(PassError, match="labels 'y' are real numbers"):
        AttachGnet(AttachGnetOptions(epochs=1), context(real)).run(mlp([32, 6, 32], seed=4))


def test_regression_labels_must_match_the_outputs_and_ce_needs_a_classifier() -> None:
    model = mlp([10, 32, 3], seed=3)
    x = np.random.default_rng(0).normal(size=(200, 10)).astype(np.float32)
    wrong = Dataset.from_arrays({"x": x}, np.zeros((200, 2)) + 0.5, marks=marks(200))
    with pytest.raises(DataError, match="hold 2 values per sample but the model has 3 outputs"):
        Sparsify(SparsifyOptions(budget=1000, **FAST), context(wrong)).run(model)
    floats = Dataset.from_arrays({"x": x}, np.linspace(0, 1, 200), marks=marks(200))
    with pytest.raises(DataError, match="is for classifiers"):
        Sparsify(SparsifyOptions(budget=1000, loss="ce", **FAST), context(floats)).run(model)
    with pytest.raises(DataError, match="real numbers"):
        Sparsify(SparsifyOptions(budget=1000, task="classify", **FAST), context(floats)).run(model)


def test_single_logit_classifier_trains_on_its_sigmoid() -> None:
    """One logit z is the two-class scores [0, z]: cross-entropy is the binary cross-entropy of
    sigmoid(z), the predicted class is z > 0, and distillation matches the sigmoids."""
    z = np.array([[2.0], [-1.0], [0.5]], dtype=np.float32)
    labels = np.array([1, 0, 0])
    loss, grad = cross_entropy(z, labels)
    p = 1 / (1 + np.exp(-z[:, 0].astype(np.float64)))
    assert loss == pytest.approx(-np.mean(np.where(labels == 1, np.log(p), np.log(1 - p))), rel=1e-5)
    np.testing.assert_allclose(grad[:, 0], (p - labels) / 3, rtol=1e-5)
    eps = 1e-3
    for i in range(3):
        bumped = z.astype(np.float64).copy()
        bumped[i, 0] += eps
        assert (cross_entropy(bumped, labels)[0] - loss) / eps == pytest.approx(grad[i, 0], abs=1e-3)
    assert distillation(z, z, 1.0)[0] == pytest.approx(0.0, abs=1e-7)
    model = mlp([6, 64, 32, 1], seed=6)
    x = np.random.default_rng(7).normal(size=(1000, 6)).astype(np.float32)
    data = Dataset.from_arrays({"x": x}, (outputs(model, x)[:, 0] > 0).astype(np.int64), marks=marks(1000))
    assert evaluate(build_net(model), data) == 1.0
    budget = model_size(model).total * 9 // 10
    result = Sparsify(SparsifyOptions(budget=budget, max_drop=5.0, **FAST), context(data)).run(model)
    assert result.stats["measure"] == "top-1 accuracy" and result.stats["loss"] == "ce"
    assert model_size(result.model).total <= budget and result.stats["drop"] <= 5.0


def test_one_hot_labels_become_indices_and_real_targets_stay() -> None:
    one_hot = np.eye(4)[[2, 0, 3]]
    np.testing.assert_array_equal(_labels(one_hot, None), [2, 0, 3])
    targets = np.array([[0.2, 1.5], [3.0, -1.0], [0.0, 1.0]])
    np.testing.assert_array_equal(_labels(targets, None), targets)


def test_cli_task_flag_reaches_both_passes_and_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--task regress` on the digits MLP without labels: both compressing passes get task=regress,
    the summary reports R^2 against the original's outputs within --max-drop."""
    digits = np.load(SAMPLES / "mlp_digits_sklearn.npz")
    data = tmp_path / "x.npz"
    np.savez(data, x=digits["x"], split=digits["split"])
    out = tmp_path / "b"
    code = main([str(SAMPLES / "mlp_digits_sklearn.onnx"), "-o", str(out), "--data", str(data), "--fram", "12KiB",
                 "--max-drop", "1.5", "--task", "regress", "--json"])
    text, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(text)
    assert doc["pipeline"].count("task=regress") == 2
    comp = doc["compression"]
    assert comp["measure"] == "R^2 vs the original model's outputs (no labels)" and comp["drop"] <= 1.5
    assert comp["size_after"] <= comp["budget"] < comp["size_before"]
