"""`layer-norm`: the decomposed layer normalisation of older exporters as one LayerNormalization."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, add_node, const_value, consumers, detach, drop_unused, is_const,
                                   is_graph_output, new_constant, only_consumer, origin_of, producer, set_origin,
                                   static_shape)

#: LayerNormalization entered the default domain in opset 17; a model with a decomposed one is
#: moved there (opsets 13-16 differ from 17 only by new ops, types and attributes whose defaults
#: keep the old behaviour).
LAYER_NORM_OPSET = 17


@dataclass
class _Match:
    """One decomposed layer normalisation: its input, epsilon, scale/bias and the nodes it spans."""

    x: gs.Tensor
    eps: float
    nodes: list[gs.Node]
    out: gs.Tensor
    scale: np.ndarray | None = None
    bias: np.ndarray | None = None


def single(node: gs.Node | None, op: str) -> bool:
    """`node` is a default-domain `op` node."""
    return node is not None and node.op == op and node.domain in (None, "", "ai.onnx")


def last_axis_mean(node: gs.Node | None, rank: int) -> gs.Tensor | None:
    """The input of a ReduceMean over the last axis (keepdims) of a rank-`rank` tensor, else None."""
    if not single(node, "ReduceMean") or node is None:
        return None
    axes = node.attrs.get("axes")
    if axes is None and len(node.inputs) > 1:
        value = const_value(node.inputs[1])
        axes = None if value is None else [int(a) for a in value.reshape(-1)]
    if axes is None or [int(a) % rank for a in axes] != [rank - 1] or int(node.attrs.get("keepdims", 1)) != 1:
        return None
    return node.inputs[0]


def scalar_value(t: gs.Tensor) -> float | None:
    """The number a one-element constant holds, else None."""
    value = const_value(t)
    return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None


def other_input(node: gs.Node, t: gs.Tensor) -> gs.Tensor:
    """The input of a two-input `node` that is not `t`."""
    return node.inputs[1] if node.inputs[0] is t else node.inputs[0]


def row_constant(t: gs.Tensor, n: int) -> np.ndarray | None:
    """A constant that broadcasts along the last axis only (``[N]``, ``[1, .., N]`` or one number)
    as its ``[N]`` values, else None."""
    value = const_value(t)
    if value is None or (value.size != n and value.size != 1) or \
            (value.size == n and value.shape[-1] != n):
        return None
    return np.broadcast_to(value.reshape(-1).astype(np.float64), (n,)).copy()


def match(graph: gs.Graph, sub: gs.Node) -> _Match | None:
    """The decomposed layer normalisation whose ``x - mean(x)`` is `sub`, else None::

        m = ReduceMean(x, [-1]); d = Sub(x, m); v = ReduceMean(Pow(d, 2) | Mul(d, d), [-1])
        y = Div(d, Sqrt(Add(v, eps)))  |  Mul(d, Reciprocal(Sqrt(Add(v, eps))))
        [y = Mul(y, gamma)] [y = Add(y, beta)]
    """
    if not single(sub, "Sub") or len(sub.inputs) != 2:
        return None
    x, m = sub.inputs
    shape = static_shape(x)
    mean = producer(m)
    if shape is None or len(shape) < 2 or last_axis_mean(mean, len(shape)) is not x:
        return None
    assert mean is not None
    d = sub.outputs[0]
    readers = list({id(r): r for r in d.outputs}.values())
    square = next((r for r in readers if (single(r, "Pow") and r.inputs[0] is d and scalar_value(r.inputs[1]) == 2.0)
                   or (single(r, "Mul") and r.inputs[0] is d and r.inputs[1] is d)), None)
    if square is None or len(readers) != 2 or not only_consumer(graph, m, sub):
        return None
    var = square.outputs[0].outputs[0] if len(square.outputs[0].outputs) == 1 else None
    if var is None or last_axis_mean(var, len(shape)) is not square.outputs[0]:
        return None
    add = var.outputs[0].outputs[0] if len(var.outputs[0].outputs) == 1 else None
    eps = scalar_value(other_input(add, var.outputs[0])) if single(add, "Add") and add is not None else None
    if add is None or eps is None or eps < 0 or len(add.outputs[0].outputs) != 1:
        return None
    sqrt = add.outputs[0].outputs[0]
    if not single(sqrt, "Sqrt") or len(sqrt.outputs[0].outputs) != 1:
        return None
    last = sqrt.outputs[0].outputs[0]
    nodes = [mean, sub, square, var, add, sqrt]
    if single(last, "Reciprocal") and len(last.outputs[0].outputs) == 1:
        nodes.append(last)
        last = last.outputs[0].outputs[0]
        if not (single(last, "Mul") and d in last.inputs and other_input(last, d) is nodes[-1].outputs[0]):
            return None
    elif not (single(last, "Div") and last.inputs[0] is d and last.inputs[1] is sqrt.outputs[0]):
        return None
    divide = next(r for r in readers if r is not square)
    if divide is not last:
        return None
    nodes.append(last)
    return _with_affine(graph, _Match(x, eps, nodes, last.outputs[0]), shape)


def _with_affine(graph: gs.Graph, found: _Match, shape: list[int]) -> _Match:
    """``found`` extended over a following ``Mul`` by a constant row (gamma) and ``Add`` of one (beta)."""
    n = shape[-1]
    for op in ("Mul", "Add"):
        out = found.out
        nxt = out.outputs[0] if len(out.outputs) == 1 and only_consumer(graph, out, out.outputs[0]) else None
        if not single(nxt, op) or nxt is None or len(nxt.inputs) != 2:
            continue
        k = other_input(nxt, out)
        values = row_constant(k, n) if is_const(k) else None
        if values is None or static_shape(nxt.outputs[0]) != shape:
            continue
        if op == "Mul":
            found.scale = values
        else:
            found.bias = values
        found.nodes.append(nxt)
        found.out = nxt.outputs[0]
    return found


def _square_of(node: gs.Node | None, t: gs.Tensor) -> bool:
    """`node` is ``Pow(t, 2)`` or ``Mul(t, t)``."""
    return node is not None and ((single(node, "Pow") and node.inputs[0] is t and scalar_value(node.inputs[1]) == 2.0)
                                 or (single(node, "Mul") and node.inputs[0] is t and node.inputs[1] is t))


def match_second_moment(graph: gs.Graph, sub: gs.Node) -> _Match | None:
    """The layer normalisation with the variance as ``mean(x^2) - mean(x)^2`` (Flax's ``LayerNorm``,
    ``use_fast_variance``, through jax2onnx) whose ``x - mean(x)`` is `sub`, else None::

        m = ReduceMean(x, [-1]); d = Sub(x, m)
        v = Sub(ReduceMean(Mul(x, x) | Pow(x, 2), [-1]), Mul(m, m) | Pow(m, 2)); [v = Max(v, c <= 0)]
        y = Div(d, Sqrt(Add(v, eps)))  |  Mul(d, Reciprocal(Sqrt(Add(v, eps))))

    (the ``Max`` guards a rounding below 0: a variance is never negative).
    """
    if not single(sub, "Sub") or len(sub.inputs) != 2:
        return None
    x, m = sub.inputs
    shape = static_shape(x)
    mean = producer(m)
    if shape is None or len(shape) < 2 or last_axis_mean(mean, len(shape)) is not x or is_graph_output(graph, m):
        return None
    assert mean is not None
    mean_readers = list({id(r): r for r in consumers(m)}.values())
    mean_square = next((r for r in mean_readers if r is not sub), None)
    if len(mean_readers) != 2 or not _square_of(mean_square, m):
        return None
    assert mean_square is not None
    variance = only_reader(graph, mean_square.outputs[0])
    if not single(variance, "Sub") or variance is None or variance.inputs[1] is not mean_square.outputs[0]:
        return None
    second = producer(variance.inputs[0])
    square = producer(second.inputs[0]) if second is not None and second.inputs else None
    if last_axis_mean(second, len(shape)) is None or not _square_of(square, x) or second is None or square is None \
            or only_reader(graph, square.outputs[0]) is not second \
            or only_reader(graph, second.outputs[0]) is not variance:
        return None
    nodes = [mean, sub, mean_square, square, second, variance]
    add = only_reader(graph, variance.outputs[0])
    if single(add, "Max") and add is not None:
        floor = scalar_value(other_input(add, variance.outputs[0]))
        if floor is None or floor > 0:
            return None
        nodes.append(add)
        add = only_reader(graph, add.outputs[0])
    if not single(add, "Add") or add is None:
        return None
    eps = scalar_value(other_input(add, nodes[-1].outputs[0]))
    sqrt = only_reader(graph, add.outputs[0])
    if eps is None or eps < 0 or not single(sqrt, "Sqrt") or sqrt is None:
        return None
    nodes += [add, sqrt]
    d = sub.outputs[0]
    last = only_reader(graph, sqrt.outputs[0])
    if single(last, "Reciprocal") and last is not None:
        nodes.append(last)
        last = only_reader(graph, last.outputs[0])
        if not (single(last, "Mul") and last is not None and d in last.inputs
                and other_input(last, d) is nodes[-1].outputs[0]):
            return None
    elif not (single(last, "Div") and last is not None and last.inputs[0] is d and last.inputs[1] is sqrt.outputs[0]):
        return None
    if only_reader(graph, d) is not last:
        return None
    nodes.append(last)
    return _with_affine(graph, _Match(x, eps, nodes, last.outputs[0]), shape)


def only_reader(graph: gs.Graph, t: gs.Tensor) -> gs.Node | None:
    """The one node reading ``t`` when ``t`` is not a graph output, else None."""
    readers = list({id(r): r for r in consumers(t)}.values())     # Mul(d, d) reads d twice
    return readers[0] if len(readers) == 1 and not is_graph_output(graph, t) else None


def _negates(node: gs.Node, t: gs.Tensor) -> bool:
    """`node` is ``-t``: a Neg, or a Mul by a constant of -1s (`canonicalize-arith`'s Neg)."""
    if single(node, "Neg"):
        return True
    if not single(node, "Mul") or len(node.inputs) != 2 or t not in node.inputs:
        return False
    value = const_value(other_input(node, t))
    return value is not None and value.size > 0 and bool((value == -1).all())


def match_moments(graph: gs.Graph, sub: gs.Node) -> _Match | None:
    """The layer normalisation TensorFlow writes (``tf.nn.moments`` + ``tf.nn.batch_normalization``,
    Keras' LayerNormalization through tf2onnx) whose ``x - mean(x)`` is `sub`, else None::

        m = ReduceMean(x, [-1]); v = ReduceMean(Mul(Sub(x, m), Sub(x, m)), [-1])
        k = Reciprocal(Sqrt(Add(v, eps))) [* gamma]
        y = Add(Mul(x, k), Mul(Neg(m), k) [+ beta])
    """
    if not single(sub, "Sub") or len(sub.inputs) != 2:
        return None
    x, m = sub.inputs
    shape = static_shape(x)
    mean = producer(m)
    if shape is None or len(shape) < 2 or last_axis_mean(mean, len(shape)) is not x or len(m.outputs) != 2 \
            or is_graph_output(graph, m):
        return None
    assert mean is not None
    d = sub.outputs[0]
    square = only_reader(graph, d)
    if square is None or not ((single(square, "Pow") and scalar_value(square.inputs[1]) == 2.0)
                              or (single(square, "Mul") and square.inputs[0] is d and square.inputs[1] is d)):
        return None
    chain: list[gs.Node] = [mean, sub, square]
    for op in ("ReduceMean", "Add", "Sqrt", "Reciprocal"):
        nxt = only_reader(graph, chain[-1].outputs[0])
        if not single(nxt, op) or nxt is None:
            return None
        chain.append(nxt)
    var, add = chain[3], chain[4]
    if last_axis_mean(var, len(shape)) is not square.outputs[0]:
        return None
    eps = scalar_value(other_input(add, var.outputs[0]))
    if eps is None or eps < 0:
        return None
    n = shape[-1]
    k = chain[-1].outputs[0]
    scale = None
    gamma = only_reader(graph, k)
    if single(gamma, "Mul") and gamma is not None and is_const(other_input(gamma, k)):
        scale = row_constant(other_input(gamma, k), n)
        if scale is None:
            return None
        chain.append(gamma)
        k = gamma.outputs[0]
    neg = next((r for r in m.outputs if _negates(r, m)), None)
    readers = consumers(k)
    if neg is None or is_graph_output(graph, k) or len(readers) != 2 or not all(single(r, "Mul") for r in readers):
        return None
    y1 = next((r for r in readers if other_input(r, k) is x), None)
    y2 = next((r for r in readers if other_input(r, k) is neg.outputs[0]), None)
    if y1 is None or y2 is None or y1 is y2 or only_reader(graph, neg.outputs[0]) is not y2:
        return None
    bias = None
    last = only_reader(graph, y2.outputs[0])
    if single(last, "Add") and last is not None and is_const(other_input(last, y2.outputs[0])):
        bias = row_constant(other_input(last, y2.outputs[0]), n)
        if bias is None:
            return None
        chain.append(last)
        last = only_reader(graph, last.outputs[0])
    final = only_reader(graph, y1.outputs[0])
    if final is None or final is not last or not single(final, "Add") or static_shape(final.outputs[0]) != shape:
        return None
    return _Match(x, eps, [*chain, neg, y1, y2, final], final.outputs[0], scale, bias)


@register
class LayerNorm(Pass):
    """Rewrite a layer normalisation over the last axis, decomposed into elementary ops by older
    exporters (torch's legacy exporter below opset 17), as one ``LayerNormalization``.

    Before -> after (x ``[1, ..., N]``; gamma, beta constants ``[N]``)::

        m = ReduceMean(x, axes=[-1]); d = Sub(x, m)
        v = ReduceMean(Pow(d, 2), axes=[-1]); s = Sqrt(Add(v, eps))
        y = Add(Mul(Div(d, s), gamma), beta)
        ->
        y = LayerNormalization(x, gamma, beta) {axis=-1, epsilon=eps}

    ``Mul(d, d)`` for the square and ``Mul(d, Reciprocal(s))`` for the division match too; a
    missing scale is 1 and a missing bias 0. The intermediate tensors must have no other reader.

    TensorFlow's form (Keras ``LayerNormalization`` through tf2onnx; :func:`match_moments`) scales
    ``x`` and the mean separately and adds them::

        k = Mul(Reciprocal(Sqrt(Add(v, eps))), gamma)
        y = Add(Mul(x, k), Add(Mul(Neg(m), k), beta))
        ->
        y = LayerNormalization(x, gamma, beta) {axis=-1, epsilon=eps}

    Flax's form (``nnx.LayerNorm`` through jax2onnx; :func:`match_second_moment`) takes the variance
    as the mean square less the squared mean, floored at 0::

        v = Max(Sub(ReduceMean(Mul(x, x), axes=[-1]), Mul(m, m)), 0)
        y = Add(Mul(Div(Sub(x, m), Sqrt(Add(v, eps))), gamma), beta)
        ->
        y = LayerNormalization(x, gamma, beta) {axis=-1, epsilon=eps}

    A model below opset 17 moves to opset 17 (LayerNormalization's first version) when a rewrite
    happens.
    """

    name = "layer-norm"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        count = 0
        for node in list(graph.nodes):
            found = (match(graph, node) or match_moments(graph, node) or match_second_moment(graph, node)) \
                if node.inputs else None
            if found is None:
                continue
            self._rewrite(model, names, found)
            count += 1
        if count:
            drop_unused(graph, toposort=True)
            raise_opset(graph)
        return PassResult(model, count > 0, {"rewritten": count})

    @staticmethod
    def _rewrite(model: OnnxModel, names: NameSource, found: _Match) -> None:
        shape = static_shape(found.x)
        assert shape is not None
        n = shape[-1]
        dtype = np.float32
        scale = found.scale if found.scale is not None else np.ones(n)
        bias = found.bias if found.bias is not None else np.zeros(n)
        base = found.nodes[1].name
        origin = [o for node in found.nodes for o in origin_of(model, node)]
        for node in found.nodes:
            detach(node)
        ln = add_node(model.graph, names, "LayerNormalization", f"{base}_layernorm",
                      [found.x, new_constant(names, f"{base}_scale", scale.astype(dtype)),
                       new_constant(names, f"{base}_bias", bias.astype(dtype))], [found.out],
                      {"axis": -1, "epsilon": float(found.eps)})
        set_origin(model, ln, origin)


def epsilon_problems(node: gs.Node) -> list[tuple[str, str]]:
    """A normalisation node's ``epsilon`` below 0 or not finite (the reason and what to do), else
    empty: the variance plus such an epsilon can be negative, whose square root onnxruntime makes
    NaN and the device's fixed-point kernel cannot take."""
    eps = float(node.attrs.get("epsilon", 1e-5))
    if math.isfinite(eps) and eps >= 0:
        return []
    return [(f"epsilon={eps:g} is negative or not finite (onnxruntime's output is NaN)",
             "the exporter wrote a wrong epsilon (paddle2onnx 2.0 writes an unset one for GroupNorm below "
             "opset 17): re-export at opset 17 or set the node's epsilon attribute (e.g. 1e-5)")]


def raise_opset(graph: gs.Graph) -> None:
    """Import the default domain at opset 17 at least (LayerNormalization's first version)."""
    if int(graph.opset or 0) < LAYER_NORM_OPSET:
        graph.opset = LAYER_NORM_OPSET
    for entry in graph.import_domains or []:
        if entry.domain in ("", "ai.onnx") and int(entry.version) < LAYER_NORM_OPSET:
            entry.version = LAYER_NORM_OPSET
