"""`expand-contrib-ops`: onnxruntime's fused ``com.microsoft`` ops, as a model saved after
onnxruntime's graph optimizations holds them, become the standard ops they fuse."""

from __future__ import annotations

import math

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, add_node, attr, const_value, consumers,
                                   drop_unused, is_empty, new_constant, new_variable, opset_of, origin_of,
                                   set_origin, set_tensors, static_shape)

MS_DOMAIN = "com.microsoft"


def _floats(value: object) -> list[float]:
    return [float(v) for v in value] if isinstance(value, (list, tuple)) else []


class _Builder:
    """New nodes and tensors for one fused node, named after it and carrying its origin."""

    def __init__(self, model: OnnxModel, names: NameSource, node: gs.Node) -> None:
        self.model, self.names, self.node = model, names, node
        self.origin = origin_of(model, node)
        self.dtype = node.outputs[0].dtype if node.outputs and node.outputs[0].dtype is not None else np.float32

    def op(self, op: str, inputs: list[gs.Tensor], attrs: dict[str, object] | None = None,
           out: gs.Tensor | None = None, tag: str | None = None) -> gs.Tensor:
        """Append ``op(inputs)``, writing ``out`` (a fresh tensor when None); its output."""
        tag = tag or op.lower()
        y = out if out is not None else new_variable(self.names, f"{self.node.name}_{tag}", self.dtype)
        made = add_node(self.model.graph, self.names, op, f"{self.node.name}_{tag}", inputs, [y], attrs)
        set_origin(self.model, made, self.origin)
        return y

    def const(self, tag: str, values: object, dtype: object = np.float32) -> gs.Constant:
        return new_constant(self.names, f"{self.node.name}_{tag}", np.asarray(values, dtype=dtype))

    def reduce_mean_last(self, x: gs.Tensor, opset: int, tag: str) -> gs.Tensor:
        """``ReduceMean(x)`` over the last axis, kept (axes as an attribute below opset 18)."""
        if opset >= 18:
            return self.op("ReduceMean", [x, self.const(f"{tag}_axes", [-1], np.int64)], {"keepdims": 1}, tag=tag)
        return self.op("ReduceMean", [x], {"axes": [-1], "keepdims": 1}, tag=tag)


def _activation(b: _Builder, x: gs.Tensor, kind: str, params: list[float], out: gs.Tensor, opset: int) -> bool:
    """``out = kind(x)`` for a fused activation of FusedConv / FusedGemm; False when unknown."""
    if kind in ("Relu", "Sigmoid", "Tanh"):
        b.op(kind, [x], out=out)
    elif kind == "LeakyRelu":
        b.op("LeakyRelu", [x], {"alpha": params[0] if params else 0.01}, out=out)
    elif kind == "HardSigmoid":
        b.op("HardSigmoid", [x], {"alpha": params[0] if params else 0.2, "beta": params[1] if len(params) > 1
                                  else 0.5}, out=out)
    elif kind == "Clip" and len(params) == 2:
        if opset >= 11:
            b.op("Clip", [x, b.const("min", params[0]), b.const("max", params[1])], out=out)
        else:
            b.op("Clip", [x], {"min": params[0], "max": params[1]}, out=out)
    else:
        return False
    return True


def _known_activation(kind: str, params: list[float]) -> bool:
    return kind in ("", "Relu", "Sigmoid", "Tanh", "LeakyRelu", "HardSigmoid") or (kind == "Clip" and len(params) == 2)


def _fused_conv(b: _Builder, opset: int) -> bool:
    """``FusedConv(X, W, B?, Z?) {activation}`` -> ``act(Conv(X, W, B) + Z)``."""
    node = b.node
    kind, params = str(attr(node, "activation", "")), _floats(attr(node, "activation_params", []))
    if not _known_activation(kind, params):
        return False
    conv_attrs = {k: v for k, v in node.attrs.items() if k not in ("activation", "activation_params")}
    inputs = [t for t in node.inputs[:3]]
    while inputs and is_empty(inputs[-1]):
        inputs.pop()
    z = node.inputs[3] if len(node.inputs) > 3 and not is_empty(node.inputs[3]) else None
    y = node.outputs[0]
    last = not kind and z is None
    h = b.op("Conv", inputs, conv_attrs, out=y if last else None, tag="conv")
    if z is not None:
        h = b.op("Add", [h, z], out=y if not kind else None, tag="sum")
    if kind:
        _activation(b, h, kind, params, y, opset)
    return True


def _fused_gemm(b: _Builder, opset: int) -> bool:
    """``FusedGemm(A, B, C?) {alpha, beta, transA, transB, activation}`` -> ``act(Gemm(A, B, C))``."""
    node = b.node
    kind = str(attr(node, "activation", ""))
    params = [float(node.attrs[k]) for k in ("activation_alpha", "activation_beta") if k in node.attrs]
    if not _known_activation(kind, params):
        return False
    gemm_attrs = {k: node.attrs[k] for k in ("alpha", "beta", "transA", "transB") if k in node.attrs}
    y = node.outputs[0]
    h = b.op("Gemm", list(node.inputs), gemm_attrs, out=None if kind else y, tag="gemm")
    if kind:
        _activation(b, h, kind, params, y, opset)
    return True


def _swappable(x: gs.Tensor) -> bool:
    shape = static_shape(x)
    return const_value(x) is not None or (shape is not None and len(shape) >= 2)


def _swap_last(b: _Builder, x: gs.Tensor, tag: str) -> gs.Tensor:
    """``x`` with its last two axes swapped: transposed here when constant, else a Transpose."""
    value = const_value(x)
    if value is not None:
        return b.const(tag, np.swapaxes(value, -1, -2), value.dtype)
    rank = len(static_shape(x) or ())
    return b.op("Transpose", [x], {"perm": [*range(rank - 2), rank - 1, rank - 2]}, tag=tag)


def _fused_matmul(b: _Builder, opset: int) -> bool:
    """``FusedMatMul(A, B) {alpha, transA, transB}`` -> ``alpha * MatMul(A', B')`` (batch transposes
    ``transBatchA/B``, or a transposed operand of unknown rank, are left: check-supported names them)."""
    node = b.node
    flags = [bool(int(attr(node, f, 0))) for f in ("transA", "transB")]
    if int(attr(node, "transBatchA", 0)) or int(attr(node, "transBatchB", 0)) \
            or any(flag and not _swappable(t) for flag, t in zip(flags, node.inputs)):
        return False
    a, w = (_swap_last(b, t, tag) if flag else t
            for flag, t, tag in zip(flags, node.inputs[:2], ("transA", "transB")))
    alpha = float(attr(node, "alpha", 1.0))
    y = node.outputs[0]
    h = b.op("MatMul", [a, w], out=y if alpha == 1.0 else None, tag="matmul")
    if alpha != 1.0:
        b.op("Mul", [h, b.const("alpha", alpha)], out=y, tag="alpha")
    return True


def _gelu_of(b: _Builder, x: gs.Tensor, y: gs.Tensor, tanh: bool) -> None:
    """``y = gelu(x)`` as torch's legacy export writes it (erf form), or its tanh approximation."""
    if tanh:
        cube = b.op("Mul", [b.op("Mul", [x, x], tag="square"), x], tag="cube")
        inner = b.op("Add", [x, b.op("Mul", [cube, b.const("c", 0.044715)], tag="scaled_cube")], tag="inner")
        t = b.op("Tanh", [b.op("Mul", [inner, b.const("k", math.sqrt(2.0 / math.pi))], tag="scaled")])
    else:
        t = b.op("Erf", [b.op("Div", [x, b.const("sqrt2", math.sqrt(2.0))], tag="scaled")])
    one = b.op("Add", [t, b.const("one", 1.0)], tag="one_plus")
    b.op("Mul", [b.op("Mul", [x, one], tag="times_x"), b.const("half", 0.5)], out=y, tag="half")


def _gelu(b: _Builder, opset: int) -> bool:
    """``Gelu(x)``, ``FastGelu(x, bias?)`` (tanh approximation), ``BiasGelu(a, b)`` -> ``gelu(x + bias)``."""
    node = b.node
    x = node.inputs[0]
    if len(node.inputs) > 1 and not is_empty(node.inputs[1]):
        x = b.op("Add", [x, node.inputs[1]], tag="bias")
    _gelu_of(b, x, node.outputs[0], tanh=node.op == "FastGelu")
    return True


def _quick_gelu(b: _Builder, opset: int) -> bool:
    """``QuickGelu(x) {alpha}`` -> ``x * Sigmoid(alpha * x)`` (alpha 1: SiLU)."""
    node = b.node
    x, alpha = node.inputs[0], float(attr(node, "alpha", 1.702))
    scaled = x if alpha == 1.0 else b.op("Mul", [x, b.const("alpha", alpha)], tag="scaled")
    b.op("Mul", [x, b.op("Sigmoid", [scaled])], out=node.outputs[0], tag="gate")
    return True


def _used(graph: gs.Graph, tensor: gs.Tensor) -> bool:
    return bool(consumers(tensor)) or any(t is tensor for t in graph.outputs)


def _last_axis(node: gs.Node, x: gs.Tensor) -> bool:
    shape = static_shape(x)
    axis = int(attr(node, "axis", -1))
    return axis == -1 or (shape is not None and axis == len(shape) - 1)


def _norm(b: _Builder, opset: int) -> bool:
    """``SkipLayerNormalization(x, skip, gamma, beta?, bias?)`` and the RMS forms
    (``SkipSimplifiedLayerNormalization``, ``SimplifiedLayerNormalization(x, gamma)``) -> the sum
    ``s = x + skip + bias``, then a layer norm of ``s`` over its last axis (LayerNormalization from
    opset 17, else the mean/variance nodes torch's legacy export writes) or an RMS norm
    ``s / Sqrt(ReduceMean(s * s) + eps) * gamma``. The sum may be an output too (the fourth output of
    the skip forms); the mean and inverse-deviation outputs may not."""
    node = b.node
    graph = b.model.graph
    simplified = "Simplified" in node.op
    skip = node.op.startswith("Skip")
    if skip:
        gamma_at, beta_at, bias_at = (2, None, 3) if simplified else (2, 3, 4)
    else:
        gamma_at, beta_at, bias_at = (1, None, None) if simplified else (1, 2, None)

    def optional(index: int | None) -> gs.Tensor | None:
        return node.inputs[index] if index is not None and len(node.inputs) > index and \
            not is_empty(node.inputs[index]) else None

    gamma, beta = optional(gamma_at), optional(beta_at)
    if gamma is None or any(_used(graph, t) for t in node.outputs[1:3]) or not _last_axis(node, node.inputs[0]):
        return False

    eps = float(attr(node, "epsilon", 1e-5 if not simplified else 1e-6))
    s = node.inputs[0]
    if skip:
        s = b.op("Add", [s, node.inputs[1]], tag="skip")
        bias = optional(bias_at)
        if bias is not None:
            s = b.op("Add", [s, bias], tag="bias")
        if len(node.outputs) > 3 and _used(graph, node.outputs[3]):
            b.op("Identity", [s], out=node.outputs[3], tag="sum")
    y = node.outputs[0]
    if simplified:
        mean_square = b.reduce_mean_last(b.op("Mul", [s, s], tag="square"), opset, "mean_square")
        root = b.op("Sqrt", [b.op("Add", [mean_square, b.const("eps", eps)], tag="eps")])
        b.op("Mul", [b.op("Div", [s, root], tag="normed"), gamma], out=y, tag="scale")
        return True
    if opset >= 17:
        inputs = [s, gamma] + ([beta] if beta is not None else [])
        b.op("LayerNormalization", inputs, {"axis": -1, "epsilon": eps}, out=y, tag="layer_norm")
        return True
    centred = b.op("Sub", [s, b.reduce_mean_last(s, opset, "mean")], tag="centred")
    variance = b.reduce_mean_last(b.op("Pow", [centred, b.const("two", 2.0)], tag="square"), opset, "variance")
    root = b.op("Sqrt", [b.op("Add", [variance, b.const("eps", eps)], tag="eps")])
    scaled = b.op("Div", [centred, root], tag="normed")
    if beta is None:
        b.op("Mul", [scaled, gamma], out=y, tag="scale")
    else:
        b.op("Add", [b.op("Mul", [scaled, gamma], tag="scale"), beta], out=y, tag="shift")
    return True


_EXPANSIONS = {
    "FusedConv": _fused_conv, "FusedGemm": _fused_gemm, "FusedMatMul": _fused_matmul,
    "Gelu": _gelu, "FastGelu": _gelu, "BiasGelu": _gelu, "QuickGelu": _quick_gelu,
    "SkipLayerNormalization": _norm, "SkipSimplifiedLayerNormalization": _norm,
    "SimplifiedLayerNormalization": _norm,
}


@register
class ExpandContribOps(Pass):
    """Replace onnxruntime's fused ``com.microsoft`` ops by the standard ops they stand for.

    A model saved by onnxruntime after its graph optimizations (``SessionOptions.optimized_model_filepath``
    at ``ORT_ENABLE_EXTENDED``) or by its transformer optimizer holds fused ops that only
    onnxruntime knows; each is the short sequence of standard ops below, which the rest of
    `normalize` then treats like any exporter's::

        FusedConv(X, W, B, Z) {activation=Relu}     ->  Relu(Add(Conv(X, W, B), Z))
        FusedGemm(A, B, C) {activation=LeakyRelu}   ->  LeakyRelu(Gemm(A, B, C))
        FusedMatMul(A, B) {alpha=a, transB=1}       ->  Mul(MatMul(A, B^T), a)
        QuickGelu(x) {alpha=a}                      ->  Mul(x, Sigmoid(Mul(x, a)))
        Gelu(x) / BiasGelu(x, b) / FastGelu(x, b)   ->  gelu(x + b): the erf form (tanh for FastGelu)
        SkipLayerNormalization(x, s, g, b, c)       ->  LayerNormalization(x + s + c, g, b) {axis=-1}
        SkipSimplifiedLayerNormalization(x, s, g)   ->  t = x + s;  Mul(Div(t, Sqrt(ReduceMean(t * t) + eps)), g)
        SimplifiedLayerNormalization(x, g)          ->  the same without the skip

    FusedConv/FusedGemm activations: Relu, Sigmoid, Tanh, LeakyRelu, HardSigmoid, Clip. A node this
    cannot expand (another activation, batch transposes of FusedMatMul, a layer norm whose mean or
    inverse deviation is read) is left for check-supported to name.
    """

    name = "expand-contrib-ops"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        opset = opset_of(model)
        expanded: dict[str, int] = {}
        for node in list(graph.nodes):
            domain = node.domain or ""
            expand = _EXPANSIONS.get(node.op)
            # SimplifiedLayerNormalization is onnxruntime's own op, registered in the ONNX domain
            if expand is None or not (domain == MS_DOMAIN or (node.op == "SimplifiedLayerNormalization"
                                                               and domain in DEFAULT_DOMAINS)):
                continue
            if not expand(_Builder(model, names, node), opset):   # decides before it adds a node
                continue
            set_tensors(node.outputs, [])
            set_tensors(node.inputs, [])
            expanded[node.op] = expanded.get(node.op, 0) + 1
        if expanded:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(expanded), {"expanded": sum(expanded.values()), **expanded})
