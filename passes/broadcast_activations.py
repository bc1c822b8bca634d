"""`broadcast-activations`: an element-wise Add/Sub/Mul of a feature map and a per-channel activation
reads the second through a nearest upsampling to the map's size; a one-channel map read by a
C-channel one, through a 1x1 conv that copies its channel C times.

Squeeze-excitation (``x * sigmoid(fc(gap(x)))`` reshaped to ``[1, C, 1, 1]``) and "add the global
context" blocks combine a ``[1, C, H, W]`` map with an activation of shape ``[1, C, 1, 1]`` that
numpy-broadcasts over the spatial axes. The LIR's ``add`` and ``mul`` take two tensors of one
shape; replicating the small operand by the canonical nearest Resize (an ``upsample`` step, an
exact copy) gives it that shape, so the node becomes an ordinary same-shape Add/Mul.

Before -> after::

    y = Mul(x[1,C,H,W], s[1,C,1,1])      ->  t = Resize(s, scales=[1,1,H,W]) {nearest, asymmetric, floor}
                                             y = Mul(x, t[1,C,H,W])
    y = Mul(x[1,C,H,W], g[1,1,H,W])      ->  t = Conv(g, ones[C,1,1,1]) (fixed);  y = Mul(x, t[1,C,H,W])
          (a spatial attention map gating every channel: CBAM; x - x.mean(dim=1, keepdim=True))

Only broadcasting of an activation over the spatial axes or over the channels is rewritten (a
constant operand is the normal per-channel or per-element constant and stays as it is).
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, add_node, const_value, mark_fixed, new_constant, new_variable,
                                   origin_of, set_origin, static_shape)
from passes.resize_nearest import CANONICAL

BROADCAST_OPS = ("Add", "Sub", "Mul")


def spatial_factors(big: tuple[int, ...], small: tuple[int, ...]) -> list[int] | None:
    """Per-axis replication factors that make ``small`` the shape ``big`` by repeating its size-1
    spatial axes (None: not that kind of broadcast)."""
    if len(big) != len(small) or len(big) not in (3, 4) or big[:2] != small[:2] or big == small:
        return None
    if any(s not in (1, b) for b, s in zip(big[2:], small[2:])):
        return None
    return [1, 1, *(b // s for b, s in zip(big[2:], small[2:]))]


def channel_broadcast(big: tuple[int, ...], small: tuple[int, ...]) -> bool:
    """Whether ``small`` is ``big`` with one channel (``[1, 1, ...]`` against ``[1, C, ...]``)."""
    return len(big) == len(small) in (3, 4) and small[1] == 1 < big[1] and big[0] == small[0] == 1 \
        and big[2:] == small[2:]


@register
class BroadcastActivations(Pass):
    """Give the per-channel operand of a map-wide Add/Mul the map's shape (module docstring)."""

    name = "broadcast-activations"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        rewritten = 0
        for node in list(graph.nodes):
            if node.op not in BROADCAST_OPS or (node.domain or "") not in ("", "ai.onnx") or len(node.inputs) != 2:
                continue
            a, b = node.inputs
            if const_value(a) is not None or const_value(b) is not None:
                continue
            sa, sb = static_shape(a), static_shape(b)
            if sa is None or sb is None:
                continue
            for i, (big, small) in enumerate(((sa, sb), (sb, sa))):
                if channel_broadcast(big, small):
                    node.inputs[1 - i] = self._copy_channels(model, names, node, node.inputs[1 - i], big)
                    rewritten += 1
                    break
                factors = spatial_factors(big, small)
                if factors is None:
                    continue
                source = node.inputs[1 - i]
                wide = new_variable(names, f"{source.name}_wide", source.dtype, list(big))
                scales = new_constant(names, f"{node.name}_scales", np.array(factors, dtype=np.float32))
                resize = gs.Node(op="Resize", name=names.fresh(f"{node.name}_broadcast"), attrs=dict(CANONICAL),
                                 inputs=[source, gs.Variable.empty(), scales], outputs=[wide])
                graph.nodes.append(resize)
                set_origin(model, resize, origin_of(model, node))
                node.inputs[1 - i] = wide
                rewritten += 1
                break
        if rewritten:
            graph.toposort()
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})

    @staticmethod
    def _copy_channels(model: OnnxModel, names: NameSource, node: gs.Node, source: gs.Tensor,
                       big: tuple[int, ...]) -> gs.Variable:
        """``source [1, 1, ...]`` copied into ``big[1]`` channels by a fixed 1x1 conv of ones."""
        spatial = len(big) - 2
        wide = new_variable(names, f"{source.name}_channels", source.dtype, list(big))
        ones = new_constant(names, f"{node.name}_ones", np.ones((big[1], 1, *[1] * spatial), dtype=np.float32))
        conv = add_node(model.graph, names, "Conv", f"{node.name}_copy_channels", [source, ones], [wide],
                        {"kernel_shape": [1] * spatial, "strides": [1] * spatial, "pads": [0] * (2 * spatial),
                         "dilations": [1] * spatial, "group": 1})
        mark_fixed(model, conv)
        set_origin(model, conv, origin_of(model, node))
        return wide
