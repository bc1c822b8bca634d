"""`activation-arith`: Sub, Max and Min of two activations in terms of Add, Relu and a scale by -1."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.canonical_arith import channel_shape
from passes.normalize_util import (NameSource, add_node, detach, drop_unused, is_const, new_constant, new_variable,
                                   origin_of, set_origin, static_shape)


@register
class ActivationArith(Pass):
    """Rewrite the difference, maximum and minimum of two same-shape activations with supported ops.

    Before -> after (a, b: ``[1, C, ...]`` activations of the same shape; ``-1`` a per-channel
    constant, so ``Mul(., -1)`` lowers like a stand-alone BatchNorm scale)::

        y = Sub(a, b)  ->  y = Add(a, Mul(b, -1))
        y = Max(a, b)  ->  y = Add(a, Relu(Add(b, Mul(a, -1))))          (a + max(b - a, 0))
        y = Min(a, b)  ->  y = Add(a, Mul(Relu(Add(a, Mul(b, -1))), -1))  (a - max(a - b, 0))

    Keras' Subtract, Maximum and Minimum merge layers export as these nodes (tf2onnx). Operands that
    broadcast, constants (`canonicalize-arith` handles those) and Max/Min of more than two inputs
    are left as they are.
    """

    name = "activation-arith"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        counts = {"Sub": 0, "Max": 0, "Min": 0}
        for node in list(graph.nodes):
            if node.op not in counts or node.domain not in (None, "", "ai.onnx") or len(node.inputs) != 2:
                continue
            a, b = node.inputs
            shape = static_shape(a)
            if is_const(a) or is_const(b) or shape is None or len(shape) < 2 or shape[0] != 1 \
                    or static_shape(b) != shape or static_shape(node.outputs[0]) != shape:
                continue
            self._rewrite(model, names, node, a, b, shape)
            counts[node.op] += 1
        changed = any(counts.values())
        if changed:
            drop_unused(graph, toposort=True)
        return PassResult(model, changed, {f"rewritten-{k}": v for k, v in counts.items()})

    @staticmethod
    def _rewrite(model: OnnxModel, names: NameSource, node: gs.Node, a: gs.Tensor, b: gs.Tensor,
                 shape: tuple[int, ...]) -> None:
        graph, base, y, op = model.graph, node.name, node.outputs[0], node.op
        minus = new_constant(names, f"{base}_minus_one",
                             np.full(channel_shape(shape), -1.0, dtype=a.dtype or np.float32))
        made: list[gs.Node] = []

        def emit(kind: str, inputs: list[gs.Tensor], out: gs.Tensor | None = None) -> gs.Tensor:
            out = out if out is not None else new_variable(names, f"{base}_{kind.lower()}", a.dtype, shape)
            made.append(add_node(graph, names, kind, f"{base}_{kind.lower()}", inputs, [out]))
            return out

        detach(node)
        if op == "Sub":
            emit("Add", [a, emit("Mul", [b, minus])], y)
        elif op == "Max":
            emit("Add", [a, emit("Relu", [emit("Add", [b, emit("Mul", [a, minus])])])], y)
        else:
            emit("Add", [a, emit("Mul", [emit("Relu", [emit("Add", [a, emit("Mul", [b, minus])])]), minus])], y)
        for new in made:
            set_origin(model, new, origin_of(model, node))
