"""`fold-into-next`: a per-channel Mul/Add of a constant folded into the Gemm or Conv that reads it.

`fold-batchnorm` folds an affine map *after* a layer into it; this pass folds one *before* it, which
is how scikit-learn's StandardScaler / MinMaxScaler (``ml-to-onnx`` makes them ``Add`` + ``Mul``) and
a torch model's own input normalisation ``(x - mean) / std`` reach the first layer. Kept as steps,
they read the raw features at one Q format: tabular features spanning 0.001 .. 4000 lose the small
ones before any weight sees them. Folded, the first layer reads the raw input, whose features
`quantize` can then store at formats of their own (``feature-shift``, passes/quantize.py).

Before -> after (``s``, ``a``: per-channel vectors over the input channels ``c``)::

    t = Mul(x, s);  y = Gemm(t, W[N,K], B){transB=1}     ->  y = Gemm(x, W * s[None, :], B)
    t = Add(x, a);  y = Gemm(t, W, B)                    ->  y = Gemm(x, W, B + W @ a)
    t = Mul(x, s);  y = Conv(t, W, B)  (no padding)      ->  y = Conv(x, W * s[c(o, j)], B)
    t = Add(x, a);  y = Conv(t, W, B)  (no padding)      ->  y = Conv(x, W, B + sum_j,k W[o,j,k] a[c(o,j)])

where ``c(o, j)`` is the input channel that weight column ``j`` of output channel ``o`` reads (its
group's). Only when the layer is the Mul/Add's only reader and its output is not a graph output;
a Conv with padding is left alone (its zero padding would become ``a`` or ``0 * s`` padding).
Repeated, a chain Add -> Mul -> Gemm folds from the layer back.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.canonical_arith import channel_vector
from passes.fold_batchnorm import canonical_gemm
from passes.normalize_util import (NameSource, const_value, consumers, detach, drop_unused, is_empty,
                                   is_graph_output, merge_origin, new_constant, static_shape)


def _reader(graph: gs.Graph, node: gs.Node) -> gs.Node | None:
    """The Gemm / unpadded Conv that alone reads ``node``'s output as its data operand."""
    out = node.outputs[0]
    readers = consumers(out)
    if len(readers) != 1 or is_graph_output(graph, out):
        return None
    layer = readers[0]
    if layer.op not in ("Gemm", "Conv") or len(layer.inputs) < 2:
        return None
    if layer.domain not in (None, "", "ai.onnx") or layer.inputs[0] is not out \
            or any(t is out for t in layer.inputs[1:]) or const_value(layer.inputs[1]) is None:
        return None
    if len(layer.inputs) > 2 and not is_empty(layer.inputs[2]) and const_value(layer.inputs[2]) is None:
        return None
    if layer.op == "Gemm":
        return layer if canonical_gemm(layer) else None
    if layer.op == "Conv" and not any(int(p) for p in layer.attrs.get("pads", [])) \
            and layer.attrs.get("auto_pad", "NOTSET") in ("NOTSET", b"NOTSET", "VALID", b"VALID"):
        return layer
    return None


def input_channel_map(weight: np.ndarray, group: int) -> np.ndarray:
    """``[Cout, Cin / group]``: the input channel each weight column of each output channel reads."""
    cout, cin_g = weight.shape[0], weight.shape[1]
    return (np.arange(cout)[:, None] // (cout // group)) * cin_g + np.arange(cin_g)[None, :]


@register
class FoldIntoNext(Pass):
    """Fold a per-channel Mul/Add of a constant into the Gemm or unpadded Conv that alone reads it.

    Before -> after (see the module docstring)::

        y = Gemm(Mul(Add(x, a), s), W, B)   ->   y = Gemm(x, W * s, B + (W * s) @ a)
    """

    name = "fold-into-next"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        stats = {"folded-mul": 0, "folded-add": 0}
        again = True
        while again:
            again = False
            for node in list(graph.nodes):
                if node.op in ("Mul", "Add") and node.domain in (None, "", "ai.onnx") and self._fold(model, node, names):
                    stats["folded-" + node.op.lower()] += 1
                    again = True
        changed = any(stats.values())
        if changed:
            drop_unused(graph)
            graph.toposort()
        return PassResult(model, changed, stats)

    @staticmethod
    def _fold(model: OnnxModel, node: gs.Node, names: NameSource) -> bool:
        if len(node.inputs) != 2 or len(node.outputs) != 1:
            return False
        x, c = node.inputs
        value = const_value(c)
        if value is None:
            x, c = c, x
            value = const_value(c)
        shape = static_shape(x)
        if value is None or const_value(x) is not None or shape is None \
                or static_shape(node.outputs[0]) != shape:
            return False
        vector = channel_vector(value, shape)
        layer = _reader(model.graph, node) if vector is not None else None
        if layer is None:
            return False
        weight = np.asarray(const_value(layer.inputs[1]))
        channels = (np.arange(weight.shape[1])[None, :] if layer.op == "Gemm"
                    else input_channel_map(weight, int(layer.attrs.get("group", 1))))
        if int(channels.max()) + 1 != vector.size:
            return False
        per_column = vector.astype(np.float64)[channels]
        per_column = per_column.reshape(per_column.shape + (1,) * (weight.ndim - 2))
        bias_tensor = layer.inputs[2] if len(layer.inputs) > 2 and not is_empty(layer.inputs[2]) else None
        bias = (np.asarray(const_value(bias_tensor), dtype=np.float64).reshape(-1) if bias_tensor is not None
                else np.zeros(weight.shape[0]))
        if node.op == "Mul":
            w = weight.astype(np.float64) * per_column
            layer.inputs[1] = new_constant(names, f"{layer.inputs[1].name}_folded", w.astype(weight.dtype))
        else:
            bias = bias + (weight.astype(np.float64) * per_column).reshape(weight.shape[0], -1).sum(axis=1)
            b_const = new_constant(names, f"{layer.name}_bias", bias.astype(weight.dtype))
            if bias_tensor is None:
                while len(layer.inputs) < 2:
                    layer.inputs.append(gs.Variable.empty())
                layer.inputs.append(b_const)
            else:
                layer.inputs[2] = b_const
        layer.inputs[0] = x
        detach(node)
        merge_origin(model, layer, node)
        return True
