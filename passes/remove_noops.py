"""`remove-noops`: remove nodes that pass their input through unchanged at inference time."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, bypass, const_value, consumers, drop_unused, is_empty, is_graph_output,
                                   is_read, new_constant, static_shape)

_RESHAPING = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Expand")


def _dropout_is_noop(graph: gs.Graph, node: gs.Node) -> bool:
    """Dropout is the identity unless training_mode is on (or unknown) or its mask is read."""
    if len(node.inputs) >= 3 and not is_empty(node.inputs[2]):
        mode = const_value(node.inputs[2])
        if mode is None or bool(np.any(mode)):
            return False
    if int(node.attrs.get("is_test", 1)) == 0 and "is_test" in node.attrs:
        return False
    return not any(is_read(graph, t) for t in node.outputs[1:])


def _cast_is_noop(node: gs.Node) -> bool:
    source = node.inputs[0].dtype
    if source is None or "to" not in node.attrs:
        return False
    target = onnx.helper.tensor_dtype_to_np_dtype(int(node.attrs["to"]))
    return np.dtype(source) == np.dtype(target)


def _reshape_is_noop(node: gs.Node) -> bool:
    before, after = static_shape(node.inputs[0]), static_shape(node.outputs[0])
    return before is not None and before == after


def _one_operand(node: gs.Node) -> int | None:
    """The index of the constant 1 (one element, rank <= 1: it broadcasts to the other operand's
    shape) of a ``Mul``, or None (onnxmltools writes ``Mul(probabilities, 1)``)."""
    if node.op != "Mul" or len(node.inputs) != 2:
        return None
    for i, tensor in enumerate(node.inputs):
        value = const_value(tensor)
        if value is not None and value.size == 1 and value.ndim <= 1 and float(value.reshape(-1)[0]) == 1.0 \
                and const_value(node.inputs[1 - i]) is None:
            return i
    return None


def kept_input(node: gs.Node) -> int:
    """The input a no-op (:func:`noop_reason`) passes through: the first, a Mul's other operand, or
    an Add's operand other than the zero."""
    zero = zero_operand(node)
    if zero is not None:
        return zero
    one = _one_operand(node)
    return 0 if one is None else 1 - one


def _zero(tensor: gs.Tensor) -> bool:
    """Whether ``tensor`` is a constant of zeros only."""
    value = const_value(tensor)
    return value is not None and value.size > 0 and not np.any(value)


def zero_operand(node: gs.Node) -> int | None:
    """The index of the input ``Add(x, 0)``, ``Add(0, x)`` or ``Sub(x, 0)`` passes through (the zero
    constant does not enlarge ``x`` by broadcasting), else None."""
    if node.op not in ("Add", "Sub") or len(node.inputs) != 2 or node.domain not in (None, "", "ai.onnx"):
        return None
    out = static_shape(node.outputs[0])
    for keep in ((0, 1) if node.op == "Add" else (0,)):
        x, other = node.inputs[keep], node.inputs[1 - keep]
        if _zero(other) and out is not None and static_shape(x) == out and x.dtype == node.outputs[0].dtype:
            return keep
    return None


def zero_product(graph: gs.Graph, node: gs.Node) -> bool:
    """Whether ``node`` is ``Mul(x, 0)`` (either side) with a static output that is not a graph output:
    its value is zeros whatever ``x`` is (a recurrent layer's product with its zero initial state)."""
    return (node.op == "Mul" and node.domain in (None, "", "ai.onnx") and len(node.inputs) == 2
            and any(_zero(t) for t in node.inputs) and static_shape(node.outputs[0]) is not None
            and not is_graph_output(graph, node.outputs[0]))


def noop_reason(graph: gs.Graph, node: gs.Node) -> str | None:
    """Why ``node`` is a no-op (a stats key), or None if it is not one."""
    if node.domain not in (None, "", "ai.onnx") or not node.inputs or not node.outputs:
        return None
    if node.op == "Identity":
        return "Identity"
    if node.op == "Dropout" and _dropout_is_noop(graph, node):
        return "Dropout"
    if node.op == "Cast" and _cast_is_noop(node):
        return "Cast"
    if node.op in _RESHAPING and _reshape_is_noop(node):
        return node.op
    if _one_operand(node) is not None:
        return "Mul-by-one"
    if zero_operand(node) is not None:
        return f"{node.op}-zero"
    if node.op == "Concat" and len(node.inputs) == 1:
        return "Concat"
    if node.op == "Transpose" and "perm" in node.attrs and \
            [int(p) for p in node.attrs["perm"]] == list(range(len(node.attrs["perm"]))):
        return "Transpose"
    return None


@register
class RemoveNoops(Pass):
    """Remove Identity, inference-mode Dropout, Cast to the same type, shape-keeping reshapes, identity
    Transposes, Concats of one input (the legacy exporter's circular padding of 0), products with a
    constant 1, additions of zero, and products with zero (their zeros become a constant).

    Before -> after::

        y = Identity(x); z = Relu(y)           ->  z = Relu(x)
        y, mask = Dropout(x, 0.5)  (mask unused)->  (readers of y read x)
        y = Cast(x: float32) {to=FLOAT}         ->  (readers of y read x)
        y = Reshape(x: [1,10], [1,10])          ->  (readers of y read x)
        y = Transpose(x) {perm=[0,1,2]}         ->  (readers of y read x)
        y = Concat(x) {axis=any}  (one input)   ->  (readers of y read x)
        y = Mul(x, Constant(1.0))               ->  (readers of y read x)
        out = Identity(Softmax(x))  (graph out) ->  out = Softmax(x)    (the output keeps its name)
        y = Add(x, zeros) | Sub(x, zeros)       ->  (readers of y read x)
        y = Mul(x, zeros)                       ->  (readers of y read a constant of zeros of y's shape)

    The zero forms are what a recurrent layer unrolled from a zero initial state leaves at its first
    step (Keras ``LSTM(unroll=True)``: ``f * c0 + i * g`` with ``c0 = 0``); without them the zero
    term's calibration range (0) and the other's would need Q formats 16 bits apart.

    A Dropout whose mask is read or whose ``training_mode`` is not a constant false is kept (and
    rejected later by `check-supported`). A no-op that connects a graph input straight to a graph
    output cannot go and is kept.
    """

    name = "remove-noops"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        removed: dict[str, int] = {}
        kept = 0
        names = NameSource(graph)
        for node in list(graph.nodes):
            if zero_product(graph, node):
                shape = static_shape(node.outputs[0])
                assert shape is not None
                dtype = node.outputs[0].dtype or np.float32
                zeros = new_constant(names, f"{node.name}_zeros", np.zeros(shape, dtype=dtype))
                for reader in consumers(node.outputs[0]):
                    for i, tensor in enumerate(list(reader.inputs)):
                        if tensor is node.outputs[0]:
                            reader.inputs[i] = zeros
                removed["Mul-zero"] = removed.get("Mul-zero", 0) + 1
                continue
            reason = noop_reason(graph, node)
            if reason is None:
                continue
            if bypass(graph, node, keep=kept_input(node)):
                removed[reason] = removed.get(reason, 0) + 1
            else:
                kept += 1
        if removed:
            drop_unused(graph)
        stats: dict[str, object] = {"removed": sum(removed.values()), **{f"removed-{k}": v for k, v in removed.items()}}
        if kept:
            stats["kept-unremovable"] = kept
        return PassResult(model, bool(removed), stats)
