"""Labels given as a classifier's class values (scikit-learn's ``classes_``: strings, or integers
that are not 0..K-1) rather than as indices: compression trains on them and verify measures accuracy
with them, through the class labels the model records (transpiler.data.class_indices)."""

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

NAMES = np.array(["cat", "dog", "emu"])


def _mlp(labels: np.ndarray, hidden: int) -> tuple[Any, np.ndarray]:
    """An MLPClassifier fitted on ``labels`` (one per row of the seeded data) and its inputs."""
    pytest.importorskip("sklearn")
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from sklearn.datasets import make_classification
    from sklearn.neural_network import MLPClassifier

    x, y = make_classification(n_samples=labels.size, n_features=8, n_informative=6, n_classes=3,
                               n_clusters_per_class=1, random_state=2)
    x = x.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(hidden_layer_sizes=(hidden,), max_iter=400, random_state=0).fit(x, labels[y])
        proto = to_onnx(model, x[:1], options={id(model): {"zipmap": False}}, target_opset={"": 13, "ai.onnx.ml": 1})
    return proto, x, y


@pytest.mark.parametrize("classes", [NAMES, np.array([3, 5, 7])], ids=["strings", "ints-not-indices"])
def test_verify_measures_accuracy_on_class_values(classes: np.ndarray, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import onnx
    import onnxruntime as ort

    proto, x, y = _mlp(classes[np.arange(300) % 3], 16)
    onnx.save(proto, str(tmp_path / "m.onnx"))
    np.savez(tmp_path / "d.npz", x=x, y=classes[y])
    assert main([str(tmp_path / "m.onnx"), "-o", str(tmp_path / "out"), "--data", str(tmp_path / "d.npz")]) == 0, \
        capsys.readouterr().err
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "out"), "--data", str(tmp_path / "d.npz"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    predicted = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"X": x})[0].reshape(-1)
    want = float(np.mean(predicted == classes[y]))
    rated = [r for r in doc["outputs"] if "accuracy_onnxruntime" in r]
    assert rated, doc
    for row in rated:
        assert row["accuracy_onnxruntime"] == pytest.approx(want)
        assert abs(row["accuracy_c"] - want) <= 0.01


def test_compression_trains_on_string_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import onnx

    proto, x, y = _mlp(NAMES[np.arange(600) % 3], 96)
    onnx.save(proto, str(tmp_path / "m.onnx"))
    np.savez(tmp_path / "d.npz", x=x, y=NAMES[y])
    code = main([str(tmp_path / "m.onnx"), "-o", str(tmp_path / "out"), "--data", str(tmp_path / "d.npz"),
                 "--fram", "8KiB", "--max-drop", "2", "--json"])
    text = capsys.readouterr()
    assert code == 0, text.err
    compression = json.loads(text.out)["compression"]
    assert compression["measure"] == "top-1 accuracy"            # measured against the labels
    assert compression["size_after"] <= compression["budget"]


def test_a_label_that_is_no_class_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import onnx

    proto, x, y = _mlp(NAMES[np.arange(600) % 3], 96)
    onnx.save(proto, str(tmp_path / "m.onnx"))
    np.savez(tmp_path / "d.npz", x=x, y=np.where(y == 2, "yak", NAMES[y]))
    assert main([str(tmp_path / "m.onnx"), "-o", str(tmp_path / "out"), "--data", str(tmp_path / "d.npz"),
                 "--fram", "8KiB"]) == 2
    err = capsys.readouterr().err
    assert "label 'yak' in 'y' is not one of the model's 3 classes (cat, dog, emu)" in err
    assert not (tmp_path / "out").exists()
