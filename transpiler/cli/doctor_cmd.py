"""``freeml-tx doctor``: what this machine has for freeml-tx, one line per tool.

Python packages (required and optional, with versions), the host C compilers, make and valgrind,
and the msp430-elf toolchain: where the compiler and the simulator were found (MSP430_GCC_ROOT,
PATH, /opt/msp430-elf, ~/.local/msp430-elf), their versions, and whether the simulator carries
freeml-tx's patch (statistics, power failures, cycle counters). It only reports: the exit status is
0 whatever is missing, and every missing piece comes with how to get it.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from transpiler.errors import ToolchainError
from transpiler.toolchain import (ENV_ROOT, GCC, INSTALL_HINT, SIM, find_msp430_toolchain,
                                  toolchain_candidates)

NAME = "doctor"

#: (distribution, group) used when freeml-tx's own metadata is not installed.
FALLBACK_REQUIREMENTS = (
    ("onnx", "required"), ("onnxruntime", "required"), ("onnx-graphsurgeon", "required"),
    ("numpy", "required"), ("lark", "required"),
    ("pytest", "test"), ("hypothesis", "test"), ("pytest-xdist", "test"),
    ("torch", "samples"), ("scikit-learn", "samples"), ("skl2onnx", "samples"),
    ("mlxtend", "samples"),
)


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    section: str
    name: str
    ok: bool
    detail: str
    hint: str = ""
    optional: bool = False


def requirements() -> list[tuple[str, str]]:
    """(distribution, group) of every dependency, from freeml-tx's metadata when installed."""
    try:
        reqs = md.requires("freeml-tx")
    except md.PackageNotFoundError:
        reqs = None
    out: list[tuple[str, str]] = []
    for r in reqs or []:
        name = re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].strip()
        m = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", r)
        out.append((name, m.group(1) if m else "required"))
    # Installed metadata can be older than pyproject.toml: add what it does not list.
    known = {n.lower() for n, _ in out}
    out += [(n, g) for n, g in FALLBACK_REQUIREMENTS if n.lower() not in known]
    return out


def _first_line(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"does not run: {exc}"
    text = (proc.stdout or proc.stderr).strip().splitlines()
    if proc.returncode != 0:
        return f"exit status {proc.returncode}: {text[0] if text else ''}"
    return text[0].strip() if text else ""


def python_checks() -> list[Check]:
    """Interpreter and every dependency with its version."""
    checks = [Check("python", "python", sys.version_info >= (3, 10),
                    f"{platform.python_version()} ({sys.executable})",
                    "" if sys.version_info >= (3, 10) else "freeml-tx needs Python 3.10 or newer")]
    try:
        checks.append(Check("python", "freeml-tx", True, md.version("freeml-tx")))
    except md.PackageNotFoundError:
        checks.append(Check("python", "freeml-tx", False, "not installed (running from source)",
                            "pip install -e .[test,samples]", optional=True))
    for dist, group in requirements():
        optional = group != "required"
        label = f"{dist} ({group})" if optional else dist
        try:
            checks.append(Check("python", label, True, md.version(dist), optional=optional))
        except md.PackageNotFoundError:
            extra = "" if group == "required" else f"[{group}]"
            checks.append(Check("python", label, False, "missing",
                                f"pip install {dist}  (or pip install -e .{extra})",
                                optional=optional))
    return checks


def host_checks(env: Mapping[str, str]) -> list[Check]:
    """Host C compilers, make and valgrind."""
    checks: list[Check] = []
    path = env.get("PATH", "")
    for tool, optional, hint in (
            ("cc", False, "apt-get install gcc"),
            ("gcc", False, "apt-get install gcc"),
            ("clang", True, "apt-get install clang"),
            ("make", False, "apt-get install make"),
            ("valgrind", True, "apt-get install valgrind")):
        where = shutil.which(tool, path=path)
        if where:
            checks.append(Check("host", tool, True, f"{where} ({_first_line([where, '--version'])})",
                                optional=optional))
        else:
            checks.append(Check("host", tool, False, "not found", hint, optional=optional))
    return checks


def msp430_checks(env: Mapping[str, str], roots: list[Path] | None = None) -> list[Check]:
    """Where the msp430-elf compiler and simulator are, their versions, the simulator patch."""
    checks: list[Check] = []
    searched = ", ".join(f"{via}: {d}" for via, d in toolchain_candidates(env, roots=roots))
    try:
        tc = find_msp430_toolchain(env, require_sim=False, roots=roots)
    except ToolchainError as exc:
        checks.append(Check("msp430", GCC, False, exc.message, exc.hint or INSTALL_HINT))
        checks.append(Check("msp430", "searched", True, searched or "(nothing to search)"))
        return checks
    try:
        gcc_version = tc.gcc_version()
        checks.append(Check("msp430", GCC, True, f"{tc.gcc} (via {tc.found_via}): {gcc_version}"))
    except ToolchainError as exc:
        checks.append(Check("msp430", GCC, False, f"{tc.gcc} (via {tc.found_via}): {exc.message}",
                            exc.hint or ""))
    if not tc.has_sim():
        checks.append(Check("msp430", SIM, False, f"not beside the compiler in {tc.bin_dir}",
                            INSTALL_HINT))
    else:
        try:
            checks.append(Check("msp430", SIM, True, f"{tc.sim}: {tc.sim_version()}"))
        except ToolchainError as exc:
            checks.append(Check("msp430", SIM, False, f"{tc.sim}: {exc.message}", exc.hint or ""))
        patched = tc.sim_patched()
        checks.append(Check(
            "msp430", "simulator patch", patched,
            "yes: MSP430_SIM_STATS, MSP430_SIM_POWER_FAIL, counters at 0x0580" if patched
            else "no: this msp430-elf-run has no statistics, power failures or counters",
            "" if patched else "use the simulator of shared/toolchains/msp430 "
                               "(tools/msp430-toolchain.sh)"))
    make_ok = ENV_ROOT in env or shutil.which(GCC, path=env.get("PATH", "")) is not None
    checks.append(Check(
        "msp430", "make msp430", True,
        f"uses {tc.root}" + ("" if make_ok else " (found in a default location; to be explicit "
                             f"export PATH={tc.bin_dir}:$PATH or {ENV_ROOT}={tc.root})")))
    return checks


def collect_checks(env: Mapping[str, str] | None = None,
                   roots: list[Path] | None = None) -> list[Check]:
    """Every check of the report, in order."""
    env = os.environ if env is None else env
    return python_checks() + host_checks(env) + msp430_checks(env, roots)


def render(checks: list[Check]) -> str:
    """The text report: a header per section, one line per check, hints indented below."""
    titles = {"python": "Python", "host": "host tools", "msp430": "MSP430 toolchain"}
    lines: list[str] = []
    section = ""
    for c in checks:
        if c.section != section:
            section = c.section
            lines.append(f"{titles.get(section, section)}:")
        mark = "ok  " if c.ok else ("--  " if c.optional else "MISSING")
        lines.append(f"  {mark:<7} {c.name:<26} {c.detail}")
        if c.hint and not c.ok:
            lines.append(f"  {'':<7} {'':<26} hint: {c.hint}")
    missing = [c.name for c in checks if not c.ok and not c.optional]
    lines.append("summary: " + ("everything required is there" if not missing
                                else "missing " + ", ".join(missing)))
    return "\n".join(lines)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register ``doctor`` on the CLI's subparsers."""
    p = subparsers.add_parser(
        NAME, help="report Python packages, host compilers and the msp430 toolchain",
        description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--json", action="store_true", help="print the checks as a JSON list")
    return p


def run(args: argparse.Namespace) -> int:
    """Print the report; always returns 0."""
    checks = collect_checks()
    if getattr(args, "json", False):
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        print(render(checks))
    return 0
