"""A feature map combined with a per-channel activation (squeeze-excitation gates, global-context
adds), end to end: broadcast-activations widens the small operand with a nearest upsampling, the
Add/Mul becomes a same-shape `add`/`mul` step, the C equals the interpreter bit for bit and agrees
with onnxruntime on the original model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter
from onnx import TensorProto, helper, numpy_helper
from test_activations_e2e import TOP1, against_onnxruntime, compile_program

from transpiler import ort
from transpiler.data import Dataset
from transpiler.lir.qio import quantize_inputs
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext


def gated_model(rank: int, seed: int) -> onnx.ModelProto:
    """conv -> relu -> r;  r * sigmoid(GAP(r)) + GAP(r)  -> conv -> flatten -> gemm (1-D or 2-D maps)."""
    rng = np.random.default_rng(seed)
    spatial = [6, 6] if rank == 4 else [10]
    k = [3] * len(spatial)
    inits = {"W1": rng.normal(0, 0.5, (4, 2, *k)), "B1": rng.normal(0, 0.1, 4),
             "W2": rng.normal(0, 0.4, (3, 4, *k)), "B2": rng.normal(0, 0.1, 3)}
    out_spatial = [s - 2 for s in spatial]
    flat = 3 * int(np.prod(out_spatial))
    inits |= {"W3": rng.normal(0, 0.3, (5, flat)), "B3": rng.normal(0, 0.1, 5)}
    pads = [1] * 2 * len(spatial)
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["c"], pads=pads, kernel_shape=k),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Sigmoid", ["g"], ["s"]),
             helper.make_node("Mul", ["r", "s"], ["m"]),
             helper.make_node("Add", ["g", "m"], ["a"]),            # the small operand first
             helper.make_node("Conv", ["a", "W2", "B2"], ["d"], kernel_shape=k),
             helper.make_node("Flatten", ["d"], ["f"]),
             helper.make_node("Gemm", ["f", "W3", "B3"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "gated", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, *spatial])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
                              [numpy_helper.from_array(np.asarray(v, np.float32), n) for n, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return proto


@pytest.mark.parametrize("rank", [4, 3], ids=["2d", "1d"])
def test_per_channel_gate_and_context_add_compile_and_agree(rank: int, tmp_path: Path) -> None:
    proto = gated_model(rank, seed=rank)
    shape = [int(d.dim_value) for d in proto.graph.input[0].type.tensor_type.shape.dim]
    xs = np.random.default_rng(7).standard_normal((120, *shape[1:])).astype(np.float32)
    normalized = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(), verify=False)[0]
    for x in xs[:10]:                                                      # the rewrite keeps the semantics
        feed = {"x": x.reshape(shape)}
        np.testing.assert_allclose(ort.session(normalized).run(None, feed)[0], ort.session(proto).run(None, feed)[0],
                                   rtol=1e-5, atol=1e-6)
    assert [n.op for n in normalized.graph.nodes].count("Resize") == 2
    program = compile_program(OnnxModel.from_proto(proto), Dataset.from_arrays({"x": xs}), tmp_path / "gen")
    ops = [s.op for s in program.steps]
    assert ops.count("upsample") == 2 and "mul" in ops and "add" in ops
    figures = against_onnxruntime(program, OnnxModel.from_proto(proto), xs, "x")
    assert figures["top1"] >= TOP1, figures
    inputs = [quantize_inputs(program, {"x": x[None]}) for x in xs[:20]]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, f"gated_{rank}d")
