"""Step functions in HIFRAM on the MSP430FR5994 simulator: a GRU(3, 16) unrolled over 40 time steps
(713 LIR steps: ~74 KiB of code and 22 KiB of descriptors, more than lower FRAM's 48 KiB) compiles
with its step functions in ``.upper.text`` (plan-memory's ``step-code``, the large memory model),
links with them above 0x10000 and the rest of the code below, and gives the LIR interpreter's
outputs bit for bit on quantised signals and full-range int16 inputs. The planner's memory
figures agree with the ELF. A model that fits keeps its step functions in lower FRAM (the small
memory model: tests/msp430/test_msp430_recurrent_sim.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from msp430_testlib import msp430_tc  # noqa: F401
from recurrent_models import seq_case
from test_msp430_models_sim import (check_memory_agrees, check_sim_equals_interpreter, compile_package,
                                    make_inputs)

from transpiler import hostrun
from transpiler.lir.interp import run_program
from transpiler.lir.text import parse_program
from transpiler.msp430_size import measure_build
from transpiler.simpackage import run_package
from transpiler.toolchain import Msp430Toolchain

pytest.importorskip("torch")


def _section_sizes(elf: Path, tc: Msp430Toolchain) -> dict[str, tuple[int, int]]:
    """name -> (bytes, address) of the ELF's allocated sections (msp430-elf-size -A)."""
    import subprocess

    size = Path(tc.gcc).with_name("msp430-elf-size")
    text = subprocess.run([str(size), "-A", str(elf)], check=True, capture_output=True, text=True).stdout
    rows = [line.split() for line in text.splitlines()]
    return {r[0]: (int(r[1]), int(r[2])) for r in rows if len(r) == 3 and r[0].startswith(".") and r[1].isdigit()}


def test_gru_over_40_steps_runs_with_its_step_functions_in_hifram(tmp_path: Path,
                                                                   msp430_tc: Msp430Toolchain) -> None:  # noqa: F811
    model, data, xs = seq_case("GRU", 3, 16, 40, seed=3)
    out = tmp_path / "pkg"
    man = compile_package(model, data, out)
    program = parse_program((out / "final.lir").read_text())
    assert program.meta.get("step-code") == "hifram" and man["step_code"] == "hifram"
    assert man["plan"]["memory_model"] == "large"
    c = (out / f"{man['c_name']}.c").read_text()
    assert c.count("static void FX_HICODE ") == len(program.steps) > 600
    quantised = hostrun.quantize(man, {"x": xs[:2]})
    x = make_inputs(man, quantised, 3, seed=5)
    sim = run_package(out, x, counters="run", toolchain=msp430_tc)
    check_sim_equals_interpreter(program, sim.outputs, x)
    sections = _section_sizes(out / f"{man['c_name']}.elf", msp430_tc)
    upper, low = sections[".upper.text"], sections[".text"]
    # the step functions above 64 KiB, the run loop and the kernels below (small: lower FRAM
    # could not hold the step functions beside the descriptors)
    assert upper[1] >= 0x10000 and low[1] + low[0] <= 0xFF80
    assert upper[0] > 0xFF80 - 0x4000 - sections[".rodata"][0] > low[0]
    check_memory_agrees(out, man, msp430_tc, strict=False)
    meas = measure_build(out, toolchain=msp430_tc)
    print(f"GRU-40: {sim.cycles[0]} cycles per inference; .upper.text {upper[0]} B at 0x{upper[1]:X}, "
          f".text {low[0]} B, .rodata {sections['.rodata'][0]} B; HIFRAM total {meas.hifram_total} B")
