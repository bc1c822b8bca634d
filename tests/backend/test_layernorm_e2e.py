"""Layer normalisation end to end: torch's nn.LayerNorm from the legacy exporter (opset 13: the
decomposed ReduceMean/Sub/Pow/Sqrt/Div form; opset 17: LayerNormalization) and dynamo becomes one
`layernorm` step; the C equals the interpreter bit for bit, the interpreter agrees with onnxruntime
within the error bound; the kernel's integer definition on edge rows (constant, extreme, long)."""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter
from onnx import TensorProto, helper, numpy_helper
from test_activations_e2e import TOP1, against_onnxruntime, compile_program

from transpiler import ort
from transpiler.data import Dataset
from transpiler.lir import kernels
from transpiler.lir.qio import quantize_inputs
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

EXPORTS = ("legacy13", "legacy17", "dynamo")


def torch_model(kind: str, export: str, seed: int) -> tuple[onnx.ModelProto, tuple[int, ...]]:
    """``mlp``: Linear -> LayerNorm -> ReLU -> Linear on [1, 20]; ``conv1d``: Conv1d -> LayerNorm over
    the length -> ReLU -> Flatten -> Linear on [1, 3, 12]; ``seq``: Linear on every step of [1, 6, 8]
    -> LayerNorm -> mean over the steps -> Linear."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(seed)

    class Seq(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.ln, self.b = nn.Linear(8, 16), nn.LayerNorm(16), nn.Linear(16, 4)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.b(self.ln(self.a(x)).mean(1))

    if kind == "mlp":
        net, shape = nn.Sequential(nn.Linear(20, 32), nn.LayerNorm(32), nn.ReLU(), nn.Linear(32, 5)), (1, 20)
    elif kind == "conv1d":
        net = nn.Sequential(nn.Conv1d(3, 4, 3, padding=1), nn.LayerNorm(12), nn.ReLU(), nn.Flatten(),
                            nn.Linear(48, 5))
        shape = (1, 3, 12)
    else:
        net, shape = Seq(), (1, 6, 8)
    with torch.no_grad():                      # a scale and shift that are not the identity
        for m in net.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    net.eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if export == "dynamo":
            prog = torch.onnx.export(net, (torch.zeros(*shape),), dynamo=True, input_names=["x"],
                                     output_names=["y"], verbose=False)
            return prog.model_proto, shape
        torch.onnx.export(net, (torch.zeros(*shape),), buf, dynamo=False, opset_version=int(export[-2:]),
                          input_names=["x"], output_names=["y"])
    return onnx.load_from_string(buf.getvalue()), shape


@pytest.mark.parametrize("export", EXPORTS)
@pytest.mark.parametrize("kind", ["mlp", "conv1d", "seq"])
def test_torch_layernorm_c_equals_interpreter_and_agrees_with_onnxruntime(kind: str, export: str,
                                                                          tmp_path: Path) -> None:
    proto, shape = torch_model(kind, export, seed=EXPORTS.index(export))
    ops = {n.op_type for n in proto.graph.node}
    assert ("LayerNormalization" in ops) == (export != "legacy13"), ops
    xs = np.random.default_rng(2).standard_normal((200, *shape[1:])).astype(np.float32)
    normalized = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)[0]
    assert [n.op for n in normalized.graph.nodes].count("LayerNormalization") == 1
    for x in xs[:10]:                                            # the rewrites keep the semantics
        feed = {"x": x.reshape(shape)}
        np.testing.assert_allclose(ort.session(normalized).run(None, feed)[0], ort.session(proto).run(None, feed)[0],
                                   rtol=1e-4, atol=1e-5)
    program = compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": xs}), tmp_path / "gen")
    assert [s.op for s in program.steps].count("layernorm") == 1
    figures = against_onnxruntime(program, normalized, xs, "x")
    assert figures["top1"] >= TOP1, figures
    assert figures["bound"] > 0.0, figures                      # the bound was finite and checked
    inputs = [quantize_inputs(program, {"x": x.reshape(shape)}) for x in xs[:30]]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, f"layernorm_{kind}_{export}")


def _ln_model(n: int, rows: int, scale: np.ndarray, bias: np.ndarray, eps: float) -> onnx.ModelProto:
    """x [1, rows, n] -> LayerNormalization -> y."""
    node = helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1, epsilon=eps)
    graph = helper.make_graph([node], "ln", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, rows, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, rows, n])],
                              [numpy_helper.from_array(scale.astype(np.float32), "g"),
                               numpy_helper.from_array(bias.astype(np.float32), "b")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return proto


@pytest.mark.parametrize("n", [1, 2, 7, 64, 1024, 16384])
def test_layernorm_edge_rows_c_equals_interpreter(n: int, tmp_path: Path) -> None:
    """Constant rows (W = eps or 0), one outlier, full-scale alternation, rows of 1 to 16384 (the
    longest: |N x - S| near 2^30, the squares' sum near 2^44)."""
    rng = np.random.default_rng(n)
    rows = 4 if n <= 1024 else 1                                  # the device's FRAM holds one long row
    proto = _ln_model(n, rows, rng.uniform(-2, 2, n), rng.uniform(-1, 1, n), 1e-5)
    xs = rng.standard_normal((50, rows, n)).astype(np.float32) * 3
    program = compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": xs}), tmp_path / "gen")
    (step,) = [s for s in program.steps if s.op == "layernorm"]
    x_buf = program.inputs[0].buffer
    size = rows * n
    special = [np.zeros(size), np.full(size, 32767), np.full(size, -32768),
               np.where(np.arange(size) % 2 == 0, 32767, -32768), np.where(np.arange(size) % n == 0, 32767, 0)]
    inputs = [{x_buf: v.astype(np.int16).reshape(program.buffers[x_buf].shape)} for v in special]
    inputs += [quantize_inputs(program, {"x": x[None]}) for x in xs[:5]]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, f"layernorm_edges_{n}")
    assert step.attrs["eps"] > 0


def test_layernorm_rows_are_normalised_to_the_documented_precision() -> None:
    """Z = z / sqrt(N) in q = 15 within 2 LSB of the float value (the 15-bit deviations of a row that
    spans more than 2^15, the 16-bit square root and reciprocal, the rounding) on rows from a few
    LSBs to full scale; a constant row gives 0."""
    rng = np.random.default_rng(5)
    for n in (2, 16, 100, 1024, 2048, 16384):
        for spread in (0.5, 3.0, 100.0, 8000.0):
            x = np.clip(np.round(rng.standard_normal((8, n)) * spread), -32768, 32767).astype(np.int16)
            z = kernels.layernorm_rows(x, eps=0).astype(np.float64)
            d = x.astype(np.float64) - x.mean(axis=1, keepdims=True)
            rms = np.sqrt((d ** 2).mean(axis=1, keepdims=True))
            ref = np.divide(d, rms * math.sqrt(n), out=np.zeros_like(d), where=rms > 0) * 2.0 ** 15
            assert np.max(np.abs(z - ref)) <= 2.0, (n, spread, float(np.max(np.abs(z - ref))))
    assert not kernels.layernorm_rows(np.full((2, 5), 123, np.int16), eps=0).any()
    with pytest.raises(ValueError):
        kernels.layernorm_rows(np.zeros((1, kernels.LAYERNORM_N_MAX + 1), np.int16), eps=0)
