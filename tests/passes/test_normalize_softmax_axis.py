"""`softmax-axis`: an inner Softmax over a non-last axis sits between two Transposes that move the
axis last and back (onnxruntime's outputs unchanged); final Softmaxes, the batch axis and opsets
before 13 are left alone."""

from __future__ import annotations

import pytest

from normalize_helpers import check_pass, ops, parse, rand, run_pass, static

from passes.softmax_axis import SoftmaxAxis


@pytest.mark.parametrize(("shape", "axis", "perm"), [
    ([1, 3, 4, 5], 1, [0, 2, 3, 1]), ([1, 3, 4, 5], 2, [0, 1, 3, 2]), ([1, 3, 4, 5], -3, [0, 2, 3, 1]),
    ([1, 6, 8], 1, [0, 2, 1]), ([1, 6, 1], 1, [0, 2, 1]),
])
def test_inner_softmax_over_another_axis_moves_it_last(shape: list[int], axis: int, perm: list[int]) -> None:
    dims = ", ".join(map(str, shape))
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[{dims}] x) => (float[{dims}] y) {{
        s = Softmax <axis = {axis}> (x)
        y = Relu(s)
    }}
    """)
    result = check_pass(SoftmaxAxis, proto, {"x": rand(*shape, seed=3) * 3})
    assert ops(result.model) == ["Transpose", "Softmax", "Transpose", "Relu"] and result.stats["rewritten"] == 1
    first, softmax, back, _ = result.model.graph.nodes
    assert first.attrs["perm"] == perm and softmax.attrs["axis"] == -1
    assert [perm[a] for a in back.attrs["perm"]] == list(range(len(shape)))


@pytest.mark.parametrize("text", [
    """<ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4] x) => (float[1, 3, 4] y) { y = Softmax <axis = 1> (x) }""",          # the output
    """<ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4] x) => (float[1, 3, 4] y) { s = Softmax <axis = 0> (x)  y = Relu(s) }""",   # batch
    """<ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4] x) => (float[1, 3, 4] y) { s = Softmax(x)  y = Relu(s) }""",         # last already
    """<ir_version: 8, opset_import: ["" : 11]>
    g (float[1, 3, 4] x) => (float[1, 3, 4] y) { s = Softmax <axis = 1> (x)  y = Relu(s) }""",   # 2-D form
], ids=["final", "batch", "last", "opset11"])
def test_other_softmaxes_are_left(text: str) -> None:
    assert not run_pass(SoftmaxAxis, static(parse(text))).changed
