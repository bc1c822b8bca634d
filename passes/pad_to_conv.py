"""`pad-to-conv`: the Pads of a feature map's spatial axes that `fold-pad` cannot absorb, exactly, in
the cheapest normal-form shape.

`fold-pad` folds a zero Pad into the Conv/AveragePool that reads it. Every other Pad of the spatial
axes of a ``[1, C, L]`` / ``[1, C, H, W]`` map (constant amounts >= 0) becomes, in this order of
preference:

1. **MaxPool pads** (free): a zero Pad whose readers are all MaxPools (``ceil_mode=0``, dilation 1,
   no indices output, every pad stays below the kernel) of a tensor that cannot be negative
   (:func:`non_negative`: after a Relu, a Sigmoid, a Clip at >= 0, ... through pools, layout nodes
   and pads). MaxPool's own padding counts as ``-inf``, a padded zero as 0; they give the same max
   because every window keeps at least one input element (each pad is below the kernel) and every
   input element is >= 0, so the window's max is >= 0 either way. Keras/tf2onnx 'same' pooling,
   ``F.pad`` + ``nn.MaxPool2d`` after a ReLU.
2. **A depthwise 1x1 Conv with pads** (one multiply per output): constant padding with 0 is
   ``Conv(x, 1) {group=C, pads}``: the conv's zero padding is the Pad's. A constant ``v != 0`` is
   affine: ``u = Conv(x, 1, bias=-v)``; ``y = Conv(u, 1, bias=v) {pads}`` gives ``x`` inside and ``v``
   on the border (the padded positions see only the bias). 1.0 is exact at q = 14; ``v`` is
   rounded like any bias, within the bound ``lower_bounds`` computes.
3. **A constant one-hot matrix per axis** for ``reflect``, ``edge`` and ``wrap``: output position
   ``i`` of an axis reads input ``src(i)`` (``numpy.pad``'s rule, the ONNX reference's), so the Pad
   is ``y[0, c] = R x[0, c] C^T`` with one-hot ``R`` ``[H+t+b, H]``, ``C`` ``[W+l+r, W]`` (the
   identity for an axis that is not padded), written by
   :func:`passes.normalize_util.separable_map` as two grouped convs (one for a 1-D map); one tap per
   output, stored sparse, and exact (weights 1.0).

Every Conv built here is marked ``fixed-weights`` (training and pruning keep it).

Before -> after::

    p = Pad(r=Relu(x)[1,C,H,W], [0,0,1,1, 0,0,1,1]); y = MaxPool(p) {kernel=3, pads=0}
        ->  y = MaxPool(r) {kernel=3, pads=[1,1,1,1]}
    p = Pad(x[1,C,H,W], [0,0,1,2, 0,0,1,0]); y = Add(p, z)
        ->  p = Conv(x, ones[C,1,1,1]) {group=C, pads=[1,2,1,0]}; y = Add(p, z)
    p = Pad(x, ..., value=0.5)
        ->  u = Conv(x, ones, -0.5) {group=C}; p = Conv(u, ones, 0.5) {group=C, pads}
    p = Pad(x[1,C,H,W], [0,0,1,1, 0,0,1,1]) {mode=reflect}
        ->  t = Conv(x, Wc[C*(W+2),1,1,W]) {group=C}; u = Reshape(t, [1,C,W+2,H])
            v = Conv(u, Wr[C*(H+2),1,1,H]) {group=C}; p = Reshape(v, [1,C,H+2,W+2])

Pads of the batch or channel axes, negative amounts (crops), amounts or values computed at run time
and other modes stay for `check-supported`, which names them.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.fold_pad import SpatialPad, read_pad
from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, add_node, attr, const_value, consumers, detach,
                                   drop_unused, is_graph_output, mark_fixed, new_constant, new_variable, origin_of,
                                   producer, separable_map, set_origin, set_tensors, static_shape)

AXIS_MODES = {"reflect": "reflect", "edge": "edge", "wrap": "wrap"}
"""ONNX Pad modes that copy input elements, and numpy.pad's name for each."""
NON_NEGATIVE_OPS = frozenset({"Relu", "Sigmoid", "Softmax", "Abs", "Exp", "HardSigmoid", "Softplus"})
"""Ops whose every output is >= 0."""
KEEPS_SIGN_OPS = frozenset({"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Reshape", "Flatten",
                            "Transpose", "Squeeze", "Unsqueeze", "Resize", "Upsample", "Slice", "Identity"})
"""Ops whose output elements are copies or averages of their first input's."""


def non_negative(tensor: gs.Tensor) -> bool:
    """Whether every value ``tensor`` can take is >= 0: a constant >= 0, the output of an op in
    :data:`NON_NEGATIVE_OPS`, of a Clip at a constant minimum >= 0, of a Max with such an input, or
    of a copy/average (:data:`KEEPS_SIGN_OPS`, Concat, a Pad with a value >= 0) of such tensors."""
    value = const_value(tensor)
    if value is not None:
        return bool(np.all(value >= 0))
    node = producer(tensor)
    if node is None or (node.domain or "") not in DEFAULT_DOMAINS:
        return False
    if node.op in NON_NEGATIVE_OPS:
        return True
    if node.op == "Clip":
        low = const_value(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1].name else None
        low_value = float(low.reshape(-1)[0]) if low is not None and low.size == 1 else attr(node, "min", None)
        return low_value is not None and float(low_value) >= 0.0     # type: ignore[arg-type]
    if node.op == "Max":
        return any(non_negative(t) for t in node.inputs)
    if node.op == "Concat":
        return all(non_negative(t) for t in node.inputs)
    if node.op == "Pad":
        shape = static_shape(node.inputs[0])
        found = read_pad(node, len(shape)) if shape is not None else None
        return found is not None and found.value >= 0.0 and non_negative(node.inputs[0])
    return node.op in KEEPS_SIGN_OPS and non_negative(node.inputs[0])


def axis_matrix(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """``[before + n + after, n]``: the one-hot matrix of a ``reflect``/``edge``/``wrap`` Pad of an
    axis of length ``n`` (row ``i`` reads input ``numpy.pad(arange(n), (before, after), mode)[i]``)."""
    source = np.pad(np.arange(n), (before, after), mode=AXIS_MODES[mode])   # type: ignore[call-overload]
    matrix = np.zeros((source.size, n))
    matrix[np.arange(source.size), source] = 1.0
    return matrix


def _into_max_pools(node: gs.Node, pad: SpatialPad, graph: gs.Graph) -> list[gs.Node] | None:
    """The MaxPools that can take ``pad`` into their own pads (module docstring, case 1), or None."""
    out = node.outputs[0]
    readers = consumers(out)
    if pad.mode != "constant" or pad.value != 0.0 or not readers or is_graph_output(graph, out) \
            or not non_negative(node.inputs[0]):
        return None
    spatial = len(pad.pads) // 2
    for reader in readers:
        kernel = [int(k) for k in reader.attrs.get("kernel_shape", [])]
        pads = [int(p) for p in reader.attrs.get("pads", [0] * 2 * spatial)]
        if reader.op != "MaxPool" or (reader.domain or "") not in DEFAULT_DOMAINS or len(reader.outputs) != 1 \
                or reader.inputs[0] is not out or str(attr(reader, "auto_pad", "NOTSET")) != "NOTSET" \
                or int(attr(reader, "ceil_mode", 0)) != 0 or len(kernel) != spatial \
                or any(int(d) != 1 for d in reader.attrs.get("dilations", [1] * spatial)) \
                or any(pads[i] + pad.pads[i] >= kernel[i % spatial] for i in range(2 * spatial)):
            return None
    return readers


def _ones_conv(names: NameSource, base: str, x: gs.Tensor, channels: int, spatial: int, bias: float,
               pads: list[int]) -> tuple[list[gs.Tensor], dict[str, object]]:
    """Inputs and attributes of ``Conv(x, ones[C,1,1..], bias) {group=C, pads}``."""
    ones = [1] * spatial
    inputs = [x, new_constant(names, f"{base}_ones", np.ones((channels, 1, *ones), np.float32)),
              new_constant(names, f"{base}_bias", np.full(channels, bias, np.float32))]
    return inputs, {"kernel_shape": ones, "strides": ones, "pads": pads, "dilations": ones, "group": channels}


@register
class PadToConv(Pass):
    """Rewrite spatial Pads into MaxPool pads, depthwise 1x1 convs or one-hot grouped convs
    (module docstring)."""

    name = "pad-to-conv"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        stats = {"into-max-pool": 0, "depthwise": 0, "one-hot": 0}
        found: list[tuple[gs.Node, SpatialPad, tuple[int, ...]]] = []
        for node in list(graph.nodes):
            shape = static_shape(node.inputs[0]) if node.op == "Pad" and node.inputs else None
            if shape is None or (node.domain or "") not in DEFAULT_DOMAINS or len(shape) not in (3, 4) \
                    or shape[0] != 1 or const_value(node.inputs[0]) is not None or len(node.outputs) != 1:
                continue
            pad = read_pad(node, len(shape))
            if pad is not None and (pad.mode == "constant" or pad.mode in AXIS_MODES):
                found.append((node, pad, shape))
        # MaxPools first: the value range argument reads the Pads before them as Pads
        for node, pad, _ in found:
            pools = _into_max_pools(node, pad, graph)
            if pools is None:
                continue
            for pool in pools:
                spatial = len(pad.pads) // 2
                pool.attrs["pads"] = [int(p) + e for p, e in
                                      zip(pool.attrs.get("pads", [0] * 2 * spatial), pad.pads)]
                pool.inputs[0] = node.inputs[0]
                set_origin(model, pool, origin_of(model, node) + origin_of(model, pool))
            detach(node)
            stats["into-max-pool"] += 1
        for node, pad, shape in found:
            if not node.outputs:
                continue
            x, y = node.inputs[0], node.outputs[0]
            channels, spatial = int(shape[1]), len(shape) - 2
            if pad.mode == "constant":
                if pad.value != 0.0:
                    shifted = new_variable(names, f"{node.name}_shifted", np.float32, list(shape))
                    inputs, attrs = _ones_conv(names, f"{node.name}_shift", x, channels, spatial, -pad.value,
                                               [0] * 2 * spatial)
                    first = add_node(graph, names, "Conv", f"{node.name}_shift", inputs, [shifted], attrs)
                    set_origin(model, first, origin_of(model, node))
                    mark_fixed(model, first)
                    x = shifted
                inputs, attrs = _ones_conv(names, node.name, x, channels, spatial, pad.value, pad.pads)
                node.op, node.domain = "Conv", ""
                node.attrs.clear()
                node.attrs.update(attrs)
                set_tensors(node.inputs, inputs)
                mark_fixed(model, node)
                stats["depthwise"] += 1
                continue
            matrices = [axis_matrix(int(n), pad.pads[a], pad.pads[spatial + a], pad.mode)
                        for a, n in enumerate(shape[2:])]
            origin = origin_of(model, node)
            set_tensors(node.outputs, [])
            detach(node)
            for made in separable_map(graph, names, x, y, matrices[0] if spatial == 2 else None, matrices[-1],
                                      node.name):
                set_origin(model, made, origin)
                if made.op == "Conv":
                    mark_fixed(model, made)
            stats["one-hot"] += 1
        changed = any(stats.values())
        if changed:
            drop_unused(graph, toposort=True)
        return PassResult(model, changed, stats)
