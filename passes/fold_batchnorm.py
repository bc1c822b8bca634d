"""`fold-batchnorm`: BatchNormalization (and per-channel Mul/Add) folded into Conv/Gemm weights."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.canonical_arith import channel_shape, channel_vector
from passes.normalize_util import (NameSource, add_node, const_value, consumers, detach, drop_unused, is_empty,
                                   is_graph_output, is_read, merge_origin, new_constant, new_variable, origin_of,
                                   producer, set_origin, set_tensors, static_shape)


def batchnorm_affine(graph: gs.Graph, node: gs.Node) -> tuple[np.ndarray, np.ndarray] | None:
    """(scale, shift) per channel of an inference-mode BatchNormalization with constant statistics."""
    if int(node.attrs.get("training_mode", 0)) != 0 or len(node.inputs) != 5:
        return None
    if any(is_read(graph, t) for t in node.outputs[1:]):
        return None
    values = [const_value(t) for t in node.inputs[1:]]
    if any(v is None for v in values):
        return None
    gamma, beta, mean, var = (np.asarray(v, dtype=np.float64).reshape(-1) for v in values)
    eps = float(node.attrs.get("epsilon", 1e-5))
    scale = gamma / np.sqrt(var + eps)
    return scale, beta - mean * scale


def canonical_gemm(node: gs.Node) -> bool:
    attrs = node.attrs
    weight = const_value(node.inputs[1]) if len(node.inputs) > 1 else None
    bias_ok = (len(node.inputs) < 3 or is_empty(node.inputs[2])
               or (const_value(node.inputs[2]) is not None and const_value(node.inputs[2]).ndim == 1))
    return (weight is not None and weight.ndim == 2 and bias_ok and int(attrs.get("transA", 0)) == 0
            and int(attrs.get("transB", 0)) == 1 and float(attrs.get("alpha", 1.0)) == 1.0
            and float(attrs.get("beta", 1.0)) == 1.0)


def _foldable_layer(graph: gs.Graph, tensor: gs.Tensor) -> gs.Node | None:
    """The Conv/canonical Gemm writing ``tensor`` if nothing else reads ``tensor``."""
    layer = producer(tensor)
    if layer is None or layer.domain not in (None, "", "ai.onnx") or len(consumers(tensor)) != 1:
        return None
    if is_graph_output(graph, tensor):
        return None
    if layer.op == "Conv" and const_value(layer.inputs[1]) is not None and (
            len(layer.inputs) < 3 or is_empty(layer.inputs[2]) or const_value(layer.inputs[2]) is not None):
        return layer
    if layer.op == "Gemm" and canonical_gemm(layer):
        return layer
    return None


@register
class FoldBatchNorm(Pass):
    """Fold BatchNormalization into the Conv/Gemm before it; make a stand-alone one Mul + Add.

    Before -> after (s = gamma / sqrt(var + eps), t = beta - mean * s, per channel)::

        y = BatchNormalization(Conv(x, W, B), gamma, beta, mean, var)
                                  ->  y = Conv(x, W * s[:,None,None,None], B * s + t)   origin [conv, bn]
        y = BatchNormalization(Gemm(x, W[N,K], C) {transB=1}, ...)
                                  ->  y = Gemm(x, W * s[:,None], C * s + t)             origin [gemm, bn]
        y = BatchNormalization(x, ...)   (x not a foldable layer's only output)
                                  ->  y = Add(Mul(x, s[C,1,1]), t[C,1,1])
        y = Add(Mul(Conv(x, W, B), m[C,1,1]), a[C,1,1])
                                  ->  y = Conv(x, W * m, B * m + a)                     (same for Gemm)

    A layer is folded into only when the BatchNormalization (or Mul/Add) is the only reader of its
    output, which is not a graph output. Training-mode BatchNormalization and one whose running-stat
    outputs are read are left for `check-supported`.
    """

    name = "fold-batchnorm"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        stats = {"batchnorm-split": 0, "batchnorm-folded": 0, "folded-mul": 0, "folded-add": 0}
        made: set[str] = set()
        for node in list(graph.nodes):
            if node.op == "BatchNormalization" and node.domain in (None, "", "ai.onnx"):
                split = self._split(model, node, names)
                if split is not None:
                    made.add(split)
        for node in list(graph.nodes):
            if node.op in ("Mul", "Add") and node.inputs and node.outputs:
                if self._fold(model, node, names):
                    stats["folded-" + node.op.lower()] += 1
                    stats["batchnorm-folded"] += node.name in made
        stats["batchnorm-split"] = len(made) - stats["batchnorm-folded"]
        changed = any(stats.values())
        if changed:
            drop_unused(graph)
            graph.toposort()
        return PassResult(model, changed, stats)

    @staticmethod
    def _split(model: OnnxModel, node: gs.Node, names: NameSource) -> str | None:
        """BatchNormalization -> Mul(x, s) -> Add(., t); returns the Mul's name (None: not split)."""
        affine = batchnorm_affine(model.graph, node)
        shape = static_shape(node.inputs[0])
        if affine is None or shape is None or len(shape) < 2 or shape[0] != 1 or shape[1] != affine[0].size:
            return None
        scale, shift = affine
        x, y = node.inputs[0], node.outputs[0]
        dtype = np.dtype(x.dtype or np.float32)
        target = channel_shape(shape)
        detach(node)
        scaled = new_variable(names, f"{node.name}_scaled", x.dtype, shape)
        s_const = new_constant(names, f"{node.name}_scale", scale.astype(dtype).reshape(target))
        t_const = new_constant(names, f"{node.name}_shift", shift.astype(dtype).reshape(target))
        origin = origin_of(model, node)
        mul = add_node(model.graph, names, "Mul", f"{node.name}_mul", [x, s_const], [scaled])
        add = add_node(model.graph, names, "Add", f"{node.name}_add", [scaled, t_const], [y])
        set_origin(model, mul, origin)
        set_origin(model, add, origin)
        return mul.name

    @staticmethod
    def _fold(model: OnnxModel, node: gs.Node, names: NameSource) -> bool:
        """Absorb a per-channel Mul/Add of a constant into the Conv/Gemm that feeds it."""
        if len(node.inputs) != 2:
            return False
        x, c = node.inputs
        value = const_value(c)
        layer = _foldable_layer(model.graph, x) if value is not None else None
        shape = static_shape(x)
        if layer is None or shape is None or static_shape(node.outputs[0]) != shape:
            return False
        vector = channel_vector(value, shape)
        if vector is None:
            return False
        weight = const_value(layer.inputs[1])
        bias_tensor = layer.inputs[2] if len(layer.inputs) > 2 and not is_empty(layer.inputs[2]) else None
        bias = const_value(bias_tensor) if bias_tensor is not None else np.zeros(weight.shape[0], weight.dtype)
        vector = vector.astype(np.float64)
        if node.op == "Mul":
            weight = (weight * vector.reshape((-1,) + (1,) * (weight.ndim - 1))).astype(weight.dtype)
            bias = (bias.astype(np.float64) * vector).astype(bias.dtype)
        else:
            bias = (bias.astype(np.float64) + vector).astype(bias.dtype)
        if node.op == "Mul":
            layer.inputs[1] = new_constant(names, f"{layer.inputs[1].name}_folded", weight)
        b_const = new_constant(names, f"{layer.name}_bias", np.ascontiguousarray(bias.reshape(-1)))
        if bias_tensor is None:
            while len(layer.inputs) < 2:
                layer.inputs.append(gs.Variable.empty())
            layer.inputs.append(b_const)
        else:
            layer.inputs[2] = b_const
        out = node.outputs[0]
        detach(node)
        set_tensors(layer.outputs, [out])
        merge_origin(model, layer, node)
        return True
