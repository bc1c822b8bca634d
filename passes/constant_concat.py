"""`constant-concat`: a Concat of activations and constants as the activations placed, plus a constant map.

A vision transformer prepends a learned class token to its patch tokens (``torch.cat([cls.expand(1, -1, -1),
x], dim=1)``: timm's and transformers' ViT); the graph concatenates a constant ``[1, 1, D]`` and the
``[1, T, D]`` patches. The backend concatenates activations only, so the Concat becomes the activations
put at their offsets, zeros elsewhere, plus one constant map holding every constant input at its offset
(zeros elsewhere): exact, since every position holds one input's value plus zeros.

- along axis 1 (the channels of ``[1, C, L]`` / ``[1, C, H, W]``; the tokens of a ``[1, T, D]`` sequence):
  the activations (concatenated first when there are several) go through a 1x1 ``Conv`` whose one-hot
  kernel moves input channel ``i`` to its output channel (marked ``fixed-weights``: pruning and
  training keep it);
- along a spatial axis: each activation through a zero ``Pad`` to its offset (as `spatial-concat`
  does), the padded maps added.

Before -> after (a ViT's class token, D = 32, 16 patches)::

    y[1,17,32] = Concat(cls[1,1,32] (constant), x[1,16,32]) {axis=1}
    ->  p = Conv(x, E[17,16,1]) {kernel_shape=[1]}          E[o, i] = 1 where o == i + 1
        y = Add(p, M[1,17,32])                            M[:, 0] = cls, M[:, 1:] = 0

The constant map then folds into a following constant Add (the position embeddings) by
`canonicalize-arith`.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, add_node, const_value, drop_unused, mark_fixed,
                                   new_constant, new_variable, origin_of, set_origin, static_shape)


def _placed_channels(graph: gs.Graph, names: NameSource, node: gs.Node, acts: list[tuple[gs.Tensor, int]],
                     out_shape: list[int]) -> tuple[gs.Tensor, list[gs.Node]]:
    """The activations (each with its channel offset) as one ``out_shape`` map: concatenated, then a
    one-hot 1x1 Conv moving their channels to their offsets."""
    made: list[gs.Node] = []
    rest = [1] * (len(out_shape) - 2)
    if len(acts) == 1:
        joined = acts[0][0]
    else:
        width = sum(int((static_shape(x) or [0, 0])[1]) for x, _ in acts)
        joined = new_variable(names, f"{node.name}_activations", acts[0][0].dtype, [1, width, *out_shape[2:]])
        made.append(add_node(graph, names, "Concat", f"{node.name}_activations", [x for x, _ in acts], [joined],
                             {"axis": 1}))
    kernel = np.zeros((out_shape[1], int((static_shape(joined) or [0, 0])[1]), *rest), dtype=np.float32)
    column = 0
    for x, offset in acts:
        channels = int((static_shape(x) or [0, 0])[1])
        for i in range(channels):
            kernel[(offset + i, column + i, *[0] * len(rest))] = 1.0
        column += channels
    placed = new_variable(names, f"{node.name}_placed", joined.dtype, out_shape)
    made.append(add_node(graph, names, "Conv", f"{node.name}_place",
                         [joined, new_constant(names, f"{node.name}_onehot", kernel)], [placed],
                         {"kernel_shape": rest}))
    return placed, made


def _placed_spatial(graph: gs.Graph, names: NameSource, node: gs.Node, acts: list[tuple[gs.Tensor, int]],
                    out_shape: list[int], axis: int) -> tuple[gs.Tensor, list[gs.Node]]:
    """The activations (each with its offset along ``axis``) zero-padded to ``out_shape`` and added."""
    made: list[gs.Node] = []
    rank = len(out_shape)
    total: gs.Tensor | None = None
    for x, offset in acts:
        size = int((static_shape(x) or [0] * rank)[axis])
        pads = [0] * (2 * rank)
        pads[axis], pads[rank + axis] = offset, out_shape[axis] - offset - size
        padded = new_variable(names, f"{node.name}_placed", x.dtype, out_shape)
        made.append(add_node(graph, names, "Pad", f"{node.name}_place",
                             [x, new_constant(names, f"{node.name}_pads", np.array(pads, np.int64))], [padded],
                             {"mode": "constant"}))
        if total is None:
            total = padded
        else:
            summed = new_variable(names, f"{node.name}_sum", x.dtype, out_shape)
            made.append(add_node(graph, names, "Add", f"{node.name}_sum", [total, padded], [summed]))
            total = summed
    assert total is not None
    return total, made


@register
class ConstantConcat(Pass):
    """Rewrite a Concat of ``[1, ...]`` activations and constants into the activations placed at their
    offsets plus a constant map (module docstring)."""

    name = "constant-concat"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        rewritten = 0
        for node in list(graph.nodes):
            if node.op != "Concat" or (node.domain or "") not in DEFAULT_DOMAINS or not node.outputs:
                continue
            out_shape = static_shape(node.outputs[0])
            shapes = [static_shape(t) for t in node.inputs]
            values = [const_value(t) for t in node.inputs]
            if out_shape is None or len(out_shape) not in (3, 4) or out_shape[0] != 1 or \
                    any(s is None for s in shapes) or all(v is None for v in values) or \
                    all(v is not None for v in values):
                continue
            axis = int(node.attrs.get("axis", 0)) % len(out_shape)
            if axis == 0:
                continue
            constant = np.zeros(out_shape, dtype=np.float32)
            acts: list[tuple[gs.Tensor, int]] = []
            offset = 0
            for x, shape, value in zip(node.inputs, shapes, values):
                assert shape is not None
                if value is None:
                    acts.append((x, offset))
                else:
                    where = [slice(None)] * len(out_shape)
                    where[axis] = slice(offset, offset + shape[axis])
                    constant[tuple(where)] = np.broadcast_to(value, shape)
                offset += shape[axis]
            if axis == 1:
                placed, made = _placed_channels(graph, names, node, acts, list(out_shape))
                mark_fixed(model, made[-1])
            else:
                placed, made = _placed_spatial(graph, names, node, acts, list(out_shape), axis)
            y = node.outputs[0]
            node.inputs.clear()
            node.outputs.clear()
            made.append(add_node(graph, names, "Add", f"{node.name}_constants",
                                 [placed, new_constant(names, f"{node.name}_constants", constant)], [y]))
            origin = origin_of(model, node)
            for m in made:
                set_origin(model, m, origin)
            rewritten += 1
        if rewritten:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})
