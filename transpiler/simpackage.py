"""Run a generated C package in the MSP430 simulator: int16 inputs in, int16 outputs and counts out.

    from transpiler.simpackage import run_package
    r = run_package("build/", x)                   # x: int16 [N, in_size] (hostrun.quantize)
    r.outputs                                      # int16 [N, out_size], as the host binary gives
    r.cycles, r.instructions                       # per inference (the run lines of main_sim.c)
    r = run_package("build/", x[:1], counters="steps")
    r.steps[0]                                     # per-step cycles/instructions of inference 0

Builds (``make msp430`` through :func:`transpiler.sim.build_elf`, so the toolchain comes from
MSP430_GCC_ROOT, PATH or the install directories):

* ``counters="run"`` (default): ``MSP430_RUN_COUNTERS=1``, ``<m>.elf``. Only main_sim.c reads the
  simulator's counters, around each ``fx_<m>_run`` call: the model's code is that of a plain build.
* ``counters="steps"``: ``MSP430_COUNTERS=1`` into ``msp430-obj-steps/`` and ``<m>_steps.elf``
  (the step hooks print a line per step; they cost cycles of their own between the steps, so
  per-inference figures come from the ``run`` build).
* ``counters="none"``: a plain ``make msp430``.

The inputs go into ``sim_input.c`` (FRAM; HIFRAM in the large memory model). When they do not fit
beside the model, or would overflow main_sim.c's 16-bit output sequence numbers, they run in
chunks, one relink each (only sim_input.o is recompiled).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from transpiler.errors import DataError, ToolchainError
from transpiler.sim import SimResult, StepCount, build_elf, run_elf, write_sim_input
from transpiler.toolchain import Msp430Toolchain, find_msp430_toolchain

COUNTER_MODES = ("run", "steps", "none")
#: Lower FRAM that the harness (crt0, CIO, main_sim.c) and alignment may take, kept free for it.
HARNESS_RESERVE = 6 * 1024
_LOWER_FRAM = 0xBF80
_HIFRAM = 0x34000
_SMALL_MAX_OBJECT = 32767


@dataclass
class PackageRun:
    """Outputs and counts of inputs run through a package's simulator build.

    Attributes:
        outputs: int16 ``[N, out_size]``.
        cycles, instructions: per inference (``run`` lines); empty for ``counters="none"``.
        steps: per inference, its step lines in order (``counters="steps"``), else empty lists.
        total_cycles, total_instructions: whole simulator runs (boot, CIO output included), summed
            over the chunks.
        results: the simulator runs, one per chunk.
        elf: the ELF that ran.
    """

    outputs: np.ndarray
    cycles: list[int] = field(default_factory=list)
    instructions: list[int] = field(default_factory=list)
    steps: list[list[StepCount]] = field(default_factory=list)
    total_cycles: int = 0
    total_instructions: int = 0
    power_failures: int = 0
    results: list[SimResult] = field(default_factory=list)
    elf: Path = Path()


def make_vars_for(counters: str, c_name: str) -> tuple[dict[str, str], str]:
    """(make variables, ELF file name) of a counters mode.

    Raises:
        DataError: an unknown mode.
    """
    if counters == "run":
        return {"MSP430_RUN_COUNTERS": "1"}, f"{c_name}.elf"
    if counters == "steps":
        return ({"MSP430_OBJDIR": "msp430-obj-steps", "MSP430_ELF": f"{c_name}_steps.elf",
                 "MSP430_RUN_COUNTERS": ""}, f"{c_name}_steps.elf")
    if counters == "none":
        return {"MSP430_RUN_COUNTERS": ""}, f"{c_name}.elf"
    raise DataError(f"unknown counters mode {counters!r}", hint=f"one of {', '.join(COUNTER_MODES)}")


def sim_input_room(manifest: Mapping[str, Any]) -> tuple[bool, int]:
    """(the package is built in the large memory model, bytes free for sim_input.c's inputs): HIFRAM
    beside the model's tables (and its step functions when they are there) in the large model, else lower FRAM beside the model and the harness
    (:data:`HARNESS_RESERVE`)."""
    sizes = manifest.get("sizes", {})
    plan = manifest.get("plan") or {}
    if plan.get("memory_model") == "large" or bool(manifest.get("needs_hifram")):
        return True, _HIFRAM - int(sizes.get("hifram_bytes", 0)) - int(plan.get("hifram_code", 0)) - 2048
    used = (int(plan.get("code_estimate", 12 * 1024)) + int(plan.get("rodata_estimate", 0))
            + int(sizes.get("fram_constants", 0)) + int(sizes.get("fram_activations", 0)))
    return False, _LOWER_FRAM - used - HARNESS_RESERVE


def chunk_size(manifest: Mapping[str, Any], counters: str = "run", free: int | None = None) -> int:
    """How many inputs fit in one sim_input.c beside the model (at least 1); ``free``: the bytes
    for them when something else shares :func:`sim_input_room`'s."""
    in_bytes = 2 * int(manifest["api"]["in_size"])
    out_size = int(manifest["api"]["out_size"])
    large, room = sim_input_room(manifest)
    free = room if free is None else free
    if not large:
        free = min(free, _SMALL_MAX_OBJECT)
    lines_per_input = -(-out_size // 8) + (0 if counters == "none" else 1)
    return max(1, min(free // max(in_bytes, 1), 0xFFFE // lines_per_input - 1, 4096))


def _parse_chunk(res: SimResult, n: int, out_size: int, n_steps: int, counters: str,
                 first: int) -> tuple[np.ndarray, list[int], list[int], list[list[StepCount]]]:
    out = res.output()
    if out.errors:
        raise ToolchainError(f"the simulated program reported an error: {out.errors[0]}",
                             details=out.errors[1:5], hint="see main_sim.c's error lines")
    if out.done != n or len(out.outputs) != n:
        raise ToolchainError(f"the simulator printed outputs of {len(out.outputs)} of {n} inputs "
                             f"(done line: {out.done})", details=res.stdout.strip().splitlines()[-5:])
    y = np.zeros((n, out_size), dtype=np.int16)
    for i in range(n):
        vals = out.outputs.get(i)
        if vals is None or len(vals) != out_size:
            raise ToolchainError(f"input {first + i}: the simulator printed "
                                 f"{0 if vals is None else len(vals)} of {out_size} outputs")
        y[i] = vals
    cycles = [out.runs[i].cycles for i in range(n) if i in out.runs] if counters != "none" else []
    insns = [out.runs[i].instructions for i in range(n) if i in out.runs] if counters != "none" else []
    if counters != "none" and len(cycles) != n:
        raise ToolchainError(f"the simulator printed {len(cycles)} run lines for {n} inputs",
                             hint="is the package built with MSP430_RUN_COUNTERS / MSP430_COUNTERS?")
    steps: list[list[StepCount]] = [[] for _ in range(n)]
    if counters == "steps":
        if len(out.steps) != n * n_steps:
            raise ToolchainError(f"{len(out.steps)} step lines for {n} inputs of {n_steps} steps",
                                 hint="per-step counts need a run without power failures")
        steps = [out.steps[i * n_steps:(i + 1) * n_steps] for i in range(n)]
    return y, cycles, insns, steps


def run_package(build_dir: str | os.PathLike[str], inputs: np.ndarray, *, counters: str = "run",
                chunk: int | None = None, toolchain: Msp430Toolchain | None = None,
                make_vars: Mapping[str, str] | None = None, **run_options: Any) -> PackageRun:
    """Run int16 inputs ``[N, in_size]`` through the package's simulator build (see the module doc).

    ``run_options`` go to :func:`transpiler.sim.run_elf` (``power_fail``, ``max_cycles``,
    ``timeout``, ...); every run must halt.

    Raises:
        DataError: inputs of the wrong size; ToolchainError: no toolchain, a failed build or run.
    """
    from transpiler.hostrun import load_manifest

    d = Path(build_dir)
    man = load_manifest(d)
    in_size, out_size = int(man["api"]["in_size"]), int(man["api"]["out_size"])
    x = np.asarray(inputs)
    if x.size == 0 or x.size % in_size:
        raise DataError(f"{x.size} input values are not a whole number of inputs of {in_size}",
                        hint="quantize the inputs with transpiler.hostrun.quantize first")
    x = x.reshape(-1, in_size)
    if x.min() < -32768 or x.max() > 32767:
        raise DataError("inputs outside int16", hint="quantize the inputs first")
    tc = toolchain or find_msp430_toolchain()
    mvars, elf_name = make_vars_for(counters, str(man["c_name"]))
    mvars.update(make_vars or {})
    per = chunk or chunk_size(man, counters)
    n_steps = len(man.get("steps", []))
    run = PackageRun(outputs=np.zeros((0, out_size), dtype=np.int16), elf=d / elf_name)
    ys: list[np.ndarray] = []
    for start in range(0, x.shape[0], per):
        part = x[start:start + per]
        write_sim_input(d / "sim_input.c", [[int(v) for v in row] for row in part])
        build_elf(d, counters=counters == "steps", toolchain=tc, make_vars=mvars)
        res = run_elf(d / elf_name, toolchain=tc, **run_options).check()
        y, cyc, ins, steps = _parse_chunk(res, part.shape[0], out_size, n_steps, counters, start)
        ys.append(y)
        run.cycles += cyc
        run.instructions += ins
        run.steps += steps
        run.total_cycles += res.cycles
        run.total_instructions += res.instructions
        run.power_failures += res.power_failures
        run.results.append(res)
    run.outputs = np.concatenate(ys)
    return run


__all__ = ["COUNTER_MODES", "PackageRun", "chunk_size", "make_vars_for", "run_package", "sim_input_room"]
