"""`binary-scores`: a binary classifier's ``[1 - s(z), s(z)]`` tail as one two-row Gemm and a Sigmoid."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, const_value, consumers, detach, drop_unused, is_empty,
                                   is_graph_output, merge_origin, new_constant, new_variable, producer, set_tensors,
                                   static_shape)


def _default(node: gs.Node | None, op: str) -> bool:
    return node is not None and node.op == op and (node.domain or "") in DEFAULT_DOMAINS


def _one_row_gemm(node: gs.Node | None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(w [1, K], b [1])`` of a Gemm ``z = x.w^T + b`` with one output, else None."""
    if not _default(node, "Gemm") or len(node.inputs) < 2:
        return None
    attrs = node.attrs
    if int(attrs.get("transA", 0)) or float(attrs.get("alpha", 1.0)) != 1.0 or float(attrs.get("beta", 1.0)) != 1.0:
        return None
    weight = const_value(node.inputs[1])
    if weight is None or weight.ndim != 2:
        return None
    weight = weight if int(attrs.get("transB", 0)) else weight.T
    has_bias = len(node.inputs) > 2 and not is_empty(node.inputs[2])
    bias = const_value(node.inputs[2]) if has_bias else np.zeros(1, dtype=weight.dtype)
    if weight.shape[0] != 1 or bias is None or bias.size != 1:
        return None
    return weight, bias.reshape(1)


@register
class BinaryScores(Pass):
    """Rewrite the two-column scores of a binary classifier with one logit into a two-row Gemm.

    Before -> after (skl2onnx's binary MLPClassifier / SGDClassifier(log_loss))::

        z = Gemm(x, w[1,K], b[1]);  s = Sigmoid(z)
        p = Concat(Sub(1, s), s) {axis=1}                       (p: [1, 2])
            ->
        p = Sigmoid(Gemm(x, [-w; w], [-b; b]))                  (1 - s(z) = s(-z))

    The final Sigmoid is then dropped by `lower` like a final Softmax: the device returns the
    logits ``[-z, z]`` and their argmax, which is the class ``z > 0`` of the original. Applies when
    ``z`` and ``s`` feed nothing else and ``1`` is a constant of ones with one element.
    """

    name = "binary-scores"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        rewritten = 0
        for concat in list(graph.nodes):
            if _default(concat, "Concat") and self._rewrite(model, names, concat):
                rewritten += 1
        if rewritten:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})

    def _rewrite(self, model: OnnxModel, names: NameSource, concat: gs.Node) -> bool:
        graph = model.graph
        if len(concat.inputs) != 2 or int(concat.attrs.get("axis", 0)) not in (1, -1):
            return False
        first, second = concat.inputs
        sub, sigmoid = producer(first), producer(second)
        if not _default(sub, "Sub") or not _default(sigmoid, "Sigmoid") or len(sub.inputs) != 2:
            return False
        one = const_value(sub.inputs[0])
        if sub.inputs[1] is not second or one is None or one.size != 1 or float(one.reshape(-1)[0]) != 1.0:
            return False
        z = sigmoid.inputs[0]
        gemm = producer(z)
        found = _one_row_gemm(gemm)
        if found is None or static_shape(concat.outputs[0]) not in (None, (1, 2)):
            return False
        if consumers(z) != [sigmoid] or {id(n) for n in consumers(second)} != {id(sub), id(concat)} \
                or consumers(first) != [concat] or any(is_graph_output(graph, t) for t in (z, second, first)):
            return False
        weight, bias = found
        w = new_constant(names, f"{gemm.name}_both", np.concatenate([-weight, weight]).astype(np.float32))
        b = new_constant(names, f"{gemm.name}_both_bias", np.concatenate([-bias, bias]).astype(np.float32))
        logits = new_variable(names, f"{gemm.name}_logits", np.float32, [1, 2])
        set_tensors(gemm.inputs, [gemm.inputs[0], w, b])
        set_tensors(gemm.outputs, [logits])
        gemm.attrs.update({"transA": 0, "transB": 1, "alpha": 1.0, "beta": 1.0})
        out = concat.outputs[0]
        detach(concat)
        detach(sub)
        set_tensors(sigmoid.inputs, [logits])
        set_tensors(sigmoid.outputs, [out])
        merge_origin(model, sigmoid, sub, concat)
        return True
