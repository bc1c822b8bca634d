"""`resize-nearest`: nearest-neighbour upsampling by integer factors in one canonical Resize.

torch writes ``nn.Upsample(scale_factor=2, mode='nearest')`` / ``F.interpolate`` in several forms:
``Upsample`` (opset 9), ``Resize`` with ``scales`` (opset 11, 13, 17; the dynamo exporter with
opset-18 attributes) or with ``sizes`` (``F.interpolate(size=...)``), with coordinate transformation
modes and rounding rules that differ between them. :func:`nearest_factors` decides whether a node
computes exactly ``y[..., i, j] = x[..., i // sh, j // sw]`` (integer replication of the spatial
axes, batch and channels kept): it evaluates the node's own index rule (ONNX's
``coordinate_transformation_mode`` and ``nearest_mode``, then the clamp to the input) on every
output position and compares. What is exact becomes the canonical form; what is not is left for
`check-supported`, which reports the reason :func:`nearest_factors` gives (linear/cubic modes,
non-integer or shrinking scales, modes whose rounding picks other rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import NameSource, attr, const_value, drop_unused, is_empty, new_constant, static_shape

RESAMPLE_OPS = ("Resize", "Upsample")
CANONICAL = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
"""The attributes of the canonical Resize (opset 11+: inputs ``X``, empty ``roi``, constant ``scales``)."""

NEAREST_HINT = ("only nearest-neighbour resizing of the spatial axes by constant scales or sizes is supported "
                "(nn.Upsample(scale_factor=2, mode='nearest'), F.interpolate(..., mode='nearest'))")

TRANSFORMS: dict[str, Callable[[np.ndarray, float, int, int], np.ndarray]] = {
    "half_pixel": lambda x, s, n_in, n_out: (x + 0.5) / s - 0.5,
    "half_pixel_symmetric": lambda x, s, n_in, n_out: (n_in / 2.0) * (1.0 - n_out / (s * n_in)) + (x + 0.5) / s - 0.5,
    "pytorch_half_pixel": lambda x, s, n_in, n_out: (x + 0.5) / s - 0.5 if n_out > 1 else np.zeros_like(x),
    "align_corners": lambda x, s, n_in, n_out: x * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros_like(x),
    "asymmetric": lambda x, s, n_in, n_out: x / s,
    "tf_half_pixel_for_nn": lambda x, s, n_in, n_out: (x + 0.5) / s,
}
"""ONNX Resize's coordinate transformations: output coordinate -> input coordinate."""

ROUNDING: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "round_prefer_floor": lambda v: np.where(v - np.floor(v) == 0.5, np.floor(v), np.floor(v + 0.5)),
    "round_prefer_ceil": lambda v: np.floor(v + 0.5),
    "floor": np.floor,
    "ceil": np.ceil,
}


@dataclass(frozen=True)
class Nearest:
    """A node that replicates each spatial element ``factors[k]`` times along spatial axis ``k``."""

    factors: tuple[int, ...]


@dataclass(frozen=True)
class Rejected:
    """Why a Resize/Upsample is not an exact integer nearest upsampling, and what to do."""

    reason: str
    hint: str


def scales_and_sizes(node: gs.Node, rank: int) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """The node's scales and sizes over all ``rank`` axes (either may be None), or why they are not known."""
    if node.op == "Upsample":
        if "scales" in node.attrs:
            return np.asarray(node.attrs["scales"], dtype=np.float64), None, None
        value = const_value(node.inputs[1]) if len(node.inputs) > 1 else None
        return (None, None, "the scales are computed at run time") if value is None else \
            (np.asarray(value, dtype=np.float64).reshape(-1), None, None)
    # Resize-11+ (normalize brings older models to opset 13): (X, roi, scales, sizes)
    slots = {"scales": 2, "sizes": 3}
    got: dict[str, np.ndarray | None] = {}
    for key, i in slots.items():
        tensor = node.inputs[i] if len(node.inputs) > i else None
        if tensor is None or is_empty(tensor):
            got[key] = None
            continue
        value = const_value(tensor)
        if value is None:
            return None, None, f"the {key} are computed at run time"
        got[key] = np.asarray(value, dtype=np.float64).reshape(-1) if value.size else None
    axes = node.attrs.get("axes")
    if axes is not None:        # opset 18: scales/sizes of the listed axes only
        full_scales, full_sizes = np.ones(rank), None
        listed = [int(a) % rank for a in axes]
        if got.get("scales") is not None:
            full_scales[listed] = got["scales"]
            got["scales"] = full_scales
        if got.get("sizes") is not None:
            shape = static_shape(node.inputs[0])
            full_sizes = np.asarray(shape, dtype=np.float64)
            full_sizes[listed] = got["sizes"]
            got["sizes"] = full_sizes
    return got.get("scales"), got.get("sizes"), None


def nearest_factors(node: gs.Node) -> Nearest | Rejected:
    """Whether ``node`` (Resize or Upsample) is exactly an integer nearest upsampling of the spatial
    axes of a ``[1, C, L]`` / ``[1, C, H, W]`` tensor, with its factors; else why not.

    The index rule is ONNX's: ``i_in = clamp(round(transform(i_out, scale)), 0, n_in - 1)`` with the
    node's coordinate transformation and rounding (opset 11+ defaults; Upsample: ``floor(i_out / scale)``),
    ``scale`` the given scale or, with sizes, ``n_out / n_in``; it must be ``i_out // factor``.
    """
    mode = str(attr(node, "mode", "nearest"))
    if mode != "nearest":
        return Rejected(f"{node.op} in mode '{mode}'", f"{NEAREST_HINT}, and linear resizing (resize-linear); "
                        f"{mode} interpolation is not")
    x_shape, y_shape = static_shape(node.inputs[0]), static_shape(node.outputs[0])
    if x_shape is None or y_shape is None:
        return Rejected("the input or output shape is not static", "fix the input shapes with --input-shape")
    if len(x_shape) not in (3, 4) or x_shape[0] != 1:
        return Rejected(f"{node.op} of {list(x_shape)}", "only [1, C, L] and [1, C, H, W] feature maps are resized")
    rank = len(x_shape)
    scales, sizes, unknown = scales_and_sizes(node, rank)
    if unknown:
        return Rejected(unknown, "the scale factors must be constants (scale_factor=2, or a fixed size)")
    if node.op == "Resize":
        transform = str(attr(node, "coordinate_transformation_mode", "half_pixel"))
        rounding = str(attr(node, "nearest_mode", "round_prefer_floor"))
    else:                       # Upsample (opset 9): floor(i_out / scale)
        transform, rounding = "asymmetric", "floor"
    if transform not in TRANSFORMS or rounding not in ROUNDING:
        return Rejected(f"coordinate_transformation_mode '{transform}' with nearest_mode '{rounding}'",
                        f"{NEAREST_HINT}, without a region of interest")
    if any(int(y_shape[a]) != int(x_shape[a]) for a in (0, 1)):
        return Rejected(f"{node.op} of the batch or channel axis ({list(x_shape)} -> {list(y_shape)})",
                        NEAREST_HINT)
    factors = []
    for a in range(2, rank):
        n_in, n_out = int(x_shape[a]), int(y_shape[a])
        if n_out < n_in or n_out % n_in:
            return Rejected(f"scale {n_out}/{n_in} of axis {a} ({list(x_shape)} -> {list(y_shape)}) is not "
                            "an integer >= 1", NEAREST_HINT)
        factor = n_out // n_in
        scale = float(scales[a]) if scales is not None and sizes is None else n_out / n_in
        out_idx = np.arange(n_out, dtype=np.float64)
        picked = np.clip(ROUNDING[rounding](TRANSFORMS[transform](out_idx, scale, n_in, n_out)), 0, n_in - 1)
        if not np.array_equal(picked.astype(np.int64), np.arange(n_out) // factor):
            return Rejected(f"coordinate_transformation_mode '{transform}' with nearest_mode '{rounding}' at "
                            f"scale {scale:g} does not repeat each element {factor} times (axis {a})",
                            f"{NEAREST_HINT}; export mode='nearest' with an integer scale_factor "
                            "(torch writes asymmetric/floor)")
        factors.append(factor)
    return Nearest(tuple(factors))


def is_canonical(node: gs.Node) -> bool:
    """The canonical form: Resize(X, '', scales=[1, 1, f...]) {nearest, asymmetric, floor}, no other attribute."""
    if node.op != "Resize" or len(node.inputs) != 3 or not is_empty(node.inputs[1]):
        return False
    if {k: str(attr(node, k)) for k in node.attrs} != CANONICAL:
        return False
    scales = const_value(node.inputs[2])
    return scales is not None and isinstance(nearest_factors(node), Nearest)


@register
class ResizeNearest(Pass):
    """Write every exact integer nearest upsampling as one canonical Resize.

    Before -> after::

        y = Upsample(x: [1,C,H,W], scales=[1,1,2,2]) {mode=nearest}                  (opset 9)
        y = Resize(x, roi, scales=[1,1,2,2]) {nearest, asymmetric, floor}            (legacy 11)
        y = Resize(x, '', '', sizes=[1,C,2H,3W]) {nearest, asymmetric, floor}        (F.interpolate size=)
        y = Resize(x, '', scales=[2,2]) {axes=[2,3], antialias=0, ..., nearest, half_pixel,
                                         round_prefer_floor}                         (dynamo style)
        ->
        y = Resize(x, '', scales=[1,1,sh,sw]) {mode=nearest, coordinate_transformation_mode=asymmetric,
                                               nearest_mode=floor}

    Nodes that :func:`nearest_factors` rejects (linear, cubic, non-integer factors, index rules that
    are not replication) stay as they are; `check-supported` reports them with that reason.
    """

    name = "resize-nearest"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        rewritten = 0
        for node in list(graph.nodes):
            if node.op not in RESAMPLE_OPS or node.domain not in (None, "", "ai.onnx") or is_canonical(node):
                continue
            found = nearest_factors(node)
            if not isinstance(found, Nearest):
                continue
            scales = np.array([1.0, 1.0, *found.factors], dtype=np.float32)
            x = node.inputs[0]
            node.op = "Resize"
            node.attrs.clear()
            node.attrs.update(CANONICAL)
            node.inputs.clear()
            node.inputs.extend([x, gs.Variable.empty(), new_constant(names, f"{node.name}_scales", scales)])
            rewritten += 1
        if rewritten:
            drop_unused(graph)
        return PassResult(model, bool(rewritten), {"rewritten": rewritten})


def upsample_factors(node: gs.Node) -> Sequence[int]:
    """The factors of a node in the canonical form (for `lower`); raises ValueError otherwise."""
    found = nearest_factors(node)
    if not isinstance(found, Nearest):
        raise ValueError(found.reason)
    return found.factors
