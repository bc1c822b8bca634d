"""`rms-norm`: an RMS normalisation over the last axis (decomposed, or ONNX RMSNormalization) becomes
a LayerNormalization of ``[x, -x]``; `canonicalize-arith`: ``Neg(x)`` and ``c - x`` become a scale
and an offset."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from normalize_helpers import check_pass, load, ops, parse, rand, run_pass, static

from passes.canonical_arith import CanonicalizeArith
from passes.normalize import Normalize
from passes.normalize_util import ORIGIN, opset_of
from passes.rms_norm import RmsNorm
from transpiler.errors import UnsupportedError

SQUARE = {"pow": "p = Pow(x, two)", "mul": "p = Mul(x, x)"}
INVERSE = {"reciprocal": "s = Sqrt({e})\n        r = Reciprocal(s)\n        n = Mul(x, r)",
           "one_over": "s = Sqrt({e})\n        r = Div(one, s)\n        n = Mul(r, x)",
           "pow": "r = Pow({e}, minus_half)\n        n = Mul(x, r)",
           "div": "s = Sqrt({e})\n        n = Div(x, s)"}
EPSILON = {"eps": "e = Add(v, eps)", "none": ""}

WEIGHTS = dict(two=np.float32(2.0), one=np.float32(1.0), minus_half=np.float32(-0.5), eps=np.float32(1e-5))


def _decomposed(square: str, inverse: str, epsilon: str, tail: str, shape: tuple[int, ...]) -> str:
    dims = ", ".join(str(d) for d in shape)
    return f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[{dims}] x) => (float[{dims}] y) {{
        {SQUARE[square]}
        v = ReduceMean <axes = [-1]> (p)
        {EPSILON[epsilon]}
        {INVERSE[inverse].format(e="e" if EPSILON[epsilon] else "v")}
        {tail}
    }}
    """


@pytest.mark.parametrize("inverse", sorted(INVERSE))
@pytest.mark.parametrize("square", sorted(SQUARE))
@pytest.mark.parametrize("tail", ["y = Mul(n, gamma)", "y = Mul(gamma, n)", "y = Identity(n)"])
def test_decomposed_forms_become_a_layer_normalization_of_x_and_minus_x(square: str, inverse: str,
                                                                       tail: str) -> None:
    proto = parse(_decomposed(square, inverse, "eps", tail, (1, 5, 8)), gamma=rand(8, seed=1) + 1.5,
                  **WEIGHTS)
    x = rand(1, 5, 8, seed=3)
    x[0, 2] = 0.0                                   # a zero row: only epsilon keeps it finite
    result = check_pass(RmsNorm, proto, {"x": x})
    assert ops(result.model)[:4] == ["Mul", "Concat", "LayerNormalization", "Slice"], ops(result.model)
    ln = result.model.graph.nodes[2]
    assert ln.attrs["axis"] == -1 and ln.attrs["epsilon"] == pytest.approx(1e-5)
    assert list(ln.inputs[0].shape) == [1, 5, 16]
    assert "ReduceMean_1" in result.model.annotations.get(ln.name, ORIGIN)
    assert opset_of(result.model) == 17 and result.stats["rewritten"] == 1


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 4), n=st.integers(1, 40), rank=st.sampled_from([2, 3]),
       epsilon=st.sampled_from(sorted(EPSILON)), seed=st.integers(0, 2 ** 16))
def test_rms_norm_keeps_onnxruntime_outputs_on_any_row_length(rows: int, n: int, rank: int, epsilon: str,
                                                              seed: int) -> None:
    shape = (1, n) if rank == 2 else (1, rows, n)
    proto = parse(_decomposed("pow", "reciprocal", epsilon, "y = Mul(n, gamma)", shape),
                  gamma=rand(n, seed=seed) * 2, **WEIGHTS)
    x = rand(*shape, seed=seed + 1) * 3 + 0.1     # no zero row: without epsilon that is 0 / 0
    result = check_pass(RmsNorm, proto, {"x": x})
    assert "ReduceMean" not in ops(result.model) and ops(result.model).count("LayerNormalization") == 1


def test_the_onnx_rms_normalization_op_becomes_a_layer_normalization() -> None:
    proto = parse("""
    <ir_version: 10, opset_import: ["" : 23]>
    g (float[1, 3, 12] x) => (float[1, 3, 12] y) {
        y = RMSNormalization <axis = -1, epsilon = 0.001> (x, gamma)
    }
    """, gamma=rand(12, seed=2))
    result = check_pass(RmsNorm, proto, {"x": rand(1, 3, 12, seed=5)})
    assert ops(result.model) == ["Mul", "Concat", "LayerNormalization", "Slice"]
    assert result.model.graph.nodes[2].attrs["epsilon"] == pytest.approx(1e-3)


@pytest.mark.parametrize("change", ["shared", "axes", "power"])
def test_other_reductions_and_shared_intermediates_are_left(change: str) -> None:
    axes = "[1]" if change == "axes" else "[-1]"
    exponent = "three" if change == "power" else "two"
    extra = "z = Add(e, e)" if change == "shared" else "z = Identity(x)"
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 5, 8] x) => (float[1, 5, 8] y, float[1, 5, 8] z) {{
        p = Pow(x, {exponent})
        v = ReduceMean <axes = {axes}> (p)
        e = Add(v, eps)
        s = Sqrt(e)
        y = Div(x, s)
        {extra}
    }}
    """, two=np.float32(2.0), three=np.float32(3.0), eps=np.float32(1e-5))
    result = run_pass(RmsNorm, static(proto))
    assert not result.changed and "ReduceMean" in ops(result.model)


def test_an_rms_normalization_over_several_axes_is_reported_by_name() -> None:
    proto = parse("""
    <ir_version: 10, opset_import: ["" : 23]>
    g (float[1, 3, 12] x) => (float[1, 3, 12] y) {
        y = RMSNormalization <axis = 1> (x, gamma)
    }
    """, gamma=rand(3, 12, seed=2))
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    text = info.value.render()
    assert "(RMSNormalization" in text and "axis=1" in text and "last axis" in text, text


@pytest.mark.parametrize("form", ["neg", "one_minus", "map_minus"])
def test_neg_and_constant_minus_x_become_a_scale_and_an_offset(form: str) -> None:
    body = {"neg": "y = Neg(x)", "one_minus": "y = Sub(one, x)", "map_minus": "y = Sub(m, x)"}[form]
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4] x) => (float[1, 3, 4] y) {{
        {body}
    }}
    """, one=np.float32(1.0), m=rand(3, 4, seed=7))
    result = check_pass(CanonicalizeArith, proto, {"x": rand(1, 3, 4, seed=1)})
    assert ops(result.model) == (["Mul"] if form == "neg" else ["Mul", "Add"])
    assert result.stats["negated"] == 1
    mul = result.model.graph.nodes[0]
    assert (mul.inputs[1].values == -1.0).all() and mul.inputs[0].name == "x"


def test_a_decomposed_layer_normalization_is_left_to_layer_norm() -> None:
    """The variance part of ``x - mean(x)`` is an RMS normalisation of the centred input; it stays
    whole for `layer-norm`."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 5, 8] x) => (float[1, 5, 8] y) {
        m = ReduceMean <axes = [-1]> (x)
        d = Sub(x, m)
        p = Pow(d, two)
        v = ReduceMean <axes = [-1]> (p)
        e = Add(v, eps)
        s = Sqrt(e)
        y = Div(d, s)
    }
    """, two=np.float32(2.0), eps=np.float32(1e-5))
    assert not run_pass(RmsNorm, static(proto)).changed
