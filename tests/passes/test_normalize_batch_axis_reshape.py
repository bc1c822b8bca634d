"""`batch-axis-reshape`: time steps of a time-major reshape and broadcasts of a dropped batch axis
read the batch-first tensor. The graphs are the node patterns tf2onnx 1.17 writes for a Keras 3
``LSTM(unroll=True)`` / ``GRU(unroll=True)`` at batch 1 (after split-to-slices and canonicalize-reshape)."""

from __future__ import annotations

import numpy as np
import pytest
from normalize_helpers import check_pass, ops, parse, rand, run_pass, static

from passes.batch_axis_reshape import BatchAxisReshape


def test_time_major_steps_become_time_steps_of_the_sequence() -> None:
    """x [1, 3, 4] made [3, 1, 4], unstacked into three [1, 1, 4] steps, each flattened to [1, 4]."""
    steps = "\n".join(f"s{t} = Slice(tm, b{t}, e{t}, zero)\n        f{t} = Reshape(s{t}, flat)" for t in range(3))
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4] x) => (float[1, 4] y) {{
        tm = Reshape(x, timemajor)
        {steps}
        a = Add(f0, f1)
        y = Mul(a, f2)
    }}
    """, timemajor=np.array([3, 1, 4], np.int64), flat=np.array([1, 4], np.int64), zero=np.array([0], np.int64),
        **{f"b{t}": np.array([t], np.int64) for t in range(3)}, **{f"e{t}": np.array([t + 1], np.int64) for t in range(3)})
    result = check_pass(BatchAxisReshape, proto, {"x": rand(1, 3, 4, seed=1)})
    model = result.model
    assert ops(model).count("Reshape") == 3 and result.stats["time-steps"] == 3
    for node in (n for n in model.graph.nodes if n.op == "Slice"):
        assert node.inputs[0].name == "x" and node.inputs[3].values.tolist() == [1]


def test_a_reshape_read_by_anything_else_stays() -> None:
    """The time-major tensor also read whole (or a step of two) is not only steps: nothing changes."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4] x) => (float[1, 1, 4] y, float[3, 1, 4] z) {
        tm = Reshape(x, timemajor)
        y = Slice(tm, b, e, zero)
        z = Relu(tm)
    }
    """, timemajor=np.array([3, 1, 4], np.int64), zero=np.array([0], np.int64), b=np.array([1], np.int64),
        e=np.array([2], np.int64))
    result = run_pass(BatchAxisReshape, static(proto))
    assert not result.changed


@pytest.mark.parametrize("op", ["Add", "Mul"])
def test_a_dropped_batch_axis_that_broadcasting_restores_is_read_directly(op: str) -> None:
    """Keras' unrolled LSTM cell: ``Add(x @ W + b, Squeeze(h @ U))``, [1, 48] + [48]."""
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 48] a, float[1, 48] b) => (float[1, 48] y) {{
        r = Reshape(a, vector)
        y = {op}(b, r)
    }}
    """, vector=np.array([48], np.int64))
    result = check_pass(BatchAxisReshape, proto, {"a": rand(1, 48, seed=2), "b": rand(1, 48, seed=3)})
    assert ops(result.model) == [op] and result.stats["broadcasts"] == 1


def test_a_dropped_batch_axis_that_broadcasting_does_not_restore_stays() -> None:
    """[48] + [48]: the output has no batch axis, the reshape is what makes it so."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 48] a, float[48] b) => (float[48] y) {
        r = Reshape(a, vector)
        y = Add(b, r)
    }
    """, vector=np.array([48], np.int64))
    result = run_pass(BatchAxisReshape, static(proto))
    assert not result.changed and ops(result.model) == ["Reshape", "Add"]
