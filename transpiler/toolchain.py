"""Find the msp430-elf toolchain (compiler, binutils, the patched simulator) and ask its versions.

Where we look, first match wins:

1. ``$MSP430_GCC_ROOT`` - the unpacked toolchain (``$MSP430_GCC_ROOT/bin/msp430-elf-gcc``); when it
   is set but wrong that is an error, not a reason to look elsewhere;
2. ``msp430-elf-gcc`` on ``PATH``;
3. ``/opt/msp430-elf`` and ``~/.local/msp430-elf``, where ``tools/msp430-toolchain.sh`` installs it.

The simulator ``msp430-elf-run`` must sit beside the compiler (the bundle ships both). Whether it
carries freeml-tx's patch (statistics file, power failures, counters at 0x0580) is read from the
binary: the patched one knows the ``MSP430_SIM_STATS`` and ``MSP430_SIM_POWER_FAIL`` variables.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from transpiler.errors import ToolchainError

ENV_ROOT = "MSP430_GCC_ROOT"
GCC = "msp430-elf-gcc"
SIM = "msp430-elf-run"

INSTALL_HINT = ("install it with tools/msp430-toolchain.sh (unpacks "
                "shared/toolchains/msp430/msp430-elf-toolchain.tar.xz to /opt/msp430-elf), then put "
                "/opt/msp430-elf/bin on PATH or set MSP430_GCC_ROOT=/opt/msp430-elf")
#: Markers that only the patched simulator's binary contains.
PATCH_MARKERS = (b"MSP430_SIM_STATS", b"MSP430_SIM_POWER_FAIL")


def default_roots(home: Path | None = None) -> tuple[Path, ...]:
    """The install locations searched after PATH."""
    home = home if home is not None else Path.home()
    return (Path("/opt/msp430-elf"), home / ".local" / "msp430-elf")


@dataclass(frozen=True)
class Msp430Toolchain:
    """An msp430-elf toolchain: the directory of its programs and how it was found."""

    bin_dir: Path
    found_via: str  # "MSP430_GCC_ROOT", "PATH" or the install directory that held it

    @property
    def root(self) -> Path:
        """The toolchain prefix (the parent of bin/); what MSP430_GCC_ROOT should be set to."""
        return self.bin_dir.parent

    def tool(self, name: str) -> Path:
        """``tool("objdump")`` -> ``<bin>/msp430-elf-objdump`` (whether or not it exists)."""
        return self.bin_dir / (name if name.startswith("msp430-elf-") else f"msp430-elf-{name}")

    @property
    def gcc(self) -> Path:
        return self.tool("gcc")

    @property
    def sim(self) -> Path:
        return self.tool("run")

    @property
    def size(self) -> Path:
        return self.tool("size")

    @property
    def objdump(self) -> Path:
        return self.tool("objdump")

    def has_sim(self) -> bool:
        """Whether msp430-elf-run is beside the compiler."""
        return _is_exe(self.sim)

    def gcc_version(self) -> str:
        """First line of ``msp430-elf-gcc --version``; ToolchainError when it does not run."""
        return tool_version(self.gcc)

    def sim_version(self) -> str:
        """First line of ``msp430-elf-run --version``."""
        return tool_version(self.sim)

    def sim_patched(self) -> bool:
        """Whether the simulator has the statistics/power-failure patch (read from its binary)."""
        return binary_contains(self.sim, PATCH_MARKERS)

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """An environment for make/subprocesses: MSP430_GCC_ROOT set, bin/ first on PATH."""
        env = dict(os.environ if base is None else base)
        env[ENV_ROOT] = str(self.root)
        env["PATH"] = str(self.bin_dir) + os.pathsep + env.get("PATH", "")
        return env


def _is_exe(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@functools.lru_cache(maxsize=64)
def _version_cached(path: str, mtime: float) -> str:
    try:
        proc = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30,
                              check=False)
    except OSError as exc:
        raise ToolchainError(f"{path} does not run: {exc}", hint=INSTALL_HINT) from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolchainError(f"{path} --version did not finish in 30 s") from exc
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        first = err[0] if err else f"exit status {proc.returncode}"
        hint = INSTALL_HINT
        if "shared libraries" in first:
            hint = ("a shared library is missing: apt-get install libmpc3 libmpfr6 libgmp10 "
                    "libzstd1 (tools/msp430-toolchain.sh does it)")
        raise ToolchainError(f"{path} --version failed: {first}", hint=hint)
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0].strip() if lines else ""


def tool_version(path: Path) -> str:
    """The first line of ``<path> --version`` (cached per path and modification time).

    Raises:
        ToolchainError: the program is missing, does not start (e.g. a missing shared library),
            or exits with an error.
    """
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise ToolchainError(f"{path} not found", hint=INSTALL_HINT) from exc
    return _version_cached(str(path), mtime)


def binary_contains(path: Path, markers: Sequence[bytes]) -> bool:
    """Whether the file holds every one of ``markers`` (False when it cannot be read)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return all(m in data for m in markers)


def toolchain_candidates(env: Mapping[str, str] | None = None, *,
                         roots: Sequence[Path] | None = None) -> list[tuple[str, Path]]:
    """Every (found_via, bin_dir) that is searched, in order, whether or not it exists.

    MSP430_GCC_ROOT may name the prefix or its bin/ directory.
    """
    env = os.environ if env is None else env
    out: list[tuple[str, Path]] = []
    root = env.get(ENV_ROOT, "").strip()
    if root:
        p = Path(root).expanduser()
        out.append((ENV_ROOT, p if (p / GCC).is_file() and not (p / "bin").is_dir() else p / "bin"))
    on_path = shutil.which(GCC, path=env.get("PATH", ""))
    if on_path:
        out.append(("PATH", Path(on_path).resolve().parent))
    for r in (roots if roots is not None else default_roots()):
        out.append((str(r), r / "bin"))
    return out


def find_msp430_toolchain(env: Mapping[str, str] | None = None, *, require_sim: bool = True,
                          roots: Sequence[Path] | None = None) -> Msp430Toolchain:
    """The msp430-elf toolchain to use.

    Args:
        env: environment to read MSP430_GCC_ROOT and PATH from (default os.environ).
        require_sim: also require msp430-elf-run beside the compiler.
        roots: the install directories searched after PATH (default :func:`default_roots`).

    Raises:
        ToolchainError: MSP430_GCC_ROOT is set but holds no compiler, or nothing was found,
            or the simulator is missing; the hint says how to install it.
    """
    env = os.environ if env is None else env
    tried: list[str] = []
    for via, bin_dir in toolchain_candidates(env, roots=roots):
        gcc = bin_dir / GCC
        if not _is_exe(gcc):
            if via == ENV_ROOT:
                raise ToolchainError(
                    f"{ENV_ROOT}={env.get(ENV_ROOT)} but {gcc} does not exist or is not executable",
                    hint=f"point {ENV_ROOT} at the unpacked toolchain (the directory holding "
                         f"bin/{GCC}) or unset it; " + INSTALL_HINT)
            tried.append(str(gcc))
            continue
        tc = Msp430Toolchain(bin_dir=bin_dir, found_via=via)
        if require_sim and not tc.has_sim():
            raise ToolchainError(
                f"{GCC} found at {gcc} (via {via}) but {SIM} is not beside it",
                hint="the freeml-tx bundle ships both; " + INSTALL_HINT)
        return tc
    raise ToolchainError(
        f"{GCC} not found ({ENV_ROOT} unset, not on PATH, not in "
        + ", ".join(str(r) for r in (roots if roots is not None else default_roots())) + ")",
        hint=INSTALL_HINT, details=[f"tried {t}" for t in tried])


def find_msp430_toolchain_or_none(env: Mapping[str, str] | None = None, *,
                                  require_sim: bool = True,
                                  roots: Sequence[Path] | None = None
                                  ) -> tuple[Msp430Toolchain | None, str]:
    """Like :func:`find_msp430_toolchain`, but returns (None, reason) instead of raising.

    The compiler must also run (``--version``), so a toolchain with a missing shared library
    counts as not found. Used by tests (skip reason) and ``freeml-tx doctor``.
    """
    try:
        tc = find_msp430_toolchain(env, require_sim=require_sim, roots=roots)
        tc.gcc_version()
    except ToolchainError as exc:
        reason = exc.message + (f" ({exc.hint})" if exc.hint else "")
        return None, reason
    return tc, f"found via {tc.found_via}: {tc.bin_dir}"
