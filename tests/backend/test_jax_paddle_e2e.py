"""Flax models exported by jax2onnx and Paddle models exported by paddle2onnx, end to end: compile ->
C (gcc, clang ASan+UBSan) -> onnxruntime on the ORIGINAL model.

The models in tests/fixtures/jax/ and tests/fixtures/paddle/ (a few KB each) were written by
``tools/jax_paddle_models.py --fixtures`` (it needs jax, flax, jax2onnx, paddlepaddle and
paddle2onnx in a separate venv: see its docstring; the tests do not). They are cases of
bench/exporter_cases/jax_cases.py and paddle_cases.py, trained briefly on scikit-learn's digits
(diabetes for the regressors), and hold the patterns these exporters write: jax2onnx's NHWC
convolutions between Transposes, ``inputs_as_nchw``, a symbolic batch ``B`` with a Reshape for the
flatten, opsets 17 to 23 (ReduceMean's axes an input), Flax's tanh GELU and its LayerNorm as
``mean(x^2) - mean(x)^2``; paddle2onnx's opset 11 to 17 graphs with ``Flatten``/``Reshape`` heads,
BatchNorm, exact (Erf) GELU, adaptive pools as GlobalAveragePool, an NHWC input transposed in the
model, Conv1D as Unsqueeze + Conv + Squeeze. Beside each ``<net>_op<opset>_b<1|N>.onnx``,
``<net>.npz`` holds 64 held-out samples (``x``) in the layout of the graph input.

For every model: normalize,quantize,lower,plan-memory; the generated C equals the LIR interpreter
bit for bit; and against onnxruntime on the ORIGINAL model (a final Softmax, LogSoftmax or
Sigmoid that `lower` dropped applied to the program's output): top-1 agreement >= 99.5 % for a
classifier, and every output value within 5 % of the largest |value| (a regressor's within 3 %).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter, import_all_passes

from transpiler import ort
from transpiler.data import Dataset
from transpiler.lir.interp import run_program
from transpiler.lir.ir import Program
from transpiler.lir.qio import dequantize_outputs, quantize_inputs
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

import_all_passes()

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FRAMEWORKS = ("jax", "paddle")
MODELS = [f"{framework}/{p.name}" for framework in FRAMEWORKS for p in sorted((FIXTURES / framework).glob("*.onnx"))]
TOP1 = 0.995
MAX_ERROR = 0.05
MAX_REGRESSOR_ERROR = 0.03


def _final(normalized: onnx.ModelProto, output: str) -> tuple[str, str] | None:
    """(op, input) of the Softmax/LogSoftmax/Sigmoid writing the original ``output`` in the normalized model."""
    return next(((n.op_type, n.input[0]) for n in normalized.graph.node
                 if output in n.output and n.op_type in ("Softmax", "LogSoftmax", "Sigmoid")), None)


def _apply(op: str | None, z: np.ndarray) -> np.ndarray:
    """The dropped final ``op`` applied to one sample's output ``z`` (the last axis)."""
    if op == "Sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if op in ("Softmax", "LogSoftmax"):
        shifted = z - z.max()
        log_sum = np.log(np.exp(shifted).sum())
        return np.exp(shifted - log_sum) if op == "Softmax" else shifted - log_sum
    return z


def test_fixtures_are_present_and_small() -> None:
    """Both exporters' fixtures: at least six models each, each < 20 KB, each with its data."""
    for framework in FRAMEWORKS:
        assert sum(name.startswith(f"{framework}/") for name in MODELS) >= 6, MODELS
    for name in MODELS:
        assert (FIXTURES / name).stat().st_size < 20_000, name
        assert (FIXTURES / f"{name.split('_op')[0]}.npz").is_file(), name


@pytest.mark.parametrize("name", MODELS)
def test_exported_model_c_matches_onnxruntime(name: str, tmp_path: Path) -> None:
    original = onnx.load(str(FIXTURES / name))
    x = np.load(FIXTURES / f"{name.split('_op')[0]}.npz")["x"].astype(np.float32)
    input_name = original.graph.input[0].name
    ctx = PassContext(data=Dataset.from_arrays({input_name: x}), out_dir=str(tmp_path / "gen"),
                      command_line="pytest")
    normalized, _ = run_pipeline(OnnxModel.from_proto(original), "normalize", ctx, verify=False)
    assert isinstance(normalized, OnnxModel)
    reference = normalized.to_proto()
    program, _ = run_pipeline(normalized, "quantize,lower,plan-memory", ctx, verify=False)
    assert isinstance(program, Program)

    feeds = [{input_name: x[i:i + 1]} for i in range(len(x))]
    inputs = [quantize_inputs(program, f) for f in feeds]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, name, onnx_model=original)

    (want_name,) = [o.name for o in original.graph.output]
    got_name = program.outputs[0].onnx_name     # a classifier's class index follows its scores
    final = None if got_name == want_name else _final(reference, want_name)
    assert got_name == want_name or (final is not None and final[1] == got_name), (got_name, want_name, final)
    session = ort.session(original)
    post = final[0] if final else None
    got = np.stack([_apply(post, dequantize_outputs(program, run_program(program, q))[got_name].reshape(-1))
                    for q in inputs]).astype(np.float64)
    want = np.stack([session.run([want_name], f)[0].reshape(-1).astype(np.float64) for f in feeds])
    assert got.shape == want.shape, (got.shape, want.shape)
    largest = float(np.abs(want).max())
    if want.shape[1] > 1:
        assert float(np.mean(got.argmax(axis=1) == want.argmax(axis=1))) >= TOP1
        assert float(np.abs(got - want).max()) <= MAX_ERROR * largest, (np.abs(got - want).max(), largest)
    else:
        bound = (MAX_ERROR if final else MAX_REGRESSOR_ERROR) * largest
        assert float(np.abs(got - want).max()) <= bound, (np.abs(got - want).max(), largest)
