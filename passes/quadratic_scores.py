"""`quadratic-scores`: a classifier whose scores are a quadratic of the input as Gemms: separable
(skl2onnx's GaussianNB) as two, linear (MultinomialNB, ComplementNB, behind any affine scaler) as
one, with cross terms (QuadraticDiscriminantAnalysis, PolynomialFeatures(2) before a linear model)
as a projection, its square and a Gemm.

skl2onnx writes GaussianNB's joint log-likelihood of class c as
``jointi_c + sigma_sum_log_c - 0.5 sum_f (x_f - theta_cf)^2 / sigma_cf`` through a ``[N, 1, F]``
Reshape, a broadcast Sub of ``theta [C, F]``, Pow 2, Div, ReduceSum, Mul and Sub/Add, and its
probabilities as ``Exp(J - ReduceLogSumExp(J))``, a softmax. None of those broadcasts is in the normal
form, but ``J`` is ``a_c + sum_f (b_cf x_f + q_cf x_f^2)``: one Gemm of x and one of ``x * x``.

The coefficients are read off the sub-graph itself: onnxruntime runs it at ``x = 0`` and ``x = +-h e_f``
(``a``, ``b``, ``q`` by central differences), and the rewrite happens only when the quadratic then
reproduces the sub-graph on random inputs (so any exporter's arrangement of a separable quadratic is
taken, and nothing else is). When the separable form does not fit and the input has at most
``MAX_CROSS_FEATURES`` features, the cross terms come from ``x = h (e_i + e_j)`` as well: class c's
scores are ``a_c + b_c x + x' M_c x``, and with ``M_c = sum_k l_ck u_ck u_ck'`` (its eigenvectors)
``x' M_c x = sum_k l_ck (u_ck . x)^2``. The squares and their Gemm are annotated ``reachable-range``
(a square grows like the square of an input beyond its calibrated range).

Scores computed from a binarized input (skl2onnx's BernoulliNB: ``Cast(Greater(x, t))``; a
``Binarizer`` pipeline: ``ai.onnx.ml`` Binarizer) are not a polynomial of ``x``; when they are linear in
the steps ``[x_f > t_f]`` (fitted the same way: every input just below its threshold, then one above it;
checked on random inputs around the thresholds) they become a canonical TreeEnsembleRegressor, one
stump per feature, whose leaves write 0 or that feature's weights: the tree kernel compares an input
with its threshold exactly (but for an input within half an input LSB of it), where a gain and a Clip
would blur the step.

Scores are taken where a softmax reads them, in any of the exporters' forms: ``Exp(J -
ReduceLogSumExp(J))``, ``Exp(J - ReduceMax(J)) / ReduceSum(...)`` (skl2onnx's QDA) or, when ``J``'s
computation is not already in the normal form (a Pow, a ReduceSum or ReduceProd, an
ArrayFeatureExtractor, a product of two activations), ``Softmax(J)``.

Before -> after::

    J = Add(jointi, Sub(sigma_sum_log, Mul(ReduceSum(Div(Pow(Sub(Reshape(x), theta), 2), sigma)), 0.5)))
    p = Exp(Sub(J, Reshape(ReduceLogSumExp(J))))
        ->
    J = Add(Gemm(x, b, a), Gemm(Mul(x, x), q, 0));  p = Softmax(J) {axis=1}
    (linear scores, q = 0:  J = Gemm(x, b, a);  p = Softmax(J) {axis=1})
    (cross terms:  u = Gemm(x, U);  J = Add(Gemm(x, b, a), Gemm(Mul(u, u), L, 0)),
     U the eigenvectors of every class stacked [R, F], L [C, R] each class's eigenvalues on its rows)
    (a binarized input:  J = TreeEnsembleRegressor(x) {stump f: x_f <= t_f ? 0 : w_f, base a})
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from transpiler import ort
from transpiler.annotations import REACHABLE_RANGE
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, add_node, attr, const_value, consumers, detach,
                                   drop_unused, is_graph_input, new_constant, new_variable, origin_of, producer,
                                   quiet_gs, set_origin)
from passes.tree_ensembles import ML_DOMAIN, Branch, Ensemble, Tree, regressor_attrs

CHECK_ROWS = 32
STEP = 1.0
"""``h`` of the central differences (exact for a quadratic; float32 rounding aside)."""
TOLERANCE = 1e-3
"""Largest error of the fitted quadratic on the random check inputs, relative to the largest |J|."""
MAX_CROSS_FEATURES = 64
"""Inputs up to this width get the cross terms fitted (F (F - 1) / 2 more onnxruntime runs)."""
EIGEN_FLOOR = 1e-7
"""Eigenvalues below this fraction of a class's largest |eigenvalue| are dropped."""
NOT_NORMAL = frozenset({"Pow", "ReduceSum", "ReduceProd", "ArrayFeatureExtractor", "Sqrt", "Div", "Greater",
                        "Binarizer"})
"""Ops in a score computation that tell `Softmax(J)` scores to be fitted (a linear model's Gemm is
left alone)."""


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
    """The nodes ``target`` is computed by, back to graph inputs and constants (default-domain ops and
    ``ai.onnx.ml``'s, which onnxruntime runs for the fit: PolynomialFeatures' ArrayFeatureExtractor)."""
    nodes: list[gs.Node] = []
    seen: set[int] = set()
    stack = [target]
    while stack:
        node = producer(stack.pop())
        if node is None or id(node) in seen:
            continue
        if (node.domain or "") not in (*DEFAULT_DOMAINS, "ai.onnx.ml"):
            return None
        seen.add(id(node))
        nodes.append(node)
        stack.extend(t for t in node.inputs if isinstance(t, gs.Variable))
    return nodes


def fit_quadratic(graph: gs.Graph, x: gs.Tensor, target: gs.Tensor,
                  width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """``(a [C], b [C, F], m)`` with ``target = a + b x + x' m_c x`` (onnxruntime on the part of
    ``graph`` that computes ``target`` from ``x``), or None when it is not such a quadratic. ``m`` is
    None when the scores are linear (``a + b x`` alone fits: MultinomialNB, ComplementNB), ``[C, F]``
    (the diagonals) when they are separable, else ``[C, F, F]`` (symmetric)."""
    run = evaluator(graph, x, target)
    if run is None:
        return None
    try:
        eye = np.eye(width) * STEP
        base = run(np.zeros((1, width)))[0]
        up, down = run(eye), run(-eye)
        check = np.random.default_rng(0).normal(0.0, 2.0, (CHECK_ROWS, width))
        want = run(check)
    except Exception:    # onnxruntime's own exception types: not a graph we can evaluate
        return None
    b = ((up - down) / (2 * STEP)).T
    q = ((up + down - 2 * base) / (2 * STEP * STEP)).T
    linear = base + check @ b.T
    scale = max(float(np.abs(want).max()), 1e-6)

    def fits(got: np.ndarray) -> bool:
        return want.shape == got.shape and float(np.abs(got - want).max()) <= TOLERANCE * scale

    if fits(linear):
        return base, b, None
    if fits(linear + (check ** 2) @ q.T):
        return base, b, q
    if width > MAX_CROSS_FEATURES:
        return None
    m = np.zeros((len(base), width, width))
    m[:, np.arange(width), np.arange(width)] = q
    pairs = [(i, j) for i in range(width) for j in range(i + 1, width)]
    if pairs:
        try:
            both = run(np.stack([eye[i] + eye[j] for i, j in pairs]))
        except Exception:
            return None
        for (i, j), value in zip(pairs, both):
            cross = (value - up[i] - up[j] + base) / (2 * STEP * STEP)
            m[:, i, j] = m[:, j, i] = cross
    return (base, b, m) if fits(linear + np.einsum("nf,cfg,ng->nc", check, m, check)) else None


def step_thresholds(nodes: list[gs.Node], x: gs.Tensor, width: int) -> np.ndarray | None:
    """``t [F]`` when the score computation ``nodes`` binarizes the input ``x`` by one
    ``Greater(x, t)`` (t a constant, scalar or per feature) or ``ai.onnx.ml`` ``Binarizer(x)
    {threshold=t}`` (skl2onnx's BernoulliNB and Binarizer) and reads ``x`` nowhere else; else None."""
    readers = [n for n in nodes if any(t is x for t in n.inputs)]
    if len(readers) != 1:
        return None
    node = readers[0]
    if node.op == "Greater" and (node.domain or "") in DEFAULT_DOMAINS and len(node.inputs) == 2 \
            and node.inputs[0] is x:
        value = const_value(node.inputs[1])
    elif node.op == "Binarizer" and node.domain == ML_DOMAIN:
        value = np.array(float(attr(node, "threshold", 0.0)))
    else:
        return None
    if value is None or value.size not in (1, width):
        return None
    return np.broadcast_to(np.asarray(value, dtype=np.float32).reshape(-1), (width,)).copy()


def fit_steps(graph: gs.Graph, x: gs.Tensor, target: gs.Tensor,
              thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(a [C], w [F, C])`` with ``target = a + sum_f [x_f > t_f] w_f`` (onnxruntime on the part of
    ``graph`` that computes ``target`` from ``x``: every input below its threshold gives ``a``, one
    above it ``a + w_f``), or None when that does not reproduce it on random inputs around the
    thresholds."""
    run = evaluator(graph, x, target)
    if run is None:
        return None
    low = (thresholds - STEP)[None]
    high = low + np.eye(len(thresholds)) * (2 * STEP)
    check = thresholds + np.random.default_rng(0).normal(0.0, 2.0, (CHECK_ROWS, len(thresholds)))
    try:
        base, up, want = run(low)[0], run(high), run(check)
    except Exception:    # onnxruntime's own exception types: not a graph we can evaluate
        return None
    weights = up - base
    got = base + (check.astype(np.float32) > thresholds).astype(np.float64) @ weights
    scale = max(float(np.abs(want).max()), 1e-6)
    return (base, weights) if float(np.abs(got - want).max()) <= TOLERANCE * scale else None


def step_ensemble(thresholds: np.ndarray, base: np.ndarray, weights: np.ndarray) -> dict[str, object]:
    """The attributes of the canonical TreeEnsembleRegressor ``a + sum_f [x_f > t_f] w_f``: one stump
    per feature whose leaf ``x_f <= t_f`` writes 0 and the other ``w_f`` to every class."""
    classes = len(base)
    trees = [Tree(0, {0: Branch(f, float(t), "BRANCH_LEQ", 1, 2)},
                  {1: dict.fromkeys(range(classes), 0.0), 2: {c: float(w) for c, w in enumerate(weights[f])}})
             for f, t in enumerate(thresholds)]
    ensemble = Ensemble(trees, classes, [float(v) for v in base], "NONE", "SUM", None)
    return regressor_attrs(ensemble, [leaf for tree in trees for leaf in tree.leaves.values()], ensemble.base)


def evaluator(graph: gs.Graph, x: gs.Tensor, target: gs.Tensor) -> Callable[[np.ndarray], np.ndarray] | None:
    """A function of input rows ``[n, F]`` -> ``target`` rows, by onnxruntime on the part of
    ``graph`` between them (one row at a time: exporters' reshapes assume batch 1), or None."""
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
    except Exception:    # onnxruntime's own exception types: not a graph we can evaluate
        return None

    def run(rows: np.ndarray) -> np.ndarray:
        return np.stack([np.asarray(session.run(None, {x.name: r[None].astype(np.float32)})[0],
                                    dtype=np.float64).reshape(-1) for r in rows])

    return run


def _eigen_terms(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(U [R, F], L [C, R])`` with ``x' m_c x = sum_r L[c, r] (U[r] . x)^2`` for every class c; each
    ``U[r]`` is an eigenvector scaled by the root of its |eigenvalue| and ``L`` holds the signs, so a
    square is its term's share of the scores (one Q format for all squares fits them all)."""
    directions, weights = [], []
    for c, sym in enumerate(m):
        values, vectors = np.linalg.eigh((sym + sym.T) / 2)
        keep = np.abs(values) > EIGEN_FLOOR * max(float(np.abs(values).max()), 1e-30)
        for value, vector in zip(values[keep], vectors[:, keep].T):
            directions.append(vector * np.sqrt(abs(value)))
            weights.append((c, np.sign(value)))
    u = np.array(directions).reshape(len(directions), m.shape[1])
    lam = np.zeros((m.shape[0], len(directions)))
    for r, (c, value) in enumerate(weights):
        lam[c, r] = value
    return u, lam


@dataclass
class _Head:
    """A softmax reading scores ``J``: ``out`` its probabilities, ``remove`` its nodes to replace by a
    Softmax (empty: ``keep`` is that Softmax already), ``readers`` the nodes that may read ``J``
    besides ArgMax, ``always`` whether to fit whatever computes ``J``."""

    scores: gs.Tensor
    out: gs.Tensor
    remove: list[gs.Node]
    readers: set[int]
    always: bool
    keep: gs.Node | None = None


def _softmax_heads(graph: gs.Graph) -> list[_Head]:
    """Every softmax of the module docstring's forms in ``graph``."""
    heads = []
    for node in graph.nodes:
        if _default(node, "Exp"):
            scores = _log_softmax_of(node)
            if scores is not None:
                sub = producer(node.inputs[0])
                heads.append(_Head(scores, node.outputs[0], [node], {id(sub)} | {
                    id(r) for r in consumers(scores) if _default(r, "ReduceLogSumExp")}, True))
        elif _default(node, "Div") and len(node.inputs) == 2:
            head = _max_softmax(node)
            if head is not None:
                heads.append(head)
        elif _default(node, "Softmax") and int(node.attrs.get("axis", -1)) in (1, -1):
            heads.append(_Head(node.inputs[0], node.outputs[0], [], {id(node)}, False, keep=node))
    return heads


def _max_softmax(div: gs.Node) -> _Head | None:
    """``Div(e, ReduceSum(e)) , e = Exp(Sub(J, ReduceMax(J)))`` over axis 1 as a head, else None."""
    e, total = div.inputs
    exp, reduce_sum = producer(e), producer(total)
    if not _default(exp, "Exp") or not _default(reduce_sum, "ReduceSum") or reduce_sum.inputs[0] is not e:
        return None
    sub = producer(exp.inputs[0])
    if not _default(sub, "Sub") or len(sub.inputs) != 2:
        return None
    scores, peak = sub.inputs
    reduce_max = producer(peak)
    if not _default(reduce_max, "ReduceMax") or reduce_max.inputs[0] is not scores:
        return None
    return _Head(scores, div.outputs[0], [div, reduce_sum, exp, sub, reduce_max], {id(sub), id(reduce_max)}, True)


def _needs_fit(nodes: list[gs.Node]) -> bool:
    """Whether a score computation holds an op the normal form lacks (a Pow, a reduction, a feature
    extractor, a product of two activations)."""
    for node in nodes:
        if node.op in NOT_NORMAL:
            return True
        if node.op in ("Mul", "MatMul") and sum(isinstance(t, gs.Variable) for t in node.inputs) == 2:
            return True
    return False


@register
class QuadraticScores(Pass):
    """Rewrite a softmax of quadratic scores of the input (or linear scores of its binarization) into
    Gemms (or stumps) and a Softmax (module docstring). Applies when the scores ``J`` are computed
    from one ``[N, F]`` graph input by ops onnxruntime runs, read by nothing but the softmax and an
    ArgMax, and fit."""

    name = "quadratic-scores"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        done = 0
        for head in _softmax_heads(graph):
            if self._rewrite(model, names, head):
                done += 1
        if done:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(done), {"rewritten": done})

    def _rewrite(self, model: OnnxModel, names: NameSource, head: _Head) -> bool:
        graph, scores = model.graph, head.scores
        nodes = _ancestors(scores)
        inputs = [t for t in graph.inputs if any(t is i for n in nodes or [] for i in n.inputs)]
        if not nodes or len(inputs) != 1 or inputs[0].shape is None or len(inputs[0].shape) != 2 \
                or not isinstance(inputs[0].shape[1], int) or not is_graph_input(graph, inputs[0]):
            return False
        if not head.always and not _needs_fit(nodes):
            return False
        x = inputs[0]
        inside = {id(n) for n in nodes}
        for node in nodes:     # the scores' computation feeds nothing else
            for t in node.outputs:
                if t is not scores and any(id(r) not in inside for r in consumers(t)):
                    return False
        if any(id(r) not in head.readers and r.op != "ArgMax" for r in consumers(scores)):
            return False
        thresholds = step_thresholds(nodes, x, int(x.shape[1]))
        fitted = fit_quadratic(graph, x, scores, int(x.shape[1])) if thresholds is None else None
        steps = fit_steps(graph, x, scores, thresholds) if thresholds is not None else None
        if fitted is None and steps is None:
            return False
        base = (head.keep or head.remove[0]).name
        origin = [name for node in [*nodes, *head.remove] for name in origin_of(model, node)]
        for node in [*nodes, *head.remove]:
            detach(node)

        def const(suffix: str, value: np.ndarray) -> gs.Constant:
            return new_constant(names, f"{base}_{suffix}", np.asarray(value, dtype=np.float32))

        def node(op: str, suffix: str, inputs: list[gs.Tensor], out: gs.Tensor, **attrs: object) -> gs.Node:
            return add_node(graph, names, op, f"{base}_{suffix}", inputs, [out], dict(attrs))

        made = [] if head.keep is not None else [node("Softmax", "softmax", [scores], head.out, axis=1)]
        if steps is not None:
            assert thresholds is not None
            made.append(node("TreeEnsembleRegressor", "steps", [x], scores, **step_ensemble(thresholds, *steps)))
            made[-1].domain = ML_DOMAIN
            for new in made:
                set_origin(model, new, origin)
            return True
        assert fitted is not None
        a, b, m = fitted
        if m is None:
            made.append(node("Gemm", "linear", [x, const("b", b), const("a", a)], scores, transB=1))
        else:
            linear, square, quadratic = (new_variable(names, f"{base}_{suffix}", np.float32)
                                         for suffix in ("linear", "square", "quadratic"))
            made.append(node("Gemm", "linear", [x, const("b", b), const("a", a)], linear, transB=1))
            if m.ndim == 2:
                made.append(node("Mul", "square", [x, x], square))
                weights = m
            else:
                u, weights = _eigen_terms(m)
                projected = new_variable(names, f"{base}_projected", np.float32)
                made += [node("Gemm", "project", [x, const("u", u), const("u_zero", np.zeros(len(u)))], projected,
                              transB=1),
                         node("Mul", "square", [projected, projected], square)]
            made += [node("Gemm", "quadratic", [square, const("q", weights), const("zero", np.zeros(len(a)))],
                          quadratic, transB=1),
                     node("Add", "scores", [linear, quadratic], scores)]
            for tensor in (square, quadratic):
                model.annotations.set(tensor.name, REACHABLE_RANGE, True)
        for new in made:
            set_origin(model, new, origin)
        return True
