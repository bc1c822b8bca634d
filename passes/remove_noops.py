"""`remove-noops`: remove nodes that pass their input through unchanged at inference time."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import bypass, const_value, drop_unused, is_empty, is_read, static_shape

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
    """The input a no-op (:func:`noop_reason`) passes through: the first, or a Mul's other operand."""
    one = _one_operand(node)
    return 0 if one is None else 1 - one


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
    if node.op == "Transpose" and "perm" in node.attrs and \
            [int(p) for p in node.attrs["perm"]] == list(range(len(node.attrs["perm"]))):
        return "Transpose"
    return None


@register
class RemoveNoops(Pass):
    """Remove Identity, inference-mode Dropout, Cast to the same type, shape-keeping reshapes, identity
    Transposes and products with a constant 1.

    Before -> after::

        y = Identity(x); z = Relu(y)           ->  z = Relu(x)
        y, mask = Dropout(x, 0.5)  (mask unused)->  (readers of y read x)
        y = Cast(x: float32) {to=FLOAT}         ->  (readers of y read x)
        y = Reshape(x: [1,10], [1,10])          ->  (readers of y read x)
        y = Transpose(x) {perm=[0,1,2]}         ->  (readers of y read x)
        y = Mul(x, Constant(1.0))               ->  (readers of y read x)
        out = Identity(Softmax(x))  (graph out) ->  out = Softmax(x)    (the output keeps its name)

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
        for node in list(graph.nodes):
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
