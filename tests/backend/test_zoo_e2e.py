"""Model-zoo architectures as torch exports them, end to end: compile -> C -> onnxruntime on the original model.

The models in tests/fixtures/zoo/ were written by ``tools/zoo_fixtures.py`` (it needs torch, torchvision
and transformers; the tests do not): torchvision's MobileNetV3-small at width 0.1 (squeeze-excitation,
hardswish, BatchNorm), transformers' ViT (a class token concatenated to the patch tokens:
`constant-concat`; two-head eager attention whose Softmax is wrapped in float Casts: `remove-noops`
before `attention`) from the legacy and the dynamo exporter, and a two-layer BERT over 8 token ids.
Random weights, 10 classes; ``<name>.npz`` holds the samples under the graph input's name.

For every model: normalize,quantize,lower,plan-memory fit the MSP430FR5994 (256 KiB FRAM, 8 KiB SRAM)
without compression; the generated C equals the LIR interpreter bit for bit (gcc, clang ASan+UBSan) on
a few samples; and on every sample the interpreter's class is onnxruntime's on the ORIGINAL model,
except where the original's two best scores are within NEAR_TIE of its score range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter, import_all_passes
from test_activations_e2e import compile_program

from transpiler import ort
from transpiler.data import Dataset
from transpiler.lir.interp import run_program
from transpiler.lir.qio import dequantize_outputs, quantize_inputs
from transpiler.model import OnnxModel

import_all_passes()

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "zoo"
MODELS = sorted(p.stem for p in FIXTURES.glob("*.onnx"))
NEAR_TIE = 0.02
"""A sample whose original two best scores are closer than this fraction of its score range is a near
tie: fixed-point rounding may pick either class."""
C_SAMPLES = 3


def test_fixtures_are_present_and_small() -> None:
    """The fixtures the tests rely on: a torchvision CNN, ViT from both exporters and BERT, each < 200 KB."""
    assert set(MODELS) >= {"tv_mobilenet_v3_small_w010-legacy13", "hf_vit-legacy17", "hf_vit-dynamo18",
                           "hf_bert-legacy17"}, MODELS
    for name in MODELS:
        for suffix in (".onnx", ".npz"):
            assert (FIXTURES / f"{name}{suffix}").stat().st_size < 200_000, name


@pytest.mark.parametrize("name", MODELS)
def test_zoo_model_c_matches_onnxruntime(name: str, tmp_path: Path) -> None:
    original = onnx.load(str(FIXTURES / f"{name}.onnx"))
    samples = dict(np.load(FIXTURES / f"{name}.npz"))
    (input_name, xs), = samples.items()
    # plan-memory raises a BudgetError when the model does not fit PassContext's 256 KiB FRAM / 8 KiB SRAM
    program = compile_program(OnnxModel.from_proto(original), Dataset.from_arrays(samples), tmp_path / "gen")

    feeds = [{input_name: xs[i:i + 1]} for i in range(len(xs))]
    quantized = [quantize_inputs(program, ort.cast_feeds(original, f)) for f in feeds]
    check_c_equals_interpreter(program, tmp_path / "c", quantized[:C_SAMPLES], f"zoo/{name}", onnx_model=original)

    session = ort.session(original)
    out = program.outputs[0].onnx_name
    wrong = []
    for i, (feed, q) in enumerate(zip(feeds, quantized)):
        want = np.asarray(session.run(None, ort.cast_feeds(original, feed))[0], dtype=np.float64).reshape(-1)
        got = dequantize_outputs(program, run_program(program, q))[out].reshape(-1)
        top2 = np.sort(want)[-2:]
        near_tie = top2[1] - top2[0] < NEAR_TIE * (want.max() - want.min())
        if int(np.argmax(got)) != int(np.argmax(want)) and not near_tie:
            wrong.append((i, int(np.argmax(got)), int(np.argmax(want))))
    assert not wrong, wrong
