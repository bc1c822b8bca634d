"""`reduce-mean-to-gap`: ReduceMean (and ReduceSum) over all spatial axes becomes GlobalAveragePool."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, add_node, const_value, drop_unused, is_empty, mark_fixed, new_constant,
                                   new_variable, opset_of, origin_of, set_origin, set_tensors, static_shape)


def reduce_axes(node: gs.Node, rank: int, opset: int) -> list[int] | None:
    """The (non-negative, sorted) axes a ReduceMean reduces, or None if not known statically.

    Opset < 18 keeps them in the ``axes`` attribute, opset 18+ in the second input. No axes means
    every axis (or none at all with ``noop_with_empty_axes=1``: returned as ``[]``).
    """
    if opset >= 18 or (len(node.inputs) > 1 and "axes" not in node.attrs):
        if len(node.inputs) > 1 and not is_empty(node.inputs[1]):
            value = const_value(node.inputs[1])
            if value is None:
                return None
            axes = [int(a) for a in np.asarray(value).reshape(-1)]
        else:
            axes = []
    else:
        axes = [int(a) for a in node.attrs.get("axes", [])]
    if not axes:
        return [] if int(node.attrs.get("noop_with_empty_axes", 0)) else list(range(rank))
    return sorted({a + rank if a < 0 else a for a in axes})


@register
class ReduceMeanToGap(Pass):
    """Turn a ReduceMean over every spatial axis of ``[1, C, ...]`` into GlobalAveragePool.

    Before -> after::

        y = ReduceMean(x: [1,C,H,W]) {axes=[2,3], keepdims=1}   ->  y = GlobalAveragePool(x)
        y = ReduceMean(x: [1,C,H,W], axes=[-2,-1]) {keepdims=0} ->  g = GlobalAveragePool(x)
                                                                    y = Reshape(g, [1, C])
        y = ReduceMean(x: [1,C,L]) {axes=[2]}                   ->  y = GlobalAveragePool(x)
        y = ReduceMean(x: [1,T,D]) {axes=[1]}                   ->  t = Transpose(x) {perm=[0,2,1]}
                                                                    g = GlobalAveragePool(t)
                                                                    y = Reshape(g, [1,1,D] | [1,D])
          (the mean over the time steps of a sequence: a transformer's mean pooling)
        y = ReduceMean(x: [1,H,W,C]) {axes=[1,2]}               ->  t = Transpose(x) {perm=[0,3,1,2]}
                                                                    g = GlobalAveragePool(t)
                                                                    y = Reshape(g, [1,1,1,C] | [1,C])
          (the mean over the pixels of a channel-last map, ``y.mean(dim=(1, 2))`` of an NHWC
          tensor: move-transposes then cancels the Transpose with the one that made it NHWC)

        y = ReduceSum(x: [1,C,H,W]) {axes=[2,3]}                ->  g = GlobalAveragePool(x)
                                                                    y = Mul(g, H*W)
          (a sum is the mean times the count, ``x.sum(dim=(2, 3))``; every form above)
        y = ReduceMean(x: [1,C,H,W]) {axes=[1]}                 ->  y = Conv(x, W[1,C,1,1] = 1/C)  (fixed)
          (the mean over the channels, ``x.mean(dim=1, keepdim=True)``: CBAM's spatial attention;
          ReduceSum: weights 1; without keepdims a Reshape to [1,H,W] follows)

    The axes come from the attribute (ReduceMean before opset 18, ReduceSum before 13) or the constant second
    input. Other reductions are left for `check-supported` to report.
    """

    name = "reduce-mean-to-gap"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        opset = opset_of(model)
        rewritten = 0
        for node in list(graph.nodes):
            if node.op not in ("ReduceMean", "ReduceSum") or node.domain not in (None, "", "ai.onnx"):
                continue
            shape = static_shape(node.inputs[0])
            if shape is None or len(shape) < 3:
                continue
            axes = reduce_axes(node, len(shape), opset)
            if len(shape) == 4 and axes == [1]:
                self._channel_mean(model, names, node, shape)
                rewritten += 1
                continue
            channel_last = len(shape) in (3, 4) and axes == list(range(1, len(shape) - 1))
            if not channel_last and axes != list(range(2, len(shape))):
                continue
            if node.op == "ReduceSum":
                self._sum_as_mean(model, names, node, int(np.prod([shape[a] for a in axes])))
            if channel_last:
                self._channel_last_mean(model, names, node, shape)
                rewritten += 1
                continue
            keepdims = int(node.attrs.get("keepdims", 1))
            x, y = node.inputs[0], node.outputs[0]
            node.op = "GlobalAveragePool"
            node.attrs.clear()
            set_tensors(node.inputs, [x])
            if not keepdims:
                pooled = new_variable(names, f"{node.name}_pooled", x.dtype, [*shape[:2], *[1] * (len(shape) - 2)])
                set_tensors(node.outputs, [pooled])
                target = new_constant(names, f"{node.name}_shape", np.array(shape[:2], dtype=np.int64))
                reshape = add_node(graph, names, "Reshape", f"{node.name}_reshape", [pooled, target], [y])
                set_origin(model, reshape, origin_of(model, node))
            rewritten += 1
        if rewritten:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})

    @staticmethod
    def _channel_mean(model: OnnxModel, names: NameSource, node: gs.Node, shape: tuple[int, ...]) -> None:
        """ReduceMean/ReduceSum over the channels of ``[1, C, H, W]`` as a 1x1 Conv to one channel with
        weights 1/C (1 for the sum), fixed; a Reshape drops the axis without keepdims."""
        graph = model.graph
        x, y = node.inputs[0], node.outputs[0]
        c = shape[1]
        weight = new_constant(names, f"{node.name}_weights",
                              np.full((1, c, 1, 1), 1.0 if node.op == "ReduceSum" else 1.0 / c, dtype=np.float32))
        keepdims = int(node.attrs.get("keepdims", 1))
        reduced = y if keepdims else new_variable(names, f"{node.name}_reduced", x.dtype, [1, 1, *shape[2:]])
        conv = add_node(graph, names, "Conv", f"{node.name}_conv", [x, weight], [reduced],
                        {"kernel_shape": [1, 1], "strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1],
                         "group": 1})
        made = [conv]
        if not keepdims:
            target = new_constant(names, f"{node.name}_shape", np.array([1, *shape[2:]], dtype=np.int64))
            made.append(add_node(graph, names, "Reshape", f"{node.name}_reshape", [reduced, target], [y]))
        mark_fixed(model, conv)
        node.inputs.clear()
        node.outputs.clear()
        for new in made:
            set_origin(model, new, origin_of(model, node))

    @staticmethod
    def _sum_as_mean(model: OnnxModel, names: NameSource, node: gs.Node, count: int) -> None:
        """A ReduceSum over ``count`` elements as the mean (``node`` now writes it) times ``count``."""
        y = node.outputs[0]
        mean = new_variable(names, f"{node.name}_mean", y.dtype, y.shape)
        set_tensors(node.outputs, [mean])
        scale = new_constant(names, f"{node.name}_count", np.array(count, dtype=np.float32))
        mul = add_node(model.graph, names, "Mul", f"{node.name}_times_count", [mean, scale], [y])
        set_origin(model, mul, origin_of(model, node))

    @staticmethod
    def _channel_last_mean(model: OnnxModel, names: NameSource, node: gs.Node, shape: tuple[int, ...]) -> None:
        """ReduceMean over the middle axes of ``[1, T, D]`` or ``[1, H, W, C]``: the last axis moved
        first (channels first), pooled, reshaped."""
        graph = model.graph
        x, y = node.inputs[0], node.outputs[0]
        inner, d = list(shape[1:-1]), shape[-1]
        keepdims = int(node.attrs.get("keepdims", 1))
        rank = len(shape)
        perm = [0, rank - 1, *range(1, rank - 1)]
        moved = new_variable(names, f"{node.name}_channels_first", x.dtype, [1, d, *inner])
        pooled = new_variable(names, f"{node.name}_pooled", x.dtype, [1, d, *[1] * len(inner)])
        target = new_constant(names, f"{node.name}_shape",
                              np.array([1, *[1] * len(inner), d] if keepdims else [1, d], dtype=np.int64))
        made = [add_node(graph, names, "Transpose", f"{node.name}_transpose", [x], [moved], {"perm": perm}),
                add_node(graph, names, "GlobalAveragePool", f"{node.name}_gap", [moved], [pooled]),
                add_node(graph, names, "Reshape", f"{node.name}_reshape", [pooled, target], [y])]
        node.inputs.clear()
        node.outputs.clear()
        for new in made:
            set_origin(model, new, origin_of(model, node))
