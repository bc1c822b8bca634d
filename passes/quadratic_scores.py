"""`quadratic-scores`: a classifier whose log-likelihoods are a separable quadratic of the input
(skl2onnx's GaussianNB) as two Gemms, or a linear function of it (MultinomialNB, ComplementNB,
behind any affine scaler) as one.

skl2onnx writes GaussianNB's joint log-likelihood of class c as
``jointi_c + sigma_sum_log_c - 0.5 sum_f (x_f - theta_cf)^2 / sigma_cf`` through a ``[N, 1, F]``
Reshape, a broadcast Sub of ``theta [C, F]``, Pow 2, Div, ReduceSum, Mul and Sub/Add, and its
probabilities as ``Exp(J - ReduceLogSumExp(J))``, a softmax. None of those broadcasts is in the normal
form, but ``J`` is ``a_c + sum_f (b_cf x_f + q_cf x_f^2)``: one Gemm of x and one of ``x * x``.

The coefficients are read off the sub-graph itself: onnxruntime runs it at ``x = 0`` and ``x = +-h e_f``
(``a``, ``b``, ``q`` by central differences), and the rewrite happens only when the quadratic then
reproduces the sub-graph on random inputs (so any exporter's arrangement of a separable quadratic is
taken, and nothing else is). The squares and their Gemm are annotated ``reachable-range`` (a square
grows like the square of an input beyond its calibrated range).

Before -> after::

    J = Add(jointi, Sub(sigma_sum_log, Mul(ReduceSum(Div(Pow(Sub(Reshape(x), theta), 2), sigma)), 0.5)))
    p = Exp(Sub(J, Reshape(ReduceLogSumExp(J))))
        ->
    J = Add(Gemm(x, b, a), Gemm(Mul(x, x), q, 0));  p = Softmax(J) {axis=1}
    (linear scores, q = 0:  J = Gemm(x, b, a);  p = Softmax(J) {axis=1})
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler import ort
from transpiler.annotations import REACHABLE_RANGE
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, add_node, consumers, detach, drop_unused, is_graph_input,
                                   new_constant, new_variable, origin_of, producer, quiet_gs, set_origin)

CHECK_ROWS = 32
STEP = 1.0
"""``h`` of the central differences (exact for a quadratic; float32 rounding aside)."""
TOLERANCE = 1e-3
"""Largest error of the fitted quadratic on the random check inputs, relative to the largest |J|."""


def _default(node: gs.Node | None, op: str) -> bool:
    return node is not None and node.op == op and (node.domain or "") in DEFAULT_DOMAINS


def _log_softmax_of(exp: gs.Node) -> gs.Tensor | None:
    """``J`` when ``exp`` is ``Exp(Sub(J, [Reshape](ReduceLogSumExp(J))))`` over axis 1, else None."""
    sub = producer(exp.inputs[0])
    if not _default(sub, "Sub") or len(sub.inputs) != 2:
        return None
    scores, total = sub.inputs
    reduce = producer(total)
    if _default(reduce, "Reshape"):
        reduce = producer(reduce.inputs[0])
    if not _default(reduce, "ReduceLogSumExp") or reduce.inputs[0] is not scores:
        return None
    axes = reduce.attrs.get("axes")
    if axes is None and len(reduce.inputs) > 1 and isinstance(reduce.inputs[1], gs.Constant):
        axes = np.asarray(reduce.inputs[1].values).reshape(-1).tolist()
    return scores if axes is not None and [int(a) for a in axes] in ([1], [-1]) else None


def _ancestors(target: gs.Tensor) -> list[gs.Node] | None:
    """The nodes ``target`` is computed by, back to graph inputs and constants (default-domain ops only)."""
    nodes: list[gs.Node] = []
    seen: set[int] = set()
    stack = [target]
    while stack:
        node = producer(stack.pop())
        if node is None or id(node) in seen:
            continue
        if (node.domain or "") not in DEFAULT_DOMAINS:
            return None
        seen.add(id(node))
        nodes.append(node)
        stack.extend(t for t in node.inputs if isinstance(t, gs.Variable))
    return nodes


def fit_quadratic(graph: gs.Graph, x: gs.Tensor, target: gs.Tensor,
                  width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """``(a [C], b [C, F], q [C, F])`` with ``target = a + b x + q x^2`` (onnxruntime on the part of
    ``graph`` that computes ``target`` from ``x``), or None when it is not such a quadratic; ``q`` is
    None when the scores are linear (``a + b x`` alone fits: MultinomialNB, ComplementNB)."""
    part = graph.copy()
    tensors = part.tensors()
    part.inputs = [tensors[x.name]]
    part.outputs = [tensors[target.name]]
    part.outputs[0].dtype = part.outputs[0].dtype or np.float32
    try:
        with quiet_gs():
            part.cleanup()
            proto = gs.export_onnx(part, do_type_check=False)
        session = ort.session(proto)

        def run(rows: np.ndarray) -> np.ndarray:
            return np.stack([np.asarray(session.run(None, {x.name: r[None].astype(np.float32)})[0],
                                        dtype=np.float64).reshape(-1) for r in rows])

        eye = np.eye(width) * STEP
        base = run(np.zeros((1, width)))[0]
        up, down = run(eye), run(-eye)
        rng = np.random.default_rng(0)
        check = rng.normal(0.0, 2.0, (CHECK_ROWS, width))
        want = run(check)
    except Exception:    # onnxruntime's own exception types: not a graph we can evaluate
        return None
    b = ((up - down) / (2 * STEP)).T
    q = ((up + down - 2 * base) / (2 * STEP * STEP)).T
    linear = base + check @ b.T
    got = linear + (check ** 2) @ q.T
    scale = max(float(np.abs(want).max()), 1e-6)
    if want.shape != got.shape or float(np.abs(got - want).max()) > TOLERANCE * scale:
        return None
    return base, b, None if float(np.abs(linear - want).max()) <= TOLERANCE * scale else q


@register
class QuadraticScores(Pass):
    """Rewrite a softmax of separable quadratic scores of the input into Gemms and a Softmax (module
    docstring). Applies when the scores ``J`` are computed from one ``[N, F]`` graph input by default-
    domain ops, read by nothing but the softmax's ReduceLogSumExp and Sub and an ArgMax, and fit."""

    name = "quadratic-scores"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        done = 0
        for exp in [n for n in graph.nodes if _default(n, "Exp")]:
            scores = _log_softmax_of(exp)
            if scores is not None and self._rewrite(model, names, exp, scores):
                done += 1
        if done:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(done), {"rewritten": done})

    def _rewrite(self, model: OnnxModel, names: NameSource, exp: gs.Node, scores: gs.Tensor) -> bool:
        graph = model.graph
        nodes = _ancestors(scores)
        inputs = [t for t in graph.inputs if any(t is i for n in nodes or [] for i in n.inputs)]
        if not nodes or len(inputs) != 1 or inputs[0].shape is None or len(inputs[0].shape) != 2 \
                or not isinstance(inputs[0].shape[1], int) or not is_graph_input(graph, inputs[0]):
            return False
        x = inputs[0]
        inside = {id(n) for n in nodes}
        softmax = {id(exp), id(producer(exp.inputs[0]))}
        for node in nodes:     # the scores' computation feeds nothing else
            for t in node.outputs:
                if t is not scores and any(id(r) not in inside for r in consumers(t)):
                    return False
        if any(id(r) not in softmax and r.op not in ("ReduceLogSumExp", "ArgMax") for r in consumers(scores)):
            return False
        fitted = fit_quadratic(graph, x, scores, int(x.shape[1]))
        if fitted is None:
            return False
        a, b, q = fitted
        origin = [name for node in [*nodes, exp] for name in origin_of(model, node)]
        out = exp.outputs[0]
        for node in [*nodes, exp]:
            detach(node)

        def const(base: str, value: np.ndarray) -> gs.Constant:
            return new_constant(names, f"{exp.name}_{base}", np.asarray(value, dtype=np.float32))

        softmax_node = add_node(graph, names, "Softmax", f"{exp.name}_softmax", [scores], [out], {"axis": 1})
        if q is None:
            made = [add_node(graph, names, "Gemm", f"{exp.name}_linear", [x, const("b", b), const("a", a)], [scores],
                             {"transB": 1})]
        else:
            linear, square, quadratic = (new_variable(names, f"{exp.name}_{base}", np.float32)
                                         for base in ("linear", "square", "quadratic"))
            made = [add_node(graph, names, "Gemm", f"{exp.name}_linear", [x, const("b", b), const("a", a)],
                             [linear], {"transB": 1}),
                    add_node(graph, names, "Mul", f"{exp.name}_square", [x, x], [square]),
                    add_node(graph, names, "Gemm", f"{exp.name}_quadratic",
                             [square, const("q", q), const("zero", np.zeros(len(a)))], [quadratic], {"transB": 1}),
                    add_node(graph, names, "Add", f"{exp.name}_scores", [linear, quadratic], [scores])]
            for tensor in (square, quadratic):
                model.annotations.set(tensor.name, REACHABLE_RANGE, True)
        for new in [*made, softmax_node]:
            set_origin(model, new, origin)
        for reader in [r for r in consumers(scores) if r.op == "ReduceLogSumExp"]:
            detach(reader)
        return True
