"""`normalize` on the shipped sample models: same outputs on their test data, normal form."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from normalize_helpers import SAMPLES, assert_same_outputs, load, ops, ort_run, run_pass

from passes.check_supported import check_normal_form
from passes.classifier_tail import ANNOTATION, TARGET
from passes.normalize import Normalize

NAMES = ["lenet5_mnist", "mlp_mnist_big", "cnn_digits", "mlp_digits_sklearn", "tiny_conv1d", "tiny_residual"]


@pytest.mark.parametrize("name", NAMES)
def test_sample_normalizes(name: str) -> None:
    path = SAMPLES / f"{name}.onnx"
    data = SAMPLES / f"{name}.npz"
    if not path.exists() or not data.exists():
        pytest.skip(f"{path.name} not present")
    proto = onnx.load(str(path))
    x = np.load(data)["x"][:3].astype(np.float32)
    model = run_pass(Normalize, load(proto, str(path))).model
    assert check_normal_form(model) == []
    after = model.to_proto()
    onnx.checker.check_model(after)
    input_name = proto.graph.input[0].name
    for i in range(len(x)):
        assert_same_outputs(proto, after, {input_name: x[i:i + 1]}, rtol=1e-4, atol=1e-5)
    assert "BatchNormalization" not in ops(model) and "ReduceMean" not in ops(model)


def test_sklearn_sample_keeps_probabilities_and_records_labels() -> None:
    path = SAMPLES / "mlp_digits_sklearn.onnx"
    if not path.exists():
        pytest.skip("sample not present")
    proto = onnx.load(str(path))
    model = run_pass(Normalize, load(proto, str(path))).model
    tail = model.annotations.get(TARGET, ANNOTATION)
    assert tail["labels"] == list(range(10)) and tail["scores_output"] == "probabilities"
    x = np.load(SAMPLES / "mlp_digits_sklearn.npz")["x"][:1].astype(np.float32)
    before = ort_run(proto, {"input": x})
    after = ort_run(model.to_proto(), {"input": x})
    assert tail["labels"][int(np.argmax(after["probabilities"]))] == int(before[tail["label_output"]][0])
