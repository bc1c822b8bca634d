"""`layer-norm`: a decomposed layer normalisation over the last axis becomes one LayerNormalization."""

from __future__ import annotations

import numpy as np
import pytest
from normalize_helpers import check_pass, ops, parse, rand, run_pass, static

from passes.layer_norm import LayerNorm
from passes.normalize_util import ORIGIN, opset_of

SQUARE = {"pow": "p = Pow(d, two)", "mul": "p = Mul(d, d)"}
DIVIDE = {"div": "n = Div(d, s)", "reciprocal": "r = Reciprocal(s)\n        n = Mul(d, r)"}


@pytest.mark.parametrize("divide", sorted(DIVIDE))
@pytest.mark.parametrize("square", sorted(SQUARE))
@pytest.mark.parametrize("affine", ["both", "scale", "none"])
def test_decomposed_forms_become_one_layer_normalization(square: str, divide: str, affine: str) -> None:
    tail = {"both": "g = Mul(n, gamma)\n        y = Add(g, beta)", "scale": "y = Mul(n, gamma)",
            "none": "y = Identity(n)"}[affine]
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 5, 8] x) => (float[1, 5, 8] y) {{
        m = ReduceMean <axes = [-1]> (x)
        d = Sub(x, m)
        {SQUARE[square]}
        v = ReduceMean <axes = [2]> (p)
        e = Add(v, eps)
        s = Sqrt(e)
        {DIVIDE[divide]}
        {tail}
    }}
    """, two=np.float32(2.0), eps=np.float32(1e-5), gamma=rand(8, seed=1), beta=rand(8, seed=2))
    result = check_pass(LayerNorm, proto, {"x": rand(1, 5, 8, seed=3)})
    want = ["LayerNormalization"] + (["Identity"] if affine == "none" else [])
    assert ops(result.model) == want
    ln = result.model.graph.nodes[0]
    assert ln.attrs["axis"] == -1 and ln.attrs["epsilon"] == pytest.approx(1e-5)
    assert "Sub_1" in result.model.annotations.get(ln.name, ORIGIN)
    assert opset_of(result.model) == 17 and result.stats["rewritten"] == 1


@pytest.mark.parametrize("change", ["axes = [1]", "shared", "power"])
def test_other_reductions_and_shared_intermediates_are_left(change: str) -> None:
    axes = "axes = [1]" if change == "axes = [1]" else "axes = [-1]"
    exponent = "three" if change == "power" else "two"
    out = "z = Add(d, d)" if change == "shared" else "z = Identity(x)"
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 5, 8] x) => (float[1, 5, 8] y, float[1, 5, 8] z) {{
        m = ReduceMean <{axes}> (x)
        d = Sub(x, m)
        p = Pow(d, {exponent})
        v = ReduceMean <{axes}> (p)
        e = Add(v, eps)
        s = Sqrt(e)
        y = Div(d, s)
        {out}
    }}
    """, two=np.float32(2.0), three=np.float32(3.0), eps=np.float32(1e-5))
    result = run_pass(LayerNorm, static(proto))
    assert not result.changed and "LayerNormalization" not in ops(result.model)


# Keras LayerNormalization through tf2onnx (tf.nn.moments + tf.nn.batch_normalization): x and the
# mean are scaled separately and added; the exact node pattern tf2onnx 1.17 wrote for a Keras 3
# model (tests/fixtures/tf2onnx/layer_norm_op13_bN.onnx is one, end to end).
TF_SCALE = {"gamma": ("k = Mul(r, gamma)", "k"), "none": ("", "r")}
TF_OFFSET = {"beta": ("o = Add(b, beta)", "o"), "none": ("", "b")}


@pytest.mark.parametrize("negation", ["n = Neg(m)", "n = Mul(m, minus_ones)"])      # the latter: canonicalize-arith's
@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("offset", sorted(TF_OFFSET))
@pytest.mark.parametrize("scale", sorted(TF_SCALE))
def test_tensorflow_moments_form_becomes_one_layer_normalization(scale: str, offset: str, rank: int,
                                                                 negation: str) -> None:
    shape = "1, 32" if rank == 2 else "1, 5, 32"
    gamma_shape = (1, 32) if rank == 2 else (32,)
    (scale_node, k), (offset_node, o) = TF_SCALE[scale], TF_OFFSET[offset]
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[{shape}] x) => (float[{shape}] y) {{
        m = ReduceMean <axes = [{rank - 1}], keepdims = 1> (x)
        {negation}
        d = Sub(x, m)
        p = Mul(d, d)
        v = ReduceMean <axes = [{rank - 1}], keepdims = 1> (p)
        e = Add(v, eps)
        s = Sqrt(e)
        r = Reciprocal(s)
        {scale_node}
        a = Mul(x, {k})
        b = Mul(n, {k})
        {offset_node}
        y = Add(a, {o})
    }}
    """, eps=np.float32(1e-3), gamma=rand(*gamma_shape, seed=1) + 1.0, beta=rand(*gamma_shape, seed=2),
        minus_ones=np.full((5, 1) if rank == 3 else (1, 1), -1.0, np.float32))
    x = rand(*[int(d) for d in shape.split(",")], seed=3) * 3.0 + 0.5
    result = check_pass(LayerNorm, proto, {"x": x})
    assert "LayerNormalization" in ops(result.model), ops(result.model)
    assert not {"ReduceMean", "Neg", "Sqrt", "Reciprocal", "Mul"} & set(ops(result.model)), ops(result.model)
    ln = next(n for n in result.model.graph.nodes if n.op == "LayerNormalization")
    assert ln.attrs["epsilon"] == pytest.approx(1e-3) and result.stats["rewritten"] == 1


def test_tensorflow_moments_form_with_a_shared_mean_is_left() -> None:
    """The mean read by a third node (here an output) is not a layer normalisation's alone."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 32] x) => (float[1, 32] y, float[1, 1] m) {
        m = ReduceMean <axes = [1], keepdims = 1> (x)
        n = Neg(m)
        d = Sub(x, m)
        p = Mul(d, d)
        v = ReduceMean <axes = [1], keepdims = 1> (p)
        e = Add(v, eps)
        s = Sqrt(e)
        k = Reciprocal(s)
        a = Mul(x, k)
        b = Mul(n, k)
        y = Add(a, b)
    }
    """, eps=np.float32(1e-3))
    result = run_pass(LayerNorm, static(proto))
    assert not result.changed and "LayerNormalization" not in ops(result.model)


# Flax nnx.LayerNorm through jax2onnx 0.17 (use_fast_variance): the variance as the mean square less the
# squared mean, floored at 0 by Max; tests/fixtures/jax/layernorm_op23_b1.onnx is one, end to end.
FLAX_MAX = {"max": ("w = Max(v, zero)", "w"), "none": ("", "v")}
FLAX_SQUARE = {"mul": ("q = Mul(x, x)", "mm = Mul(m, m)"), "pow": ("q = Pow(x, two)", "mm = Pow(m, two)")}


@pytest.mark.parametrize("opset", [17, 21])          # axes an attribute, then an input (ReduceMean-18)
@pytest.mark.parametrize("square", sorted(FLAX_SQUARE))
@pytest.mark.parametrize("floor", sorted(FLAX_MAX))
@pytest.mark.parametrize("divide", sorted(DIVIDE))
def test_flax_second_moment_form_becomes_one_layer_normalization(divide: str, floor: str, square: str,
                                                                 opset: int) -> None:
    (max_node, v), (square_x, square_m) = FLAX_MAX[floor], FLAX_SQUARE[square]
    mean = "ReduceMean <keepdims = 1> ({}, axes)" if opset >= 18 else "ReduceMean <axes = [1], keepdims = 1> ({})"
    proto = parse(f"""
    <ir_version: 10, opset_import: ["" : {opset}]>
    g (float[1, 32] x) => (float[1, 32] y) {{
        m = {mean.format("x")}
        d = Sub(x, m)
        {square_x}
        s2 = {mean.format("q")}
        {square_m}
        v = Sub(s2, mm)
        {max_node}
        e = Add({v}, eps)
        s = Sqrt(e)
        {DIVIDE[divide]}
        g = Mul(n, gamma)
        y = Add(g, beta)
    }}
    """, eps=np.float32(1e-6), zero=np.float32(0.0), two=np.float32(2.0), axes=np.array([1], np.int64),
        gamma=rand(32, seed=1) + 1.0, beta=rand(32, seed=2))
    result = check_pass(LayerNorm, proto, {"x": rand(1, 32, seed=3) * 3.0 + 0.5})
    assert ops(result.model) == ["LayerNormalization"], ops(result.model)
    ln = result.model.graph.nodes[0]
    assert ln.attrs["epsilon"] == pytest.approx(1e-6) and result.stats["rewritten"] == 1


@pytest.mark.parametrize("change", ["positive floor", "shared square", "mean of another tensor"])
def test_flax_second_moment_lookalikes_are_left(change: str) -> None:
    """A floor above 0 changes the result; a square read elsewhere or the mean square of another
    tensor is not this normalisation's."""
    floor = "one" if change == "positive floor" else "zero"
    square = "q = Mul(z, z)" if change == "mean of another tensor" else "q = Mul(x, x)"
    extra = "o = Identity(q)" if change == "shared square" else "o = Identity(z)"
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1, 32] x, float[1, 32] z) => (float[1, 32] y, float[1, 32] o) {{
        m = ReduceMean <axes = [1], keepdims = 1> (x)
        d = Sub(x, m)
        {square}
        s2 = ReduceMean <axes = [1], keepdims = 1> (q)
        mm = Mul(m, m)
        v = Sub(s2, mm)
        w = Max(v, {floor})
        e = Add(w, eps)
        s = Sqrt(e)
        y = Div(d, s)
        {extra}
    }}
    """, eps=np.float32(1e-6), zero=np.float32(0.0), one=np.float32(1.0))
    result = run_pass(LayerNorm, static(proto))
    assert not result.changed and "LayerNormalization" not in ops(result.model)
