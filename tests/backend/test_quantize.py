"""The `quantize` pass: format rules, calibration ranges from onnxruntime, data-free fallback."""

from __future__ import annotations

import math
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from passes.quantize import (NO_DATA_WARNING, Quantize, QuantizeOptions, act_frac_bits,
                             is_per_channel, limit_weight_formats, per_channel_values,
                             weight_frac_bits, weight_formats)
from transpiler import ort
from transpiler.data import Dataset
from transpiler.errors import DataError, UnsupportedError
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

RNG = np.random.default_rng(0)
W = (RNG.standard_normal((4, 2, 3, 3)) * 0.3).astype(np.float32)
W[2] = 0.0                                        # an all-zero output channel
B = (RNG.standard_normal(4) * 0.1).astype(np.float32)
G = (RNG.standard_normal((3, 4 * 4 * 4)) * 0.05).astype(np.float32)
S = np.array([0.5, 2.0, -4.0, 1e-3], dtype=np.float32).reshape(4, 1, 1)
E = (RNG.standard_normal((4, 4, 4)) * 7).astype(np.float32)


def small_model() -> OnnxModel:
    """x[1,2,8,8] -> Conv(4, 3x3, stride 2, pad 1) -> Relu -> Mul(per-channel) -> Add(per-element)
    -> Flatten -> Gemm(3)."""
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", kernel_shape=[3, 3],
                         strides=[2, 2], pads=[1, 1, 1, 1], dilations=[1, 1], group=1),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Mul", ["r", "S"], ["m"], name="mul"),
        helper.make_node("Add", ["m", "E"], ["a"], name="add"),
        helper.make_node("Flatten", ["a"], ["f"], name="flat", axis=1),
        helper.make_node("Gemm", ["f", "G"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(a, n) for a, n in ((W, "W"), (B, "B"), (G, "G"), (S, "S"), (E, "E"))])
    proto = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    return OnnxModel.from_proto(proto)


def data(n: int = 50, seed: int = 1) -> Dataset:
    x = np.random.default_rng(seed).uniform(-1.0, 3.0, size=(n, 2, 8, 8)).astype(np.float32)
    return Dataset.from_arrays({"x": x})


# -- the rules ---------------------------------------------------------------------------------

def test_act_frac_bits_is_the_largest_fitting_format() -> None:
    assert act_frac_bits(1.0, 1.0) == 14          # 1 * 2^15 = 32768 > 32767
    assert act_frac_bits(32767 / 2**14, 1.0) == 14  # exactly fits
    assert act_frac_bits(32768 / 2**14, 1.0) == 13
    assert act_frac_bits(0.5, 1.25) == 15         # 0.625 * 2^15 = 20480
    assert act_frac_bits(0.0) == 15
    assert act_frac_bits(1e-12) == 30             # clamped
    assert act_frac_bits(1e9) == -8               # clamped
    for m in (0.013, 0.7, 3.3, 100.0, 5000.0):
        for margin in (1.0, 1.25, 2.0):
            f = act_frac_bits(m, margin)
            assert m * margin * 2.0 ** f <= 32767 < m * margin * 2.0 ** (f + 1)


def test_weight_frac_bits_counts_rounding() -> None:
    # 32767.4 / 2^15 rounds to 32767 at f=15, fits; 32767.5 / 2^15 rounds half up to 32768: f=14
    assert weight_frac_bits(32767.4 / 2**15) == 15
    assert weight_frac_bits(32767.5 / 2**15) == 14
    assert weight_frac_bits(0.0) == 15
    assert weight_frac_bits(1e-20) == 30
    assert weight_frac_bits(1e6) == 0
    assert weight_formats(np.array([[1.0, -0.25], [0.0, 0.0], [-3.0, 0.1]])) == [14, 15, 13]


def test_limit_weight_formats_caps_the_shift() -> None:
    assert limit_weight_formats([20, 10, 14], f_in=14, f_acc=12, max_shift=15) == [13, 10, 13]
    for f_in, f_acc in ((14, 12), (8, 3), (-2, 10)):
        for f in limit_weight_formats([30, 0, 15], f_in, f_acc, 15):
            assert f_in + f - f_acc <= 15


def test_per_channel_detection() -> None:
    assert is_per_channel((4, 1, 1), (1, 4, 5, 5))
    assert is_per_channel((1, 4, 1, 1), (1, 4, 5, 5))
    assert is_per_channel((), (1, 4, 5, 5)) and is_per_channel((1,), (1, 4, 5, 5))
    assert is_per_channel((4, 1), (1, 4, 9)) and is_per_channel((1, 6), (1, 6))
    assert not is_per_channel((4, 5, 5), (1, 4, 5, 5))
    assert not is_per_channel((1, 1, 5), (1, 4, 5, 5))
    assert not is_per_channel((2, 4, 1, 1), (1, 4, 5, 5))
    np.testing.assert_array_equal(per_channel_values(np.array([[1.0], [2.0]]).reshape(2, 1, 1),
                                                     (1, 2, 3, 3)), [1.0, 2.0])
    np.testing.assert_array_equal(per_channel_values(np.array(3.0), (1, 3, 2)), [3.0, 3.0, 3.0])


# -- the pass ----------------------------------------------------------------------------------

def test_annotations_match_onnxruntime_ranges() -> None:
    model = small_model()
    ds = data(50)
    before = ort.run(model, {"x": ds.x[:1]})["y"]
    result = Quantize(context=PassContext(data=ds)).run(model)
    ann = result.model.annotations
    calib = ds.calibration_part()
    assert len(calib) == 30 and result.stats["samples"] == 30
    names = ["c", "r", "m", "a", "f", "y"]
    lo = {n: np.inf for n in names}
    hi = {n: -np.inf for n in names}
    for i in range(len(calib)):
        vals = ort.intermediates(model, names, calib.inputs_for(i))
        for n in names:
            lo[n], hi[n] = min(lo[n], float(vals[n].min())), max(hi[n], float(vals[n].max()))
    for n in names:
        got = ann.get(n, "calib-range")
        assert got == pytest.approx([lo[n], hi[n]], rel=1e-6)
        assert ann.get(n, "qformat") == act_frac_bits(max(abs(lo[n]), abs(hi[n])), 1.25)
    x_lo, x_hi = ann.get("x", "calib-range")
    assert x_lo >= -1.0 and x_hi <= 3.0 and ann.get("x", "qformat") == act_frac_bits(x_hi, 1.25)
    # per-channel weight formats: the zero channel gets 15, all obey the shift cap
    fw = ann.get("W", "qformat")
    f_in, f_out = ann.get("x", "qformat"), ann.get("c", "qformat")
    assert isinstance(fw, list) and len(fw) == 4
    assert fw[2] == min(15, 15 + f_out - f_in)
    for f, ideal in zip(fw, weight_formats(W)):
        assert f <= ideal and f_in + f - f_out <= 15
    assert len(ann.get("G", "qformat")) == 3
    assert len(ann.get("S", "qformat")) == 4      # per-channel Mul constant
    assert isinstance(ann.get("E", "qformat"), int)  # per-element Add constant
    assert ann.get("E", "qformat") == weight_frac_bits(float(np.abs(E).max()), -8, 30)
    # the model itself is untouched: still plain float ONNX with the same outputs
    np.testing.assert_array_equal(ort.run(result.model, {"x": ds.x[:1]})["y"], before)
    assert [n.op for n in result.model.graph.nodes] == ["Conv", "Relu", "Mul", "Add", "Flatten", "Gemm"]
    for key in ("formats", "tensors", "weights", "max_act_rounding_error_rel", "format_histogram"):
        assert key in result.stats
    assert result.stats["tensors"] == 7 and result.stats["weights"] == 3
    # the annotations survive a save/load round trip (they live in metadata_props)
    again = OnnxModel.from_proto(result.model.to_proto())
    assert again.annotations == ann


def test_the_shift_cap_is_an_option() -> None:
    loose = Quantize(QuantizeOptions(max_shift=31), context=PassContext(data=data())).run(small_model())
    tight = Quantize(QuantizeOptions(max_shift=10), context=PassContext(data=data())).run(small_model())
    f_in, f_out = tight.model.annotations.get("x", "qformat"), tight.model.annotations.get("c", "qformat")
    assert all(f_in + f - f_out <= 10 for f in tight.model.annotations.get("W", "qformat"))
    assert tight.stats["weight_channels_limited_by_shift"] > loose.stats["weight_channels_limited_by_shift"]


def test_max_samples_and_margin() -> None:
    ds = data(200)
    r = Quantize(QuantizeOptions(max_samples=7), context=PassContext(data=ds)).run(small_model())
    assert r.stats["samples"] == 7
    wide = Quantize(QuantizeOptions(margin=1.0), context=PassContext(data=ds)).run(small_model())
    safe = Quantize(QuantizeOptions(margin=4.0), context=PassContext(data=ds)).run(small_model())
    for name in ("x", "c", "y"):
        assert wide.model.annotations.get(name, "qformat") - safe.model.annotations.get(name, "qformat") == 2


def test_without_data_warns_and_uses_synthetic_inputs() -> None:
    said: list[str] = []
    with pytest.warns(UserWarning, match="no --data"):
        r = Quantize(context=PassContext(log=said.append)).run(small_model())
    assert any(NO_DATA_WARNING in s for s in said)
    ann = r.model.annotations
    assert ann.get("x", "calib-range") == [-1.0, 1.0]
    assert r.stats["calibration"].startswith("synthetic")
    # the extra no-data margin (2) costs one bit against data with the same range
    ds = Dataset.from_arrays({"x": np.concatenate([np.full((1, 2, 8, 8), -1.0), np.full((1, 2, 8, 8), 1.0)])})
    with_data = Quantize(context=PassContext(data=ds)).run(small_model())
    assert with_data.model.annotations.get("x", "qformat") == ann.get("x", "qformat") + 1
    for name in ("c", "r", "a", "y"):
        assert isinstance(ann.get(name, "qformat"), int)


def test_bad_data_and_options() -> None:
    wrong_name = Dataset.from_arrays({"image": np.zeros((3, 2, 8, 8))})
    with pytest.raises(DataError, match="no array for model input"):
        Quantize(context=PassContext(data=wrong_name)).run(small_model())
    wrong_size = Dataset.from_arrays({"x": np.zeros((3, 2, 8, 7))})
    with pytest.raises(DataError, match="needs 128"):
        Quantize(context=PassContext(data=wrong_size)).run(small_model())
    flat = Dataset.from_arrays({"x": np.zeros((3, 128))})       # same count: reshaped
    assert Quantize(context=PassContext(data=flat)).run(small_model()).stats["samples"] == 3
    with pytest.raises(DataError, match="margin"):
        Quantize(QuantizeOptions(margin=0.5), context=PassContext(data=data())).run(small_model())
    with pytest.raises(DataError, match="Dataset"):
        Quantize(context=PassContext(data={"x": np.zeros((3, 2, 8, 8))})).run(small_model())


def test_values_beyond_the_coarsest_format_are_refused() -> None:
    # a diverged linear model (SGDClassifier(loss="squared_hinge") on unscaled features: weights
    # 1e13, scores 1e14) saturated at q = -8 (|v| <= 8.4e6) and answered at random; its output, or
    # an input that large, is refused with the figures; data-free (synthetic) ranges only guess
    huge = small_model()
    huge.graph.nodes[-1].inputs[1].values = (G * 1e7).astype(np.float32)
    with pytest.raises(UnsupportedError, match=r"graph output 'y' reaches \|.*e\+0[7-9]\|.*coarsest format") as info:
        Quantize(context=PassContext(data=data())).run(huge)
    assert "StandardScaler" in (info.value.hint or "")
    with pytest.warns(UserWarning, match="no --data"):
        Quantize(context=PassContext()).run(small_model())
    loud = Dataset.from_arrays({"x": np.full((2, 2, 8, 8), 1e7, dtype=np.float32)})
    with pytest.raises(UnsupportedError, match="graph input 'x' reaches"):
        Quantize(context=PassContext(data=loud)).run(small_model())
    assert Quantize(context=PassContext(data=data())).run(small_model()).model is not None


def test_pass_contract() -> None:
    assert Quantize.name == "quantize" and Quantize.level == "onnx"
    assert Quantize.requires == frozenset({"normal-form"}) and "quantized" in Quantize.ensures
    assert "before -> after" in (Quantize.__doc__ or "").lower()
    assert math.isclose(QuantizeOptions().margin, 1.25)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Quantize(context=PassContext(data=data(5))).run(small_model())   # data: no warning
