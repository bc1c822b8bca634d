"""`crop-to-conv`: a crop of a feature map's spatial axes (a constant-bounds `Slice`, e.g. the
centre crop of a U-net's skip connection, or a strided one such as ``x[:, :, ::2, 1::2]``) as a
depthwise convolution with a one-hot kernel.

``y = x[:, :, t:H-b:sh, l:W-r:sw]`` is exactly ``Conv(x, K) {group=C, strides=[sh, sw]}`` without
padding: with ``n`` kept rows, the kernel is ``H - (n-1)*sh`` rows tall (so the conv has exactly
``n`` output rows; likewise for the columns) with a single 1 at ``(t, l)`` in every channel, and
output ``(i, j)`` reads ``x[t + i*sh, l + j*sw]``. 1.0 is exact in the weight format the quantiser
picks (q = 14), and the layer is stored sparse (one tap per channel) when that is smaller. Slices
that keep one contiguous run of the input (a time step of a sequence) are left to the `slice`
step. Negative steps (flips) are not crops and stay rejected.

A ``Gather`` of one constant index on a spatial axis (the last step of a TCN, ``y[:, :, -1]`` of
a ``[1, C, L]`` map) is that crop of length 1 followed by a ``Reshape`` that drops the axis (kept
when the index is a ``[1]`` tensor): ``Gather(x, i) {axis=a}`` -> ``Reshape(Slice(x, [i], [i+1],
[a]), shape)``, then the Slice becomes a conv as above.

A crop of a channel-last tensor that a layout node then makes channel-first (Keras
``Cropping2D`` on an NHWC input: tf2onnx slices axes 1 and 2 of the raw input, then a
``Transpose(perm=[0, 3, 1, 2])``, or a ``Reshape`` when there is one channel) is first moved
after that node: slicing and permuting commute, so ``L(Slice(x, axes))`` is
``Slice(L'(x), axes')`` with ``axes'`` where ``L`` puts those axes and ``L'`` the same layout
change of the uncropped tensor. The crop then reads a ``[1, C, H, W]`` map as above.

Before -> after::

    y = Gather(x[1,C,L], -1) {axis=2}                                             (y: [1, C])
    ->  t = Slice(x, starts=[L-1], ends=[L], axes=[2]); y = Reshape(t, [1, C])     (-> Conv + Reshape)

    t = Slice(x[1,H,W,C], starts=[1,1], ends=[-1,-1], axes=[1,2]); y = Transpose(t) {perm=[0,3,1,2]}
    ->  u = Transpose(x) {perm=[0,3,1,2]}; y = Slice(u, starts=[1,1], ends=[-1,-1], axes=[2,3])  (-> Conv)

    y = Slice(x[1,C,H,W], starts=[1,2], ends=[-1,-2], axes=[2,3])
    ->  y = Conv(x, K[C,1,3,5]) {group=C, kernel_shape=[3,5], pads=0}     K[c,0,1,2] = 1

    y = Slice(x[1,C,8,8], starts=[0,1], ends=[8,8], axes=[2,3], steps=[2,2])       (x[:, :, ::2, 1::2])
    ->  y = Conv(x, K[C,1,2,2]) {group=C, kernel_shape=[2,2], strides=[2,2]}      K[c,0,0,1] = 1
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, add_node, const_value, consumers, contiguous_slice, is_empty, mark_fixed,
                                   new_constant, new_variable, origin_of, set_origin, set_tensors, static_shape)


def _cuts(node: gs.Node, shape: tuple[int, ...]) -> dict[int, tuple[int, int, int]] | None:
    """``axis -> (start, stop, step)`` for the axes a Slice with constant bounds and positive steps
    really cuts (bounds clamped to the axis), or None when it is not such a Slice."""
    if node.op != "Slice" or len(node.inputs) < 3 or (node.domain or "") not in ("", "ai.onnx"):
        return None
    values = [None if i >= len(node.inputs) or is_empty(node.inputs[i]) else const_value(node.inputs[i])
              for i in range(1, 5)]
    if values[0] is None or values[1] is None or \
            any(v is None and i < len(node.inputs) and not is_empty(node.inputs[i]) for i, v in enumerate(values, 1)):
        return None
    starts, ends = np.reshape(values[0], -1).astype(np.int64), np.reshape(values[1], -1).astype(np.int64)
    axes = np.arange(starts.size) if values[2] is None else np.reshape(values[2], -1).astype(np.int64)
    steps = np.ones(starts.size, np.int64) if values[3] is None else np.reshape(values[3], -1).astype(np.int64)
    cuts = {}
    for a, b, e, k in zip(axes, starts, ends, steps):
        a, n = int(a) % len(shape), shape[int(a) % len(shape)]
        b = min(max(int(b) + n if b < 0 else int(b), 0), n)
        e = min(max(int(e) + n if e < 0 else int(e), 0), n)
        if int(k) < 1 or e <= b:
            return None
        if (b, e, int(k)) != (0, n, 1):
            cuts[a] = (b, e, int(k))
    return cuts


def spatial_crop(node: gs.Node) -> list[tuple[int, int, int]] | None:
    """The kept ``(start, stop, step)`` per spatial axis of a Slice that only crops them, with
    ``0 <= start < stop <= n`` and ``step >= 1`` (None: not such a Slice)."""
    shape = static_shape(node.inputs[0])
    if shape is None or len(shape) not in (3, 4) or shape[0] != 1 or const_value(node.inputs[0]) is not None:
        return None
    cuts = _cuts(node, shape)
    if not cuts or min(cuts) < 2:
        return None
    return [cuts.get(a, (0, n, 1)) for a, n in enumerate(shape) if a >= 2]


def _one_contiguous_run(node: gs.Node) -> bool:
    try:
        contiguous_slice(node)
    except ValueError:
        return False
    return True


def _gather_as_slice(model: OnnxModel, names: NameSource, node: gs.Node) -> bool:
    """Rewrite a ``Gather`` of one constant index on a spatial axis of a ``[1, C, L]`` /
    ``[1, C, H, W]`` map into a Slice of length 1 (+ a Reshape dropping the axis when the index is a
    scalar); False when ``node`` is not such a Gather, or one contiguous run the `slice` step copies."""
    x, y = node.inputs[0], node.outputs[0]
    shape, index = static_shape(x), const_value(node.inputs[1]) if len(node.inputs) > 1 else None
    if node.op != "Gather" or (node.domain or "") not in ("", "ai.onnx") or shape is None or index is None or \
            index.size != 1 or len(shape) not in (3, 4) or shape[0] != 1 or const_value(x) is not None or \
            static_shape(y) is None or _one_contiguous_run(node):
        return False
    axis = int(node.attrs.get("axis", 0)) % len(shape)
    if axis < 2:
        return False
    start = int(index.reshape(-1)[0]) % shape[axis]
    bounds = {"starts": [start], "ends": [start + 1], "axes": [axis]}
    inputs = [x, *(new_constant(names, f"{node.name}_{what}", np.array(v, np.int64)) for what, v in bounds.items())]
    node.op = "Slice"
    node.attrs.clear()
    set_tensors(node.inputs, inputs)
    if index.ndim == 0:
        kept = new_variable(names, f"{node.name}_kept", x.dtype, [*shape[:axis], 1, *shape[axis + 1:]])
        set_tensors(node.outputs, [kept])
        reshape = add_node(model.graph, names, "Reshape", f"{node.name}_drop_axis",
                           [kept, new_constant(names, f"{node.name}_shape", np.array(static_shape(y), np.int64))],
                           [y])
        set_origin(model, reshape, origin_of(model, node))
    return True


def _moved_axes(layout: gs.Node, before: tuple[int, ...], after: tuple[int, ...], axes: list[int]) -> list[int] | None:
    """Where the layout node (a Transpose, or a Reshape that only adds or drops axes of size 1)
    puts each of ``axes`` of its input (None: it does not just move them)."""
    if layout.op == "Transpose":
        perm = [int(p) for p in layout.attrs.get("perm", list(reversed(range(len(before)))))]
        return [perm.index(a) for a in axes]
    big_in = [a for a, n in enumerate(before) if n != 1]
    big_out = [a for a, n in enumerate(after) if n != 1]
    if [before[a] for a in big_in] != [after[a] for a in big_out] or any(a not in big_in for a in axes):
        return None
    return [big_out[big_in.index(a)] for a in axes]


def _crop_after_layout(model: OnnxModel, names: NameSource, node: gs.Node) -> bool:
    """Move a crop of a channel-last tensor after the layout node that makes it channel-first
    (module docstring); False when ``node`` is not such a crop."""
    x, cut = node.inputs[0], node.outputs[0]
    x_shape, cut_shape = static_shape(x), static_shape(cut)
    users = consumers(cut)
    if x_shape is None or cut_shape is None or len(users) != 1 or x_shape[0] != 1 or const_value(x) is not None:
        return False
    layout = users[0]
    y_shape = static_shape(layout.outputs[0])
    cuts = _cuts(node, x_shape)
    if not cuts or y_shape is None or len(y_shape) not in (3, 4) or y_shape[0] != 1 or \
            layout.op not in ("Transpose", "Reshape") or \
            (layout.op == "Reshape" and const_value(layout.inputs[1]) is None):
        return False
    axes = sorted(cuts)
    moved = _moved_axes(layout, cut_shape, y_shape, axes)
    if moved is None or any(a < 2 for a in moved):
        return False
    uncut = list(y_shape)
    for a, b in zip(axes, moved):
        uncut[b] = x_shape[a]
    if layout.op == "Transpose" and [x_shape[int(a)] for a in layout.attrs.get("perm", [])] != uncut:
        return False
    whole = new_variable(names, f"{layout.name}_uncropped", x.dtype, uncut)
    y = layout.outputs[0]
    set_tensors(layout.inputs, [x] if layout.op == "Transpose" else
                [x, new_constant(names, f"{layout.name}_shape", np.array(uncut, np.int64))])
    set_tensors(layout.outputs, [whole])
    bounds = [np.array([cuts[a][i] for a in axes], np.int64) for i in range(3)]
    set_tensors(node.inputs, [whole, *(new_constant(names, f"{node.name}_{what}", v) for what, v in
                                       zip(("starts", "ends", "axes", "steps"),
                                           (bounds[0], bounds[1], np.array(moved, np.int64), bounds[2])))])
    set_tensors(node.outputs, [y])
    return True


@register
class CropToConv(Pass):
    """Rewrite spatial crops into one-hot depthwise convolutions (module docstring)."""

    name = "crop-to-conv"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        names = NameSource(model.graph)
        gathers = sum(_gather_as_slice(model, names, node) for node in list(model.graph.nodes))
        if gathers:
            model.graph.toposort()
        moved = sum(_crop_after_layout(model, names, node) for node in list(model.graph.nodes)
                    if node.op == "Slice" and spatial_crop(node) is None)
        if moved:
            model.graph.toposort()
        rewritten = 0
        for node in list(model.graph.nodes):
            kept = spatial_crop(node)
            if kept is None or _one_contiguous_run(node):    # a run: a `slice` step copies it
                continue
            shape = static_shape(node.inputs[0])
            assert shape is not None
            sizes = list(shape[2:])
            # n kept = ceil((e - s) / k); a kernel of size - (n-1)*k gives exactly n outputs at stride k
            kernel = [size - ((e - s + k - 1) // k - 1) * k for (s, e, k), size in zip(kept, sizes)]
            weights = np.zeros((shape[1], 1, *kernel), dtype=np.float32)
            weights[(slice(None), 0, *(s for s, _, _ in kept))] = 1.0
            ones = [1] * len(kernel)
            x = node.inputs[0]
            node.op = "Conv"
            node.attrs.clear()
            node.attrs.update({"kernel_shape": kernel, "strides": [k for _, _, k in kept],
                               "pads": [0] * 2 * len(kernel), "dilations": ones, "group": int(shape[1])})
            node.inputs.clear()
            node.inputs.extend([x, new_constant(names, f"{node.name}_crop", weights)])
            mark_fixed(model, node)
            rewritten += 1
        return PassResult(model, bool(gathers or moved or rewritten),
                          {"rewritten": rewritten, "moved-after-layout": moved, "gathers": gathers})
