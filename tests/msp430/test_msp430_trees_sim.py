"""Tree ensembles (trees + tree_sum steps) on the MSP430FR5994 simulator, bit for bit.

A RandomForestClassifier (10 trees, 3 classes) and a GradientBoostingRegressor from skl2onnx,
compiled for ``--target msp430fr5994``: the simulator's outputs equal the LIR interpreter's on
quantised held-out rows and on full-range random inputs (saturated features take the edge
branches), the planner's memory figures agree with the ELF (the node tables are FRAM constants),
and the cost model does not underestimate a walk (the tile pass sizes power cycles with it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from msp430_testlib import msp430_tc  # noqa: F401
from test_msp430_models_sim import check_memory_agrees, check_sim_equals_interpreter, compile_package, make_inputs

from transpiler import hostrun
from transpiler.data import Dataset
from transpiler.lir.cost import step_cycles
from transpiler.lir.text import parse_program
from transpiler.model import OnnxModel
from transpiler.simpackage import run_package
from transpiler.toolchain import Msp430Toolchain

sys.path.append(str(Path(__file__).resolve().parents[1] / "backend"))
from test_trees_e2e import export  # noqa: E402


@pytest.mark.parametrize("kind,classes", [("rfc", 3), ("gbr", 0)], ids=["random-forest-3", "gradient-boosting-reg"])
def test_trees_sim_equal_interpreter(kind: str, classes: int, tmp_path: Path,
                                     msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    proto, train, held = export(kind, classes)
    out = tmp_path / "pkg"
    man = compile_package(OnnxModel.from_proto(proto), Dataset.from_arrays({"input": train}), out)
    program = parse_program((out / "final.lir").read_text())
    assert [s.op for s in program.steps][:2] == ["trees", "tree_sum"]
    x = make_inputs(man, hostrun.quantize(man, {"input": held[:6]}), 6, seed=5)
    sim = run_package(out, x, counters="run", toolchain=msp430_tc)
    check_sim_equals_interpreter(program, sim.outputs, x)
    check_memory_agrees(out, man, msp430_tc, strict=False)
    predicted = sum(step_cycles(program, s) for s in program.steps)
    assert max(sim.cycles) <= predicted * 1.5, (sim.cycles, predicted)
