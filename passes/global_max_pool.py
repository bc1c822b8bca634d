"""`global-max-pool`: GlobalMaxPool, and ReduceMax over spatial axes, become a MaxPool over the whole map (or
over the reduced axes)."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, add_node, drop_unused, new_constant, new_variable, opset_of,
                                   origin_of, set_origin, set_tensors, static_shape)
from passes.reduce_mean_to_gap import reduce_axes


@register
class GlobalMaxPoolToMaxPool(Pass):
    """Turn a global max over the spatial axes of ``[1, C, ...]`` into a MaxPool whose window is the map.

    Before -> after::

        y = GlobalMaxPool(x: [1,C,H,W])                       ->  y = MaxPool(x) {kernel_shape=[H,W],
                                                                      strides=[1,1], pads=[0,0,0,0]}
        y = ReduceMax(x: [1,C,H,W]) {axes=[2,3], keepdims=0}  ->  m = MaxPool(x) {kernel_shape=[H,W], ...}
                                                                  y = Reshape(m, [1, C])
        y = ReduceMax(x: [1,C,H,W]) {axes=[3], keepdims=0}    ->  m = MaxPool(x) {kernel_shape=[1,W], ...}
                                                                  y = Reshape(m, [1, C, H])
          (``x.amax(dim=-1)``: a window over the reduced spatial axes only)
        y = GlobalMaxPool(x: [1,C,L])                         ->  y = MaxPool(x) {kernel_shape=[L], ...}
        y = ReduceMax(x: [1,T,D]) {axes=[1], keepdims=0}      ->  t = Transpose(x) {perm=[0,2,1]}
                                                                  m = MaxPool(t) {kernel_shape=[T], ...}
                                                                  y = Reshape(m, [1, D])
          (the max over the steps of a sequence, ``y.max(dim=1).values``, or over the pixels of a
          ``[1, H, W, C]`` map: the last axis moved first, as reduce-mean-to-gap does for the mean)
        y = ReduceMax(x: [1,C,H,W]) {axes=[1]}                ->  t = Transpose(x) {perm=[0,2,1,3]}
                                                                  m = MaxPool(t) {kernel_shape=[C,1]}
                                                                  y = Transpose(m) {perm=[0,2,1,3]}
          (the max over the channels: CBAM's spatial attention)

    Keras' GlobalMaxPooling2D/1D export (tf2onnx) as GlobalMaxPool or ReduceMax; both compute the same
    as one max-pooling window over the whole feature map (``[1, C, 1, 1]``/``[1, C, 1]`` output).
    The axes of ReduceMax come from its attribute (opset < 18) or constant second input (opset 18+);
    other reductions are left for `check-supported` to report.
    """

    name = "global-max-pool"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        opset = opset_of(model)
        rewritten = 0
        for node in list(graph.nodes):
            if node.op not in ("GlobalMaxPool", "ReduceMax") or node.domain not in (None, "", "ai.onnx"):
                continue
            shape = static_shape(node.inputs[0])
            if shape is None or len(shape) not in (3, 4):
                continue
            spatial = list(shape[2:])
            axes = reduce_axes(node, len(shape), opset) if node.op == "ReduceMax" else None
            if len(shape) == 4 and axes == [1]:
                self._channel_max(model, node, names, shape)
                rewritten += 1
                continue
            if axes == list(range(1, len(shape) - 1)):
                self._channel_last_max(model, node, names, shape)
                rewritten += 1
                continue
            if node.op == "ReduceMax" and not (axes and set(axes) <= set(range(2, len(shape)))):
                continue
            if axes is not None:    # a window over the reduced spatial axes only
                spatial = [n if axis in axes else 1 for axis, n in enumerate(shape) if axis >= 2]
            keepdims = node.op == "GlobalMaxPool" or int(node.attrs.get("keepdims", 1)) == 1
            self._to_maxpool(model, node, names, shape, spatial, keepdims, axes or list(range(2, len(shape))))
            rewritten += 1
        if rewritten:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})

    @staticmethod
    def _to_maxpool(model: OnnxModel, node: gs.Node, names: NameSource, shape: tuple[int, ...],
                    spatial: list[int], keepdims: bool, axes: list[int]) -> None:
        """The max over the spatial ``axes`` as one MaxPool window ``spatial`` (the reduced axes' sizes, 1
        elsewhere); without ``keepdims``, reshaped to the shape without ``axes``."""
        x, y = node.inputs[0], node.outputs[0]
        node.op = "MaxPool"
        node.attrs.clear()
        node.attrs.update({"kernel_shape": spatial, "strides": [1] * len(spatial), "pads": [0] * (2 * len(spatial)),
                           "dilations": [1] * len(spatial), "ceil_mode": 0})
        set_tensors(node.inputs, [x])
        if keepdims:
            return
        pooled_shape = [1 if axis in axes else n for axis, n in enumerate(shape)]
        pooled = new_variable(names, f"{node.name}_pooled", x.dtype, pooled_shape)
        set_tensors(node.outputs, [pooled])
        kept = [n for axis, n in enumerate(shape) if axis not in axes]
        target = new_constant(names, f"{node.name}_shape", np.array(kept, dtype=np.int64))
        reshape = add_node(model.graph, names, "Reshape", f"{node.name}_reshape", [pooled, target], [y])
        set_origin(model, reshape, origin_of(model, node))

    @staticmethod
    def _channel_max(model: OnnxModel, node: gs.Node, names: NameSource, shape: tuple[int, ...]) -> None:
        """ReduceMax over the channels of ``[1, C, H, W]``: the channels moved to the rows, one MaxPool
        window of C rows, moved back (CBAM's spatial attention)."""
        x, y = node.inputs[0], node.outputs[0]
        _, c, h, w = shape
        keepdims = int(node.attrs.get("keepdims", 1))
        moved = new_variable(names, f"{node.name}_rows", x.dtype, [1, h, c, w])
        pooled = new_variable(names, f"{node.name}_pooled", x.dtype, [1, h, 1, w])
        back = y if keepdims else new_variable(names, f"{node.name}_back", x.dtype, [1, 1, h, w])
        origin = origin_of(model, node)
        made = [add_node(model.graph, names, "Transpose", f"{node.name}_to_rows", [x], [moved], {"perm": [0, 2, 1, 3]}),
                add_node(model.graph, names, "Transpose", f"{node.name}_back", [pooled], [back], {"perm": [0, 2, 1, 3]})]
        if not keepdims:
            target = new_constant(names, f"{node.name}_shape", np.array([1, h, w], dtype=np.int64))
            made.append(add_node(model.graph, names, "Reshape", f"{node.name}_reshape", [back, target], [y]))
        node.op = "MaxPool"
        node.attrs.clear()
        node.attrs.update({"kernel_shape": [c, 1], "strides": [1, 1], "pads": [0, 0, 0, 0], "dilations": [1, 1],
                           "ceil_mode": 0})
        set_tensors(node.inputs, [moved])
        set_tensors(node.outputs, [pooled])
        for new in made:
            set_origin(model, new, origin)

    @staticmethod
    def _channel_last_max(model: OnnxModel, node: gs.Node, names: NameSource, shape: tuple[int, ...]) -> None:
        """ReduceMax over the middle axes of ``[1, T, D]`` or ``[1, H, W, C]``: the last axis moved
        first, one MaxPool window over the rest, reshaped to the reduced shape."""
        x, y = node.inputs[0], node.outputs[0]
        rank, inner, d = len(shape), list(shape[1:-1]), shape[-1]
        keepdims = int(node.attrs.get("keepdims", 1))
        moved = new_variable(names, f"{node.name}_channels_first", x.dtype, [1, d, *inner])
        pooled = new_variable(names, f"{node.name}_pooled", x.dtype, [1, d, *[1] * len(inner)])
        target = new_constant(names, f"{node.name}_shape",
                              np.array([1, *[1] * len(inner), d] if keepdims else [1, d], dtype=np.int64))
        origin = origin_of(model, node)
        transpose = add_node(model.graph, names, "Transpose", f"{node.name}_transpose", [x], [moved],
                             {"perm": [0, rank - 1, *range(1, rank - 1)]})
        reshape = add_node(model.graph, names, "Reshape", f"{node.name}_reshape", [pooled, target], [y])
        node.op = "MaxPool"
        node.attrs.clear()
        node.attrs.update({"kernel_shape": inner, "strides": [1] * len(inner), "pads": [0] * (2 * len(inner)),
                           "dilations": [1] * len(inner), "ceil_mode": 0})
        set_tensors(node.inputs, [moved])
        set_tensors(node.outputs, [pooled])
        for made in (transpose, reshape):
            set_origin(model, made, origin)
