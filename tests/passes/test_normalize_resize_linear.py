"""`resize-linear`: linear Resize/Upsample (every coordinate transformation mode, factors 2 and 3,
1-D and 2-D, scales or sizes, torch legacy and dynamo exports) becomes two grouped Convs and two
Reshapes with onnxruntime's outputs; the modes it cannot rewrite are reported by name."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from normalize_helpers import assert_same_outputs, load, ops, parse, rand, run_pass, torch_export

from passes.normalize import Normalize
from passes.resize_linear import LINEAR_TRANSFORMS, LinearMaps, ResizeLinear, linear_maps, linear_matrix
from passes.resize_nearest import Rejected
from transpiler.errors import UnsupportedError


def _resize(attrs: str, shape: list[int], out: list[int], scales: list[float] | None = None,
            sizes: list[int] | None = None, opset: int = 19) -> onnx.ModelProto:
    """x -> Resize{attrs}(x, '', scales | '', '', sizes) -> y."""
    args = "x, , s" if scales is not None else "x, , , s"
    value = np.array(scales, np.float32) if scales is not None else np.array(sizes, np.int64)
    return parse(f"""
    <ir_version: 9, opset_import: ["" : {opset}]>
    g (float[{", ".join(map(str, shape))}] x) => (float[{", ".join(map(str, out))}] y) {{
        y = Resize <{attrs}> ({args})
    }}
    """, s=value)


@pytest.mark.parametrize("transform", LINEAR_TRANSFORMS)
@pytest.mark.parametrize("factor", [2, 3])
@pytest.mark.parametrize("spatial", [[5], [4, 3]], ids=["1d", "2d"])
@pytest.mark.parametrize("given", ["scales", "sizes"])
def test_linear_resize_becomes_grouped_convs_with_onnxruntimes_outputs(transform: str, factor: int,
                                                                       spatial: list[int], given: str) -> None:
    shape, out = [1, 3, *spatial], [1, 3, *(n * factor for n in spatial)]
    proto = _resize(f'mode = "linear", coordinate_transformation_mode = "{transform}"', shape, out,
                    scales=[1, 1, *[factor] * len(spatial)] if given == "scales" else None,
                    sizes=out if given == "sizes" else None)
    after = run_pass(Normalize, load(proto)).model
    assert ops(after) == (["Conv", "Reshape"] if len(spatial) == 1 else ["Conv", "Reshape", "Conv", "Reshape"])
    feeds = {"x": rand(*shape, seed=factor)}
    assert_same_outputs(proto, after.to_proto(), feeds)


def test_the_matrix_is_onnxruntimes_resize_of_each_unit_vector() -> None:
    """linear_matrix column k == onnxruntime's Resize of the k-th unit vector, also for a
    non-integer and a shrinking size (the map is the same rule)."""
    from normalize_helpers import ort_run

    for transform in LINEAR_TRANSFORMS:
        for n_in, n_out in [(4, 8), (4, 12), (5, 8), (6, 4), (1, 3)]:
            proto = _resize(f'mode = "linear", coordinate_transformation_mode = "{transform}"', [1, n_in, n_in],
                            [1, n_in, n_out], sizes=[1, n_in, n_out])
            eye = np.eye(n_in, dtype=np.float32)[None]
            got = ort_run(proto, {"x": eye})["y"][0]           # row k: the resize of unit vector k
            np.testing.assert_allclose(linear_matrix(n_in, n_out, n_out / n_in, transform), got.T, atol=1e-6,
                                       err_msg=f"{transform} {n_in}->{n_out}")


def test_upsample_of_opset_9_in_linear_mode_is_rewritten() -> None:
    proto = parse("""
    <ir_version: 4, opset_import: ["" : 9]>
    g (float[1, 2, 3, 3] x) => (float[1, 2, 6, 9] y) {
        y = Upsample <mode = "linear"> (x, s)
    }
    """, s=np.array([1, 1, 2, 3], np.float32))
    after = run_pass(Normalize, load(proto)).model
    assert ops(after) == ["Conv", "Reshape", "Conv", "Reshape"]
    assert_same_outputs(proto, after.to_proto(), {"x": rand(1, 2, 3, 3)})


@pytest.mark.parametrize(("attrs", "scales", "words"), [
    ('mode = "cubic"', [1, 1, 2, 2], "mode 'cubic'"),
    ('mode = "linear", coordinate_transformation_mode = "tf_crop_and_resize"', [1, 1, 2, 2], "'tf_crop_and_resize'"),
    ('mode = "linear"', [1, 2, 2, 2], "channel axis"),
])
def test_what_is_not_rewritten_is_reported_by_name(attrs: str, scales: list[float], words: str) -> None:
    out = [1, 2 * scales[1], 8, 8]
    proto = _resize(attrs, [1, 2, 4, 4], out, scales=scales)
    (node,) = load(proto).graph.nodes
    assert run_pass(ResizeLinear, load(proto)).changed is False
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    (line,) = info.value.details
    assert "'Resize_0' (Resize" in line and words in line, line
    if "linear" in attrs:
        assert isinstance(linear_maps(node), Rejected)


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("align_corners", [False, True], ids=["half", "corners"])
def test_torch_bilinear_and_linear_upsampling_normalize_with_the_same_outputs(dynamo: bool,
                                                                              align_corners: bool) -> None:
    torch = pytest.importorskip("torch")
    nn, functional = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=align_corners)
            self.conv = nn.Conv2d(3, 2, 3, padding=1)

        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            y = self.conv(self.up(x))
            rows = functional.interpolate(y.flatten(2, 3)[:, :, :12], scale_factor=3, mode="linear",
                                          align_corners=align_corners)
            return torch.cat([functional.interpolate(y, size=(24, 16), mode="bilinear",
                                                     align_corners=align_corners).flatten(1), rows.flatten(1)], 1)

    torch.manual_seed(3)
    proto = torch_export(Net(), torch.randn(1, 3, 4, 4), dynamic_batch=False, dynamo=dynamo,
                         **({} if dynamo else {"opset_version": 13}))
    model = load(proto)
    assert "Resize" in ops(model)         # dynamo writes the 1-D one as GatherNDs (spatial-linear)
    after = run_pass(Normalize, model).model
    assert not {"Resize", "GatherND"} & set(ops(after)), ops(after)
    assert_same_outputs(proto, after.to_proto(), {proto.graph.input[0].name: rand(1, 3, 4, 4)})


def test_the_maps_of_a_2d_resize() -> None:
    proto = _resize('mode = "linear", coordinate_transformation_mode = "pytorch_half_pixel"', [1, 1, 2, 3],
                    [1, 1, 4, 6], scales=[1, 1, 2, 2])
    (node,) = load(proto).graph.nodes
    found = linear_maps(node)
    assert isinstance(found, LinearMaps) and found.rows is not None
    np.testing.assert_allclose(found.rows, [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    assert found.cols.shape == (6, 3)
