"""`group-norm`: InstanceNormalization and GroupNormalization as a LayerNormalization over rows.

On a contiguous ``[1, C, *S]`` map (channel-major, the runtime's layout) a group of ``C / G``
channels is one contiguous block of ``L = (C / G) * prod(S)`` elements, so normalising groups is a
layer normalisation of the ``[1, G, L]`` view, followed by the per-channel affine of the op (a
``Mul``/``Add`` of ``[C, 1, ..]`` constants, which `lower` makes a depthwise 1x1 conv and
`fold-into-next` may fold into the next unpadded Conv or Gemm).
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.lir.kernels import LAYERNORM_N_MAX
from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.canonical_arith import channel_shape
from passes.layer_norm import epsilon_problems, raise_opset
from passes.normalize_util import (NameSource, add_node, const_value, detach, drop_unused, is_empty, is_read,
                                   opset_of, origin_of, set_origin, shape_text, static_shape)

NORM_OPS = ("InstanceNormalization", "GroupNormalization")

#: GroupNormalization-21 takes a scale and bias per channel; version 18 took one per group.
PER_CHANNEL_GROUPNORM_OPSET = 21


def _groups(node: gs.Node, channels: int) -> int:
    """The number of groups G of an InstanceNormalization (one per channel) or GroupNormalization."""
    return channels if node.op == "InstanceNormalization" else int(node.attrs.get("num_groups", 0))


def _affine_sizes(node: gs.Node, opset: int, channels: int, groups: int) -> tuple[int, str]:
    """The size the op's scale and bias must have, and what it is per (text for errors)."""
    if node.op == "GroupNormalization" and opset < PER_CHANNEL_GROUPNORM_OPSET:
        return groups, f"group (GroupNormalization at opset {opset} < {PER_CHANNEL_GROUPNORM_OPSET})"
    return channels, "channel"


def norm_problems(model: OnnxModel, node: gs.Node) -> list[tuple[str, str]]:
    """Why an InstanceNormalization / GroupNormalization cannot become a LayerNormalization over
    rows (the reason and what to do), empty when `group-norm` rewrites it."""
    x = node.inputs[0] if node.inputs else None
    shape = static_shape(x)
    if shape is None or len(shape) < 3 or shape[0] != 1:
        return [(f"{node.op} of {shape_text(x)}", "normalisation of a [1, C, L] or [1, C, H, W] map (batch 1, "
                 "static shape) is supported; fix the input shapes with --input-shape")]
    channels = shape[1]
    groups = _groups(node, channels)
    if groups <= 0 or channels % groups:
        return [(f"num_groups={groups} does not divide the {channels} channels", "the model is inconsistent; "
                 "re-export it")]
    out = epsilon_problems(node)
    row = channels // groups * int(np.prod(shape[2:]))
    if row > LAYERNORM_N_MAX:
        out.append((f"groups of {row} elements", f"at most {LAYERNORM_N_MAX} elements per normalised group "
                    "(channels per group x spatial size); normalise smaller maps or use more groups"))
    size, per = _affine_sizes(node, opset_of(model), channels, groups)
    for k, role in ((1, "scale"), (2, "bias")):
        value = const_value(node.inputs[k]) if len(node.inputs) > k and not is_empty(node.inputs[k]) else None
        if value is None or value.size != size:
            out.append((f"the {role} {shape_text(node.inputs[k]) if len(node.inputs) > k else 'missing'} is not "
                        f"a constant of {size} values (one per {per})",
                        "export with constant affine parameters (torch: affine=True or False, not computed)"))
    if any(not is_empty(t) and is_read(model.graph, t) for t in node.outputs[1:]):
        out.append((f"{node.op} has more than one output read", "only the normalised output is supported"))
    return out


@register
class GroupNorm(Pass):
    """Rewrite InstanceNormalization and GroupNormalization of a ``[1, C, *S]`` map as a
    LayerNormalization over rows of ``L = (C / G) * prod(S)`` elements and a per-channel affine.

    Before -> after (``G`` groups: ``C`` for InstanceNormalization; ``gamma``, ``beta`` per channel,
    or per group for GroupNormalization-18, repeated over the group's channels)::

        y = InstanceNormalization(x[1,C,H,W], gamma, beta) {epsilon}
        y = GroupNormalization(x[1,C,H,W], gamma, beta) {num_groups=G, epsilon}
        ->
        r = Reshape(x, [1, G, L]); z = LayerNormalization(r, 1[L], 0[L]) {axis=-1, epsilon}
        y = Add(Mul(Reshape(z, [1,C,H,W]), gamma[C,1,1]), beta[C,1,1])

    A Reshape that would not change the shape (``[1, C, L]`` instance norm, torch's legacy
    GroupNorm reshapes to ``[1, G, L]`` itself) is left out; so are a scale of ones and a bias of
    zeros. When every group has the same per-position affine (one group, or equal parameters)
    it is the LayerNormalization's own scale and bias instead. A model below opset 17 moves to 17
    (LayerNormalization's first version). Nodes it cannot rewrite are left for `check-supported`
    (:func:`norm_problems` says why).
    """

    name = "group-norm"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        count = 0
        for node in list(graph.nodes):
            if node.op in NORM_OPS and node.domain in (None, "", "ai.onnx") and not norm_problems(model, node):
                self._rewrite(model, names, node)
                count += 1
        if count:
            drop_unused(graph, toposort=True)
            raise_opset(graph)
        return PassResult(model, count > 0, {"rewritten": count})

    @staticmethod
    def _rewrite(model: OnnxModel, names: NameSource, node: gs.Node) -> None:
        graph = model.graph
        x, y = node.inputs[0], node.outputs[0]
        shape = static_shape(x)
        assert shape is not None
        channels = shape[1]
        groups = _groups(node, channels)
        spatial = int(np.prod(shape[2:]))
        row = channels // groups * spatial
        size, _ = _affine_sizes(node, opset_of(model), channels, groups)
        gamma, beta = (np.asarray(const_value(node.inputs[k]), dtype=np.float64).reshape(-1) for k in (1, 2))
        if size != channels:                                  # per group -> per channel
            gamma, beta = np.repeat(gamma, channels // size), np.repeat(beta, channels // size)
        rows_gamma = np.repeat(gamma, spatial).reshape(groups, row)
        rows_beta = np.repeat(beta, spatial).reshape(groups, row)
        in_rows = bool((rows_gamma == rows_gamma[0]).all() and (rows_beta == rows_beta[0]).all())
        eps = float(node.attrs.get("epsilon", 1e-5))
        base = node.name or "norm"
        origin = origin_of(model, node)
        dtype = np.float32
        detach(node)
        created: list[gs.Node] = []

        def step(op: str, suffix: str, inputs: list[gs.Tensor], out_shape: tuple[int, ...] | None,
                 attrs: dict[str, object] | None = None) -> gs.Tensor:
            out = y if out_shape is None else gs.Variable(names.fresh(f"{base}_{suffix}"), dtype=dtype,
                                                          shape=list(out_shape))
            created.append(add_node(graph, names, op, f"{base}_{suffix}", inputs, [out], attrs))
            return out

        def const(suffix: str, values: np.ndarray) -> gs.Constant:
            return gs.Constant(names.fresh(f"{base}_{suffix}"), np.ascontiguousarray(values))

        affine = [] if in_rows else \
            [(op, value) for op, value, neutral in (("Mul", gamma, 1.0), ("Add", beta, 0.0))
             if not (value == neutral).all()]
        view = (1, groups, row)
        t: gs.Tensor = x
        if tuple(shape) != view:
            t = step("Reshape", "rows", [t, const("rows_shape", np.array(view, np.int64))], view)
        last = not affine and tuple(shape) == view
        scale = rows_gamma[0] if in_rows else np.ones(row)
        bias = rows_beta[0] if in_rows else np.zeros(row)
        t = step("LayerNormalization", "layernorm",
                 [t, const("scale", scale.astype(dtype)), const("bias", bias.astype(dtype))],
                 None if last else view, {"axis": -1, "epsilon": eps})
        if tuple(shape) != view:
            t = step("Reshape", "map", [t, const("map_shape", np.array(shape, np.int64))],
                     None if not affine else tuple(shape))
        for i, (op, value) in enumerate(affine):
            per_channel = value.astype(dtype).reshape(channel_shape(tuple(shape)))
            t = step(op, op.lower(), [t, const(op.lower(), per_channel)],
                     None if i == len(affine) - 1 else tuple(shape))
        for new in created:
            set_origin(model, new, origin)
