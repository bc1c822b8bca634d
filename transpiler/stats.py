"""Model statistics and the per-pass report the pass manager returns.

At the ONNX level: nodes, params (elements of floating-point initializers and Constant nodes),
non-zeros among them, and their size stored as float32. At the LIR level: steps, elements of the
constant weight buffers (those with a Q format), their non-zeros, and the bytes of every constant
buffer as stored on the device.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel


@dataclass(frozen=True)
class ModelStats:
    """Figures of one model; ``level`` is "onnx" (weight_bytes as float32) or "lir" (as stored)."""

    nodes: int
    params: int
    nonzeros: int
    weight_bytes: int
    level: str = "onnx"


def onnx_stats(model: OnnxModel) -> ModelStats:
    """Figures of an ONNX-level model (main graph; Constant nodes count as weights)."""
    arrays: list[np.ndarray] = []
    for tensor in model.graph.tensors().values():
        if isinstance(tensor, gs.Constant):
            arrays.append(np.asarray(tensor.values))
    for node in model.graph.nodes:
        value = node.attrs.get("value") if node.op == "Constant" else None
        if isinstance(value, gs.Constant):
            arrays.append(np.asarray(value.values))
    floats = [a for a in arrays if np.issubdtype(a.dtype, np.floating)]
    params = sum(int(a.size) for a in floats)
    nonzeros = sum(int(np.count_nonzero(a)) for a in floats)
    return ModelStats(len(model.graph.nodes), params, nonzeros, 4 * params, "onnx")


def lir_stats(program: Any) -> ModelStats:
    """Figures of a LIR Program (transpiler.lir.ir.Program)."""
    weights = [b for b in program.buffers.values() if b.is_const and b.q is not None]
    params = sum(b.size for b in weights)
    nonzeros = sum(int(np.count_nonzero(b.data)) for b in weights)
    stored = sum(b.nbytes for b in program.buffers.values() if b.is_const and b.alias is None)
    return ModelStats(len(program.steps), params, nonzeros, stored, "lir")


def model_stats(model: Any) -> ModelStats:
    """Figures of an OnnxModel or a LIR Program."""
    if isinstance(model, OnnxModel):
        return onnx_stats(model)
    return lir_stats(model)


@dataclass
class PassRecord:
    """What one pass of a pipeline did."""

    index: int
    name: str
    spec: str
    level: str
    changed: bool
    stats: ModelStats
    ms: float
    pass_stats: dict[str, Any] = field(default_factory=dict)
    verified: str | None = None


@dataclass
class PipelineReport:
    """The result of running a pipeline: the input's figures and one record per pass that ran."""

    pipeline: str
    input: ModelStats
    records: list[PassRecord] = field(default_factory=list)
    stopped_after: str | None = None

    def __getitem__(self, name: str) -> PassRecord:
        """The (last) record of the pass called ``name``."""
        for record in reversed(self.records):
            if record.name == name:
                return record
        raise KeyError(f"no pass '{name}' ran; ran: {', '.join(self.names()) or 'none'}")

    def __contains__(self, name: object) -> bool:
        return any(r.name == name for r in self.records)

    def names(self) -> list[str]:
        return [r.name for r in self.records]

    @property
    def total_ms(self) -> float:
        return sum(r.ms for r in self.records)

    def to_json(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "input": asdict(self.input),
                "passes": [jsonable(asdict(r)) for r in self.records],
                "stopped_after": self.stopped_after, "total_ms": round(self.total_ms, 3)}

    def table(self) -> str:
        """A fixed-width table: one row for the input and one per pass, then each pass's own figures."""
        header = ("#", "pass", "changed", "nodes", "params", "non-zeros", "weight bytes", "ms")
        rows = [("", "(input)", "", *_figures(self.input), "")]
        for r in self.records:
            rows.append((str(r.index), r.name, "yes" if r.changed else "no", *_figures(r.stats),
                         f"{r.ms:.1f}"))
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        left = {1, 2}
        lines = ["  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in
                           enumerate(zip(row, widths))).rstrip() for row in [header, *rows]]
        if any(r.stats.level == "onnx" for r in self.records) or self.input.level == "onnx":
            lines.append("weight bytes: as float32 at the ONNX level, as stored at the LIR level")
        for r in self.records:
            extra = {**r.pass_stats, **({"verified": r.verified} if r.verified else {})}
            if extra:
                lines.append(f"{r.index} {r.name}:")
                lines.extend(f"    {key}: {_short(value)}" for key, value in extra.items())
        if self.stopped_after:
            lines.append(f"stopped after '{self.stopped_after}'")
        return "\n".join(lines)


def _figures(s: ModelStats) -> tuple[str, str, str, str]:
    return (f"{s.nodes:,}", f"{s.params:,}", f"{s.nonzeros:,}", f"{s.weight_bytes:,}")


def _short(value: Any) -> str:
    """One line for a pass statistic: dicts as ``k=v`` pairs, long text cut at 100 characters."""
    if isinstance(value, dict):
        text = " ".join(f"{k}={_short(v)}" for k, v in value.items())
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(jsonable(value))
    return text if len(text) <= 100 else text[:97] + "..."


def jsonable(value: Any) -> Any:
    """Plain JSON data from stats values (numpy scalars/arrays, tuples, sets)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
