"""`split-to-slices` (a Split as one Slice per part) and `merge-transpose-axes` (a Transpose of
more than four axes as one of at most four between Reshapes): outputs unchanged, and after the
whole `normalize` a channel shuffle is in the normal form."""

from __future__ import annotations

import numpy as np
import pytest

from normalize_helpers import check_pass, load, ops, parse, rand

from passes.check_supported import check_normal_form
from passes.merge_transpose_axes import MergeTransposeAxes, merged_transpose
from passes.split_to_slices import SplitToSlices
from transpiler.manager import run_pipeline
from transpiler.pass_infra import PassContext


@pytest.mark.parametrize(("opset", "split", "sizes"), [
    (18, "<axis = 1, num_outputs = 2>", [4, 4]),
    (18, "<axis = 1, num_outputs = 3>", [3, 3, 2]),      # the last part smaller
    (13, "<axis = -3>", [4, 4]),                         # equal parts, a negative axis
    (13, "<axis = 1>", [2, 6]),                          # sizes from the split input
])
def test_split_becomes_slices(opset: int, split: str, sizes: list[int]) -> None:
    outs = ", ".join(f"float[1, {n}, 3, 2] y{i}" for i, n in enumerate(sizes))
    names = ", ".join(f"y{i}" for i in range(len(sizes)))
    given = "(x, s)" if opset == 13 and sizes == [2, 6] else "(x)"
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : {opset}]>
    g (float[1, 8, 3, 2] x) => ({outs}) {{
        {names} = Split {split} {given}
    }}
    """, s=np.array(sizes, np.int64))
    result = check_pass(SplitToSlices, proto, {"x": rand(1, 8, 3, 2)})
    assert ops(result.model) == ["Slice"] * len(sizes)


def test_merged_transpose_keeps_runs_together() -> None:
    assert merged_transpose((1, 2, 4, 8, 8), [0, 2, 1, 3, 4]) == ([1, 2, 4, 64], [0, 2, 1, 3])
    assert merged_transpose((1, 2, 3, 4, 5, 6), [0, 3, 4, 5, 1, 2]) == ([1, 6, 120], [0, 2, 1])
    assert merged_transpose((2, 3, 4, 5, 6), [4, 3, 2, 1, 0]) == ([2, 3, 4, 5, 6], [4, 3, 2, 1, 0])


def test_channel_shuffle_transpose_is_merged_and_normal() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 8, 3, 2] x) => (float[1, 8, 3, 2] y) {
        t = Reshape(x, grouped)
        u = Transpose <perm = [0, 2, 1, 3, 4]> (t)
        y = Reshape(u, flat)
    }
    """, grouped=np.array([1, 2, 4, 3, 2], np.int64), flat=np.array([1, 8, 3, 2], np.int64))
    result = check_pass(MergeTransposeAxes, proto, {"x": rand(1, 8, 3, 2)})
    transposes = [n for n in result.model.graph.nodes if n.op == "Transpose"]
    assert [int(d) for d in transposes[0].inputs[0].shape] == [1, 2, 4, 6]
    normalized = run_pipeline(load(proto), "normalize", PassContext(), verify=True)[0]
    assert ops(normalized) == ["Reshape", "Transpose", "Reshape"]
    assert check_normal_form(normalized) == []


def test_a_transpose_that_stays_five_axes_is_left() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 3, 4, 5] x) => (float[1, 5, 4, 3, 2] y) {
        y = Transpose <perm = [0, 4, 3, 2, 1]> (x)
    }
    """)
    result = check_pass(MergeTransposeAxes, proto, {"x": rand(1, 2, 3, 4, 5)})
    assert ops(result.model) == ["Transpose"] and not result.changed
