"""`activation-arith`: Sub, Max and Min of two activations become Add, Relu and Mul by -1."""

from __future__ import annotations

import pytest
from normalize_helpers import check_pass, ops, parse, rand, run_pass, static

from passes.activation_arith import ActivationArith
from passes.normalize_util import ORIGIN


@pytest.mark.parametrize("op, want", [("Sub", ["Mul", "Add"]), ("Max", ["Mul", "Add", "Relu", "Add"]),
                                      ("Min", ["Mul", "Add", "Relu", "Mul", "Add"])])
@pytest.mark.parametrize("shape", ["1, 3, 4, 5", "1, 6"])
def test_two_activations(op: str, want: list[str], shape: str) -> None:
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[{shape}] a, float[{shape}] b) => (float[{shape}] y) {{
        y = {op}(a, b)
    }}
    """)
    dims = [int(d) for d in shape.split(",")]
    result = check_pass(ActivationArith, proto, {"a": rand(*dims), "b": rand(*dims, seed=1)})
    assert sorted(ops(result.model)) == sorted(want)
    for node in result.model.graph.nodes:
        assert result.model.annotations.get(node.name, ORIGIN) == [f"{op}_0"]
    assert result.model.graph.outputs[0].name == "y"


@pytest.mark.parametrize("text", ["y = Sub(a, b)", "y = Max(a, c)"])
def test_broadcasting_and_constants_are_kept(text: str) -> None:
    import numpy as np

    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4, 5] a, float[1, 3, 1, 1] b) => (float[1, 3, 4, 5] y) {{
        {text}
    }}
    """, c=np.float32([0.5]))
    result = run_pass(ActivationArith, static(proto))
    assert not result.changed
