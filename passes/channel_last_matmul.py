"""`channel-last-matmul`: a Dense layer applied to every position of a channel-last map becomes a 1x1 Conv."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, add_node, const_value, consumers, detach, drop_unused, is_empty,
                                   is_graph_output, new_constant, new_variable, origin_of, producer, set_origin,
                                   static_shape)


def _dense_weight(node: gs.Node) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``(W[C, N], bias[N] or None)`` of a MatMul by a constant, or of a plain Gemm (alpha = beta = 1,
    transA = 0) with a constant B and an optional constant ``[N]`` C; None otherwise."""
    if node.domain not in (None, "", "ai.onnx") or len(node.inputs) < 2:
        return None
    weight = const_value(node.inputs[1])
    if weight is None or weight.ndim != 2 or not np.issubdtype(weight.dtype, np.floating):
        return None
    if node.op == "MatMul":
        return weight, None
    if node.op != "Gemm" or float(node.attrs.get("alpha", 1.0)) != 1.0 or float(node.attrs.get("beta", 1.0)) != 1.0 \
            or int(node.attrs.get("transA", 0)) != 0:
        return None
    if int(node.attrs.get("transB", 0)):
        weight = weight.T
    bias = None
    if len(node.inputs) > 2 and not is_empty(node.inputs[2]):
        value = const_value(node.inputs[2])
        if value is None or value.size not in (1, weight.shape[1]) or (value.ndim == 2 and value.shape[0] != 1):
            return None
        bias = np.broadcast_to(value.reshape(-1), (weight.shape[1],)).astype(weight.dtype)
    return weight, bias


def _single_reader(graph: gs.Graph, tensor: gs.Tensor) -> gs.Node | None:
    readers = consumers(tensor)
    if len(readers) != 1 or is_graph_output(graph, tensor):
        return None
    return readers[0]


@register
class ChannelLastMatMul(Pass):
    """Rewrite a MatMul by a constant over the last axis of a ``[1, ..., C]`` map as Transpose, 1x1 Conv, Transpose.

    Before -> after (Keras ``Dense`` on a ``[1, H, W, C]`` map, as tf2onnx writes it: Tensordot)::

        r = Reshape(x: [1,H,W,C], [H*W, C]); m = MatMul(r, W[C,N]); y = Reshape(m, [1,H,W,N])
        y = MatMul(x: [1,H,W,C], W[C,N])             (the same without the reshapes; also [1,L,C])
            ->  t = Transpose(x) {perm=[0,3,1,2]}; c = Conv(t, W^T[N,C,1,1], bias)
                y = Transpose(c) {perm=[0,2,3,1]}    ([1,L,C]: perm [0,2,1], kernel [1])

    The middle node may also be a Gemm (alpha = beta = 1, transA = 0) with a constant ``[N]`` bias.
    The Transposes move towards each other and cancel across element-wise ops (`move-transposes`).
    """

    name = "channel-last-matmul"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        rewritten = 0
        for node in list(graph.nodes):
            if node.op not in ("MatMul", "Gemm") or not node.inputs:
                continue
            dense = _dense_weight(node)
            if dense is None:
                continue
            match = self._match(graph, node, dense[0].shape[0])
            if match is None:
                continue
            x, y, removed = match
            self._rewrite(model, names, node, x, y, dense, removed)
            rewritten += 1
        if rewritten:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})

    @staticmethod
    def _match(graph: gs.Graph, node: gs.Node, channels: int) -> tuple[gs.Tensor, gs.Tensor, list[gs.Node]] | None:
        """``(x, y, reshapes)``: the channel-last map read, the tensor written, the wrapping reshapes."""
        a, out = node.inputs[0], node.outputs[0]
        a_shape, out_shape = static_shape(a), static_shape(out)
        if a_shape is None or out_shape is None:
            return None
        if len(a_shape) in (3, 4) and a_shape[0] == 1 and a_shape[-1] == channels and node.op == "MatMul":
            return a, out, []
        if len(a_shape) != 2 or a_shape[0] == 1:
            return None
        before = producer(a)
        after = _single_reader(graph, out)
        if before is None or after is None or _single_reader(graph, a) is not node:
            return None
        if before.op not in ("Reshape", "Flatten", "Squeeze", "Unsqueeze") or \
                after.op not in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
            return None
        x, y = before.inputs[0], after.outputs[0]
        x_shape, y_shape = static_shape(x), static_shape(y)
        if x_shape is None or y_shape is None or len(x_shape) not in (3, 4) or x_shape[0] != 1:
            return None
        if x_shape[-1] != channels or int(np.prod(x_shape[1:-1])) != a_shape[0] \
                or y_shape != (*x_shape[:-1], out_shape[1]):
            return None
        return x, y, [before, after]

    @staticmethod
    def _rewrite(model: OnnxModel, names: NameSource, node: gs.Node, x: gs.Tensor, y: gs.Tensor,
                 dense: tuple[np.ndarray, np.ndarray | None], removed: list[gs.Node]) -> None:
        graph = model.graph
        weight, bias = dense
        shape = static_shape(x)
        assert shape is not None
        rank = len(shape)
        spatial = rank - 2
        to_first = [0, rank - 1, *range(1, rank - 1)]
        to_last = [0, *range(2, rank), 1]
        n = weight.shape[1]
        origin: list[str] = []
        for source in [*removed[:1], node, *removed[1:]]:
            origin += origin_of(model, source)
        first = new_variable(names, f"{node.name}_channels_first", x.dtype, [shape[0], shape[-1], *shape[1:-1]])
        conv_out = new_variable(names, f"{node.name}_conv", x.dtype, [shape[0], n, *shape[1:-1]])
        kernel = new_constant(names, f"{node.name}_kernel",
                              np.ascontiguousarray(weight.T.reshape(n, weight.shape[0], *[1] * spatial)))
        inputs = [first, kernel]
        if bias is not None:
            inputs.append(new_constant(names, f"{node.name}_bias", np.ascontiguousarray(bias)))
        for n_ in removed:
            detach(n_)
        detach(node)
        nodes = [
            add_node(graph, names, "Transpose", f"{node.name}_to_channels_first", [x], [first], {"perm": to_first}),
            add_node(graph, names, "Conv", f"{node.name}_conv", inputs, [conv_out],
                     {"kernel_shape": [1] * spatial, "strides": [1] * spatial, "pads": [0] * (2 * spatial),
                      "dilations": [1] * spatial, "group": 1}),
            add_node(graph, names, "Transpose", f"{node.name}_to_channels_last", [conv_out], [y], {"perm": to_last}),
        ]
        for new in nodes:
            set_origin(model, new, origin)
