"""`resize-nearest`: every exact integer nearest upsampling becomes the canonical Resize (onnxruntime
gives the same outputs before and after); the modes that are not replication are reported by name."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from normalize_helpers import assert_same_outputs, check_pass, load, ops, parse, rand, run_pass, torch_export

from passes.normalize import Normalize
from passes.resize_linear import ResizeLinear
from passes.resize_nearest import Nearest, Rejected, ResizeNearest, is_canonical, nearest_factors
from transpiler.errors import UnsupportedError


def _resize(attrs: str, shape: list[int], out: list[int], scales: list[float] | None = None,
            sizes: list[int] | None = None, opset: int = 13) -> onnx.ModelProto:
    """x -> Resize{attrs}(x, '', scales | '', sizes) -> y."""
    dims = ", ".join(map(str, shape))
    odims = ", ".join(map(str, out))
    args = "x, , s" if scales is not None else "x, , , s"
    value = np.array(scales, np.float32) if scales is not None else np.array(sizes, np.int64)
    return parse(f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g (float[{dims}] x) => (float[{odims}] y) {{
        y = Resize <{attrs}> ({args})
    }}
    """, s=value)


EXACT = [
    ('mode = "nearest", coordinate_transformation_mode = "asymmetric", nearest_mode = "floor"',
     [1, 3, 4, 5], [1, 3, 8, 10], [1, 1, 2, 2], None),
    ('mode = "nearest"', [1, 2, 3, 3], [1, 2, 9, 6], [1, 1, 3, 2], None),          # half_pixel, round_prefer_floor
    ('mode = "nearest", nearest_mode = "round_prefer_ceil"', [1, 2, 4, 4], [1, 2, 16, 8], [1, 1, 4, 2], None),
    ('mode = "nearest", coordinate_transformation_mode = "pytorch_half_pixel"', [1, 2, 5], [1, 2, 15], None,
     [1, 2, 15]),
    ('mode = "nearest", coordinate_transformation_mode = "tf_half_pixel_for_nn", nearest_mode = "floor"',
     [1, 1, 3, 4], [1, 1, 6, 8], [1, 1, 2, 2], None),
    ('mode = "nearest", coordinate_transformation_mode = "asymmetric", nearest_mode = "floor"', [1, 4, 3],
     [1, 4, 12], [1, 1, 4], None),
]


@pytest.mark.parametrize("attrs, shape, out, scales, sizes", EXACT)
def test_exact_nearest_upsampling_becomes_the_canonical_resize(attrs: str, shape: list[int], out: list[int],
                                                               scales: list[float] | None,
                                                               sizes: list[int] | None) -> None:
    proto = _resize(attrs, shape, out, scales, sizes)
    result = check_pass(ResizeNearest, proto, {"x": rand(*shape)})
    (node,) = result.model.graph.nodes
    assert is_canonical(node)
    assert nearest_factors(node) == Nearest(tuple(o // i for o, i in zip(out[2:], shape[2:])))
    assert run_pass(ResizeNearest, result.model).changed is False       # the canonical form stays


NOT_REPLICATION = [
    ('mode = "cubic"', [1, 1, 4, 4], [1, 1, 8, 8], [1, 1, 2, 2], "mode 'cubic'"),
    ('mode = "nearest", coordinate_transformation_mode = "align_corners"', [1, 1, 4, 4], [1, 1, 12, 12],
     [1, 1, 3, 3], "'align_corners'"),
    ('mode = "nearest", coordinate_transformation_mode = "tf_half_pixel_for_nn"', [1, 1, 4, 4], [1, 1, 8, 8],
     [1, 1, 2, 2], "'tf_half_pixel_for_nn'"),
    ('mode = "nearest", nearest_mode = "floor"', [1, 1, 4, 4], [1, 1, 12, 12], [1, 1, 3, 3], "'half_pixel' with"),
    ('mode = "nearest"', [1, 1, 4, 4], [1, 1, 6, 6], [1, 1, 1.5, 1.5], "scale 6/4"),
    ('mode = "nearest"', [1, 1, 4, 4], [1, 1, 2, 2], [1, 1, 0.5, 0.5], "scale 2/4"),
    ('mode = "nearest"', [1, 2, 4, 4], [1, 4, 4, 4], [1, 2, 1, 1], "channel axis"),
]
NOT_REPLICATION_BUT_NEAREST = [
    ('mode = "nearest", nearest_mode = "floor"', [1, 1, 4, 4], [1, 1, 12, 12], [1, 1, 3, 3], "'half_pixel' with"),
    ('mode = "nearest", coordinate_transformation_mode = "asymmetric", nearest_mode = "floor"', [1, 1, 4, 4],
     [1, 1, 6, 6], [1, 1, 1.5, 1.5], "scale 6/4"),
    ('mode = "nearest", coordinate_transformation_mode = "asymmetric", nearest_mode = "floor"', [1, 1, 4, 6],
     [1, 1, 2, 3], [1, 1, 0.5, 0.5], "scale 2/4"),
]
"""Nearest resizing that is not replication but that resize-linear computes as a 0/1 map (torch's
asymmetric/floor at any scale; NOT_REPLICATION's others stay rejected)."""


@pytest.mark.parametrize("attrs, shape, out, scales, words",
                         [case for case in NOT_REPLICATION if case[4] != "'half_pixel' with"])
def test_other_modes_stay_and_are_reported_naming_node_and_mode(attrs: str, shape: list[int], out: list[int],
                                                               scales: list[float], words: str) -> None:
    proto = _resize(attrs, shape, out, scales)
    model = load(proto)
    (node,) = model.graph.nodes
    found = nearest_factors(node)
    assert isinstance(found, Rejected) and words in found.reason, found
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    (line,) = info.value.details
    assert "'Resize_0' (Resize" in line and words in line and "nearest-neighbour resizing" in line


@pytest.mark.parametrize("attrs, shape, out, scales, words", NOT_REPLICATION_BUT_NEAREST)
def test_other_nearest_resizing_is_a_zero_one_map(attrs: str, shape: list[int], out: list[int],
                                                   scales: list[float], words: str) -> None:
    """Nearest resizing that does not repeat each element (a non-integer scale, a downscale, a transform
    whose rounding picks other rows) is left by resize-nearest and becomes resize-linear's separable
    0/1 map, computing what onnxruntime does."""
    result = check_pass(ResizeLinear, _resize(attrs, shape, out, scales), {"x": rand(*shape)})
    assert "Resize" not in ops(result.model) and "Conv" in ops(result.model)


TRANSFORMS = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
              "tf_half_pixel_for_nn"]
ROUNDINGS = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_the_verdict_is_what_onnxruntime_computes(transform: str, rounding: str) -> None:
    """For every index rule and several lengths and factors: nearest_factors accepts exactly when
    onnxruntime's Resize repeats each element (scales given, and sizes given)."""
    from normalize_helpers import ort_run

    for n, factor in [(1, 2), (2, 2), (3, 2), (4, 2), (4, 3), (5, 3), (3, 4), (2, 5)]:
        for given in ("scales", "sizes"):
            attrs = f'mode = "nearest", coordinate_transformation_mode = "{transform}", nearest_mode = "{rounding}"'
            out = [1, 2, n * factor]
            proto = _resize(attrs, [1, 2, n], out, scales=[1, 1, factor] if given == "scales" else None,
                            sizes=out if given == "sizes" else None, opset=19)
            x = np.arange(2 * n, dtype=np.float32).reshape(1, 2, n)
            y = ort_run(proto, {"x": x})["y"]
            repeats = bool(np.array_equal(y, np.repeat(x, factor, axis=2)))
            (node,) = load(proto).graph.nodes
            assert isinstance(nearest_factors(node), Nearest) == repeats, (n, factor, given, y)


def test_more_than_65535_elements_are_reported() -> None:
    proto = _resize('mode = "nearest"', [1, 4, 64, 64], [1, 4, 128, 128], [1, 1, 2, 2])
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    (line,) = info.value.details
    assert "'Resize_0' (Resize" in line and "more than 65535 elements" in line


def test_upsample_op_of_opset_9_is_converted_and_canonical() -> None:
    proto = parse("""
    <ir_version: 4, opset_import: ["" : 9]>
    g (float[1, 2, 3, 3] x) => (float[1, 2, 6, 9] y) {
        y = Upsample <mode = "nearest"> (x, s)
    }
    """, s=np.array([1, 1, 2, 3], np.float32))
    feeds = {"x": rand(1, 2, 3, 3)}
    after = run_pass(Normalize, load(proto)).model
    (node,) = after.graph.nodes
    assert is_canonical(node) and nearest_factors(node) == Nearest((2, 3))
    assert_same_outputs(proto, after.to_proto(), feeds)


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("opset", [11, 13, 17])
def test_torch_upsample_and_interpolate_normalize_to_canonical_resizes(opset: int, dynamo: bool) -> None:
    torch = pytest.importorskip("torch")
    nn, functional = torch.nn, torch.nn.functional
    if dynamo and opset != 17:
        pytest.skip("the dynamo exporter chooses its own opset")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.conv = nn.Conv2d(3, 2, 3, padding=1)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            y = self.conv(self.up(x))
            return functional.interpolate(y, size=(24, 16), mode="nearest")

    torch.manual_seed(opset)
    proto = torch_export(Net(), torch.randn(1, 3, 4, 4), dynamic_batch=False, dynamo=dynamo,
                         **({} if dynamo else {"opset_version": opset}))
    after = run_pass(Normalize, load(proto)).model
    resizes = [n for n in after.graph.nodes if n.op == "Resize"]
    assert ops(after) == ["Resize", "Conv", "Resize"]
    assert [nearest_factors(n) for n in resizes] == [Nearest((2, 2)), Nearest((3, 2))]
    assert all(is_canonical(n) for n in resizes)
    name = proto.graph.input[0].name
    assert_same_outputs(proto, after.to_proto(), {name: rand(1, 3, 4, 4)})


def test_torch_bicubic_upsample_is_reported_naming_node_and_mode() -> None:
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Upsample(scale_factor=2, mode="bicubic"))
    proto = torch_export(net, torch.randn(1, 1, 6, 6), dynamic_batch=False, opset_version=13)
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    (line,) = info.value.details
    assert "/1/Resize" in line and "mode 'cubic'" in line


@pytest.mark.parametrize(("shape", "out"), [([1, 1, 14, 3], [1, 1, 2, 4]), ([1, 2, 14, 9], [1, 2, 17, 41])])
def test_nearest_map_rounds_as_onnxruntime_in_float32(shape: list[int], out: list[int]) -> None:
    """Sizes whose float64 coordinate is an integer but onnxruntime's float32 one falls just below it
    (14 -> 2: ``1 / float32(2 / 14)`` is 6.9999995, floor 6): the 0/1 map picks onnxruntime's rows."""
    attrs = 'mode = "nearest", coordinate_transformation_mode = "asymmetric", nearest_mode = "floor"'
    result = check_pass(ResizeLinear, _resize(attrs, shape, out, sizes=out), {"x": rand(*shape)})
    assert "Resize" not in ops(result.model)
