"""`knn-to-onnx`: recognise scikit-learn's k-nearest-neighbour models (skl2onnx's Scan / TopK graph)
and say why they cannot be compiled.

skl2onnx writes ``KNeighborsClassifier`` / ``KNeighborsRegressor`` as the distances to the V stored
training points ``S`` (``[V, F]``: a ``Scan`` over S of ``ReduceSumSquare(x - s)`` for the Euclidean
metric, a Transpose, a Sqrt), ``TopK(largest=0)`` of the k nearest, and a tail that reads their
indices (``ArrayFeatureExtractor`` of each neighbour's class or target, then per-class votes or a
``ReduceMean``; ``weights='distance'`` also reads the TopK's values). The LIR has no selection of the
k smallest of a vector (no ``topk`` op, and no gather by a computed index but ``embed``), so the
model is left: the pass records, on the TopK, what the model is and what to do instead (annotation
``ml-problem``), and `check-supported` reports that line before the nodes that only follow from it
(the Scan, the votes). A TopK that is not fed by such a distance Scan is not touched (check-supported
reports it as an unsupported op).
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.ml_ops import PROBLEM
from passes.normalize_util import attr, const_value, consumers, producer

HINT = ("train a model without stored points instead, e.g. LogisticRegression, a small MLPClassifier/"
        "MLPRegressor, SVC/SVR (its support vectors are compiled: often fewer than the k-NN's points), "
        "LinearDiscriminantAnalysis or a DecisionTree/RandomForest of limited depth")


def stored_points(topk: gs.Node) -> np.ndarray | None:
    """The stored points ``S`` ``[V, F]`` when ``topk`` reads skl2onnx's distances
    ``[Sqrt](Transpose(Scan(x, S)))`` to a constant S, else None."""
    source = producer(topk.inputs[0])
    if source is not None and source.op == "Sqrt":
        source = producer(source.inputs[0])
    if source is None or source.op != "Transpose":
        return None
    scan = producer(source.inputs[0])
    if scan is None or scan.op != "Scan" or int(attr(scan, "num_scan_inputs", 0)) != 1 or len(scan.inputs) != 2:
        return None
    points = const_value(scan.inputs[1])
    return points if points is not None and points.ndim == 2 else None


@register
class KnnToOnnx(Pass):
    """Annotate skl2onnx's k-nearest-neighbour TopK with the reason it stays and what to do.

    Before -> after::

        d = Sqrt(Transpose(Scan(x, S){ReduceSumSquare(x - s)}))      (S: V stored points)
        _, idx = TopK(d, k){largest=0};  y = <votes or mean of labels[idx]>
            ->
        the same graph; annotation ml-problem on the TopK: {reason: "k-nearest neighbours (k of V
        stored points ...): ...", hint: "train a model without stored points ..."}
    """

    name = "knn-to-onnx"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        found = 0
        for node in model.graph.nodes:
            if node.op != "TopK" or (node.domain or "") not in ("", "ai.onnx"):
                continue
            points = stored_points(node)
            if points is None:
                continue
            k = const_value(node.inputs[1]) if len(node.inputs) > 1 else None
            count = f"k = {int(k.reshape(-1)[0])}" if k is not None and k.size == 1 else "k"
            weighted = " weighted by distance," if consumers(node.outputs[0]) else ""
            model.annotations.set(node.name, PROBLEM, {
                "reason": f"k-nearest neighbours ({count} of {points.shape[0]} stored points of "
                          f"{points.shape[1]} features,{weighted} skl2onnx's KNeighbors* graph): the nearest "
                          "k are chosen by a TopK, and the LIR has no top-k selection (nor a gather by a "
                          "computed index)",
                "hint": HINT})
            found += 1
        return PassResult(model, False, {"knn": found})
