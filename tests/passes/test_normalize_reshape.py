"""`canonicalize-reshape`: explicit constant target shapes, Flatten axis 1, Squeeze/Unsqueeze -> Reshape."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
import pytest

from normalize_helpers import assert_same_outputs, check_pass, ops, parse, rand, run_pass, static, torch_export

from passes.canonical_reshape import CanonicalizeReshape
from passes.normalize_util import ORIGIN, const_value


def _target(node: gs.Node) -> list[int]:
    return [int(d) for d in const_value(node.inputs[1])]


def test_reshape_with_minus_one_and_zero_is_resolved() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[N, 2, 3, 3] x) => (float[N, 18] y) {
        y = Reshape(x, s)
    }
    """, s=np.array([0, -1], np.int64))
    result = check_pass(CanonicalizeReshape, proto, {"x": rand(1, 2, 3, 3)})
    assert ops(result.model) == ["Reshape"] and _target(result.model.graph.nodes[0]) == [1, 18]


def test_flatten_axis_zero_becomes_axis_one_and_axis_two_a_reshape() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 3, 3] x) => (float[1, 18] y, float[2, 9] z) {
        y = Flatten <axis = 0> (x)
        z = Flatten <axis = 2> (x)
    }
    """)
    result = check_pass(CanonicalizeReshape, proto, {"x": rand(1, 2, 3, 3)})
    first, second = result.model.graph.nodes
    assert first.op == "Flatten" and first.attrs["axis"] == 1
    assert second.op == "Reshape" and _target(second) == [2, 9]


def test_squeeze_unsqueeze_become_reshapes() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 1, 1] x, float[1, 3, 5] v) => (float[1, 3] y, float[1, 3, 1, 5] z) {
        y = Squeeze(x, axes)
        z = Unsqueeze(v, two)
    }
    """, axes=np.array([2, 3], np.int64), two=np.array([2], np.int64))
    result = check_pass(CanonicalizeReshape, proto, {"x": rand(1, 3, 1, 1), "v": rand(1, 3, 5)})
    assert ops(result.model) == ["Reshape", "Reshape"]
    assert [_target(n) for n in result.model.graph.nodes] == [[1, 3], [1, 3, 1, 5]]


def test_transpose_that_moves_only_unit_axes_is_a_reshape() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 8] x, float[1, 5, 6, 1] v, float[1, 3, 4] u) => (float[8, 1] y, float[1, 1, 5, 6] z, float[1, 4, 3] w) {
        y = Transpose <perm = [1, 0]> (x)
        z = Transpose <perm = [0, 3, 1, 2]> (v)
        w = Transpose <perm = [0, 2, 1]> (u)
    }
    """)
    result = check_pass(CanonicalizeReshape, proto, {"x": rand(1, 8), "v": rand(1, 5, 6, 1), "u": rand(1, 3, 4)})
    assert ops(result.model) == ["Reshape", "Reshape", "Transpose"]
    assert [_target(n) for n in result.model.graph.nodes[:2]] == [[8, 1], [1, 1, 5, 6]]


def test_reshape_chain_merges_with_both_origins() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 2, 2] x) => (float[1, 2, 4] y) {
        f = Flatten(x)
        y = Reshape(f, s)
    }
    """, s=np.array([1, 2, -1], np.int64))
    result = check_pass(CanonicalizeReshape, proto, {"x": rand(1, 2, 2, 2)})
    assert ops(result.model) == ["Reshape"]
    node = result.model.graph.nodes[0]
    assert node.inputs[0].name == "x" and _target(node) == [1, 2, 4]
    assert result.model.annotations.get(node.name, ORIGIN) == ["Flatten_0", "Reshape_1"]


def test_canonical_shapes_are_left_alone() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 2, 2] x) => (float[1, 8] y) {
        y = Reshape(x, s)
    }
    """, s=np.array([1, 8], np.int64))
    assert not run_pass(CanonicalizeReshape, static(proto)).changed


def test_torch_flatten_and_view() -> None:
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def forward(self, x: "torch.Tensor") -> "torch.Tensor":
            return torch.flatten(x, 1).unsqueeze(1).view(-1, 2, 8)

    proto = torch_export(Net(), torch.randn(1, 4, 2, 2))
    model = static(proto)
    result = run_pass(CanonicalizeReshape, model)
    assert ops(result.model) == ["Reshape"]
    assert _target(result.model.graph.nodes[0]) == [1, 2, 8]
    assert_same_outputs(proto, result.model.to_proto(), {"input": rand(1, 4, 2, 2)})
