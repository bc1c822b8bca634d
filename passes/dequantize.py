"""`dequantize`: an int8 QDQ model (onnxruntime.quantization's ``QuantFormat.QDQ``, the QDQ form
other quantizers write) as the float model its weights stand for.

freeml-tx quantizes to Q15 itself from calibration data, so the int8 grid of a QDQ model is only
where its weights come from. A ``DequantizeLinear`` of constants (a weight or a bias) becomes its
float value, ``(q - zero_point) * scale`` per tensor or per ``axis``; a ``QuantizeLinear`` of a
constant (weights fake-quantized in the graph) folds the same way, saturating to its type.

A per-tensor ``QuantizeLinear -> DequantizeLinear`` pair on an activation rounds it to the int8
grid and clamps it to the range its integer type covers, ``[(qmin - zp) * s, (qmax - zp) * s]``;
it becomes that ``Clip``. The clamp matters: the quantizer removes a ReLU (or ReLU6) before a
QuantizeLinear whose range starts at 0 and leaves it to the int8 grid (the Clip then fuses into
the layer as the ReLU would have), and elsewhere it saturates values beyond the calibrated range
as onnxruntime does. The activation is carried in a 16-bit format, finer than int8, so the result
is the float model with the int8 weights and the clamps: it differs from onnxruntime on the QDQ
model by that model's own activation rounding (this pass does not preserve semantics exactly).
Blocked quantization (``block_size``, opset 21) and Q/DQ nodes in any other form stay for
`check-supported`, which names the model as quantized.

Before -> after::

    w = DequantizeLinear(Wq[8,3,3,3] int8, s[8], zp[8]) {axis=0}
    q = QuantizeLinear(x, sx, zx int8); d = DequantizeLinear(q, sx, zx); y = Conv(d, w)
    ->  d = Clip(x, (-128 - zx) * sx, (127 - zx) * sx); y = Conv(d, W)
        W = (Wq - zp) * s per output channel                (zx = -128: d = Clip(x, 0, 255 * sx))
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, const_value, consumers, drop_unused, is_empty,
                                   new_constant, set_tensors)

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def _parameters(node: gs.Node) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The constant scale and zero point (None: absent) of a Q/DQ node; None when they are not
    constants or the node quantizes by blocks."""
    scale = const_value(node.inputs[1]) if len(node.inputs) > 1 else None
    has_zero = len(node.inputs) > 2 and not is_empty(node.inputs[2])
    zero = const_value(node.inputs[2]) if has_zero else None
    if scale is None or (has_zero and zero is None) or int(node.attrs.get("block_size", 0)) or scale.ndim > 1:
        return None
    return scale, zero


def _quantized_type(node: gs.Node, zero: np.ndarray | None) -> np.dtype:
    """The integer type a QuantizeLinear writes: its zero point's, else ``output_dtype``, else uint8."""
    if zero is not None:
        return zero.dtype
    if "output_dtype" in node.attrs:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(node.attrs["output_dtype"])))
    return np.dtype(np.uint8)


def _folded(node: gs.Node) -> np.ndarray | None:
    """The value of a Q/DQ node whose inputs are all constants (None: not such a node)."""
    value = const_value(node.inputs[0])
    params = _parameters(node)
    if value is None or params is None or value.ndim == 0 and params[0].size > 1:
        return None
    scale, zero = params
    zero = np.zeros((), np.int64) if zero is None else zero
    if scale.size > 1:
        shape = [1] * value.ndim
        shape[int(node.attrs.get("axis", 1)) % value.ndim] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    if node.op == "DequantizeLinear":
        return ((value.astype(np.float64) - zero.astype(np.float64)) * scale).astype(scale.dtype)
    target = _quantized_type(node, params[1])
    if target.kind not in "iu":
        return None
    info = np.iinfo(target)
    quantized = np.rint(value.astype(np.float64) / scale) + zero.astype(np.float64)
    return np.clip(quantized, info.min, info.max).astype(target)


def _clamp(q: gs.Node) -> tuple[float, float] | None:
    """The float range a per-tensor QuantizeLinear's integer type covers (None: per axis, not
    constant parameters, or not an integer type)."""
    params = _parameters(q)
    if params is None or params[0].size != 1:
        return None
    target = _quantized_type(q, params[1])
    if target.kind not in "iu":
        return None
    scale = float(params[0].reshape(-1)[0])
    zero = 0 if params[1] is None else int(params[1].reshape(-1)[0])
    info = np.iinfo(target)
    return (info.min - zero) * scale, (info.max - zero) * scale


def _same_grid(q: gs.Node, dq: gs.Node) -> bool:
    """Do the QuantizeLinear ``q`` and the DequantizeLinear ``dq`` use the same scale and zero point?"""
    mine, theirs = _parameters(q), _parameters(dq)
    if mine is None or theirs is None or not np.array_equal(mine[0], theirs[0]):
        return False
    zeros = [np.zeros(1) if z is None else z.astype(np.float64) for z in (mine[1], theirs[1])]
    return np.array_equal(*zeros) and q.attrs.get("axis", 1) == dq.attrs.get("axis", 1)


@register
class Dequantize(Pass):
    """Fold a QDQ model's constant Q/DQ nodes and make its activation Q -> DQ pairs Clips (module
    docstring)."""

    name = "dequantize"
    level = "onnx"
    preserves_semantics = False    # the activations' int8 rounding is dropped

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        folded = clamps = 0
        for node in list(graph.nodes):      # topological: a Q of a constant folds before its DQ
            if node.op not in QDQ_OPS or (node.domain or "") not in DEFAULT_DOMAINS:
                continue
            value = _folded(node)
            if value is not None:
                out = node.outputs[0]
                node.outputs.clear()
                out.to_constant(value)
                folded += 1
        for dq in list(graph.nodes):
            q = dq.inputs[0].inputs[0] if dq.op == "DequantizeLinear" and dq.inputs and dq.inputs[0].inputs else None
            if q is None or q.op != "QuantizeLinear" or (q.domain or "") not in DEFAULT_DOMAINS or \
                    (dq.domain or "") not in DEFAULT_DOMAINS or not _same_grid(q, dq) or \
                    any(reader.op != "DequantizeLinear" for reader in consumers(q.outputs[0])):
                continue
            bounds = _clamp(q)
            if bounds is None:
                continue
            dq.op = "Clip"
            dq.attrs.clear()
            limits = [new_constant(names, f"{dq.name}_{what}", np.array(v, np.float32))
                      for what, v in zip(("min", "max"), bounds)]
            set_tensors(dq.inputs, [q.inputs[0], *limits])
            clamps += 1
        if folded or clamps:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(folded or clamps), {"constants-folded": folded, "pairs-to-clip": clamps})
