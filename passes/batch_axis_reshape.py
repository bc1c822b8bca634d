"""`batch-axis-reshape`: reshapes that move or drop the batch axis only for their readers to undo it.

Keras recurrent layers with ``unroll=True`` through tf2onnx write two such forms per time step:

- the sequence made time-major, ``Reshape(x [1, T, F] -> [T, 1, F])`` (a ``Transpose`` perm
  ``[1, 0, 2]`` of a batch of one), then ``Split`` along the time axis (``split-to-slices`` makes
  it one ``Slice`` per step): step ``t`` of the time-major tensor is ``x[:, t:t+1]``, the same
  ``[1, 1, F]`` values, a time step of a ``[1, T, F]`` sequence the normal form holds;
- ``Squeeze(h @ U)`` ``[1, N] -> [N]`` added to the ``[1, N]`` input projection: the broadcast puts
  the batch axis back, so the ``Add`` may read the ``[1, N]`` tensor itself.

Before -> after::

    t = Reshape(x [1, T, F], [T, 1, F]); s = Slice(t, [k], [k+1], axes=[0])   ->  s = Slice(x, [k], [k+1], axes=[1])
    r = Reshape(a [1, N], [N]); y = Add(b [1, N], r)                          ->  y = Add(b, a)

The first applies when every reader of ``t`` is such a one-step Slice (the Reshape then goes), the
second to each elementwise reader (Add, Sub, Mul, Div, Max, Min) whose result has ``a``'s shape.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from transpiler.model import OnnxModel
from transpiler.pass_infra import Pass, PassResult, register

from passes.normalize_util import (DEFAULT_DOMAINS, NameSource, const_value, consumers, drop_unused,
                                   is_graph_output, new_constant, producer, set_tensors, static_shape)

ELEMENTWISE = ("Add", "Sub", "Mul", "Div", "Max", "Min")


def _is(node: gs.Node | None, op: str) -> bool:
    return node is not None and node.op == op and (node.domain or "") in DEFAULT_DOMAINS


def _one_step(node: gs.Node) -> int | None:
    """The index ``k`` of a ``Slice(t, [k], [k+1], axes=[0])`` (step 1, constant bounds), else None."""
    if not _is(node, "Slice") or len(node.inputs) < 4:
        return None
    values = [const_value(t) for t in node.inputs[1:]]
    if any(v is None for v in values):
        return None
    starts, ends, axes = (np.asarray(v).reshape(-1) for v in values[:3])
    steps = np.asarray(values[3]).reshape(-1) if len(values) > 3 else np.ones(1)
    n = static_shape(node.inputs[0])
    if n is None or len(starts) != 1 or int(axes[0]) % len(n) != 0 or int(steps[0]) != 1:
        return None
    start = int(starts[0]) + (n[0] if int(starts[0]) < 0 else 0)
    end = min(int(ends[0]) + (n[0] if int(ends[0]) < 0 else 0), n[0])
    return start if 0 <= start and end == start + 1 else None


def _time_major(graph: gs.Graph, node: gs.Node) -> gs.Tensor | None:
    """The ``[1, T, ...]`` input of a ``Reshape`` to ``[T, 1, ...]`` read only by one-step Slices, else None."""
    if not _is(node, "Reshape") or not node.inputs:
        return None
    before, after = static_shape(node.inputs[0]), static_shape(node.outputs[0])
    if before is None or after is None or len(before) < 3 or before[0] != 1 or \
            tuple(after) != (before[1], 1, *before[2:]) or is_graph_output(graph, node.outputs[0]):
        return None
    readers = consumers(node.outputs[0])
    if not readers or any(_one_step(r) is None for r in readers):
        return None
    return node.inputs[0]


def _dropped_batch(graph: gs.Graph, tensor: gs.Tensor) -> gs.Tensor | None:
    """``a`` when ``tensor`` is ``Reshape(a [1, ...S], [...S])``, else None."""
    node = producer(tensor)
    if not _is(node, "Reshape") or node is None:
        return None
    before, after = static_shape(node.inputs[0]), static_shape(tensor)
    if before is None or after is None or tuple(before) != (1, *after):
        return None
    return node.inputs[0]


@register
class BatchAxisReshape(Pass):
    """Let time steps and broadcasts read the batch-first tensor a reshape moved or dropped the
    batch axis of (module docstring)."""

    name = "batch-axis-reshape"
    level = "onnx"
    preserves_semantics = True

    def run(self, model: OnnxModel) -> PassResult[OnnxModel]:
        graph = model.graph
        names = NameSource(graph)
        stats = {"time-steps": 0, "broadcasts": 0}
        for node in list(graph.nodes):
            source = _time_major(graph, node)
            if source is not None:
                for reader in consumers(node.outputs[0]):
                    k = _one_step(reader)
                    assert k is not None
                    base = reader.name
                    set_tensors(reader.inputs, [source, new_constant(names, f"{base}_starts", np.array([k])),
                                                new_constant(names, f"{base}_ends", np.array([k + 1])),
                                                new_constant(names, f"{base}_axes", np.array([1]))])
                    stats["time-steps"] += 1
                continue
            if _is(node, node.op) and node.op in ELEMENTWISE and len(node.inputs) == 2:
                out = static_shape(node.outputs[0])
                for i, tensor in enumerate(list(node.inputs)):
                    a = _dropped_batch(graph, tensor)
                    if a is not None and out is not None and tuple(static_shape(a) or ()) == tuple(out):
                        node.inputs[i] = a
                        stats["broadcasts"] += 1
        changed = any(stats.values())
        if changed:
            drop_unused(graph)
        return PassResult(model, changed, stats)
