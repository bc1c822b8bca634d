"""`constant-concat`: a Concat of activations and constants (a ViT's class token) is the activations
placed at their offsets plus a constant map (outputs unchanged), and after the whole `normalize` the
model is in the normal form (check-supported refused the constant before)."""

from __future__ import annotations

import numpy as np
import pytest
from normalize_helpers import check_pass, load, ops, parse, rand

from passes.check_supported import check_normal_form
from passes.constant_concat import ConstantConcat
from transpiler.manager import run_pipeline
from transpiler.pass_infra import PassContext


def _token_concat(x_shape: list[int], const_shape: list[int], axis: int, const_first: bool, out: list[int]) -> str:
    values = ", ".join(f"{v:.3f}" for v in np.linspace(-1.0, 1.5, int(np.prod(const_shape))))
    inputs = "(c, r)" if const_first else "(r, c)"
    return f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float{x_shape} x) => (float{out} y) {{
        c = Constant <value = float{const_shape} {{{values}}}> ()
        r = Relu(x)
        y = Concat <axis = {axis}> {inputs}
    }}
    """


@pytest.mark.parametrize(("x_shape", "const_shape", "axis", "const_first", "out"), [
    ([1, 4, 6], [1, 1, 6], 1, True, [1, 5, 6]),          # ViT: class token before the patch tokens
    ([1, 3, 2, 2], [1, 2, 2, 2], 1, False, [1, 5, 2, 2]),  # constant channels after the map's
    ([1, 2, 5], [1, 2, 3], 2, True, [1, 2, 8]),          # a constant prefix along the length
], ids=["class-token", "channels-after", "spatial"])
def test_constant_concat_places_the_activations_and_adds_the_constants(
        x_shape: list[int], const_shape: list[int], axis: int, const_first: bool, out: list[int]) -> None:
    proto = parse(_token_concat(x_shape, const_shape, axis, const_first, out))
    result = check_pass(ConstantConcat, proto, {"x": rand(*x_shape, seed=1) - 0.5})
    assert "Concat" not in ops(result.model) and ops(result.model).count("Add") == 1
    normalized = run_pipeline(load(proto), "normalize", PassContext(), verify=True)[0]
    assert check_normal_form(normalized) == []


def test_two_activations_and_a_constant_are_concatenated_then_placed() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 3] a, float[1, 3, 3] b) => (float[1, 6, 3] y) {
        c = Constant <value = float[1, 1, 3] {0.5, -0.25, 2.0}> ()
        y = Concat <axis = 1> (a, c, b)
    }
    """)
    result = check_pass(ConstantConcat, proto, {"a": rand(1, 2, 3, seed=2), "b": rand(1, 3, 3, seed=3)})
    assert ops(result.model).count("Concat") == 1 and ops(result.model).count("Conv") == 1
