"""`explicit-attributes`: write every defaulted attribute out and resolve ``auto_pad`` into pads."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import NameSource, drop_unused, is_empty, is_read, new_constant, opset_of, static_shape

_POOLS = ("MaxPool", "AveragePool")


def same_pads(size: list[int], kernel: list[int], strides: list[int], dilations: list[int],
              mode: str) -> list[int]:
    """Explicit ONNX pads ``[b1.., e1..]`` for ``auto_pad`` SAME_UPPER/SAME_LOWER/VALID."""
    begins: list[int] = []
    ends: list[int] = []
    for n, k, s, d in zip(size, kernel, strides, dilations):
        if mode == "VALID":
            begins.append(0)
            ends.append(0)
            continue
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        small, large = total // 2, total - total // 2
        if mode == "SAME_LOWER":
            begins.append(large)
            ends.append(small)
        else:
            begins.append(small)
            ends.append(large)
    return begins + ends


def _window_attrs(node: gs.Node, kernel: list[int], dilated: bool) -> bool:
    """Fill kernel_shape/strides/dilations/pads of a Conv or pool; resolve auto_pad. True if changed."""
    before = dict(node.attrs)
    spatial = len(kernel)
    node.attrs["kernel_shape"] = [int(k) for k in kernel]
    node.attrs["strides"] = [int(s) for s in node.attrs.get("strides", [1] * spatial)]
    dilations = [int(d) for d in node.attrs.get("dilations", [1] * spatial)]
    if dilated or "dilations" in node.attrs:
        node.attrs["dilations"] = dilations
    mode = node.attrs.get("auto_pad", "NOTSET")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode in ("SAME_UPPER", "SAME_LOWER", "VALID"):
        shape = static_shape(node.inputs[0])
        if shape is None:
            return node.attrs != before
        node.attrs["pads"] = same_pads(list(shape[2:]), node.attrs["kernel_shape"], node.attrs["strides"],
                                       dilations, mode)
    else:
        node.attrs["pads"] = [int(p) for p in node.attrs.get("pads", [0] * (2 * spatial))]
    node.attrs["auto_pad"] = "NOTSET"
    return node.attrs != before


def _drop_unused_outputs(graph: gs.Graph, node: gs.Node) -> bool:
    """Drop trailing optional outputs nobody reads (MaxPool Indices, BatchNormalization stats)."""
    changed = False
    while len(node.outputs) > 1 and not is_read(graph, node.outputs[-1]):
        del node.outputs[-1]
        changed = True
    return changed


@register
class ExplicitAttributes(Pass):
    """Make defaulted attributes explicit so `lower` never needs ONNX's defaults.

    Before -> after::

        Conv(x, W[8,1,3,3]) {auto_pad=SAME_UPPER}
            -> Conv {kernel_shape=[3,3], strides=[1,1], dilations=[1,1], pads=[1,1,1,1], group=1,
                     auto_pad=NOTSET}
        MaxPool(x) {kernel_shape=[2,2]} -> (y, unused Indices)
            -> MaxPool {strides=[1,1], pads=[0,0,0,0], dilations=[1,1], ceil_mode=0, ...} -> y
        AveragePool  -> + count_include_pad=0, ceil_mode=0
        LeakyRelu(x) -> LeakyRelu {alpha=0.01}
        Concat {axis=-3} (rank 4) -> Concat {axis=1}
        Softmax {axis=-1} / opset<13 default -> Softmax {axis=rank-1}
        Clip(x, 0) -> Clip(x, 0, float32 max)           (a missing bound becomes explicit)
        BatchNormalization(...) -> (y, unused stats)  -> BatchNormalization -> y
    """

    name = "explicit-attributes"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        opset = opset_of(model)
        touched: dict[str, int] = {}
        for node in list(graph.nodes):
            if node.domain not in (None, "", "ai.onnx"):
                continue
            changed = self._node(graph, node, names, opset)
            if changed:
                touched[node.op] = touched.get(node.op, 0) + 1
        if touched:
            drop_unused(graph)
        return PassResult(model, bool(touched), {"nodes-changed": sum(touched.values()),
                                                 **{f"changed-{k}": v for k, v in sorted(touched.items())}})

    def _node(self, graph: gs.Graph, node: gs.Node, names: NameSource, opset: int) -> bool:
        op = node.op
        if op == "Conv":
            weight = node.inputs[1] if len(node.inputs) > 1 else None
            if weight is None or weight.shape is None:
                return False
            before = dict(node.attrs)
            kernel = list(node.attrs.get("kernel_shape", list(weight.shape)[2:]))
            changed = _window_attrs(node, kernel, dilated=True)
            node.attrs["group"] = int(node.attrs.get("group", 1))
            return changed or node.attrs != before
        if op in _POOLS:
            if "kernel_shape" not in node.attrs:
                return False
            before = dict(node.attrs)
            changed = _drop_unused_outputs(graph, node)
            _window_attrs(node, list(node.attrs["kernel_shape"]), dilated=op == "MaxPool")
            node.attrs["ceil_mode"] = int(node.attrs.get("ceil_mode", 0))
            if op == "AveragePool":
                node.attrs["count_include_pad"] = int(node.attrs.get("count_include_pad", 0))
            elif len(node.outputs) == 1:
                node.attrs.pop("storage_order", None)  # only says how Indices are numbered
            return changed or node.attrs != before
        if op == "LeakyRelu":
            if "alpha" in node.attrs:
                return False
            node.attrs["alpha"] = 0.01
            return True
        if op in ("Concat", "Softmax", "LogSoftmax", "Flatten"):
            return self._axis(node, opset)
        if op == "Clip":
            return self._clip_bounds(node, names)
        if op in ("BatchNormalization", "Dropout"):
            return _drop_unused_outputs(graph, node)
        return False

    @staticmethod
    def _axis(node: gs.Node, opset: int) -> bool:
        shape = static_shape(node.outputs[0]) if node.op == "Concat" else static_shape(node.inputs[0])
        if shape is None:
            return False
        rank = len(shape)
        if node.op == "Concat":
            default = None
        elif node.op == "Flatten":
            default = 1
        else:
            default = -1 if opset >= 13 else 1
            if opset < 13 and rank != 2:
                return False  # old Softmax flattens from `axis`; only the rank-2 case is plain
        axis = node.attrs.get("axis", default)
        if axis is None:
            return False
        axis = int(axis)
        positive = axis + rank if axis < 0 else axis
        if node.attrs.get("axis") == positive:
            return False
        node.attrs["axis"] = positive
        return True

    @staticmethod
    def _clip_bounds(node: gs.Node, names: NameSource) -> bool:
        if any(k in node.attrs for k in ("min", "max")):
            return False  # attribute form (opset < 11): upgrade-opset converts it
        changed = False
        dtype = np.dtype(node.inputs[0].dtype or np.float32)
        if not np.issubdtype(dtype, np.floating):
            return False
        lowest, highest = np.finfo(dtype).min, np.finfo(dtype).max
        while len(node.inputs) < 3:
            node.inputs.append(gs.Variable.empty())
        for index, bound, base in ((1, lowest, "clip_min"), (2, highest, "clip_max")):
            if is_empty(node.inputs[index]):
                node.inputs[index] = new_constant(names, f"{node.name}_{base}", np.array(bound, dtype=dtype))
                changed = True
        return changed
