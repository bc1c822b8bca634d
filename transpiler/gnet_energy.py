"""Run a generated gNet package on the host: every exit's answer, or inferences under an energy trace.

    exe = build_driver("build/")                                 # make gnet -> <m>_host_gnet
    run = run_exits("build/", x_q)                                # every exit, after its feature step
    trace = load_trace("trace.csv")                               # time (s), harvested power (W)
    energy = run_energy("build/", x_q, trace, parse_power(DEFAULT_SUPPLY), period=0.05)
    energy.status                                                  # -1 no answer, 0 whole model, k exit k

The energy model (the C driver main_gnet.c implements it; :func:`simulate` is the same model over
the LIR interpreter, the reference the tests compare the C with): a capacitor holds the usable
energy ``E`` (full, ``C (V_on^2 - V_off^2) / 2``, at time 0); the trace's power charges it (piecewise
constant: each row's power holds until the next row, the last one forever), never above full; a
running step costs its predicted cycles (transpiler/lir/cost.py) at the active power and takes
``cycles / freq`` seconds; sample ``i`` is requested at ``i * period`` (later if the previous one
still runs). Before every step, once an exit is present, the exit policy answers early when
``E * freq / P_active < cycles(step) + cycles(head)``. An inference whose energy runs out gives no
answer, and the device then stays off until the capacitor is full again. Before its first step an
inference sleeps until the capacitor pays for the cycles up to exit 1's answer
(``fx_energy_wait``; ``gnet.start_cycles``).
"""

from __future__ import annotations

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
_LOG = re.compile(r"^sample (\d+) status (-?\d+) start (\S+) end (\S+) energy (\S+) (\S+) cycles (\S+)$")


# --------------------------------------------------------------------------- traces
@dataclass(frozen=True)
class EnergyTrace:
    """Harvested power over time: ``powers[j]`` watts from ``times[j]`` seconds to the next row."""

    times: np.ndarray
    powers: np.ndarray
    source: str | None = None

    def power_at(self, t: float) -> float:
        j = int(np.searchsorted(self.times, t, side="right")) - 1
        return float(self.powers[max(j, 0)])

    def harvest(self, t0: float, t1: float) -> float:
        """Joules harvested over ``[t0, t1]`` (the C driver's integral, term by term)."""
        e, t = 0.0, t0
        n = len(self.times)
        while t < t1:
            j = int(np.searchsorted(self.times, t, side="right")) - 1
            p = float(self.powers[max(j, 0)])
            nxt = float(self.times[0]) if t < self.times[0] else (float(self.times[j + 1]) if j + 1 < n else t1)
            end = min(nxt, t1)
            if end <= t:
                end = t1
            e += p * (end - t)
            t = end
        return e


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


def write_trace_text(trace: EnergyTrace, path: Path) -> None:
    """The driver's trace file: ``time power`` lines with every digit (repr) of the doubles."""
    path.write_text("".join(f"{t!r} {p!r}\n" for t, p in zip(trace.times.tolist(), trace.powers.tolist())))


# --------------------------------------------------------------------------- the host driver
def gnet_manifest(manifest: Mapping[str, Any], out_dir: str | os.PathLike[str]) -> Mapping[str, Any]:
    g = manifest.get("gnet")
    if not g:
        raise InputError("this package has no gNet", location=Location(file=str(out_dir)),
                         hint="compile with --gnet (and --data) to attach the shared early exit")
    return g


def build_driver(out_dir: str | os.PathLike[str], cc: str | None = None, sanitize: bool = False,
                 start_cycles: int | None = None) -> Path:
    """``make gnet`` (or ``gnet-asan``) in a generated directory; the driver's path. ``start_cycles``
    overrides ``FX_<M>_GNET_START_CYCLES`` (what an inference waits to afford before it starts; a
    separate binary)."""
    from transpiler.hostrun import find_cc, load_manifest

    d = Path(out_dir)
    g = gnet_manifest(load_manifest(d), d)
    if shutil.which("make") is None:
        raise ToolchainError("`make` is not installed", hint="install make (apt-get install make)")
    compiler = find_cc(cc)
    name = g["asan_binary"] if sanitize else g["binary"]
    var = "GNET_ASAN_BIN" if sanitize else "GNET_BIN"
    cmd = ["make", "-C", str(d), "gnet-asan" if sanitize else "gnet", f"CC={compiler}"]
    if start_cycles is not None:
        name = f"{name}_start{int(start_cycles)}"
        macro = f"FX_{str(load_manifest(d)['c_name']).upper()}_GNET_START_CYCLES"
        cmd.append(f"GNET_DEFS=-D{macro}={int(start_cycles)}ul")
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
    k gNet exit k), the outputs it left (meaningful when status >= 0) and the driver's log."""

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
               start_cycles: int | None = None) -> EnergyRun:
    """Run the driver's ``energy`` mode on int16 inputs ``[N, in_size]`` (see the module docstring);
    ``start_cycles``: see :func:`build_driver`."""
    from transpiler.hostrun import load_manifest

    if period < 0 or not math.isfinite(period):
        raise InputError(f"the period {period} s must be >= 0")
    man = load_manifest(out_dir)
    gnet_manifest(man, out_dir)
    exe = build_driver(out_dir, cc, sanitize, start_cycles)
    in_size, out_size = int(man["api"]["in_size"]), int(man["api"]["out_size"])
    x = np.ascontiguousarray(np.asarray(x_q).reshape(-1, in_size), dtype="<i2")
    with tempfile.TemporaryDirectory(prefix="freeml-gnet-") as tmp:
        fin, fout, ftr = Path(tmp) / "in.raw", Path(tmp) / "out.raw", Path(tmp) / "trace.txt"
        fin.write_bytes(x.tobytes())
        write_trace_text(trace, ftr)
        proc = _run(exe, ["energy", str(fin), str(fout), str(len(x)), str(ftr), repr(supply.cap_f), repr(supply.von_v),
                          repr(supply.voff_v), repr(supply.active_w), repr(supply.freq_hz), repr(float(period))])
        y = np.frombuffer(fout.read_bytes(), dtype="<i2").astype(np.int16).reshape(len(x), 1 + out_size)
    logs = [m.groups() for m in (_LOG.match(line) for line in proc.stdout.splitlines()) if m]
    if len(logs) != len(x):
        raise ToolchainError(f"the gNet driver logged {len(logs)} samples, expected {len(x)}",
                             details=proc.stdout.splitlines()[-5:])
    arr = np.asarray([[float(v) for v in row] for row in logs], dtype=np.float64)
    return EnergyRun(y[:, 0].astype(np.int64), y[:, 1:].copy(), arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 6],
                     supply, period)


# --------------------------------------------------------------------------- the reference model
def simulate(program: Any, x_q: np.ndarray, trace: EnergyTrace, supply: PowerSupply, period: float,
             step_cycles: Sequence[int], exit_cycles: int, early_exit: bool = True,
             answers: bool = True, start_cycles: int | None = None) -> tuple[np.ndarray, list[Any]]:
    """The energy model of the module docstring over the LIR interpreter: per sample the status and
    the answer (transpiler.lir.interp.ExitAnswer, or None for the whole model / no answer).

    ``step_cycles`` / ``exit_cycles``: the manifest's ``gnet.step_cycles`` / ``gnet.exit_cycles``
    (the in-sequence steps' predicted cycles, the head's). The arithmetic follows main_gnet.c
    operation by operation, so the decisions match the C's. ``early_exit=False`` is the same device
    without the gNet (every inference runs the whole model or fails); ``answers=False`` skips the
    interpreter runs (statuses only). ``start_cycles``: the manifest's ``gnet.start_cycles``, what an
    inference waits (asleep, charging) to be able to pay before its first step (with
    ``early_exit=False`` the whole model's cycles), at most a full capacitor.
    """
    from transpiler.lir.interp import run_until
    from transpiler.lir.ops import ON_DEMAND_OPS

    seq = [s for s in program.steps if s.op not in ON_DEMAND_OPS]
    exit_after = {i: k for k, i in enumerate([i for i, s in enumerate(seq) if s.op == "gnet_feature"], 1)}
    freq, p_act = supply.freq_hz, supply.active_w
    e_max = 0.5 * supply.cap_f * (supply.von_v * supply.von_v - supply.voff_v * supply.voff_v)
    e, t, dead = e_max, 0.0, False
    status = np.full(len(x_q), NO_ANSWER, dtype=np.int64)
    found: list[Any] = []
    name = program.inputs[0].onnx_name

    def spend(cycles: float) -> bool:
        nonlocal e, t
        dt = cycles / freq
        e += trace.harvest(t, t + dt) - p_act * dt
        t += dt
        e = min(e, e_max)
        return e >= 0.0

    def level() -> int:
        cycles = e * freq / p_act if e > 0.0 else 0.0
        return 0xFFFFFFFF if cycles >= 4294967295.0 else int(cycles)

    for i, x in enumerate(x_q):
        t_req = i * period
        if dead:
            full_at = _charge_to(trace, e_max, e, t)
            if full_at is None:
                found.append(None)
                continue
            e, t, dead = e_max, full_at, False
        if t < t_req:
            e = min(e_max, e + trace.harvest(t, t_req))
            t = t_req
        wait = sum(step_cycles) if not early_exit else start_cycles
        if wait is not None:
            target = min(float(int(wait)) * p_act / freq, e_max)
            if e < target:
                ready_at = _charge_to(trace, target, e, t)
                if ready_at is None:
                    e, dead = 0.0, True
                    found.append(None)
                    continue
                e, t = target, ready_at
        present, stop, ok = 0, None, True
        for s in range(len(seq)):
            if early_exit and present and level() < step_cycles[s] + exit_cycles:
                stop = s
                break
            if not spend(step_cycles[s]):
                ok = False
                break
            present = exit_after.get(s, present)
        if ok and stop is not None:
            ok = spend(exit_cycles)
        if not ok:
            e, dead = 0.0, True
            found.append(None)
            continue
        if stop is None:
            status[i] = WHOLE_MODEL
            found.append(None)
        elif not answers:
            status[i] = present
            found.append(None)
        else:
            ans = run_until(program, {name: x.reshape(program.buffers[program.inputs[0].buffer].shape)},
                            program.steps.index(seq[stop]))
            status[i] = ans.exit
            found.append(ans)
    return status, found


def _charge_to(trace: EnergyTrace, target: float, e: float, t: float) -> float | None:
    """The time the capacitor holds ``target`` J again (None: the trace never gives the energy);
    main_gnet.c's charge_to."""
    n = len(trace.times)
    while e < target:
        j = int(np.searchsorted(trace.times, t, side="right")) - 1
        p = float(trace.powers[max(j, 0)])
        nxt = float(trace.times[0]) if t < trace.times[0] else (float(trace.times[j + 1]) if j + 1 < n else -1.0)
        if nxt < 0.0:
            if p <= 0.0:
                return None
            return t + (target - e) / p
        if p > 0.0 and e + p * (nxt - t) >= target:
            return t + (target - e) / p
        e += p * (nxt - t)
        t = nxt
    return t
