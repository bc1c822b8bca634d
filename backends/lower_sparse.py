"""Dense or sparse weights, per layer: the choice `lower` makes for every ONNX Conv and Gemm.

Both forms compute the same bits (docs/lir.md, "Sparse ops"); they differ in bytes and cycles:

- bytes: dense ``2 * N * K`` (every weight), sparse ``4 * nnz + 2 * (N + 1)`` (value + index per
  stored weight, one pointer per output + 1); the biases are the same in both;
- cycles: :func:`transpiler.lir.cost.step_cycles` of the dense and the sparse step (the sparse
  kernels pay ~1.5x per stored weight for the index, and the same per-output costs).

``lower{sparse=...}``:

- ``never``: dense everywhere.
- ``always``: sparse wherever the layer can be stored sparse (at most 65535 stored weights, u16
  indices; :func:`sparse_limit` says why not otherwise), whatever it costs.
- ``auto`` (default): what a user with a FRAM budget wants. A layer goes sparse when that saves
  bytes (so its density is below about 0.5) and it is predicted at most ``sparse-max-slowdown``
  (1.5) times slower than dense; when the model's dense weights would not leave room in the FRAM
  budget (:func:`fram_is_tight`), saving bytes is enough, because a model that does not fit never
  runs, however fast its kernels are.

Every decision is recorded (:class:`StorageChoice.record`) in the stats of `lower` under
``weight_storage``: the layer, dense/sparse, density, stored weights, both byte counts, both cycle
predictions and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from transpiler.lir import kernels
from transpiler.lir.cost import step_cycles
from transpiler.lir.ir import AttrValue, Buffer, Program, Step

MODES = ("auto", "never", "always")
FRAM_WEIGHT_SHARE = 0.9
"""The FRAM budget counts as tight when the dense weights and biases alone would take more than this
share of it (code, descriptors and FRAM activations need the rest)."""


@dataclass(frozen=True)
class StorageChoice:
    """The storage of one layer's weights and why."""

    sparse: bool
    reason: str
    record: dict[str, Any]


def dense_bytes(w: np.ndarray) -> int:
    """Bytes of the dense int16 weights."""
    return 2 * int(w.size)


def sparse_bytes(w: np.ndarray) -> int:
    """Bytes of the compressed weights: values and indices (2 bytes each per stored weight, at least
    one stored) and the pointer (2 bytes per output + 1)."""
    return 4 * max(int(np.count_nonzero(w)), 1) + 2 * (int(w.shape[0]) + 1)


def _dilation(attrs: Mapping[str, AttrValue]) -> tuple[int, int]:
    """A conv's dilation attribute (1, 1 when absent or not a pair)."""
    d = attrs.get("dilation", [1, 1])
    if isinstance(d, list) and len(d) == 2 and all(isinstance(v, int) for v in d):
        return int(d[0]), int(d[1])
    return 1, 1


def sparse_limit(op: str, w: np.ndarray, x_shape: Sequence[int],
                 dilation: Sequence[int] = (1, 1)) -> str | None:
    """Why the layer cannot be stored sparse (None: it can). ``op`` is the dense op, ``dilation``
    a conv's."""
    nnz = max(int(np.count_nonzero(w)), 1)
    if nnz > kernels.SPARSE_INDEX_MAX:
        return f"{nnz} non-zero weights exceed the {kernels.SPARSE_INDEX_MAX} that u16 pointers address"
    per_row = int(np.prod(w.shape[1:]))
    if op == "fc" and per_row > kernels.FC_SPARSE_K_MAX:
        return f"K = {per_row} inputs exceed the {kernels.FC_SPARSE_K_MAX} that u16 byte steps reach"
    if op == "conv":
        _, h, wd = x_shape
        positions = kernels.conv_sparse_positions(int(w.shape[1]), w.shape[2:], (h, wd), dilation)
        if positions > 65535:
            return (f"one group's input (grown to the dilated kernel) has {positions} elements; "
                    f"fx_conv_sparse indexes it with uint16 (at most 65535)")
    return None


def sparse_step(op: str, w: np.ndarray, attrs: Mapping[str, AttrValue], x_shape: Sequence[int]
                ) -> tuple[str, dict[str, np.ndarray], dict[str, AttrValue], list[str]]:
    """The sparse op for the dense ``op``, its constant arrays by role, its attributes and the roles
    of its weight inputs in order (the step's inputs are x, those, then the bias).

    ``w`` is the quantised dense weight ([N, K] or [Cout, Cin/g, kh, kw]) and ``x_shape`` the
    layer's input shape (conv offsets count in it); the returned arrays are ``values`` (i16),
    ``deltas``/``offsets`` and ``rowptr``/``chanptr`` (u16).
    """
    if op == "fc":
        values, index, ptr = kernels.csr_from_dense(w)
        return "fc_sparse", {"values": values, "deltas": index, "rowptr": ptr}, dict(attrs), \
            ["values", "deltas", "rowptr"]
    values, index, ptr = kernels.conv_sparse_from_dense(w, x_shape[1:], _dilation(attrs))
    new_attrs = dict(attrs)
    new_attrs["kernel"] = [int(w.shape[2]), int(w.shape[3])]
    return "conv_sparse", {"values": values, "offsets": index, "chanptr": ptr}, new_attrs, \
        ["values", "offsets", "chanptr"]


def _scratch_step(op: str, x_shape: Sequence[int], y_shape: Sequence[int], w: np.ndarray,
                  attrs: Mapping[str, AttrValue], sparse: bool) -> tuple[Program, Step]:
    """A one-step program with the layer's shapes and weights, for the cost model."""
    p = Program("scratch")
    p.add(Buffer("x", "i16", tuple(int(d) for d in x_shape)))
    p.add(Buffer("y", "i16", tuple(int(d) for d in y_shape)))
    n = int(w.shape[0])
    p.add(Buffer("b", "i32", (n,), data=np.zeros(n, dtype=np.int32)))
    if not sparse:
        p.add(Buffer("w", "i16", tuple(int(d) for d in w.shape), data=w))
        return p, Step(op, "layer", ["x", "w", "b"], ["y"], dict(attrs))
    sop, arrays, sattrs, roles = sparse_step(op, w, attrs, x_shape)
    for role in roles:
        a = arrays[role]
        p.add(Buffer(role, "i16" if role == "values" else "u16", (int(a.size),), data=a))
    return p, Step(sop, "layer", ["x", *roles, "b"], ["y"], sattrs)


def predicted_cycles(op: str, x_shape: Sequence[int], y_shape: Sequence[int], w: np.ndarray,
                     attrs: Mapping[str, AttrValue], sparse: bool) -> float:
    """Cycles the cost model predicts for the dense or the sparse form of the layer."""
    p, step = _scratch_step(op, x_shape, y_shape, w, attrs, sparse)
    return step_cycles(p, step)


def fram_is_tight(dense_weight_bytes: int, fram_bytes: int | None) -> bool:
    """Whether the dense weights alone would take more than FRAM_WEIGHT_SHARE of the budget."""
    return fram_bytes is not None and dense_weight_bytes > FRAM_WEIGHT_SHARE * fram_bytes


def choose(mode: str, max_slowdown: float, fram_tight: bool, step_name: str, op: str, w: np.ndarray,
           x_shape: Sequence[int], y_shape: Sequence[int], attrs: Mapping[str, AttrValue]) -> StorageChoice:
    """Dense or sparse for one layer (see the module docstring); ``op`` is "fc" or "conv" and ``w``
    the quantised weights."""
    if mode not in MODES:
        raise ValueError(f"sparse={mode!r}: expected one of {', '.join(MODES)}")
    nnz = int(np.count_nonzero(w))
    record: dict[str, Any] = {
        "step": step_name, "op": op, "weights": int(w.size), "nnz": nnz,
        "density": round(nnz / w.size, 4) if w.size else 0.0,
        "dense_bytes": dense_bytes(w), "sparse_bytes": sparse_bytes(w),
        "dense_cycles": round(predicted_cycles(op, x_shape, y_shape, w, attrs, False)),
        "sparse_cycles": None,
    }
    limit = sparse_limit(op, w, x_shape, _dilation(attrs))
    if limit is None:
        record["sparse_cycles"] = round(predicted_cycles(op, x_shape, y_shape, w, attrs, True))

    def done(sparse: bool, reason: str) -> StorageChoice:
        record["storage"] = "sparse" if sparse else "dense"
        record["bytes"] = record["sparse_bytes"] if sparse else record["dense_bytes"]
        record["reason"] = reason
        return StorageChoice(sparse, reason, record)

    if mode == "never":
        return done(False, "sparse=never")
    if limit is not None:
        return done(False, f"cannot be sparse: {limit}")
    if mode == "always":
        return done(True, "sparse=always")
    saved = record["dense_bytes"] - record["sparse_bytes"]
    if saved <= 0:
        return done(False, f"sparse would not save bytes (density {record['density']:.2f})")
    slowdown = record["sparse_cycles"] / max(record["dense_cycles"], 1)
    if slowdown <= max_slowdown:
        return done(True, f"saves {saved} B at {slowdown:.2f}x the dense cycles")
    if fram_tight:
        return done(True, f"saves {saved} B; {slowdown:.2f}x slower, but the dense weights do not fit "
                          f"the FRAM budget")
    return done(False, f"{slowdown:.2f}x slower than dense (limit {max_slowdown}x) and the dense "
                       f"weights fit the FRAM budget")
