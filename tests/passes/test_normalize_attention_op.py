"""`attention-op`: ONNX's Attention op (opset 23) becomes the MatMul / Softmax / MatMul it computes;
one with a mask, causality or fewer key/value heads is reported by name."""

from __future__ import annotations

import pytest
from normalize_helpers import check_pass, load, ops, parse, rand, run_pass

from passes.attention_op import AttentionOp
from passes.normalize import Normalize
from transpiler.errors import UnsupportedError


def _model(shapes: tuple[str, str, str, str], attrs: str) -> str:
    q, k, v, y = shapes
    return f"""
    <ir_version: 10, opset_import: ["" : 23]>
    g (float[{q}] q, float[{k}] k, float[{v}] v) => (float[{y}] y) {{
        y = Attention <{attrs}> (q, k, v)
    }}
    """


CASES = {
    "heads4d": (("1, 2, 5, 4", "1, 2, 7, 4", "1, 2, 7, 3", "1, 2, 5, 3"), "scale = 0.3"),
    "heads4d_default_scale": (("1, 3, 6, 8", "1, 3, 6, 8", "1, 3, 6, 8", "1, 3, 6, 8"), "is_causal = 0"),
    "hidden3d": (("1, 5, 8", "1, 5, 8", "1, 5, 6", "1, 5, 6"), "q_num_heads = 2, kv_num_heads = 2"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_attention_becomes_matmul_softmax_matmul(case: str) -> None:
    shapes, attrs = CASES[case]
    proto = parse(_model(shapes, attrs))
    dims = [[int(d) for d in s.split(",")] for s in shapes[:3]]
    feeds = {name: rand(*dim, seed=i) * 2 for i, (name, dim) in enumerate(zip("qkv", dims))}
    result = check_pass(AttentionOp, proto, feeds)
    got = ops(result.model)
    assert "Attention" not in got and got.count("MatMul") == 2 and got.count("Softmax") == 1, got
    assert result.stats["rewritten"] == 1


@pytest.mark.parametrize(("kv", "attrs", "words"), [
    ("1, 5, 8", "is_causal = 1, q_num_heads = 2, kv_num_heads = 2", "causal"),
    ("1, 5, 4", "q_num_heads = 4, kv_num_heads = 2", "grouped-query"),
])
def test_masked_or_grouped_attention_is_reported_by_name(kv: str, attrs: str, words: str) -> None:
    proto = parse(_model(("1, 5, 8", kv, kv, "1, 5, 8"), attrs))
    assert not run_pass(AttentionOp, load(proto)).changed
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    text = info.value.render()
    assert "(Attention, ai.onnx v23" in text and words in text, text
