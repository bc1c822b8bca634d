"""scikit-learn models as hummingbird-ml writes them (tensor graphs, no ``ai.onnx.ml`` op), end to end:
compile -> C -> onnxruntime on the original model.

The models in tests/fixtures/hummingbird/ (a few KB each) were written by ``tools/hummingbird_fixtures.py``
(it needs hummingbird-ml; the tests do not): GEMM-form trees (a decision tree with labels 1, 3, 5 picked by
``Gather(classes, ArgMax)``, a random forest, a random-forest regressor), tree walks (tree_trav: a
decision tree and gradient boosting with its base and Softmax; perf_tree_trav: a random forest),
logistic regressions (3 classes with labels 2, 4, 6 and one-vs-rest sigmoids divided by their sum;
binary with a ``Greater(z, 0)`` label), a StandardScaler pipeline and an MLP. Each ``<name>.npz``
holds held-out rows (``x``).

For every model: normalize,quantize,lower,plan-memory; the trees become one ``trees`` walk
(`hummingbird-trees`; a tree_trav / perf_tree_trav walk's Gather/Where go), the linear models Gemm layers;
the generated C equals the LIR interpreter bit for bit (gcc, clang ASan+UBSan); and against onnxruntime on
the ORIGINAL model, on every held-out row (a tree walk's rows whose feature lies within an input LSB of a
threshold left out: there the 16-bit input decides), the device's label is onnxruntime's, except where
onnxruntime's two best scores are within TIE of each other (at most two such rows), and a regressor's
value is onnxruntime's within the leaves' rounding.
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
from transpiler.lir.trees import boundary_samples
from transpiler.manager import run_pipeline
from transpiler.model import OnnxModel
from transpiler.pass_infra import PassContext

import_all_passes()

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hummingbird"
MODELS = sorted(p.stem for p in FIXTURES.glob("*.onnx"))
TIE = 0.01
"""Rows whose two best original scores differ by less than this are near ties: not judged by label."""
MIN_JUDGED = 0.8


def test_fixtures_are_present_and_small() -> None:
    assert {"dt_gemm", "rf_gemm", "rfr_gemm", "dt_tree_trav", "rf_perf_tree_trav", "gb_tree_trav", "logreg",
            "logreg_bin", "mlpc", "pipe_std_logreg"} <= set(MODELS)
    for name in MODELS:
        assert (FIXTURES / f"{name}.onnx").stat().st_size < 16_000, name
        assert (FIXTURES / f"{name}.npz").is_file(), name


@pytest.mark.parametrize("name", MODELS)
def test_hummingbird_model_c_matches_onnxruntime(name: str, tmp_path: Path) -> None:
    original = onnx.load(str(FIXTURES / f"{name}.onnx"))
    x = np.load(FIXTURES / f"{name}.npz")["x"].astype(np.float32)
    input_name = original.graph.input[0].name
    ctx = PassContext(data=Dataset.from_arrays({input_name: x}), out_dir=str(tmp_path / "gen"), command_line="pytest")
    normalized, _ = run_pipeline(OnnxModel.from_proto(original), "normalize", ctx, verify=False)
    assert isinstance(normalized, OnnxModel)
    kept = [n.op for n in normalized.graph.nodes]
    if name.endswith("_gemm"):
        assert kept == ["TreeEnsembleRegressor"], kept
    elif name.endswith("tree_trav"):     # the walk's leaf values per tree, then the model's sum over trees
        assert kept.count("TreeEnsembleRegressor") == 1 and not {"Gather", "GatherElements", "Where"} & set(kept), kept
    else:
        assert set(kept) <= {"Gemm", "Relu", "Sigmoid", "Softmax"}, kept
    program, _ = run_pipeline(normalized, "quantize,lower,plan-memory", ctx, verify=False)
    assert isinstance(program, Program)
    quantized = [quantize_inputs(program, {input_name: x[i:i + 1]}) for i in range(len(x))]
    check_c_equals_interpreter(program, tmp_path / "c", quantized, f"hummingbird/{name}", onnx_model=original)

    session = ort.session(original)
    near = boundary_samples(program, {input_name: x})
    judged = np.ones(len(x), bool) if near is None else ~near
    labels = json.loads(program.meta.get("labels", "null"))
    out = program.outputs[0].onnx_name
    regressor = name == "rfr_gemm"
    if regressor:
        values = next(program.buffers[s.inputs[1]] for s in program.steps if s.op == "tree_sum")
        walk = next(s for s in program.steps if s.op == "trees")
        q_out = program.buffers[program.outputs[0].buffer].q
        assert isinstance(values.q, int) and isinstance(q_out, int)
        tolerance = (program.buffers[walk.outputs[0]].size + 1) * 2.0 ** -(values.q + 1) + 2.0 ** -(q_out + 1)
    ties = 0
    for i in np.flatnonzero(judged):
        outs = session.run(None, {input_name: x[i:i + 1]})
        res = run_program(program, quantized[i])
        if regressor:
            got = dequantize_outputs(program, res)[out].reshape(-1).astype(np.float64)
            want = np.asarray(outs[0], np.float64).reshape(-1)
            assert np.abs(got - want).max() <= tolerance * (1 + 1e-6), (i, got, want, tolerance)
            continue
        label = int(np.asarray([o for o in outs if np.asarray(o).dtype.kind in "iu"][0]).reshape(-1)[0])
        scores = np.sort(np.asarray([o for o in outs if np.asarray(o).dtype.kind == "f"][0]).reshape(-1))
        index = int(np.asarray(res["class"]).reshape(-1)[0])
        if (labels[index] if labels else index) != label:
            assert scores[-1] - scores[-2] < TIE, (i, index, label, scores)
            ties += 1
    assert judged.mean() >= MIN_JUDGED and ties <= 2, (int(judged.sum()), ties)
