"""`ml-to-onnx`: scikit-learn's ``ai.onnx.ml`` Scaler, LinearClassifier, LinearRegressor and Normalizer as
standard ops.

skl2onnx writes linear models (LogisticRegression, LinearSVC, SGDClassifier with several classes,
RidgeClassifier, ...) as one ``LinearClassifier`` node, linear regressors (LinearRegression, Ridge,
Lasso, SGDRegressor, LinearSVR, ...) as one ``LinearRegressor`` node and StandardScaler as a
``Scaler`` node. All are plain arithmetic; this pass spells them with default-domain ops so the rest of `normalize`
(and `strip-classifier-tail` for the label output) treats them like any other model.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, add_node, attr, bypass, consumers, detach, drop_unused,
                                   is_graph_output, is_read, new_constant, new_variable, origin_of, set_origin)

ML_DOMAIN = "ai.onnx.ml"
#: The default-domain opset imported for the new nodes when the model imports none.
DEFAULT_OPSET = 13
#: post_transform -> the default-domain op applied to the scores (None: no op).
POST_OPS: dict[str, str | None] = {"NONE": None, "SOFTMAX": "Softmax", "LOGISTIC": "Sigmoid"}


def _floats(node: gs.Node, name: str) -> np.ndarray | None:
    value = node.attrs.get(name)
    return None if value is None else np.asarray(value, dtype=np.float32).reshape(-1)


def _class_labels(node: gs.Node) -> np.ndarray | None:
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
    labels = _class_labels(node)
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

    ``post_transform`` NONE adds no op and LOGISTIC a Sigmoid. A binary classifier stored with one
    weight row and LOGISTIC gets the rows ``[-w; w]`` (onnxruntime's scores ``[1-s(z), s(z)]``; with
    one row and NONE its scores are ``[1-z, z]`` but its label is ``z > 0``, not their argmax, so
    that form is left alone). An L1 Normalizer of a softmax changes nothing and goes. The label path is the one
    skl2onnx writes for other classifiers, which `strip-classifier-tail` removes next (recording the
    labels); a LinearClassifier whose label is read but whose scores reach no graph output (a binary
    LinearSVC exported with its decision column only) is left, as is everything else
    (post_transform SOFTMAX_ZERO or PROBIT, a Normalizer of other scores, weights that do not fit
    the labels), for `check-supported` to report.
    """

    name = "ml-to-onnx"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        stats = {"scalers": 0, "linear-classifiers": 0, "normalizers": 0, "linear-regressors": 0}
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
        changed = any(stats.values())
        if changed and not any(d.domain in DEFAULT_DOMAINS for d in graph.import_domains or []):
            # a model of ai.onnx.ml ops only imports no default domain; the new nodes need one
            graph.import_domains = [*(graph.import_domains or []), onnx.helper.make_opsetid("", DEFAULT_OPSET)]
            graph.opset = DEFAULT_OPSET
        if changed:
            drop_unused(graph, toposort=True)
        return PassResult(model, changed, stats)

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

    def _linear(self, model: OnnxModel, names: NameSource, node: gs.Node) -> int | None:
        """Rewrite one LinearClassifier; the number of Normalizers removed, or None if left alone."""
        graph = model.graph
        post = str(attr(node, "post_transform", "NONE"))
        found = linear_weights(node)
        labels = _class_labels(node)
        if found is None or labels is None or post not in POST_OPS or len(node.outputs) != 2:
            return None
        weights, bias, doubled = found
        if doubled and post != "LOGISTIC":
            return None  # one row: onnxruntime scores [1 - z, z] but labels z > 0 (not their argmax)
        x, label, scores = node.inputs[0], node.outputs[0], node.outputs[1]
        norm = _l1_normalizer(scores) if post == "SOFTMAX" else None
        final = norm.outputs[0] if norm is not None else scores
        if is_read(graph, label) and not _scores_visible(graph, final):
            return None  # strip-classifier-tail could not remove the label path (e.g. a decision column)
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
            classes = new_constant(names, f"{node.name}_classes", labels)
            index = new_variable(names, f"{node.name}_argmax", np.int64)
            picked = new_variable(names, f"{node.name}_label", label.dtype)
            shape = new_constant(names, f"{node.name}_label_shape", np.array([-1], dtype=np.int64))
            made.append(add_node(graph, names, "ArgMax", f"{node.name}_argmax", [scores], [index],
                                 {"axis": 1, "keepdims": 1}))
            extract = gs.Node(op="ArrayFeatureExtractor", name=names.fresh(f"{node.name}_labels"),
                              domain=ML_DOMAIN, inputs=[classes, index], outputs=[picked])
            graph.nodes.append(extract)
            made.append(extract)
            made.append(add_node(graph, names, "Reshape", f"{node.name}_label_reshape", [picked, shape], [label]))
        for new in made:
            set_origin(model, new, origin)
        return removed
