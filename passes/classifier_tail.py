"""`strip-classifier-tail`: remove skl2onnx's label path and ZipMap, keeping the scores output."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import const_value, consumers, detach, is_graph_output, producer, quiet_gs

ML_DOMAIN = "ai.onnx.ml"
#: Ops allowed between ArrayFeatureExtractor and the label output (they only reshape/retype it).
_LABEL_PLUMBING = ("Reshape", "Cast", "Identity", "Squeeze", "Flatten")
ANNOTATION = "classifier-tail"
TARGET = "graph"


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


def _zipmap_reading(graph: gs.Graph, scores: gs.Tensor) -> gs.Node | None:
    for node in consumers(scores):
        if node.op == "ZipMap" and node.domain == ML_DOMAIN and is_graph_output(graph, node.outputs[0]):
            return node
    return None


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
    goes. The ArgMax must read the scores output itself, so ``labels[argmax(scores)]`` recomputes
    the removed label exactly. The final Softmax is kept.
    """

    name = "strip-classifier-tail"
    level = "onnx"
    preserves_semantics = False  # the label output is removed (and ZipMap's output type changes)

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        for node in list(graph.nodes):
            if node.op != "ArrayFeatureExtractor" or node.domain != ML_DOMAIN or len(node.inputs) != 2:
                continue
            classes = const_value(node.inputs[0])
            argmax = producer(node.inputs[1])
            if classes is None or argmax is None or argmax.op != "ArgMax":
                continue
            label = _label_output(graph, node.outputs[0])
            scores = argmax.inputs[0]
            zipmap = _zipmap_reading(graph, scores)
            if label is None or (zipmap is None and not is_graph_output(graph, scores)):
                continue
            return self._strip(model, label, scores, zipmap, _labels(classes))
        return PassResult(model, False, {"stripped": 0})

    def _strip(self, model: OnnxModel, label: gs.Tensor, scores: gs.Tensor, zipmap: gs.Node | None,
               labels: list[object]) -> PassResult[OnnxModel]:
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
                graph.outputs[index] = scores
        else:
            scores_name = scores.name
        with quiet_gs():
            graph.cleanup(remove_unused_graph_inputs=False)
        model.annotations.set(TARGET, ANNOTATION, {
            "kind": "argmax-labels", "labels": labels, "label_output": label_name,
            "scores_output": scores_name, "zipmap": zipmap is not None})
        return PassResult(model, True, {"stripped": 1, "labels": len(labels), "zipmap": zipmap is not None})
