"""`canonicalize-reshape`: Flatten/Reshape/Squeeze/Unsqueeze in the forms the normal form allows."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, const_value, consumers, drop_unused, is_graph_output, new_constant,
                                   origin_of, producer, set_origin, set_tensors, static_shape)

_SHAPE_OPS = ("Flatten", "Reshape", "Squeeze", "Unsqueeze")


def _is_shape_op(node: gs.Node | None) -> bool:
    return node is not None and node.op in _SHAPE_OPS and node.domain in (None, "", "ai.onnx")


def _perm(node: gs.Node, rank: int) -> list[int]:
    """A Transpose's permutation (ONNX's default: the axes reversed)."""
    return [int(p) for p in node.attrs.get("perm", list(reversed(range(rank))))]


def _moves_no_element(shape: tuple[int, ...], perm: list[int]) -> bool:
    """Whether transposing ``shape`` by ``perm`` keeps every element at its flat index: the axes
    longer than 1 stay in their order, only axes of length 1 move."""
    long_axes = [axis for axis in perm if shape[axis] != 1]
    return long_axes == sorted(long_axes)


@register
class CanonicalizeReshape(Pass):
    """Give every reshape-like node a constant, fully explicit target shape.

    Before -> after (shapes static, batch 1)::

        Flatten(x: [1,C,H,W]) {axis=0}     ->  Flatten(x) {axis=1}              (same output [1,CHW])
        Flatten(x: [1,C,H,W]) {axis=2}     ->  Reshape(x, [C, H*W])             (check-supported rejects)
        Reshape(x: [1,C,H,W], [-1, 0])     ->  Reshape(x, [1, C*H*W])  ... any 0/-1 resolved
        Reshape(x, Concat(Gather(Shape(x), 0), [-1]))   (folded by fold-constants first)
                                           ->  Reshape(x, [1, N])
        Squeeze(x: [1,C,1,1], [2,3])       ->  Reshape(x, [1, C])
        Unsqueeze(x: [1,C,L], [2])         ->  Reshape(x, [1, C, 1, L])
        Reshape(Flatten(x))  (inner read only here) ->  Reshape(x)    origin [flatten, reshape]
        Transpose(x: [1,8]) {perm=[1,0]}   ->  Reshape(x, [8, 1])
                       (a permutation that keeps the order of the axes longer than 1 moves no element)

    The target shape is the statically inferred output shape, so `lower` never resolves 0 or -1.
    Whether a target shape is allowed at all (``[1, N]``, ``[1, C, L]``, ``[1, C, H, W]``) is for
    `check-supported`.
    """

    name = "canonicalize-reshape"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        stats = {"flatten-axis": 0, "to-reshape": 0, "shape-resolved": 0, "chains-merged": 0}
        for node in list(graph.nodes):
            is_transpose = node.op == "Transpose" and node.domain in (None, "", "ai.onnx")
            if not (_is_shape_op(node) or is_transpose) or not node.inputs or not node.outputs:
                continue
            before, after = static_shape(node.inputs[0]), static_shape(node.outputs[0])
            if before is None or after is None:
                continue
            if node.op == "Transpose":
                if _moves_no_element(before, _perm(node, len(before))):
                    self._reshape(node, names, after, stats)
            elif node.op == "Flatten":
                self._flatten(node, names, before, after, stats)
            else:
                self._reshape(node, names, after, stats)
        for node in list(graph.nodes):
            if _is_shape_op(node) and node.inputs and self._merge(model, node, names):
                stats["chains-merged"] += 1
        changed = any(stats.values())
        if changed:
            drop_unused(graph)
        return PassResult(model, changed, stats)

    def _flatten(self, node: gs.Node, names: NameSource, before: tuple[int, ...], after: tuple[int, ...],
                 stats: dict[str, int]) -> None:
        flat = (1, int(np.prod(before[1:], dtype=np.int64))) if len(before) >= 1 else None
        if before and before[0] == 1 and after == flat:
            if int(node.attrs.get("axis", 1)) != 1:
                node.attrs["axis"] = 1
                stats["flatten-axis"] += 1
            return
        self._reshape(node, names, after, stats)

    @staticmethod
    def _reshape(node: gs.Node, names: NameSource, after: tuple[int, ...], stats: dict[str, int]) -> None:
        """Make ``node`` ``Reshape(x, after)`` with a constant, explicit shape."""
        if node.op == "Reshape" and not node.attrs and len(node.inputs) == 2:
            current = const_value(node.inputs[1])
            if current is not None and tuple(int(d) for d in current.reshape(-1)) == after:
                return
        target = new_constant(names, f"{node.name}_shape", np.array(after, dtype=np.int64))
        if node.op == "Reshape":
            stats["shape-resolved"] += 1
        else:
            stats["to-reshape"] += 1
        node.op = "Reshape"
        node.attrs.clear()
        set_tensors(node.inputs, [node.inputs[0], target])

    @staticmethod
    def _merge(model: OnnxModel, node: gs.Node, names: NameSource) -> bool:
        """``Reshape(Reshape(x))`` -> ``Reshape(x)`` when the inner result is read only here."""
        if node.op != "Reshape":
            return False
        inner_out = node.inputs[0]
        inner = producer(inner_out)
        if not _is_shape_op(inner) or len(consumers(inner_out)) != 1 or is_graph_output(model.graph, inner_out):
            return False
        source = inner.inputs[0]
        if static_shape(source) is None:
            return False
        node.inputs[0] = source
        set_origin(model, node, origin_of(model, inner) + origin_of(model, node))
        return True
