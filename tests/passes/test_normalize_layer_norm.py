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
