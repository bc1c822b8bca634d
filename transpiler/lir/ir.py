"""LIR data structures: a Program of named buffers and a list of steps.

The text form (transpiler.lir.text / grammar.lark), the verifier (transpiler.lir.verify) and the
numpy interpreter (transpiler.lir.interp) all work on these classes. docs/lir.md is the reference for
the ops, their attributes and their bit-exact fixed-point semantics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DTYPES: dict[str, np.dtype] = {
    "i8": np.dtype("<i1"),
    "i16": np.dtype("<i2"),
    "u16": np.dtype("<u2"),
    "i32": np.dtype("<i4"),
}
SPACES = ("sram", "fram", "hifram")

AttrValue = int | str | list[int]


@dataclass
class Buffer:
    """A named array: an activation (data is None) or a constant (data holds its values).

    q: fractional bits. An int for a per-tensor Q format, a list (one per output channel, axis 0)
    for per-channel weights, None for data with no scale (indices, shifts, pointers).
    space/offset: where plan-memory put it (offset in bytes inside that space); None before.
    alias: this buffer is a view (same bytes, other shape) of the named buffer; it has no storage.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    q: int | list[int] | None = None
    space: str | None = None
    offset: int | None = None
    alias: str | None = None
    data: np.ndarray | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.size * DTYPES[self.dtype].itemsize


@dataclass
class TilePlan:
    """How a step is split for intermittent execution.

    dims: tile extent along the step's tiled axes (for conv: [out channels, rows, cols]; for
    element-wise steps: [elements]). per_commit: tiles run between two progress commits.
    """

    dims: list[int]
    per_commit: int = 1


@dataclass
class Step:
    """One layer: `op` reads `inputs` (buffer names) and writes `outputs`."""

    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, AttrValue] = field(default_factory=dict)
    origin: list[str] = field(default_factory=list)
    tile: TilePlan | None = None


@dataclass
class Port:
    """A program input or output: the ONNX tensor name and the buffer that holds it."""

    onnx_name: str
    buffer: str


@dataclass
class Program:
    """A whole model in LIR."""

    name: str
    buffers: dict[str, Buffer] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    inputs: list[Port] = field(default_factory=list)
    outputs: list[Port] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)

    def add(self, buf: Buffer) -> Buffer:
        if buf.name in self.buffers:
            raise ValueError(f"buffer {buf.name} defined twice")
        self.buffers[buf.name] = buf
        return buf

    def storage_of(self, name: str) -> Buffer:
        """The buffer that owns the bytes of `name` (follows aliases)."""
        buf = self.buffers[name]
        while buf.alias is not None:
            buf = self.buffers[buf.alias]
        return buf
