"""Net API: gradients injected at intermediate tensors, sub-networks, skipped frozen layers, errors."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from train_helpers import batch_inputs, check_gradients, make_model, rand, sample_data, sample_model

from transpiler.data import Dataset
from transpiler.errors import DataError, UnsupportedError

from passes.train import TrainError, build_net, fit


def _feature_tensor(name: str, op: str) -> str:
    net = build_net(sample_model(name))
    return next(layer.output for layer in net.layers if layer.op_type == op)


def test_gradients_injected_at_an_intermediate_tensor_match_finite_differences() -> None:
    model = sample_model("tiny_residual")
    concat = _feature_tensor("tiny_residual", "Concat")
    net = build_net(model, dtype=np.float64)
    feeds = {k: v.astype(np.float64) for k, v in sample_data("tiny_residual", model).take(3).inputs.items()}
    assert check_gradients(net, feeds, seed=4, outputs=[concat, "output"]) == []
    assert check_gradients(net, feeds, seed=5, outputs=[concat]) == []


def test_a_sub_network_from_a_feature_tensor_matches_the_whole_network() -> None:
    model = sample_model("tiny_residual")
    concat = _feature_tensor("tiny_residual", "Concat")
    whole = build_net(model)
    head = build_net(model, inputs=[concat], outputs=["output"])
    assert head.inputs == {concat: whole.shape(concat)}
    assert set(head.param_names) == {name for name in whole.param_names if "fc" in name}
    assert [layer.op_type for layer in head.layers] == ["MaxPool", "AveragePool", "Flatten", "Gemm"]
    feeds = sample_data("tiny_residual", model).take(5).inputs
    values = whole.forward(feeds, [concat, "output"])
    grad = np.random.default_rng(0).standard_normal(values["output"].shape).astype(np.float32)
    whole_grads = whole.backward({"output": grad}, wrt=[concat])
    out = head.forward({concat: values[concat]})
    np.testing.assert_allclose(out["output"], values["output"], rtol=1e-6, atol=1e-6)
    head_grads = head.backward({"output": grad}, wrt=[concat])
    np.testing.assert_allclose(head_grads.tensors[concat], whole_grads.tensors[concat], rtol=1e-5, atol=1e-6)
    for name in head.param_names:
        np.testing.assert_allclose(head_grads.params[name], whole_grads.params[name], rtol=1e-5, atol=1e-6)


def test_backward_skips_layers_whose_parameters_are_all_frozen() -> None:
    model = sample_model("lenet5_mnist")
    net = build_net(model)
    head = [name for name in net.param_names if "fc3" in name]
    for layer in net.layers:
        if layer.op_type == "Conv":
            object.__setattr__(layer, "op", _Exploding(layer.op))
    feeds = sample_data("lenet5_mnist", model).take(4).inputs
    logits = net.forward(feeds)["logits"]
    grads = net.backward({"logits": np.ones_like(logits)}, frozen=set(net.param_names) - set(head))
    assert sorted(grads.params) == sorted(head)
    with pytest.raises(RuntimeError, match="backward of a frozen conv"):
        net.backward({"logits": np.ones_like(logits)})


class _Exploding:
    """Wraps an op: forward as usual, backward raises."""

    def __init__(self, op: object) -> None:
        self.op = op

    def forward(self, args: list, keep: bool) -> tuple:
        return self.op.forward(args, keep)  # type: ignore[attr-defined]

    def backward(self, dy: np.ndarray, cache: object, need: list) -> list:
        raise RuntimeError("backward of a frozen conv")


def test_forward_returns_intermediates_and_runs_only_what_they_need() -> None:
    model = sample_model("lenet5_mnist")
    net = build_net(model)
    first_conv = net.layers[0].output
    feeds = sample_data("lenet5_mnist", model).take(2).inputs
    for layer in net.layers[1:]:
        object.__setattr__(layer, "op", _Exploding(None))  # would fail if run
    values = net.forward(feeds, [first_conv, "input"])
    assert values[first_conv].shape == (2, 6, 28, 28)
    np.testing.assert_array_equal(values["input"], feeds["input"])


def test_unsupported_nodes_are_all_named_in_one_error() -> None:
    model = make_model([helper.make_node("Gemm", ["x", "W"], ["h"], name="fc", transB=1),
                        helper.make_node("Log", ["h"], ["s"], name="gate"),
                        helper.make_node("Sqrt", ["s"], ["y"], name="squash")],
                       {"x": [1, 3]}, "y", {"W": rand(4, 3)})
    with pytest.raises(UnsupportedError) as info:
        build_net(model)
    text = info.value.render()
    assert "2 node(s)" in text and "'gate' (Log)" in text and "'squash' (Sqrt)" in text
    assert "normalize" in text


def test_misuse_raises_errors_with_hints() -> None:
    model = sample_model("mlp_digits_sklearn")
    data = sample_data("mlp_digits_sklearn", model).take(10)
    net = build_net(model)
    with pytest.raises(TrainError, match="backward before a forward"):
        net.backward({net.logits: np.zeros((1, 10))})
    with pytest.raises(DataError, match="expected \\[N, 64\\]"):
        net.forward({"input": np.zeros((2, 65), np.float32)})
    with pytest.raises(DataError, match="missing: input"):
        net.forward({"x": np.zeros((2, 64), np.float32)})
    with pytest.raises(TrainError, match="no tensor named 'nope'"):
        net.forward(data.inputs, ["nope"])
    with pytest.raises(TrainError, match="frozen names that are not parameters"):
        fit(net, data, epochs=1, frozen={"nope"})
    with pytest.raises(TrainError, match="every parameter is frozen"):
        fit(net, data, epochs=1, frozen=set(net.param_names))
    with pytest.raises(TrainError, match="needs labels") as info:
        fit(net, Dataset.from_arrays(data.inputs), epochs=1)
    assert info.value.hint and "distill" in info.value.hint
    with pytest.raises(TrainError, match="teacher's logits"):
        fit(net, data, epochs=1, loss="distill")
    with pytest.raises(TrainError, match="teacher logits of shape"):
        fit(net, data, epochs=1, loss="distill", teacher_logits=np.zeros((3, 10)))
    with pytest.raises(TrainError, match="no parameter named"):
        net.set_params({"nope": np.zeros(1)})
    with pytest.raises(TrainError, match="has shape"):
        net.set_params({net.param_names[0]: np.zeros(1)})
    other = sample_model("tiny_conv1d")
    with pytest.raises(TrainError, match="no initializer"):
        net.write_back(other)
    net.forward(data.inputs)
    with pytest.raises(TrainError, match="gradient for"):
        net.backward({net.logits: np.zeros((3, 10))})


def test_float64_networks_compute_in_float64() -> None:
    model = sample_model("tiny_conv1d")
    net = build_net(model, dtype=np.float64)
    out = net.forward(batch_inputs(net, 2, seed=0))["output"]
    assert out.dtype == np.float64
    assert all(v.dtype == np.float64 for v in net.params().values())


def test_a_cut_that_leaves_a_branch_without_input_is_an_error() -> None:
    model = sample_model("tiny_residual")
    add = _feature_tensor("tiny_residual", "Add")
    with pytest.raises(TrainError, match="depend on tensor\\(s\\) input that are not inputs"):
        build_net(model, inputs=[add], outputs=["output"])
    net = build_net(model, inputs=[add, "input"], outputs=["output"], logits=add)
    assert net.logits == add and list(net.inputs) == [add, "input"]
    with pytest.raises(TrainError, match="no activation tensor named 'nope'"):
        build_net(model, outputs=["nope"])
