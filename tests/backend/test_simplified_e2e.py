"""Exports rewritten by the graph simplifiers users run before deploying (onnx-simplifier, onnxslim), end to
end: compile -> C (gcc, clang ASan+UBSan) -> onnxruntime on the simplified model.

The models in tests/fixtures/simplified/ were written by ``tools/simplified_fixtures.py`` (it needs onnxsim
and onnxslim; the tests do not): exporter sweep cases (``bench/exporter_cases/simplified_cases.py``) whose
torch or skl2onnx export was then simplified; ``<case>.npz`` holds the first samples of the case (``x``).

For every model: normalize,quantize,lower,plan-memory; the generated C equals the LIR interpreter bit for
bit; and against onnxruntime on the simplified (unnormalized) model, every output's top-1 agrees on at
least TOP1 of the samples (a one-column output: within VALUE_ERROR of its largest value), with the
program's outputs dequantized: a dropped final Softmax by its logits' argmax against the original
output of that size, the class output (its label) against the original's label output.
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

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "simplified"
MODELS = sorted(p.stem for p in FIXTURES.glob("*.onnx"))
TOP1 = 0.97
"""Random-weight nets have near ties; the exporter bench's rule (0.995, or 0.98 with only near ties)
is stricter, this one needs no scores of the ties."""
VALUE_ERROR = 0.03


def test_fixtures_are_present_and_small() -> None:
    assert {name.rsplit("-", 1)[-1] for name in MODELS} == {"sim", "sim1", "slim"}, MODELS
    for name in MODELS:
        assert (FIXTURES / f"{name}.onnx").stat().st_size < 32_000, name
        assert (FIXTURES / f"{name}.npz").is_file(), name


@pytest.mark.parametrize("name", MODELS)
def test_simplified_model_c_matches_onnxruntime(name: str, tmp_path: Path) -> None:
    original = onnx.load(str(FIXTURES / f"{name}.onnx"))
    x = np.load(FIXTURES / f"{name}.npz")["x"].astype(np.float32)
    input_name = original.graph.input[0].name
    ctx = PassContext(data=Dataset.from_arrays({input_name: x}), out_dir=str(tmp_path / "gen"), command_line="pytest")
    normalized, _ = run_pipeline(OnnxModel.from_proto(original), "normalize", ctx, verify=False)
    program, _ = run_pipeline(normalized, "quantize,lower,plan-memory", ctx, verify=False)
    assert isinstance(program, Program)
    feeds = [{input_name: x[i:i + 1]} for i in range(len(x))]
    quantized = [quantize_inputs(program, f) for f in feeds]
    check_c_equals_interpreter(program, tmp_path / "c", quantized, f"simplified/{name}", onnx_model=original)

    session = ort.session(original)
    names = [o.name for o in session.get_outputs()]
    labels = json.loads(program.meta.get("labels", "null"))
    ports = [p.onnx_name for p in program.outputs]
    agree = {port: 0 for port in ports}
    worst = {port: 0.0 for port in ports}
    largest = {port: 1e-6 for port in ports}
    for f, q in zip(feeds, quantized):
        res = run_program(program, q)
        got = dequantize_outputs(program, res)
        want = [np.asarray(v) for v in session.run(None, f)]
        for port in ports:
            mine = got[port].reshape(-1).astype(np.float64)
            if port == "class":       # the class index, against the original's label output
                index = int(mine[0])
                label = next(v for v in want if v.dtype.kind in "iu").reshape(-1)[0]
                agree[port] += int((labels[index] if labels else index) == label)
                continue
            # the output of that name, or the original float output of its size (a dropped final Softmax)
            theirs = (want[names.index(port)] if port in names
                      else next(v for v in want if v.dtype.kind == "f" and v.size == mine.size))
            theirs = theirs.reshape(-1).astype(np.float64)
            agree[port] += int(np.argmax(mine) == np.argmax(theirs))
            worst[port] = max(worst[port], float(np.abs(mine - theirs).max()))
            largest[port] = max(largest[port], float(np.abs(theirs).max()))
    for port in ports:
        if got[port].size == 1 and port != "class":
            assert worst[port] <= VALUE_ERROR * largest[port], (port, worst[port], largest[port])
        else:
            assert agree[port] >= TOP1 * len(x), (port, agree[port], len(x))
