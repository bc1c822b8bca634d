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

Before -> after::

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

from passes.normalize_util import NameSource, const_value, contiguous_slice, is_empty, new_constant, static_shape


def spatial_crop(node: gs.Node) -> list[tuple[int, int, int]] | None:
    """The kept ``(start, stop, step)`` per spatial axis of a Slice that only crops them, with
    ``0 <= start < stop <= n`` and ``step >= 1`` (None: not such a Slice)."""
    if node.op != "Slice" or len(node.inputs) < 3 or (node.domain or "") not in ("", "ai.onnx"):
        return None
    shape = static_shape(node.inputs[0])
    if shape is None or len(shape) not in (3, 4) or shape[0] != 1 or const_value(node.inputs[0]) is not None:
        return None
    values = [None if i >= len(node.inputs) or is_empty(node.inputs[i]) else const_value(node.inputs[i])
              for i in range(1, 5)]
    if any(v is None and i < len(node.inputs) and not is_empty(node.inputs[i]) for i, v in enumerate(values, 1)):
        return None
    starts, ends, axes, steps = values
    assert starts is not None and ends is not None
    starts, ends = np.reshape(starts, -1).astype(np.int64), np.reshape(ends, -1).astype(np.int64)
    axes = np.arange(starts.size) if axes is None else np.reshape(axes, -1).astype(np.int64)
    steps = np.ones(starts.size, np.int64) if steps is None else np.reshape(steps, -1).astype(np.int64)
    kept = [(0, n, 1) for n in shape[2:]]
    for a, s, e, k in zip(axes, starts, ends, steps):
        a, n = int(a) % len(shape), shape[int(a) % len(shape)]
        s = min(max(int(s) + n if s < 0 else int(s), 0), n)
        e = min(max(int(e) + n if e < 0 else int(e), 0), n)
        if (s, e, int(k)) == (0, n, 1):
            continue
        if a < 2 or int(k) < 1 or e <= s:
            return None
        kept[a - 2] = (s, e, int(k))
    return kept if any(k != (0, n, 1) for k, n in zip(kept, shape[2:])) else None


def _one_contiguous_run(node: gs.Node) -> bool:
    try:
        contiguous_slice(node)
    except ValueError:
        return False
    return True


@register
class CropToConv(Pass):
    """Rewrite spatial crops into one-hot depthwise convolutions (module docstring)."""

    name = "crop-to-conv"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        names = NameSource(model.graph)
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
            rewritten += 1
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})
