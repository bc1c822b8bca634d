"""`resize-linear`: a linear (or non-integer nearest) `Resize`/`Upsample` (bilinear 2-D, linear 1-D: torch
``nn.Upsample(mode='bilinear'/'linear')``, ``F.interpolate``, Keras ``UpSampling2D(interpolation=
'bilinear')``) as two grouped convolutions, exactly.

ONNX's linear mode computes, per resized axis and output index ``i``, the input coordinate
``v = clamp(transform(i), 0, n_in - 1)`` (the coordinate transformation mode: half_pixel,
pytorch_half_pixel, align_corners, asymmetric, half_pixel_symmetric), and
``y[i] = (1 - (v - k)) * x[k] + (v - k) * x[min(k + 1, n_in - 1)]`` with ``k = floor(v)``; onnxruntime
clamps the coordinate that way (the ONNX reference pads the edge, which gives the same values).
That is a constant matrix per axis (:func:`linear_matrix`: two taps per row, weights summing to
1), applied to each channel's rows and columns: ``Y = A X B^T``, which
:func:`passes.normalize_util.separable_map` writes as two grouped convs and two Reshapes (views).
The result is exact up to the fixed-point rounding of the weights (q = 14 or 15 per output
channel: at most 2^-15 relative per tap; 0.25/0.75 and the factor-2 weights are exact) and of the
intermediate map (its own calibrated Q format); ``backends/lower_bounds.py`` bounds both like any
conv's.

Before -> after::

    y = Resize(x[1,C,H,W], roi, scales=[1,1,2,2]) {mode=linear, coordinate_transformation_mode=half_pixel}
    ->  t = Conv(x, Wc[C*2W, 1, 1, W]) {group=C};  u = Reshape(t, [1, C, 2W, H])
        v = Conv(u, Wr[C*2H, 1, 1, H]) {group=C};  y = Reshape(v, [1, C, 2H, 2W])

A nearest Resize/Upsample that is not an integer upsampling (`resize-nearest` keeps those: a size of
``n + 3``, a scale of 1.5, a downscale) is the same separable map with one 1 per row
(:func:`nearest_matrix`: the node's own coordinate transformation and rounding, clamped), exact.

Rejected (left for `check-supported`, with :func:`linear_maps`'s reason): cubic, roi-based
``tf_crop_and_resize``, antialiased downscaling, ``keep_aspect_ratio_policy`` other than stretch,
align_corners to an axis of length 1, scales computed at run time, resizing the batch or channel
axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (NameSource, attr, drop_unused, mark_fixed, origin_of, separable_map, set_origin,
                                   set_tensors, static_shape)
from passes.resize_nearest import (NEAREST_HINT, RESAMPLE_OPS, ROUNDING, TRANSFORMS, Rejected, nearest_factors,
                                   scales_and_sizes)

LINEAR_TRANSFORMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric")
LINEAR_HINT = ("linear resizing is supported for constant scales or sizes of the spatial axes of a [1, C, L] "
               "or [1, C, H, W] map with coordinate_transformation_mode half_pixel, pytorch_half_pixel, "
               "align_corners, asymmetric or half_pixel_symmetric (nn.Upsample(mode='bilinear'), "
               "F.interpolate(mode='linear'/'bilinear'), Keras UpSampling2D(interpolation='bilinear'))")


NEAREST_TRANSFORMS = ("asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners")
"""The coordinate transformations of a nearest resize that is not an integer upsampling made a 0/1 map (with
nearest_mode floor or ceil: torch's asymmetric/floor; :func:`nearest_matrix` picks the rows onnxruntime
picks, checked on every size pair up to 36 -> 60 and scales 0.3 .. 2.5)."""


@dataclass(frozen=True)
class LinearMaps:
    """The per-axis matrices of a linear resize: ``rows`` ``[M, H]`` (None for a 1-D map) and
    ``cols`` ``[N, W]`` (or ``[N, L]``)."""

    rows: np.ndarray | None
    cols: np.ndarray


def linear_matrix(n_in: int, n_out: int, scale: float, transform: str) -> np.ndarray:
    """``[n_out, n_in]``: ONNX linear interpolation along one axis (the module docstring's rule)."""
    coord = np.clip(TRANSFORMS[transform](np.arange(n_out, dtype=np.float64), scale, n_in, n_out), 0.0, n_in - 1)
    low = np.minimum(np.floor(coord).astype(np.int64), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    frac = coord - low
    matrix = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(matrix, (rows, low), 1.0 - frac)
    np.add.at(matrix, (rows, high), frac)
    return matrix


def nearest_matrix(n_in: int, n_out: int, scale: float, transform: str, rounding: str) -> np.ndarray:
    """``[n_out, n_in]``: ONNX nearest resizing along one axis, one 1 per row at
    ``clamp(rounding(transform(i)), 0, n_in - 1)``, the coordinate computed in float32 as onnxruntime
    does (a size of 2 from 14: ``1 / float32(2 / 14)`` is 6.9999995, whose floor picks row 6, not 7)."""
    coord = TRANSFORMS[transform](np.arange(n_out, dtype=np.float32), np.float32(scale), np.float32(n_in),
                                  np.float32(n_out))
    picked = np.clip(ROUNDING[rounding](coord), 0, n_in - 1).astype(np.int64)
    matrix = np.zeros((n_out, n_in))
    matrix[np.arange(n_out), picked] = 1.0
    return matrix


def is_linear(node: gs.Node) -> bool:
    """A default-domain Resize/Upsample in linear (or, Upsample-1's name, bilinear) mode, or a nearest one
    that is not an integer upsampling (`resize-nearest` keeps those; any other scale or size is a 0/1 map)."""
    if node.op not in RESAMPLE_OPS or node.domain not in (None, "", "ai.onnx"):
        return False
    mode = str(attr(node, "mode", "nearest"))
    return mode in ("linear", "bilinear") or (mode == "nearest" and isinstance(nearest_factors(node), Rejected))


def linear_maps(node: gs.Node) -> LinearMaps | Rejected:
    """The matrices of a linear (or non-integer nearest) Resize/Upsample of a ``[1, C, L]`` /
    ``[1, C, H, W]`` map's spatial axes, or why it is not one this pass rewrites."""
    x_shape, y_shape = static_shape(node.inputs[0]), static_shape(node.outputs[0])
    if x_shape is None or y_shape is None:
        return Rejected("the input or output shape is not static", "fix the input shapes with --input-shape")
    if len(x_shape) not in (3, 4) or x_shape[0] != 1:
        return Rejected(f"{node.op} of {list(x_shape)}", "only [1, C, L] and [1, C, H, W] feature maps are resized")
    nearest = str(attr(node, "mode", "nearest")) == "nearest"
    if any(int(y_shape[a]) != int(x_shape[a]) for a in (0, 1)):
        return Rejected(f"{node.op} of the batch or channel axis ({list(x_shape)} -> {list(y_shape)})",
                        NEAREST_HINT if nearest else LINEAR_HINT)
    transform = (str(attr(node, "coordinate_transformation_mode", "half_pixel")) if node.op == "Resize"
                 else "asymmetric")        # Upsample: x_in = x_out / scale
    rounding = str(attr(node, "nearest_mode", "round_prefer_floor")) if node.op == "Resize" else "floor"
    if nearest and (transform not in NEAREST_TRANSFORMS or rounding not in ("floor", "ceil")):
        return Rejected(f"nearest {node.op} with coordinate_transformation_mode '{transform}' and nearest_mode "
                        f"'{rounding}' at scale {'x'.join(f'{y}/{x}' for x, y in zip(x_shape[2:], y_shape[2:]))} "
                        "(not an integer upsampling; onnxruntime rounds its float32 coordinates only in "
                        "floor/ceil mode with asymmetric, half_pixel, pytorch_half_pixel or align_corners the "
                        "way this compiler reproduces)", NEAREST_HINT)
    if not nearest and transform not in LINEAR_TRANSFORMS:
        return Rejected(f"linear {node.op} with coordinate_transformation_mode '{transform}'", LINEAR_HINT)
    if str(attr(node, "keep_aspect_ratio_policy", "stretch")) != "stretch":
        return Rejected(f"keep_aspect_ratio_policy '{attr(node, 'keep_aspect_ratio_policy')}'", LINEAR_HINT)
    scales, sizes, unknown = scales_and_sizes(node, len(x_shape))
    if unknown:
        return Rejected(unknown, "the scale factors must be constants (scale_factor=2, or a fixed size)")
    shrinks = any(int(y_shape[a]) < int(x_shape[a]) for a in range(2, len(x_shape)))
    if int(attr(node, "antialias", 0)) and shrinks:
        return Rejected("antialiased linear downscaling", LINEAR_HINT)
    if transform == "align_corners" and not nearest and any(int(y_shape[a]) == 1 < int(x_shape[a]) for a in range(2, len(x_shape))):
        return Rejected("align_corners resizing to length 1 (the coordinate divides by zero: onnxruntime and the "
                        "ONNX reference compute different values)", LINEAR_HINT)
    matrices = []
    for a in range(2, len(x_shape)):
        n_in, n_out = int(x_shape[a]), int(y_shape[a])
        scale = (float(scales[a]) if scales is not None and sizes is None
                 else float(np.float32(n_out) / np.float32(n_in)) if nearest else n_out / n_in)
        matrices.append(nearest_matrix(n_in, n_out, scale, transform, rounding) if nearest
                        else linear_matrix(n_in, n_out, scale, transform))
    return LinearMaps(matrices[0], matrices[1]) if len(matrices) == 2 else LinearMaps(None, matrices[0])


@register
class ResizeLinear(Pass):
    """Rewrite linear Resize/Upsample nodes into separable grouped convs (module docstring)."""

    name = "resize-linear"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        rewritten = 0
        for node in list(graph.nodes):
            if not is_linear(node):
                continue
            found = linear_maps(node)
            if not isinstance(found, LinearMaps):
                continue
            x, y = node.inputs[0], node.outputs[0]
            origin = origin_of(model, node)
            set_tensors(node.outputs, [])
            for made in separable_map(graph, names, x, y, found.rows, found.cols, node.name):
                set_origin(model, made, origin)
                if made.op == "Conv":
                    mark_fixed(model, made)
            rewritten += 1
        if rewritten:
            drop_unused(graph, toposort=True)
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})
