"""`spatial-linear`: a gather region that is a separable constant linear map of each channel's
spatial axes becomes two grouped Convs with onnxruntime's outputs; regions that mix channels or
are not separable stay and are reported."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from normalize_helpers import assert_same_outputs, load, ops, parse, rand, run_pass, static, torch_export

from passes.normalize import Normalize
from passes.spatial_linear import SpatialLinear, separable
from transpiler.errors import UnsupportedError


def _gathered(indices: np.ndarray, after: str = "") -> onnx.ModelProto:
    """x[1,2,4,4] -> Transpose[2,3,0,1] -> GatherND(indices [2,2,2]) -> Transpose[2,3,0,1] -> y[1,2,2,2]
    (+ ``after``, which reads ``g`` and writes ``y``)."""
    tail = after or "y = Identity (g)"
    return parse(f"""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1, 2, 4, 4] x) => (float[1, 2, 2, 2] y) {{
        t = Transpose <perm = [2, 3, 0, 1]> (x)
        n = GatherND (t, idx)
        g = Transpose <perm = [2, 3, 0, 1]> (n)
        {tail}
    }}
    """, idx=indices.astype(np.int64), **({"s": np.array([2.0, -1.0], np.float32).reshape(1, 2, 1, 1)}
                                          if "s" in after else {}))


def test_a_separable_selection_becomes_two_grouped_convs() -> None:
    rows, cols = [0, 2], [1, 3]                       # x[:, :, ::2, 1::2] as a GatherND
    idx = np.array([[[r, c] for c in cols] for r in rows])
    proto = _gathered(idx)
    after = run_pass(Normalize, load(proto)).model
    assert ops(after) == ["Conv", "Reshape", "Conv", "Reshape"]
    assert [int(n.attrs["group"]) for n in after.graph.nodes if n.op == "Conv"] == [2, 2]
    assert_same_outputs(proto, after.to_proto(), {"x": rand(1, 2, 4, 4)})


def test_a_per_channel_scale_after_the_region_stays_outside() -> None:
    idx = np.array([[[r, c] for c in (0, 3)] for r in (1, 2)])
    proto = _gathered(idx, "y = Mul (g, s)")
    result = run_pass(SpatialLinear, static(proto))
    assert result.changed and ops(result.model).count("Mul") == 1
    assert_same_outputs(proto, result.model.to_proto(), {"x": rand(1, 2, 4, 4)})


def test_a_map_that_is_not_separable_is_reported() -> None:
    idx = np.array([[[0, 0], [1, 2]], [[3, 1], [2, 3]]])    # four scattered pixels: not rows x columns
    proto = _gathered(idx)
    assert run_pass(SpatialLinear, static(proto)).changed is False
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    assert any("GatherND" in line for line in info.value.details)


def test_a_region_that_mixes_channels_is_left() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1, 2, 4, 4] x) => (float[1, 2, 4, 4] y) {
        n = GatherND <batch_dims = 0> (x, idx)
        y = Unsqueeze (n, zero)
    }
    """, idx=np.array([[0, 1], [0, 0]], np.int64), zero=np.array([0], np.int64))      # swaps the channels
    assert run_pass(SpatialLinear, static(proto)).changed is False


def test_separable_factors_keep_zeros_exact() -> None:
    a, b = np.array([[0.5, 0.5, 0.0], [0.0, 1 / 3, 2 / 3]]), np.array([[1.0, 0.0], [0.25, 0.75]])
    matrix = np.einsum("ih,jw->ijhw", a, b).reshape(4, 6)
    found = separable(matrix, (1, 1, 3, 2), (1, 1, 2, 2))
    assert found is not None and found[0] is not None
    rows, cols = found
    np.testing.assert_allclose(np.einsum("ih,jw->ijhw", rows, cols).reshape(4, 6), matrix)
    assert np.array_equal(rows == 0, a == 0) and np.array_equal(cols == 0, b == 0)
    assert separable(np.eye(4)[[0, 3, 1, 2]], (1, 1, 2, 2), (1, 1, 2, 2)) is None


@pytest.mark.parametrize(("size", "out"), [(7, (3, 3)), (10, (3, 3)), (8, (3, 2)), (9, (4, 2))])
def test_dynamo_adaptive_average_pool_normalizes_with_the_same_outputs(size: int, out: tuple[int, int]) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.AdaptiveAvgPool2d(out))
    proto = torch_export(net, torch.randn(1, 1, size, size), dynamic_batch=False, dynamo=True)
    assert "GatherND" in ops(proto)
    after = run_pass(Normalize, load(proto)).model
    assert ops(after) == ["Conv", "Conv", "Reshape", "Conv", "Reshape"]
    assert_same_outputs(proto, after.to_proto(), {proto.graph.input[0].name: rand(1, 1, size, size)})


def test_a_where_over_a_boolean_attention_mask_is_no_region_and_the_mask_is_named() -> None:
    """transformers' BERT with an ``attention_mask`` input: ``Where(bool mask, 0, -big)`` added to the
    scores. The boolean ``[1, 1, T]`` mask is no float map: spatial-linear fed it floats in onnxruntime
    (an internal error); now check-supported names the input as a runtime attention mask."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1, 4, 6] x, int64[1, 4] mask) => (float[1, 4, 6] y) {
        xt = Transpose <perm = [0, 2, 1]> (x)
        scores = MatMul(x, xt)
        keep = Cast <to = 9> (mask)
        axes = Constant <value = int64[1] {1}> ()
        keep3 = Unsqueeze(keep, axes)
        zero = Constant <value = float {0.0}> ()
        big = Constant <value = float {-10000.0}> ()
        bias = Where(keep3, zero, big)
        masked = Add(scores, bias)
        p = Softmax <axis = -1> (masked)
        y = MatMul(p, x)
    }
    """)
    assert not run_pass(SpatialLinear, static(proto)).changed
    with pytest.raises(UnsupportedError) as caught:
        Normalize().run(load(proto))
    assert "input 'mask' is an attention mask" in "\n".join(caught.value.details)
