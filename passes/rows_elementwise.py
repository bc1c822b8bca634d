"""`rows-elementwise`: element-wise ops on the flattened rows ``[M, N]`` of a ``[1, ..., N]`` tensor run on the
tensor itself; the flatten moves to where the rows leave them."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, add_node, const_value, consumers, drop_unused,
                                   is_graph_output, new_constant, new_variable, origin_of, set_origin, set_tensors,
                                   static_shape)

#: Element-wise ops (the output has the shape of the broadcast inputs; no attribute names an axis).
ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Relu", "Sigmoid", "Tanh", "Erf", "Exp",
                         "Log", "Sqrt", "Neg", "Abs", "Reciprocal", "Softplus", "Softsign", "Elu", "LeakyRelu",
                         "HardSigmoid", "HardSwish", "Gelu", "Clip", "Identity"})


def _flatten(node: gs.Node) -> tuple[gs.Tensor, tuple[int, ...]] | None:
    """(x, its shape) when ``node`` is ``Reshape(x: [1, d..., N] -> [d1*...*dk, N])``, rank of x >= 3."""
    if node.op != "Reshape" or (node.domain or "") not in DEFAULT_DOMAINS:
        return None
    source, rows = static_shape(node.inputs[0]), static_shape(node.outputs[0])
    if source is None or rows is None or len(source) < 3 or source[0] != 1 \
            or tuple(rows) != (int(np.prod(source[:-1])), source[-1]) or rows[0] == 1:
        return None
    return node.inputs[0], tuple(source)


def _broadcasts_alike(tensor: gs.Tensor, width: int) -> bool:
    """A constant that broadcasts the same way against ``[M, width]`` and ``[1, ..., width]``: one value,
    or ``width`` values along the last axis."""
    value = const_value(tensor)
    return value is not None and (value.size == 1 or (value.shape[-1] == width and value.size == width))


@register
class RowsElementwise(Pass):
    """Run element-wise ops between a flatten to rows and the layers that read the rows on the unflattened tensor.

    onnx-simplifier with a fixed batch of 1 writes a channels-last MLP (ConvNeXt's ``Linear, GELU, Linear``
    on ``[1, H, W, C]``) as 2-D rows::

        r = Reshape(x [1, H, W, C], [H*W, C]);  a = Gemm(r, W1, b1)   ->  gemm-rows: a = Reshape(MatMul(x, W1) + b1)
        e = Mul(Mul(a, Add(Erf(Div(a, s)), 1)), 0.5);  g = Gemm(e, W2, b2);  y = Reshape(g, [1, H, W, C])

    `gemm-rows` turns a Gemm that reads a flatten into a MatMul on the tensor, but the second Gemm reads
    the GELU of the rows. Element-wise ops whose other operands are constants of one value or of one
    value per column broadcast alike on the rows and on the tensor, so they move before the flatten::

        r = Reshape(h [1, H, W, N], [H*W, N]);  e = Mul(r, Add(Erf(Div(r, s)), 1));  g = Gemm(e, W, b)
            ->
        e' = Mul(h, Add(Erf(Div(h, s)), 1));  g = Gemm(Reshape(e', [H*W, N]), W, b)

    Every region tensor that a node outside the region (or the graph's output) reads gets its own
    flatten; `gemm-rows` then rewrites the next Gemm, and canonicalize-reshape folds the flatten that a
    Reshape back reads.
    """

    name = "rows-elementwise"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        moved = 0
        for flatten in list(graph.nodes):
            found = _flatten(flatten)
            if found is None:
                continue
            x, shape = found
            region, tensors = self._region(graph, flatten.outputs[0], shape[-1])
            if not region:
                continue
            self._rewrite(model, names, flatten, x, shape, region, tensors)
            moved += len(region)
        if moved:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(moved), {"moved": moved})

    @staticmethod
    def _region(graph: gs.Graph, rows: gs.Tensor, width: int) -> tuple[list[gs.Node], set[int]]:
        """The element-wise nodes computed from ``rows`` (and constants that broadcast alike) of its shape,
        in graph order, and the ids of the row tensors (``rows`` and their outputs)."""
        tensors, region = {id(rows)}, []
        grew = True
        while grew:
            grew = False
            for node in graph.nodes:
                if node in region or node.op not in ELEMENTWISE or (node.domain or "") not in DEFAULT_DOMAINS \
                        or len(node.outputs) != 1 or not any(id(t) in tensors for t in node.inputs):
                    continue
                if all(id(t) in tensors or _broadcasts_alike(t, width) for t in node.inputs if t.name) \
                        and static_shape(node.outputs[0]) == static_shape(rows):
                    region.append(node)
                    tensors.add(id(node.outputs[0]))
                    grew = True
        return [n for n in graph.nodes if n in region], tensors

    @staticmethod
    def _rewrite(model: OnnxModel, names: NameSource, flatten: gs.Node, x: gs.Tensor, shape: tuple[int, ...],
                 region: list[gs.Node], tensors: set[int]) -> None:
        """Point ``region`` at ``x`` and the unflattened outputs; flatten each output read outside it."""
        graph = model.graph
        rows = flatten.outputs[0]
        unflat: dict[int, gs.Tensor] = {id(rows): x}
        inside = {id(n) for n in region}
        for node in region:
            old = node.outputs[0]
            new = new_variable(names, f"{old.name}_unflat", old.dtype, shape)
            unflat[id(old)] = new
            set_tensors(node.inputs, [unflat.get(id(t), t) for t in list(node.inputs)])
            readers = [r for r in consumers(old) if id(r) not in inside]
            set_tensors(node.outputs, [new])
            if readers or is_graph_output(graph, old):
                target = new_constant(names, f"{old.name}_rows", np.array(static_shape(old), np.int64))
                made = add_node(graph, names, "Reshape", f"{node.name}_rows", [new, target], [old])
                set_origin(model, made, origin_of(model, node))
