"""Annotations survive save -> load (onnx-graphsurgeon drops metadata; the wrapper keeps them)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import transpiler as fx
from transpiler.annotations import METADATA_KEY, Annotations
from transpiler.errors import InputError

FLOATS = st.floats(allow_nan=False, allow_infinity=False, width=64)
TEXT = st.text(max_size=10)
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), FLOATS, TEXT)
JSON = st.recursive(JSON_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(TEXT, inner, max_size=3)),
                    max_leaves=8)

# One strategy per declared annotation kind, producing values of its declared JSON type.
KIND_VALUES = {
    "qformat": st.one_of(st.integers(0, 15), st.lists(st.integers(0, 15), max_size=6)),
    "calib-range": st.lists(FLOATS, min_size=2, max_size=2),
    "sparsity": st.fixed_dictionaries({"density": FLOATS, "nnz": st.integers(0, 10**6), "mask": TEXT,
                                       "fragile": st.booleans()}),
    "exit-point": st.integers(0, 8),
    "split-from": TEXT,
    "origin": st.lists(TEXT, max_size=4),
    "classifier-tail": st.dictionaries(TEXT, JSON, max_size=3),
    "gnet": st.dictionaries(TEXT, JSON, max_size=3),
}
ENTRY = st.sampled_from(sorted(KIND_VALUES)).flatmap(lambda kind: st.tuples(st.just(kind), KIND_VALUES[kind]))
TARGETS = st.one_of(st.sampled_from(["fc", "bias", "relu", "W", "B", "x", "y", "graph"]), TEXT)
TABLES = st.lists(st.tuples(TARGETS, ENTRY), max_size=12)


def build(entries: list[tuple[str, tuple[str, Any]]]) -> Annotations:
    table = Annotations()
    for target, (kind, value) in entries:
        table.set(target, kind, value)
    return table


@pytest.fixture(scope="module")
def mlp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_models import tiny_proto

    path = tmp_path_factory.mktemp("annotations") / "mlp.onnx"
    onnx.save(tiny_proto("mlp"), str(path))
    return path


@settings(max_examples=30, deadline=None)
@given(TABLES)
def test_annotations_round_trip_through_save_and_load(mlp_path: Path, entries: list[Any]) -> None:
    model = fx.load(mlp_path)
    model.annotations = build(entries)
    model.metadata["user.key"] = "kept too"
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "annotated.onnx"
        fx.save(model, out)
        again = fx.load(out)
    assert again.annotations == model.annotations
    assert list(again.annotations.items()) == list(model.annotations.items())
    assert again.metadata["user.key"] == "kept too"


def test_annotations_survive_graph_edits_and_copies(mlp_path: Path, tmp_path: Path) -> None:
    model = fx.load(mlp_path)
    model.annotations.set("fc", "origin", ["fc"])
    model.annotations.set("W", "qformat", [14, 13, 15])
    copy = model.copy()
    copy.graph.nodes.pop()  # drop Relu: gs rebuilds the graph, the table stays beside it
    z = copy.graph.tensors()["z"]
    z.dtype, z.shape = np.float32, ["N", 3]
    copy.graph.outputs = [z]
    copy.graph.cleanup().toposort()
    fx.save(copy, tmp_path / "edited.onnx")
    assert fx.load(tmp_path / "edited.onnx").annotations == model.annotations
    assert len(model.graph.nodes) == 3  # the copy was deep


def test_values_are_type_checked() -> None:
    table = Annotations()
    with pytest.raises(TypeError):
        table.set("W", "qformat", "fifteen")
    with pytest.raises(TypeError):
        table.set("n", "exit-point", True)
    with pytest.raises(KeyError):
        table.set("n", "no-such-kind", 1)


@pytest.mark.parametrize("text, words", [
    ("{not json", "unreadable"),
    ('{"version": 99, "annotations": {}}', "schema version 99"),
    ('{"version": 1, "annotations": {"W": {"qformat": "x"}}}', "qformat"),
])
def test_unreadable_annotations_are_an_input_error(mlp_path: Path, tmp_path: Path, text: str,
                                                   words: str) -> None:
    proto = onnx.load(str(mlp_path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, text
    path = tmp_path / "bad-annotations.onnx"
    onnx.save(proto, str(path))
    with pytest.raises(InputError) as info:
        fx.load(path)
    assert words in info.value.message and str(path) in info.value.render()
