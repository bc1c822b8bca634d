"""The typed annotation table that travels with a model through the ONNX-level passes.

Passes record facts that plain ONNX cannot hold (sparsity masks, Q formats, exit points, split
provenance) here. The table is keyed by a *target* (a tensor or node name) and an annotation *kind*;
each kind has a declared JSON type, checked on every write and on load. On save it is written as JSON
into the model's ``metadata_props`` under :data:`METADATA_KEY` (onnx-graphsurgeon drops metadata, so
:class:`transpiler.model.OnnxModel` keeps it beside the graph). It is parsed with ``json``, never
``eval``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Iterator

from transpiler.errors import InputError

METADATA_KEY = "freeml_tx.annotations"
SCHEMA_VERSION = 1

JsonType = type | tuple[type, ...]


@dataclass(frozen=True)
class AnnotationKind:
    """One kind of annotation: its name, the JSON type of its value and what it means."""

    name: str
    value_type: JsonType
    doc: str


_KINDS: dict[str, AnnotationKind] = {}


def register_kind(name: str, value_type: JsonType, doc: str) -> AnnotationKind:
    """Declare an annotation kind (idempotent for an identical declaration)."""
    kind = AnnotationKind(name, value_type, doc)
    old = _KINDS.get(name)
    if old is not None and old != kind:
        raise ValueError(f"annotation kind {name!r} declared twice with different types")
    _KINDS[name] = kind
    return kind


def kinds() -> dict[str, AnnotationKind]:
    return dict(_KINDS)


register_kind("qformat", (int, list), "fractional bits of a Q15 tensor: an int (per tensor) or a list (per channel)")
register_kind("calib-range", list, "[min, max] of a tensor seen on calibration data")
register_kind("sparsity", dict, "pruning record of a weight: {density, nnz, mask (base64 bitmap), fragile}")
register_kind("exit-point", int, "index of a gNet exit placed after this node/tensor")
register_kind("split-from", str, "name of the original node that a separated (low-rank) node replaces")
register_kind("origin", list, "names of the original ONNX nodes this node was made from")
register_kind("classifier-tail", dict, "what the removed classifier tail did: {kind, labels, scores_output}")
register_kind("fixed-weights", bool, "a weight a normalize pass built exactly (a crop's one-hot kernel, an "
              "interpolation's weights): training keeps it and SparseComp leaves it alone")
register_kind("feature-shift", dict, "extra fractional bits per feature of a graph input: {axis, shifts} (passes/quantize.py)")
CLASS_SCORES = "class-scores"
register_kind(CLASS_SCORES, str, "a graph output whose argmax is the class output instead of the scores' argmax "
              "(a multi-class SVC's votes, both rows of a binary LinearSVC that outputs its decision column); lower "
              "reads it for the class and makes it no port")
REACHABLE_RANGE = "reachable-range"
register_kind(REACHABLE_RANGE, bool, "quantize gives the tensor a format that holds every value its inputs' formats "
              "can (a square grows like the square of an input beyond its calibrated range)")
register_kind("gnet", dict, "gNet head description: exits, pool size, feature offsets")
register_kind("fixed-batch", dict, "why batch-one kept a fixed batch > 1: {batch, problem}")


def _check(kind_name: str, value: Any) -> None:
    kind = _KINDS.get(kind_name)
    if kind is None:
        raise KeyError(f"unknown annotation kind {kind_name!r}; declare it with register_kind()")
    if isinstance(value, bool) and kind.value_type is int:
        raise TypeError(f"annotation {kind_name!r} expects int, got bool")
    if not isinstance(value, kind.value_type):
        raise TypeError(f"annotation {kind_name!r} expects {kind.value_type}, got {type(value).__name__}")
    json.dumps(value)  # must be JSON-serialisable


class Annotations:
    """target name -> {kind -> value}; values are JSON data of the declared type."""

    def __init__(self) -> None:
        self._table: dict[str, dict[str, Any]] = {}

    def set(self, target: str, kind: str, value: Any) -> None:
        _check(kind, value)
        self._table.setdefault(target, {})[kind] = copy.deepcopy(value)

    def get(self, target: str, kind: str, default: Any = None) -> Any:
        return copy.deepcopy(self._table.get(target, {}).get(kind, default))

    def has(self, target: str, kind: str) -> bool:
        return kind in self._table.get(target, {})

    def remove(self, target: str, kind: str | None = None) -> None:
        if kind is None:
            self._table.pop(target, None)
        else:
            self._table.get(target, {}).pop(kind, None)
            if not self._table.get(target, True):
                del self._table[target]

    def rename(self, old: str, new: str) -> None:
        if old in self._table:
            self._table[new] = {**self._table.get(new, {}), **self._table.pop(old)}

    def targets(self, kind: str | None = None) -> list[str]:
        return sorted(t for t, kv in self._table.items() if kind is None or kind in kv)

    def items(self) -> Iterator[tuple[str, str, Any]]:
        for target in sorted(self._table):
            for kind in sorted(self._table[target]):
                yield target, kind, copy.deepcopy(self._table[target][kind])

    def copy(self) -> "Annotations":
        new = Annotations()
        new._table = copy.deepcopy(self._table)
        return new

    def __len__(self) -> int:
        return sum(len(kv) for kv in self._table.values())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Annotations) and self._table == other._table

    def to_json(self) -> str:
        return json.dumps({"version": SCHEMA_VERSION, "annotations": self._table}, sort_keys=True,
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, source: str | None = None) -> "Annotations":
        try:
            data = json.loads(text)
            if data.get("version") != SCHEMA_VERSION:
                raise ValueError(f"schema version {data.get('version')!r}, expected {SCHEMA_VERSION}")
            table = data["annotations"]
            new = cls()
            for target, kv in table.items():
                for kind, value in kv.items():
                    new.set(target, kind, value)
            return new
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"the freeml-tx annotations in the model metadata are unreadable: {exc}",
                             hint=f"remove the '{METADATA_KEY}' metadata entry or re-run the pipeline "
                                  f"from the original model") from exc
