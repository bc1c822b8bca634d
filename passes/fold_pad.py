"""`fold-pad`: a zero Pad in front of Conv/AveragePool becomes part of their ``pads``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (attr, const_value, consumers, detach, drop_unused, is_empty, is_graph_output,
                                   origin_of, set_origin, static_shape)


@dataclass(frozen=True)
class SpatialPad:
    """What a Pad does to a ``[1, C, L]`` / ``[1, C, H, W]`` map: ``mode`` (constant, reflect, edge,
    wrap), the constant ``value`` and ``pads`` ``[begins..., ends...]`` of the spatial axes only."""

    mode: str
    value: float
    pads: list[int]


def read_pad(node: gs.Node, rank: int) -> SpatialPad | None:
    """The padding a Pad adds to the spatial axes of a rank-``rank`` tensor, or None.

    None unless every amount and the constant value are constants, every amount is non-negative
    and batch and channel axes are not padded. Handles ``pads`` and ``value`` as attributes
    (opset < 11), as inputs, and the ``axes`` input of opset 18.
    """
    mode = str(attr(node, "mode", "constant"))
    if "pads" in node.attrs:
        pads = [int(p) for p in node.attrs["pads"]]
        value = float(node.attrs.get("value", 0.0))
        axes = list(range(rank))
    else:
        pads_value = const_value(node.inputs[1]) if len(node.inputs) > 1 else None
        if pads_value is None:
            return None
        pads = [int(p) for p in pads_value.reshape(-1)]
        fill = node.inputs[2] if len(node.inputs) > 2 and not is_empty(node.inputs[2]) else None
        fill_value = const_value(fill) if fill is not None else np.zeros(())
        if fill_value is None:
            return None
        value = float(np.asarray(fill_value).reshape(-1)[0]) if np.asarray(fill_value).size else 0.0
        axes_tensor = node.inputs[3] if len(node.inputs) > 3 and not is_empty(node.inputs[3]) else None
        if axes_tensor is None:
            axes = list(range(rank))
        else:
            axes_value = const_value(axes_tensor)
            if axes_value is None:
                return None
            axes = [int(a) + rank if int(a) < 0 else int(a) for a in axes_value.reshape(-1)]
    if len(pads) != 2 * len(axes) or any(p < 0 for p in pads):
        return None
    full = [0] * (2 * rank)
    for i, axis in enumerate(axes):
        full[axis], full[rank + axis] = pads[i], pads[len(axes) + i]
    if any(full[a] or full[rank + a] for a in (0, 1)):
        return None
    return SpatialPad(mode, value if mode == "constant" else 0.0, full[2:rank] + full[rank + 2:])


def spatial_pads(node: gs.Node, rank: int) -> list[int] | None:
    """The ``[begins..., ends...]`` zero padding a Pad adds to the spatial axes, or None (not a
    constant-zero Pad of the spatial axes only, :func:`read_pad`)."""
    found = read_pad(node, rank)
    return found.pads if found is not None and found.mode == "constant" and found.value == 0.0 else None


def _absorbs(node: gs.Node, extra: list[int]) -> bool:
    """Can ``node`` take ``extra`` more padding (same meaning as zeros in front of it)?"""
    if node.domain not in (None, "", "ai.onnx") or attr(node, "auto_pad", "NOTSET") != "NOTSET":
        return False
    if node.op == "Conv":
        return True
    if node.op == "AveragePool" and int(node.attrs.get("ceil_mode", 0)) == 0:
        kernel = list(node.attrs.get("kernel_shape", []))
        pads = list(node.attrs.get("pads", [0] * len(extra)))
        spatial = len(kernel)
        # the padded zeros are counted: fine if the pool counts its own padding or has none
        counted = int(node.attrs.get("count_include_pad", 0)) == 1 or not any(pads)
        return counted and len(extra) == 2 * spatial and all(
            pads[i] + extra[i] < kernel[i % spatial] for i in range(2 * spatial))
    return False


@register
class FoldPad(Pass):
    """Fold a constant-zero Pad into the ``pads`` of the Conv/AveragePool nodes that read it.

    Before -> after::

        p = Pad(x: [1,C,H,W], [0,0,1,2, 0,0,1,0]); y = Conv(p, W) {pads=[0,0,0,0]}
            ->  y = Conv(x, W) {pads=[1,2,1,0]}                       origin [pad, conv]
        p = Pad(x, ...); y = AveragePool(p) {pads=0 or count_include_pad=1, ceil_mode=0}
            ->  y = AveragePool(x) {pads += ..., count_include_pad=1}
                                   (only while every pad stays below the kernel)

    Every reader of the Pad must absorb it; other Pads (reflect/edge modes, non-zero values,
    padding of batch or channels, a Pad before MaxPool or other readers) are left for `pad-to-conv`.
    """

    name = "fold-pad"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        folded = 0
        for node in list(graph.nodes):
            if node.op != "Pad" or node.domain not in (None, "", "ai.onnx") or not node.outputs:
                continue
            shape = static_shape(node.inputs[0])
            extra = spatial_pads(node, len(shape)) if shape is not None and len(shape) in (3, 4) else None
            out = node.outputs[0]
            readers = consumers(out)
            if extra is None or not readers or is_graph_output(graph, out):
                continue
            if not all(_absorbs(r, extra) and r.inputs[0] is out and
                       sum(t is out for t in r.inputs) == 1 for r in readers):
                continue
            source = node.inputs[0]
            for reader in readers:
                spatial = len(extra) // 2
                pads = [int(p) for p in reader.attrs.get("pads", [0] * 2 * spatial)]
                reader.attrs["pads"] = [p + e for p, e in zip(pads, extra)]
                if reader.op == "AveragePool":
                    reader.attrs["count_include_pad"] = 1
                reader.inputs[0] = source
                set_origin(model, reader, origin_of(model, node) + origin_of(model, reader))
            detach(node)
            folded += 1
        if folded:
            drop_unused(graph)
        return PassResult(model, bool(folded), {"folded": folded})
