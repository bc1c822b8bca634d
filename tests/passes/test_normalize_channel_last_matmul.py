"""`channel-last-matmul`: Dense over the channel axis of a channel-last map becomes a 1x1 Conv."""

from __future__ import annotations

import numpy as np
from normalize_helpers import check_pass, ops, parse, rand, run_pass, static

from passes.channel_last_matmul import ChannelLastMatMul
from passes.normalize_util import ORIGIN


def test_tensordot_reshapes_around_matmul() -> None:
    """tf2onnx's Keras Dense on [1, H, W, C]: Reshape [H*W, C] -> MatMul -> Reshape [1, H, W, N]."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4, 3, 8] x) => (float[1, 4, 3, 6] y) {
        r = Reshape(x, flat)
        m = MatMul(r, w)
        s = Reshape(m, back)
        y = Add(s, b)
    }
    """, flat=np.array([12, 8], np.int64), back=np.array([1, 4, 3, 6], np.int64), w=rand(8, 6), b=rand(6, seed=1))
    result = check_pass(ChannelLastMatMul, proto, {"x": rand(1, 4, 3, 8, seed=2)})
    assert ops(result.model) == ["Transpose", "Conv", "Transpose", "Add"]
    conv = result.model.graph.nodes[1]
    assert list(conv.inputs[1].shape) == [6, 8, 1, 1] and list(conv.attrs["kernel_shape"]) == [1, 1]
    origin = result.model.annotations.get(conv.name, ORIGIN)
    assert origin == ["Reshape_0", "MatMul_1", "Reshape_2"]


def test_gemm_with_bias_on_a_sequence() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 5, 3] x) => (float[1, 5, 4] y) {
        r = Reshape(x, flat)
        m = Gemm<transB = 1>(r, w, b)
        y = Reshape(m, back)
    }
    """, flat=np.array([5, 3], np.int64), back=np.array([1, 5, 4], np.int64), w=rand(4, 3), b=rand(4, seed=1))
    result = check_pass(ChannelLastMatMul, proto, {"x": rand(1, 5, 3, seed=2)})
    assert ops(result.model) == ["Transpose", "Conv", "Transpose"]
    assert len(result.model.graph.nodes[1].inputs) == 3


def test_plain_matmul_over_the_last_axis() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 5, 3] x) => (float[1, 5, 4] y) {
        y = MatMul(x, w)
    }
    """, w=rand(3, 4))
    result = check_pass(ChannelLastMatMul, proto, {"x": rand(1, 5, 3, seed=2)})
    assert ops(result.model) == ["Transpose", "Conv", "Transpose"]


def test_a_plain_dense_layer_is_kept() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 8] x) => (float[1, 6] y) {
        y = MatMul(x, w)
    }
    """, w=rand(8, 6))
    result = run_pass(ChannelLastMatMul, static(proto))
    assert not result.changed and ops(result.model) == ["MatMul"]


def test_rows_that_are_not_the_positions_of_the_map_are_kept() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4, 3, 8] x) => (float[1, 6, 6] y) {
        r = Reshape(x, flat)
        m = MatMul(r, w)
        y = Reshape(m, back)
    }
    """, flat=np.array([6, 16], np.int64), back=np.array([1, 6, 6], np.int64), w=rand(16, 6))
    result = run_pass(ChannelLastMatMul, static(proto))
    assert not result.changed and ops(result.model) == ["Reshape", "MatMul", "Reshape"]
