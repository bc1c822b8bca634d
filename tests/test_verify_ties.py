"""verify's top-1 agreement leaves out near ties: a sample whose C class differs from onnxruntime's
while onnxruntime's two scores are within two Q steps of the output; a clear disagreement counts."""

from __future__ import annotations

import numpy as np

from transpiler.cli.verify_cmd import compare

MANIFEST = {"outputs": [{"name": "scores", "size": 3, "q": 10}, {"name": "class", "size": 1, "q": 0}],
            "class_output": "class", "class_source": "scores"}


def _rows(ref: np.ndarray, c: np.ndarray) -> dict[str, dict]:
    c_real = {"scores": c, "class": c.argmax(axis=1)[:, None].astype(np.float64)}
    return {r["output"]: r for r in compare(MANIFEST, c_real, {"scores": ref}, None)}


def test_a_disagreement_within_two_steps_is_a_tie_not_judged() -> None:
    ref = np.tile([0.5, 0.2, 0.1], (100, 1))
    ref[0] = [0.3, 0.3 + 1.5 / 1024, 0.0]         # onnxruntime: class 1 by 1.5 steps
    c = ref.copy()
    c[0] = [0.3, 0.3, 0.0]                          # the C: class 0
    rows = _rows(ref, c)
    for name in ("scores", "class"):
        assert rows[name]["ties"] == 1 and rows[name]["agree"] == 99 and rows[name]["agreement"] == 1.0


def test_a_clear_disagreement_counts() -> None:
    ref = np.tile([0.5, 0.2, 0.1], (100, 1))
    ref[0] = [0.3, 0.3 + 3 / 1024, 0.0]           # three steps apart: the C should see it
    c = ref.copy()
    c[0] = [0.3, 0.29, 0.0]
    rows = _rows(ref, c)
    for name in ("scores", "class"):
        assert rows[name]["ties"] == 0 and rows[name]["agreement"] == 0.99


def test_no_sample_left_is_no_crash() -> None:
    """Every sample left out (each one a tree walk's boundary sample): the figures of zero samples."""
    empty = np.zeros((0, 3))
    rows = _rows(empty, empty)
    for name in ("scores", "class"):
        assert rows[name]["samples"] == 0 and rows[name]["agree"] == 0
