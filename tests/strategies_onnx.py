"""Hypothesis strategies for small random ONNX models (op chains with random weights) and their inputs.

``onnx_models()`` draws a model as a chain of layers over one activation ``x``: a feature part on
1-D ``[1, C, L]`` or 2-D ``[1, C, H, W]`` maps (Conv with strides/pads/dilations/groups incl.
depthwise, Relu/Clip/LeakyRelu and the element-wise Sigmoid/Tanh/HardSigmoid/SiLU (lut steps),
MaxPool/AveragePool, BatchNormalization, residual Add, channel
Concat, per-channel Mul/Add, at most one nearest upsampling (Resize), transposed convolution or
PRelu), then optionally a global pooling and a flatten, then a dense part
(Gemm, MatMul(+Add), activations, BatchNormalization on vectors) and an optional final Softmax.
Weights come from a numpy generator seeded by a drawn integer, so shrinking simplifies the structure
and the seed, not thousands of floats.

With ``quirks=True`` (the default) the model also uses the forms exporters write and `normalize`
removes: MatMul + Add instead of Gemm, Gemm with alpha/beta/transB=0, ReduceMean instead of
GlobalAveragePool, ``auto_pad``, zero Pad nodes in front of Conv, omitted default attributes, Identity/Dropout, Sub/Div by constants,
Reshape to ``[1, -1]``, negative axes and a dynamic batch dimension. With ``quirks=False`` every node
is already in the normal form of docs/normal-form.md, with every tensor's shape recorded, except
for the ``origin`` annotations (useful for back-end tests).

Each drawn value is ``(model, inputs)``: an ``onnx.ModelProto`` (checked with ``onnx.checker``)
and ``{input name: float32 array}`` of the model's static (batch 1) input shape. The layer list is in
``model.doc_string`` for reading failures; :func:`save_model` writes a failing model to a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

FEATURE_OPS = ("conv", "act", "pool", "bn", "residual", "concat", "affine", "upsample")
DENSE_OPS = ("dense", "act", "bn")
ALL_OPS = frozenset(FEATURE_OPS + DENSE_OPS + ("gap", "flatten", "softmax"))

Draw = Callable[[st.SearchStrategy], object]


@dataclass
class _Builder:
    """The model under construction: nodes, initializers and the current activation."""

    rng: np.random.Generator
    opset: int
    quirks: bool
    shape: list[int]
    current: str = "x"
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    inits: list[onnx.TensorProto] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    count: int = 0
    grown: bool = False

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}{self.count}"

    def const(self, base: str, value: np.ndarray) -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value).copy(order="C"), name))
        return name

    def weights(self, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        return (self.rng.standard_normal(shape) / np.sqrt(max(fan_in, 1))).astype(np.float32)

    def node(self, op: str, inputs: list[str], attrs: dict[str, object] | None = None,
             out_shape: list[int] | None = None, update: bool = True) -> str:
        out = self.name(op.lower() + "_")
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.name(op), **(attrs or {})))
        if update:
            self.current = out
            if out_shape is not None:
                self.shape = list(out_shape)
        return out

    @property
    def spatial(self) -> list[int]:
        return self.shape[2:]


def _window(draw: Draw, sizes: list[int], max_kernel: int = 3, pool: bool = False,
            dilate: bool = True) -> dict[str, list[int]]:
    """Kernel, strides, pads, dilations that give every spatial output at least one element."""
    kernel, strides, pads_b, pads_e, dilations = [], [], [], [], []
    for n in sizes:
        k = draw(st.integers(1, max(1, min(max_kernel, n + 2 * (0 if pool else 1)))))
        d = draw(st.integers(1, 2)) if dilate and (k - 1) * 2 + 1 <= n else 1
        limit = k - 1 if pool else k
        pb, pe = draw(st.integers(0, limit)), draw(st.integers(0, limit))
        if pool:
            pb, pe = min(pb, k - 1), min(pe, k - 1)
        while n + pb + pe < (k - 1) * d + 1:
            pe += 1
            if pool and pe > k - 1:
                d, pe = 1, min(pe, k - 1)
        kernel.append(k)
        strides.append(draw(st.integers(1, 2)))
        pads_b.append(pb)
        pads_e.append(pe)
        dilations.append(d)
    return {"kernel_shape": kernel, "strides": strides, "pads": pads_b + pads_e, "dilations": dilations}


def _out_size(n: int, k: int, s: int, pb: int, pe: int, d: int, ceil: bool = False) -> int:
    span = n + pb + pe - ((k - 1) * d + 1)
    return (-(-span // s) if ceil else span // s) + 1


def _conv(draw: Draw, b: _Builder, cout: int | None = None, same: bool = False, update: bool = True) -> str:
    cin = b.shape[1]
    sizes = b.spatial
    if same:
        k = draw(st.sampled_from([1, 3]))
        win = {"kernel_shape": [k] * len(sizes), "strides": [1] * len(sizes), "pads": [k // 2] * 2 * len(sizes),
               "dilations": [1] * len(sizes)}
    else:
        win = _window(draw, sizes)
    mode = draw(st.sampled_from(["dense", "depthwise", "grouped"])) if cin > 1 else "dense"
    if mode == "depthwise":
        group, cout = cin, cin * draw(st.integers(1, 2)) if cout is None else cout
        if cout % cin:
            group = 1
    elif mode == "grouped":
        divisors = [g for g in range(2, cin + 1) if cin % g == 0]
        group = draw(st.sampled_from(divisors))
        cout = group * draw(st.integers(1, 2)) if cout is None else cout
        if cout % group:
            group = 1
    else:
        group = 1
        cout = draw(st.integers(1, 6)) if cout is None else cout
    k = win["kernel_shape"]
    w = b.const("W", b.weights((cout, cin // group, *k), cin // group * int(np.prod(k))))
    inputs = [b.current, w]
    if draw(st.booleans()) or not b.quirks:
        inputs.append(b.const("B", (b.rng.standard_normal(cout) * 0.1).astype(np.float32)))
    n = len(sizes)
    out = [_out_size(sizes[i], k[i], win["strides"][i], win["pads"][i], win["pads"][n + i], win["dilations"][i])
           for i in range(n)]
    attrs: dict[str, object] = {**win, "group": group}
    if b.quirks and not same:
        style = draw(st.sampled_from(["explicit", "defaults", "auto_pad", "pad-node"]))
        if style == "pad-node" and any(win["pads"]):
            # the padding as a separate zero Pad node in front (tf2onnx, nn.ZeroPad2d)
            pads = [0, 0, *win["pads"][:n], 0, 0, *win["pads"][n:]]
            padded = b.node("Pad", [b.current, b.const("pads", np.array(pads, np.int64))], update=False)
            inputs[0] = padded
            attrs["pads"] = [0] * 2 * n
        if style == "defaults":
            if all(s == 1 for s in win["strides"]):
                attrs.pop("strides")
            if all(d == 1 for d in win["dilations"]):
                attrs.pop("dilations")
            if not any(win["pads"]):
                attrs.pop("pads")
            attrs.pop("kernel_shape")
            if group == 1:
                attrs.pop("group")
        elif style == "auto_pad":
            mode_pad = draw(st.sampled_from(["SAME_UPPER", "SAME_LOWER", "VALID"]))
            attrs.pop("pads")
            attrs["dilations"] = [1] * n
            attrs["auto_pad"] = mode_pad
            if mode_pad == "VALID":
                out = [_out_size(sizes[i], k[i], win["strides"][i], 0, 0, 1) for i in range(n)]
                if min(out) < 1:
                    mode_pad = attrs["auto_pad"] = "SAME_UPPER"
            if mode_pad != "VALID":
                out = [-(-sizes[i] // win["strides"][i]) for i in range(n)]
    b.log.append(f"Conv{n}d(cout={cout}, group={group}, {attrs})")
    return b.node("Conv", inputs, attrs, [1, cout, *out], update=update)


def _conv_layer(draw: Draw, b: _Builder) -> None:
    _conv(draw, b)


def _upsample(draw: Draw, b: _Builder) -> None:
    """Once per model: a nearest upsampling by integer factors (Resize as exporters write it), a
    transposed convolution, or (with quirks) a PRelu; without quirks the normal forms: the canonical
    Resize, and a ConvTranspose's zero insertion followed by its Conv."""
    if b.grown:
        _act(draw, b)
        return
    b.grown = True
    c, sizes = b.shape[1], b.spatial
    n = len(sizes)
    kind = draw(st.sampled_from(["resize", "convtranspose", "prelu"] if b.quirks else ["resize", "convtranspose"]))
    if kind == "resize":
        factors = [draw(st.integers(1, 3 if n == 1 else 2)) for _ in sizes]
        out = [d * f for d, f in zip(sizes, factors)]
        form = draw(st.sampled_from(["scales", "sizes", "half_pixel"])) if b.quirks else "scales"
        attrs: dict[str, object] = {"mode": "nearest"}
        if form != "half_pixel":
            attrs.update(coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        roi = b.const("roi", np.zeros(0, np.float32)) if b.opset < 13 or form == "half_pixel" else ""
        if form == "sizes":   # before opset 13 the unused scales is an empty tensor, not an omitted input
            scales = b.const("scales", np.zeros(0, np.float32)) if b.opset < 13 else ""
            inputs = [b.current, roi, scales, b.const("sizes", np.array([1, c, *out], np.int64))]
        else:
            inputs = [b.current, roi, b.const("scales", np.array([1, 1, *factors], np.float32))]
        b.log.append(f"Resize(nearest, {form}, x{factors})")
        b.node("Resize", inputs, attrs, [1, c, *out])
        return
    if kind == "prelu":
        per_channel = draw(st.booleans())
        slopes = b.rng.uniform(-0.5, 1.5, c if per_channel else 1).astype(np.float32)
        b.log.append(f"PRelu({list(np.round(slopes, 2))})")
        b.node("PRelu", [b.current, b.const("slope", slopes.reshape(-1, *[1] * n))], out_shape=b.shape)
        return
    stride = draw(st.integers(1, 2))
    k = draw(st.integers(max(stride, 1), 3))
    pad = draw(st.integers(0, k - 1))
    extra = draw(st.integers(0, stride - 1))
    cout = draw(st.integers(1, 4))
    out = [(d - 1) * stride + k - 2 * pad + extra for d in sizes]
    if min(out) < 1:
        pad, out = 0, [(d - 1) * stride + k + extra for d in sizes]
    w = b.weights((c, cout, *[k] * n), c * k ** n)
    bias = b.const("B", (b.rng.standard_normal(cout) * 0.1).astype(np.float32))
    b.log.append(f"ConvTranspose{n}d(cout={cout}, k={k}, stride={stride}, pad={pad}, output_padding={extra})")
    if b.quirks:
        attrs = {"strides": [stride] * n, "pads": [pad] * 2 * n, "output_padding": [extra] * n}
        b.node("ConvTranspose", [b.current, b.const("W", w), bias], attrs, [1, cout, *out])
        return
    if stride > 1:      # the normal form: zero insertion, then the Conv with the flipped, swapped kernel
        grown = [(d - 1) * stride + 1 for d in sizes]
        b.node("ConvTranspose", [b.current, b.const("ones", np.ones((c, 1, *[1] * n), np.float32))],
               {"strides": [stride] * n, "kernel_shape": [1] * n, "group": c, "pads": [0] * 2 * n,
                "dilations": [1] * n}, [1, c, *grown])
    flipped = np.ascontiguousarray(np.flip(w, axis=tuple(range(2, 2 + n))).swapaxes(0, 1))
    attrs = {"kernel_shape": [k] * n, "strides": [1] * n, "dilations": [1] * n, "group": 1,
             "pads": [k - 1 - pad] * n + [k - 1 - pad + extra] * n}
    b.node("Conv", [b.current, b.const("W", flipped), bias], attrs, [1, cout, *out])


def _act(draw: Draw, b: _Builder) -> None:
    kind = draw(st.sampled_from(["Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "SiLU", "HardSigmoid"]))
    if kind in ("Sigmoid", "Tanh"):
        b.node(kind, [b.current], out_shape=b.shape)
    elif kind == "HardSigmoid":
        b.node(kind, [b.current], {"alpha": float(draw(st.sampled_from([0.2, 1 / 6]))), "beta": 0.5}, b.shape)
    elif kind == "SiLU":                       # torch: x * sigmoid(x)
        x = b.current
        b.node("Sigmoid", [x], out_shape=b.shape)
        b.node("Mul", [x, b.current], out_shape=b.shape)
    elif kind == "Clip":
        low = float(draw(st.sampled_from([0.0, -1.0, -0.5])))
        high = float(draw(st.sampled_from([6.0, 1.0, 0.5])))
        inputs = [b.current, b.const("lo", np.array(low, np.float32))]
        if not (b.quirks and draw(st.booleans())):
            inputs.append(b.const("hi", np.array(high, np.float32)))
        b.node("Clip", inputs, out_shape=b.shape)
    elif kind == "LeakyRelu":
        attrs = {} if b.quirks and draw(st.booleans()) else {"alpha": float(draw(st.sampled_from([0.01, 0.1, 0.2])))}
        b.node("LeakyRelu", [b.current], attrs, b.shape)
    else:
        b.node("Relu", [b.current], out_shape=b.shape)
    b.log.append(kind)


def _pool(draw: Draw, b: _Builder) -> None:
    op = draw(st.sampled_from(["MaxPool", "AveragePool"]))
    sizes = b.spatial
    win = _window(draw, sizes, pool=True, dilate=op == "MaxPool")
    n = len(sizes)
    ceil = draw(st.booleans())
    out = []
    for i in range(n):
        args = (sizes[i], win["kernel_shape"][i], win["strides"][i], win["pads"][i], win["pads"][n + i],
                win["dilations"][i])
        size = _out_size(*args, ceil=ceil)
        if ceil and (size - 1) * win["strides"][i] >= sizes[i] + win["pads"][i]:
            ceil = False  # the last window would start in the padding: runtimes disagree there
        out.append(size)
    if not ceil:
        out = [_out_size(sizes[i], win["kernel_shape"][i], win["strides"][i], win["pads"][i], win["pads"][n + i],
                         win["dilations"][i]) for i in range(n)]
    attrs: dict[str, object] = {"kernel_shape": win["kernel_shape"], "strides": win["strides"], "pads": win["pads"],
                                "ceil_mode": int(ceil)}
    if op == "MaxPool":
        attrs["dilations"] = win["dilations"]
    else:
        attrs["count_include_pad"] = int(draw(st.booleans()))
    if b.quirks and draw(st.booleans()):
        for key in ("strides", "pads", "dilations", "ceil_mode", "count_include_pad"):
            value = attrs.get(key)
            if value is not None and not np.any(np.asarray(value) != (1 if key in ("strides", "dilations") else 0)):
                attrs.pop(key)
    b.log.append(f"{op}({attrs})")
    b.node(op, [b.current], attrs, [*b.shape[:2], *out])


def _bn(draw: Draw, b: _Builder) -> None:
    """BatchNormalization (with quirks) or what normalize makes of it: Mul and Add per channel."""
    c = b.shape[1]
    gamma = (1 + 0.3 * b.rng.standard_normal(c)).astype(np.float32)
    beta = (0.2 * b.rng.standard_normal(c)).astype(np.float32)
    mean = (0.2 * b.rng.standard_normal(c)).astype(np.float32)
    var = b.rng.uniform(0.5, 2.0, c).astype(np.float32)
    if b.quirks:
        params = [b.const("gamma", gamma), b.const("beta", beta), b.const("mean", mean), b.const("var", var)]
        b.log.append("BatchNormalization")
        b.node("BatchNormalization", [b.current, *params], {"epsilon": 1e-5}, b.shape)
        return
    scale = gamma / np.sqrt(var + 1e-5)
    shape = (c, *[1] * (len(b.shape) - 2)) if len(b.shape) > 2 else (1, c)
    b.log.append("Mul+Add(per channel)")
    b.node("Mul", [b.current, b.const("scale", scale.reshape(shape).astype(np.float32))], out_shape=b.shape)
    b.node("Add", [b.current, b.const("shift", (beta - mean * scale).reshape(shape).astype(np.float32))],
           out_shape=b.shape)


def _residual(draw: Draw, b: _Builder) -> None:
    skip, shape = b.current, list(b.shape)
    branch = _conv(draw, b, cout=shape[1], same=True)
    if draw(st.booleans()):
        b.node("Relu", [branch], out_shape=shape)
    b.log.append("Add(residual)")
    b.node("Add", [skip, b.current] if draw(st.booleans()) else [b.current, skip], out_shape=shape)


def _concat(draw: Draw, b: _Builder) -> None:
    first, shape = b.current, list(b.shape)
    branch = _conv(draw, b, same=True)
    channels = shape[1] + b.shape[1]
    axis = -(len(shape) - 1) if b.quirks and draw(st.booleans()) else 1
    b.log.append(f"Concat(axis={axis})")
    b.node("Concat", [first, branch], {"axis": axis}, [1, channels, *shape[2:]])


def _affine(draw: Draw, b: _Builder) -> None:
    c, rank = b.shape[1], len(b.shape)
    op = draw(st.sampled_from(["Mul", "Add", "Sub", "Div"] if b.quirks else ["Mul", "Add"]))
    values = b.rng.uniform(0.5, 1.5, c).astype(np.float32) if op in ("Mul", "Div") else \
        (0.3 * b.rng.standard_normal(c)).astype(np.float32)
    form = draw(st.sampled_from(["canonical", "leading-one", "scalar"])) if b.quirks else "canonical"
    if form == "scalar":
        value = values[:1].reshape(())
    elif form == "leading-one":
        value = values.reshape((1, c, *[1] * (rank - 2)))
    else:
        value = values.reshape((c, *[1] * (rank - 2))) if rank > 2 else values.reshape(1, c)
    const = b.const("k", value)
    inputs = [const, b.current] if op in ("Mul", "Add") and b.quirks and draw(st.booleans()) else [b.current, const]
    b.log.append(f"{op}(const {list(value.shape)})")
    b.node(op, inputs, out_shape=b.shape)


def _gap(draw: Draw, b: _Builder) -> None:
    rank = len(b.shape)
    if b.quirks and draw(st.booleans()):
        keep = int(draw(st.booleans()))
        axes = list(range(2, rank)) if draw(st.booleans()) else list(range(-(rank - 2), 0))
        if b.opset >= 18:
            inputs, attrs = [b.current, b.const("axes", np.array(axes, np.int64))], {"keepdims": keep}
        else:
            inputs, attrs = [b.current], {"axes": axes, "keepdims": keep}
        out = [*b.shape[:2], *[1] * (rank - 2)] if keep else b.shape[:2]
        b.log.append(f"ReduceMean(axes={axes}, keepdims={keep})")
        b.node("ReduceMean", inputs, attrs, out)
        return
    b.log.append("GlobalAveragePool")
    b.node("GlobalAveragePool", [b.current], out_shape=[*b.shape[:2], *[1] * (rank - 2)])


def _flatten(draw: Draw, b: _Builder) -> None:
    n = int(np.prod(b.shape[1:]))
    style = draw(st.sampled_from(["Flatten", "Reshape", "Reshape-1"])) if b.quirks else "Flatten"
    if style == "Flatten" or len(b.shape) == 2:
        b.node("Flatten", [b.current], {"axis": 1}, [1, n])
    else:
        target = [1, n] if style == "Reshape" else [1, -1]
        b.node("Reshape", [b.current, b.const("shape", np.array(target, np.int64))], out_shape=[1, n])
    b.log.append(style)


def _dense(draw: Draw, b: _Builder) -> None:
    k = b.shape[1]
    n = draw(st.integers(1, 8))
    w = b.weights((n, k), k)
    bias = (0.1 * b.rng.standard_normal(n)).astype(np.float32)
    style = draw(st.sampled_from(["gemm", "gemm-odd", "matmul", "matmul-add"])) if b.quirks else "gemm"
    if style == "gemm":
        b.node("Gemm", [b.current, b.const("fcW", w), b.const("fcB", bias)],
               {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 1}, [1, n])
    elif style == "gemm-odd":
        trans_b = int(draw(st.booleans()))
        alpha = float(draw(st.sampled_from([1.0, 0.5, 2.0])))
        beta = float(draw(st.sampled_from([1.0, 0.5])))
        c_shape = draw(st.sampled_from([(n,), (1, n)]))
        inputs = [b.current, b.const("fcW", w if trans_b else np.ascontiguousarray(w.T))]
        if draw(st.booleans()):
            inputs.append(b.const("fcB", bias.reshape(c_shape)))
        b.node("Gemm", inputs, {"alpha": alpha, "beta": beta, "transB": trans_b}, [1, n])
    else:
        out = b.node("MatMul", [b.current, b.const("mmW", np.ascontiguousarray(w.T))], out_shape=[1, n])
        if style == "matmul-add":
            shape = draw(st.sampled_from([(n,), (1, n)]))
            consts = [out, b.const("mmB", bias.reshape(shape))]
            b.node("Add", consts if draw(st.booleans()) else consts[::-1], out_shape=[1, n])
    b.log.append(f"{style}({k}->{n})")


def _noop(draw: Draw, b: _Builder) -> None:
    if draw(st.booleans()):
        b.node("Identity", [b.current], out_shape=b.shape)
        b.log.append("Identity")
    else:
        out = b.name("dropout_")
        b.nodes.append(helper.make_node("Dropout", [b.current], [out], name=b.name("Dropout")))
        b.current = out
        b.log.append("Dropout")


_FEATURE: dict[str, Callable[[Draw, _Builder], None]] = {
    "conv": _conv_layer, "act": _act, "pool": _pool, "bn": _bn,
    "residual": _residual, "concat": _concat, "affine": _affine, "upsample": _upsample,
}
_DENSE: dict[str, Callable[[Draw, _Builder], None]] = {"dense": _dense, "act": _act, "bn": _bn}


@st.composite
def onnx_models(draw: Draw, *, dims: tuple[int, ...] = (0, 1, 2), max_layers: int = 5, quirks: bool = True,
                ops: frozenset[str] = ALL_OPS, opsets: tuple[int, ...] = (13, 17, 18),
                dynamic_batch: bool | None = None, max_channels: int = 4,
                ) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """A random op-chain model and an input for it (see the module docstring).

    ``dims``: 0 = vector input ``[1, K]`` (dense part only), 1 = ``[1, C, L]``, 2 = ``[1, C, H, W]``.
    ``ops``: the layer kinds to use (subset of :data:`ALL_OPS`). ``dynamic_batch``: None = drawn
    (only with quirks). ``max_channels``: channels of the input.
    """
    dim = draw(st.sampled_from(dims))
    seed = draw(st.integers(0, 2**31 - 1))
    opset = draw(st.sampled_from(opsets))
    channels = draw(st.integers(1, max_channels))
    if dim == 0:
        shape = [1, draw(st.integers(1, 12))]
    elif dim == 1:
        shape = [1, channels, draw(st.integers(3, 16))]
    else:
        shape = [1, channels, draw(st.integers(3, 9)), draw(st.integers(3, 9))]
    b = _Builder(np.random.default_rng(seed), opset, quirks, list(shape))
    input_shape = list(shape)
    if dim:
        kinds = [k for k in FEATURE_OPS if k in ops]
        for _ in range(draw(st.integers(0, max_layers)) if kinds else 0):
            _FEATURE[draw(st.sampled_from(kinds))](draw, b)
            if quirks and draw(st.integers(0, 9)) == 0:
                _noop(draw, b)
        if "gap" in ops and draw(st.booleans()):
            _gap(draw, b)
        if "flatten" in ops and (len(b.shape) > 2) and (draw(st.booleans()) or "dense" in ops):
            _flatten(draw, b)
    if len(b.shape) == 2:
        kinds = [k for k in DENSE_OPS if k in ops]
        for _ in range(draw(st.integers(0, 3)) if kinds else 0):
            _DENSE[draw(st.sampled_from(kinds))](draw, b)
        if "softmax" in ops and draw(st.booleans()):
            axis = draw(st.sampled_from([-1, 1])) if quirks else 1
            b.node("Softmax", [b.current], {"axis": axis}, b.shape)
            b.log.append("Softmax")
    if not b.nodes:
        b.node("Relu", [b.current], out_shape=b.shape)
        b.log.append("Relu")
    if quirks and draw(st.integers(0, 5)) == 0:
        _noop(draw, b)
    dynamic = (draw(st.booleans()) if dynamic_batch is None else dynamic_batch) if quirks else bool(dynamic_batch)
    in_dims: list[int | str] = ["batch", *input_shape[1:]] if dynamic else input_shape
    out_dims: list[int | str] = ["batch", *b.shape[1:]] if dynamic else b.shape
    graph = helper.make_graph(b.nodes, "random_chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_dims)],
                              [helper.make_tensor_value_info(b.current, TensorProto.FLOAT, out_dims)],
                              b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="strategies_onnx", doc_string="; ".join(b.log))
    model.ir_version = 8
    if not quirks:  # in normal form every tensor's static shape is recorded
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    onnx.checker.check_model(model)
    x = np.random.default_rng(seed + 1).standard_normal(input_shape).astype(np.float32)
    return model, {"x": x}


def save_model(model: onnx.ModelProto, label: str) -> str:
    """Write a (failing) model for inspection into $FREEML_FAILURES or tests/failures/ (gitignored)."""
    folder = os.environ.get("FREEML_FAILURES") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "failures")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{label}.onnx")
    onnx.save(model, path)
    return path
