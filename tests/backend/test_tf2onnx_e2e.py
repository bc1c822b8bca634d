"""Keras models exported by tf2onnx, end to end: compile -> C (gcc, clang ASan+UBSan) -> onnxruntime.

The models in tests/fixtures/tf2onnx/ were trained on scikit-learn's digits and exported by
``tools/keras_models.py --fixtures`` (it needs TensorFlow and tf2onnx in a separate venv: see its
docstring; the tests do not). Each holds the patterns tf2onnx writes for Keras layers: NHWC inputs
(a Reshape or Transpose to NCHW), ``MatMul`` + ``Add`` for Dense (``Gemm`` at a fixed batch),
Shape/Gather/Concat shape arithmetic for Flatten at a dynamic batch, a Transpose back to NHWC
before Flatten, ``auto_pad``/explicit pads for 'same' convolutions and pools, Unsqueeze/Squeeze
around Conv1D, GlobalMaxPool, Mul/Add for Rescaling (per channel of an NHWC input, before the
Transpose), Clip/LeakyRelu/Elu activations, Dense on every pixel or step (Tensordot: Reshape,
MatMul, Reshape in NHWC), Subtract/Maximum/Average merges, UpSampling2D (Unsqueeze, Tile,
Transpose, Reshape), LayerNormalization (TensorFlow's moments form: x and the mean scaled
separately and added), LSTM/GRU with ``unroll=True`` (a time-major Reshape unstacked into
steps, a Squeeze broadcast back, products with the zero initial state). Beside each
model ``<kind>.npz`` holds 64 held-out images in the layout the model's input expects.

For every model: normalize,quantize,lower,plan-memory; the generated C equals the LIR interpreter
bit for bit; and against onnxruntime on the ORIGINAL (unnormalized) model, top-1 agreement is
>= 99.5 % and the probabilities (the dropped final Softmax applied to the program's logits) are
within 0.02; the logits are within 5 % of their largest value of onnxruntime's on the normalized
model (what ``freeml-tx verify`` judges by).
"""

from __future__ import annotations

import json
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

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tf2onnx"
MODELS = sorted(p.name for p in FIXTURES.glob("*.onnx"))
TOP1 = 0.995
MAX_PROB_ERROR = 0.02
MAX_LOGIT_ERROR = 0.05


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def test_fixtures_are_present_and_small() -> None:
    """The fixtures the tests rely on: at least eight models, each < 150 KB, each with its data."""
    assert len(MODELS) >= 8, MODELS
    for name in MODELS:
        assert (FIXTURES / name).stat().st_size < 150_000, name
        assert (FIXTURES / f"{name.split('_op')[0]}.npz").is_file(), name


@pytest.mark.parametrize("name", MODELS)
def test_tf2onnx_model_c_matches_onnxruntime(name: str, tmp_path: Path) -> None:
    original = onnx.load(str(FIXTURES / name))
    data = np.load(FIXTURES / f"{name.split('_op')[0]}.npz")
    x = data["x"].astype(np.float32)
    input_name = original.graph.input[0].name
    ds = Dataset.from_arrays({input_name: x})
    ctx = PassContext(data=ds, out_dir=str(tmp_path / "gen"), command_line="pytest")
    normalized, _ = run_pipeline(OnnxModel.from_proto(original), "normalize", ctx, verify=False)
    assert isinstance(normalized, OnnxModel)
    reference = onnx.ModelProto()
    reference.CopyFrom(normalized.to_proto())
    program, _ = run_pipeline(normalized, "quantize,lower,plan-memory", ctx, verify=False)
    assert isinstance(program, Program)

    feeds = [{input_name: x[i:i + 1]} for i in range(len(x))]
    inputs = [quantize_inputs(program, f) for f in feeds]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, f"tf2onnx/{name}", onnx_model=original)

    logits_name = program.outputs[0].onnx_name
    softmax = json.loads(program.meta.get("softmax", "{}"))
    probs_name = original.graph.output[0].name
    assert softmax == {logits_name: probs_name}, (softmax, logits_name, probs_name)
    orig_session = ort.session(original)
    norm_session = ort.session(ort.with_outputs(reference, [logits_name]))
    agree, worst_prob, worst_logit, largest = 0, 0.0, 0.0, 0.0
    for f, q in zip(feeds, inputs):
        logits = dequantize_outputs(program, run_program(program, q))[logits_name].reshape(-1).astype(np.float64)
        want_probs = orig_session.run([probs_name], f)[0].reshape(-1)
        want_logits = norm_session.run([logits_name], f)[0].reshape(-1)
        agree += int(np.argmax(logits) == np.argmax(want_probs))
        worst_prob = max(worst_prob, float(np.abs(_softmax(logits) - want_probs).max()))
        worst_logit = max(worst_logit, float(np.abs(logits - want_logits).max()))
        largest = max(largest, float(np.abs(want_logits).max()))
    assert agree / len(x) >= TOP1, (agree, len(x))
    assert worst_prob <= MAX_PROB_ERROR, worst_prob
    assert worst_logit <= MAX_LOGIT_ERROR * largest, (worst_logit, largest)
