"""Structural equality of LIR programs, with constant data compared by dtype, shape and values.

``Program.__eq__`` (the dataclass one) cannot compare numpy arrays; these functions can, and say
what differs. Buffer order and step order count (they are part of the text form); meta order does
not (a dict). Integers compare by value whatever their type (int, numpy), lists equal tuples of the same
ints; an int never equals a list or a string.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from transpiler.lir.ir import Buffer, Port, Program, Step


def _norm(v: object) -> object:
    """Integers of any type -> int, sequences -> lists; everything else unchanged."""
    if isinstance(v, (np.integer, int)) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_norm(x) for x in v]
    return v


def _same(a: object, b: object) -> bool:
    na, nb = _norm(a), _norm(b)
    return type(na) is type(nb) and na == nb


def _ports_diff(kind: str, a: Sequence[Port], b: Sequence[Port]) -> list[str]:
    pa = [(p.onnx_name, p.buffer) for p in a]
    pb = [(p.onnx_name, p.buffer) for p in b]
    return [] if pa == pb else [f"{kind}: {pa} != {pb}"]


def buffer_diff(a: Buffer, b: Buffer) -> list[str]:
    """What differs between two buffers (empty when equal)."""
    out: list[str] = []
    for field in ("name", "dtype", "q", "space", "offset", "alias"):
        va, vb = getattr(a, field), getattr(b, field)
        if not _same(va, vb):
            out.append(f"buffer %{a.name}: {field} {va!r} != {vb!r}")
    if tuple(a.shape) != tuple(b.shape):
        out.append(f"buffer %{a.name}: shape {list(a.shape)} != {list(b.shape)}")
    if (a.data is None) != (b.data is None):
        out.append(f"buffer %{a.name}: constant in one program only")
    elif a.data is not None and b.data is not None:
        da, db = np.asarray(a.data), np.asarray(b.data)
        if da.dtype != db.dtype:
            out.append(f"buffer %{a.name}: data dtype {da.dtype} != {db.dtype}")
        elif da.shape != db.shape:
            out.append(f"buffer %{a.name}: data shape {da.shape} != {db.shape}")
        elif not np.array_equal(da, db):
            n = int(np.count_nonzero(da != db))
            out.append(f"buffer %{a.name}: {n} data values differ")
    return out


def step_diff(index: int, a: Step, b: Step) -> list[str]:
    """What differs between two steps at the same index (empty when equal)."""
    out: list[str] = []
    where = f"step {index} {a.name!r}"
    for field in ("op", "name", "inputs", "outputs", "origin"):
        if getattr(a, field) != getattr(b, field):
            out.append(f"{where}: {field} {getattr(a, field)!r} != {getattr(b, field)!r}")
    if set(a.attrs) != set(b.attrs) or any(not _same(a.attrs[k], b.attrs[k]) for k in a.attrs):
        out.append(f"{where}: attrs {a.attrs!r} != {b.attrs!r}")
    ta = None if a.tile is None else (a.tile.dims, a.tile.per_commit)
    tb = None if b.tile is None else (b.tile.dims, b.tile.per_commit)
    if not _same(ta, tb):
        out.append(f"{where}: tile {a.tile!r} != {b.tile!r}")
    return out


def program_diff(a: Program, b: Program) -> list[str]:
    """Every difference between two programs, one line each (empty when equal)."""
    out: list[str] = []
    if a.name != b.name:
        out.append(f"name {a.name!r} != {b.name!r}")
    if a.meta != b.meta:
        out.append(f"meta {a.meta!r} != {b.meta!r}")
    out += _ports_diff("inputs", a.inputs, b.inputs)
    out += _ports_diff("outputs", a.outputs, b.outputs)
    if list(a.buffers) != list(b.buffers):
        out.append(f"buffer names/order {list(a.buffers)} != {list(b.buffers)}")
    for name in a.buffers.keys() & b.buffers.keys():
        out += buffer_diff(a.buffers[name], b.buffers[name])
    if len(a.steps) != len(b.steps):
        out.append(f"{len(a.steps)} steps != {len(b.steps)} steps")
    for i, (sa, sb) in enumerate(zip(a.steps, b.steps)):
        out += step_diff(i, sa, sb)
    return out


def programs_equal(a: Program, b: Program) -> bool:
    """Whether two programs are equal, constant data included (dtype, shape and values)."""
    return not program_diff(a, b)
