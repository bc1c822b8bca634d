"""`strip-classifier-tail`: remove a classifier's label output (skl2onnx's label path and ZipMap, or
an ArgMax of the scores), keeping the scores output."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.fold_constants import constant_value
from passes.normalize_util import (DEFAULT_DOMAINS, bypass, const_value, consumers, detach, drop_unused,
                                   is_graph_output, producer)
from passes.remove_noops import kept_input, noop_reason

ML_DOMAIN = "ai.onnx.ml"
#: Ops allowed between ArrayFeatureExtractor and the label output (they only reshape/retype it).
_LABEL_PLUMBING = ("Reshape", "Cast", "Identity", "Squeeze", "Flatten")
ANNOTATION = "classifier-tail"
TARGET = "graph"
#: Final activations that keep the argmax of the scores they read (lower drops them).
_KEEP_ARGMAX = ("Softmax", "LogSoftmax", "Sigmoid")


def model_classes(model: OnnxModel) -> list[object] | None:
    """The class labels a classifier's removed label output named (``labels[k]`` is class ``k`` of the
    scores), or None when the model had none (its class is the scores' index)."""
    tail = model.annotations.get(TARGET, ANNOTATION)
    return list(tail["labels"]) if isinstance(tail, dict) and tail.get("kind") == "argmax-labels" else None


def _label_output(graph: gs.Graph, tensor: gs.Tensor) -> gs.Tensor | None:
    """Follow a chain of reshapes/casts from ``tensor`` to a graph output."""
    seen = 0
    while not is_graph_output(graph, tensor):
        readers = consumers(tensor)
        if len(readers) != 1 or readers[0].op not in _LABEL_PLUMBING or seen > 8:
            return None
        tensor = readers[0].outputs[0]
        seen += 1
    return tensor


def _labels(value: np.ndarray) -> list[object]:
    out: list[object] = []
    for item in np.asarray(value).reshape(-1).tolist():
        out.append(item.decode() if isinstance(item, bytes) else item)
    return out


def _rank(tensor: gs.Tensor) -> int | None:
    return len(tensor.shape) if tensor.shape is not None else None


def _on_class_axis(node: gs.Node, default: int, rank: int | None) -> bool:
    """Does ``node`` work over axis 1 of ``[N, classes]`` scores (``axis`` attribute, else ``default``)?"""
    axis = int(node.attrs.get("axis", default))
    return rank == 2 and axis in (1, -1)


def _scores_output(graph: gs.Graph, tensor: gs.Tensor, opset: int) -> gs.Tensor | None:
    """``tensor`` if it is a graph output, else the graph output of a final Softmax / LogSoftmax /
    Sigmoid over its class axis that reads it (the same argmax); None otherwise."""
    if is_graph_output(graph, tensor):
        return tensor
    for node in consumers(tensor):
        out = node.outputs[0] if node.outputs else None
        if node.op not in _KEEP_ARGMAX or (node.domain or "") not in DEFAULT_DOMAINS or out is None \
                or not is_graph_output(graph, out) or consumers(out):
            continue
        if node.op == "Sigmoid" or _on_class_axis(node, -1 if opset >= 13 else 1, _rank(out)):
            return out
    return None


def _final_scores(graph: gs.Graph, logits: gs.Tensor, opset: int) -> gs.Tensor | None:
    """The output of a final Softmax / LogSoftmax / Sigmoid over the class axis that reads ``logits``
    and is a graph output or a ZipMap's input, or None. (skl2onnx's label path of a linear model
    computed in double takes the ArgMax of the logits: the argmax of those scores.) Before shape
    inference the scores may have no shape yet: they are then taken to be skl2onnx's
    ``[N, classes]``; check-supported checks the final activation's axis on the static shapes."""
    for node in consumers(logits):
        out = node.outputs[0] if node.outputs else None
        if node.op not in _KEEP_ARGMAX or (node.domain or "") not in DEFAULT_DOMAINS or out is None:
            continue
        if not (is_graph_output(graph, out) and not consumers(out)) and _zipmap_reading(graph, out) is None:
            continue
        rank = _rank(out) if _rank(out) is not None else _rank(logits)
        if node.op == "Sigmoid" or _on_class_axis(node, -1 if opset >= 13 else 1, 2 if rank is None else rank):
            return out
    return None


def _l1_of_probabilities(graph: gs.Graph, node: gs.Node) -> bool:
    """An ``LpNormalization`` {p=1} over the class axis (a division by the sum of the |scores|, positive:
    it keeps their argmax) that is a graph output or a ZipMap's input, while an ArgMax reads its
    input (skl2onnx's OneVsRestClassifier: of sigmoids, or of binary SVCs' decision values)."""
    if node.op != "LpNormalization" or (node.domain or "") not in DEFAULT_DOMAINS or len(node.inputs) != 1 \
            or int(node.attrs.get("p", 2)) != 1 or int(node.attrs.get("axis", -1)) not in (1, -1):
        return False
    source, out = node.inputs[0], node.outputs[0]
    if producer(source) is None:
        return False
    others = [r for r in consumers(source) if r is not node]
    visible = is_graph_output(graph, out) or _zipmap_reading(graph, out) is not None
    return visible and bool(others) and all(r.op == "ArgMax" for r in others)


def _picks_label(node: gs.Node) -> bool:
    """Does ``node`` pick a class label from a table by index: skl2onnx's ArrayFeatureExtractor, or
    hummingbird-ml's ``Gather(classes, ArgMax(scores)) {axis=0}``?"""
    if len(node.inputs) != 2:
        return False
    if node.op == "ArrayFeatureExtractor" and node.domain == ML_DOMAIN:
        return True
    classes = const_value(node.inputs[0])
    return (node.op == "Gather" and (node.domain or "") in DEFAULT_DOMAINS and int(node.attrs.get("axis", 0)) == 0
            and classes is not None and classes.ndim == 1)


def _binary_scores_output(graph: gs.Graph, index: gs.Tensor) -> gs.Tensor | None:
    """The scores output ``p = Concat(Sub(1, s), s) {axis=1}``, ``s = Sigmoid(z)``, when ``index`` is
    hummingbird-ml's binary class index ``Cast(Squeeze(Greater(z, 0)))`` (``z`` one logit: the
    argmax of ``p`` is ``z > 0``), else None."""
    node = producer(index)
    while node is not None and node.op in _LABEL_PLUMBING and node.inputs:
        node = producer(node.inputs[0])
    if node is None or node.op != "Greater" or (node.domain or "") not in DEFAULT_DOMAINS:
        return None
    zero = constant_value(node.inputs[1])
    if zero is None or zero.size != 1 or float(zero.reshape(-1)[0]) != 0.0:
        return None
    for sigmoid in consumers(node.inputs[0]):
        if sigmoid.op != "Sigmoid" or (sigmoid.domain or "") not in DEFAULT_DOMAINS:
            continue
        s = sigmoid.outputs[0]
        for concat in consumers(s):
            if concat.op != "Concat" or int(concat.attrs.get("axis", 0)) not in (1, -1) or len(concat.inputs) != 2 \
                    or concat.inputs[1] is not s or not is_graph_output(graph, concat.outputs[0]):
                continue
            sub = producer(concat.inputs[0])
            one = constant_value(sub.inputs[0]) if sub is not None and sub.op == "Sub" else None
            if one is not None and one.size == 1 and float(one.reshape(-1)[0]) == 1.0 and sub.inputs[1] is s:
                return concat.outputs[0]
    return None


def _zipmap_reading(graph: gs.Graph, scores: gs.Tensor) -> gs.Node | None:
    for node in consumers(scores):
        if node.op == "ZipMap" and node.domain == ML_DOMAIN and is_graph_output(graph, node.outputs[0]):
            return node
    return None


def _bypass_noops_after_scores(graph: gs.Graph) -> None:
    """Remove the no-ops (`remove-noops`' Identity, same-type Cast, Mul by 1, ...) that read the
    scores an ArgMax reads, or such a no-op's output, so that ZipMap or the scores output reads the
    scores themselves (onnxmltools: ``probabilities = Mul(Identity(p), 1)``, ``ZipMap(Identity(p))``)."""
    scores = {id(n.inputs[0]) for n in graph.nodes if n.op == "ArgMax" and n.inputs}
    for node in list(graph.nodes):
        keep = kept_input(node) if node.inputs else 0
        if noop_reason(graph, node) is None or id(node.inputs[keep]) not in scores:
            continue
        scores.add(id(node.outputs[0]))     # kept (it writes a graph output), or what replaced its input
        bypass(graph, node, keep=keep)


@register
class StripClassifierTail(Pass):
    """Remove the ArgMax -> class-label path and ZipMap of a classifier; record the labels.

    Before -> after (skl2onnx classifier, zipmap on)::

        p = Softmax(z)
        output_label = Cast(Reshape(ArrayFeatureExtractor(classes, ArgMax(p))))
        output_probability = ZipMap(p)                       (a sequence of maps)
            ->
        output_probability = Softmax(z)                      (a float tensor [1, classes])
        annotation classifier-tail on "graph":
            {"kind": "argmax-labels", "labels": [0, 1, 2], "label_output": "output_label",
             "scores_output": "output_probability", "zipmap": true}

    With zipmap off the scores output (``probabilities``) stays as it is and only the label path
    goes. No-ops between the scores and ZipMap or the scores output go first (onnxmltools' LightGBM
    converter: ``ZipMap(Identity(p))``, ``probabilities = Mul(Identity(p), 1)``). The ArgMax must read the scores output itself, or the logits that a final Softmax /
    LogSoftmax / Sigmoid turns into it (skl2onnx's linear models in double), so
    ``labels[argmax(scores)]`` recomputes the removed label exactly. The final Softmax is kept.

    skl2onnx's OneVsRestClassifier divides its sigmoid scores (or its SVCs' decision values) by the sum
    of their |values| (``LpNormalization`` p=1); that keeps the argmax and goes: the Sigmoid (the
    Concat of the decision values) writes the scores output (its argmax, and the device's logits'
    argmax, is the class)::

        s = Sigmoid(z);  label = ... ArgMax(s);  probabilities = LpNormalization(s) {p=1}
            ->
        probabilities = Sigmoid(z);  label = ... ArgMax(probabilities)   (then stripped as above)

    A model that outputs an ArgMax over the class axis beside its scores (torch: ``return
    F.softmax(z, 1), z.argmax(1)``) loses that output the same way; the ArgMax may read the scores
    output or the input of the final Softmax / LogSoftmax / Sigmoid that makes it::

        probs = Softmax(z);  label = ArgMax(z) {axis=1}
            ->
        probs = Softmax(z)
        annotation: {"kind": "argmax-index", "label_output": "label", "scores_output": "probs"}
    """

    name = "strip-classifier-tail"
    level = "onnx"
    preserves_semantics = False  # the label output is removed (and ZipMap's output type changes)

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        _bypass_noops_after_scores(graph)
        for node in list(graph.nodes):
            if _l1_of_probabilities(graph, node):
                bypass(graph, node)
        for node in list(graph.nodes):
            if not _picks_label(node):
                continue
            classes = const_value(node.inputs[0])
            argmax = producer(node.inputs[1])
            label = _label_output(graph, node.outputs[0])
            binary = _binary_scores_output(graph, node.inputs[1])
            if classes is not None and label is not None and binary is not None:
                return self._strip(model, label, binary, None, _labels(classes))
            if classes is None or argmax is None or argmax.op != "ArgMax":
                continue
            scores = argmax.inputs[0]
            zipmap = _zipmap_reading(graph, scores)
            if zipmap is None and not is_graph_output(graph, scores):
                final = _final_scores(graph, scores, model.opset)
                if final is None:
                    continue
                scores, zipmap = final, _zipmap_reading(graph, final)
            if label is None:
                continue
            return self._strip(model, label, scores, zipmap, _labels(classes))
        for node in list(graph.nodes):
            if node.op != "ArgMax" or (node.domain or "") not in DEFAULT_DOMAINS or len(node.inputs) != 1 \
                    or int(node.attrs.get("select_last_index", 0)):
                continue
            label = _label_output(graph, node.outputs[0])
            scores = _scores_output(graph, node.inputs[0], model.opset)
            if label is None or scores is None or not _on_class_axis(node, 0, _rank(scores)):
                continue
            return self._strip(model, label, scores, None, None)
        return PassResult(model, False, {"stripped": 0})

    def _strip(self, model: OnnxModel, label: gs.Tensor, scores: gs.Tensor, zipmap: gs.Node | None,
               labels: list[object] | None) -> PassResult[OnnxModel]:
        """Remove the label output (and ZipMap); ``labels`` None: the class index is the label."""
        graph = model.graph
        label_name = label.name
        graph.outputs = [t for t in graph.outputs if t is not label]
        if zipmap is not None:
            mapped = zipmap.outputs[0]
            scores_name = mapped.name
            index = next(i for i, t in enumerate(graph.outputs) if t is mapped)
            detach(zipmap)
            if is_graph_output(graph, scores):
                del graph.outputs[index]  # the scores are an output already; drop the map copy
                scores_name = scores.name
            else:
                mapped.name = f"{scores_name}__zipmap"
                scores.name = scores_name
                if scores.dtype is None:    # ZipMap reads float scores (an output needs its type)
                    scores.dtype = np.float32
                graph.outputs[index] = scores
        else:
            scores_name = scores.name
        drop_unused(graph)
        if labels is None:
            model.annotations.set(TARGET, ANNOTATION, {
                "kind": "argmax-index", "label_output": label_name, "scores_output": scores_name})
            return PassResult(model, True, {"stripped": 1, "labels": 0, "zipmap": False})
        model.annotations.set(TARGET, ANNOTATION, {
            "kind": "argmax-labels", "labels": labels, "label_output": label_name,
            "scores_output": scores_name, "zipmap": zipmap is not None})
        return PassResult(model, True, {"stripped": 1, "labels": len(labels), "zipmap": zipmap is not None})
