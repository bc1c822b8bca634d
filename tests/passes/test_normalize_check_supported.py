"""`check-supported` and `check_normal_form`: every offending node in one error, with what to do."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from normalize_helpers import load, parse, rand, run_pass, static

from passes.check_supported import CheckSupported, check_normal_form
from passes.normalize import Normalize, NormalizeOptions
from transpiler.errors import UnsupportedError

UNSUPPORTED = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[N, 2, 4, 4] x) => (float[1, 1, 3, 8] y, float[1, 2, 8, 8] z, float[4, 2, 1, 4] t) {
    s = Reshape(x, shape)
    l1, l2, l3 = LSTM <hidden_size = 3> (s, lw, lr)
    y = Reshape(l1, shape2)
    z = Resize <mode = "cubic"> (x, roi, scales)
    t = Transpose <perm = [2, 1, 0, 3]> (x)
}
"""


def _unsupported() -> onnx.ModelProto:
    return parse(UNSUPPORTED, shape=np.array([2, 1, 16], np.int64), lw=rand(1, 12, 16), lr=rand(1, 12, 3),
                 shape2=np.array([1, 1, 3, 8], np.int64), roi=np.zeros(0, np.float32),
                 scales=np.array([1, 1, 2, 2], np.float32))


def test_every_unsupported_node_is_listed_in_one_error() -> None:
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(_unsupported()))
    error = info.value
    text = error.render()
    assert error.message.startswith("4 node(s) cannot be compiled")
    for name, op in [("LSTM_1", "LSTM"), ("Resize_3", "Resize"), ("Transpose_4", "Transpose"),
                     ("Reshape_0", "Reshape")]:
        assert any(f"'{name}' ({op}, ai.onnx v13" in line for line in error.details), text
    assert any("batch_first=True" in line for line in error.details)  # what to do about the LSTM
    assert any("keep the batch axis first" in line for line in error.details)  # ... and the Transpose
    assert any("'Resize_3'" in line and "mode 'cubic'" in line and "cubic interpolation is not" in line
               for line in error.details)                          # ... and the bicubic Resize
    assert any("[1,2,4,4]" in line for line in error.details)       # input shapes are shown
    assert "hint: see docs/normal-form.md" in text


ATTRIBUTE_LEVEL = """
<ir_version: 8, opset_import: ["" : 13]>
g (float[1, 2, 4, 4] x, float[2, 2, 1, 1] w) => (float[2, 2, 4, 4] c, float[1, 2, 4, 4] a, int64[1, 2, 2, 2] i,
                                                  float[1, 8] f, float[1, 2, 4, 4] l, float[3, 32] z) {
    k = Conv <kernel_shape = [1, 1]> (x, w)
    c = Concat <axis = 0> (k, grid4)
    a = Mul(x, row)
    r = Reshape(a, flat)
    z = Mul(r, grid)
    m, i = MaxPool <kernel_shape = [2, 2], strides = [2, 2]> (x)
    s = Softmax <axis = 0> (m)
    f = Reshape(s, shape)
    l = ThresholdedRelu(x)
}
"""


def test_attribute_level_problems_are_all_reported() -> None:
    proto = parse(ATTRIBUTE_LEVEL, row=rand(2, 1, 4), shape=np.array([1, 8], np.int64),
                  flat=np.array([1, 32], np.int64), grid=rand(3, 32), grid4=rand(1, 2, 4, 4))
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    details = "\n".join(info.value.details)
    assert "'Mul_2'" not in details           # a constant map of x's shape (broadcast [2, 1, 4]): a mul step
    for words in ["weights are not a constant", "Concat on axis 0", "the constant [3,32] enlarges [1,32]",
                  "the Indices output is used", "Softmax inside the network", "ThresholdedRelu is not supported"]:
        assert words in details, details


def test_final_sigmoid_log_softmax_and_inner_softmax_pass_one_over_the_batch_is_reported() -> None:
    final = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 4] p, float[1, 4] q) {
        p = Sigmoid(x)
        q = LogSoftmax(x)
    }
    """)
    assert check_normal_form(run_pass(Normalize, load(final), NormalizeOptions(check=False)).model) == []
    last = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4] x) => (float[1, 3, 4] y) {
        s = Softmax(x)
        y = Relu(s)
    }
    """)
    assert check_normal_form(run_pass(Normalize, load(last), NormalizeOptions(check=False)).model) == []
    inner = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4] x) => (float[1, 3, 4] y) {
        s = Softmax <axis = 1> (x)
        y = Relu(s)
    }
    """)      # softmax-axis: between two Transposes
    assert check_normal_form(run_pass(Normalize, load(inner), NormalizeOptions(check=False)).model) == []
    batch = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 3, 4] x) => (float[1, 3, 4] y) {
        s = Softmax <axis = 0> (x)
        y = Relu(s)
    }
    """)
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(batch))
    assert "Softmax inside the network over axis 0" in info.value.render()


def test_elementwise_regions_pass_inside_the_network() -> None:
    """Sigmoid, Tanh, x * sigmoid(x) and the Erf form of GELU inside the network are element-wise
    regions (passes/elementwise.py): in the normal form; so is a product of two different
    activations of one shape (a ``mul`` step), but not a broadcasting one."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x, float[1, 4] v, float[1, 1] u) => (float[1, 4] y, float[1, 4] z, float[1, 4] w) {
        s = Sigmoid(x)
        t = Tanh(s)
        st = Sigmoid(t)
        m = Mul(t, st)
        h = Mul(m, half)
        e = Erf(h)
        a = Add(e, one)
        y = Mul(m, a)
        z = Mul(v, y)
        w = Mul(z, u)
    }
    """, half=np.array(0.70710677, np.float32), one=np.array(1.0, np.float32))
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    details = "\n".join(info.value.details)
    # only w = z * u (u: [1, 1]) is reported; z = v * y is a product of two [1, 4] activations
    assert len(info.value.details) == 1 and "broadcasting Mul of [1,4] and [1,1]" in details, details


def test_softmax_over_a_map_is_reported() -> None:
    # lower drops only a Softmax over [1, classes] scores; check-supported must say so, not lower
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4, 5] x) => (float[1, 4, 5] y) {
        y = Softmax <axis = -1> (x)
    }
    """)
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    assert "of [1,4,5]" in info.value.render() and "class axis" in info.value.render()


def test_batch_other_than_one_and_non_float_inputs_are_reported() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2, 3] x, int64[1, 3] k) => (float[2, 3] y, int64[1, 3] z) {
        y = Relu(x)
        z = Identity(k)
    }
    """)
    with pytest.raises(UnsupportedError) as info:
        run_pass(CheckSupported, static(proto))
    text = info.value.render()
    assert "input 'x' has shape [2, 3]" in text and "--input-shape x=1x" in text
    assert "input 'k' has dtype int64" in text


def test_check_normal_form_flags_raw_exports_and_accepts_normalized_ones() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[N, 4] x) => (float[N, 3] y) {
        m = MatMul(x, w)
        a = Add(m, b)
        y = Identity(a)
    }
    """, w=rand(4, 3), b=rand(3))
    problems = check_normal_form(load(proto))
    assert any("no static shape" in p for p in problems)
    assert any("MatMul is not supported" in p for p in problems)
    assert any("Identity" in p for p in problems)
    assert any("has no name" in p for p in problems)
    normalized = run_pass(Normalize, load(proto)).model
    assert check_normal_form(normalized) == []


def test_check_supported_passes_a_normalized_model_unchanged() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 3] y) {
        y = Gemm <alpha = 1.0, beta = 1.0, transA = 0, transB = 1> (x, w, b)
    }
    """, w=rand(3, 4), b=rand(3))
    result = run_pass(CheckSupported, static(proto))
    assert not result.changed


def test_data_dependent_shapes_are_listed_with_the_other_problems() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (int64[2, K] y, float[1, 4] t) {
        y = NonZero(x)
        t = ThresholdedRelu(x)
    }
    """)
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    details = "\n".join(info.value.details)
    assert "'NonZero_0'" in details and "no static shape" in details and "'ThresholdedRelu_1'" in details


def test_a_lost_shape_is_reported_where_it_is_lost_only() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, K] y) {
        i = NonZero(x)
        f = Cast <to = 1> (i)
        r = Relu(f)
        y = Flatten(r)
    }
    """)
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    details = info.value.details
    assert sum("no static shape" in d for d in details) == 1
    assert any("'NonZero_0'" in d and "no static shape" in d for d in details)
    assert any("'Cast_1'" in d and "Cast is not supported" in d for d in details)


def test_an_unsupported_scikit_learn_model_with_zipmap_is_reported_by_op() -> None:
    # the ZipMap after an SVMClassifier is not stripped; shape inference used to fail on its map
    # output before check-supported could name the SVM
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.svm import SVC

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    svc = SVC(kernel="linear", probability=True, random_state=0).fit(x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 0))
    proto = to_onnx(svc, initial_types=[("input", FloatTensorType([None, 4]))], target_opset={"": 13, "ai.onnx.ml": 1})
    assert "ZipMap" in [n.op_type for n in proto.graph.node]
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    assert info.value.location.pass_name == "check-supported"
    text = info.value.render()
    assert "(SVMClassifier, ai.onnx.ml" in text and "SVC(probability=True)" in text and "probability=False" in text


def test_a_loop_is_reported_with_the_keras_remedy() -> None:
    """A rolled Keras LSTM/GRU through tf2onnx is a Loop: the line names it and unroll=True."""
    body = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["c"], ["c_out"]), onnx.helper.make_node("Relu", ["h"], ["h_out"])],
        "body", [onnx.helper.make_tensor_value_info("i", onnx.TensorProto.INT64, []),
                 onnx.helper.make_tensor_value_info("c", onnx.TensorProto.BOOL, []),
                 onnx.helper.make_tensor_value_info("h", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("c_out", onnx.TensorProto.BOOL, []),
         onnx.helper.make_tensor_value_info("h_out", onnx.TensorProto.FLOAT, [1, 4])])
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Loop", ["trips", "cond", "x"], ["y"], name="lstm/while_loop", body=body)],
        "g", [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.numpy_helper.from_array(np.array(16, np.int64), "trips"),
         onnx.numpy_helper.from_array(np.array(True), "cond")])
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    line = next(line for line in info.value.render().splitlines() if "'lstm/while_loop' (Loop" in line)
    assert "unroll=True" in line, line


def test_a_normalisation_with_a_negative_epsilon_is_rejected_by_name() -> None:
    """paddle2onnx 2.0 writes GroupNorm below opset 17 as an InstanceNormalization whose epsilon is
    unset memory (here -8.5e34; onnxruntime's output is NaN): an error naming the node and the
    epsilon, not a crash of the code generator on the kernel's negative epsilon. A LayerNormalization
    with such an epsilon is refused the same way."""
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[1, 4, 3, 3] x) => (float[1, 4, 3, 3] y, float[1, 4, 3, 3] z) {
        r = Reshape(x, groups)
        n = InstanceNormalization <epsilon = -8.456513e34> (r, ones, zeros)
        y = Reshape(n, back)
        z = LayerNormalization <axis = -1, epsilon = -1.0> (x, row_ones, row_zeros)
    }
    """, groups=np.array([1, 2, -1], np.int64), back=np.array([1, 4, 3, 3], np.int64),
        ones=np.ones(2, np.float32), zeros=np.zeros(2, np.float32), row_ones=np.ones(3, np.float32),
        row_zeros=np.zeros(3, np.float32))
    with pytest.raises(UnsupportedError) as info:
        run_pass(Normalize, load(proto))
    details = info.value.details
    assert any("(InstanceNormalization" in line and "epsilon=-8.45651e+34 is negative" in line
               and "re-export at opset 17" in line for line in details), details
    assert any("(LayerNormalization" in line and "epsilon=-1 is negative" in line for line in details), details
