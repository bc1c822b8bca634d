"""Run a generated gNet package on the host: every exit's answer, or inferences under an energy trace.

    exe = build_driver("build/")                                 # make gnet -> <m>_host_gnet
    run = run_exits("build/", x_q)                                # every exit, after its feature step
    trace = load_trace("trace.csv")                               # time (s), harvested power (W)
    energy = run_energy("build/", x_q, trace, parse_power(DEFAULT_SUPPLY), period=0.05)
    energy.status                                                  # -1 no answer, 0 whole model, k exit k

The energy model, in integers (:class:`EnergyModel`; the host driver main_gnet.c, the simulator
program main_gnet_sim.c and :func:`simulate`, the reference over the LIR interpreter, compute it
operation by operation alike, so they agree bit for bit). Time is counted in CPU cycles at the
supply's clock, energy in units of 1/65536 of what one active cycle draws (``active / freq`` J):
the trace becomes rows ``(cycle, harvested units per cycle)`` and the capacitor's usable energy
``C (V_on^2 - V_off^2) / 2`` a number of units ``full``; nothing is rounded after that. The
capacitor is full at time 0; the trace's power charges it (each row's power holds until the next
row, the last one forever), never above full; a running CPU draws 65536 units a cycle, and the
power fails at the first cycle the energy would go below 0. Here a step costs its predicted
cycles (transpiler/lir/cost.py); in the simulator every executed cycle counts. Sample ``i`` is
requested at ``i * period`` (later if the previous one still runs). Before its first step an
inference sleeps until the capacitor pays for the cycles up to exit 1's answer
(``fx_energy_wait``; ``gnet.start_cycles``). Before every step, once an exit is present, the exit
policy answers early when ``energy >> 16 < cycles(step) + cycles(head)`` (fx_energy_level()).

A power failure: the device is off until the capacitor is full again. Then it reboots and the
interrupted inference answers from the features its exits saved (``fx_<m>_recover``: exits 1..k,
committed with their feature steps, so any inference that reached exit 1 answers), at the cost of
an early answer; one that had not reached exit 1 gives no answer. A failure during that answer
leaves the inference without one (the device tries once). A device without the plain gNet (the
bench's baseline, ``early_exit=False``) loses every inference the power cuts short.
"""

from __future__ import annotations

import bisect
import math
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from transpiler.errors import DataError, InputError, Location, ToolchainError
from transpiler.power import PowerSupply

DEFAULT_SUPPLY = "cap=47uF,von=3.3V,voff=1.8V,active=1.5mW,freq=8MHz"
"""180 uJ usable: about 960,000 cycles at 8 MHz and 1.5 mW."""
NO_ANSWER = -1
WHOLE_MODEL = 0
ENERGY_ONE = 1 << 16
"""Energy units per active cycle: energies are integers in 1/65536 of what one cycle draws."""
MAX_FULL = 1 << 62
"""Largest capacitor in energy units (the C's 64-bit arithmetic never overflows below it)."""
MAX_POWER = 1 << 32
"""Harvested power limit in units per cycle (65536x the active power): 32-bit table entries."""
_LOG = re.compile(r"^sample (\d+) status (-?\d+) start (\d+) end (\d+) energy (\d+) (\d+) cycles (\d+)$")


# --------------------------------------------------------------------------- traces
@dataclass(frozen=True)
class EnergyTrace:
    """Harvested power over time: ``powers[j]`` watts from ``times[j]`` seconds to the next row."""

    times: np.ndarray
    powers: np.ndarray
    source: str | None = None


def load_trace(path: str | os.PathLike[str]) -> EnergyTrace:
    """A trace from a CSV of ``time_s, power_W`` rows (a header line and ``#`` comments are allowed;
    commas, semicolons or spaces separate). Times must increase, powers be >= 0."""
    where = Location(file=str(path))
    if not Path(path).is_file():
        raise DataError("no such energy trace", location=where,
                        hint="give a CSV of 'time_s,power_W' rows, e.g. 0,0.0005")
    rows: list[tuple[float, float]] = []
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            cells = [c for c in re.split(r"[,;\s]+", text) if c]
            try:
                t, p = float(cells[0]), float(cells[1])
            except (ValueError, IndexError):
                if not rows and line_no == 1 or (not rows and all(re.search(r"[A-Za-z]", c) for c in cells)):
                    continue          # a header
                raise DataError(f"line {line_no}: '{text}' is not 'time, power'",
                                location=Location(file=str(path), line=line_no),
                                hint="two numbers a row: seconds and watts") from None
            if not (math.isfinite(t) and math.isfinite(p)) or p < 0:
                raise DataError(f"line {line_no}: time {t} s, power {p} W", location=Location(file=str(path), line=line_no),
                                hint="finite numbers, power >= 0")
            if rows and t <= rows[-1][0]:
                raise DataError(f"line {line_no}: time {t} s does not increase (previous {rows[-1][0]} s)",
                                location=Location(file=str(path), line=line_no), hint="sort the rows by time")
            rows.append((t, p))
    if not rows:
        raise DataError("the energy trace has no rows", location=where, hint="rows of 'time_s,power_W'")
    arr = np.asarray(rows, dtype=np.float64)
    return EnergyTrace(arr[:, 0].copy(), arr[:, 1].copy(), str(path))


def _ceil_div(a: int, b: int) -> int:
    """a / b rounded up (the C's ``(a + b - 1) / b``)."""
    return (a + b - 1) // b


@dataclass(frozen=True)
class EnergyModel:
    """The integer energy model of the module docstring: a trace, a capacitor and a request period.

    ``times[j]`` (cycles; ``times[0] == 0``, increasing) and ``powers[j]`` (harvested units per
    cycle) are the trace's rows; ``full`` the capacitor's usable units; ``period`` the cycles
    between two requests. Every method is what main_gnet.c and main_gnet_sim.c compute, with the
    same integer operations (their 64-bit values never overflow: ``full < 2^62``, ``powers < 2^32``).
    """

    times: tuple[int, ...]
    powers: tuple[int, ...]
    full: int
    period: int
    freq: float
    active_w: float

    @classmethod
    def of(cls, trace: EnergyTrace, supply: PowerSupply, period: float) -> EnergyModel:
        """Quantise once: a row's time to the nearest cycle (rows at the same cycle: the later one
        holds; the row holding at time 0 starts at 0), its power to the nearest unit per cycle, the
        usable energy down to a unit, the period to the nearest cycle.

        Raises:
            DataError: a power above 65536x the active power, a capacitor too large, a period too long.
        """
        freq, act = float(supply.freq_hz), float(supply.active_w)
        where = Location(file=trace.source) if trace.source else None
        times: list[int] = []
        powers: list[int] = []
        for t_s, p_w in zip(trace.times.tolist(), trace.powers.tolist()):
            c = max(0, int(round(t_s * freq)))
            q = int(round(p_w / act * ENERGY_ONE))
            if q >= MAX_POWER:
                raise DataError(f"a harvested power of {p_w:g} W is more than 65536x the active power {act:g} W",
                                location=where, hint="check the trace's unit (watts)")
            if times and c <= times[-1]:
                powers[-1] = q           # the earlier row holds for less than a cycle
            else:
                times.append(c)
                powers.append(q)
        times[0] = 0
        full = int(round(freq * supply.energy_j / act, 6) * ENERGY_ONE)
        if not 0 < full < MAX_FULL:
            raise DataError(f"a capacitor of {supply.energy_j:g} J usable is {full} energy units "
                            f"(at most {MAX_FULL - 1})", hint="a smaller capacitor or a larger active power")
        per = int(round(period * freq))
        if per >= 1 << 46:
            raise DataError(f"a request period of {period:g} s is too long for the energy model")
        return cls(tuple(times), tuple(powers), full, per, freq, act)

    def seconds(self, cycles: float) -> float:
        return float(cycles) / self.freq

    def joules(self, units: float) -> float:
        return float(units) * self.active_w / self.freq / ENERGY_ONE

    def row(self, t: int) -> int:
        """The row whose power holds at cycle ``t``."""
        return bisect.bisect_right(self.times, t) - 1

    def next_change(self, j: int) -> int | None:
        """When row ``j``'s power ends (None: the last row holds forever)."""
        return self.times[j + 1] if j + 1 < len(self.times) else None

    def asleep(self, e: int, t0: int, t1: int) -> int:
        """The energy at ``t1`` of a device asleep (only charging) from ``(t0, e)``."""
        t = t0
        while t < t1 and e < self.full:
            j = self.row(t)
            nxt = self.next_change(j)
            end = nxt if nxt is not None and nxt < t1 else t1
            p = self.powers[j]
            if p > 0:
                need = _ceil_div(self.full - e, p)
                e = self.full if end - t >= need else e + p * (end - t)
            t = end
        return e

    def running(self, e: int, t0: int, t1: int) -> tuple[int, int | None]:
        """A CPU running from ``(t0, e)`` to ``t1``: (the energy at ``t1``, None), or (0, the first
        cycle at which the capacitor is empty)."""
        t = t0
        while t < t1:
            j = self.row(t)
            nxt = self.next_change(j)
            end = nxt if nxt is not None and nxt < t1 else t1
            p = self.powers[j]
            if p >= ENERGY_ONE:
                gain = p - ENERGY_ONE
                if gain > 0:
                    need = _ceil_div(self.full - e, gain)
                    e = self.full if end - t >= need else e + gain * (end - t)
            else:
                d = ENERGY_ONE - p
                if end - t > e // d:
                    return 0, t + e // d + 1
                e -= d * (end - t)
            t = end
        return e, None

    def crossing(self, e: int, t: int) -> int | None:
        """The cycle a CPU running from ``(t, e)`` empties the capacitor (None: never); the failure
        :meth:`running` finds, without an end."""
        while True:
            j = self.row(t)
            nxt = self.next_change(j)
            p = self.powers[j]
            if p < ENERGY_ONE:
                d = ENERGY_ONE - p
                dt = e // d + 1
                if nxt is None or t + dt <= nxt:
                    return t + dt
                e -= d * (nxt - t)
            elif nxt is None:
                return None
            elif p > ENERGY_ONE:
                need = _ceil_div(self.full - e, p - ENERGY_ONE)
                e = self.full if nxt - t >= need else e + (p - ENERGY_ONE) * (nxt - t)
            t = nxt

    def charge_to(self, target: int, e: int, t: int) -> int | None:
        """The cycle a device asleep from ``(t, e)`` holds ``target`` units (None: the trace never
        gives them)."""
        while e < target:
            j = self.row(t)
            nxt = self.next_change(j)
            p = self.powers[j]
            if p > 0:
                need = _ceil_div(target - e, p)
                if nxt is None or t + need <= nxt:
                    return t + need
            elif nxt is None:
                return None
            e += p * (nxt - t)
            t = nxt
        return t

    def level(self, e: int) -> int:
        """fx_energy_level(): the energy in whole cycles (at most 0xFFFFFFFF)."""
        return min(e >> 16, 0xFFFFFFFF)

    def target(self, cycles: int) -> int:
        """fx_energy_wait(cycles): the units it waits for (at most a full capacitor)."""
        return min(int(cycles) * ENERGY_ONE, self.full)


def write_model_text(model: EnergyModel, path: Path) -> None:
    """The host driver's trace file: ``cycle units_per_cycle`` lines."""
    path.write_text("".join(f"{t} {p}\n" for t, p in zip(model.times, model.powers)))


# --------------------------------------------------------------------------- the host driver
def gnet_manifest(manifest: Mapping[str, Any], out_dir: str | os.PathLike[str]) -> Mapping[str, Any]:
    g = manifest.get("gnet")
    if not g:
        raise InputError("this package has no gNet", location=Location(file=str(out_dir)),
                         hint="compile with --gnet (and --data) to attach the shared early exit")
    return g


def build_driver(out_dir: str | os.PathLike[str], cc: str | None = None, sanitize: bool = False,
                 start_cycles: int | None = None, energy_level: bool = True) -> Path:
    """``make gnet`` (or ``gnet-asan``) in a generated directory; the driver's path. ``start_cycles``
    overrides ``FX_<M>_GNET_START_CYCLES`` (what an inference waits to afford before it starts);
    ``energy_level=False`` builds it without ``-DFX_ENERGY_LEVEL_HOOK`` (a device that cannot read
    its energy: the policy never answers early, answers come from the whole model or, after a
    power failure, from the saved features). Each variant is a separate binary."""
    from transpiler.hostrun import find_cc, load_manifest

    d = Path(out_dir)
    man = load_manifest(d)
    g = gnet_manifest(man, d)
    if shutil.which("make") is None:
        raise ToolchainError("`make` is not installed", hint="install make (apt-get install make)")
    compiler = find_cc(cc)
    name = g["asan_binary"] if sanitize else g["binary"]
    var = "GNET_ASAN_BIN" if sanitize else "GNET_BIN"
    cmd = ["make", "-C", str(d), "gnet-asan" if sanitize else "gnet", f"CC={compiler}"]
    defs = []
    if start_cycles is not None:
        name = f"{name}_start{int(start_cycles)}"
        defs.append(f"-DFX_{str(man['c_name']).upper()}_GNET_START_CYCLES={int(start_cycles)}ul")
    if defs:
        cmd.append("GNET_DEFS=" + " ".join(defs))
    if not energy_level:
        name = f"{name}_nolevel"
        cmd.append("GNET_LEVEL=")
    cmd.append(f"{var}={name}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-25:]
        raise ToolchainError(f"building the gNet driver with {compiler} failed", location=Location(file=str(d)),
                             details=tail, hint=f"run `{' '.join(cmd)}` to see the full output")
    return d / name


def _run(exe: Path, args: Sequence[str], timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise ToolchainError(f"{exe.name} failed with exit status {proc.returncode}", location=Location(file=str(exe)),
                             details=(proc.stdout + proc.stderr).strip().splitlines()[-30:],
                             hint="a sanitizer report above points at the failing C line")
    return proc


@dataclass
class ExitsRun:
    """Every exit's answer per sample (the head asked right after exit k's feature step)."""

    outputs: np.ndarray        # [N, out_size] int16: the whole model's outputs
    exits: np.ndarray          # [N, K] the exit index each answer reported (k)
    classes: np.ndarray        # [N, K]
    scores: np.ndarray         # [N, K, C] int16 in the head's Q format


def run_exits(out_dir: str | os.PathLike[str], x_q: np.ndarray, cc: str | None = None,
              sanitize: bool = False) -> ExitsRun:
    """Run the driver's ``exits`` mode on int16 inputs ``[N, in_size]``."""
    from transpiler.hostrun import load_manifest

    man = load_manifest(out_dir)
    g = gnet_manifest(man, out_dir)
    exe = build_driver(out_dir, cc, sanitize)
    in_size, out_size = int(man["api"]["in_size"]), int(man["api"]["out_size"])
    k, c = int(g["exits"]), int(g["classes"])
    x = np.ascontiguousarray(np.asarray(x_q).reshape(-1, in_size), dtype="<i2")
    with tempfile.TemporaryDirectory(prefix="freeml-gnet-") as tmp:
        fin, fout = Path(tmp) / "in.raw", Path(tmp) / "out.raw"
        fin.write_bytes(x.tobytes())
        _run(exe, ["exits", str(fin), str(fout), str(len(x))])
        y = np.frombuffer(fout.read_bytes(), dtype="<i2").astype(np.int16)
    y = y.reshape(len(x), out_size + k * (2 + c))
    rec = y[:, out_size:].reshape(len(x), k, 2 + c)
    return ExitsRun(y[:, :out_size].copy(), rec[:, :, 0].astype(np.int64), rec[:, :, 1].astype(np.int64),
                    rec[:, :, 2:].copy())


@dataclass
class EnergyRun:
    """Inferences under an energy trace: per sample the status (-1 no answer, 0 the whole model,
    k gNet exit k), the outputs it left (meaningful when status >= 0), the times (s) of its
    request and of its answer, the energy (J) at its request and the cycles it ran."""

    status: np.ndarray
    outputs: np.ndarray
    start: np.ndarray
    end: np.ndarray
    energy_start: np.ndarray
    cycles: np.ndarray
    supply: PowerSupply | None = None
    period: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def counts(self, exits: int) -> dict[str, int]:
        """How many samples each exit answered (``"none"``, ``"1"``..``"K"``, ``"full"``)."""
        out = {"none": int((self.status == NO_ANSWER).sum())}
        for k in range(1, exits + 1):
            out[str(k)] = int((self.status == k).sum())
        out["full"] = int((self.status == WHOLE_MODEL).sum())
        return out


def run_energy(out_dir: str | os.PathLike[str], x_q: np.ndarray, trace: EnergyTrace, supply: PowerSupply,
               period: float, cc: str | None = None, sanitize: bool = False,
               start_cycles: int | None = None, energy_level: bool = True) -> EnergyRun:
    """Run the driver's ``energy`` mode on int16 inputs ``[N, in_size]`` (see the module docstring);
    ``start_cycles``, ``energy_level``: see :func:`build_driver`."""
    from transpiler.hostrun import load_manifest

    if period < 0 or not math.isfinite(period):
        raise InputError(f"the period {period} s must be >= 0")
    model = EnergyModel.of(trace, supply, period)
    man = load_manifest(out_dir)
    gnet_manifest(man, out_dir)
    exe = build_driver(out_dir, cc, sanitize, start_cycles, energy_level)
    in_size, out_size = int(man["api"]["in_size"]), int(man["api"]["out_size"])
    x = np.ascontiguousarray(np.asarray(x_q).reshape(-1, in_size), dtype="<i2")
    with tempfile.TemporaryDirectory(prefix="freeml-gnet-") as tmp:
        fin, fout, ftr = Path(tmp) / "in.raw", Path(tmp) / "out.raw", Path(tmp) / "trace.txt"
        fin.write_bytes(x.tobytes())
        write_model_text(model, ftr)
        proc = _run(exe, ["energy", str(fin), str(fout), str(len(x)), str(ftr), str(model.full), str(model.period)])
        y = np.frombuffer(fout.read_bytes(), dtype="<i2").astype(np.int16).reshape(len(x), 1 + out_size)
    logs = [m.groups() for m in (_LOG.match(line) for line in proc.stdout.splitlines()) if m]
    if len(logs) != len(x):
        raise ToolchainError(f"the gNet driver logged {len(logs)} samples, expected {len(x)}",
                             details=proc.stdout.splitlines()[-5:])
    arr = np.asarray([[int(v) for v in row] for row in logs], dtype=np.float64)
    return EnergyRun(y[:, 0].astype(np.int64), y[:, 1:].copy(), arr[:, 2] / model.freq, arr[:, 3] / model.freq,
                     arr[:, 4] * model.joules(1), arr[:, 6], supply, period)


# --------------------------------------------------------------------------- the reference model
def simulate(program: Any, x_q: np.ndarray, trace: EnergyTrace, supply: PowerSupply, period: float,
             step_cycles: Sequence[int], exit_cycles: int, early_exit: bool = True,
             answers: bool = True, start_cycles: int | None = None,
             energy_level: bool = True) -> tuple[np.ndarray, list[Any]]:
    """The energy model of the module docstring over the LIR interpreter: per sample the status and
    the answer (transpiler.lir.interp.ExitAnswer, or None for the whole model / no answer).

    ``step_cycles`` / ``exit_cycles``: the manifest's ``gnet.step_cycles`` / ``gnet.exit_cycles``
    (the in-sequence steps' predicted cycles, the head's). The arithmetic follows main_gnet.c
    operation by operation, so the decisions match the C's. ``early_exit=False`` is the same device
    without the gNet (every inference runs the whole model; a power failure loses it);
    ``energy_level=False`` a gNet device without fx_energy_level() (no early answer while it runs;
    after a power failure it answers from the saved features); ``answers=False`` skips the
    interpreter runs (statuses only). ``start_cycles``: the manifest's ``gnet.start_cycles``, what
    an inference waits (asleep, charging) to be able to pay before its first step (with
    ``early_exit=False`` the whole model's cycles), at most a full capacitor.
    """
    from transpiler.lir.interp import run_until
    from transpiler.lir.ops import ON_DEMAND_OPS

    m = EnergyModel.of(trace, supply, period)
    seq = [s for s in program.steps if s.op not in ON_DEMAND_OPS]
    feature_steps = [i for i, s in enumerate(seq) if s.op == "gnet_feature"]
    exit_after = {i: k for k, i in enumerate(feature_steps, 1)}
    e, t, starved = m.full, 0, False
    status = np.full(len(x_q), NO_ANSWER, dtype=np.int64)
    found: list[Any] = []
    name = program.inputs[0].onnx_name
    wait = sum(step_cycles) if not early_exit else start_cycles

    def reboot(fail: int) -> bool:
        """Off from the failure at ``fail`` until the capacitor is full; False: it never is."""
        nonlocal e, t
        ready = m.charge_to(m.full, 0, fail)
        if ready is None:
            return False
        e, t = m.full, ready
        return True

    for i, x in enumerate(x_q):
        if starved:
            found.append(None)
            continue
        t_req = i * m.period
        if t < t_req:
            e, t = m.asleep(e, t, t_req), t_req
        if wait is not None and e < m.target(wait):
            ready = m.charge_to(m.target(wait), e, t)
            if ready is None:
                starved = True
                found.append(None)
                continue
            e, t = m.target(wait), ready
        present, stop, fail = 0, None, None
        for s in range(len(seq)):
            if early_exit and energy_level and present and m.level(e) < step_cycles[s] + exit_cycles:
                stop = s
                break
            e, fail = m.running(e, t, t + step_cycles[s])
            if fail is not None:
                break
            t += step_cycles[s]
            present = exit_after.get(s, present)
        if fail is None and stop is not None:
            e, fail = m.running(e, t, t + exit_cycles)
            t = t if fail is not None else t + exit_cycles
        if fail is not None:
            # off until full, then fx_<m>_recover answers from exit `present` (one try)
            if not reboot(fail):
                starved = True
                found.append(None)
                continue
            if not early_exit or not present:
                found.append(None)
                continue
            e, fail = m.running(e, t, t + exit_cycles)
            if fail is not None:
                starved = not reboot(fail)
                found.append(None)
                continue
            t += exit_cycles
            stop = feature_steps[present - 1] + 1
        if stop is None:
            status[i] = WHOLE_MODEL
            found.append(None)
        elif not answers:
            status[i] = present
            found.append(None)
        else:
            before = program.steps.index(seq[stop]) if stop < len(seq) else len(program.steps)
            ans = run_until(program, {name: x.reshape(program.buffers[program.inputs[0].buffer].shape)}, before)
            status[i] = ans.exit
            found.append(ans)
    return status, found
