"""`gemm-rows`: a Gemm over the rows of a flattened sequence or map, reshaped back, becomes a
MatMul (+ Add) on the unflattened tensor."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.matmul_to_gemm import bias_vector
from passes.normalize_util import (NameSource, add_node, attr, const_value, drop_unused, is_empty, new_constant,
                                   new_variable, origin_of, producer, set_origin, set_tensors, static_shape)


def _rows_gemm(gemm: gs.Node) -> tuple[gs.Tensor, np.ndarray, np.ndarray | None] | None:
    """(x, weights ``[K, N]`` times alpha, bias ``[N]`` times beta or None) when ``gemm`` reads
    ``Reshape(x: [..., K] -> [M, K])`` of an ``x`` of rank 3 or more; None otherwise."""
    if gemm.op != "Gemm" or (gemm.domain or "") not in ("", "ai.onnx") or int(attr(gemm, "transA", 0)):
        return None
    flatten = producer(gemm.inputs[0])
    weights = const_value(gemm.inputs[1])
    if flatten is None or flatten.op != "Reshape" or weights is None or weights.ndim != 2:
        return None
    source, rows = static_shape(flatten.inputs[0]), static_shape(flatten.outputs[0])
    w = (weights.T if int(attr(gemm, "transB", 0)) else weights) * float(attr(gemm, "alpha", 1.0))
    k, n = w.shape
    if source is None or rows is None or len(source) < 3 or source[-1] != k \
            or tuple(rows) != (int(np.prod(source[:-1])), k):
        return None
    bias = None
    if len(gemm.inputs) > 2 and not is_empty(gemm.inputs[2]):
        c = const_value(gemm.inputs[2])
        vector = None if c is None else bias_vector(c, n)
        if vector is None:
            return None
        bias = (vector * float(attr(gemm, "beta", 1.0))).astype(w.dtype)
    return flatten.inputs[0], np.ascontiguousarray(w.astype(weights.dtype)), bias


@register
class GemmRows(Pass):
    """Undo a flatten-Gemm-unflatten around a linear layer applied to every row of a sequence or map.

    onnxruntime's MatMul+Add fusion (in a model saved after its optimizations), and exporters that
    only know 2-D Gemm, write a linear layer on ``x: [1, T, K]`` as::

        r = Reshape(x, [T, K]);  g = Gemm(r, W, C);  y = Reshape(g, [1, T, N])
            ->
        h = Add(MatMul(x, W'), C);  g = Reshape(h, [T, N]);  y = Reshape(g, [1, T, N])

    (W' = alpha W, or alpha W^T with transB; C times beta, a ``[N]`` bias), which canonicalize-reshape
    folds into ``y = h`` and matmul-to-gemm and the attention rewrite know: the 2-D ``[T, K]`` rows
    have no batch axis, which the normal form needs. ``x`` may have any leading axes (rank 3 or more).
    """

    name = "gemm-rows"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        rewritten = 0
        for gemm in list(graph.nodes):
            found = _rows_gemm(gemm)
            if found is None:
                continue
            x, w, bias = found
            g = gemm.outputs[0]
            shape = (*(static_shape(x) or ())[:-1], w.shape[1])
            full = new_variable(names, f"{gemm.name}_rows", g.dtype, shape)
            product = full if bias is None else new_variable(names, f"{gemm.name}_product", g.dtype, shape)
            made = [add_node(graph, names, "MatMul", f"{gemm.name}_matmul",
                             [x, new_constant(names, f"{gemm.name}_weights", w)], [product])]
            if bias is not None:
                made.append(add_node(graph, names, "Add", f"{gemm.name}_bias",
                                     [product, new_constant(names, f"{gemm.name}_bias", bias)], [full]))
            target = new_constant(names, f"{gemm.name}_shape", np.array(static_shape(gemm.inputs[0])[:1] +
                                                                          (w.shape[1],), dtype=np.int64))
            set_tensors(gemm.outputs, [])
            made.append(add_node(graph, names, "Reshape", f"{gemm.name}_flat", [full, target], [g]))
            for node in made:
                set_origin(model, node, origin_of(model, gemm))
            rewritten += 1
        if rewritten:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})
