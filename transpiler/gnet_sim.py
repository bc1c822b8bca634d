"""Run a gNet package on harvested power in the MSP430 simulator: the trace drives fx_energy_level()
and the power failures.

    run = run_energy_sim("build/", x_q, trace, supply, period=0.05)   # x_q: int16 [N, in_size]
    run.status                   # per sample: -1 no answer, 0 the whole model, k gNet exit k
    run.outputs                  # int16 [N, out_size] (the exit's class / scores when status >= 0)
    run.failures                 # the power failures, in cumulative simulator cycles
    run.energy_run()             # the same as transpiler.gnet_energy.EnergyRun (the host's record)

The program is ``runtime_c/platform/msp430/main_gnet_sim.c`` (``make msp430 MSP430_GNET=1``), its
header comment has the energy model: the capacitor of ``supply``, charged by the trace, drained at
the active power for every simulated cycle (the time is the cycle counter over the clock). This
module writes ``sim_energy.c`` (the trace and the supply as exact doubles), runs the program, reads
its sync points (time and energy at a cycle count, logged whenever the device slept or booted) and
finds with :class:`Capacitor` (the same arithmetic as the C) the first cycle at which the energy
reaches 0 after the last known failure. If there is one, it runs again with a power failure
injected there (``MSP430_SIM_POWER_FAIL=at:N1,...``): the run is the same up to that cycle, so one
run per failure finds the whole schedule, and the last run is the answer.

The difference with the host driver (transpiler/gnet_energy.py, ``make gnet``): there a step costs
its predicted cycles; here every executed cycle costs energy (the loop, the hooks' soft-float
arithmetic and the CIO output included), and a failure falls at the exact cycle where the
capacitor is empty. The exit policy decides from the same predicted step costs in both.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from transpiler.errors import DataError, InputError, Location, ToolchainError
from transpiler.gnet_energy import EnergyRun, EnergyTrace, gnet_manifest
from transpiler.power import PowerSupply
from transpiler.sim import SimResult, build_elf, parse_cio_output, run_elf, write_sim_input
from transpiler.toolchain import Msp430Toolchain, find_msp430_toolchain

MAX_TRACE_ROWS = 2000
"""Rows of a trace that sim_energy.c holds (two tables of doubles in lower FRAM, 32 KB)."""
NO_ANSWER = -1


# --------------------------------------------------------------------------- the energy model
@dataclass(frozen=True)
class Capacitor:
    """main_gnet_sim.c's energy model, operation by operation (its doubles give the C's bits)."""

    trace: EnergyTrace
    full: float
    active: float
    freq: float

    @classmethod
    def of(cls, trace: EnergyTrace, supply: PowerSupply) -> Capacitor:
        return cls(trace, full_energy(supply), float(supply.active_w), float(supply.freq_hz))

    def row(self, t: float) -> int:
        """The row whose power holds at ``t`` (0 before the first row)."""
        return max(int(np.searchsorted(self.trace.times, t, side="right")) - 1, 0)

    def next_change(self, t: float, j: int) -> float:
        """When row ``j``'s power (holding at ``t``) changes; -1 when it is the last row."""
        times = self.trace.times
        if t < times[0]:
            return float(times[0])
        return float(times[j + 1]) if j + 1 < len(times) else -1.0

    def running(self, e: float, t0: float, t1: float) -> float:
        """The energy at ``t1`` of a CPU running from ``(t0, e)`` (fx_gsim_active)."""
        t = t0
        while t < t1:
            j = self.row(t)
            nxt = self.next_change(t, j)
            end = t1 if (nxt < 0.0 or nxt > t1) else nxt
            if end <= t:
                end = t1
            e += (float(self.trace.powers[j]) - self.active) * (end - t)
            if e > self.full:
                e = self.full
            t = end
        return e

    def crossing(self, e: float, t: float) -> float | None:
        """The time a CPU running from ``(t, e)`` empties the capacitor; None: never (fx_gsim_crossing)."""
        if e <= 0.0:
            return t
        while True:
            j = self.row(t)
            nxt = self.next_change(t, j)
            p = float(self.trace.powers[j])
            net = p - self.active
            if net < 0.0:
                dt = e / (self.active - p)
                if nxt < 0.0 or t + dt <= nxt:
                    return t + dt
            elif nxt < 0.0:
                return None
            e += net * (nxt - t)
            if e > self.full:
                e = self.full
            t = nxt


def full_energy(supply: PowerSupply) -> float:
    """Usable joules of a full capacitor (gnet_energy.simulate's e_max)."""
    return 0.5 * supply.cap_f * (supply.von_v * supply.von_v - supply.voff_v * supply.voff_v)


# --------------------------------------------------------------------------- sim_energy.c
def sim_energy_text(trace: EnergyTrace, supply: PowerSupply, period: float) -> str:
    """The C text of sim_energy.c: the trace and the supply as hexadecimal (exact) doubles.

    Raises:
        DataError: more than :data:`MAX_TRACE_ROWS` rows.
    """
    n = len(trace.times)
    if n > MAX_TRACE_ROWS:
        raise DataError(f"the energy trace has {n} rows; the simulator program holds at most {MAX_TRACE_ROWS}",
                        location=Location(file=trace.source) if trace.source else None,
                        hint="resample the trace (e.g. mean power over longer intervals)")

    def lit(v: float) -> str:
        return float(v).hex()

    def table(vals: np.ndarray) -> list[str]:
        items = [lit(v) for v in vals.tolist()]
        return ["    " + ", ".join(items[k:k + 4]) + "," for k in range(0, len(items), 4)]

    return "\n".join([
        "/* sim_energy.c - the energy trace for main_gnet_sim.c (generated by freeml-tx: transpiler/gnet_sim.py;",
        " * do not edit). powers[j] W from times[j] s to times[j+1] s; the supply's usable joules, the",
        " * active power (W), the clock (Hz) and the request period (s). */",
        "#include <stdint.h>", "",
        f"const uint16_t fx_energy_rows = {n}u;",
        f"const double fx_energy_times[{n}] = {{", *table(trace.times), "};",
        f"const double fx_energy_powers[{n}] = {{", *table(trace.powers), "};",
        f"const double fx_energy_full = {lit(full_energy(supply))};   /* {full_energy(supply):.6g} J */",
        f"const double fx_energy_active = {lit(supply.active_w)};   /* {supply.active_w:g} W */",
        f"const double fx_energy_freq = {lit(supply.freq_hz)};   /* {supply.freq_hz:g} Hz */",
        f"const double fx_energy_period = {lit(period)};   /* {period:g} s */", ""])


# --------------------------------------------------------------------------- the program's log
@dataclass(frozen=True)
class Sync:
    """An ``e`` line: in boot ``boot`` (next sample ``sample``) the clock stopped at counter ``at``,
    having run since counter ``frm`` (the previous sync point's), and restarted at time ``t`` with
    ``e`` J (main_gnet_sim.c's header)."""

    boot: int
    sample: int
    frm: int
    at: int
    t: float
    e: float
    why: str


@dataclass(frozen=True)
class Answer:
    """A ``g`` line: sample ``sample`` ended with ``status``; ``t`` is the time of the sync point
    that follows it (when the device reported it)."""

    sample: int
    status: int
    t: float


def _double(hex16: str) -> float:
    return float(struct.unpack(">d", bytes.fromhex(hex16))[0])


def parse_log(lines: Sequence[str]) -> tuple[list[Sync], list[Answer]]:
    """The ``e`` and ``g`` lines of main_gnet_sim.c's output (parse_cio_output's ``other``), in order.

    Raises:
        ToolchainError: a malformed line.
    """
    syncs: list[Sync] = []
    pending: list[tuple[int, int]] = []
    answers: list[Answer] = []
    for line in lines:
        parts = line.split()
        try:
            if parts[0] == "e" and len(parts) == 8:
                s = Sync(int(parts[1]), int(parts[2]), int(parts[3]), int(parts[4]), _double(parts[5]),
                         _double(parts[6]), parts[7])
                syncs.append(s)
                answers += [Answer(i, st, s.t) for i, st in pending]
                pending = []
            elif parts[0] == "g" and len(parts) == 5:
                pending.append((int(parts[1]), int(parts[2])))
            else:
                raise ValueError(line)
        except (ValueError, IndexError, struct.error) as exc:
            raise ToolchainError(f"malformed line of the gNet simulator program: {line!r}") from exc
    answers += [Answer(i, st, float("nan")) for i, st in pending]
    return syncs, answers


def running_segments(syncs: Sequence[Sync], boot: int) -> list[tuple[Sync, int, int]]:
    """(sync point, first counter, last counter) of every stretch the CPU ran in boot ``boot``: from
    each sync point until the clock stopped again."""
    mine = [s for s in syncs if s.boot == boot]
    return [(s, nxt.frm, nxt.at) for s, nxt in zip(mine, mine[1:])]


def next_failure(cap: Capacitor, syncs: Sequence[Sync], boot: int, boot_start: int) -> int | None:
    """The cumulative cycle of the first power failure in boot ``boot`` (None: it never runs dry).

    ``boot_start``: the boot's first cycle since the start of the run (the failure that began it).
    The failure is the first cycle of a running stretch at which :meth:`Capacitor.crossing` has
    emptied the capacitor.
    """
    for s, first, last in running_segments(syncs, boot):
        when = cap.crossing(s.e, s.t)
        if when is not None and when < s.t + float(last - first) / cap.freq:
            at = first + max(1, math.ceil((when - s.t) * cap.freq))
            return boot_start + min(at, last)
    return None


# --------------------------------------------------------------------------- running
@dataclass
class SimEnergyRun:
    """The last simulator run of :func:`run_energy_sim` and the failure schedule that led to it."""

    status: np.ndarray
    outputs: np.ndarray
    failures: list[int]
    syncs: list[Sync]
    answers: list[Answer]
    capacitor: Capacitor
    period: float
    runs: int
    result: SimResult
    elf: Path
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def energy_run(self, supply: PowerSupply) -> EnergyRun:
        """The host driver's record (transpiler.gnet_energy.EnergyRun): per sample the time and energy
        of its request, the time of its answer line, and the cycles it ran (0 without an answer)."""
        n = len(self.status)
        start, e0, end = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        cycles = np.zeros(n)
        for s in self.syncs:
            if s.why == "r" and s.sample < n:
                start[s.sample], e0[s.sample] = s.t, s.e
        for a in self.answers:
            if a.sample < n:
                end[a.sample] = a.t
        for boot in sorted({s.boot for s in self.syncs}):
            for s, first, last in running_segments(self.syncs, boot):
                if s.why in "rwl" and s.sample < n and self.status[s.sample] != NO_ANSWER:
                    cycles[s.sample] += last - first
        return EnergyRun(self.status.copy(), self.outputs.copy(), start, end, e0, cycles, supply, self.period,
                         {"on": "sim", "power_failures": len(self.failures), "failures": list(self.failures),
                          "simulator_runs": self.runs, "total_cycles": self.result.cycles})


def sim_capacity(manifest: dict[str, Any]) -> int:
    """How many samples one simulator run holds (the capacitor goes from sample to sample, so an
    energy run is never split into chunks)."""
    from transpiler.simpackage import chunk_size

    return chunk_size(manifest, "run")


def build_energy_elf(out_dir: str | os.PathLike[str], toolchain: Msp430Toolchain | None = None,
                     start_cycles: int | None = None) -> Path:
    """``make msp430 MSP430_GNET=1`` into msp430-obj-gnet/ -> ``<m>_gnet.elf``; ``start_cycles``
    overrides ``FX_<M>_GNET_START_CYCLES`` (as transpiler.gnet_energy.build_driver does)."""
    from transpiler.hostrun import load_manifest

    d = Path(out_dir)
    m = str(load_manifest(d)["c_name"])
    extra = "" if start_cycles is None else f"-DFX_{m.upper()}_GNET_START_CYCLES={int(start_cycles)}ul"
    if "MSP430_GNET" not in (d / "msp430.mk").read_text():
        raise InputError("this package's msp430.mk has no gNet energy build", location=Location(file=str(d)),
                         hint="compile it again with this freeml-tx (--gnet)")
    build_elf(d, toolchain=toolchain, make_vars={"MSP430_GNET": "1", "MSP430_OBJDIR": "msp430-obj-gnet",
                                                 "MSP430_ELF": f"{m}_gnet.elf", "MSP430_RUN_COUNTERS": "",
                                                 "MSP430_CFLAGS_EXTRA": extra})
    return d / f"{m}_gnet.elf"


def run_energy_sim(out_dir: str | os.PathLike[str], x_q: np.ndarray, trace: EnergyTrace, supply: PowerSupply,
                   period: float, *, start_cycles: int | None = None, max_failures: int = 200,
                   toolchain: Msp430Toolchain | None = None, timeout: float = 600.0) -> SimEnergyRun:
    """Run int16 inputs ``[N, in_size]`` one after the other in the simulator on the trace (see the
    module docstring); one simulator run per power failure, at most ``max_failures``.
    ``start_cycles``: see :func:`build_energy_elf`.

    Raises:
        InputError: not a gNet package, a bad period; DataError: more samples than one run holds,
        a trace too long; ToolchainError: no toolchain, a failed build or run, too many failures.
    """
    from transpiler.hostrun import load_manifest

    if period < 0 or not math.isfinite(period):
        raise InputError(f"the period {period} s must be >= 0")
    d = Path(out_dir)
    man = load_manifest(d)
    gnet_manifest(man, d)
    in_size, out_size = int(man["api"]["in_size"]), int(man["api"]["out_size"])
    x = np.asarray(x_q).reshape(-1, in_size)
    most = sim_capacity(man)
    if len(x) > most:
        raise DataError(f"{len(x)} samples do not fit one simulator run beside the model (at most {most})",
                        hint=f"run at most {most} samples with --on sim")
    tc = toolchain or find_msp430_toolchain()
    write_sim_input(d / "sim_input.c", [[int(v) for v in row] for row in x])
    text = sim_energy_text(trace, supply, period)
    f = d / "sim_energy.c"
    if not f.is_file() or f.read_text() != text:
        f.write_text(text)
    elf = build_energy_elf(d, tc, start_cycles)
    cap = Capacitor.of(trace, supply)
    failures: list[int] = []
    runs, seconds = 0, 0.0
    while True:
        spec = "at:" + ",".join(str(c) for c in failures) if failures else None
        res = run_elf(elf, power_fail=spec, max_failures=len(failures), toolchain=tc, timeout=timeout)
        runs += 1
        seconds += res.seconds
        out = res.output()
        if out.errors or not res.halted:
            raise ToolchainError(f"the gNet simulator program failed: exit reason {res.exit_reason!r}",
                                 details=(out.errors or res.stdout.strip().splitlines())[-5:],
                                 hint=f"power failures injected at {spec}" if spec else "no power failure injected")
        syncs, answers = parse_log(out.other)
        boot = len(failures) + 1
        start = failures[-1] if failures else 0
        new = next_failure(cap, syncs, boot, start)
        if new is None:
            break
        if len(failures) >= max_failures:
            raise ToolchainError(f"more than {max_failures} power failures in the simulator",
                                 hint="a shorter run (fewer samples) or a trace with more power")
        failures.append(new)
    if out.done != len(x):
        raise ToolchainError(f"the gNet simulator program finished {out.done} of {len(x)} samples")
    status = np.full(len(x), NO_ANSWER, dtype=np.int64)
    for a in answers:
        status[a.sample] = a.status
    y = np.zeros((len(x), out_size), dtype=np.int16)
    for i, vals in out.outputs.items():
        if status[i] != NO_ANSWER:
            if len(vals) != out_size:
                raise ToolchainError(f"sample {i}: the simulator printed {len(vals)} of {out_size} outputs")
            y[i] = vals
    return SimEnergyRun(status, y, failures, syncs, answers, cap, float(period), runs, res, elf, seconds)


__all__ = ["Answer", "Capacitor", "MAX_TRACE_ROWS", "SimEnergyRun", "Sync", "build_energy_elf", "full_energy",
           "next_failure", "parse_log", "run_energy_sim", "running_segments", "sim_capacity", "sim_energy_text"]
