"""Recurrent layers end to end: torch nn.LSTM / nn.GRU / nn.RNN (legacy and dynamo exports) ->
unroll-recurrent -> fc, lut, mul, add, slice steps -> C.

The generated C equals the interpreter bit for bit (gcc -O2, clang ASan + UBSan), and the
interpreter agrees with onnxruntime on the original model: top-1 on >= 99.5 % of 200 mnist1d-like
signals, every output within the worst-case error bound of the run's Q formats
(backends/lower_bounds.py). A recurrent layer's weights are stored once, not once per step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from emit_c_helpers import check_c_equals_interpreter, import_all_passes
from recurrent_models import seq_case
from test_activations_e2e import TOP1, against_onnxruntime, compile_program

from transpiler.lir.qio import quantize_inputs

pytest.importorskip("torch")
import_all_passes()

CASES = {
    # name: (kind, features, hidden, length, extra); lengths within what the FR5994's lower FRAM holds
    # of the unrolled code (ONNX-level tests go to 40 steps and 2 layers for every kind)
    "lstm-h16-t8": ("LSTM", 3, 16, 8, {}),
    "lstm-h32-t4-2layers": ("LSTM", 2, 32, 4, {"layers": 2}),
    "gru-h16-t10": ("GRU", 4, 16, 10, {}),
    "gru-h32-t8-seqfirst": ("GRU", 3, 32, 8, {"batch_first": False}),
    "rnn-tanh-h16-t40": ("RNN", 1, 16, 40, {}),
    "rnn-relu-h32-t16-2layers": ("RNN", 3, 32, 16, {"nonlinearity": "relu", "layers": 2}),
    "lstm-h16-t8-dynamo": ("LSTM", 3, 16, 8, {"dynamo": True}),
    "gru-h16-t8-dynamo": ("GRU", 3, 16, 8, {"dynamo": True}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_recurrent_c_equals_interpreter_and_agrees_with_onnxruntime(case: str, tmp_path: Path) -> None:
    kind, features, hidden, length, extra = CASES[case]
    if extra.get("dynamo"):
        pytest.importorskip("onnxscript")
    original, data, xs = seq_case(kind, features, hidden, length, seed=sorted(CASES).index(case), **extra)
    program = compile_program(original.copy(), data, tmp_path / "gen")
    ops = [s.op for s in program.steps]
    assert ops.count("slice") == length and "fc" in ops
    assert ("mul" in ops) == (kind != "RNN")
    # every gate's weights once: the constants are at most the float model's parameters (+ indices)
    consts = sum(b.nbytes for b in program.buffers.values() if b.is_const and b.dtype == "i16"
                 and not b.name.startswith("lut_"))
    params = sum(int(np.prod(t.values.shape)) for t in original.graph.tensors().values()
                 if hasattr(t, "values") and t.values.ndim >= 2 and t.values.dtype == np.float32)
    assert consts <= 2 * params, (consts, params)
    figures = against_onnxruntime(program, original, xs, "x")     # the exported model, not the unrolled one
    assert figures["top1"] >= TOP1, figures
    inputs = [quantize_inputs(program, {"x": x[None]}) for x in xs[:30]]
    check_c_equals_interpreter(program, tmp_path / "c", inputs, f"recurrent_{case}")
