"""Which samples a `trees` step may decide differently from the float model (docs/lir.md, "trees").

A branch stores ``T`` with ``x_q <= T`` its test: ``floor(t * 2^q)`` for ``x <= t``, exact on an
input on the grid (``x * 2^q`` an integer); ``floor(t * 2^q + 1/2) - 1`` for ``x < t``, so that an
input equal to ``t`` (XGBoost's thresholds are values of the data) takes the float side. The
device's test holds exactly when ``x * 2^q < T + 1/2`` (``x_q`` is ``x * 2^q`` rounded half up);
``t * 2^q`` lies in ``[T, T + 1)`` (``<=``) or ``[T + 1/2, T + 3/2)`` (``<``), so the two can only
differ when ``x * 2^q`` lies strictly between ``T`` and ``T + 3/2``. An input on the grid there is
judged: ``T`` and ``T + 1`` take the float side (LightGBM's ``x <= 1e-35`` on a zero feature) but
for a ``<`` threshold off the grid less than half a step above ``T + 1``: ``T + 1`` then goes the
other way, unmarked (XGBoost's ``<`` thresholds are values of the data, which an input on the
grid meets on the grid). An input off the grid within that band is
marked, even one equal to a ``<`` threshold (which goes the float way): the band cannot tell it
from its neighbours.
:func:`boundary_samples` marks the samples that meet such a branch on a walk: on the others the
device's leaves are the float model's. `verify` and the exporter bench report those samples apart
(their comparison is decided by the input's 16-bit rounding, not by the compiler). An input with
per-feature formats (``feature-shift``) is compared in each feature's own format.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from transpiler.lir.ir import Program
from transpiler.lir.kernels import TREE_LEAF
from transpiler.lir.qio import feature_shifts, quantize_array, scale_features


def boundary_samples(program: Program, inputs: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """Per sample (``inputs``: float arrays ``[N, ...]`` by ONNX input name), whether a walk of a
    `trees` step that reads a program input meets a branch with the feature off the input's grid and
    strictly between its threshold ``T`` and ``T + 3/2`` (input steps); None when the program has no such step (a `trees` step on a computed buffer is not
    judged here)."""
    ports = {program.storage_of(p.buffer).name: p.onnx_name for p in program.inputs}
    marks: np.ndarray | None = None
    for step in program.steps:
        if step.op != "trees":
            continue
        source = ports.get(program.storage_of(step.inputs[0]).name)
        if source is None or source not in inputs:
            continue
        q = program.storage_of(step.inputs[0]).q
        assert isinstance(q, int)
        feature, threshold, children, roots = (np.asarray(program.buffers[b].data, dtype=np.int64).reshape(-1)
                                               for b in step.inputs[1:])
        kids = children.reshape(-1, 2)
        x = np.asarray(inputs[source], dtype=np.float64)
        x = x.reshape(x.shape[0], -1)
        x = scale_features(x, [x.shape[1]], feature_shifts(program).get(source))
        xq = quantize_array(x, q).astype(np.int64)
        scaled = x * 2.0 ** q
        near = np.zeros(x.shape[0], dtype=bool)
        for i in range(x.shape[0]):
            for entry in roots:
                node = int(entry)
                while not node & TREE_LEAF and not near[i]:
                    f, t = feature[node], threshold[node]
                    near[i] = t < scaled[i, f] < t + 1.5 and scaled[i, f] != np.floor(scaled[i, f])
                    node = int(kids[node, 0 if xq[i, f] <= t else 1])
        marks = near if marks is None else marks | near
    return marks
