"""`conv-transpose`: ConvTranspose -> zero insertion (a ConvTranspose of ones) + Conv with the flipped,
channel-swapped kernel; onnxruntime gives the same outputs before and after."""

from __future__ import annotations

import numpy as np
import pytest

from normalize_helpers import assert_same_outputs, check_pass, load, ops, parse, rand, run_pass, torch_export

from passes.conv_transpose import ConvTransposeToConv, is_zero_insertion
from passes.normalize import Normalize
from transpiler.errors import UnsupportedError

CASES = [  # input shape, weight shape, attributes
    ([1, 3, 5, 4], [3, 2, 3, 3], "strides = [2, 2], pads = [1, 1, 1, 1], output_padding = [1, 1]"),
    ([1, 4, 3, 3], [4, 1, 4, 4], "strides = [2, 2], pads = [1, 1, 1, 1], group = 2"),
    ([1, 2, 4, 3], [2, 3, 2, 3], "strides = [3, 1], pads = [0, 1, 1, 0], dilations = [1, 2]"),
    ([1, 2, 4, 4], [2, 2, 3, 3], "pads = [1, 1, 1, 1]"),
    ([1, 3, 7], [3, 2, 5], "strides = [2], pads = [2, 1], output_padding = [1]"),
    ([1, 6, 5], [6, 1, 3], "strides = [4], group = 3, dilations = [2]"),
]


@pytest.mark.parametrize("shape, wshape, attrs", CASES)
def test_conv_transpose_becomes_zero_insertion_and_conv(shape: list[int], wshape: list[int], attrs: str) -> None:
    dims = ", ".join(map(str, shape))
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[{dims}] x) => (float y) {{
        y = ConvTranspose <{attrs}> (x, w, b)
    }}
    """, w=rand(*wshape, seed=1), b=rand(wshape[1] * (int(attrs.split("group = ")[1][0]) if "group" in attrs else 1),
                                         seed=2))
    result = check_pass(ConvTransposeToConv, proto, {"x": rand(*shape)})
    strided = "strides" in attrs
    assert ops(result.model) == (["ConvTranspose", "Conv"] if strided else ["Conv"])
    if strided:
        assert is_zero_insertion(result.model.graph.nodes[0])
    assert run_pass(ConvTransposeToConv, result.model).changed is False


def test_padding_beyond_the_kernel_is_reported() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 4, 4] x) => (float y) {
        y = ConvTranspose <strides = [2, 2], pads = [3, 3, 3, 3]> (x, w)
    }
    """, w=rand(2, 2, 3, 3))
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    (line,) = info.value.details
    assert "(ConvTranspose" in line and "exceed dilation*(kernel-1)" in line and "ConvTranspose1d/2d" in line


def test_a_zero_insertion_of_more_than_65535_elements_is_reported() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4, 100, 100] x) => (float y) {
        y = ConvTranspose <strides = [2, 2]> (x, w)
    }
    """, w=rand(4, 2, 2, 2))
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    (line,) = info.value.details
    assert "(ConvTranspose" in line and "[1,4,199,199]: more than 65535 elements" in line


def test_output_shape_attribute_is_reported() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 4, 4] x) => (float y) {
        y = ConvTranspose <strides = [2, 2], output_shape = [8, 8]> (x, w)
    }
    """, w=rand(2, 2, 3, 3))
    with pytest.raises(UnsupportedError, match="cannot be compiled") as info:
        run_pass(Normalize, load(proto))
    assert "output_shape" in "\n".join(info.value.details)


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("opset", [11, 13, 17])
def test_torch_conv_transpose_1d_and_2d_normalize(opset: int, dynamo: bool) -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    if dynamo and opset != 17:
        pytest.skip("the dynamo exporter chooses its own opset")
    torch.manual_seed(opset)
    two = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
                        nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1))
    one = nn.Sequential(nn.ConvTranspose1d(3, 4, 4, stride=2, padding=1), nn.ReLU(), nn.ConvTranspose1d(4, 2, 3))
    for net, shape in ((two, (1, 1, 6, 6)), (one, (1, 3, 9))):
        proto = torch_export(net, torch.randn(*shape), dynamic_batch=False, dynamo=dynamo,
                             **({} if dynamo else {"opset_version": opset}))
        after = run_pass(Normalize, load(proto)).model
        assert "ConvTranspose" in ops(after)
        assert all(is_zero_insertion(n) for n in after.graph.nodes if n.op == "ConvTranspose")
        assert_same_outputs(proto, after.to_proto(), {proto.graph.input[0].name: rand(*shape)})
