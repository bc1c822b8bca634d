"""`move-transposes`: layout Transposes merge, and move across element-wise ops until they cancel."""

from __future__ import annotations

import numpy as np
from normalize_helpers import check_pass, ops, parse, rand, run_pass, static

from passes.move_transposes import MoveTransposes
from passes.normalize import Normalize


def test_consecutive_transposes_merge() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 3, 4] x) => (float[1, 3, 2, 4] y) {
        t = Transpose<perm = [0, 2, 3, 1]>(x)
        y = Transpose<perm = [0, 1, 3, 2]>(t)
    }
    """)
    result = check_pass(MoveTransposes, proto, {"x": rand(1, 2, 3, 4)})
    (node,) = result.model.graph.nodes
    assert node.op == "Transpose" and list(node.attrs["perm"]) == [0, 2, 1, 3]


def test_channels_last_transpose_moves_down_and_cancels() -> None:
    """Conv output to NHWC, bias Add and Relu in NHWC, back to NCHW: the pair meets and becomes an
    identity permutation, the bias becomes per channel of the NCHW map."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4, 5] x) => (float[1, 3, 4, 5] y) {
        t = Transpose<perm = [0, 2, 3, 1]>(x)
        a = Add(t, b)
        r = Relu(a)
        y = Transpose<perm = [0, 3, 1, 2]>(r)
    }
    """, b=rand(3))
    result = check_pass(MoveTransposes, proto, {"x": rand(1, 3, 4, 5, seed=1)})
    assert sorted(ops(result.model)) == ["Add", "Relu", "Transpose"]
    (add,) = [n for n in result.model.graph.nodes if n.op == "Add"]
    (transpose,) = [n for n in result.model.graph.nodes if n.op == "Transpose"]
    assert add.inputs[0].name == "x" and list(add.inputs[1].shape) == [1, 3, 1, 1]
    assert list(transpose.attrs["perm"]) == [0, 1, 2, 3]  # remove-noops drops it


def test_channels_first_transpose_moves_up_to_the_input() -> None:
    """A per-channel scale and offset of an NHWC input (Keras Rescaling/Normalization) before the
    Transpose to NCHW: the Transpose reads the input and the constants become [1, C, 1, 1]."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4, 5, 2] x) => (float[1, 2, 4, 5] y) {
        m = Mul(x, s)
        a = Sub(m, c)
        y = Transpose<perm = [0, 3, 1, 2]>(a)
    }
    """, s=rand(2), c=rand(1, 1, 1, 2, seed=1))
    result = check_pass(MoveTransposes, proto, {"x": rand(1, 4, 5, 2, seed=2)})
    assert ops(result.model) == ["Transpose", "Mul", "Sub"]
    assert [list(n.inputs[1].shape) for n in result.model.graph.nodes[1:]] == [[1, 2, 1, 1], [1, 2, 1, 1]]


def test_a_transpose_with_two_readers_stays() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4, 5] x) => (float[1, 4, 5, 3] y, float[1, 4, 5, 3] z) {
        t = Transpose<perm = [0, 2, 3, 1]>(x)
        y = Relu(t)
        z = Sigmoid(t)
    }
    """)
    result = run_pass(MoveTransposes, static(proto))
    assert not result.changed


def test_normalize_leaves_no_transpose_around_a_dense_layer_on_a_map() -> None:
    """NCHW conv features, to NHWC, Keras Dense per pixel (Tensordot), bias, Relu, back to NCHW:
    normalize gives Conv -> Conv (1x1, bias) -> Relu, no Transpose."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 4, 4] x) => (float[1, 6, 4, 4] y) {
        c = Conv<pads = [1, 1, 1, 1]>(x, k)
        t = Transpose<perm = [0, 2, 3, 1]>(c)
        r = Reshape(t, flat)
        m = MatMul(r, w)
        s = Reshape(m, back)
        a = Add(s, b)
        h = Relu(a)
        y = Transpose<perm = [0, 3, 1, 2]>(h)
    }
    """, k=rand(8, 2, 3, 3), flat=np.array([16, 8], np.int64), back=np.array([1, 4, 4, 6], np.int64),
        w=rand(8, 6, seed=1), b=rand(6, seed=2))
    model = run_pass(Normalize, static(proto)).model
    assert ops(model) == ["Conv", "Conv", "Relu"]
    from normalize_helpers import assert_same_outputs
    assert_same_outputs(proto, model.to_proto(), {"x": rand(1, 2, 4, 4, seed=3)})
