"""`dequantize`: int8 QDQ models from onnxruntime.quantization compile as the float model of their
int8 weights with the clamps of their activation grids, and agree with onnxruntime on the QDQ model;
QOperator and dynamically quantized models are rejected with one line saying what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from normalize_helpers import assert_same_outputs, check_pass, ops, parse, rand

from passes.dequantize import Dequantize
from transpiler import ort
from transpiler.data import Dataset
from transpiler.errors import FreemlError
from transpiler.lir.interp import run_program
from transpiler.lir.ir import Program
from transpiler.lir.qio import dequantize_outputs, quantize_inputs
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

quantization = pytest.importorskip("onnxruntime.quantization")


def float_model() -> onnx.ModelProto:
    """Conv -> Relu -> Conv (stride 2) -> Relu -> Conv -> Add (residual of the second) ->
    GlobalAveragePool -> Flatten -> Gemm: ReLUs the quantizer folds into its activation grids."""
    rng = np.random.default_rng(0)
    inits = {"W1": rng.normal(0, 0.4, (6, 2, 3, 3)), "B1": rng.normal(0, 0.1, 6),
             "W2": rng.normal(0, 0.3, (8, 6, 3, 3)), "B2": rng.normal(0, 0.1, 8),
             "W3": rng.normal(0, 0.3, (8, 8, 1, 1)), "B3": rng.normal(0, 0.1, 8),
             "G": rng.normal(0, 0.5, (5, 8)), "C": rng.normal(0, 0.1, 5)}
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "W2", "B2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("Conv", ["r2", "W3", "B3"], ["c3"]),
             helper.make_node("Add", ["c3", "r2"], ["s"]),
             helper.make_node("GlobalAveragePool", ["s"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "G", "C"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
                              [numpy_helper.from_array(v.astype(np.float32), n) for n, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    return proto


class _Reader(quantization.CalibrationDataReader):
    def __init__(self, xs: np.ndarray) -> None:
        self.feeds = iter([{"x": x[None]} for x in xs])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


def quantized(tmp_path: Path, quant_format: str, per_channel: bool) -> tuple[onnx.ModelProto, np.ndarray]:
    """The float model quantized by onnxruntime.quantization.quantize_static (int8 activations and
    weights), and the 200 samples (the first 50 calibrated it)."""
    xs = np.random.default_rng(1).standard_normal((200, 2, 8, 8)).astype(np.float32)
    onnx.save(float_model(), str(tmp_path / "float.onnx"))
    quantization.quantize_static(str(tmp_path / "float.onnx"), str(tmp_path / "q.onnx"), _Reader(xs[:50]),
                                 quant_format=getattr(quantization.QuantFormat, quant_format),
                                 activation_type=quantization.QuantType.QInt8,
                                 weight_type=quantization.QuantType.QInt8, per_channel=per_channel)
    return onnx.load(str(tmp_path / "q.onnx")), xs


@pytest.mark.parametrize("per_channel", [False, True], ids=["per-tensor", "per-channel"])
def test_qdq_model_compiles_and_agrees_with_onnxruntime(per_channel: bool, tmp_path: Path) -> None:
    proto, xs = quantized(tmp_path, "QDQ", per_channel)
    assert "Relu" not in ops(proto) and "DequantizeLinear" in ops(proto)     # the ReLUs live in the grids
    normalized = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)[0]
    assert not {"QuantizeLinear", "DequantizeLinear"} & set(ops(normalized))
    original = ort.session(OnnxModel.from_proto(proto))
    context = PassContext(data=Dataset.from_arrays({"x": xs}), out_dir=str(tmp_path / "gen"), command_line="pytest")
    program, _ = run_pipeline(OnnxModel.from_proto(proto), "normalize,quantize,lower,plan-memory", context,
                              verify=False)
    assert isinstance(program, Program)
    agree, worst, span = 0, 0.0, 0.0
    for x in xs:
        feed = {"x": x[None]}
        ref = original.run(None, feed)[0].reshape(-1)
        got = dequantize_outputs(program, run_program(program, quantize_inputs(program, feed)))["y"].reshape(-1)
        agree += int(np.argmax(got) == np.argmax(ref))
        worst, span = max(worst, float(np.abs(got - ref).max())), max(span, float(np.abs(ref).max()))
    assert agree / len(xs) >= 0.98 and worst <= 0.05 * span, (agree, worst, span)


def test_constant_quantize_dequantize_folds_exactly() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 4] x) => (float[1, 3] y) {
        q = QuantizeLinear(w, s, z)
        d = DequantizeLinear(q, s, z)
        y = MatMul(x, d)
    }
    """, w=rand(4, 3), s=np.array(0.02, np.float32), z=np.array(3, np.int8))
    result = check_pass(Dequantize, proto, {"x": rand(1, 4)})
    assert ops(result.model) == ["MatMul"]
    folded = result.model.graph.nodes[0].inputs[1].values
    np.testing.assert_allclose(folded, (np.clip(np.rint(rand(4, 3) / 0.02) + 3, -128, 127) - 3) * 0.02, rtol=1e-6)


def test_activation_pair_becomes_the_clamp_of_its_grid() -> None:
    proto = parse("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[1, 6] x) => (float[1, 6] y) {
        q = QuantizeLinear(x, s, z)
        y = DequantizeLinear(q, s, z)
    }
    """, s=np.array(0.01, np.float32), z=np.array(-128, np.int8))
    model = run_pipeline(OnnxModel.from_proto(proto), "dequantize", PassContext(), verify=False)[0]
    assert ops(model) == ["Clip"]
    x = np.array([[-1.0, -0.004, 0.0, 0.7, 2.5, 3.0]], np.float32)
    got = ort.session(model).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, np.clip(x, 0.0, 2.55), rtol=1e-6)
    assert_same_outputs(proto, model.to_proto(), {"x": np.array([[0.0, 0.1, 0.5, 1.0, 2.0, 2.5]], np.float32)})


def test_qoperator_model_is_rejected_saying_what_to_do(tmp_path: Path) -> None:
    proto, _ = quantized(tmp_path, "QOperator", per_channel=False)
    with pytest.raises(FreemlError) as info:
        run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)
    text = info.value.render()
    assert "integer-quantized" in text and "QLinearConv" in text and "QuantFormat.QDQ" in text
