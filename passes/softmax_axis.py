"""`softmax-axis`: a Softmax inside the network over an axis other than the last, between two
Transposes, so the `softmax` step (rows along the last axis, docs/lir.md) computes it.

A softmax over one axis is the same computation along any axis: moving the axis last, taking the
softmax over rows and moving it back gives exactly ONNX's ``Softmax(x, axis)`` (opset >= 13: over
that single axis). Both Transposes keep the batch axis first, so each is a `transpose` step (a
generated copy loop, or a view when only axes of size 1 move: a ``[1, T, 1]`` score sequence).
Softmax over the channels of a ``[1, C, H, W]`` map (per-pixel class weights), attention pooling's
``softmax(scores, dim=1)`` over the steps of a ``[1, T, 1]`` or ``[1, T, D]`` sequence.

Before -> after::

    p = Softmax(x[1,C,H,W]) {axis=1}              (inside the network: p is read by other nodes)
    ->  t = Transpose(x) {perm=[0,2,3,1]};  s = Softmax(t[1,H,W,C]) {axis=-1}
        p = Transpose(s) {perm=[0,3,1,2]}

A Softmax that is the graph's output is left to `strip-classifier-tail`/`lower` (a final one over
the class axis is dropped), and one over the batch axis, or of a tensor without a static
``[1, ...]`` shape of rank 3 or 4, to `check-supported`, which names it.
"""

from __future__ import annotations

import numpy as np

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, add_node, consumers, is_graph_output, new_variable,
                                   opset_of, origin_of, set_origin, set_tensors, static_shape)


@register
class SoftmaxAxis(Pass):
    """Move the axis of an inner Softmax over a non-last axis to the last place and back (module
    docstring)."""

    name = "softmax-axis"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        rewritten = 0
        if opset_of(model) < 13:          # before opset 13 Softmax flattens the axes from `axis` on
            return PassResult(model, False, {"rewritten": 0})
        for node in list(graph.nodes):
            if node.op != "Softmax" or (node.domain or "") not in DEFAULT_DOMAINS or len(node.outputs) != 1:
                continue
            x, p = node.inputs[0], node.outputs[0]
            shape = static_shape(x)
            if shape is None or len(shape) not in (3, 4) or shape[0] != 1 or \
                    (is_graph_output(graph, p) and not consumers(p)):
                continue
            rank = len(shape)
            axis = int(node.attrs.get("axis", -1)) % rank
            if axis in (0, rank - 1):
                continue
            perm = [0, *(a for a in range(1, rank) if a != axis), axis]
            back = [perm.index(a) for a in range(rank)]
            moved = [shape[a] for a in perm]
            origin = origin_of(model, node)
            t = new_variable(names, f"{node.name}_last", np.float32, moved)
            s = new_variable(names, f"{node.name}_rows", np.float32, moved)
            set_tensors(node.inputs, [t])
            set_tensors(node.outputs, [s])
            before = add_node(graph, names, "Transpose", f"{node.name}_to_last", [x], [t], {"perm": perm})
            after = add_node(graph, names, "Transpose", f"{node.name}_back", [s], [p], {"perm": back})
            node.attrs["axis"] = -1
            for made in (before, after):
                set_origin(model, made, origin)
            rewritten += 1
        if rewritten:
            graph.toposort()
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})
