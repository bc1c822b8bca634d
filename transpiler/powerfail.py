"""Run an intermittent package under power failures: on the host (failures counted in FRAM stores)
and on the MSP430 simulator (failures counted in cycles).

    man = hostrun.load_manifest("build/")
    exe = build_host_pf("build/")                                    # make host-intermittent
    r = run_host_pf(exe, man, x, schedule="random:seed=1,min=2000,max=40000")
    r.outputs, r.total["failures"], r.total["reexecuted_stores"]     # int16 [N, out_size]
    s = run_sim_pf("build/", man, x, power_fail="every:30000")       # msp430-elf-run
    s.outputs, s.power_failures, s.cycles, s.reexecuted_cycles

Host schedules (main_intermittent.c, runtime_c/platform/host/fx_power_host.h) count FRAM stores:
``none``, ``after:N``, ``every:N``, ``random:seed=S,min=A,max=B``. Simulator specs count cycles:
``every:N``, ``at:N1,N2,...``, ``random:SEED:MIN:MAX``. :func:`host_spec` and :func:`sim_spec`
translate the random form between the two, so either spelling works on either target.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from transpiler.errors import DataError, FreemlError, InputError, Location, ToolchainError

_HOST_RANDOM = re.compile(r"^random:seed=(\d+),min=(\d+),max=(\d+)$")
_SIM_RANDOM = re.compile(r"^random:(\d+):(\d+):(\d+)$")
_HOST_SPEC = re.compile(r"^(none|after:\d+|every:\d+|random:seed=\d+,min=\d+,max=\d+)$")

#: Exit statuses of <m>_host_pf (main_intermittent.c).
PF_STUCK = 3
PF_MISMATCH = 4
#: MSP430_SIM_MAX_FAILURES for simulator runs unless the caller gives one.
DEFAULT_SIM_MAX_FAILURES = 2000


class PowerFailError(FreemlError):
    """An inference under power failures did not finish, or gave another output than without them."""


def host_spec(spec: str) -> str:
    """A host schedule from either spelling (``random:S:A:B`` -> ``random:seed=S,min=A,max=B``).

    Raises:
        InputError: not a host schedule.
    """
    s = spec.strip()
    m = _SIM_RANDOM.match(s)
    if m:
        s = f"random:seed={m.group(1)},min={m.group(2)},max={m.group(3)}"
    if not _HOST_SPEC.match(s):
        raise InputError(f"bad power-failure schedule {spec!r} for the host",
                         hint="none, after:N, every:N or random:seed=S,min=A,max=B (counted in FRAM stores)")
    return s


def sim_spec(spec: str) -> str:
    """A simulator spec from either spelling (``random:seed=S,min=A,max=B`` -> ``random:S:A:B``)."""
    s = spec.strip()
    m = _HOST_RANDOM.match(s)
    return f"random:{m.group(1)}:{m.group(2)}:{m.group(3)}" if m else s


def require_intermittent(manifest: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The manifest's intermittent section.

    Raises:
        InputError: the package was compiled for continuous power.
    """
    info = manifest.get("intermittent")
    if not info:
        raise InputError("this package was compiled for continuous power: a power failure restarts the "
                         "inference from scratch", location=Location(file=where),
                         hint="compile with --power cap=...,von=...,voff=...,active=... or "
                              "--cycles-per-power-cycle N")
    return dict(info)


def build_host_pf(out_dir: str | os.PathLike[str], cc: str | None = None, sanitize: bool = False,
                  binary: str | None = None) -> Path:
    """``make host-intermittent`` (or ``-asan``) in a generated directory; returns the binary."""
    from transpiler import hostrun

    d = Path(out_dir)
    man = hostrun.load_manifest(d)
    info = require_intermittent(man, str(d))
    compiler = hostrun.find_cc(cc)
    name = binary or (info["host_pf_asan_binary"] if sanitize else info["host_pf_binary"])
    var = "PF_ASAN_BIN" if sanitize else "PF_BIN"
    cmd = ["make", "-C", str(d), "host-intermittent-asan" if sanitize else "host-intermittent",
           f"CC={compiler}", f"{var}={name}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ToolchainError(f"cannot run make: {exc}", hint="install make (apt-get install make)") from exc
    if proc.returncode != 0:
        raise ToolchainError(f"building the power-failure host driver with {compiler} failed",
                             location=Location(file=str(d)),
                             details=(proc.stdout + proc.stderr).strip().splitlines()[-25:],
                             hint=f"run `{' '.join(cmd)}` to see the full output")
    return d / name


@dataclass(frozen=True)
class HostPowerRun:
    """One run of ``<m>_host_pf``: the outputs, per-sample and total counts, and the exit status.

    ``samples``/``total`` hold runs, failures, boots, stores, reexecuted_stores (stores done after
    the last commit before each failure, i.e. work that was repeated), baseline_stores (stores of
    the uninterrupted inference), mismatches and stuck (runs that hit max boots).
    """

    outputs: np.ndarray | None
    samples: list[dict[str, int]]
    total: dict[str, int]
    returncode: int
    stderr: str
    schedule: str

    @property
    def ok(self) -> bool:
        """Every run finished with the uninterrupted run's output."""
        return self.returncode == 0

    def check(self) -> HostPowerRun:
        """Return self when ok; raise PowerFailError (cannot make progress / mismatch) otherwise."""
        if self.returncode == PF_STUCK:
            raise PowerFailError(
                f"cannot make progress under {self.schedule}: a commit group needs more FRAM stores "
                "than the failures leave between two boots",
                details=self.stderr.strip().splitlines()[-3:],
                hint="give longer gaps between failures (the manifest's intermittent.max_piece_stores is "
                     "the largest group), or compile for a smaller budget")
        if self.returncode == PF_MISMATCH:
            raise PowerFailError(f"the output under {self.schedule} differs from the uninterrupted run",
                                 details=self.stderr.strip().splitlines()[-3:],
                                 hint="a bug in the intermittent runtime: please report it with the package")
        if self.returncode != 0:
            raise ToolchainError(f"the power-failure driver failed with exit status {self.returncode}",
                                 details=self.stderr.strip().splitlines()[-10:])
        return self


def run_host_pf(binary: str | os.PathLike[str], manifest: Mapping[str, Any], inputs: np.ndarray, *,
                schedule: str = "none", repeat: int = 0, exhaustive: bool = False,
                max_boots: int | None = None, timeout: float = 600.0) -> HostPowerRun:
    """Run int16 inputs ``[N, in_size]`` through ``<m>_host_pf`` (see main_intermittent.c).

    ``repeat`` runs that many random schedules per sample (seeds S..S+repeat-1); ``exhaustive``
    fails once before every FRAM store of the inference, one run per position.
    """
    in_size, out_size = int(manifest["api"]["in_size"]), int(manifest["api"]["out_size"])
    x = np.ascontiguousarray(np.asarray(inputs).reshape(-1, in_size), dtype="<i2")
    n = x.shape[0]
    if n == 0:
        raise DataError("no input samples to run")
    spec = host_spec(schedule)
    args = ["--schedule", spec] if spec != "none" else []
    if repeat:
        args += ["--repeat", str(int(repeat))]
    if exhaustive:
        args.append("--exhaustive")
    if max_boots is not None:
        args += ["--max-boots", str(int(max_boots))]
    with tempfile.TemporaryDirectory(prefix="freeml-pf-") as tmp:
        fin, fout = Path(tmp) / "in.raw", Path(tmp) / "out.raw"
        fin.write_bytes(x.tobytes())
        try:
            proc = subprocess.run([str(binary), *args, str(fin), str(fout), str(n)], capture_output=True,
                                  text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ToolchainError(f"{Path(binary).name} ran longer than {timeout:g} s") from exc
        y = np.frombuffer(fout.read_bytes(), dtype="<i2").reshape(n, out_size).astype(np.int16) \
            if proc.returncode == 0 and fout.is_file() else None
    if proc.returncode not in (0, PF_STUCK, PF_MISMATCH):
        raise ToolchainError(f"{Path(binary).name} failed with exit status {proc.returncode}",
                             location=Location(file=str(binary)),
                             details=(proc.stdout + proc.stderr).strip().splitlines()[-30:],
                             hint="a sanitizer report above points at the failing C line")
    samples: list[dict[str, int]] = []
    total: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            if "sample" in doc:
                samples.append(doc)
            else:
                total = doc
    label = spec + (f" x{repeat}" if repeat else "") + (" (exhaustive)" if exhaustive else "")
    return HostPowerRun(y, samples, total, proc.returncode, proc.stderr, label)


@dataclass(frozen=True)
class SimPowerRun:
    """A simulator run under power failures and the same run without them.

    ``reexecuted_cycles`` = cycles - baseline_cycles: the boots and the lost partial groups.
    ``baseline_outputs``: the uninterrupted run's outputs (None when its cycles were given).
    """

    outputs: np.ndarray
    power_failures: int
    cycles: int
    baseline_cycles: int
    instructions: int
    exit_reason: str
    spec: str
    baseline_outputs: np.ndarray | None = None

    @property
    def reexecuted_cycles(self) -> int:
        return self.cycles - self.baseline_cycles


def run_sim_pf(out_dir: str | os.PathLike[str], manifest: Mapping[str, Any], inputs: np.ndarray, *,
               power_fail: str | None, max_failures: int = DEFAULT_SIM_MAX_FAILURES,
               baseline: int | None = None, sram_fill: str | None = None,
               timeout: float = 600.0) -> SimPowerRun:
    """Run int16 inputs ``[N, in_size]`` through the package's simulator build (a plain ``make
    msp430``, transpiler/simpackage.py) with ``power_fail`` (cycles), and without failures for the
    baseline unless ``baseline`` (its total cycles) is given.

    Raises:
        PowerFailError: the simulator stopped at ``max_failures`` (exit status 3: the failures come
            faster than one commit group plus a boot).
        ToolchainError: no toolchain, a build or simulator problem.
    """
    from transpiler.simpackage import run_package

    require_intermittent(manifest, str(out_dir))
    in_size = int(manifest["api"]["in_size"])
    x = np.asarray(inputs).reshape(-1, in_size)
    spec = sim_spec(power_fail) if power_fail else None
    options: dict[str, Any] = {"max_failures": max_failures, "timeout": timeout}
    if sram_fill is not None:
        options["sram_fill"] = sram_fill
    try:
        r = run_package(out_dir, x, counters="none", power_fail=spec, **options)
    except ToolchainError as exc:
        if "'max_failures'" in exc.message:
            raise PowerFailError(
                f"cannot make progress on the simulator under {spec}: {max_failures} power failures "
                "(MSP430_SIM_MAX_FAILURES, exit status 3) and the inference has not finished",
                hint="the failures come faster than one commit group plus the boot: give longer power "
                     "cycles, or compile for a smaller --cycles-per-power-cycle") from exc
        raise
    base_outputs = None
    if baseline is None:
        r0 = r if not spec else run_package(out_dir, x, counters="none", timeout=timeout)
        baseline, base_outputs = r0.total_cycles, r0.outputs
    return SimPowerRun(r.outputs, r.power_failures, r.total_cycles, int(baseline), r.total_instructions,
                       "halt", spec or "none", base_outputs)


__all__ = ["PowerFailError", "host_spec", "sim_spec", "require_intermittent", "build_host_pf",
           "HostPowerRun", "run_host_pf", "SimPowerRun", "run_sim_pf", "PF_STUCK", "PF_MISMATCH"]
