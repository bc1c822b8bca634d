"""`reduce-mean-to-gap`: ReduceMean over the spatial axes becomes GlobalAveragePool."""

from __future__ import annotations

import numpy as np
import pytest

from normalize_helpers import assert_same_outputs, check_pass, ops, parse, rand, run_pass, static, torch_export

from passes.normalize_util import ORIGIN
from passes.reduce_mean_to_gap import ReduceMeanToGap


@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("axes", [[2, 3], [-1, -2]])
def test_attribute_axes_before_opset_18(keepdims: int, axes: list[int]) -> None:
    out = "float[1, 3, 1, 1]" if keepdims else "float[1, 3]"
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4, 5] x) => ({out} y) {{
        y = ReduceMean <axes = {axes}, keepdims = {keepdims}> (x)
    }}
    """)
    result = check_pass(ReduceMeanToGap, proto, {"x": rand(1, 3, 4, 5)})
    assert ops(result.model) == (["GlobalAveragePool"] if keepdims else ["GlobalAveragePool", "Reshape"])
    for node in result.model.graph.nodes:
        assert result.model.annotations.get(node.name, ORIGIN) == ["ReduceMean_0"]


def test_input_axes_in_opset_18_and_conv1d_maps() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 18]>
    g (float[1, 3, 7] x) => (float[1, 3, 1] y) {
        y = ReduceMean(x, axes)
    }
    """, axes=np.array([-1], np.int64))
    result = check_pass(ReduceMeanToGap, proto, {"x": rand(1, 3, 7)})
    assert ops(result.model) == ["GlobalAveragePool"]


@pytest.mark.parametrize("axes", ["[1, 3]", "[1, 2, 3]", "[2]"])
def test_other_reductions_are_kept(axes: str) -> None:
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4, 5] x) => (float y) {{
        y = ReduceMean <axes = {axes}> (x)
    }}
    """)
    result = run_pass(ReduceMeanToGap, static(proto))
    assert ops(result.model) == ["ReduceMean"] and not result.changed


def test_torch_mean_over_spatial_dims() -> None:
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 4, 3)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            return self.conv(x).mean([2, 3])

    proto = torch_export(Net(), torch.randn(1, 2, 6, 6), opset_version=18)
    assert "ReduceMean" in ops(proto)
    result = run_pass(ReduceMeanToGap, static(proto))
    assert ops(result.model) == ["Conv", "GlobalAveragePool", "Reshape"]
    assert_same_outputs(proto, result.model.to_proto(), {"input": rand(1, 2, 6, 6)})


@pytest.mark.parametrize("keepdims", [0, 1])
def test_mean_over_the_pixels_of_a_channel_last_map(keepdims: int) -> None:
    out = "float[1, 1, 1, 5]" if keepdims else "float[1, 5]"
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4, 5] x) => ({out} y) {{
        y = ReduceMean <axes = [1, 2], keepdims = {keepdims}> (x)
    }}
    """)
    result = check_pass(ReduceMeanToGap, proto, {"x": rand(1, 3, 4, 5)})
    assert ops(result.model) == ["Transpose", "GlobalAveragePool", "Reshape"]
    assert result.model.graph.nodes[0].attrs["perm"] == [0, 3, 1, 2]


@pytest.mark.parametrize(("shape", "axes", "out", "expected"), [
    ([1, 3, 4, 5], [2, 3], [1, 3], ["GlobalAveragePool", "Reshape", "Mul"]),
    ([1, 6, 4], [1], [1, 4], ["Transpose", "GlobalAveragePool", "Reshape", "Mul"]),
], ids=["spatial", "steps"])
def test_sum_is_the_mean_times_the_count(shape: list[int], axes: list[int], out: list[int],
                                         expected: list[str]) -> None:
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float{shape} x) => (float{out} y) {{
        y = ReduceSum <keepdims = 0> (x, axes)
    }}
    """, axes=np.array(axes, np.int64))
    result = check_pass(ReduceMeanToGap, proto, {"x": rand(*shape)})
    assert sorted(ops(result.model)) == sorted(expected)


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum"])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_a_reduction_over_the_channels_is_a_fixed_one_by_one_conv(op: str, keepdims: int) -> None:
    from passes.normalize_util import FIXED_WEIGHTS

    out = "1, 1, 4, 5" if keepdims else "1, 4, 5"
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4, 5] x) => (float[{out}] y) {{
        y = {op} <keepdims = {keepdims}> (x, axes)
    }}
    """ if op == "ReduceSum" else f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4, 5] x) => (float[{out}] y) {{
        y = {op} <axes = [1], keepdims = {keepdims}> (x)
    }}
    """, **({"axes": np.array([1], np.int64)} if op == "ReduceSum" else {}))
    result = check_pass(ReduceMeanToGap, proto, {"x": rand(1, 3, 4, 5)})
    assert ops(result.model) == (["Conv"] if keepdims else ["Conv", "Reshape"])
    conv = result.model.graph.nodes[0]
    assert result.model.annotations.get(conv.inputs[1].name, FIXED_WEIGHTS)
