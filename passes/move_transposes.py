"""`move-transposes`: layout Transposes move across element-wise ops until they meet and cancel."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, const_value, consumers, detach, drop_unused, is_const, is_empty,
                                   is_graph_output, new_constant, new_variable, producer, set_tensors,
                                   static_shape)

#: Ops that apply one function to every element of their one activation input (attributes and
#: constant scalar inputs only), so they commute with any permutation of the axes.
UNARY = frozenset({"Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "Selu", "Celu", "HardSigmoid",
                   "HardSwish", "Softplus", "Softsign", "Gelu", "Erf", "Exp", "Abs", "Neg", "Mish"})
#: Binary ops that commute with a permutation when the constant operand is permuted too.
BINARY = frozenset({"Add", "Sub", "Mul", "Div", "Max", "Min"})

TO_CHANNELS_LAST = [0, 2, 3, 1]
TO_CHANNELS_FIRST = [0, 3, 1, 2]


def _perm(node: gs.Node) -> list[int] | None:
    shape = static_shape(node.inputs[0]) if node.inputs else None
    if shape is None:
        return None
    return [int(p) for p in node.attrs.get("perm", list(reversed(range(len(shape)))))]


def _activation_index(node: gs.Node) -> int | None:
    """The position of the one activation input of an element-wise ``node``, or None if it is not one
    (every other input must be a constant: a scalar for the unary ops, any broadcastable one for
    the binary ones)."""
    if node.domain not in (None, "", "ai.onnx") or len(node.outputs) != 1:
        return None
    if node.op in UNARY:
        others = node.inputs[1:]
        if all(is_empty(t) or (is_const(t) and const_value(t).size == 1) for t in others):
            return 0
        return None
    if node.op in BINARY and len(node.inputs) == 2:
        variable = [i for i, t in enumerate(node.inputs) if not is_const(t)]
        if len(variable) == 1 and const_value(node.inputs[1 - variable[0]]) is not None:
            return variable[0]
    return None


def _permuted(value: np.ndarray, rank: int, perm: list[int]) -> np.ndarray | None:
    """A constant operand of a rank-``rank`` activation with its axes permuted (None: it has more axes)."""
    if value.size == 1 or value.ndim > rank:
        return value if value.size == 1 else None
    aligned = value.reshape((1,) * (rank - value.ndim) + value.shape)
    return np.ascontiguousarray(np.transpose(aligned, perm))


@register
class MoveTransposes(Pass):
    """Merge consecutive Transposes and move NHWC/NCHW layout Transposes across element-wise ops.

    Before -> after (the layout changes tf2onnx writes around channel-last Keras layers)::

        Transpose(Transpose(x, p1), p2)                  ->  Transpose(x, p1[p2])   (identity: removed later)
        y = Relu(Transpose(x) {perm=[0,2,3,1]})          ->  y = Transpose(Relu(x)) {perm=[0,2,3,1]}
        y = Add(Transpose(x) {perm=[0,2,3,1]}, b[N])     ->  y = Transpose(Add(x, b as [1,N,1,1]))
        y = Transpose(Mul(x: [1,H,W,C], s[C])) {perm=[0,3,1,2]}
                                                         ->  y = Mul(Transpose(x), s as [1,C,1,1])

    A Transpose to channels-last moves towards the outputs, one to channels-first towards the
    inputs, so a pair meets and cancels, and constants end up per channel of the NCHW map (what
    the normal form needs). Element-wise: Relu, Clip, LeakyRelu, the table functions (Sigmoid,
    Tanh, ...) and Add/Sub/Mul/Div/Max/Min with a constant; a Transpose is moved only where it is
    the one reader (down) or the op's output is read only by it (up).
    """

    name = "move-transposes"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        stats = {"merged": 0, "moved-down": 0, "moved-up": 0}
        progress = True
        while progress:
            progress = False
            for node in list(graph.nodes):
                if node.op != "Transpose" or node.domain not in (None, "", "ai.onnx") or not node.outputs:
                    continue
                perm = _perm(node)
                if perm is None:
                    continue
                for key, step in (("merged", self._merge), ("moved-down", self._down), ("moved-up", self._up)):
                    if step(graph, names, node, perm):
                        stats[key] += 1
                        progress = True
                        break
        changed = any(stats.values())
        if changed:
            drop_unused(graph, toposort=True)
        return PassResult(model, changed, stats)

    @staticmethod
    def _merge(graph: gs.Graph, names: NameSource, node: gs.Node, perm: list[int]) -> bool:
        """``Transpose(Transpose(x, p1), p2)`` -> ``Transpose(x, p1[p2])`` (the inner one read only here)."""
        inner = producer(node.inputs[0])
        if inner is None or inner.op != "Transpose" or inner.domain not in (None, "", "ai.onnx"):
            return False
        inner_perm = _perm(inner)
        readers = consumers(node.inputs[0])
        if inner_perm is None or len(readers) != 1 or is_graph_output(graph, node.inputs[0]):
            return False
        node.attrs["perm"] = [inner_perm[p] for p in perm]
        node.inputs[0] = inner.inputs[0]
        detach(inner)
        return True

    @staticmethod
    def _down(graph: gs.Graph, names: NameSource, node: gs.Node, perm: list[int]) -> bool:
        """``E(Transpose(x))`` -> ``Transpose(E(x))`` for a transpose to channels-last."""
        t = node.outputs[0]
        readers = consumers(t)
        if perm != TO_CHANNELS_LAST or len(readers) != 1 or is_graph_output(graph, t):
            return False
        op = readers[0]
        index = _activation_index(op)
        x_shape, t_shape = static_shape(node.inputs[0]), static_shape(t)
        if index is None or op.inputs[index] is not t or x_shape is None or static_shape(op.outputs[0]) != t_shape:
            return False
        inverse = [int(i) for i in np.argsort(perm)]
        if op.op in BINARY and not _swap_constant(op, 1 - index, len(x_shape), inverse, names):
            return False
        y = op.outputs[0]
        z = new_variable(names, f"{op.name}_untransposed", y.dtype, x_shape)
        set_tensors(op.outputs, [z])
        op.inputs[index] = node.inputs[0]
        set_tensors(node.inputs, [z])
        set_tensors(node.outputs, [y])
        return True

    @staticmethod
    def _up(graph: gs.Graph, names: NameSource, node: gs.Node, perm: list[int]) -> bool:
        """``Transpose(E(x))`` -> ``E(Transpose(x))`` for a transpose to channels-first."""
        e = node.inputs[0]
        op = producer(e)
        if perm != TO_CHANNELS_FIRST or op is None or len(consumers(e)) != 1 or is_graph_output(graph, e):
            return False
        index = _activation_index(op)
        if index is None:
            return False
        a = op.inputs[index]
        a_shape = static_shape(a)
        if a_shape is None or a_shape != static_shape(e):
            return False
        if op.op in BINARY and not _swap_constant(op, 1 - index, len(a_shape), perm, names):
            return False
        y = node.outputs[0]
        u = new_variable(names, f"{node.name}_moved", a.dtype, [a_shape[p] for p in perm])
        set_tensors(node.inputs, [a])
        set_tensors(node.outputs, [u])
        op.inputs[index] = u
        set_tensors(op.outputs, [y])
        return True


def _swap_constant(op: gs.Node, index: int, rank: int, perm: list[int], names: NameSource) -> bool:
    """Replace the constant operand ``op.inputs[index]`` by its permuted copy; False if impossible."""
    value = const_value(op.inputs[index])
    if value is None:
        return False
    new = _permuted(value, rank, perm)
    if new is None:
        return False
    if new is not value:
        op.inputs[index] = new_constant(names, f"{op.inputs[index].name}_permuted", new)
    return True
