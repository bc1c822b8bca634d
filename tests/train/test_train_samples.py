"""The engine on the sample models (after normalize): forward == onnxruntime, logits choice, accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from train_helpers import SAMPLE_NAMES, ort_batch, sample_data, sample_model

from passes.train import build_net, evaluate, predict_logits


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_forward_matches_onnxruntime_on_sample_data(name: str) -> None:
    model = sample_model(name)
    data = sample_data(name, model).take(24)
    net = build_net(model)
    ours = net.forward(data.inputs)
    ref = ort_batch(model, data.inputs)
    for output in net.outputs:
        scale = float(np.abs(ref[output]).max())
        np.testing.assert_allclose(ours[output], ref[output], rtol=1e-4, atol=1e-5 * max(1.0, scale),
                                   err_msg=f"{name}: {output}")


@pytest.mark.parametrize("name", ["tiny_residual", "lenet5_mnist", "cnn_digits"])
def test_every_intermediate_tensor_matches_onnxruntime(name: str) -> None:
    model = sample_model(name)
    data = sample_data(name, model).take(4)
    net = build_net(model)
    names = [layer.output for layer in net.layers]
    ours = net.forward(data.inputs, names, keep=False)
    ref = ort_batch(model, data.inputs, names)
    for tensor in names:
        scale = float(np.abs(ref[tensor]).max())
        np.testing.assert_allclose(ours[tensor], ref[tensor], rtol=1e-4, atol=1e-5 * max(1.0, scale),
                                   err_msg=f"{name}: {tensor}")


@pytest.mark.parametrize("name, softmax", [("lenet5_mnist", False), ("mlp_mnist_big", False), ("cnn_digits", True),
                                            ("mlp_digits_sklearn", True), ("tiny_conv1d", False)])
def test_logits_are_the_pre_softmax_tensor(name: str, softmax: bool) -> None:
    model = sample_model(name)
    net = build_net(model)
    last = net.layers[-1]
    if softmax:
        assert last.op_type == "Softmax" and net.logits == last.inputs[0] != net.outputs[0]
    else:
        assert net.logits == net.outputs[0]


@pytest.mark.parametrize("name", ["lenet5_mnist", "mlp_mnist_big", "cnn_digits", "mlp_digits_sklearn"])
def test_accuracy_equals_onnxruntime_accuracy(name: str) -> None:
    model = sample_model(name)
    data = sample_data(name, model)
    net = build_net(model)
    ref = ort_batch(model, data.inputs)[net.outputs[0]].argmax(axis=1)
    assert data.labels is not None
    assert evaluate(net, data) == pytest.approx(float((ref == data.labels).mean()), abs=1.5 / len(data))
    assert evaluate(net, data) > 0.9
    logits = predict_logits(net, data, batch_size=97)
    assert logits.shape == (len(data), 10) and logits.dtype == np.float32
