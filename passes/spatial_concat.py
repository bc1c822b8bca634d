"""`spatial-concat`: a Concat of feature maps along a spatial axis as zero Pads added together.

``torch.cat([a, b], dim=3)`` of ``[1, C, H, Wa]`` and ``[1, C, H, Wb]`` maps (side-by-side
branches; the legacy exporter's circular padding, ``cat([x[..., -p:], x, x[..., :p]])``) puts each
input at its offset along the axis and zeros elsewhere; the sum of those zero-padded maps is the
concatenation, exactly (every position holds one input's value plus zeros). The Pads are then
depthwise 1x1 convs with pads (`pad-to-conv`) and the sums `add` steps. Concats of channels
(axis 1) stay as they are.

Before -> after::

    y = Concat(a[1,C,H,3], b[1,C,H,5]) {axis=3}
    ->  pa = Pad(a, [0,0,0,0, 0,0,0,5]); pb = Pad(b, [0,0,0,3, 0,0,0,0]); y = Add(pa, pb)
"""

from __future__ import annotations

import numpy as np

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, add_node, const_value, new_constant, new_variable,
                                   origin_of, set_origin, static_shape)


@register
class SpatialConcat(Pass):
    """Rewrite Concats along a spatial axis of ``[1, C, L]`` / ``[1, C, H, W]`` maps into Pads and
    Adds (module docstring)."""

    name = "spatial-concat"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        rewritten = 0
        for node in list(graph.nodes):
            out_shape = static_shape(node.outputs[0]) if node.op == "Concat" and node.outputs else None
            shapes = [static_shape(t) for t in node.inputs]
            if out_shape is None or (node.domain or "") not in DEFAULT_DOMAINS or len(out_shape) not in (3, 4) or \
                    out_shape[0] != 1 or len(node.inputs) < 2 or any(s is None for s in shapes) or \
                    any(const_value(t) is not None for t in node.inputs):
                continue
            rank = len(out_shape)
            axis = int(node.attrs.get("axis", 0)) % rank
            if axis < 2:
                continue
            origin = origin_of(model, node)
            padded = []
            offset = 0
            for x, shape in zip(node.inputs, shapes):
                assert shape is not None
                pads = [0] * (2 * rank)
                pads[axis], pads[rank + axis] = offset, out_shape[axis] - offset - shape[axis]
                offset += shape[axis]
                p = new_variable(names, f"{node.name}_placed", x.dtype, out_shape)
                made = add_node(graph, names, "Pad", f"{node.name}_place",
                                [x, new_constant(names, f"{node.name}_pads", np.array(pads, np.int64))], [p],
                                {"mode": "constant"})
                set_origin(model, made, origin)
                padded.append(p)
            y = node.outputs[0]
            total = padded[0]
            for i, p in enumerate(padded[1:], 1):
                out = y if i == len(padded) - 1 else new_variable(names, f"{node.name}_sum", y.dtype, out_shape)
                made = add_node(graph, names, "Add", f"{node.name}_add", [total, p], [out])
                set_origin(model, made, origin)
                total = out
            node.inputs.clear()
            node.outputs.clear()
            rewritten += 1
        if rewritten:
            graph.cleanup().toposort()
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})
