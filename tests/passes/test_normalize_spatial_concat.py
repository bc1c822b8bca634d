"""`spatial-concat`: a Concat along a spatial axis is zero Pads added together (outputs unchanged),
and after the whole `normalize` the model is in the normal form; Concats of channels are kept."""

from __future__ import annotations

import numpy as np
import pytest

from normalize_helpers import check_pass, load, ops, parse, rand

from passes.check_supported import check_normal_form
from passes.spatial_concat import SpatialConcat
from transpiler.manager import run_pipeline
from transpiler.pass_infra import PassContext


@pytest.mark.parametrize(("shapes", "axis", "out"), [
    ([[1, 2, 4, 3], [1, 2, 4, 5]], 3, [1, 2, 4, 8]),                # side by side
    ([[1, 2, 1, 5], [1, 2, 4, 5], [1, 2, 1, 5]], -2, [1, 2, 6, 5]),  # circular padding of the rows
    ([[1, 3, 2], [1, 3, 7]], 2, [1, 3, 9]),                         # 1-D maps
], ids=["width", "rows-circular", "1d"])
def test_spatial_concat_is_a_sum_of_pads(shapes: list[list[int]], axis: int, out: list[int]) -> None:
    names = [f"x{i}" for i in range(len(shapes))]
    inputs = ", ".join(f"float{s} {n}" for s, n in zip(shapes, names))
    convs = "\n".join(f"        r{i} = Relu({n})" for i, n in enumerate(names))
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g ({inputs}) => (float{out} y) {{
{convs}
        y = Concat <axis = {axis}> ({", ".join(f"r{i}" for i in range(len(names)))})
    }}
    """)
    feeds = {n: rand(*s, seed=i) - 0.5 for i, (n, s) in enumerate(zip(names, shapes))}
    result = check_pass(SpatialConcat, proto, feeds)
    assert "Concat" not in ops(result.model) and ops(result.model).count("Pad") == len(shapes)
    normalized = run_pipeline(load(proto), "normalize", PassContext(), verify=True)[0]
    assert check_normal_form(normalized) == []


def test_a_concat_of_channels_is_kept() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 2, 4, 4] a, float[1, 3, 4, 4] b) => (float[1, 5, 4, 4] y) {
        y = Concat <axis = 1> (a, b)
    }
    """)
    result = check_pass(SpatialConcat, proto, {"a": rand(1, 2, 4, 4), "b": rand(1, 3, 4, 4)})
    assert ops(result.model) == ["Concat"] and not result.changed
