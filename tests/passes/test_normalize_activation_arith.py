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


@pytest.mark.parametrize("op, want", [
    ("Sum(a, b, c)", ["Add", "Add"]), ("Sum(a)", ["Identity"]), ("Mean(a, b, c)", ["Add", "Add", "Mul"]),
    ("Sum(a, d)", ["Add"]),                       # broadcasting: the Add keeps it
    ("Max(a, b, c)", ["Mul", "Add", "Relu", "Add"] * 2), ("Min(a, b, c)", ["Mul", "Add", "Relu", "Mul", "Add"] * 2)])
def test_several_inputs_become_a_chain(op: str, want: list[str]) -> None:
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4] a, float[1, 3, 4] b, float[1, 3, 4] c, float[1, 3, 1] d) => (float[1, 3, 4] y) {{
        y = {op}
    }}
    """)
    feeds = {"a": rand(1, 3, 4), "b": rand(1, 3, 4, seed=1), "c": rand(1, 3, 4, seed=2), "d": rand(1, 3, 1, seed=3)}
    result = check_pass(ActivationArith, proto, feeds)
    assert sorted(ops(result.model)) == sorted(want)
    assert result.model.graph.outputs[0].name == "y"


@pytest.mark.parametrize("reduce, want", [
    ("ReduceMean <axes = [0], keepdims = 0> (s)", ["Reshape"] * 3 + ["Add", "Add", "Mul"]),
    ("ReduceSum <keepdims = 0> (s, zero)", ["Reshape"] * 3 + ["Add", "Add"]),
    ("ReduceMax <axes = [0], keepdims = 0> (s)", ["Reshape"] * 3 + ["Mul", "Add", "Relu", "Add"] * 2)])
def test_a_reduction_over_a_stacking_concat_is_the_n_ary_op_of_the_parts(reduce: str, want: list[str]) -> None:
    import numpy as np

    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3] a, float[1, 3] b, float[1, 3] c) => (float[1, 3] y) {{
        ra = Reshape(a, shape)
        rb = Reshape(b, shape)
        rc = Reshape(c, shape)
        s = Concat <axis = 0> (ra, rb, rc)
        y = {reduce}
    }}
    """, shape=np.array([1, 1, 3], np.int64), zero=np.array([0], np.int64))
    feeds = {"a": rand(1, 3), "b": rand(1, 3, seed=1), "c": rand(1, 3, seed=2)}
    result = check_pass(ActivationArith, proto, feeds)
    assert sorted(ops(result.model)) == sorted(["Reshape"] * 3 + want)


def test_a_reduction_over_another_axis_is_kept() -> None:
    import numpy as np

    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 1, 3] a, float[1, 1, 3] b) => (float[2, 1] y) {
        s = Concat <axis = 0> (a, b)
        y = ReduceMean <axes = [2], keepdims = 0> (s)
    }
    """)
    assert not run_pass(ActivationArith, static(proto)).changed
