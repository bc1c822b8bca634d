"""`repeat-upsample`: pixel repetition spelled as reshapes, transposes and Tiles becomes a nearest Resize."""

from __future__ import annotations

import numpy as np
from normalize_helpers import check_pass, ops, parse, rand, run_pass, static

from passes.normalize_util import ORIGIN
from passes.repeat_upsample import RepeatUpsample


def test_keras_upsampling2d_chain_from_tf2onnx() -> None:
    """The chain tf2onnx writes for UpSampling2D(2) after an NCHW conv (repeat along H, then W)."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4, 3, 5] x) => (float[1, 4, 6, 10] y) {
        u = Unsqueeze(x, axis3)
        t = Tile(u, reps)
        p = Transpose<perm = [0, 2, 3, 4, 1]>(t)
        r = Reshape(p, hw)
        u2 = Unsqueeze(r, axis3)
        t2 = Tile(u2, reps)
        r2 = Reshape(t2, full)
        y = Transpose<perm = [0, 3, 1, 2]>(r2)
    }
    """, axis3=np.array([3], np.int64), reps=np.array([1, 1, 1, 2, 1], np.int64),
        hw=np.array([1, 6, 5, 4], np.int64), full=np.array([1, 6, 10, 4], np.int64))
    result = check_pass(RepeatUpsample, proto, {"x": rand(1, 4, 3, 5)})
    (node,) = result.model.graph.nodes
    assert node.op == "Resize" and node.inputs[2].values.tolist() == [1.0, 1.0, 2.0, 2.0]
    assert node.attrs == {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    assert len(result.model.annotations.get(node.name, ORIGIN)) == 8


def test_repeat_along_one_axis_of_a_sequence() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 5] x) => (float[1, 2, 15] y) {
        u = Unsqueeze(x, axis)
        t = Expand(u, shape)
        y = Reshape(t, out)
    }
    """, axis=np.array([3], np.int64), shape=np.array([1, 2, 5, 3], np.int64), out=np.array([1, 2, 15], np.int64))
    result = check_pass(RepeatUpsample, proto, {"x": rand(1, 2, 5)})
    assert ops(result.model) == ["Resize"]
    assert result.model.graph.nodes[0].inputs[2].values.tolist() == [1.0, 1.0, 3.0]


def test_tiling_the_whole_map_is_kept() -> None:
    """Tile [1, 1, 2, 2] repeats the map periodically: not nearest upsampling."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 3, 3] x) => (float[1, 2, 6, 6] y) {
        y = Tile(x, reps)
    }
    """, reps=np.array([1, 1, 2, 2], np.int64))
    result = run_pass(RepeatUpsample, static(proto))
    assert not result.changed and ops(result.model) == ["Tile"]
