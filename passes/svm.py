"""`svm-to-onnx`: scikit-learn's kernel SVMs (``ai.onnx.ml`` SVMClassifier, SVMRegressor) as standard ops.

skl2onnx writes ``SVC``/``NuSVC`` as one ``SVMClassifier`` node and ``SVR``/``NuSVR`` as one
``SVMRegressor`` node holding the support vectors ``S`` (``[V, F]``), the dual coefficients and the
kernel ``(gamma, coef0, degree)``. The kernel row ``K(x) = [k(x, s_1) .. k(x, s_V)]`` is one ``fc``
over the support vectors and one element-wise table (``lut``):

- LINEAR: ``x.s`` (then folded into the coefficients: ``D K + rho = (D S) x + rho``, one Gemm of x),
- POLY: ``(gamma x.s + coef0)^degree`` (Gemm, Pow),
- SIGMOID: ``tanh(gamma x.s + coef0)`` (Gemm, Tanh),
- RBF: ``exp(-gamma ||x - s||^2) = exp(2 gamma x.s - gamma ||s||^2 - gamma ||x||^2)``: Gemm of x with
  ``2 gamma S`` and bias ``-gamma ||s||^2``, plus ``-gamma ||x||^2`` (a ``mul`` of x by itself, a
  1-output Gemm, widened to V columns by a Gemm of ones), Add, Clip to [-12, 0], Exp. The two sums
  are quantised apart (each at 16 bits over its own range) and only their sum enters the table. The
  squares grow like the square of the input beyond the calibrated range: they and their sums are
  annotated ``reachable-range`` (quantize gives them formats that hold every value the input's
  format can, so they never saturate; the exponent needs only ~1e-3 of their precision).

What the compiled program outputs (onnxruntime's semantics, ``s_p = sum_v coef K_v + rho_p`` for the
class pair ``p = (i, j)``, ``i < j``; onnxruntime votes for ``i`` when ``s_p > 0``):

- binary: onnxruntime's scores ``[-s, s]`` (one Gemm of two rows); its label is class 0 when ``s > 0``,
  i.e. ``labels[1 - argmax]``: the label table is recorded reversed, so the class output is that label.
- several classes: two outputs, as onnxruntime has. The scores output is skl2onnx's one-vs-rest
  decision function (``decision_function_shape='ovr'``, the default) ``votes_k + conf_k / (3 (|conf_k|
  + 1))``, with ``conf_k`` the sum of class k's pairwise scores (signed for k) and ``votes_k`` its
  pairwise votes, made continuous: a vote is ``Clip(m s_p + 1/2, 0, 1)`` (``m`` = SOFT_VOTE_GAIN), so
  rounding that moves ``s_p`` moves the scores by at most ``m`` times as much, where a hard vote would
  jump by 1; the scores equal onnxruntime's but for ``|s_p| < 1/2m``. The class output is the argmax
  of the hard votes ``Clip(M s_p + 1/2, 0, 1)`` (``M`` = VOTE_GAIN) less a tie-break that prefers the
  first class: onnxruntime's label (its vote count, first maximum), which differs from the scores'
  argmax on vote ties. These class votes are an extra graph output named by the ``class-scores``
  annotation: `lower` computes the class from it and makes it no port. skl2onnx's
  Neg/Less/ArrayFeatureExtractor/Sum/Concat/Abs/Div tail is replaced only when onnxruntime, run on
  that tail alone with random pairwise scores, computes the formula above.
- binary with probabilities (``probability=True``, ``prob_a = [a]``, ``prob_b = [b]``): onnxruntime's
  ``[p, 1 - p]``, ``p = 1 - sigmoid(a s + b)`` (Platt), as ``Sigmoid(Gemm(K, [-aD; aD], [-(a rho + b);
  a rho + b]))`` (`lower` drops the final Sigmoid: the device returns its logits). onnxruntime couples
  the two Platt probabilities by its iterative solve, which stops at a tolerance of 0.0025: its
  probabilities are within ~0.0035 of ``[p, 1 - p]``. Its label still votes (class 0 when ``s > 0``),
  which is not the probabilities' argmax for ``s`` between 0 and ``-b/a``: the class output is the
  argmax of ``[s, -s]``, an extra output named by ``class-scores``.
- binary, one column of the scores sliced out (skl2onnx's OneVsRestClassifier of SVCs: column 1,
  ``s``, of each member, concatenated and divided by their |sum| by an LpNormalization, which
  strip-classifier-tail drops): that column, one Gemm row (``s``, or ``-s`` for column 0).
- regressor: ``sum_v coef_v K_v + rho`` (one Gemm of K).

Left for `check-supported` to report, with the reason and what to do (annotation ``ml-problem``):
``probability=True`` with several classes (pairwise coupling: an iterative solve per input), a
post_transform, a polynomial kernel with several classes (its kernel values span too wide a range
for 16-bit fixed point: the rounding flips votes), a multi-class scores output that is not
skl2onnx's ovr tail, one-class SVMs, nodes without support vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from transpiler.annotations import CLASS_SCORES, REACHABLE_RANGE
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.ml_ops import ML_DOMAIN, PROBLEM, class_labels, ensure_default_domain, label_path
from passes.normalize_util import (NameSource, add_node, attr, const_value, consumers, detach, drop_unused,
                                   is_graph_output, is_read, new_constant, new_variable, origin_of, set_origin)

VOTE_GAIN = 4096.0
"""``M``: a hard pairwise vote (the class) is ``Clip(M s + 1/2, 0, 1)``, a sign but for ``|s| < 1/2M``."""
SOFT_VOTE_GAIN = 8.0
"""``m``: the votes of the scores output are ``Clip(m s + 1/2, 0, 1)``: continuous, so their error is
at most ``m`` times that of ``s`` (a hard vote jumps by 1 where rounding moves ``s`` across 0)."""
TIE_BREAK = 0.5
"""The hard votes of class k are lowered by ``TIE_BREAK k / classes``: a tie goes to the first class,
as onnxruntime's label does."""
RBF_EXPONENT_MIN = -12.0
"""The RBF exponent ``-gamma ||x - s||^2`` is clipped to [RBF_EXPONENT_MIN, 0] before the table: it is
never positive (rounding aside), ``exp(-12) = 6e-6`` is below the kernel's output step, and the
narrow range gives the exponent a fine Q format (q = 11) and the table its slope of at most 1."""
KERNELS = ("LINEAR", "POLY", "RBF", "SIGMOID")
#: Ops of skl2onnx's one-vs-rest tail after a multi-class SVMClassifier's scores.
_OVR_TAIL_OPS = frozenset({"Cast", "Less", "Neg", "ArrayFeatureExtractor", "Sum", "Concat", "Abs", "Add", "Mul",
                           "Div", "Identity"})
_TAIL_CHECK_ROWS = 64
#: Ops that copy a binary SVMClassifier's float scores to the graph output.
_COPIES = frozenset({"Cast", "Identity"})


@dataclass(frozen=True)
class Svm:
    """The numbers of an SVMClassifier/SVMRegressor in SVC mode (support vectors present)."""

    kernel: str
    gamma: float
    coef0: float
    degree: float
    vectors: np.ndarray       # [V, F]
    coefficients: np.ndarray  # classifier [classes - 1, V], regressor [1, V]
    rho: np.ndarray


def _floats(node: gs.Node, name: str) -> np.ndarray:
    value = node.attrs.get(name)
    return np.zeros(0, dtype=np.float64) if value is None else np.asarray(value, dtype=np.float64).reshape(-1)


def read_svm(node: gs.Node, rows: int) -> Svm | None:
    """The SVM of ``node`` with ``rows`` coefficient rows, or None when it is not in SVC mode or its
    attributes do not fit together."""
    kernel = str(attr(node, "kernel_type", "LINEAR"))
    params = _floats(node, "kernel_params")
    vectors, coefs, rho = _floats(node, "support_vectors"), _floats(node, "coefficients"), _floats(node, "rho")
    if kernel not in KERNELS or not vectors.size or not coefs.size or coefs.size % rows or not rho.size:
        return None
    count = coefs.size // rows
    if vectors.size % count:
        return None
    gamma, coef0, degree = (list(params) + [0.0, 0.0, 3.0][len(params):])[:3]
    return Svm(kernel, float(gamma), float(coef0), float(degree), vectors.reshape(count, -1),
               coefs.reshape(rows, count), rho)


def pair_matrix(vectors_per_class: list[int], coefficients: np.ndarray) -> np.ndarray:
    """``D [P, V]``: the dual coefficients of each class pair ``(i, j)``, ``i < j`` in onnxruntime's
    order, so that its pairwise scores are ``s = D K + rho`` (coefficients ``[classes - 1, V]``: the
    support vectors of class i use row ``j - 1``, those of class j row ``i``)."""
    starts = np.concatenate([[0], np.cumsum(vectors_per_class)]).astype(int)
    classes = len(vectors_per_class)
    rows = []
    for i in range(classes - 1):
        for j in range(i + 1, classes):
            row = np.zeros(coefficients.shape[1])
            row[starts[i]:starts[i + 1]] = coefficients[j - 1, starts[i]:starts[i + 1]]
            row[starts[j]:starts[j + 1]] = coefficients[i, starts[j]:starts[j + 1]]
            rows.append(row)
    return np.array(rows)


def vote_matrix(classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(A [C, P], a [C])``: with ``v_p = 1`` when pair ``p = (i, j)`` votes for i (else 0),
    ``A v + a`` counts each class's votes, and ``A s`` is its signed sum of pairwise scores."""
    pairs = [(i, j) for i in range(classes - 1) for j in range(i + 1, classes)]
    signs = np.zeros((classes, len(pairs)))
    base = np.zeros(classes)
    for p, (i, j) in enumerate(pairs):
        signs[i, p], signs[j, p] = 1.0, -1.0
        base[j] += 1.0
    return signs, base


def ovr_scores(pairwise: np.ndarray, classes: int) -> np.ndarray:
    """skl2onnx's (and scikit-learn's) one-vs-rest decision function of onnxruntime's pairwise
    scores ``[N, P]``: votes plus the confidences squashed into (-1/3, 1/3)."""
    signs, base = vote_matrix(classes)
    votes = (pairwise > 0).astype(np.float64) @ signs.T + base
    conf = pairwise @ signs.T
    return votes + conf / (3.0 * (np.abs(conf) + 1.0))


class _Builder:
    """Appends the standard nodes of one SVM to the graph (origins set to the SVM node's)."""

    def __init__(self, model: OnnxModel, names: NameSource, node: gs.Node, svm: Svm) -> None:
        self.model, self.names, self.node, self.svm = model, names, node, svm
        self.origin = origin_of(model, node)
        self.x = node.inputs[0]
        self.kernel: gs.Tensor | None = None

    def add(self, op: str, inputs: list[gs.Tensor], out: gs.Tensor | None = None,
            attrs: dict[str, object] | None = None, base: str = "") -> gs.Tensor:
        out = out if out is not None else new_variable(self.names, f"{self.node.name}_{base or op.lower()}", np.float32)
        made = add_node(self.model.graph, self.names, op, f"{self.node.name}_{base or op.lower()}", inputs, [out],
                        attrs)
        set_origin(self.model, made, self.origin)
        return out

    def const(self, base: str, value: np.ndarray) -> gs.Constant:
        return new_constant(self.names, f"{self.node.name}_{base}", np.asarray(value, dtype=np.float32))

    def gemm(self, x: gs.Tensor, weights: np.ndarray, bias: np.ndarray, base: str,
             out: gs.Tensor | None = None) -> gs.Tensor:
        return self.add("Gemm", [x, self.const(f"{base}_w", weights), self.const(f"{base}_b", bias)], out,
                        {"transB": 1}, base)

    def kernel_row(self) -> gs.Tensor:
        """``K(x)`` ``[N, V]`` (built once)."""
        if self.kernel is not None:
            return self.kernel
        s = self.svm
        count = s.vectors.shape[0]
        if s.kernel == "RBF":
            inner = self.gemm(self.x, 2.0 * s.gamma * s.vectors, -s.gamma * np.sum(s.vectors ** 2, axis=1), "dot")
            square = self.add("Mul", [self.x, self.x], base="square")
            norm = self.gemm(square, np.full((1, s.vectors.shape[1]), -s.gamma), np.zeros(1), "norm")
            wide = self.gemm(norm, np.ones((count, 1)), np.zeros(count), "norm_wide")
            for quadratic in (square, norm, wide):    # an input 25 % beyond calibration: squares 56 %
                self.model.annotations.set(quadratic.name, REACHABLE_RANGE, True)
            exponent = self.add("Add", [inner, wide], base="exponent")
            clipped = self.add("Clip", [exponent, self.const("exponent_min", np.array(RBF_EXPONENT_MIN)),
                                        self.const("exponent_max", np.array(0.0))], base="exponent_clip")
            self.kernel = self.add("Exp", [clipped], base="kernel")
        else:
            dot = self.gemm(self.x, s.gamma * s.vectors, np.full(count, s.coef0), "dot")
            if s.kernel == "POLY":
                self.kernel = self.add("Pow", [dot, self.const("degree", np.array(s.degree))], base="kernel")
            else:
                self.kernel = self.add("Tanh", [dot], base="kernel")
        return self.kernel

    def affine(self, rows: np.ndarray, bias: np.ndarray, base: str, out: gs.Tensor | None = None) -> gs.Tensor:
        """``rows K(x) + bias``; for a linear kernel one Gemm of x with ``rows S``."""
        if self.svm.kernel == "LINEAR":
            return self.gemm(self.x, rows @ self.svm.vectors, bias, base, out)
        return self.gemm(self.kernel_row(), rows, bias, base, out)

    def label(self, scores: gs.Tensor, label: gs.Tensor, labels: np.ndarray) -> None:
        """``label = labels[argmax(scores)]`` the way skl2onnx writes a label path
        (strip-classifier-tail removes it next, recording ``labels``)."""
        for made in label_path(self.model.graph, self.names, self.node.name, scores, label, labels):
            set_origin(self.model, made, self.origin)


def _downstream(graph: gs.Graph, start: gs.Tensor) -> tuple[list[gs.Node], gs.Tensor] | None:
    """The nodes computed from ``start`` up to the one tensor that leaves them (a graph output, or the
    input of a ZipMap that is one), if every one is a default-domain op of :data:`_OVR_TAIL_OPS` or an
    ArrayFeatureExtractor whose other inputs are constants."""
    nodes: list[gs.Node] = []
    seen: set[int] = set()
    frontier = [start]
    exits: list[gs.Tensor] = []
    while frontier:
        tensor = frontier.pop()
        readers = consumers(tensor)
        if is_graph_output(graph, tensor) or any(r.op == "ZipMap" and r.domain == ML_DOMAIN for r in readers):
            if all(r.op == "ZipMap" for r in readers):
                exits.append(tensor)
                continue
            return None
        for node in readers:
            if id(node) in seen:
                continue
            if node.op not in _OVR_TAIL_OPS or (node.domain or "") not in ("", "ai.onnx", ML_DOMAIN) \
                    or (node.domain == ML_DOMAIN and node.op != "ArrayFeatureExtractor") or len(node.outputs) != 1:
                return None
            seen.add(id(node))
            nodes.append(node)
            frontier.append(node.outputs[0])
    if len(exits) != 1:
        return None
    inside = {t.name for n in nodes for t in n.outputs} | {start.name}
    for node in nodes:
        if any(not isinstance(t, gs.Constant) and t.name not in inside for t in node.inputs):
            return None
    return nodes, exits[0]


def _one_column(graph: gs.Graph, scores: gs.Tensor) -> tuple[list[gs.Node], gs.Tensor, int] | None:
    """``(nodes, out, c)`` when ``scores`` ``[N, 2]`` reaches ``out`` ``[N, 1]`` through float copies
    (Cast, Identity) and one Slice of column c on axis 1 (constant starts, ends, axes, steps 1), each
    the only reader of its input: skl2onnx's OneVsRestClassifier of binary SVCs."""
    nodes: list[gs.Node] = []
    tensor = scores
    while True:
        readers = consumers(tensor)
        if len(readers) != 1 or is_graph_output(graph, tensor) or len(readers[0].outputs) != 1:
            return None
        node = readers[0]
        if node.op in _COPIES and int(node.attrs.get("to", onnx.TensorProto.FLOAT)) == onnx.TensorProto.FLOAT:
            nodes.append(node)
            tensor = node.outputs[0]
            continue
        if node.op != "Slice" or len(node.inputs) < 3:
            return None
        starts, ends = (const_value(t) for t in node.inputs[1:3])
        axes = const_value(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3].name else np.array([0])
        steps = const_value(node.inputs[4]) if len(node.inputs) > 4 and node.inputs[4].name else np.array([1])
        if any(v is None or v.size != 1 for v in (starts, ends, axes, steps)) or int(steps.reshape(-1)[0]) != 1 \
                or int(axes.reshape(-1)[0]) not in (1, -1):
            return None
        first = int(starts.reshape(-1)[0])
        first = first + 2 if first < 0 else first
        last = min(int(ends.reshape(-1)[0]), 2)
        last = last + 2 if last < 0 else last
        if first not in (0, 1) or last != first + 1:
            return None
        return [*nodes, node], node.outputs[0], first


def _tail_is_ovr(nodes: list[gs.Node], start: gs.Tensor, end: gs.Tensor, classes: int, opset: int) -> bool:
    """Does onnxruntime, running ``nodes`` alone on random pairwise scores, compute :func:`ovr_scores`?"""
    import onnxruntime as ort

    pairs = classes * (classes - 1) // 2
    constants = {t.name: t for n in nodes for t in n.inputs if isinstance(t, gs.Constant)}
    made = [onnx.helper.make_node(n.op, [t.name for t in n.inputs], [t.name for t in n.outputs], name=n.name,
                                  domain=n.domain or "", **n.attrs) for n in nodes]
    graph = onnx.helper.make_graph(
        made, "ovr_tail", [onnx.helper.make_tensor_value_info(start.name, onnx.TensorProto.FLOAT, [None, pairs])],
        [onnx.helper.make_tensor_value_info(end.name, onnx.TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(np.asarray(t.values), name) for name, t in constants.items()])
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset),
                                                         onnx.helper.make_opsetid(ML_DOMAIN, 1)], ir_version=8)
    scores = np.random.default_rng(0).normal(0.0, 2.0, (_TAIL_CHECK_ROWS, pairs)).astype(np.float32)
    try:
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        got = np.asarray(session.run(None, {start.name: scores})[0], dtype=np.float64)
    except Exception:    # onnxruntime's own exception types: the tail is not what we know
        return False
    want = ovr_scores(scores.astype(np.float64), classes)
    return got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-4, atol=1e-4))


def _platt_binary(build: _Builder, pairwise: np.ndarray, a: float, b: float, label: gs.Tensor, labels: np.ndarray,
                  out: gs.Tensor) -> None:
    """A binary SVC(probability=True): ``out = Sigmoid([-(a s + b), a s + b])``, onnxruntime's
    ``[p, 1 - p]`` with ``p = 1 - sigmoid(a s + b)`` (Platt), and the label ``labels[argmax [s, -s]]``
    (class 0 when ``s > 0``: onnxruntime votes, it does not read the probabilities) through the extra
    output the ``class-scores`` annotation names."""
    model, rho = build.model, build.svm.rho
    logits = build.affine(np.concatenate([-a * pairwise, a * pairwise]), np.concatenate([-(a * rho + b), a * rho + b]),
                          "platt")
    build.add("Sigmoid", [logits], out, base="probability")
    if not is_read(model.graph, label):
        return
    build.label(out, label, labels)
    votes = build.affine(np.concatenate([pairwise, -pairwise]), np.concatenate([rho, -rho]), "class_votes",
                         new_variable(build.names, f"{label.name}_votes", np.float32))
    model.graph.outputs.append(votes)
    model.annotations.set("graph", CLASS_SCORES, votes.name)


def _leave(model: OnnxModel, node: gs.Node, reason: str, hint: str) -> bool:
    """Record why ``node`` stays (check-supported reports it); False: not rewritten."""
    model.annotations.set(node.name, PROBLEM, {"reason": reason, "hint": hint})
    return False


@register
class SvmToOnnx(Pass):
    """Rewrite SVMClassifier and SVMRegressor (SVC mode, kernels LINEAR, POLY, RBF, SIGMOID,
    probabilities only for two classes, post_transform NONE) into Gemm / Mul / Add / Exp / Pow / Tanh /
    Clip / Sigmoid nodes.

    Before -> after (3 classes, RBF; D the pairwise dual coefficients, A the vote matrix, a its base)::

        label, s = SVMClassifier(x) {kernel_type=RBF, support_vectors=S, coefficients, rho, ...}
        scores = <skl2onnx ovr tail>(s)                             (Less, Neg, Sum, Concat, Abs, Div ...)
            ->
        K = Exp(Clip(Add(Gemm(x, 2gS, -g|s|^2), Gemm(Gemm(Mul(x, x), -g 1[1,F]), 1[V,1])), -12, 0))
        s = Gemm(K, D, rho)                                         (onnxruntime's pairwise scores)
        c = Gemm(s, A, 0)                                           (confidences)
        scores = Add(Gemm(Clip(Gemm(s, m I, 1/2), 0, 1), A, a), Div(c, Mul(Add(Abs(c), 1), 3)))
        label_votes = Gemm(Clip(Gemm(s, M I, 1/2), 0, 1), A, a - tie)   (extra output; class-scores)
        label = Reshape(ArrayFeatureExtractor(classes, ArgMax(scores)), [-1])

        binary:    scores = Gemm(K, [-D; D], [-rho; rho])  (labels recorded reversed: class 0 when s > 0)
        binary, Slice of column 1 (OneVsRest): column = Gemm(K, D, rho)
        binary, probability=True: probabilities = Sigmoid(Gemm(K, [-aD; aD], [-(a rho + b); a rho + b])),
                   label_votes = Gemm(K, [D; -D], [rho; -rho])  (extra output; class-scores)
        regressor: y = Gemm(K, coefficients, rho)
    """

    name = "svm-to-onnx"
    level = "onnx"
    preserves_semantics = False  # multi-class scores: continuous votes within |s| < 1/2m; an extra output

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        stats = {"svm-classifiers": 0, "svm-regressors": 0}
        for node in list(graph.nodes):
            if node.domain != ML_DOMAIN:
                continue
            if node.op == "SVMClassifier" and self._classifier(model, names, node):
                stats["svm-classifiers"] += 1
            elif node.op == "SVMRegressor" and self._regressor(model, names, node):
                stats["svm-regressors"] += 1
        changed = any(stats.values())
        if changed:
            ensure_default_domain(graph)
            drop_unused(graph, toposort=True)
        return PassResult(model, changed, stats)

    def _regressor(self, model: OnnxModel, names: NameSource, node: gs.Node) -> bool:
        svm = read_svm(node, 1)
        if int(attr(node, "one_class", 0)):
            return _leave(model, node, "a one-class SVM (OneClassSVM)", "novelty detection is not supported; "
                          "train a regressor or classifier")
        if str(attr(node, "post_transform", "NONE")) != "NONE":
            return _leave(model, node, f"post_transform {attr(node, 'post_transform')}", "export without one")
        if svm is None or svm.rho.size != 1 or int(attr(node, "n_supports", 0)) != svm.vectors.shape[0]:
            return _leave(model, node, "no support vectors, or support vectors, coefficients and rho that do not "
                          "fit together", "export SVR/NuSVR with skl2onnx (a LinearSVR exports as a "
                          "LinearRegressor, which is supported)")
        build = _Builder(model, names, node, svm)
        out = node.outputs[0]
        detach(node)
        build.affine(svm.coefficients, svm.rho, "decision", out)
        return True

    def _classifier(self, model: OnnxModel, names: NameSource, node: gs.Node) -> bool:
        labels = class_labels(node)
        per_class = [int(v) for v in node.attrs.get("vectors_per_class") or []]
        classes = len(labels) if labels is not None else 0
        platt = _floats(node, "prob_a"), _floats(node, "prob_b")
        if platt[0].size and classes > 2:
            return _leave(model, node, f"SVC(probability=True) with {classes} classes: onnxruntime couples the "
                          "pairwise Platt probabilities by an iterative solve", "train the SVC with "
                          "probability=False (the default): its decision function and voted class compile; "
                          "a binary SVC(probability=True) compiles too")
        if str(attr(node, "post_transform", "NONE")) != "NONE":
            return _leave(model, node, f"post_transform {attr(node, 'post_transform')}", "export without one")
        svm = read_svm(node, max(classes - 1, 1))
        pairs = classes * (classes - 1) // 2
        if classes < 2 or len(per_class) != classes or len(node.outputs) != 2 or svm is None \
                or svm.vectors.shape[0] != sum(per_class) or svm.rho.size != pairs:
            return _leave(model, node, "no support vectors, or labels, support vectors, coefficients and rho that "
                          "do not fit together", "export SVC/NuSVC with skl2onnx (a LinearSVC exports as a "
                          "LinearClassifier, which is supported)")
        if classes > 2 and svm.kernel == "POLY":
            return _leave(model, node, "a polynomial kernel with several classes: its kernel values span too wide a "
                          "range for 16-bit fixed point, and their rounding moves the one-vs-one decisions across "
                          "0 (flipped votes)", "use kernel='rbf', 'linear' or 'sigmoid' (a binary polynomial SVC "
                          "is supported)")
        label, scores = node.outputs
        pairwise = pair_matrix(per_class, svm.coefficients)
        tail = _downstream(model.graph, scores)
        if classes == 2:
            column = None if platt[0].size or is_read(model.graph, label) else _one_column(model.graph, scores)
            if column is not None:      # OneVsRestClassifier(SVC): each binary SVC's column 1 (or 0)
                nodes, out, index = column
                build = _Builder(model, names, node, svm)
                for dead in [node, *nodes]:
                    detach(dead)
                sign = 1.0 if index == 1 else -1.0
                build.affine(sign * pairwise, sign * svm.rho, "decision", out)
                return True
            if tail is None or any(n.op not in _COPIES or int(n.attrs.get("to", onnx.TensorProto.FLOAT))
                                   != onnx.TensorProto.FLOAT for n in tail[0]):
                return _leave(model, node, "its scores are computed on before they reach the output",
                              "output the SVMClassifier's scores as skl2onnx writes them")
            build = _Builder(model, names, node, svm)
            for dead in [node, *tail[0]]:
                detach(dead)
            if platt[0].size:
                _platt_binary(build, pairwise, float(platt[0][0]), float(platt[1][0]), label, labels, tail[1])
                return True
            build.affine(np.concatenate([-pairwise, pairwise]), np.concatenate([-svm.rho, svm.rho]), "decision",
                         tail[1])
            if is_read(model.graph, label):
                build.label(tail[1], label, labels[::-1].copy())
            return True
        if tail is None or not _tail_is_ovr(tail[0], scores, tail[1], classes, model.opset or 13):
            return _leave(model, node, "the scores after it are not skl2onnx's one-vs-rest decision function",
                          "export the SVC with decision_function_shape='ovr' (the default); the one-vs-one "
                          "scores themselves are not supported")
        tail_nodes, end = tail
        build = _Builder(model, names, node, svm)
        for dead in [node, *tail_nodes]:
            detach(dead)
        signs, base = vote_matrix(classes)
        pair = build.affine(pairwise, svm.rho, "pair")
        zero, one = build.const("zero", np.array(0.0)), build.const("one", np.array(1.0))
        identity = np.eye(pairs)

        def votes(gain: float, bias: np.ndarray, base_name: str, out: gs.Tensor | None = None) -> gs.Tensor:
            """``A Clip(gain s + 1/2, 0, 1) + bias``: the votes, hard (a sign) or soft."""
            vote = build.add("Clip", [build.gemm(pair, gain * identity, np.full(pairs, 0.5), f"{base_name}_in"),
                                      zero, one], base=f"{base_name}_vote")
            return build.gemm(vote, signs, bias, base_name, out)

        conf = build.gemm(pair, signs, np.zeros(classes), "confidence")
        spread = build.add("Mul", [build.add("Add", [build.add("Abs", [conf], base="conf_abs"), one], base="conf_1"),
                                   build.const("three", np.array(3.0))], base="conf_3")
        squashed = build.add("Div", [conf, spread], base="conf_squashed")
        build.add("Add", [votes(SOFT_VOTE_GAIN, base, "votes"), squashed], end, base="ovr")
        if is_read(model.graph, label):
            build.label(end, label, labels)
            hard = votes(VOTE_GAIN, base - TIE_BREAK / classes * np.arange(classes), "class_votes",
                         new_variable(names, f"{label.name}_votes", np.float32))
            model.graph.outputs.append(hard)
            model.annotations.set("graph", CLASS_SCORES, hard.name)
        return True

