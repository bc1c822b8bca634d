"""expand-contrib-ops and gemm-rows: models saved after onnxruntime's graph optimizations.

Each fused ``com.microsoft`` op is expanded into standard ops that onnxruntime computes the same
(1e-5); a CNN and an MLP optimized by onnxruntime itself (``ORT_ENABLE_EXTENDED``: FusedConv with
Relu / Clip / LeakyRelu / a residual sum, FusedGemm) compile, the C equals the interpreter, and
their class agrees with onnxruntime on the optimized model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as rt
import pytest
from emit_c_helpers import check_c_equals_interpreter, import_all_passes
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from passes.contrib_ops import ExpandContribOps
from passes.gemm_rows import GemmRows
from transpiler.data import Dataset
from transpiler.lir.interp import run_program
from transpiler.lir.ir import Program
from transpiler.lir.qio import dequantize_outputs, quantize_inputs
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

import_all_passes()

MS = "com.microsoft"
RNG = np.random.default_rng(0)


def _model(nodes: list[onnx.NodeProto], inputs: dict[str, list[int]], output: str, out_shape: list[int] | None,
           weights: dict[str, np.ndarray], opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)])


def _run(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = rt.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feeds)[0])


def _expanded_matches(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> onnx.ModelProto:
    """Expand, check that no com.microsoft op is left and that onnxruntime computes the same."""
    result = ExpandContribOps().run(OnnxModel.from_proto(proto))
    assert result.changed
    expanded = result.model.to_proto()
    assert not [n.op_type for n in expanded.graph.node if n.domain == MS]
    np.testing.assert_allclose(_run(expanded, feeds), _run(proto, feeds), rtol=1e-5, atol=1e-5)
    return expanded


ACTIVATIONS = [("Relu", []), ("Sigmoid", []), ("Tanh", []), ("LeakyRelu", [0.1]), ("HardSigmoid", [0.3, 0.4]),
               ("Clip", [0.0, 6.0])]


@pytest.mark.parametrize("activation, params", ACTIVATIONS)
@pytest.mark.parametrize("with_sum", [False, True])
@pytest.mark.parametrize("opset", [9, 13])
def test_fused_conv(activation: str, params: list[float], with_sum: bool, opset: int) -> None:
    x = RNG.normal(size=(1, 3, 7, 7)).astype(np.float32)
    z = RNG.normal(size=(1, 4, 7, 7)).astype(np.float32)
    extra = {"activation_params": params} if params else {}
    node = helper.make_node("FusedConv", ["x", "w", "b", "z"] if with_sum else ["x", "w", "b"], ["y"],
                            domain=MS, activation=activation, pads=[1, 1, 1, 1], kernel_shape=[3, 3], **extra)
    inputs = {"x": [1, 3, 7, 7], **({"z": [1, 4, 7, 7]} if with_sum else {})}
    proto = _model([node], inputs, "y", [1, 4, 7, 7], {"w": RNG.normal(size=(4, 3, 3, 3)), "b": RNG.normal(size=4)},
                   opset)
    _expanded_matches(proto, {"x": x, **({"z": z} if with_sum else {})})


@settings(max_examples=25, deadline=None)
@given(trans_a=st.booleans(), trans_b=st.booleans(), alpha=st.sampled_from([1.0, 0.25, -2.0]),
       activation=st.sampled_from(ACTIVATIONS), constant_b=st.booleans())
def test_fused_gemm_and_matmul(trans_a: bool, trans_b: bool, alpha: float, activation: tuple[str, list[float]],
                               constant_b: bool) -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 3) if trans_a else (3, 5)).astype(np.float32)
    b = rng.normal(size=(4, 5) if trans_b else (5, 4)).astype(np.float32)
    kind, params = activation
    attrs = {"activation_alpha": params[0]} if params else {}
    if len(params) > 1:
        attrs["activation_beta"] = params[1]
    gemm = helper.make_node("FusedGemm", ["a", "b", "c"], ["y"], domain=MS, alpha=alpha, transA=int(trans_a),
                            transB=int(trans_b), activation=kind, **attrs)
    weights = {"c": rng.normal(size=4), **({"b": b} if constant_b else {})}
    inputs = {"a": list(a.shape), **({} if constant_b else {"b": list(b.shape)})}
    feeds = {"a": a, **({} if constant_b else {"b": b})}
    if kind != "Clip":      # FusedGemm's Clip reads no min/max attributes
        _expanded_matches(_model([gemm], inputs, "y", [3, 4], weights), feeds)
    matmul = helper.make_node("FusedMatMul", ["a", "b"], ["y"], domain=MS, alpha=alpha, transA=int(trans_a),
                              transB=int(trans_b))
    _expanded_matches(_model([matmul], inputs, "y", [3, 4], {k: v for k, v in weights.items() if k != "c"}), feeds)


@pytest.mark.parametrize("op, bias, attrs", [("Gelu", False, {}), ("FastGelu", False, {}), ("FastGelu", True, {}),
                                             ("BiasGelu", True, {}), ("QuickGelu", False, {"alpha": 1.0}),
                                             ("QuickGelu", False, {"alpha": 1.702})])
def test_gelu_forms(op: str, bias: bool, attrs: dict[str, float]) -> None:
    x = (RNG.normal(size=(1, 6, 8)) * 3).astype(np.float32)
    node = helper.make_node(op, ["x", "bias"] if bias else ["x"], ["y"], domain=MS, **attrs)
    proto = _model([node], {"x": [1, 6, 8]}, "y", [1, 6, 8], {"bias": RNG.normal(size=8)} if bias else {})
    _expanded_matches(proto, {"x": x})


@pytest.mark.parametrize("opset", [13, 17, 18])
@pytest.mark.parametrize("op, inputs", [
    ("SkipLayerNormalization", ["x", "s", "g", "b", "c"]), ("SkipLayerNormalization", ["x", "s", "g"]),
    ("SkipSimplifiedLayerNormalization", ["x", "s", "g", "c"]), ("SimplifiedLayerNormalization", ["x", "g"])])
def test_layer_norm_forms(op: str, inputs: list[str], opset: int) -> None:
    x, s = (RNG.normal(size=(1, 5, 8)).astype(np.float32) for _ in range(2))
    two_outputs = op.startswith("Skip")
    outputs = ["y", "", "", "sum"] if two_outputs else ["y"]
    domain = "" if op == "SimplifiedLayerNormalization" else MS
    node = helper.make_node(op, inputs, outputs, domain=domain, epsilon=1e-3)
    nodes = [node]
    if two_outputs:       # the residual sum read on: y + sum
        node.output[0] = "n"
        nodes.append(helper.make_node("Add", ["n", "sum"], ["y"]))
    weights = {"g": RNG.normal(size=8), "b": RNG.normal(size=8), "c": RNG.normal(size=8)}
    proto = _model(nodes, {"x": [1, 5, 8], **({"s": [1, 5, 8]} if "s" in inputs else {})}, "y", [1, 5, 8],
                   {k: v for k, v in weights.items() if k in inputs}, opset)
    _expanded_matches(proto, {"x": x, **({"s": s} if "s" in inputs else {})})


def test_an_unknown_activation_is_left_for_check_supported_to_name() -> None:
    node = helper.make_node("FusedConv", ["x", "w"], ["y"], domain=MS, activation="Softsign", kernel_shape=[1, 1])
    proto = _model([node], {"x": [1, 2, 3, 3]}, "y", [1, 2, 3, 3], {"w": np.ones((2, 2, 1, 1))})
    assert not ExpandContribOps().run(OnnxModel.from_proto(proto)).changed


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_over_flattened_rows_becomes_a_matmul(trans_b: int) -> None:
    """Reshape([1, T, K] -> [T, K]) -> Gemm -> Reshape([1, T, N]), onnxruntime's MatMul+Add fusion."""
    w = RNG.normal(size=(4, 6) if trans_b else (6, 4))
    nodes = [helper.make_node("Reshape", ["x", "flat"], ["r"]),
             helper.make_node("Gemm", ["r", "w", "c"], ["g"], transB=trans_b, alpha=0.5, beta=2.0),
             helper.make_node("Reshape", ["g", "back"], ["y"])]
    proto = _model(nodes, {"x": [1, 5, 6]}, "y", [1, 5, 4],
                   {"w": w, "c": RNG.normal(size=4), "flat": np.array([5, 6]), "back": np.array([1, 5, 4])})
    for init in proto.graph.initializer:
        if init.name in ("flat", "back"):
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.int64), init.name))
    x = RNG.normal(size=(1, 5, 6)).astype(np.float32)
    model = OnnxModel.from_proto(onnx.shape_inference.infer_shapes(proto))
    result = GemmRows().run(model)
    assert result.changed and "Gemm" not in [n.op for n in result.model.graph.nodes]
    np.testing.assert_allclose(_run(result.model.to_proto(), {"x": x}), _run(proto, {"x": x}), rtol=1e-5, atol=1e-5)


def _cnn() -> onnx.ModelProto:
    """Conv+BN+Relu, a residual Conv+Add+Relu, Conv+Clip(0, 6), Conv+LeakyRelu, global pool, two Gemms."""
    rng = np.random.default_rng(3)
    c = 6
    w: dict[str, np.ndarray] = {
        "w1": rng.normal(size=(c, 2, 3, 3)) * 0.4, "b1": rng.normal(size=c) * 0.1,
        "gamma": rng.uniform(0.5, 1.5, c), "beta": rng.normal(size=c) * 0.1, "mean": rng.normal(size=c) * 0.1,
        "var": rng.uniform(0.5, 1.5, c),
        "w2": rng.normal(size=(c, c, 3, 3)) * 0.2, "b2": rng.normal(size=c) * 0.1,
        "w3": rng.normal(size=(c, c, 1, 1)) * 0.4, "b3": rng.normal(size=c) * 0.1,
        "w4": rng.normal(size=(c, c, 3, 3)) * 0.2, "b4": rng.normal(size=c) * 0.1,
        "fw1": rng.normal(size=(c, 16)) * 0.5, "fb1": rng.normal(size=16) * 0.1,
        "fw2": rng.normal(size=(16, 5)) * 0.5, "fb2": rng.normal(size=5) * 0.1,
        "six": np.array(6.0), "zero": np.array(0.0),
    }
    same = {"pads": [1, 1, 1, 1], "kernel_shape": [3, 3]}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], **same),
        helper.make_node("BatchNormalization", ["c1", "gamma", "beta", "mean", "var"], ["n1"]),
        helper.make_node("Relu", ["n1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], **same),
        helper.make_node("Add", ["c2", "r1"], ["s2"]),
        helper.make_node("Relu", ["s2"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"], kernel_shape=[1, 1]),
        helper.make_node("Clip", ["c3", "zero", "six"], ["r3"]),
        helper.make_node("Conv", ["r3", "w4", "b4"], ["c4"], strides=[2, 2], **same),
        helper.make_node("LeakyRelu", ["c4"], ["r4"], alpha=0.1),
        helper.make_node("GlobalAveragePool", ["r4"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "fw1", "fb1"], ["h"]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("Gemm", ["hr", "fw2", "fb2"], ["y"]),
    ]
    return _model(nodes, {"x": [1, 2, 10, 10]}, "y", [1, 5], w, opset=13)


def test_a_model_optimized_by_onnxruntime_compiles_and_matches_it(tmp_path: Path) -> None:
    options = rt.SessionOptions()
    options.graph_optimization_level = rt.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    rt.InferenceSession(_cnn().SerializeToString(), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(tmp_path / "optimized.onnx"))
    fused = sorted({n.op_type for n in optimized.graph.node if n.domain == MS})
    assert "FusedConv" in fused, fused     # what this test is about: onnxruntime fused the activations

    x = np.random.default_rng(4).normal(size=(48, 1, 2, 10, 10)).astype(np.float32)
    ctx = PassContext(data=Dataset.from_arrays({"x": x[:, 0]}), out_dir=str(tmp_path / "gen"), command_line="pytest")
    program, _ = run_pipeline(OnnxModel.from_proto(optimized), "normalize,quantize,lower,plan-memory", ctx,
                              verify=False)
    assert isinstance(program, Program)
    quantized = [quantize_inputs(program, {"x": row}) for row in x]
    check_c_equals_interpreter(program, tmp_path / "c", quantized, "contrib/cnn", onnx_model=optimized)
    want = np.stack([_run(optimized, {"x": row}).reshape(-1) for row in x])
    got = np.stack([dequantize_outputs(program, run_program(program, q))[program.outputs[0].onnx_name].reshape(-1)
                    for q in quantized])
    assert np.mean(got.argmax(axis=1) == want.argmax(axis=1)) >= 0.97
    assert np.abs(got - want).max() <= 0.05 * np.abs(want).max()


def test_a_transposed_operand_whose_shape_normalize_infers_first() -> None:
    """FusedMatMul {transA=1} of an activation without a recorded shape (onnxruntime saves none): the
    prologue cannot tell its rank, the rewrite rounds after shape inference can."""
    nodes = [helper.make_node("Tanh", ["x"], ["t"]),
             helper.make_node("FusedMatMul", ["t", "w"], ["m"], domain=MS, transA=1, alpha=0.5),
             helper.make_node("Flatten", ["m"], ["y"])]
    proto = _model(nodes, {"x": [1, 6, 1]}, "y", [1, 8], {"w": RNG.normal(size=(6, 8))})
    x = RNG.normal(size=(1, 6, 1)).astype(np.float32)
    ctx = PassContext(data=Dataset.from_arrays({"x": x}), command_line="pytest")
    normalized, _ = run_pipeline(OnnxModel.from_proto(proto), "normalize", ctx, verify=False)
    assert isinstance(normalized, OnnxModel)
    assert not [n for n in normalized.graph.nodes if n.domain == MS]
    np.testing.assert_allclose(_run(normalized.to_proto(), {"x": x}).reshape(-1), _run(proto, {"x": x}).reshape(-1),
                               rtol=1e-5, atol=1e-5)


def test_onnxruntimes_default_domain_rms_norm_loads_and_compiles(tmp_path: Path) -> None:
    """SimplifiedLayerNormalization is onnxruntime's op in the ONNX domain, which onnx.checker rejects:
    the loader checks it as a custom op and normalize expands it."""
    from transpiler.loader import load

    node = helper.make_node("SimplifiedLayerNormalization", ["x", "g"], ["n"], epsilon=1e-5)
    flat = helper.make_node("Flatten", ["n"], ["y"])
    proto = _model([node, flat], {"x": [1, 6, 4]}, "y", [1, 24], {"g": RNG.normal(size=4)})
    onnx.save(proto, str(tmp_path / "m.onnx"))
    model = load(str(tmp_path / "m.onnx"))
    x = RNG.normal(size=(1, 6, 4)).astype(np.float32)
    ctx = PassContext(data=Dataset.from_arrays({"x": x}), command_line="pytest")
    normalized, _ = run_pipeline(model, "normalize", ctx, verify=False)
    assert isinstance(normalized, OnnxModel)
    np.testing.assert_allclose(_run(normalized.to_proto(), {"x": x}), _run(proto, {"x": x}), rtol=1e-5, atol=1e-5)
