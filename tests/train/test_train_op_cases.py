"""Every supported op on its own: forward == onnxruntime on a batch, gradients == finite differences."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from onnx import helper

from train_helpers import batch_inputs, check_gradients, make_model, ort_batch, rand

from transpiler.model import OnnxModel

from passes.train import build_net
from passes.train.nodes import SUPPORTED_OPS


def _conv2d_grouped() -> OnnxModel:
    return make_model([helper.make_node("Conv", ["x", "W", "B"], ["y"], name="conv", kernel_shape=[3, 2],
                                        strides=[2, 1], pads=[1, 0, 2, 1], dilations=[1, 2], group=2)],
                      {"x": [1, 4, 7, 6]}, "y", {"W": rand(6, 2, 3, 2, seed=1), "B": rand(6, seed=2)})


def _conv2d_depthwise() -> OnnxModel:
    return make_model([helper.make_node("Conv", ["x", "W"], ["y"], name="dw", kernel_shape=[3, 3],
                                        strides=[2, 2], pads=[1, 1, 1, 1], dilations=[1, 1], group=3)],
                      {"x": [1, 3, 6, 5]}, "y", {"W": rand(6, 1, 3, 3, seed=3)})


def _conv2d_depthwise_direct() -> OnnxModel:
    # one output channel per input channel: run without columns; kernel positions that see only
    # padding are skipped: a 5x5 kernel over a 2x3 map with pads of 2 (rows 0 and 4 of the kernel),
    # then a dilated 3x3 with pads of 2 to a 1x1 output (all but two positions)
    return make_model([helper.make_node("Conv", ["x", "W", "B"], ["h"], name="dw1", kernel_shape=[5, 5],
                                        strides=[1, 1], pads=[2, 2, 2, 2], dilations=[1, 1], group=4),
                       helper.make_node("Conv", ["h", "W2"], ["y"], name="dw2", kernel_shape=[3, 3],
                                        strides=[3, 3], pads=[2, 2, 2, 2], dilations=[2, 2], group=4)],
                      {"x": [1, 4, 2, 3]}, "y", {"W": rand(4, 1, 5, 5, seed=40), "B": rand(4, seed=41),
                                                 "W2": rand(4, 1, 3, 3, seed=42)})


def _conv1d_depthwise() -> OnnxModel:
    return make_model([helper.make_node("Conv", ["x", "W", "B"], ["y"], name="dw1d", kernel_shape=[3],
                                        strides=[2], pads=[2, 1], dilations=[2], group=3)],
                      {"x": [1, 3, 9]}, "y", {"W": rand(3, 1, 3, seed=43), "B": rand(3, seed=44)})


def _conv1d() -> OnnxModel:
    return make_model([helper.make_node("Conv", ["x", "W", "B"], ["y"], name="conv1d", kernel_shape=[3],
                                        strides=[2], pads=[2, 1], dilations=[2], group=1)],
                      {"x": [1, 2, 11]}, "y", {"W": rand(3, 2, 3, seed=4), "B": rand(3, seed=5)})


def _gemm() -> OnnxModel:
    return make_model([helper.make_node("Gemm", ["x", "W", "B"], ["y"], name="fc", transB=1)],
                      {"x": [1, 5]}, "y", {"W": rand(4, 5, seed=6), "B": rand(4, seed=7)})


def _gemm_odd() -> OnnxModel:
    return make_model([helper.make_node("Gemm", ["x", "W", "B"], ["y"], name="fc", alpha=0.5, beta=2.0, transB=0)],
                      {"x": [1, 5]}, "y", {"W": rand(5, 3, seed=8), "B": rand(1, 3, seed=9)})


def _activations() -> OnnxModel:
    return make_model([helper.make_node("Gemm", ["x", "W"], ["h"], name="fc", transB=1),
                       helper.make_node("Relu", ["h"], ["r"], name="relu"),
                       helper.make_node("Clip", ["h", "lo", "hi"], ["c"], name="clip"),
                       helper.make_node("LeakyRelu", ["h"], ["l"], name="leaky", alpha=0.1),
                       helper.make_node("Add", ["r", "c"], ["s"], name="add1"),
                       helper.make_node("Add", ["s", "l"], ["y"], name="add2")],
                      {"x": [1, 6]}, "y", {"W": rand(8, 6, seed=10), "lo": np.float32(-0.5), "hi": np.float32(0.7)})


def _sigmoid_log_softmax() -> OnnxModel:
    # inside the network here (a final one is dropped: the engine trains on its input), so that the
    # forward and the gradient of both are checked
    return make_model([helper.make_node("Gemm", ["x", "W", "B"], ["h"], name="fc", transB=1),
                       helper.make_node("Sigmoid", ["h"], ["s"], name="sigmoid"),
                       helper.make_node("LogSoftmax", ["h"], ["l"], name="log_softmax", axis=-1),
                       helper.make_node("Add", ["s", "l"], ["y"], name="add")],
                      {"x": [1, 6]}, "y", {"W": rand(5, 6, seed=23), "B": rand(5, seed=24)})


def _elementwise() -> OnnxModel:
    # what element-wise regions are made of (passes/elementwise.py): the functions lower turns into
    # lut steps, and products, quotients and powers of activations (SiLU, the GELU forms)
    n = helper.make_node
    nodes = [n("Gemm", ["x", "W", "B"], ["h"], name="fc", transB=1),
             n("Tanh", ["h"], ["t"], name="tanh"), n("HardSigmoid", ["h"], ["hs"], name="hsig", alpha=0.3, beta=0.4),
             n("HardSwish", ["h"], ["hw"], name="hswish"), n("Erf", ["h"], ["e"], name="erf"),
             n("Gelu", ["h"], ["g"], name="gelu"), n("Gelu", ["h"], ["gt"], name="gelu_tanh", approximate="tanh"),
             n("Elu", ["h"], ["el"], name="elu", alpha=0.7), n("Softplus", ["h"], ["sp"], name="softplus"),
             n("Softsign", ["h"], ["ss"], name="softsign"), n("Mish", ["h"], ["mi"], name="mish"),
             n("Mul", ["h", "t"], ["m"], name="mul"), n("Sub", ["m", "e"], ["d"], name="sub"),
             n("Add", ["sp", "one"], ["sp1"], name="add_one"), n("Div", ["d", "sp1"], ["q"], name="div"),
             n("Pow", ["hs", "three"], ["p"], name="pow")]
    outs = ["q", "p", "hw", "g", "gt", "el", "ss", "mi"]
    prev = outs[0]
    for i, o in enumerate(outs[1:]):
        nodes.append(n("Add", [prev, o], [f"s{i}"], name=f"sum{i}"))
        prev = f"s{i}"
    nodes[-1].output[0] = "y"
    return make_model(nodes, {"x": [1, 6]}, "y", {"W": rand(5, 6, seed=25), "B": rand(5, seed=26),
                                                  "one": np.float32(1.0), "three": np.float32(3.0)}, opset=20)


def _maxpool_ceil() -> OnnxModel:
    return make_model([helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[3, 2], strides=[2, 2],
                                        pads=[1, 0, 1, 1], dilations=[1, 2], ceil_mode=1)],
                      {"x": [1, 2, 8, 7]}, "y", {})


def _avgpool_include_pad() -> OnnxModel:
    return make_model([helper.make_node("AveragePool", ["x"], ["y"], name="ap", kernel_shape=[3, 3], strides=[2, 2],
                                        pads=[1, 1, 1, 0], count_include_pad=1, ceil_mode=1)],
                      {"x": [1, 2, 7, 7]}, "y", {})


def _avgpool_exclude_pad_1d() -> OnnxModel:
    return make_model([helper.make_node("AveragePool", ["x"], ["y"], name="ap1d", kernel_shape=[3], strides=[2],
                                        pads=[1, 2], count_include_pad=0, ceil_mode=0)],
                      {"x": [1, 3, 9]}, "y", {})


def _maxpool_1d() -> OnnxModel:
    return make_model([helper.make_node("MaxPool", ["x"], ["y"], name="mp1d", kernel_shape=[2], strides=[1],
                                        pads=[1, 0], dilations=[2], ceil_mode=0)],
                      {"x": [1, 2, 8]}, "y", {})


def _gap_reshape_softmax() -> OnnxModel:
    return make_model([helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", kernel_shape=[1, 1],
                                        strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1], group=1),
                       helper.make_node("GlobalAveragePool", ["c"], ["g"], name="gap"),
                       helper.make_node("Reshape", ["g", "shape"], ["f"], name="reshape"),
                       helper.make_node("Softmax", ["f"], ["y"], name="softmax", axis=-1)],
                      {"x": [1, 2, 5, 4]}, "y", {"W": rand(4, 2, 1, 1, seed=11), "B": rand(4, seed=12),
                                                 "shape": np.array([1, 4], np.int64)})


def _affine_concat_flatten() -> OnnxModel:
    return make_model([helper.make_node("Mul", ["x", "scale"], ["m"], name="mul"),
                       helper.make_node("Add", ["shift", "m"], ["a"], name="add"),
                       helper.make_node("Add", ["a", "elem"], ["e"], name="add_elem"),
                       helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", kernel_shape=[3, 3],
                                        strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1], group=1),
                       helper.make_node("Concat", ["e", "c"], ["cat"], name="concat", axis=1),
                       helper.make_node("Flatten", ["cat"], ["f"], name="flatten", axis=1),
                       helper.make_node("Gemm", ["f", "fcW", "fcB"], ["y"], name="fc", transB=1)],
                      {"x": [1, 3, 4, 4]}, "y",
                      {"scale": rand(3, 1, 1, seed=13), "shift": rand(1, 3, 1, 1, seed=14),
                       "elem": rand(1, 3, 4, 4, seed=15), "W": rand(2, 3, 3, 3, seed=16), "B": rand(2, seed=17),
                       "fcW": rand(3, 80, seed=18, scale=0.2), "fcB": rand(3, seed=19)})


def _residual_1d_vector_affine() -> OnnxModel:
    return make_model([helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", kernel_shape=[3], strides=[1],
                                        pads=[1, 1], dilations=[1], group=1),
                       helper.make_node("Relu", ["c"], ["r"], name="relu"),
                       helper.make_node("Add", ["x", "r"], ["s"], name="residual"),
                       helper.make_node("Flatten", ["s"], ["f"], name="flatten", axis=1),
                       helper.make_node("Mul", ["f", "k"], ["y"], name="mul_vec")],
                      {"x": [1, 2, 6]}, "y", {"W": rand(2, 2, 3, seed=20), "B": rand(2, seed=21),
                                              "k": rand(1, 12, seed=22)})


def _transposes() -> OnnxModel:
    # a channel-last input permuted to channels-first, a conv, and its map's height and width swapped
    return make_model([helper.make_node("Transpose", ["x"], ["t"], name="to_nchw", perm=[0, 3, 1, 2]),
                       helper.make_node("Conv", ["t", "W", "B"], ["c"], name="conv", kernel_shape=[3, 3],
                                        strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1], group=1),
                       helper.make_node("Transpose", ["c"], ["y"], name="swap_hw", perm=[0, 1, 3, 2])],
                      {"x": [1, 4, 5, 3]}, "y", {"W": rand(2, 3, 3, 3, seed=23), "B": rand(2, seed=24)})


def _upsampling() -> OnnxModel:
    # a nearest Resize x2 / x3 of a conv's map, then a transposed conv's zero insertion (1-D) and its conv
    return make_model([helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", kernel_shape=[3, 3],
                                        strides=[1, 1], pads=[1, 1, 1, 1], dilations=[1, 1], group=1),
                       helper.make_node("Resize", ["c", "", "scales"], ["u"], name="nearest", mode="nearest",
                                        coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
                       helper.make_node("Reshape", ["u", "shape"], ["v"], name="to_1d"),
                       helper.make_node("ConvTranspose", ["v", "ones"], ["z"], name="zeros", strides=[2],
                                        kernel_shape=[1], group=2, pads=[0, 0], dilations=[1]),
                       helper.make_node("Conv", ["z", "W2", "B2"], ["y"], name="conv_t", kernel_shape=[3],
                                        strides=[1], pads=[2, 2], dilations=[1], group=1)],
                      {"x": [1, 3, 2, 3]}, "y", {"W": rand(2, 3, 3, 3, seed=25), "B": rand(2, seed=26),
                                                 "scales": np.array([1, 1, 2, 3], np.float32),
                                                 "shape": np.array([1, 2, 36], np.int64),
                                                 "ones": np.ones((2, 1, 1), np.float32),
                                                 "W2": rand(3, 2, 3, seed=27), "B2": rand(3, seed=28)})


def _sequence_steps() -> OnnxModel:
    # what unroll-recurrent leaves: time steps of a [1, T, F] sequence (Gather of one index, of two,
    # a strided Slice) and a gate product of two activations
    return make_model([helper.make_node("Gather", ["x", "t1"], ["s1"], name="step1", axis=1),
                       helper.make_node("Gather", ["x", "t02"], ["s02"], name="steps02", axis=-2),
                       helper.make_node("Slice", ["x", "starts", "ends", "axes", "steps"], ["sl"], name="odd"),
                       helper.make_node("Sigmoid", ["s1"], ["g"], name="gate"),
                       helper.make_node("Gemm", ["s1", "W", "B"], ["h"], name="fc", transB=1),
                       helper.make_node("Mul", ["g", "h"], ["p"], name="gated"),
                       helper.make_node("Add", ["s02", "sl"], ["q"], name="add"),
                       helper.make_node("Flatten", ["q"], ["f"], name="flatten", axis=1),
                       helper.make_node("Concat", ["p", "f"], ["y"], name="cat", axis=1)],
                      {"x": [1, 5, 3]}, "y", {"t1": np.array(-4, np.int64), "t02": np.array([0, 2], np.int64),
                                              "starts": np.array([1], np.int64), "ends": np.array([5], np.int64),
                                              "axes": np.array([1], np.int64), "steps": np.array([2], np.int64),
                                              "W": rand(3, 3, seed=29), "B": rand(3, seed=30)})


def _layer_norm() -> OnnxModel:
    # over the last axis of a sequence [1, T, D] and of a vector [1, N] (no bias), opset 17
    return make_model([helper.make_node("LayerNormalization", ["x", "g", "b"], ["n"], name="ln", axis=-1,
                                        epsilon=1e-3),
                       helper.make_node("Flatten", ["n"], ["f"], name="flatten", axis=1),
                       helper.make_node("Gemm", ["f", "W", "B"], ["h"], name="fc", transB=1),
                       helper.make_node("LayerNormalization", ["h", "g2"], ["y"], name="ln2", axis=1)],
                      {"x": [1, 3, 4]}, "y", {"g": rand(4, seed=31), "b": rand(4, seed=32), "W": rand(5, 12, seed=33),
                                              "B": rand(5, seed=34), "g2": rand(5, seed=35)}, opset=17)


def _attention() -> OnnxModel:
    # one head over [1, T, d]: scores, a Softmax over the last axis inside the network, weighted values
    return make_model([helper.make_node("Transpose", ["x"], ["xt"], name="kt", perm=[0, 2, 1]),
                       helper.make_node("MatMul", ["x", "xt"], ["s"], name="scores"),
                       helper.make_node("Softmax", ["s"], ["p"], name="probs", axis=-1),
                       helper.make_node("Add", ["x", "c"], ["v"], name="values"),
                       helper.make_node("MatMul", ["p", "v"], ["o"], name="weighted"),
                       helper.make_node("Add", ["o", "x"], ["y"], name="residual")],
                      {"x": [1, 4, 3]}, "y", {"c": rand(3, seed=36)}, opset=17)


CASES: dict[str, Callable[[], OnnxModel]] = {
    "conv2d-grouped": _conv2d_grouped, "conv2d-depthwise": _conv2d_depthwise,
    "conv2d-depthwise-direct": _conv2d_depthwise_direct, "conv1d-depthwise": _conv1d_depthwise, "conv1d": _conv1d, "gemm": _gemm,
    "gemm-alpha-beta-transB0": _gemm_odd, "activations": _activations, "maxpool-ceil-dilated": _maxpool_ceil,
    "avgpool-include-pad-ceil": _avgpool_include_pad, "avgpool-1d": _avgpool_exclude_pad_1d,
    "maxpool-1d": _maxpool_1d, "gap-reshape-softmax": _gap_reshape_softmax,
    "affine-concat-flatten": _affine_concat_flatten, "residual-1d": _residual_1d_vector_affine,
    "sigmoid-log-softmax": _sigmoid_log_softmax, "elementwise": _elementwise,
    "transposes": _transposes, "upsampling": _upsampling, "sequence-steps": _sequence_steps,
    "layer-norm": _layer_norm, "attention": _attention,
}


def test_the_cases_cover_every_supported_op() -> None:
    used = {node.op for make in CASES.values() for node in make().graph.nodes}
    assert used == set(SUPPORTED_OPS)


@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_matches_onnxruntime_on_a_batch(case: str) -> None:
    model = CASES[case]()
    net = build_net(model, train_affine=True)
    feeds = batch_inputs(net, 5, seed=1)
    ours = net.forward(feeds)
    ref = ort_batch(model, feeds)
    for name in net.outputs:
        np.testing.assert_allclose(ours[name], ref[name], rtol=1e-5, atol=1e-5, err_msg=f"{case}: {name}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_match_finite_differences(case: str) -> None:
    net = build_net(CASES[case](), train_affine=True, dtype=np.float64)
    assert net.param_names or case.startswith(("maxpool", "avgpool"))
    problems = check_gradients(net, batch_inputs(net, 3, seed=2), seed=3)
    assert problems == []


def test_affine_constants_are_parameters_only_when_asked() -> None:
    model = _affine_concat_flatten()
    assert set(build_net(model).param_names) == {"W", "B", "fcW", "fcB"}
    assert set(build_net(model, train_affine=True).param_names) == {"scale", "shift", "elem", "W", "B", "fcW", "fcB"}


@pytest.mark.parametrize("op", ["Sigmoid", "LogSoftmax"])
def test_logits_are_the_input_of_a_final_sigmoid_or_log_softmax(op: str) -> None:
    # what lower keeps of such a model (it drops the final activation, like a final Softmax)
    model = make_model([helper.make_node("Gemm", ["x", "W"], ["h"], name="fc", transB=1),
                        helper.make_node(op, ["h"], ["y"], name="final")], {"x": [1, 4]}, "y", {"W": rand(3, 4)})
    net = build_net(model)
    assert net.logits == "h" and net.outputs == ["y"]


def test_depthwise_kernel_positions_that_see_only_padding_are_skipped() -> None:
    # the direct depthwise form runs only the kernel positions whose window meets the input
    net = build_net(_conv2d_depthwise_direct())
    taps = {layer.name: [ij for _, ij in layer.op.taps] for layer in net.layers}
    assert taps["dw1"] == [(i, j) for i in range(1, 4) for j in range(5)]
    assert taps["dw2"] == [(1, 1), (1, 2)]


def test_float32_erf_is_vectorised_and_within_float32_rounding_of_math_erf(monkeypatch: pytest.MonkeyPatch) -> None:
    # training runs float32: erf (Erf, exact Gelu) must not call math.erf once per value
    import math

    from passes.train import ops

    x = np.concatenate([np.linspace(-6, 6, 20001), np.geomspace(1e-8, 0.6, 2001), -np.geomspace(1e-8, 0.6, 201),
                        [0.0]]).astype(np.float32)
    reference = np.array([math.erf(float(v)) for v in x])
    monkeypatch.setattr(ops, "_erf_exact", lambda _: pytest.fail("float32 erf went through math.erf"))
    got = ops._erf(x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, reference, rtol=1e-6, atol=1e-30)
