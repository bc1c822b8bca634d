"""Self-attention end to end: a small torch nn.TransformerEncoderLayer (+ mean pooling + Linear),
exported by the legacy and the dynamo exporter, is rebuilt per head by `attention` (onnxruntime gives
the original's outputs), lowers to `matmul`/`softmax`/`layernorm` steps, the C equals the
interpreter bit for bit and the interpreter agrees with onnxruntime within the error bound; the
softmax and matmul kernels on edge rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter
from onnx import TensorProto, helper, numpy_helper
from test_activations_e2e import TOP1, against_onnxruntime, compile_program
from transformer_models import CONFIGS, transformer

from backends.lower_softmax import exp_table, table_error
from transpiler import ort
from transpiler.data import Dataset
from transpiler.lir import kernels
from transpiler.lir.qio import quantize_inputs
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy17", "dynamo"])
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_transformer_encoder_c_equals_interpreter_and_agrees_with_onnxruntime(config: str, dynamo: bool,
                                                                               tmp_path: Path) -> None:
    proto, shape = transformer(config, dynamo)
    label = f"transformer_{config}_{'dynamo' if dynamo else 'legacy'}"
    _check_transformer(proto, shape, CONFIGS[config][1], tmp_path, label)


def test_the_onnx_attention_op_of_opset_23_compiles(tmp_path: Path) -> None:
    """dynamo at opset 23 writes one ONNX Attention op over [1, H, T, d] heads (attention-op)."""
    pytest.importorskip("onnxscript")
    proto, shape = transformer("d32h2", dynamo=True, opset=23)
    assert "Attention" in {n.op_type for n in proto.graph.node}
    _check_transformer(proto, shape, CONFIGS["d32h2"][1], tmp_path, "transformer_d32h2_opset23")


def _check_transformer(proto: onnx.ModelProto, shape: tuple[int, ...], heads: int, tmp_path: Path,
                       label: str) -> None:
    xs = np.random.default_rng(3).standard_normal((200, *shape[1:])).astype(np.float32)
    normalized = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)[0]
    assert [n.op for n in normalized.graph.nodes].count("Softmax") == heads
    for x in xs[:10]:                                             # the rewrites keep the semantics
        feed = {"x": x.reshape(shape)}
        np.testing.assert_allclose(ort.session(normalized).run(None, feed)[0], ort.session(proto).run(None, feed)[0],
                                   rtol=1e-4, atol=1e-5)
    program = compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": xs}), tmp_path / "gen")
    ops = [s.op for s in program.steps]
    assert ops.count("softmax") == heads and ops.count("matmul") == 2 * heads and ops.count("layernorm") == 2
    figures = against_onnxruntime(program, normalized, xs, "x")
    assert figures["top1"] >= TOP1, figures
    assert figures["bound"] > 0.0, figures
    inputs = [quantize_inputs(program, {"x": x.reshape(shape)}) for x in xs[:20]]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, label)


def _scores_model(t: int, dk: int) -> onnx.ModelProto:
    """q, k [1, T, dk] -> Softmax(MatMul(q, Transpose(k))) -> MatMul(., q): matmul and softmax alone."""
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["q", "kt"], ["s"]),
             helper.make_node("Softmax", ["s"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "q"], ["y"])]
    graph = helper.make_graph(nodes, "scores", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, t, dk])
                                                for n in ("q", "k")],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, t, dk])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return proto


@pytest.mark.parametrize("t,dk", [(1, 3), (5, 8), (16, 32)])
def test_matmul_softmax_edge_inputs_c_equals_interpreter(t: int, dk: int, tmp_path: Path) -> None:
    """Full-scale and zero operands, equal scores (a uniform row), one dominant score, rows of one."""
    rng = np.random.default_rng(t)
    calib = {n: rng.standard_normal((40, t, dk)).astype(np.float32) * 2 for n in ("q", "k")}
    program = compile_program(OnnxModel.from_proto(_scores_model(t, dk)), Dataset.from_arrays(calib), tmp_path / "gen")
    ops = sorted(s.op for s in program.steps)
    assert ops == ["matmul", "matmul", "softmax"] + (["transpose"] if t > 1 else []), ops   # T = 1: a view
    bufs = {p.onnx_name: p.buffer for p in program.inputs}
    shape = program.buffers[bufs["q"]].shape
    size = t * dk
    specials = [np.zeros(size), np.full(size, 32767), np.full(size, -32768),
                np.where(np.arange(size) % 3 == 0, 32767, -32768), np.where(np.arange(size) == 0, 32767, 0)]
    inputs = [{bufs["q"]: a.astype(np.int16).reshape(shape), bufs["k"]: b.astype(np.int16).reshape(shape)}
              for a in specials for b in specials[:3]]
    inputs += [quantize_inputs(program, {n: calib[n][i][None] for n in ("q", "k")}) for i in range(5)]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, f"matmul_softmax_{t}x{dk}")


@pytest.mark.parametrize("q_x", [0, 4, 8, 12, 15])
def test_softmax_is_within_its_documented_error(q_x: int) -> None:
    """The kernel's probabilities against float softmax of the same int16 logits: within
    e_t (1 + N y) + 2^-15 y + 2^-16, e_t the table's measured error (backends/lower_softmax.py)."""
    table, step = exp_table(q_x)
    e_t = table_error(table, step, q_x)
    assert e_t < 1.5e-4
    rng = np.random.default_rng(q_x)
    for n in (1, 2, 8, 16, 100):
        x = np.clip(np.round(rng.standard_normal((20, n)) * rng.uniform(0.5, 6, (20, 1)) * 2.0 ** q_x),
                    -32768, 32767).astype(np.int16)
        y = kernels.softmax(x, table, step, 0).astype(np.float64) * 2.0 ** -15
        real = x.astype(np.float64) * 2.0 ** -q_x
        e = np.exp(real - real.max(axis=1, keepdims=True))
        ref = e / e.sum(axis=1, keepdims=True)
        assert np.all(np.abs(y - ref) <= e_t * (1 + n * ref) + 2.0 ** -15 * ref + 2.0 ** -16 + 1e-12), (q_x, n)
