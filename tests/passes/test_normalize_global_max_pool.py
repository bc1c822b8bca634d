"""`global-max-pool`: GlobalMaxPool and ReduceMax over the spatial axes become a whole-map MaxPool."""

from __future__ import annotations

import numpy as np
import pytest
from normalize_helpers import check_pass, ops, parse, rand, run_pass, static

from passes.global_max_pool import GlobalMaxPoolToMaxPool
from passes.normalize_util import ORIGIN


@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (1, 3, 7)])
def test_global_max_pool_becomes_max_pool_over_the_map(shape: tuple[int, ...]) -> None:
    dims = ", ".join(map(str, shape))
    ones = ", ".join(["1"] * (len(shape) - 2))
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[{dims}] x) => (float[1, 3, {ones}] y) {{
        y = GlobalMaxPool(x)
    }}
    """)
    result = check_pass(GlobalMaxPoolToMaxPool, proto, {"x": rand(*shape)})
    (node,) = result.model.graph.nodes
    assert node.op == "MaxPool" and list(node.attrs["kernel_shape"]) == list(shape[2:])
    assert list(node.attrs["pads"]) == [0] * (2 * (len(shape) - 2))
    assert result.model.annotations.get(node.name, ORIGIN) == ["GlobalMaxPool_0"]


@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_max_over_the_spatial_axes(keepdims: int) -> None:
    out = "float[1, 3, 1, 1]" if keepdims else "float[1, 3]"
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4, 5] x) => ({out} y) {{
        y = ReduceMax <axes = [-2, -1], keepdims = {keepdims}> (x)
    }}
    """)
    result = check_pass(GlobalMaxPoolToMaxPool, proto, {"x": rand(1, 3, 4, 5)})
    assert ops(result.model) == (["MaxPool"] if keepdims else ["MaxPool", "Reshape"])
    for node in result.model.graph.nodes:
        assert result.model.annotations.get(node.name, ORIGIN) == ["ReduceMax_0"]


def test_reduce_max_axes_input_in_opset_18() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 18]>
    g (float[1, 3, 6] x) => (float[1, 3] y) {
        y = ReduceMax <keepdims = 0> (x, axes)
    }
    """, axes=np.array([2], np.int64))
    result = check_pass(GlobalMaxPoolToMaxPool, proto, {"x": rand(1, 3, 6)})
    assert ops(result.model) == ["MaxPool", "Reshape"]


@pytest.mark.parametrize(("axes", "keepdims", "out"), [
    ("[3]", 0, [1, 3, 4]), ("[-2]", 1, [1, 3, 1, 5]), ("[2]", 0, [1, 3, 5])])
def test_max_over_some_spatial_axes(axes: str, keepdims: int, out: list[int]) -> None:
    """``x.amax(dim=-1)``: one MaxPool window over the reduced spatial axes, reshaped without them."""
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4, 5] x) => (float[{", ".join(map(str, out))}] y) {{
        y = ReduceMax <axes = {axes}, keepdims = {keepdims}> (x)
    }}
    """)
    result = check_pass(GlobalMaxPoolToMaxPool, proto, {"x": rand(1, 3, 4, 5)})
    assert ops(result.model) == (["MaxPool", "Reshape"] if not keepdims else ["MaxPool"])


@pytest.mark.parametrize("axes", ["[1, 3]", "[1, 2, 3]"])
def test_other_reductions_are_kept(axes: str) -> None:
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4, 5] x) => (float y) {{
        y = ReduceMax <axes = {axes}> (x)
    }}
    """)
    result = run_pass(GlobalMaxPoolToMaxPool, static(proto))
    assert ops(result.model) == ["ReduceMax"] and not result.changed


@pytest.mark.parametrize(("shape", "axes", "keepdims", "out"), [
    ([1, 6, 4], [1], 0, [1, 4]),            # y.max(dim=1).values of a [1, T, D] sequence
    ([1, 3, 5, 4], [1, 2], 1, [1, 1, 1, 4]),  # amax over the pixels of an NHWC map, keepdim
], ids=["steps", "nhwc-keepdims"])
def test_max_over_the_middle_axes(shape: list[int], axes: list[int], keepdims: int, out: list[int]) -> None:
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float{shape} x) => (float{out} y) {{
        y = ReduceMax <axes = {axes}, keepdims = {keepdims}> (x)
    }}
    """)
    result = check_pass(GlobalMaxPoolToMaxPool, proto, {"x": rand(*shape)})
    assert ops(result.model) == ["Transpose", "MaxPool", "Reshape"]


@pytest.mark.parametrize("keepdims", [0, 1])
def test_a_max_over_the_channels_pools_them_as_rows(keepdims: int) -> None:
    out = "1, 1, 4, 5" if keepdims else "1, 4, 5"
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4, 5] x) => (float[{out}] y) {{
        y = ReduceMax <axes = [1], keepdims = {keepdims}> (x)
    }}
    """)
    result = check_pass(GlobalMaxPoolToMaxPool, proto, {"x": rand(1, 3, 4, 5)})
    assert sorted(ops(result.model)) == sorted(["Transpose", "MaxPool", "Transpose"] + ([] if keepdims else ["Reshape"]))
