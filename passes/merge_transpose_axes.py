"""`merge-transpose-axes`: a Transpose of more than four axes as one of at most four, between Reshapes.

Axes that are neighbours in the input and stay neighbours, in the same order, in the output move
as one block: merging each such run into one axis permutes the same memory. ShuffleNet's channel
shuffle (``x.view(n, g, c // g, h, w).transpose(1, 2).reshape(n, c, h, w)``) is a five-axis
Transpose whose ``h, w`` stay together, i.e. a four-axis one that the `transpose` step runs; the
Reshapes around it then merge with the exporter's (`canonicalize-reshape`) into reshapes of the
row-major data, which keep its order. A Transpose left with more than four axes after merging is
left for `check-supported` to reject.

Before -> after::

    t = Reshape(x[1,8,H,W], [1,2,4,H,W]); u = Transpose(t) {perm=[0,2,1,3,4]}; y = Reshape(u, [1,8,H,W])
    ->  t = Reshape(x, [1,2,4,H,W]); m = Reshape(t, [1,2,4,H*W]); v = Transpose(m) {perm=[0,2,1,3]}
        u = Reshape(v, [1,4,2,H,W]); y = Reshape(u, [1,8,H,W])      (-> Reshape, Transpose, Reshape)
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, add_node, const_value, new_constant, new_variable,
                                   origin_of, set_origin, set_tensors, static_shape)

MAX_RANK = 4
"""The most axes a Transpose of the normal form has."""


def merged_transpose(shape: tuple[int, ...], perm: list[int]) -> tuple[list[int], list[int]]:
    """The input shape and permutation of the same Transpose with every run of input axes that
    stays together (consecutive and in order in ``perm``) merged into one axis."""
    runs: list[list[int]] = []
    for axis in perm:
        if runs and runs[-1][-1] + 1 == axis:
            runs[-1].append(axis)
        else:
            runs.append([axis])
    by_input = sorted(runs, key=lambda run: run[0])
    merged_shape = [int(np.prod([shape[a] for a in run])) for run in by_input]
    return merged_shape, [by_input.index(run) for run in runs]


@register
class MergeTransposeAxes(Pass):
    """Rewrite Transposes of more than four axes whose merged form has at most four (module docstring)."""

    name = "merge-transpose-axes"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        names = NameSource(model.graph)
        rewritten = 0
        for node in list(model.graph.nodes):
            shape = static_shape(node.inputs[0]) if node.op == "Transpose" and node.inputs else None
            out_shape = static_shape(node.outputs[0]) if shape is not None else None
            if shape is None or out_shape is None or len(shape) <= MAX_RANK or \
                    (node.domain or "") not in DEFAULT_DOMAINS or const_value(node.inputs[0]) is not None:
                continue
            perm = [int(p) for p in node.attrs.get("perm", list(reversed(range(len(shape)))))]
            merged, merged_perm = merged_transpose(shape, perm)
            if len(merged) > MAX_RANK:
                continue
            x, y = node.inputs[0], node.outputs[0]
            origin = origin_of(model, node)
            flat_in = new_variable(names, f"{node.name}_merged_in", x.dtype, merged)
            flat_out = new_variable(names, f"{node.name}_merged_out", x.dtype, [merged[p] for p in merged_perm])
            before = add_node(model.graph, names, "Reshape", f"{node.name}_merge",
                              [x, new_constant(names, f"{node.name}_merged", np.array(merged, np.int64))], [flat_in])
            after = add_node(model.graph, names, "Reshape", f"{node.name}_unmerge",
                             [flat_out, new_constant(names, f"{node.name}_shape", np.array(out_shape, np.int64))], [y])
            set_tensors(node.inputs, [flat_in])
            set_tensors(node.outputs, [flat_out])
            node.attrs["perm"] = merged_perm
            for made in (before, after):
                set_origin(model, made, origin)
            rewritten += 1
        if rewritten:
            model.graph.toposort()
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})
