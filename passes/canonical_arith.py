"""`canonicalize-arith`: element-wise arithmetic with constants in the forms `lower` reads."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, add_node, const_value, drop_unused, is_const, new_constant, origin_of,
                                   set_origin, static_shape)


def channel_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The canonical shape of a per-channel constant for an activation of ``shape`` ``[1, C, ...]``.

    ``[C, 1, 1]`` for 2-D maps, ``[C, 1]`` for 1-D, ``[1, N]`` for a vector (where per channel and per
    element are the same thing).
    """
    if len(shape) == 2:
        return (1, shape[1])
    return (shape[1], *([1] * (len(shape) - 2)))


def channel_vector(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``value`` as a ``[C]`` vector if it is a per-channel constant for ``shape`` ``[1, C, ...]``."""
    if len(shape) < 2 or shape[0] != 1 or value.ndim > len(shape):
        return None
    aligned = value.reshape((1,) * (len(shape) - value.ndim) + value.shape)
    if any(v not in (1, s) for v, s in zip(aligned.shape, shape)):
        return None
    if any(v != 1 for i, v in enumerate(aligned.shape) if i != 1):
        return None
    return np.ascontiguousarray(np.broadcast_to(aligned.reshape(-1), (shape[1],)))


def canonical_constant(op: str, value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``value`` reshaped to the canonical per-channel (or, for Add, per-element) form, or None.

    None when ``value`` does not broadcast into ``shape`` without enlarging it, or when it varies
    along the spatial axes of a Mul (a per-element scale is not in the normal form).
    """
    channels = channel_vector(value, shape)
    if channels is not None:
        return channels.reshape(channel_shape(shape))
    if op != "Add" or len(shape) < 2 or shape[0] != 1 or value.ndim > len(shape):
        return None
    aligned = value.reshape((1,) * (len(shape) - value.ndim) + value.shape)
    if any(v not in (1, s) for v, s in zip(aligned.shape, shape)):
        return None
    return np.ascontiguousarray(np.broadcast_to(aligned, shape))


@register
class CanonicalizeArith(Pass):
    """Rewrite Sub/Div by constants into Add/Mul and give their constants the canonical shape.

    Before -> after (x: [1,C,H,W] an activation)::

        Sub(x, c)              ->  Add(x, -c)
        Neg(x)                 ->  Mul(x, -1)
        Sub(c, x)              ->  Add(Mul(x, -1), c)
        Div(x, c)              ->  Mul(x, 1/c)
        Add(c, x), Mul(c, x)   ->  Add(x, c), Mul(x, c)           (activation first)
        Mul(x, c[1,C,1,1])     ->  Mul(x, c[C,1,1])                (per channel: [C,1,1] / [C,1] / [1,N])
        Add(x, 2.0)            ->  Add(x, [2.0]*C as [C,1,1])
        Add(x, c[H,W])         ->  Add(x, c broadcast to [1,C,H,W]) (per element: the activation's shape)
        Max(x, c), Min(x, c)   ->  Clip(x, c, ''), Clip(x, '', c)  (c one number: torch.clamp from dynamo)

    Constants that would enlarge the activation by broadcasting, and per-element Mul constants, are
    left for `check-supported` to report.
    """

    name = "canonicalize-arith"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        counts = {"sub-to-add": 0, "div-to-mul": 0, "swapped": 0, "constants-reshaped": 0, "to-clip": 0,
                  "negated": 0}
        for node in list(graph.nodes):
            if node.domain not in (None, "", "ai.onnx"):
                continue
            if node.op == "Neg" or (node.op == "Sub" and len(node.inputs) == 2 and is_const(node.inputs[0])):
                self._negate(model, node, names, counts)
            if len(node.inputs) != 2:
                continue
            if node.op in ("Max", "Min"):
                self._clamp(node, names, counts)
            if node.op in ("Sub", "Div"):
                self._invert(node, names, counts)
            if node.op in ("Add", "Mul"):
                self._canonical(node, names, counts)
        changed = any(counts.values())
        if changed:
            drop_unused(graph, toposort=counts["negated"] > 0)
        return PassResult(model, changed, counts)

    @staticmethod
    def _clamp(node: gs.Node, names: NameSource, counts: dict[str, int]) -> None:
        """Max/Min of an activation and one constant number -> Clip with that bound (the other one
        empty: `explicit-attributes` fills it)."""
        a, b = node.inputs
        x, c = (b, a) if is_const(a) else (a, b)
        value = const_value(c)
        if value is None or is_const(x) or value.size != 1 or not np.issubdtype(value.dtype, np.floating) \
                or static_shape(x) is None or static_shape(x) != static_shape(node.outputs[0]):
            return
        bound = new_constant(names, f"{c.name}_bound", value.reshape(())) if value.ndim else c
        empty = gs.Variable.empty()
        node.inputs.clear()
        node.inputs.extend([x, bound, empty] if node.op == "Max" else [x, empty, bound])
        node.op = "Clip"
        counts["to-clip"] += 1

    @staticmethod
    def _negate(model: OnnxModel, node: gs.Node, names: NameSource, counts: dict[str, int]) -> None:
        """Neg(x) -> Mul(x, -1); Sub(c, x) -> Add(Mul(x, -1), c): a constant scale and offset."""
        x = node.inputs[-1]
        shape = static_shape(x)
        if is_const(x) or x.dtype is None or not np.issubdtype(np.dtype(x.dtype), np.floating) or shape is None:
            return
        minus_one = new_constant(names, f"{node.name}_minus_one", np.array(-1.0, dtype=np.dtype(x.dtype)))
        if node.op == "Neg":
            node.op = "Mul"
            node.inputs.clear()
            node.inputs.extend([x, minus_one])
        else:
            c = node.inputs[0]
            negated = gs.Variable(names.fresh(f"{node.name}_neg"), dtype=x.dtype, shape=list(shape))
            mul = add_node(model.graph, names, "Mul", f"{node.name}_neg", [x, minus_one], [negated])
            set_origin(model, mul, origin_of(model, node))
            node.op = "Add"
            node.inputs.clear()
            node.inputs.extend([negated, c])
        counts["negated"] += 1

    @staticmethod
    def _invert(node: gs.Node, names: NameSource, counts: dict[str, int]) -> None:
        x, c = node.inputs
        value = const_value(c)
        if value is None or is_const(x) or not np.issubdtype(value.dtype, np.floating):
            return
        if node.op == "Sub":
            node.op = "Add"
            new = -value
            counts["sub-to-add"] += 1
        else:
            node.op = "Mul"
            with np.errstate(divide="ignore"):
                new = (np.asarray(1.0, dtype=value.dtype) / value).astype(value.dtype)
            counts["div-to-mul"] += 1
        node.inputs[1] = new_constant(names, f"{c.name}_{node.op.lower()}", new)

    @staticmethod
    def _canonical(node: gs.Node, names: NameSource, counts: dict[str, int]) -> None:
        a, b = node.inputs
        if is_const(a) and not is_const(b):
            node.inputs[0], node.inputs[1] = b, a
            counts["swapped"] += 1
            a, b = b, a
        value = const_value(b)
        shape = static_shape(a)
        if value is None or is_const(a) or shape is None or static_shape(node.outputs[0]) != shape:
            return
        new = canonical_constant(node.op, value, shape)
        if new is None or (new.shape == value.shape and np.array_equal(new, value)):
            return
        node.inputs[1] = new_constant(names, f"{b.name}_{len(shape)}d", new.astype(value.dtype))
        counts["constants-reshaped"] += 1
