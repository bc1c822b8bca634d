"""`activation-arith`: Sub, Max and Min of two activations in terms of Add, Relu and a scale by -1;
Sum, Mean, Max and Min of several inputs as chains of two-input nodes; a reduction over the axis a
Concat stacked its inputs along as the n-ary op of those inputs."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.canonical_arith import channel_shape
from passes.normalize_util import (NameSource, add_node, consumers, detach, drop_unused, is_const, is_graph_output,
                                   new_constant, new_variable, opset_of, origin_of, producer, set_origin,
                                   static_shape)
from passes.reduce_mean_to_gap import reduce_axes


_STACK_REDUCE = {"ReduceMean": "Mean", "ReduceSum": "Sum", "ReduceMax": "Max", "ReduceMin": "Min"}
"""A reduction over a stacking axis and the n-ary op of the stacked parts that computes it."""


@register
class ActivationArith(Pass):
    """Rewrite the difference, maximum and minimum of two same-shape activations with supported ops.

    Before -> after (a, b: ``[1, C, ...]`` activations of the same shape; ``-1`` a per-channel
    constant, so ``Mul(., -1)`` lowers like a stand-alone BatchNorm scale)::

        y = Sub(a, b)  ->  y = Add(a, Mul(b, -1))
        y = Max(a, b)  ->  y = Add(a, Relu(Add(b, Mul(a, -1))))          (a + max(b - a, 0))
        y = Min(a, b)  ->  y = Add(a, Mul(Relu(Add(a, Mul(b, -1))), -1))  (a - max(a - b, 0))

        y = Sum(a, b, c)       ->  y = Add(Add(a, b), c)          (Sum(a): y = Identity(a))
        y = Mean(a, b, c)      ->  y = Mul(Add(Add(a, b), c), 1/3)
        y = Max(a, b, c)       ->  y = Max(Max(a, b), c)  -> as above  (Min alike)
        s = Concat(a, b, c) {axis=k};  y = ReduceMean(s) {axes=[k]}     (each part 1 long on axis k)
                               ->  y = Mean(Reshape(a, Y), Reshape(b, Y), Reshape(c, Y))  -> as above
          (ReduceSum/ReduceMax/ReduceMin alike: an ensemble's mean of its members' probabilities,
          torch.stack(parts).mean(0), skl2onnx's BaggingClassifier)

    Keras' Subtract, Maximum and Minimum merge layers export as these nodes (tf2onnx), scikit-learn's
    soft VotingClassifier a Sum of its members' probabilities (skl2onnx). The n-ary chains take any
    inputs (ONNX broadcasting stays with the Adds, and `canonicalize-arith` sees their constants);
    the two-input rewrites need two same-shape activations, and leave broadcasting operands and
    constants as they are.
    """

    name = "activation-arith"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        counts = {"Sub": 0, "Max": 0, "Min": 0, "n-ary": 0, "stack-reduce": 0}
        for node in list(graph.nodes):
            if node.op in _STACK_REDUCE and node.domain in (None, "", "ai.onnx") and self._unstack(model, names, node):
                counts["stack-reduce"] += 1
        for node in list(graph.nodes):
            if node.op in ("Sum", "Mean", "Max", "Min") and node.domain in (None, "", "ai.onnx") \
                    and (node.op in ("Sum", "Mean") or len(node.inputs) > 2) and node.inputs:
                self._chain(model, names, node)
                counts["n-ary"] += 1
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
    def _unstack(model: OnnxModel, names: NameSource, node: gs.Node) -> bool:
        """``Reduce*(Concat(parts) {axis=k}) {axes=[k]}`` -> the n-ary op of the parts reshaped to the
        reduction's output, when every part is 1 long on axis k and the Concat feeds nothing else."""
        stacked, y = node.inputs[0], node.outputs[0]
        concat, out_shape = producer(stacked), static_shape(y)
        if concat is None or concat.op != "Concat" or concat.domain not in (None, "", "ai.onnx") \
                or out_shape is None or len(consumers(stacked)) != 1 or is_graph_output(model.graph, stacked):
            return False
        shapes = [static_shape(t) for t in concat.inputs]
        if any(shape is None for shape in shapes) or not shapes:
            return False
        rank = len(shapes[0])
        axis = int(concat.attrs.get("axis", 0))
        axis = axis + rank if axis < 0 else axis
        if reduce_axes(node, rank, opset_of(model)) != [axis] or any(shape[axis] != 1 for shape in shapes):
            return False
        parts = []
        for part in concat.inputs:
            target = new_constant(names, f"{node.name}_part_shape", np.array(out_shape, dtype=np.int64))
            flat = new_variable(names, f"{node.name}_part", y.dtype, out_shape)
            set_origin(model, add_node(model.graph, names, "Reshape", f"{node.name}_part", [part, target], [flat]),
                       origin_of(model, concat))
            parts.append(flat)
        detach(node)
        detach(concat)
        merged = add_node(model.graph, names, _STACK_REDUCE[node.op], f"{node.name}_parts", parts, [y])
        set_origin(model, merged, origin_of(model, concat) + origin_of(model, node))
        return True

    @staticmethod
    def _chain(model: OnnxModel, names: NameSource, node: gs.Node) -> None:
        """An n-ary Sum/Mean/Max/Min as a left-leaning chain of two-input Add/Max/Min (Mean: then a
        scale by 1/n); the last node writes the original output."""
        graph, base, y = model.graph, node.name, node.outputs[0]
        op = {"Sum": "Add", "Mean": "Add"}.get(node.op, node.op)
        parts = list(node.inputs)
        detach(node)
        made: list[gs.Node] = []
        shape = static_shape(y)
        inner = shape if all(static_shape(p) == shape for p in parts) else None   # else infer-shapes' job
        last_out = y if node.op != "Mean" else new_variable(names, f"{base}_sum", y.dtype, inner)
        if len(parts) == 1:
            made.append(add_node(graph, names, "Identity", f"{base}_one", parts, [last_out]))
        acc = parts[0]
        for i, part in enumerate(parts[1:], start=1):
            out = last_out if i == len(parts) - 1 else new_variable(names, f"{base}_{op.lower()}{i}", y.dtype, inner)
            made.append(add_node(graph, names, op, f"{base}_{op.lower()}{i}", [acc, part], [out]))
            acc = out
        if node.op == "Mean":
            scale = new_constant(names, f"{base}_reciprocal", np.array(1.0 / len(parts), dtype=np.float32))
            made.append(add_node(graph, names, "Mul", f"{base}_mean", [last_out, scale], [y]))
        for new in made:
            set_origin(model, new, origin_of(model, node))

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
