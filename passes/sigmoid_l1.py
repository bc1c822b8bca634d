"""`sigmoid-l1`: one-vs-rest sigmoid probabilities divided by their sum (skl2onnx's
SGDClassifier(loss='log_loss')) as a final Sigmoid of the logits; modified-Huber ones
(loss='modified_huber') as their unnormalized ``Clip(z / 2 + 1/2, 0, 1)``.

skl2onnx writes a multi-class log-loss SGDClassifier's probabilities as ``s = Reciprocal(Exp(-z) +
1)`` (one sigmoid per class) divided by their sum, with a guard for a zero sum (``Cast``, ``Not``,
``Cast``, ``Mul``, ``Add``), and its label as the ArgMax of those probabilities. Dividing positive
scores by their sum keeps their argmax, as the sigmoid keeps the logits': the scores output becomes
``Sigmoid(z)``, which `lower` drops (the device returns ``z``; the host applies the sigmoid and
divides by the sum for the probabilities), as skl2onnx's OneVsRestClassifier's ``LpNormalization``
goes in `strip-classifier-tail`.

In float32 the sigmoids saturate: ``1 / (1 + exp(-z))`` is exactly 1 from ``z = 24 ln 2`` (16.64) up
and exactly 0 below ``-ln(FLT_MAX)`` (-88.72), and onnxruntime's label is the first of the classes
tied there, which the logits' argmax would not pick. When the label is read, the class comes from
the logits clipped to [SATURATED_LOW, SATURATED_HIGH], an extra output named by the
``class-scores`` annotation: the classes tied in onnxruntime are tied there too, and the first of
them is the class.

skl2onnx's modified-Huber probabilities are ``h = (Clip(z, -1, 1) + 1) / 2`` divided by their
sum, with the same guard (uniform when every ``h`` is 0). The scores output becomes ``h`` itself
(the host divides by the sum), a Clip of the logits the device computes: its argmax is
onnxruntime's label, ties included (every ``h`` clipped to 1, or all 0: the first class).

Which tensor is ``z`` is read off the graph: walking back from the scores output, the first tensor
from which onnxruntime, running the nodes between them alone on random rows, computes
``sigmoid(z) / sum(sigmoid(z))``.

Before -> after::

    z = Add(MatMul(x, W), b)
    s = Reciprocal(Add(Exp(Mul(z, -1)), 1));  t = ReduceSum(s) {axes=[1]}
    g = Cast(Not(Cast(t, bool)), float);  p = Div(Add(s, g), Add(t, Mul(g, K)))
        ->
    z = Add(MatMul(x, W), b);  p = Sigmoid(z)
    p_votes = Clip(z, -88.72, 16.64)          (when an ArgMax reads p: extra output; class-scores)

    h = Div(Add(Clip(z, -1, 1), 1), 2);  t = ReduceSum(h);  g = ...;  p = Div(Add(h, g), Add(t, Mul(g, K)))
        ->
    p = Clip(Add(Mul(z, 1/2), 1/2), 0, 1)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from transpiler import ort
from transpiler.annotations import CLASS_SCORES
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.fold_constants import constant_value
from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, add_node, consumers, detach, drop_unused,
                                   is_graph_output, new_constant, new_variable, origin_of, producer, set_origin)

CHECK_ROWS = 32
SATURATED_HIGH = float(24.0 * np.log(2.0))
"""From here up ``1 + exp(-z)`` rounds to 1 in float32: the sigmoid is 1."""
SATURATED_LOW = -float(np.log(np.finfo(np.float32).max))
"""Below this ``exp(-z)`` overflows in float32: the sigmoid is 0."""
#: Ops skl2onnx's sigmoid and sum-guarded division are made of.
_TAIL_OPS = frozenset({"Mul", "Neg", "Exp", "Add", "Reciprocal", "Div", "ReduceSum", "Cast", "Not", "Sigmoid",
                       "Clip"})


def _scores_outputs(graph: gs.Graph) -> list[gs.Tensor]:
    """Tensors written by a default-domain Div that are graph outputs or a ZipMap's input."""
    found = []
    for node in graph.nodes:
        if node.op != "Div" or (node.domain or "") not in DEFAULT_DOMAINS:
            continue
        out = node.outputs[0]
        if is_graph_output(graph, out) or any(r.op == "ZipMap" for r in consumers(out)):
            found.append(out)
    return found


def _between(start: gs.Tensor, end: gs.Tensor) -> list[gs.Node] | None:
    """The nodes computing ``end`` from ``start`` and constants (ops of :data:`_TAIL_OPS`), or None
    when ``end`` needs another tensor or an intermediate result is read elsewhere."""
    nodes: list[gs.Node] = []
    seen: set[int] = set()
    stack = [end]
    while stack:
        tensor = stack.pop()
        if tensor is start or constant_value(tensor) is not None:
            continue
        node = producer(tensor)
        if node is None or node.op not in _TAIL_OPS or (node.domain or "") not in DEFAULT_DOMAINS:
            return None
        if id(node) not in seen:
            seen.add(id(node))
            nodes.append(node)
            stack.extend(node.inputs)
    inside = {id(n) for n in nodes}
    for node in nodes:
        for t in node.outputs:
            if t is not end and any(id(r) not in inside for r in consumers(t)):
                return None
    return nodes


def _share(scores: np.ndarray) -> np.ndarray:
    """Each row of ``scores`` (positive sums) divided by its sum."""
    return scores / scores.sum(axis=1, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The one-vs-rest sigmoid scores of log_loss."""
    return 1.0 / (1.0 + np.exp(-z))


def huber(z: np.ndarray) -> np.ndarray:
    """The one-vs-rest scores of modified_huber, ``(clip(z, -1, 1) + 1) / 2``."""
    return (np.clip(z, -1.0, 1.0) + 1.0) / 2.0


def _normalized_kind(nodes: list[gs.Node], start: gs.Tensor, end: gs.Tensor, opset: int) -> str | None:
    """``"sigmoid"`` or ``"huber"`` when onnxruntime, running ``nodes`` alone on random rows ``z``,
    gives ``s / sum(s)`` with ``s`` :func:`sigmoid` or :func:`huber` of z; else None."""
    constants = {t.name: value for n in nodes for t in n.inputs if (value := constant_value(t)) is not None}
    made = [onnx.helper.make_node(n.op, [t.name for t in n.inputs], [t.name for t in n.outputs], name=n.name,
                                  **n.attrs) for n in nodes]
    graph = onnx.helper.make_graph(
        made, "tail", [onnx.helper.make_tensor_value_info(start.name, onnx.TensorProto.FLOAT, [None, None])],
        [onnx.helper.make_tensor_value_info(end.name, onnx.TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(value, name) for name, value in constants.items()])
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)], ir_version=8)
    rows = np.random.default_rng(0).normal(0.0, 3.0, (CHECK_ROWS, 4)).astype(np.float32)
    rows[1:, 0] = np.abs(rows[1:, 0])   # a modified-Huber score of at least 1/2: a positive sum
    rows[0] = -2.0        # every modified-Huber score 0: the guard's uniform row (1 / the model's classes)
    try:
        session: Any = ort.session(proto)
        got = np.asarray(session.run(None, {start.name: rows})[0], dtype=np.float64)
    except Exception:    # onnxruntime's own exception types: not a tail we know
        return None
    if got.shape != rows.shape or not (got[0] > 0).all() or np.ptp(got[0]) > 1e-6:
        return None
    for kind, scores in (("sigmoid", sigmoid), ("huber", huber)):
        want = _share(scores(rows[1:].astype(np.float64)))
        if bool(np.allclose(got[1:], want, rtol=1e-4, atol=1e-6)):
            return kind
    return None


@register
class SigmoidL1(Pass):
    """Rewrite sigmoid scores divided by their sum into a final Sigmoid, modified-Huber ones into
    their Clip (module docstring)."""

    name = "sigmoid-l1"
    level = "onnx"
    preserves_semantics = False  # the scores output holds the sigmoids (Huber scores), not their share of the sum

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        done = 0
        for end in _scores_outputs(graph):
            queue, seen = [end], {end.name}
            while queue:
                tensor = queue.pop(0)
                node = producer(tensor)
                if node is None or node.op not in _TAIL_OPS:
                    continue
                for start in (t for t in node.inputs if isinstance(t, gs.Variable) and t.name not in seen):
                    seen.add(start.name)
                    queue.append(start)
                    nodes = _between(start, end)
                    kind = _normalized_kind(nodes, start, end, model.opset or 13) if nodes else None
                    if kind is not None:
                        origin = [name for dead in nodes for name in origin_of(model, dead)]
                        for dead in nodes:
                            detach(dead)
                        made = (self._sigmoid(model, names, nodes[0].name, start, end) if kind == "sigmoid"
                                else self._huber(model, names, nodes[0].name, start, end))
                        for new in made:
                            set_origin(model, new, origin)
                        done += 1
                        queue = []
                        break
        if done:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(done), {"rewritten": done})

    @staticmethod
    def _huber(model: OnnxModel, names: NameSource, base: str, logits: gs.Tensor, end: gs.Tensor) -> list[gs.Node]:
        """``end = Clip(logits / 2 + 1/2, 0, 1)``: the modified-Huber scores; the new nodes."""
        graph = model.graph

        def const(tag: str, value: float) -> gs.Constant:
            return new_constant(names, f"{base}_{tag}", np.array(value, np.float32))

        half = new_variable(names, f"{base}_half", np.float32)
        shifted = new_variable(names, f"{base}_shifted", np.float32)
        return [add_node(graph, names, "Mul", f"{base}_half", [logits, const("half_gain", 0.5)], [half]),
                add_node(graph, names, "Add", f"{base}_shift", [half, const("half_bias", 0.5)], [shifted]),
                add_node(graph, names, "Clip", f"{base}_clip", [shifted, const("zero", 0.0), const("one", 1.0)],
                         [end])]

    @staticmethod
    def _sigmoid(model: OnnxModel, names: NameSource, base: str, logits: gs.Tensor, end: gs.Tensor) -> list[gs.Node]:
        """``end = Sigmoid(logits)``, and when an ArgMax reads ``end`` (the label) the saturated
        logits as the extra output the ``class-scores`` annotation names; the new nodes."""
        graph = model.graph
        made = [add_node(graph, names, "Sigmoid", f"{base}_sigmoid", [logits], [end])]
        if any(r.op == "ArgMax" for r in consumers(end)):
            votes = new_variable(names, f"{end.name}_votes", np.float32)
            made.append(add_node(graph, names, "Clip", f"{base}_saturate",
                                 [logits, new_constant(names, f"{base}_low", np.array(SATURATED_LOW, np.float32)),
                                  new_constant(names, f"{base}_high", np.array(SATURATED_HIGH, np.float32))], [votes]))
            graph.outputs.append(votes)
            model.annotations.set("graph", CLASS_SCORES, votes.name)
        return made
