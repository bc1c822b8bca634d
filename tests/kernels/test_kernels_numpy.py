"""The numpy kernels (transpiler.lir.kernels) against independent references.

- Plain per-element Python loops written straight from docs/lir.md (Python ints, explicit 32-bit
  wrap), on small hypothesis-generated cases.
- onnxruntime's float Conv, Gemm, MaxPool and AveragePool on power-of-two scaled values small
  enough that float32 is exact: the fixed-point result must be exactly the float result rounded
  half up (and saturated), which ties the LIR's conventions (cross-correlation, padding, groups,
  dilation, ceil-mode windows, count_include_pad) to ONNX.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import onnx
import onnx.helper as oh
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transpiler.lir import kernels as K

EXAMPLES = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------------
# per-element references (Python ints)

def ref_wrap32(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


def ref_sat16(v: int) -> int:
    return max(-32768, min(32767, v))


def ref_requant(acc: int, s: int) -> int:
    """round half up of acc / 2^s, by exact rational arithmetic."""
    return ref_sat16(math.floor(Fraction(acc, 1) / Fraction(2) ** s + Fraction(1, 2)))


def ref_act(y: int, act: K.Act) -> int:
    if act.kind == "relu":
        return max(y, 0)
    if act.kind == "clip":
        return min(max(y, act.lo), act.hi)
    if act.kind == "leaky":
        return y if y >= 0 else ref_requant(y * act.alpha, 15)
    return y


def ref_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: tuple[int, int],
             pads: tuple[int, int, int, int], dil: tuple[int, int], group: int,
             shift: list[int], act: K.Act) -> np.ndarray:
    cin, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    oh_ = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow_ = (wd + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((cout, oh_, ow_), dtype=np.int64)
    cout_g = cout // group
    for co in range(cout):
        g = co // cout_g
        for oy in range(oh_):
            for ox in range(ow_):
                acc = int(b[co])
                for cj in range(cin_g):
                    for ky in range(kh):
                        for kx in range(kw):
                            iy = oy * stride[0] - pads[0] + ky * dil[0]
                            ix = ox * stride[1] - pads[1] + kx * dil[1]
                            if 0 <= iy < h and 0 <= ix < wd:
                                acc += int(x[g * cin_g + cj, iy, ix]) * int(w[co, cj, ky, kx])
                y[co, oy, ox] = ref_act(ref_requant(ref_wrap32(acc), shift[co]), act)
    return y


def ref_pool(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
             pads: tuple[int, int, int, int], dil: tuple[int, int], out: tuple[int, int],
             mode: str, count_include_pad: int = 0) -> np.ndarray:
    c, h, w = x.shape
    y = np.zeros((c,) + out, dtype=np.int64)
    for ch in range(c):
        for oy in range(out[0]):
            for ox in range(out[1]):
                vals, padded = [], 0
                for ky in range(kernel[0]):
                    for kx in range(kernel[1]):
                        iy = oy * stride[0] - pads[0] + ky * dil[0]
                        ix = ox * stride[1] - pads[1] + kx * dil[1]
                        if 0 <= iy < h and 0 <= ix < w:
                            vals.append(int(x[ch, iy, ix]))
                        if -pads[0] <= iy < h + pads[2] and -pads[1] <= ix < w + pads[3]:
                            padded += 1
                if mode == "max":
                    y[ch, oy, ox] = max(vals) if vals else -32768
                else:
                    n = padded if count_include_pad else len(vals)
                    y[ch, oy, ox] = math.floor(Fraction(sum(vals), n) + Fraction(1, 2)) if n else 0
    return y


int16s = st.integers(-32768, 32767)
shifts = st.integers(-15, 31)


@st.composite
def acts(draw: st.DrawFn) -> K.Act:
    kind = draw(st.sampled_from(K.ACT_KINDS))
    if kind == "clip":
        lo, hi = sorted([draw(int16s), draw(int16s)])
        return K.Act("clip", lo=lo, hi=hi)
    if kind == "leaky":
        return K.Act("leaky", alpha=draw(st.integers(0, 32767)))
    return K.Act(kind)


def arr(draw: st.DrawFn, shape: tuple[int, ...], elems: st.SearchStrategy[int] = int16s
        ) -> np.ndarray:
    n = int(np.prod(shape))
    return np.array(draw(st.lists(elems, min_size=n, max_size=n)), dtype=np.int64).reshape(shape)


@given(acc=st.integers(-2**31, 2**31 - 1), s=shifts)
@settings(max_examples=400, deadline=None)
def test_requant_matches_rational_rounding(acc: int, s: int) -> None:
    assert int(K.requant(np.array([acc]), s)[0]) == ref_requant(acc, s)


def test_requant_ties_round_towards_plus_infinity() -> None:
    acc = np.array([1, 3, 5, -1, -3, -5, 2**31 - 1, -2**31])
    assert K.requant(acc, 1).tolist() == [1, 2, 3, 0, -1, -2, 32767, -32768]
    assert K.requant(np.array([-32768, 1, -1]), -15).tolist() == [-32768, 32767, -32768]
    assert K.requant(np.array([2**31 - 1, -2**31]), 31).tolist() == [1, -1]
    with pytest.raises(ValueError):
        K.requant(np.array([0]), 32)


@given(y=st.lists(int16s, min_size=1, max_size=50), act=acts())
@EXAMPLES
def test_apply_act_matches_reference(y: list[int], act: K.Act) -> None:
    assert K.apply_act(np.array(y), act).tolist() == [ref_act(v, act) for v in y]


@st.composite
def small_convs(draw: st.DrawFn) -> tuple:
    group = draw(st.integers(1, 3))
    cin_g, cout_g = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(max(1, dil[0] * (kh - 1) + 1 - pads[0] - pads[2]), 5))
    w = draw(st.integers(max(1, dil[1] * (kw - 1) + 1 - pads[1] - pads[3]), 5))
    x = arr(draw, (group * cin_g, h, w))
    wt = arr(draw, (group * cout_g, cin_g, kh, kw))
    b = arr(draw, (group * cout_g,), st.integers(-2**31, 2**31 - 1))
    sh = [draw(shifts) for _ in range(group * cout_g)]
    return x, wt, b, stride, pads, dil, group, sh, draw(acts())


@given(case=small_convs())
@EXAMPLES
def test_conv_matches_loop_reference(case: tuple) -> None:
    x, w, b, stride, pads, dil, group, sh, act = case
    got = K.conv(x.astype(np.int16), w.astype(np.int16), b.astype(np.int32), stride, pads, dil,
                 group, sh, act)
    np.testing.assert_array_equal(got, ref_conv(x, w, b, stride, pads, dil, group, sh, act))


def test_conv_accumulator_wraps_modulo_2_32() -> None:
    """Three products of -32768 * -32768 = 3 * 2^30 overflow int32 and wrap (shift 0 then
    saturates the wrapped, negative value)."""
    x = np.full((3, 1, 1), -32768, dtype=np.int16)
    w = np.full((1, 3, 1, 1), -32768, dtype=np.int16)
    y = K.conv(x, w, np.zeros(1, np.int32), (1, 1), (0, 0, 0, 0), (1, 1), 1, [16])
    assert y.tolist() == [[[ref_requant(ref_wrap32(3 * 2**30), 16)]]] == [[[-16384]]]
    f = K.fc(np.full(3, -32768, np.int16), np.full((1, 3), -32768, np.int16),
             np.array([2**31 - 1], np.int32), [0])
    assert f.tolist() == [ref_sat16(ref_wrap32(3 * 2**30 + 2**31 - 1))]


@given(data=st.data(), k=st.integers(1, 12), n=st.integers(1, 5), act=acts())
@EXAMPLES
def test_fc_matches_loop_reference(data: st.DataObject, k: int, n: int, act: K.Act) -> None:
    x = arr(data.draw, (k,))
    w = arr(data.draw, (n, k))
    b = arr(data.draw, (n,), st.integers(-2**31, 2**31 - 1))
    sh = [data.draw(shifts) for _ in range(n)]
    want = [ref_act(ref_requant(ref_wrap32(int(b[i]) + sum(int(x[j]) * int(w[i, j])
                                                            for j in range(k))), sh[i]), act)
            for i in range(n)]
    assert K.fc(x, w, b, sh, act).tolist() == want


@given(data=st.data(), mode=st.sampled_from(["max", "avg"]))
@EXAMPLES
def test_pool_matches_loop_reference(data: st.DataObject, mode: str) -> None:
    d = data.draw
    kernel = (d(st.integers(1, 3)), d(st.integers(1, 3)))
    stride = (d(st.integers(1, 3)), d(st.integers(1, 3)))
    dil = (d(st.integers(1, 2)), d(st.integers(1, 2)))
    pads = tuple(d(st.integers(0, 3)) for _ in range(4))
    h = d(st.integers(max(1, dil[0] * (kernel[0] - 1) + 1 - pads[0] - pads[2]), 5))
    w = d(st.integers(max(1, dil[1] * (kernel[1] - 1) + 1 - pads[1] - pads[3]), 5))
    out = K.out_hw((h, w), kernel, stride, pads, dil)
    out = (out[0] + d(st.integers(0, 1)), out[1] + d(st.integers(0, 1)))  # ceil-mode extra
    x = arr(d, (d(st.integers(1, 2)), h, w))
    if mode == "max":
        got = K.maxpool(x, kernel, stride, pads, dil, out_shape=out)
        want = ref_pool(x, kernel, stride, pads, dil, out, "max")
    else:
        cip = d(st.integers(0, 1))
        got = K.avgpool(x, kernel, stride, pads, cip, dil, out_shape=out)
        want = ref_pool(x, kernel, stride, pads, dil, out, "avg", cip)
    np.testing.assert_array_equal(got, want)


@given(data=st.data(), n=st.integers(1, 30), sa=st.integers(0, 15), sb=st.integers(0, 15),
       s=shifts, act=acts())
@EXAMPLES
def test_add_concat_argmax_match_loop_reference(data: st.DataObject, n: int, sa: int, sb: int,
                                                s: int, act: K.Act) -> None:
    a, b = arr(data.draw, (n,)), arr(data.draw, (n,))
    want = [ref_act(ref_requant(int(u) * 2**sa + int(v) * 2**sb, s), act) for u, v in zip(a, b)]
    assert K.add(a, b, sa, sb, s, act).tolist() == want
    s2 = data.draw(shifts)
    cat = K.concat([a.reshape(n, 1, 1), b.reshape(n, 1, 1)], [s, s2])
    assert cat.shape == (2 * n, 1, 1)
    assert cat.reshape(-1).tolist() == [ref_requant(int(v), s) for v in a] + \
        [ref_requant(int(v), s2) for v in b]
    assert K.argmax(a).tolist() == [max(range(n), key=lambda i: (a[i], -i))]


@given(data=st.data(), n=st.integers(1, 30), s=shifts, act=acts())
@EXAMPLES
def test_mul_matches_loop_reference(data: st.DataObject, n: int, s: int, act: K.Act) -> None:
    a, b = arr(data.draw, (n,)), arr(data.draw, (n,))
    want = [ref_act(ref_requant(int(u) * int(v), s), act) for u, v in zip(a, b)]
    assert K.mul(a, b, s, act).tolist() == want


def test_mul_extremes() -> None:
    """The largest product, (-32768)^2 = 2^30, is exact; at shift 15 it saturates to 32767."""
    a = np.array([-32768, -32768, 32767, -1, 3], np.int16)
    b = np.array([-32768, 32767, 32767, 1, -3], np.int16)
    assert K.mul(a, b, 15, "none").tolist() == [32767, -32767, 32766, 0, 0]
    assert K.mul(a, b, 31, "none").tolist() == [1, 0, 0, 0, 0]
    assert K.mul(a, b, -15, "relu").tolist() == [32767, 0, 32767, 0, 0]


def test_argmax_takes_the_first_maximum() -> None:
    assert K.argmax(np.array([3, 7, 7, -1], np.int16)).tolist() == [1]
    assert K.argmax(np.array([-32768, -32768], np.int16)).tolist() == [0]


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError):
        K.Act("swish")
    with pytest.raises(ValueError):
        K.Act.from_attrs({"act": "clip", "lo": 0})
    with pytest.raises(ValueError):
        K.conv(np.zeros((3, 4, 4), np.int16), np.zeros((2, 2, 1, 1), np.int16),
               np.zeros(2, np.int32), (1, 1), (0, 0, 0, 0), (1, 1), 2, [0, 0])
    with pytest.raises(ValueError):
        K.add(np.zeros(3, np.int16), np.zeros(4, np.int16), 0, 0, 0)
    with pytest.raises(ValueError):
        K.mul(np.zeros(3, np.int16), np.zeros(4, np.int16), 0)
    with pytest.raises(ValueError):
        K.avgpool(np.zeros((1, 4, 4), np.int16), (200, 200), (1, 1), (0, 0, 0, 0), 0)


# ---------------------------------------------------------------------------------------------
# onnxruntime float references

def run_ort(node: onnx.NodeProto, feeds: dict[str, np.ndarray],
            inits: dict[str, np.ndarray], opset: int = 17) -> np.ndarray:
    """Run one float ONNX node on onnxruntime and return its single output."""
    graph = oh.make_graph(
        [node], "ref",
        [oh.make_tensor_value_info(k, onnx.TensorProto.FLOAT, list(v.shape))
         for k, v in feeds.items()],
        [oh.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    model = oh.make_model(graph, opset_imports=[oh.make_opsetid("", opset)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, {k: v.astype(np.float32) for k, v in feeds.items()})[0]


def quantise_expected(real: np.ndarray, f_out: int) -> np.ndarray:
    """round half up of real * 2^f_out, saturated (real is exact in float32 here)."""
    return np.clip(np.floor(real.astype(np.float64) * 2.0 ** f_out + 0.5), -32768, 32767)


@given(data=st.data())
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_conv_equals_onnx_conv_rounded(data: st.DataObject) -> None:
    """Fixed-point conv == ONNX Conv on the dequantised values, rounded half up at f_out."""
    d = data.draw
    group = d(st.integers(1, 3))
    cin_g, cout_g = d(st.integers(1, 3)), d(st.integers(1, 2))
    cin, cout = group * cin_g, group * cout_g
    kh, kw = d(st.integers(1, 3)), d(st.integers(1, 3))
    stride = [d(st.integers(1, 2)), d(st.integers(1, 2))]
    dil = [d(st.integers(1, 2)), d(st.integers(1, 2))]
    pads = [d(st.integers(0, 2)) for _ in range(4)]
    h = d(st.integers(max(1, dil[0] * (kh - 1) + 1 - pads[0] - pads[2]), 6))
    w = d(st.integers(max(1, dil[1] * (kw - 1) + 1 - pads[1] - pads[3]), 6))
    rng = np.random.default_rng(d(st.integers(0, 2**32 - 1)))
    f_in = d(st.integers(-2, 12))
    f_w = rng.integers(4, 14, size=cout)
    f_out = d(st.integers(-2, 12))
    # |x|, |w| <= 255: sums of <= 54 products stay below 2^22, exact in float32.
    xq = rng.integers(-255, 256, size=(cin, h, w))
    wq = rng.integers(-255, 256, size=(cout, cin_g, kh, kw))
    bq = rng.integers(-2**16, 2**16, size=cout)
    shift = (f_in + f_w - f_out).tolist()
    if min(shift) < -15 or max(shift) > 31:
        return
    act = d(st.sampled_from(["none", "relu"]))
    got = K.conv(xq.astype(np.int16), wq.astype(np.int16), bq.astype(np.int32), stride, pads,
                 dil, group, shift, act)
    scale_w = 2.0 ** -f_w.reshape(-1, 1, 1, 1)
    node = oh.make_node("Conv", ["x", "W", "B"], ["y"], strides=stride, dilations=dil,
                        pads=pads, group=group, kernel_shape=[kh, kw])
    real = run_ort(node, {"x": (xq * 2.0 ** -f_in)[None]},
                   {"W": wq * scale_w, "B": bq * 2.0 ** -(f_in + f_w)})[0]
    want = quantise_expected(real, f_out)
    if act == "relu":
        want = np.maximum(want, 0)
    np.testing.assert_array_equal(got, want)


@given(data=st.data())
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fc_equals_onnx_gemm_rounded(data: st.DataObject) -> None:
    d = data.draw
    k, n = d(st.integers(1, 40)), d(st.integers(1, 8))
    rng = np.random.default_rng(d(st.integers(0, 2**32 - 1)))
    f_in, f_out = d(st.integers(0, 12)), d(st.integers(0, 12))
    f_w = rng.integers(4, 14, size=n)
    xq = rng.integers(-255, 256, size=k)
    wq = rng.integers(-255, 256, size=(n, k))
    bq = rng.integers(-2**16, 2**16, size=n)
    shift = (f_in + f_w - f_out).tolist()
    got = K.fc(xq.astype(np.int16), wq.astype(np.int16), bq.astype(np.int32), shift)
    node = oh.make_node("Gemm", ["x", "W", "B"], ["y"], transB=1)
    real = run_ort(node, {"x": (xq * 2.0 ** -f_in)[None]},
                   {"W": wq * 2.0 ** -f_w.reshape(-1, 1), "B": bq * 2.0 ** -(f_in + f_w)})[0]
    np.testing.assert_array_equal(got, quantise_expected(real, f_out))


@given(data=st.data(), mode=st.sampled_from(["max", "avg"]))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_pool_equals_onnx_pool(data: st.DataObject, mode: str) -> None:
    """MaxPool exactly; AveragePool rounded half up; ceil_mode and count_include_pad included.
    Pads stay below the kernel size (onnxruntime requires it)."""
    d = data.draw
    kernel = [d(st.integers(1, 4)), d(st.integers(1, 4))]
    stride = [d(st.integers(1, 3)), d(st.integers(1, 3))]
    dil = [d(st.integers(1, 2)), d(st.integers(1, 2))] if mode == "max" else [1, 1]
    pads = [d(st.integers(0, kernel[i % 2] - 1)) for i in range(4)]
    h = d(st.integers(max(1, dil[0] * (kernel[0] - 1) + 1 - pads[0] - pads[2]), 7))
    w = d(st.integers(max(1, dil[1] * (kernel[1] - 1) + 1 - pads[1] - pads[3]), 7))
    ceil_mode = d(st.integers(0, 1))
    rng = np.random.default_rng(d(st.integers(0, 2**32 - 1)))
    xq = rng.integers(-32768, 32768, size=(d(st.integers(1, 3)), h, w))
    if mode == "max":
        node = oh.make_node("MaxPool", ["x"], ["y"], kernel_shape=kernel, strides=stride,
                            pads=pads, dilations=dil, ceil_mode=ceil_mode)
        real = run_ort(node, {"x": xq[None].astype(np.float64)}, {})[0]
        got = K.maxpool(xq.astype(np.int16), kernel, stride, pads, dil,
                        out_shape=real.shape[1:])
        # A window that sees only padding (possible with dilation) is -FLT_MAX in onnxruntime and
        # the saturated -32768 here (docs/lir.md, edge cases): compare after saturating.
        np.testing.assert_array_equal(got, np.clip(real, -32768, 32767))
    else:
        cip = d(st.integers(0, 1))
        node = oh.make_node("AveragePool", ["x"], ["y"], kernel_shape=kernel, strides=stride,
                            pads=pads, ceil_mode=ceil_mode, count_include_pad=cip)
        real = run_ort(node, {"x": xq[None].astype(np.float64)}, {})[0]
        got = K.avgpool(xq.astype(np.int16), kernel, stride, pads, cip,
                        out_shape=real.shape[1:])
        np.testing.assert_array_equal(got, quantise_expected(real, 0))
