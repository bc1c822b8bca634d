"""`canonicalize-arith`: Sub/Div by constants -> Add/Mul, activation first, canonical constant shapes."""

from __future__ import annotations

import numpy as np
import pytest

from normalize_helpers import check_pass, ops, parse, rand, run_pass, static

from passes.canonical_arith import CanonicalizeArith, canonical_constant
from passes.normalize_util import const_value


def test_sub_div_swap_and_reshape() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 2, 2] x) => (float[1, 3, 2, 2] y) {
        a = Sub(x, mean)
        b = Div(a, std)
        c = Mul(k, b)
        y = Add(c, two)
    }
    """, mean=np.array([0.1, 0.2, 0.3], np.float32).reshape(1, 3, 1, 1),
        std=np.array([0.5, 1.5, 2.0], np.float32).reshape(3, 1, 1),
        k=np.array(3.0, np.float32), two=np.array([2.0], np.float32))
    result = check_pass(CanonicalizeArith, proto, {"x": rand(1, 3, 2, 2)})
    assert ops(result.model) == ["Add", "Mul", "Mul", "Add"]
    for node in result.model.graph.nodes:
        assert const_value(node.inputs[0]) is None
        assert const_value(node.inputs[1]).shape == (3, 1, 1)
    assert result.stats == {"sub-to-add": 1, "div-to-mul": 1, "swapped": 1, "constants-reshaped": 3, "to-clip": 0,
                            "negated": 0}


def test_max_min_with_a_number_become_clip() -> None:
    # torch.clamp(x, min=0) / .clamp(max=4) as the dynamo exporter writes them
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 2, 2] x) => (float[1, 3, 2, 2] y) {
        a = Max(x, zero)
        y = Min(four, a)
    }
    """, zero=np.array(0.0, np.float32), four=np.array([4.0], np.float32))
    result = check_pass(CanonicalizeArith, proto, {"x": rand(1, 3, 2, 2) * 5})
    assert ops(result.model) == ["Clip", "Clip"] and result.stats["to-clip"] == 2
    low, high = result.model.graph.nodes
    assert float(const_value(low.inputs[1])) == 0.0 and low.inputs[2].is_empty()
    assert const_value(low.inputs[1]).shape == ()
    assert high.inputs[1].is_empty() and float(const_value(high.inputs[2])) == 4.0
    assert const_value(high.inputs[2]).shape == ()


def test_max_of_two_activations_is_left() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3] x, float[1, 3] z) => (float[1, 3] y) {
        y = Max(x, z)
    }
    """)
    assert not run_pass(CanonicalizeArith, static(proto)).changed


def test_per_element_add_is_expanded_and_per_element_mul_is_left() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 3] x) => (float[1, 2, 3] y) {
        a = Add(x, e)
        y = Mul(a, e)
    }
    """, e=rand(3))
    result = check_pass(CanonicalizeArith, proto, {"x": rand(1, 2, 3, seed=1)})
    add, mul = result.model.graph.nodes
    assert const_value(add.inputs[1]).shape == (1, 2, 3)
    assert const_value(mul.inputs[1]).shape == (3,)


def test_broadcast_that_enlarges_is_left() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 1, 3] x) => (float[1, 4, 3] y) {
        y = Add(x, e)
    }
    """, e=rand(4, 1))
    assert not run_pass(CanonicalizeArith, static(proto)).changed


@pytest.mark.parametrize("value_shape, act, expected", [
    ((), (1, 4), (1, 4)), ((4,), (1, 4), (1, 4)), ((1, 4, 1), (1, 4, 9), (4, 1)),
    ((4, 1, 1), (1, 4, 2, 2), (4, 1, 1)), ((2, 2), (1, 4, 2, 2), (1, 4, 2, 2)),
])
def test_canonical_constant_shapes(value_shape: tuple[int, ...], act: tuple[int, ...],
                                   expected: tuple[int, ...]) -> None:
    value = np.arange(int(np.prod(value_shape)), dtype=np.float32).reshape(value_shape)
    out = canonical_constant("Add", value, act)
    assert out is not None and out.shape == expected
    np.testing.assert_array_equal(np.broadcast_to(out, act), np.broadcast_to(value, act))
