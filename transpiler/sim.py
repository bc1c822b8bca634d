"""Run MSP430 programs in the patched GNU simulator and read what they print and what they cost.

    from transpiler.sim import run_elf, run_model
    r = run_elf("build/lenet5.elf", power_fail="every:20000", max_failures=500)
    r.exit_reason, r.cycles, r.instructions, r.power_failures   # from MSP430_SIM_STATS
    r.output().outputs[0]                                        # int16 outputs of input 0
    r = run_model("build", "lenet5", [x0, x1], counters=True)   # write sim_input.c, make, run

The program talks through CIO (runtime_c/platform/msp430/cio.c); ``main_sim.c`` prints lines that
:func:`parse_cio_output` reads (``y``, ``run``, ``step``, ``done``, ``error``). The simulator writes
one JSON object of statistics to the file named by ``MSP430_SIM_STATS`` when the run ends; power
failures are injected by ``MSP430_SIM_POWER_FAIL`` (``every:N``, ``at:N1,N2,...``,
``random:SEED:MIN:MAX``, counted in cycles); see shared/toolchains/msp430/README.md.

Exit statuses of ``msp430-elf-run``: 0 halt (main returned 0), 255 fault (main returned non-zero,
or a crash), 3 too many power failures, 4 the cycle limit, 2 a malformed variable (raised here as
:class:`~transpiler.errors.ToolchainError`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from transpiler.errors import DataError, ToolchainError
from transpiler.toolchain import Msp430Toolchain, find_msp430_toolchain

EXIT_REASONS = ("halt", "fault", "max_failures", "max_cycles", "exit")
_STATS_KEYS = ("instructions", "cycles", "power_failures", "cycles_last_boot", "exit_reason")
_SPEC_RE = re.compile(r"^(every:[0-9]+|at:[0-9]+(,[0-9]+)*|random:[0-9]+:[0-9]+:[0-9]+)$")
SPEC_HINT = ("power-failure specs: every:N (N cycles after each boot), at:N1,N2,... (cumulative "
             "cycles), random:SEED:MIN:MAX (a gap in [MIN, MAX] after each boot)")


@dataclass(frozen=True)
class StepCount:
    """One ``step``/``run`` line: the cycles and instructions of a measured interval."""

    index: int
    cycles: int
    instructions: int


@dataclass(frozen=True)
class SimOutput:
    """What main_sim.c printed, parsed.

    Attributes:
        outputs: input index -> its int16 outputs, in order.
        runs: input index -> cycles/instructions of its FX_RUN call (FX_SIM_COUNTERS builds).
        steps: every step line in order (repeated steps after power failures appear again).
        done: the count of the final ``done`` line, None when the program did not get there.
        errors: the text after ``error`` on each error line.
        other: lines that are none of the above.
    """

    outputs: dict[int, list[int]]
    runs: dict[int, StepCount]
    steps: list[StepCount]
    done: int | None
    errors: list[str]
    other: list[str]

    def step_cycles(self) -> dict[int, int]:
        """Step index -> cycles, the last report of each step."""
        return {s.index: s.cycles for s in self.steps}


@dataclass(frozen=True)
class SimResult:
    """One simulator run: its output and the simulator's statistics."""

    stdout: str
    stderr: str
    returncode: int
    exit_reason: str
    instructions: int
    cycles: int
    power_failures: int
    cycles_last_boot: int
    power_fail_spec: str | None
    stats: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def halted(self) -> bool:
        """Whether the program finished normally (main returned 0)."""
        return self.exit_reason == "halt" and self.returncode == 0

    def output(self) -> SimOutput:
        """The parsed stdout and stderr (error lines may be on either)."""
        return parse_cio_output(self.stdout + ("\n" + self.stderr if self.stderr else ""))

    def check(self) -> SimResult:
        """Return self when the program halted; raise ToolchainError otherwise."""
        if not self.halted:
            tail = (self.stderr.strip() or self.stdout.strip()).splitlines()[-5:]
            raise ToolchainError(
                f"the program did not finish: exit reason {self.exit_reason!r} "
                f"(status {self.returncode}) after {self.cycles} cycles, "
                f"{self.power_failures} power failures",
                details=tail,
                hint=_reason_hint(self.exit_reason))
        return self


def _reason_hint(reason: str) -> str:
    return {
        "fault": "main returned non-zero (see its 'error' line) or the program crashed",
        "max_failures": "no progress within one power cycle: make the power cycles longer "
                        "(every:N with a larger N) or the work between commits smaller",
        "max_cycles": "raise max_cycles or check for an endless loop",
    }.get(reason, "see the simulator's output")


def validate_power_fail_spec(spec: str) -> str:
    """Check the form of an MSP430_SIM_POWER_FAIL spec; return it stripped.

    Raises:
        ToolchainError: the spec is not every:N, at:N1,... or random:SEED:MIN:MAX.
    """
    s = spec.strip()
    if not _SPEC_RE.match(s):
        raise ToolchainError(f"bad power-failure spec {spec!r}", hint=SPEC_HINT)
    if s.startswith("random:"):
        _, _, lo, hi = s.split(":")
        if int(lo) > int(hi):
            raise ToolchainError(f"bad power-failure spec {spec!r}: MIN > MAX", hint=SPEC_HINT)
    if s.startswith("every:") and int(s[6:]) == 0:
        raise ToolchainError(f"bad power-failure spec {spec!r}: N must be positive", hint=SPEC_HINT)
    return s


def parse_stats(text: str) -> dict[str, object]:
    """Parse the simulator's statistics file (one JSON object).

    Raises:
        ToolchainError: not JSON, or a required key missing.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolchainError(f"the simulator's statistics are not JSON: {text[:200]!r}") from exc
    if not isinstance(data, dict):
        raise ToolchainError(f"the simulator's statistics are not a JSON object: {text[:200]!r}")
    missing = [k for k in _STATS_KEYS if k not in data]
    if missing:
        raise ToolchainError(f"the simulator's statistics lack {', '.join(missing)}",
                             hint="use the patched msp430-elf-run of the freeml-tx bundle")
    return data


def _int16(h: str) -> int:
    v = int(h, 16)
    if not 0 <= v <= 0xFFFF:
        raise ValueError(h)
    return v - 0x10000 if v >= 0x8000 else v


_COUNT_RE = re.compile(r"^(step|run) (\d+) cycles (\d+) instructions (\d+)$")


def parse_cio_output(text: str) -> SimOutput:
    """Parse main_sim.c's output (see its header comment for the line forms).

    Lines printed more than once (at-least-once output after a power failure) count once, the
    last one winning.

    Raises:
        ToolchainError: a y line with malformed values, or an input whose outputs have gaps.
    """
    pieces: dict[int, dict[int, list[int]]] = {}
    runs: dict[int, StepCount] = {}
    steps: list[StepCount] = []
    done: int | None = None
    errors: list[str] = []
    other: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        parts = line.split()
        if parts[0] == "y" and len(parts) >= 3 and parts[1].isdigit() and parts[2].isdigit():
            try:
                vals = [_int16(h) for h in parts[3:]]
            except ValueError as exc:
                raise ToolchainError(f"malformed output line {line!r}") from exc
            pieces.setdefault(int(parts[1]), {})[int(parts[2])] = vals
            continue
        m = _COUNT_RE.match(line)
        if m:
            c = StepCount(int(m.group(2)), int(m.group(3)), int(m.group(4)))
            if m.group(1) == "run":
                runs[c.index] = c
            else:
                steps.append(c)
            continue
        if parts[0] == "done" and len(parts) == 2 and parts[1].isdigit():
            done = int(parts[1])
            continue
        if parts[0] == "error":
            errors.append(line[len("error"):].strip())
            continue
        other.append(line)
    outputs: dict[int, list[int]] = {}
    for i, by_off in sorted(pieces.items()):
        vals: list[int] = []
        for off in sorted(by_off):
            if off != len(vals):
                raise ToolchainError(f"outputs of input {i} have a gap at element {len(vals)}")
            vals.extend(by_off[off])
        outputs[i] = vals
    return SimOutput(outputs=outputs, runs=runs, steps=steps, done=done, errors=errors,
                     other=other)


def _sim_env(base: Mapping[str, str] | None, settings: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if not k.startswith("MSP430_SIM_")}
    env.update(settings)
    return env


def run_elf(elf: str | os.PathLike[str], *,
            power_fail: str | None = None,
            max_failures: int | None = None,
            max_cycles: int | None = None,
            sram: str | None = None,
            sram_fill: str | None = None,
            verbose: bool = False,
            timeout: float = 600.0,
            toolchain: Msp430Toolchain | None = None,
            validate: bool = True,
            env: Mapping[str, str] | None = None) -> SimResult:
    """Run ``elf`` in msp430-elf-run with statistics; return output and counts.

    Args:
        power_fail: MSP430_SIM_POWER_FAIL spec (checked by :func:`validate_power_fail_spec`
            unless ``validate`` is False, which passes it to the simulator as it is).
        max_failures: MSP430_SIM_MAX_FAILURES (stop with exit_reason "max_failures").
        max_cycles: MSP430_SIM_MAX_CYCLES (stop with exit_reason "max_cycles").
        sram: MSP430_SIM_SRAM "lo:hi", the SRAM range lost at a failure.
        sram_fill: MSP430_SIM_SRAM_FILL, a 16-bit pattern or "random".
        verbose: MSP430_SIM_VERBOSE=1 (failures logged on stderr).
        timeout: wall-clock seconds before the simulator is killed.
        toolchain: default :func:`~transpiler.toolchain.find_msp430_toolchain`.
        env: base environment (default os.environ; inherited MSP430_SIM_* are dropped).

    Raises:
        ToolchainError: no simulator, a malformed setting (simulator exit 2), no statistics
            (an unpatched simulator), or the timeout.
    """
    tc = toolchain or find_msp430_toolchain()
    elf_path = Path(elf)
    if not elf_path.is_file():
        raise ToolchainError(f"{elf_path} does not exist", hint="build it first (make msp430)")
    settings: dict[str, str] = {}
    if power_fail is not None:
        settings["MSP430_SIM_POWER_FAIL"] = validate_power_fail_spec(power_fail) if validate \
            else power_fail
    if max_failures is not None:
        settings["MSP430_SIM_MAX_FAILURES"] = str(int(max_failures))
    if max_cycles is not None:
        settings["MSP430_SIM_MAX_CYCLES"] = str(int(max_cycles))
    if sram is not None:
        settings["MSP430_SIM_SRAM"] = sram
    if sram_fill is not None:
        settings["MSP430_SIM_SRAM_FILL"] = sram_fill
    if verbose:
        settings["MSP430_SIM_VERBOSE"] = "1"
    with tempfile.TemporaryDirectory(prefix="fx-sim-") as tmp:
        stats_file = Path(tmp) / "stats.json"
        settings["MSP430_SIM_STATS"] = str(stats_file)
        t0 = time.monotonic()
        try:
            proc = subprocess.run([str(tc.sim), str(elf_path)], capture_output=True,
                                  env=_sim_env(env, settings), timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ToolchainError(f"{elf_path.name} ran longer than {timeout:g} s in the simulator",
                                 hint="set max_cycles / max_failures, or raise the timeout") from exc
        except OSError as exc:
            raise ToolchainError(f"cannot start {tc.sim}: {exc}") from exc
        seconds = time.monotonic() - t0
        stdout = proc.stdout.decode("utf-8", "replace")
        stderr = proc.stderr.decode("utf-8", "replace")
        if proc.returncode == 2 and not stats_file.exists():
            raise ToolchainError(
                f"the simulator rejected its settings: {stderr.strip() or 'exit status 2'}",
                hint=SPEC_HINT)
        if not stats_file.exists():
            raise ToolchainError(
                f"the simulator wrote no statistics (exit status {proc.returncode})",
                details=stderr.strip().splitlines()[-5:],
                hint="this msp430-elf-run lacks freeml-tx's patch (sim-fram-count.patch); "
                     "use the one from shared/toolchains/msp430 (tools/msp430-toolchain.sh)")
        stats = parse_stats(stats_file.read_text())
    spec = stats.get("power_fail_spec")
    return SimResult(
        stdout=stdout, stderr=stderr, returncode=proc.returncode,
        exit_reason=str(stats["exit_reason"]),
        instructions=int(stats["instructions"]),  # type: ignore[call-overload]
        cycles=int(stats["cycles"]),  # type: ignore[call-overload]
        power_failures=int(stats["power_failures"]),  # type: ignore[call-overload]
        cycles_last_boot=int(stats["cycles_last_boot"]),  # type: ignore[call-overload]
        power_fail_spec=None if spec is None else str(spec),
        stats=stats, seconds=seconds)


def sim_input_text(inputs: Sequence[Iterable[int]]) -> str:
    """The C text of sim_input.c for ``inputs`` (each a sequence of int16 values).

    Raises:
        DataError: no inputs, inputs of different lengths, values outside int16, or too many.
    """
    rows = [[int(v) for v in x] for x in inputs]
    if not rows or not rows[0]:
        raise DataError("sim_input.c needs at least one non-empty input")
    n = len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != n:
            raise DataError(f"input {i} has {len(r)} elements, input 0 has {n}")
        bad = [v for v in r if not -32768 <= v <= 32767]
        if bad:
            raise DataError(f"input {i} holds {bad[0]}, outside int16",
                            hint="quantize the input to the model's input Q format first")
    if len(rows) > 0xFFFF or n > 0xFFFF:
        raise DataError(f"{len(rows)} inputs of {n} elements do not fit 16-bit counts")
    out = ["/* sim_input.c - inputs for main_sim.c (generated by freeml-tx; do not edit). */",
           "#include <stdint.h>", "",
           "#ifdef __MSP430X_LARGE__",
           "#define FX_SIM_INPUT_PLACE __attribute__((upper))  /* HIFRAM */",
           "#else",
           "#define FX_SIM_INPUT_PLACE",
           "#endif", "",
           f"const uint16_t fx_sim_input_count = {len(rows)};",
           f"const uint16_t fx_sim_input_len = {n};",
           f"const int16_t fx_sim_inputs[{len(rows) * n}] FX_SIM_INPUT_PLACE = {{"]
    for i, r in enumerate(rows):
        out.append(f"    /* input {i} */")
        for k in range(0, n, 12):
            out.append("    " + ", ".join(str(v) for v in r[k:k + 12]) + ",")
    out.append("};")
    return "\n".join(out) + "\n"


def write_sim_input(path: str | os.PathLike[str], inputs: Sequence[Iterable[int]]) -> bool:
    """Write sim_input.c; returns False (and leaves the file alone) when it is unchanged."""
    text = sim_input_text(inputs)
    p = Path(path)
    if p.is_file() and p.read_text() == text:
        return False
    p.write_text(text)
    return True


def build_elf(build_dir: str | os.PathLike[str], *, counters: bool = False,
              toolchain: Msp430Toolchain | None = None, target: str = "msp430",
              make_vars: Mapping[str, str] | None = None, timeout: float = 600.0) -> None:
    """``make -C build_dir msp430`` with the toolchain's MSP430_GCC_ROOT.

    Raises:
        ToolchainError: make is missing or the build failed (the message has its last lines).
    """
    tc = toolchain or find_msp430_toolchain()
    cmd = ["make", "-C", str(build_dir), target]
    if counters:
        cmd.append("MSP430_COUNTERS=1")
    else:
        cmd.append("MSP430_COUNTERS=")
    cmd += [f"{k}={v}" for k, v in (make_vars or {}).items()]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=tc.environ(),
                              timeout=timeout, check=False)
    except OSError as exc:
        raise ToolchainError(f"cannot run make: {exc}", hint="apt-get install make") from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolchainError(f"{' '.join(cmd)} took longer than {timeout:g} s") from exc
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise ToolchainError(f"{' '.join(cmd)} failed (exit status {proc.returncode})",
                             details=lines[-15:],
                             hint="the MSP430 build must be warning-free; see the lines above")


def run_model(build_dir: str | os.PathLike[str], model_name: str,
              inputs: Sequence[Iterable[int]], *, counters: bool = False,
              toolchain: Msp430Toolchain | None = None,
              make_vars: Mapping[str, str] | None = None,
              **run_options: object) -> SimResult:
    """Write ``build_dir/sim_input.c``, rebuild ``<model_name>.elf`` and run it.

    ``make_vars`` go to make (e.g. ``MSP430_CFLAGS_EXTRA``); ``run_options`` to :func:`run_elf`
    (power_fail, max_failures, max_cycles, ...).
    """
    tc = toolchain or find_msp430_toolchain()
    write_sim_input(Path(build_dir) / "sim_input.c", inputs)
    build_elf(build_dir, counters=counters, toolchain=tc, make_vars=make_vars)
    return run_elf(Path(build_dir) / f"{model_name}.elf", toolchain=tc,
                   **run_options)  # type: ignore[arg-type]
