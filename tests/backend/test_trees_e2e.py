"""scikit-learn tree ensembles through skl2onnx, end to end: `trees` + `tree_sum` steps -> C.

For DecisionTree, RandomForest, ExtraTrees and GradientBoosting classifiers (binary and
multiclass, ZipMap on and off) and regressors:

- the generated C equals the interpreter bit for bit (gcc -O2, clang ASan + UBSan) on the held-out
  rows and on random int16 inputs (every table path, saturated inputs);
- against onnxruntime on the ORIGINAL model: the class agrees with its label on >= 99 % of the
  held-out rows, and every disagreement (and every score off by more than the leaves' rounding) is
  a sample that transpiler/lir/trees.py marks (a feature within an input LSB of a threshold it
  meets on its path, the one place the fixed-point comparison may differ from the float one;
  docs/lir.md, "trees");
- the tree tables and the descriptors are FRAM constants (the plan counts them);
- a forest whose walk is split into committed tiles under power failures gives the uninterrupted
  outputs: on the host a failure before every FRAM store (gcc and clang + ASan/UBSan) and a random
  schedule, in the MSP430 simulator random (SRAM refilled with random words) and periodic failures.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from emit_c_helpers import check_c_equals_interpreter, import_all_passes, random_inputs

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

FEATURES = 8
HELD_OUT = 150
BUDGET = 2500
"""Cycles per power cycle of the intermittent test: the 10-tree walk splits into several tiles."""


def _estimator(kind: str) -> Any:
    from sklearn.ensemble import (ExtraTreesClassifier, GradientBoostingClassifier, GradientBoostingRegressor,
                                  RandomForestClassifier, RandomForestRegressor)
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    return {"dtc": lambda: DecisionTreeClassifier(max_depth=6, random_state=0),
            "rfc": lambda: RandomForestClassifier(10, max_depth=5, random_state=0),
            "etc": lambda: ExtraTreesClassifier(10, max_depth=5, random_state=0),
            "gbc": lambda: GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0),
            "dtr": lambda: DecisionTreeRegressor(max_depth=6, random_state=0),
            "rfr": lambda: RandomForestRegressor(10, max_depth=5, random_state=0),
            "gbr": lambda: GradientBoostingRegressor(n_estimators=10, max_depth=3, random_state=0)}[kind]()


def export(kind: str, classes: int, zipmap: bool = True) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """(skl2onnx model, training rows, held-out rows) of a fitted ``kind``."""
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import make_classification, make_regression

    rows = 300 + HELD_OUT
    if kind.endswith("r"):
        x, y = make_regression(rows, FEATURES, noise=0.5, random_state=1)
    else:
        x, y = make_classification(rows, FEATURES, n_informative=5, n_classes=classes, n_clusters_per_class=1,
                                   random_state=1)
    x = (x * 1.5 + 0.7).astype(np.float32)
    model = _estimator(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x[:300], y[:300])
        options = None if kind.endswith("r") or zipmap else {id(model): {"zipmap": False}}
        proto = to_onnx(model, initial_types=[("input", FloatTensorType([None, FEATURES]))],
                        target_opset={"": 17, "ai.onnx.ml": 3}, options=options)
    return proto, x[:300], x[300:]


def compile_program(proto: onnx.ModelProto, calib: np.ndarray, out: Path, pipeline: str = "") -> Program:
    ctx = PassContext(data=Dataset.from_arrays({"input": calib}), out_dir=str(out), command_line="pytest")
    text = pipeline or "normalize,quantize,lower,plan-memory"
    ctx.pipeline_text = text
    program, _ = run_pipeline(OnnxModel.from_proto(proto), text, ctx, verify=False)
    assert isinstance(program, Program)
    return program


CASES = [("dtc", 3, True), ("dtc", 2, False), ("rfc", 4, True), ("rfc", 2, False), ("etc", 3, False),
         ("gbc", 2, True), ("gbc", 3, False), ("dtr", 0, True), ("rfr", 0, True), ("gbr", 0, True)]


@pytest.mark.parametrize("kind,classes,zipmap", CASES, ids=[f"{k}{c or ''}{'' if z else '-nozipmap'}"
                                                          for k, c, z in CASES])
def test_skl2onnx_trees_c_and_onnxruntime(kind: str, classes: int, zipmap: bool, tmp_path: Path) -> None:
    proto, train, held = export(kind, classes, zipmap)
    program = compile_program(proto, train, tmp_path)
    assert [s.op for s in program.steps if s.op in ("trees", "tree_sum")] == ["trees", "tree_sum"]
    for step in program.steps:
        if step.op in ("trees", "tree_sum"):
            assert all(program.buffers[b].space == "fram" for b in step.inputs[1:]), step.name
    feeds = [{"input": held[i:i + 1]} for i in range(len(held))]
    quantized = [quantize_inputs(program, f) for f in feeds]
    check_c_equals_interpreter(program, tmp_path / "c", quantized + random_inputs(program, 40, seed=3),
                               f"trees_{kind}{classes}", onnx_model=proto)
    # against onnxruntime on the original model
    original = ort.session(proto)
    out = program.outputs[0].onnx_name
    near = boundary_samples(program, {"input": held})
    assert near is not None
    values = next(b for s in program.steps if s.op == "tree_sum" for b in [program.buffers[s.inputs[1]]])
    trees = program.buffers[next(s for s in program.steps if s.op == "trees").outputs[0]].size
    q_out = program.buffers[program.outputs[0].buffer].q
    assert isinstance(values.q, int) and isinstance(q_out, int)
    tolerance = trees * 2.0 ** -(values.q + 1) + 2.0 ** -(values.q + 1) + 2.0 ** -(q_out + 1)
    normalized_scores = ort.session(ort.with_outputs(compile_normalized(proto), [out]))
    agree = 0
    for i, feed in enumerate(feeds):
        res = run_program(program, quantized[i])
        got = dequantize_outputs(program, res)[out].reshape(-1)
        ref = normalized_scores.run([out], feed)[0].reshape(-1)
        if np.max(np.abs(got - ref)) > tolerance * (1 + 1e-6):
            assert near[i], (i, got, ref, tolerance)
        if classes:
            label = int(original.run(None, feed)[0][0])
            same = int(np.asarray(res["class"]).reshape(-1)[0]) == label
            agree += int(same)
            assert same or near[i] or np.sort(ref)[-1] - np.sort(ref)[-2] <= 2 * tolerance, (i, got, ref)
    if classes:
        assert agree / len(feeds) >= 0.99, agree


def compile_normalized(proto: onnx.ModelProto) -> OnnxModel:
    model, _ = run_pipeline(OnnxModel.from_proto(proto), "normalize", PassContext(command_line="pytest"),
                            verify=False)
    assert isinstance(model, OnnxModel)
    return model


def test_forest_under_power_failures(tmp_path: Path) -> None:
    from transpiler import hostrun
    from transpiler.powerfail import build_host_pf, run_host_pf, run_sim_pf
    from transpiler.toolchain import find_msp430_toolchain_or_none

    proto, train, held = export("rfc", 3)
    out = tmp_path / "pf"
    program = compile_program(proto, train, out,
                              f"normalize,quantize,lower,plan-memory{{persistent=true}},tile{{budget={BUDGET}}},emit-c")
    walk = next(s for s in program.steps if s.op == "trees")
    assert walk.tile is not None and walk.tile.dims[0] < program.buffers[walk.outputs[0]].size
    man = hostrun.load_manifest(out)
    x = hostrun.quantize(man, {"input": held[:2]})
    plain = hostrun.run_raw(hostrun.build(out, cc="gcc"), man, x)
    for cc, sanitize in (("gcc", False), ("clang", True)):
        r = run_host_pf(build_host_pf(out, cc=cc, sanitize=sanitize), man, x[:1], exhaustive=True)
        assert r.ok, r.stderr[-400:]
        assert r.total["failures"] == r.total["baseline_stores"] and r.total["mismatches"] == 0
    one = run_host_pf(build_host_pf(out, cc="gcc"), man, x, schedule="random:seed=4,min=3,max=20").check()
    assert one.outputs is not None and np.array_equal(one.outputs, plain)
    tc, _ = find_msp430_toolchain_or_none()
    if tc is None:
        return      # the simulator part needs the msp430-elf toolchain
    base = None
    for spec, fill in ((f"random:5:{BUDGET}:{2 * BUDGET}", "random"), (f"every:{BUDGET}", None)):
        r = run_sim_pf(out, man, x, power_fail=spec, baseline=base, sram_fill=fill, max_failures=5000)
        base = r.baseline_cycles if base is None else base
        assert np.array_equal(r.outputs, plain) and r.power_failures > 0, spec


def test_boundary_samples_mark_inputs_next_to_a_threshold(tmp_path: Path) -> None:
    proto, train, held = export("dtc", 3)
    program = compile_program(proto, train, tmp_path)
    walk = next(s for s in program.steps if s.op == "trees")
    q = program.buffers[walk.inputs[2]].q
    assert isinstance(q, int)
    feature = int(program.buffers[walk.inputs[1]].data[0])         # the root branch (preorder)
    thresholds = np.asarray(program.buffers[walk.inputs[2]].data, dtype=np.int64)
    rows = np.repeat(held[:1], 3, axis=0)
    rows[0, feature] = (thresholds[0] + 0.5) / 2.0 ** q             # on the root's half step
    rows[1, feature] = (thresholds[0] + 0.9) / 2.0 ** q             # within half an LSB of it
    far = 30000
    assert np.all(np.abs(thresholds + 0.5 - far) > 1)
    rows[2, :] = far / 2.0 ** q                                     # above every threshold
    marks = boundary_samples(program, {"input": rows})
    assert marks is not None and marks.tolist() == [True, True, False]
