"""`remove-noops`: Identity, Dropout, same-type Cast and shape-keeping reshapes disappear."""

from __future__ import annotations

import numpy as np
import pytest

from normalize_helpers import assert_same_outputs, check_pass, ops, parse, rand, run_pass, static, torch_export

from passes.remove_noops import RemoveNoops


def test_identity_dropout_cast_and_reshape_go() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] y) {
        a = Identity(x)
        b = Cast <to = 1> (a)
        c, mask = Dropout(b, ratio)
        d = Reshape(c, shape)
        y = Relu(d)
    }
    """, ratio=np.array(0.5, np.float32), shape=np.array([1, 4], np.int64))
    result = check_pass(RemoveNoops, proto, {"x": rand(1, 4)})
    assert ops(result.model) == ["Relu"]
    assert result.stats["removed"] == 4


def test_noop_before_a_graph_output_keeps_the_output_name() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] probabilities, float[1, 4] r) {
        s = Softmax(x)
        probabilities = Identity(s)
        r = Relu(s)
    }
    """)
    result = check_pass(RemoveNoops, proto, {"x": rand(1, 4)})
    after = result.model.to_proto()
    assert [o.name for o in after.graph.output] == ["probabilities", "r"]
    assert ops(result.model) == ["Softmax", "Relu"]


def test_unremovable_and_real_ones_stay() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] y, bool[1, 4] mask, int32[1, 4] z) {
        y, mask = Dropout(x, ratio, on)
        z = Cast <to = 6> (x)
    }
    """, ratio=np.array(0.5, np.float32), on=np.array(False))
    result = run_pass(RemoveNoops, static(proto))
    # the mask is read (a graph output) and the Cast changes the type: both stay
    assert ops(result.model) == ["Dropout", "Cast"] and not result.changed


def test_training_mode_dropout_stays() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] y) {
        d = Dropout(x, ratio, on)
        y = Relu(d)
    }
    """, ratio=np.array(0.5, np.float32), on=np.array(True))
    assert ops(run_pass(RemoveNoops, static(proto)).model) == ["Dropout", "Relu"]


def test_input_to_output_identity_is_kept() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] y) {
        y = Identity(x)
    }
    """)
    result = run_pass(RemoveNoops, static(proto))
    assert ops(result.model) == ["Identity"] and result.stats["kept-unremovable"] == 1


def test_torch_flatten_of_a_vector() -> None:
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Dropout(0.5), torch.nn.Flatten(), torch.nn.ReLU())
    proto = torch_export(module, torch.randn(1, 4))
    assert "Flatten" in ops(proto)
    result = run_pass(RemoveNoops, static(proto))
    assert ops(result.model) == ["Gemm", "Relu"]
    assert_same_outputs(proto, result.model.to_proto(), {"input": rand(1, 4)})


def test_product_with_a_constant_one_goes() -> None:
    """onnxmltools writes ``probabilities = Mul(p, 1)``; a Mul by 1.0 in front or behind goes, by
    another value or by a per-element constant it stays."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] y, float[1, 4] z) {
        a = Mul(x, one)
        b = Mul(one1, a)
        s = Softmax(b)
        y = Mul(s, one)
        t = Mul(s, two)
        z = Mul(t, ones4)
    }
    """, one=np.array(1.0, np.float32), one1=np.array([1.0], np.float32), two=np.array(2.0, np.float32),
                  ones4=np.ones((1, 4), np.float32))
    result = check_pass(RemoveNoops, proto, {"x": rand(1, 4)})
    assert ops(result.model) == ["Softmax", "Mul", "Mul"]
    assert result.stats["removed-Mul-by-one"] == 3
    assert [o.name for o in result.model.to_proto().graph.output] == ["y", "z"]


def test_sums_and_products_with_zero_go() -> None:
    """The first step of a recurrent layer unrolled from a zero state (Keras LSTM(unroll=True)
    through tf2onnx): ``f * c0 + i * g`` with ``c0`` a constant of zeros is ``i * g``."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 12] f, float[1, 12] i) => (float[1, 12] y) {
        a = Sigmoid(f)
        b = Sigmoid(i)
        p = Mul(a, c0)
        q = Mul(b, b)
        s = Add(p, q)
        t = Sub(s, zero)
        y = Relu(t)
    }
    """, c0=np.zeros((1, 12), np.float32), zero=np.zeros(12, np.float32))
    result = check_pass(RemoveNoops, proto, {"f": rand(1, 12, seed=1), "i": rand(1, 12, seed=2)})
    assert ops(result.model) == ["Sigmoid", "Mul", "Relu"], ops(result.model)
    assert result.stats["removed-Mul-zero"] == 1 and result.stats["removed-Add-zero"] == 1
    assert result.stats["removed-Sub-zero"] == 1


@pytest.mark.parametrize("case", ["broadcast", "nonzero", "zero-minus"])
def test_additions_that_change_the_value_or_shape_are_kept(case: str) -> None:
    """A zero that enlarges x by broadcasting, a constant that is not all zeros, and 0 - x stay."""
    body, k = {"broadcast": ("s = Add(x, k)", np.zeros((3, 12), np.float32)),
               "nonzero": ("s = Add(x, k)", np.eye(1, 12, dtype=np.float32)),
               "zero-minus": ("s = Sub(k, x)", np.zeros((1, 12), np.float32))}[case]
    out = "3, 12" if case == "broadcast" else "1, 12"
    proto = parse(f"""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 12] x) => (float[{out}] y) {{
        {body}
        y = Relu(s)
    }}
    """, k=k)
    result = check_pass(RemoveNoops, proto, {"x": rand(1, 12, seed=3)})
    assert ops(result.model) == ["Sub" if case == "zero-minus" else "Add", "Relu"]
