"""`matmul-to-gemm`: MatMul(+Add) with constant weights, and every Gemm, become the canonical Gemm."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, add_node, const_value, consumers, detach, drop_unused, is_empty,
                                   is_graph_output, merge_origin, new_constant, new_variable, origin_of,
                                   set_origin, set_tensors, static_shape)


def bias_vector(value: np.ndarray, n: int) -> np.ndarray | None:
    """``value`` as a ``[n]`` vector if it broadcasts to ``[1, n]`` along the columns, else None."""
    value = np.asarray(value)
    if value.ndim > 2 or (value.ndim == 2 and value.shape[0] != 1):
        return None
    if value.size not in (1, n) or (value.ndim >= 1 and value.shape[-1] not in (1, n)):
        return None
    return np.broadcast_to(value.reshape(-1), (n,)).copy()


def _following_bias(graph: gs.Graph, node: gs.Node, n: int) -> tuple[gs.Node, np.ndarray] | None:
    """The Add right after ``node`` that adds a constant ``[n]``-broadcastable bias, if any."""
    out = node.outputs[0]
    readers = consumers(out)
    if len(readers) != 1 or is_graph_output(graph, out):
        return None
    add = readers[0]
    if add.op != "Add" or add.domain not in (None, "", "ai.onnx") or len(add.inputs) != 2:
        return None
    other = add.inputs[1] if add.inputs[0] is out else add.inputs[0]
    value = const_value(other)
    if value is None or other is out:
        return None
    vector = bias_vector(value, n)
    if vector is None or static_shape(add.outputs[0]) != static_shape(out):
        return None
    return add, vector


def _untranspose_column(graph: gs.Graph, node: gs.Node, names: NameSource) -> bool:
    """``Gemm(a: [K,1]) {transA=1}`` -> ``Gemm(Reshape(a, [1,K])) {transA=0}``: the transpose of one
    column is the row with the same elements (canonicalize-reshape later merges the Reshape with
    the reshape or transpose that made the column)."""
    shape = static_shape(node.inputs[0])
    if shape is None or len(shape) != 2 or shape[1] != 1:
        return False
    row = new_variable(names, f"{node.name}_row", node.inputs[0].dtype, (1, shape[0]))
    target = new_constant(names, f"{node.name}_row_shape", np.array([1, shape[0]], dtype=np.int64))
    add_node(graph, names, "Reshape", f"{node.name}_as_row", [node.inputs[0], target], [row])
    node.inputs[0] = row
    node.attrs["transA"] = 0
    return True


@register
class MatMulToGemm(Pass):
    """Make every fully connected layer the canonical ``Gemm(A, B[N,K], C[N]) {transB=1}``.

    Before -> after::

        y = Add(MatMul(x: [1,K], W[K,N]), b[N])   ->  y = Gemm(x, W^T, b) {alpha=1, beta=1, transA=0, transB=1}
        y = MatMul(x: [1,K], W[K,N])              ->  y = Gemm(x, W^T)    {... transB=1}
        y = Gemm(x, W[K,N], c[1,N]) {alpha=a, beta=b, transB=0}
                                                  ->  y = Gemm(x, a*W^T, b*c[N]) {alpha=1, beta=1, transB=1}
        y = Add(Gemm(x, W, c), d)                 ->  y = Gemm(x, W, c + d)
        y = Gemm(a: [K,1], W, c) {transA=1}       ->  y = Gemm(Reshape(a, [1,K]), W, c) {transA=0} ...
        y = Gemm(x, W, h) (h an activation)       ->  y = Add(Gemm(x, W^T) {...}, h)

    The Gemm keeps the MatMul's name and gets ``origin`` [MatMul, Add]. A MatMul whose right operand
    is not a constant matrix, or whose left operand is not a static rank-2 tensor, and a Gemm with
    ``transA=1`` on an ``A`` that is not one column, or a non-constant ``B``, are left for
    `check-supported` to report.
    """

    name = "matmul-to-gemm"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        stats = {"matmul-to-gemm": 0, "gemm-canonicalized": 0, "bias-adds-folded": 0}
        for node in list(graph.nodes):
            if node.domain not in (None, "", "ai.onnx") or not node.outputs:
                continue
            if node.op == "MatMul":
                if self._matmul(node):
                    stats["matmul-to-gemm"] += 1
                    self._canonical(node, names, stats, model)
            elif node.op == "Gemm":
                if self._activation_bias(model, node, names):
                    stats["activation-bias-split"] = stats.get("activation-bias-split", 0) + 1
                if self._canonical(node, names, stats, model):
                    stats["gemm-canonicalized"] += 1
        changed = any(stats.values())
        if changed:
            drop_unused(graph, toposort=True)
        return PassResult(model, changed, stats)

    @staticmethod
    def _matmul(node: gs.Node) -> bool:
        a, b = node.inputs[0], node.inputs[1]
        weight = const_value(b)
        shape = static_shape(a)
        if weight is None or weight.ndim != 2 or shape is None or len(shape) != 2 or shape[1] != weight.shape[0]:
            return False
        node.op = "Gemm"
        node.attrs.clear()
        node.attrs.update({"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0})
        return True

    @staticmethod
    def _activation_bias(model: OnnxModel, node: gs.Node, names: NameSource) -> bool:
        """``Gemm(a, W, c)`` with ``c`` an activation (not a constant; beta 1) -> ``Add(Gemm(a, W), c)``.

        TFLite's fused LSTM cell through tf2onnx adds ``h @ U`` to ``x @ W`` as the Gemm's C.
        """
        if len(node.inputs) < 3 or is_empty(node.inputs[2]) or const_value(node.inputs[2]) is not None \
                or float(node.attrs.get("beta", 1.0)) != 1.0 or static_shape(node.outputs[0]) is None:
            return False
        c_tensor, out = node.inputs[2], node.outputs[0]
        product = new_variable(names, f"{node.name}_product", out.dtype, static_shape(out))
        set_tensors(node.inputs, list(node.inputs)[:2])
        set_tensors(node.outputs, [product])
        add = add_node(model.graph, names, "Add", f"{node.name}_bias", [product, c_tensor], [out])
        set_origin(model, add, origin_of(model, node))
        return True

    @staticmethod
    def _canonical(node: gs.Node, names: NameSource, stats: dict[str, int], model: OnnxModel) -> bool:
        """Fold alpha/beta/transB into the constants and a following bias Add into C.

        Returns True when the Gemm itself was not canonical before.
        """
        attrs = node.attrs
        weight = const_value(node.inputs[1])
        untransposed = int(attrs.get("transA", 0)) != 0 and _untranspose_column(model.graph, node, names)
        if int(attrs.get("transA", 0)) != 0 or weight is None or weight.ndim != 2:
            return False
        alpha = float(attrs.get("alpha", 1.0))
        beta = float(attrs.get("beta", 1.0))
        trans_b = int(attrs.get("transB", 0))
        n = weight.shape[0] if trans_b else weight.shape[1]
        c_tensor = node.inputs[2] if len(node.inputs) > 2 and not is_empty(node.inputs[2]) else None
        bias = None
        if c_tensor is not None:
            c_value = const_value(c_tensor)
            bias = bias_vector(c_value, n) if c_value is not None else None
            if bias is None:
                return False  # non-constant or [M, N] bias: check-supported reports it
            bias = bias * np.asarray(beta, dtype=bias.dtype)
        was_canonical = (not untransposed and alpha == 1.0 and beta == 1.0 and trans_b == 1 and len(node.inputs) <= 3
                         and (c_tensor is None or static_shape(c_tensor) == (n,))
                         and set(attrs) == {"alpha", "beta", "transA", "transB"})
        following = _following_bias(model.graph, node, n)
        if following is not None:
            add, extra = following
            bias = extra.astype(weight.dtype) if bias is None else bias + extra.astype(bias.dtype)
            out = add.outputs[0]
            detach(add)
            set_tensors(node.outputs, [out])
            merge_origin(model, node, add)
            stats["bias-adds-folded"] += 1
        elif was_canonical:
            return False
        matrix = weight.T if not trans_b else weight
        if alpha != 1.0:
            matrix = matrix * np.asarray(alpha, dtype=matrix.dtype)
        if matrix is not weight:
            b_tensor = new_constant(names, f"{node.name}_B", np.ascontiguousarray(matrix))
        else:
            b_tensor = node.inputs[1]
        inputs = [node.inputs[0], b_tensor]
        if c_tensor is not None and following is None and beta == 1.0 and static_shape(c_tensor) == (n,):
            inputs.append(c_tensor)
        elif bias is not None:
            inputs.append(new_constant(names, f"{node.name}_C", bias.astype(matrix.dtype)))
        set_tensors(node.inputs, inputs)
        attrs.clear()
        attrs.update({"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 1})
        return not was_canonical
