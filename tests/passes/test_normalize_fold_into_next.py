"""`fold-into-next`: a per-channel Mul/Add before a Gemm or unpadded Conv folds into its weights."""

from __future__ import annotations

import numpy as np

from normalize_helpers import check_pass, ops, parse, rand

from passes.fold_into_next import FoldIntoNext

SCALER_GEMM = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 5] x) => (float[1, 3] y) {
    t = Add (x, offset)
    u = Mul (t, scale)
    y = Gemm <transB = 1> (u, w, b)
}
"""


def test_a_standard_scaler_before_a_gemm_folds_into_it() -> None:
    proto = parse(SCALER_GEMM, offset=rand(1, 5, seed=1) * 100, scale=np.abs(rand(5, seed=2)) + 0.01,
                  w=rand(3, 5, seed=3), b=rand(3, seed=4))
    result = check_pass(FoldIntoNext, proto, {"x": rand(1, 5, seed=5) * 100})
    assert ops(result.model) == ["Gemm"] and result.model.graph.nodes[0].inputs[0].name == "x"
    assert result.stats == {"folded-mul": 1, "folded-add": 1}


CONV = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 4, 6, 6] x) => (float[1, 4, OUT, OUT] y) {
    t = Mul (x, scale)
    u = Add (t, offset)
    y = Conv <kernel_shape = [2, 2], group = GROUP, pads = PADS> (u, w, b)
}
"""


def _conv(group: int, pads: list[int]) -> str:
    out = 5 + pads[0] + pads[2]
    return CONV.replace("GROUP", str(group)).replace("PADS", str(pads)).replace("OUT", str(out))


def test_an_unpadded_grouped_conv_takes_the_per_channel_constants_of_its_groups() -> None:
    for group in (1, 2, 4):
        proto = parse(_conv(group, [0, 0, 0, 0]), scale=rand(4, 1, 1, seed=1), offset=rand(4, 1, 1, seed=2),
                      w=rand(4, 4 // group, 2, 2, seed=3), b=rand(4, seed=4))
        result = check_pass(FoldIntoNext, proto, {"x": rand(1, 4, 6, 6, seed=5)})
        assert ops(result.model) == ["Conv"], group


def test_a_padded_conv_or_a_second_reader_keeps_the_arithmetic() -> None:
    proto = parse(_conv(1, [1, 1, 1, 1]), scale=rand(4, 1, 1, seed=1), offset=rand(4, 1, 1, seed=2),
                  w=rand(4, 4, 2, 2, seed=3), b=rand(4, seed=4))
    result = check_pass(FoldIntoNext, proto, {"x": rand(1, 4, 6, 6, seed=5)})
    assert ops(result.model) == ["Mul", "Add", "Conv"] and not result.changed
    two_readers = """
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 5] x) => (float[1, 3] y, float[1, 5] t) {
        t = Mul (x, scale)
        y = Gemm <transB = 1> (t, w, b)
    }
    """
    proto = parse(two_readers, scale=rand(5, seed=1), w=rand(3, 5, seed=2), b=rand(3, seed=3))
    result = check_pass(FoldIntoNext, proto, {"x": rand(1, 5, seed=4)})
    assert ops(result.model) == ["Mul", "Gemm"] and not result.changed
