"""`ml-to-onnx`: scikit-learn's ``ai.onnx.ml`` Scaler, LinearClassifier, LinearRegressor and Normalizer as
standard ops.

skl2onnx writes linear models (LogisticRegression, LinearSVC, SGDClassifier with several classes,
RidgeClassifier, ...) as one ``LinearClassifier`` node, linear regressors (LinearRegression, Ridge,
Lasso, SGDRegressor, LinearSVR, ...) as one ``LinearRegressor`` node and StandardScaler as a
``Scaler`` node; OneVsRestClassifier(LogisticRegression) becomes one binary LinearClassifier per
class whose positive columns are concatenated; ``Normalizer`` (L2, L1) divides the features by their
norm. All are plain arithmetic (the norm's reciprocal is one table); this pass spells them with default-domain ops so the rest of `normalize`
(and `strip-classifier-tail` for the label output) treats them like any other model.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from transpiler import ort
from transpiler.annotations import CLASS_SCORES, register_kind
from transpiler.data import Dataset
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, add_node, attr, bypass, const_value, consumers, detach,
                                   drop_unused, is_empty, is_graph_output, is_read, new_constant, new_variable,
                                   origin_of, producer, quiet_gs, set_origin)

ML_DOMAIN = "ai.onnx.ml"
#: The default-domain opset imported for the new nodes when the model imports none.
DEFAULT_OPSET = 13
#: Normalizer norm -> p (``y = x / (sum |x|^p)^(1/p)``); MAX is not supported.
NORM_POWERS = {"L2": 0.5, "L1": 1.0}
NORM_FLOOR = 1.2
"""A Normalizer divides by at least ``(smallest calibrated sum) / NORM_FLOOR``: the table of
``sum^(-1/p)`` then starts where its value fits the calibrated output format (+25 % headroom)."""
CALIBRATION_ROWS = 256
PROBLEM = "ml-problem"
register_kind(PROBLEM, dict, "why ml-to-onnx / svm-to-onnx left an ai.onnx.ml node: {reason, hint} (check-supported "
                             "reports it)")
#: post_transform -> the default-domain op applied to the scores (None: no op).
POST_OPS: dict[str, str | None] = {"NONE": None, "SOFTMAX": "Softmax", "LOGISTIC": "Sigmoid"}


def _floats(node: gs.Node, name: str) -> np.ndarray | None:
    value = node.attrs.get(name)
    return None if value is None else np.asarray(value, dtype=np.float32).reshape(-1)


def class_labels(node: gs.Node) -> np.ndarray | None:
    ints = node.attrs.get("classlabels_ints")
    if ints is not None and len(ints):
        return np.asarray(ints, dtype=np.int64)
    strings = node.attrs.get("classlabels_strings")
    if strings is not None and len(strings):
        return np.array([s.decode() if isinstance(s, bytes) else str(s) for s in strings], dtype=object)
    return None


def _input_width(node: gs.Node) -> int | None:
    shape = node.inputs[0].shape if node.inputs else None
    if shape is None or len(shape) != 2 or not isinstance(shape[1], (int, np.integer)) or int(shape[1]) <= 0:
        return None
    return int(shape[1])


def linear_weights(node: gs.Node) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """The ``[rows, K]`` weights and ``[rows]`` biases of a LinearClassifier the way onnxruntime uses
    them, and whether they were doubled from one row; None when the rows cannot be told apart (no
    input width and no intercepts) or do not fit the labels.

    A binary classifier stored with one row ``w`` (and two labels) gets the rows ``[-w; w]`` and the
    biases ``[-b; b]``: with LOGISTIC, onnxruntime's scores are ``[1 - s(z), s(z)] = s([-z, z])``.
    """
    coefs = _floats(node, "coefficients")
    labels = class_labels(node)
    if coefs is None or labels is None:
        return None
    bias = _floats(node, "intercepts")
    width = _input_width(node)
    rows = len(bias) if bias is not None and len(bias) else (coefs.size // width if width else None)
    if rows is None or rows == 0 or coefs.size % rows or (width is not None and coefs.size != rows * width):
        return None
    weights = coefs.reshape(rows, coefs.size // rows)
    bias = np.zeros(rows, dtype=np.float32) if bias is None or not len(bias) else bias
    if rows == 1 and len(labels) == 2:
        return np.concatenate([-weights, weights]), np.concatenate([-bias, bias]), True
    if rows != len(labels):
        return None
    return weights, bias, False


def _one_column(node: gs.Node | None) -> tuple[gs.Tensor, int] | None:
    """``(x, c)`` for a ``Slice`` of column c of a ``[N, C]`` tensor x (constant bounds, axis 1, step 1)."""
    if node is None or node.op != "Slice" or (node.domain or "") not in DEFAULT_DOMAINS or len(node.inputs) < 3:
        return None
    bounds = [const_value(t) if not is_empty(t) else None for t in node.inputs[1:]]
    if any(v is None or v.size != 1 for v in bounds[:2]) or any(v is not None and v.size != 1 for v in bounds[2:]):
        return None
    start, end = int(bounds[0].reshape(-1)[0]), int(bounds[1].reshape(-1)[0])
    axis = int(bounds[2].reshape(-1)[0]) if len(bounds) > 2 and bounds[2] is not None else 0
    step = int(bounds[3].reshape(-1)[0]) if len(bounds) > 3 and bounds[3] is not None else 1
    if axis not in (1, -1) or step != 1 or start < 0 or end != start + 1:
        return None
    return node.inputs[0], start


def label_path(graph: gs.Graph, names: NameSource, base: str, scores: gs.Tensor, label: gs.Tensor,
               labels: np.ndarray) -> list[gs.Node]:
    """``label = Reshape(ArrayFeatureExtractor(labels, ArgMax(scores)), [-1])``, the label path skl2onnx
    writes, which `strip-classifier-tail` removes (recording ``labels``); the new nodes."""
    classes = new_constant(names, f"{base}_classes", labels)
    index = new_variable(names, f"{base}_argmax", np.int64)
    picked = new_variable(names, f"{base}_label", label.dtype)
    shape = new_constant(names, f"{base}_label_shape", np.array([-1], dtype=np.int64))
    argmax = add_node(graph, names, "ArgMax", f"{base}_argmax", [scores], [index], {"axis": 1, "keepdims": 1})
    extract = gs.Node(op="ArrayFeatureExtractor", name=names.fresh(f"{base}_labels"), domain=ML_DOMAIN,
                      inputs=[classes, index], outputs=[picked])
    graph.nodes.append(extract)
    return [argmax, extract, add_node(graph, names, "Reshape", f"{base}_label_reshape", [picked, shape], [label])]


def _calibrated_norms(model: OnnxModel, data: Dataset, nodes: list[gs.Node]) -> dict[str, float]:
    """The smallest norm (L2: sum of squares; L1: sum of magnitudes) of each Normalizer's input over
    the calibration samples (onnxruntime on the model as it is; {} when it cannot run it)."""
    inputs = [t.name for t in model.graph.inputs]
    arrays = dict(data.inputs)
    if len(inputs) == 1 and len(arrays) == 1:
        arrays = {inputs[0]: next(iter(arrays.values()))}
    if any(name not in arrays for name in inputs):
        return {}
    wanted = sorted({n.inputs[0].name for n in nodes})
    try:    # the part of the graph that computes them (a ZipMap's map output would not export)
        part = model.graph.copy()
        tensors = part.tensors()
        part.outputs = [tensors[name] for name in wanted]
        for tensor in part.outputs:
            tensor.dtype = tensor.dtype or np.float32
        with quiet_gs():
            part.cleanup(remove_unused_graph_inputs=False)
            proto = gs.export_onnx(part, do_type_check=False)
        session = ort.session(proto)
        rows = [session.run(wanted, {name: arrays[name][i:i + 1].astype(np.float32) for name in inputs})
                for i in range(min(len(data), CALIBRATION_ROWS))]
    except Exception:    # onnxruntime's own exception types: no norms, the nodes are reported
        return {}
    smallest: dict[str, float] = {}
    for node in nodes:
        k = wanted.index(node.inputs[0].name)
        values = np.stack([np.asarray(r[k], dtype=np.float64).reshape(-1) for r in rows])
        sums = (values ** 2 if str(attr(node, "norm")) == "L2" else np.abs(values)).sum(axis=1)
        smallest[node.name] = float(sums.min())
    return smallest


def ensure_default_domain(graph: gs.Graph) -> None:
    """Import the default domain (at DEFAULT_OPSET) when the graph imports none: a model of
    ``ai.onnx.ml`` ops only has none, and the nodes that replace them need one."""
    if not any(d.domain in DEFAULT_DOMAINS for d in graph.import_domains or []):
        graph.import_domains = [*(graph.import_domains or []), onnx.helper.make_opsetid("", DEFAULT_OPSET)]
        graph.opset = DEFAULT_OPSET


def _decision_column(graph: gs.Graph, scores: gs.Tensor) -> tuple[gs.Node, int] | None:
    """``(node, c)`` when the only reader of two-column scores is an ``ArrayFeatureExtractor`` of the
    constant column c whose output is a graph output (skl2onnx's binary LinearSVC / RidgeClassifier)."""
    readers = consumers(scores)
    if len(readers) != 1 or readers[0].op != "ArrayFeatureExtractor" or readers[0].domain != ML_DOMAIN \
            or readers[0].inputs[0] is not scores or not is_graph_output(graph, readers[0].outputs[0]):
        return None
    index = const_value(readers[0].inputs[1])
    if index is None or index.size != 1 or int(index.reshape(-1)[0]) not in (0, 1):
        return None
    return readers[0], int(index.reshape(-1)[0])


def _l1_normalizer(scores: gs.Tensor) -> gs.Node | None:
    """The L1 Normalizer that alone reads ``scores``, if any."""
    readers = consumers(scores)
    if len(readers) == 1 and readers[0].op == "Normalizer" and readers[0].domain == ML_DOMAIN \
            and str(attr(readers[0], "norm", "")) == "L1":
        return readers[0]
    return None


def _scores_visible(graph: gs.Graph, scores: gs.Tensor) -> bool:
    """Are the scores a graph output, or the input of a ZipMap that is one (what strip-classifier-tail
    needs to replace the label output by the labels' table)?"""
    return is_graph_output(graph, scores) or any(
        r.op == "ZipMap" and r.domain == ML_DOMAIN and is_graph_output(graph, r.outputs[0]) for r in consumers(scores))


@register
class MlOpsToOnnx(Pass):
    """Rewrite ``ai.onnx.ml`` Scaler, LinearClassifier (and the Normalizer after its softmax), LinearRegressor.

    Before -> after::

        y = Scaler(x) {offset=o, scale=s}          ->  y = Mul(Add(x, -o), s)
        y = LinearRegressor(x) {coefficients=W, intercepts=b, targets=T, post_transform=NONE}
                                                   ->  y = Gemm(x, W[T,K], b[T]) {transB=1}
        label, p = LinearClassifier(x) {coefficients=W, intercepts=b, classlabels_ints=L,
                                        post_transform=SOFTMAX}
        q = Normalizer(p) {norm=L1}
            ->
        q = Softmax(Gemm(x, W[C,K], b) {transB=1}) {axis=1}
        label = Reshape(ArrayFeatureExtractor(L, ArgMax(q) {axis=1, keepdims=1}), [-1])

        _, p_k = LinearClassifier_k(x) {post_transform=LOGISTIC, two labels}     (k = 1..C: OneVsRest)
        s = Concat(Slice(p_1, [1], [2], [1]), ..., Slice(p_C, [1], [2], [1])) {axis=1}
            ->
        s = Sigmoid(Gemm(x, [row 1 of each W_k], [bias 1 of each]))

        y = Normalizer(x) {norm=L2}                (L1: Abs for the squares, power -1)
            ->
        n = Gemm(Mul(x, x), 1[1,F]);  r = Pow(Clip(n, floor, inf), -1/2)
        y = Mul(x, Gemm(r, 1[F,1]))                (floor: the smallest n on the calibration data / 1.2)

    ``post_transform`` NONE adds no op and LOGISTIC a Sigmoid. A binary classifier stored with one
    weight row and LOGISTIC gets the rows ``[-w; w]`` (onnxruntime's scores ``[1-s(z), s(z)]``; with
    one row and NONE its scores are ``[1-z, z]`` but its label is ``z > 0``, not their argmax, so
    that form is left alone). An L1 Normalizer of a softmax changes nothing and goes. The label path is the one
    skl2onnx writes for other classifiers, which `strip-classifier-tail` removes next (recording the
    labels). A binary classifier with two rows, NONE and only its decision column ``c`` as output (a
    LinearSVC or RidgeClassifier exported without raw_scores) outputs ``Gemm(x, w_c, b_c)``, and its
    class is the argmax of both rows, an extra graph output named by the ``class-scores`` annotation
    (lower reads the class from it; no port)::

        label, z = LinearClassifier(x) {W [2, K], b, NONE};  d = ArrayFeatureExtractor(z, [c])
            ->
        d = Gemm(x, W[c:c+1], b[c:c+1]);  label_scores = Gemm(x, W, b)   (extra output, class-scores)
        label = Reshape(ArrayFeatureExtractor(L, ArgMax(label_scores)), [-1])

    A LinearClassifier whose label is read but whose scores reach no graph output otherwise is left,
    as is everything else
    (post_transform SOFTMAX_ZERO or PROBIT, a Normalizer of other scores, weights that do not fit
    the labels), for `check-supported` to report. The one-vs-rest rewrite keeps the values; the L1
    normalisation skl2onnx applies after it is `strip-classifier-tail`'s. A Normalizer of features
    needs the calibration data (``context.data``): the table of ``n^(-1/p)`` must start where its
    value fits the output format, so ``n`` is floored at the smallest calibrated norm / NORM_FLOOR
    (only smaller norms differ from onnxruntime: their features come out shorter than 1); without
    data it is left with that reason (annotation ``ml-problem``).
    """

    name = "ml-to-onnx"
    level = "onnx"
    preserves_semantics = False  # a Normalizer's norm is floored (below the calibrated range it differs)

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        stats = {"scalers": 0, "linear-classifiers": 0, "normalizers": 0, "linear-regressors": 0, "one-vs-rest": 0}
        for node in list(graph.nodes):
            if node.op == "Concat" and (node.domain or "") in DEFAULT_DOMAINS and self._one_vs_rest(model, names, node):
                stats["one-vs-rest"] += 1
        for node in list(graph.nodes):
            if node.domain != ML_DOMAIN:
                continue
            if node.op == "Scaler" and self._scaler(model, names, node):
                stats["scalers"] += 1
            elif node.op == "LinearClassifier":
                done = self._linear(model, names, node)
                if done is not None:
                    stats["linear-classifiers"] += 1
                    stats["normalizers"] += done
            elif node.op == "LinearRegressor" and self._regressor(model, names, node):
                stats["linear-regressors"] += 1
        if any(stats.values()):
            ensure_default_domain(graph)
            drop_unused(graph, toposort=True)
        stats["l2-l1-normalizers"] = self._normalizers(model, names)
        changed = any(stats.values())
        if stats["l2-l1-normalizers"]:
            ensure_default_domain(graph)
            drop_unused(graph, toposort=True)
        return PassResult(model, changed, stats)

    def _normalizers(self, model: OnnxModel, names: NameSource) -> int:
        """Rewrite every L2 / L1 Normalizer of features (module docstring); how many. The floor of
        the norm comes from the calibration data: without data, or with an all-zero sample, the node
        is left with the reason."""
        graph = model.graph
        found = [n for n in graph.nodes if n.op == "Normalizer" and n.domain == ML_DOMAIN
                 and str(attr(n, "norm", "")) in NORM_POWERS and _input_width(n) is not None]
        if not found:
            return 0
        data = self.context.data
        if data is None:
            for node in found:
                model.annotations.set(node.name, PROBLEM, {
                    "reason": f"an {attr(node, 'norm')} Normalizer needs calibration data: the smallest norm it "
                              "will divide by is taken from it", "hint": "compile with --data"})
            return 0
        norms = _calibrated_norms(model, data.calibration_part(seed=self.context.seed), found)
        done = 0
        for node in found:
            smallest = norms.get(node.name)
            if smallest is None or not smallest > 0.0:
                model.annotations.set(node.name, PROBLEM, {
                    "reason": f"the calibration data has a sample whose {attr(node, 'norm')} norm is 0 "
                              "(or onnxruntime could not compute it)", "hint": "calibrate on samples that are "
                              "not all zeros"})
                continue
            self._normalizer(model, names, node, smallest / NORM_FLOOR)
            done += 1
        return done

    def _normalizer(self, model: OnnxModel, names: NameSource, node: gs.Node, floor: float) -> None:
        """``y = x * widen(max(norm(x), floor)^-1/p)`` (module docstring)."""
        graph = model.graph
        norm = str(attr(node, "norm"))
        width = _input_width(node)
        assert width is not None
        x, y = node.inputs[0], node.outputs[0]
        origin = origin_of(model, node)
        detach(node)

        def tensor(base: str) -> gs.Variable:
            return new_variable(names, f"{node.name}_{base}", np.float32)

        def const(base: str, value: np.ndarray | float) -> gs.Constant:
            return new_constant(names, f"{node.name}_{base}", np.asarray(value, dtype=np.float32))

        parts = tensor("squares" if norm == "L2" else "magnitudes")
        total, clipped, scale, wide = tensor("norm"), tensor("norm_floor"), tensor("scale"), tensor("scale_wide")
        made = [add_node(graph, names, "Mul", f"{node.name}_square", [x, x], [parts]) if norm == "L2" else
                add_node(graph, names, "Abs", f"{node.name}_abs", [x], [parts]),
                add_node(graph, names, "Gemm", f"{node.name}_sum", [parts, const("ones", np.ones((1, width))),
                                                                   const("zero", np.zeros(1))], [total], {"transB": 1}),
                add_node(graph, names, "Clip", f"{node.name}_floor", [total, const("floor", floor),
                                                                     const("ceiling", np.finfo(np.float32).max)],
                         [clipped]),
                add_node(graph, names, "Pow", f"{node.name}_inverse", [clipped, const("power", -NORM_POWERS[norm])],
                         [scale]),
                add_node(graph, names, "Gemm", f"{node.name}_widen", [scale, const("ones_wide", np.ones((width, 1))),
                                                                     const("zeros", np.zeros(width))], [wide],
                         {"transB": 1}),
                add_node(graph, names, "Mul", f"{node.name}_scale", [x, wide], [y])]
        for new in made:
            set_origin(model, new, origin)

    def _scaler(self, model: OnnxModel, names: NameSource, node: gs.Node) -> bool:
        """``y = (x - offset) * scale`` as Add and Mul of constants (an identity part is left out)."""
        offset, scale = _floats(node, "offset"), _floats(node, "scale")
        width = _input_width(node)
        if offset is None and scale is None:
            return False
        x, y = node.inputs[0], node.outputs[0]
        steps: list[tuple[str, np.ndarray]] = []
        if offset is not None and np.any(offset != 0):
            steps.append(("Add", -offset))
        if scale is not None and np.any(scale != 1):
            steps.append(("Mul", scale))
        origin = origin_of(model, node)
        detach(node)
        if not steps:
            steps.append(("Add", np.zeros(1, dtype=np.float32)))
        current: gs.Tensor = x
        for i, (op, value) in enumerate(steps):
            if value.size == 1 and width is not None:
                value = np.full(width, value[0], dtype=np.float32)
            out = y if i == len(steps) - 1 else new_variable(names, f"{node.name}_shifted", np.float32)
            const = new_constant(names, f"{node.name}_{'offset' if op == 'Add' else 'scale'}", value)
            new = add_node(model.graph, names, op, f"{node.name}_{op.lower()}", [current, const], [out])
            set_origin(model, new, origin)
            current = out
        return True

    def _regressor(self, model: OnnxModel, names: NameSource, node: gs.Node) -> bool:
        """``y = x W^T + b`` as one Gemm; False (left for check-supported) for a post_transform other
        than NONE or coefficients that do not fit ``targets`` and the input width."""
        coefs = _floats(node, "coefficients")
        targets = int(attr(node, "targets", 1))
        width = _input_width(node)
        if str(attr(node, "post_transform", "NONE")) != "NONE" or coefs is None or targets <= 0 \
                or coefs.size % targets or (width is not None and coefs.size != targets * width):
            return False
        bias = _floats(node, "intercepts")
        if bias is None or not len(bias):
            bias = np.zeros(targets, dtype=np.float32)
        if len(bias) != targets:
            return False
        weights = coefs.reshape(targets, coefs.size // targets)
        origin = origin_of(model, node)
        x, y = node.inputs[0], node.outputs[0]
        detach(node)
        w = new_constant(names, f"{node.name}_weights", weights)
        b = new_constant(names, f"{node.name}_bias", bias)
        gemm = add_node(model.graph, names, "Gemm", f"{node.name}_gemm", [x, w, b], [y], {"transB": 1})
        set_origin(model, gemm, origin)
        return True

    def _one_vs_rest(self, model: OnnxModel, names: NameSource, concat: gs.Node) -> bool:
        """``Concat`` of column c of k binary LOGISTIC LinearClassifiers of one input (skl2onnx's
        OneVsRestClassifier) -> ``Sigmoid(Gemm(x, [row c of each], [bias c of each]))``."""
        rows, biases, dead = [], [], [concat]
        x: gs.Tensor | None = None
        if int(concat.attrs.get("axis", 0)) not in (1, -1) or len(concat.inputs) < 2:
            return False
        for piece in concat.inputs:
            column = _one_column(producer(piece))
            clf = producer(column[0]) if column is not None else None
            if column is None or clf is None or clf.op != "LinearClassifier" or clf.domain != ML_DOMAIN \
                    or str(attr(clf, "post_transform", "NONE")) != "LOGISTIC" or len(clf.outputs) != 2 \
                    or column[0] is not clf.outputs[1] or consumers(clf.outputs[1]) != [producer(piece)] \
                    or consumers(piece) != [concat] or is_read(model.graph, clf.outputs[0]) \
                    or (x is not None and clf.inputs[0] is not x):
                return False
            found = linear_weights(clf)
            labels = class_labels(clf)
            if found is None or labels is None or len(labels) != 2 or column[1] >= len(found[0]):
                return False
            x = clf.inputs[0]
            rows.append(found[0][column[1]])
            biases.append(found[1][column[1]])
            dead += [producer(piece), clf]
        assert x is not None
        out = concat.outputs[0]
        origin = [name for node in dead for name in origin_of(model, node)]
        for node in dead:
            detach(node)
        w = new_constant(names, f"{concat.name}_weights", np.stack(rows).astype(np.float32))
        b = new_constant(names, f"{concat.name}_bias", np.asarray(biases, dtype=np.float32))
        raw = new_variable(names, f"{concat.name}_scores", np.float32)
        for new in (add_node(model.graph, names, "Gemm", f"{concat.name}_gemm", [x, w, b], [raw], {"transB": 1}),
                    add_node(model.graph, names, "Sigmoid", f"{concat.name}_sigmoid", [raw], [out])):
            set_origin(model, new, origin)
        return True

    def _decision(self, model: OnnxModel, names: NameSource, node: gs.Node, weights: np.ndarray, bias: np.ndarray,
                  column: tuple[gs.Node, int], labels: np.ndarray) -> None:
        """A binary classifier that outputs one decision column (a LinearSVC without raw_scores):
        ``d = Gemm(x, w_c, b_c)`` is that output; the label comes from the argmax of both rows, an
        extra graph output the ``class-scores`` annotation names (the class; no port)."""
        graph = model.graph
        extract, index = column
        x, label, out = node.inputs[0], node.outputs[0], extract.outputs[0]
        origin = origin_of(model, node) + origin_of(model, extract)
        detach(node)
        detach(extract)
        both = new_variable(names, f"{label.name}_scores", np.float32)
        made = [add_node(graph, names, "Gemm", f"{node.name}_decision",
                         [x, new_constant(names, f"{node.name}_decision_weights", weights[index:index + 1]),
                          new_constant(names, f"{node.name}_decision_bias", bias[index:index + 1])], [out],
                         {"transB": 1}),
                add_node(graph, names, "Gemm", f"{node.name}_gemm",
                         [x, new_constant(names, f"{node.name}_weights", weights.astype(np.float32)),
                          new_constant(names, f"{node.name}_bias", bias.astype(np.float32))], [both], {"transB": 1})]
        made += label_path(graph, names, node.name, both, label, labels)
        graph.outputs.append(both)
        model.annotations.set("graph", CLASS_SCORES, both.name)
        for new in made:
            set_origin(model, new, origin)

    def _linear(self, model: OnnxModel, names: NameSource, node: gs.Node) -> int | None:
        """Rewrite one LinearClassifier; the number of Normalizers removed, or None if left alone."""
        graph = model.graph
        post = str(attr(node, "post_transform", "NONE"))
        found = linear_weights(node)
        labels = class_labels(node)
        if found is None or labels is None or post not in POST_OPS or len(node.outputs) != 2:
            return None
        weights, bias, doubled = found
        if doubled and post != "LOGISTIC":
            return None  # one row: onnxruntime scores [1 - z, z] but labels z > 0 (not their argmax)
        x, label, scores = node.inputs[0], node.outputs[0], node.outputs[1]
        norm = _l1_normalizer(scores) if post == "SOFTMAX" else None
        final = norm.outputs[0] if norm is not None else scores
        if is_read(graph, label) and not _scores_visible(graph, final):
            column = _decision_column(graph, scores)
            if column is None or post != "NONE" or doubled:
                return None  # strip-classifier-tail could not remove the label path
            self._decision(model, names, node, weights, bias, column, labels)
            return 0
        origin = origin_of(model, node)
        detach(node)
        w = new_constant(names, f"{node.name}_weights", weights.astype(np.float32))
        b = new_constant(names, f"{node.name}_bias", bias.astype(np.float32))
        post_op = POST_OPS[post]
        raw = new_variable(names, f"{node.name}_scores", np.float32) if post_op else scores
        made = [add_node(graph, names, "Gemm", f"{node.name}_gemm", [x, w, b], [raw], {"transB": 1})]
        if post_op:
            made.append(add_node(graph, names, post_op, f"{node.name}_{post_op.lower()}", [raw], [scores],
                                 {"axis": 1} if post_op == "Softmax" else {}))
        removed = 0
        if norm is not None and bypass(graph, norm):  # the Softmax writes the Normalizer's output if it is one
            scores = final if any(t is final for t in made[-1].outputs) else scores
            origin = origin + origin_of(model, norm)
            removed = 1
        if is_read(graph, label):
            made += label_path(graph, names, node.name, scores, label, labels)
        for new in made:
            set_origin(model, new, origin)
        return removed
