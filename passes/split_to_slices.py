"""`split-to-slices`: a `Split` of an activation along one axis as one `Slice` per part.

torch's ``x.chunk(2, dim=1)`` / ``x.split(...)`` is a `Split` in dynamo's exports (the legacy
exporter writes Slices). Each part ``i`` is ``x[start_i:end_i]`` along the axis, with the part sizes
from the ``split`` input (opset 13+) or attribute (before 13), else ``num_outputs`` (opset 18:
parts of ``ceil(n / num_outputs)``, the last one smaller) or as many equal parts as outputs. The
Slices are then what the normal form already holds: a channel range of a ``[1, C, ...]`` map is one
contiguous run (the `slice` step), a spatial range a crop (`crop-to-conv`).

Before -> after::

    a, b = Split(x[1,8,H,W]) {axis=1, num_outputs=2}
    ->  a = Slice(x, starts=[0], ends=[4], axes=[1]); b = Slice(x, starts=[4], ends=[8], axes=[1])
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, add_node, const_value, is_empty, new_constant,
                                   origin_of, set_origin, static_shape)


def split_sizes(node: gs.Node) -> list[int] | None:
    """The size of every part of a `Split` with a static input shape and constant sizes (None: not one)."""
    shape = static_shape(node.inputs[0]) if node.inputs else None
    if node.op != "Split" or (node.domain or "") not in DEFAULT_DOMAINS or shape is None or not shape:
        return None
    n = shape[int(node.attrs.get("axis", 0)) % len(shape)]
    parts = len(node.outputs)
    if len(node.inputs) > 1 and not is_empty(node.inputs[1]):
        given = const_value(node.inputs[1])
        sizes = None if given is None else [int(s) for s in given.reshape(-1)]
    elif "split" in node.attrs:
        sizes = [int(s) for s in node.attrs["split"]]
    else:
        chunk = -(-n // int(node.attrs.get("num_outputs", parts)))
        sizes = [min(chunk, n - i * chunk) for i in range(parts)]
    if sizes is None or len(sizes) != parts or sum(sizes) != n or min(sizes) < 0:
        return None
    return sizes


@register
class SplitToSlices(Pass):
    """Rewrite each `Split` with constant part sizes into one `Slice` per part (module docstring)."""

    name = "split-to-slices"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        names = NameSource(model.graph)
        rewritten = 0
        for node in list(model.graph.nodes):
            sizes = split_sizes(node)
            if sizes is None or const_value(node.inputs[0]) is not None:
                continue
            x, shape = node.inputs[0], static_shape(node.inputs[0])
            assert shape is not None
            axis = int(node.attrs.get("axis", 0)) % len(shape)
            ends = np.cumsum(sizes)
            for part, end, size in zip(list(node.outputs), ends, sizes):
                bounds = {"starts": [int(end) - size], "ends": [int(end)], "axes": [axis]}
                inputs = [x, *(new_constant(names, f"{node.name}_{what}", np.array(v, np.int64))
                               for what, v in bounds.items())]
                made = add_node(model.graph, names, "Slice", f"{node.name}_part", inputs, [part])
                set_origin(model, made, origin_of(model, node))
            node.inputs.clear()
            node.outputs.clear()
            rewritten += 1
        if rewritten:
            model.graph.cleanup().toposort()
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})
