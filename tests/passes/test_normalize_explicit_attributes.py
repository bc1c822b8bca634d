"""`explicit-attributes`: defaults written out, auto_pad resolved, unused extra outputs dropped."""

from __future__ import annotations

import numpy as np
import pytest

from normalize_helpers import check_pass, ops, parse, rand

from passes.explicit_attributes import ExplicitAttributes, same_pads
from passes.normalize_util import const_value


@pytest.mark.parametrize("mode", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_auto_pad_resolved_and_defaults_explicit(mode: str, stride: int) -> None:
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 7, 6] x) => (float[1, 3, H, W] y) {{
        y = Conv <auto_pad = "{mode}", strides = [{stride}, {stride}]> (x, w)
    }}
    """, w=rand(3, 2, 4, 3))
    result = check_pass(ExplicitAttributes, proto, {"x": rand(1, 2, 7, 6, seed=1)})
    attrs = result.model.graph.nodes[0].attrs
    assert attrs["auto_pad"] == "NOTSET"
    assert attrs["kernel_shape"] == [4, 3] and attrs["group"] == 1 and attrs["dilations"] == [1, 1]
    assert len(attrs["pads"]) == 4 and attrs["strides"] == [stride, stride]


def test_same_pads_put_the_odd_pixel_at_the_end_for_upper() -> None:
    assert same_pads([6], [4], [1], [1], "SAME_UPPER") == [1, 2]
    assert same_pads([6], [4], [1], [1], "SAME_LOWER") == [2, 1]
    assert same_pads([7], [3], [2], [1], "VALID") == [0, 0]


def test_pools_leakyrelu_concat_softmax_and_unused_indices() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 6, 6] x) => (float[1, 4, 36] y) {
        m, idx = MaxPool <kernel_shape = [2, 2], auto_pad = "SAME_UPPER"> (x)
        a = AveragePool <kernel_shape = [3, 3], pads = [1, 1, 1, 1]> (x)
        l = LeakyRelu(a)
        c = Concat <axis = -3> (m, l)
        r = Reshape(c, s)
        y = Softmax(r)
    }
    """, s=np.array([1, 4, 36], np.int64))
    result = check_pass(ExplicitAttributes, proto, {"x": rand(1, 2, 6, 6)})
    by_op = {n.op: n for n in result.model.graph.nodes}
    pool = by_op["MaxPool"]
    assert len(pool.outputs) == 1
    assert pool.attrs["pads"] == [0, 0, 1, 1] and pool.attrs["dilations"] == [1, 1] and pool.attrs["ceil_mode"] == 0
    assert by_op["AveragePool"].attrs["count_include_pad"] == 0
    assert by_op["LeakyRelu"].attrs["alpha"] == pytest.approx(0.01)
    assert by_op["Concat"].attrs["axis"] == 1
    assert by_op["Softmax"].attrs["axis"] == 2


def test_clip_gets_both_bounds_and_batchnorm_drops_unused_stats() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 3, 3] x) => (float[1, 2, 3, 3] y) {
        c = Clip(x, lo)
        y = Relu(c)
    }
    """, lo=np.array(0.0, np.float32))
    result = check_pass(ExplicitAttributes, proto, {"x": rand(1, 2, 3, 3)})
    clip = result.model.graph.nodes[0]
    assert len(clip.inputs) == 3 and float(const_value(clip.inputs[2])) == np.finfo(np.float32).max
    assert ops(result.model) == ["Clip", "Relu"]
