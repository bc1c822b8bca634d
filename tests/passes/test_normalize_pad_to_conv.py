"""`pad-to-conv`: the Pads fold-pad cannot absorb become MaxPool pads (a zero Pad of a non-negative
map before MaxPool), depthwise 1x1 convs (constant padding, 0 or not) or one-hot grouped convs
(reflect, edge, wrap), keeping onnxruntime's outputs; pads of the channel axis stay rejected."""

from __future__ import annotations

import numpy as np
import pytest

from normalize_helpers import check_pass, ops, parse, rand, run_pass, static

from passes.normalize import Normalize
from passes.normalize_util import FIXED_WEIGHTS
from passes.pad_to_conv import PadToConv, axis_matrix
from transpiler.errors import UnsupportedError

PADS_2D = np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)


@pytest.mark.parametrize("mode", ["reflect", "edge", "wrap"])
def test_axis_matrix_is_numpy_pad(mode: str) -> None:
    x = np.arange(5.0) * 3 + 1
    assert np.array_equal(axis_matrix(5, 3, 2, mode) @ x, np.pad(x, (3, 2), mode=mode))


@pytest.mark.parametrize("mode", ["reflect", "edge", "wrap"])
@pytest.mark.parametrize("rank", [3, 4])
def test_copying_modes_become_one_hot_grouped_convs(mode: str, rank: int) -> None:
    shape = "1, 2, 6" if rank == 3 else "1, 2, 5, 6"
    out = "1, 2, 9" if rank == 3 else "1, 2, 8, 9"
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 19]>
    g (float[{shape}] x) => (float[{out}] y) {{
        y = Pad <mode = "{mode}"> (x, pads)
    }}
    """, pads=np.array([0, 0, 1, 0, 0, 2] if rank == 3 else PADS_2D, np.int64))
    x = rand(1, 2, 6, seed=1) if rank == 3 else rand(1, 2, 5, 6, seed=1)
    result = check_pass(PadToConv, proto, {"x": x})
    convs = [n for n in result.model.graph.nodes if n.op == "Conv"]
    assert len(convs) == rank - 2 and result.stats["one-hot"] == 1 and "Pad" not in ops(result.model)
    assert all(result.model.annotations.get(c.inputs[1].name, FIXED_WEIGHTS) for c in convs)


@pytest.mark.parametrize("value", [0.0, 0.75])
def test_constant_pad_before_add_is_a_depthwise_one_by_one_conv(value: float) -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 5, 5] x, float[1, 2, 8, 8] z) => (float[1, 2, 8, 8] y) {
        p = Pad(x, pads, v)
        y = Add(p, z)
    }
    """, pads=PADS_2D, v=np.array(value, np.float32))
    result = check_pass(PadToConv, proto, {"x": rand(1, 2, 5, 5, seed=2), "z": rand(1, 2, 8, 8, seed=3)})
    convs = [n for n in result.model.graph.nodes if n.op == "Conv"]
    assert len(convs) == (1 if value == 0.0 else 2) and result.stats["depthwise"] == 1
    assert all(c.attrs["kernel_shape"] == [1, 1] and c.attrs["group"] == 2 for c in convs)
    assert convs[-1].attrs["pads"] == [1, 2, 2, 1]


@pytest.mark.parametrize(("before", "folded"), [("r = Relu(x)", True), ("r = Sigmoid(x)", True),
                                               ("r = Neg(x)", False), ("r = Clip(x, lo)", True),
                                               ("r = Clip(x, neg)", False)])
def test_zero_pad_before_max_pool_folds_only_for_non_negative_inputs(before: str, folded: bool) -> None:
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 5, 5] x) => (float[1, 2, 3, 3] y) {{
        {before}
        p = Pad(r, pads)
        y = MaxPool <kernel_shape = [3, 3], strides = [2, 2]> (p)
    }}
    """, pads=np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), lo=np.array(0.0, np.float32),
        neg=np.array(-0.5, np.float32))
    result = check_pass(PadToConv, proto, {"x": rand(1, 2, 5, 5, seed=4)})
    pool = [n for n in result.model.graph.nodes if n.op == "MaxPool"][0]
    assert ("Conv" not in ops(result.model)) == folded
    assert result.stats["into-max-pool"] == int(folded)
    assert pool.attrs.get("pads", [0] * 4) == ([1, 1, 1, 1] if folded else [0, 0, 0, 0])


def test_zero_pad_as_large_as_the_max_pool_kernel_is_a_conv() -> None:
    """Pads of a whole kernel would leave windows of padding only (0 against -inf): not folded."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 5, 5] x) => (float[1, 2, 4, 4] y) {
        r = Relu(x)
        p = Pad(r, pads)
        y = MaxPool <kernel_shape = [2, 2], strides = [2, 2]> (p)
    }
    """, pads=np.array([0, 0, 2, 0, 0, 0, 1, 3], np.int64))
    result = check_pass(PadToConv, proto, {"x": rand(1, 2, 5, 5, seed=5)})
    assert result.stats == {"into-max-pool": 0, "depthwise": 1, "one-hot": 0}


def test_pad_of_channels_is_still_rejected_by_name() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 5, 5] x) => (float[1, 3, 5, 5] y) {
        y = Pad(x, pads)
    }
    """, pads=np.array([0, 1, 0, 0, 0, 0, 0, 0], np.int64))
    assert not run_pass(PadToConv, static(proto)).changed
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, static(proto))
    assert "(Pad," in info.value.render() and "spatial axes of a [1, C, L]" in info.value.render()
