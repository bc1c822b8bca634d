"""Shared helpers of the tests in tests/msp430/: find the toolchain, build C for host and target.

Tests that need the msp430-elf toolchain use the ``msp430_tc`` fixture, which skips them with the
reason when no toolchain is found (and only then). Import the fixture into a test module with
``from msp430_testlib import msp430_tc  # noqa: F401``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from transpiler.toolchain import Msp430Toolchain, find_msp430_toolchain_or_none

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "runtime_c"
PLATFORM = RUNTIME / "platform" / "msp430"
HERE = Path(__file__).resolve().parent

MSP430_CFLAGS = ("-mmcu=msp430fr5994", "-O2", "-ffreestanding", "-Wall", "-Wextra", "-Werror",
                 "--param=min-pagesize=0", "-ffunction-sections", "-fdata-sections")
MSP430_LDFLAGS = ("-nostdlib", "-nostartfiles", "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments",
                  "-Wl,--orphan-handling=error")
HOST_CFLAGS = ("-O2", "-std=c99", "-Wall", "-Wextra", "-Werror")


@pytest.fixture(scope="session")
def msp430_tc() -> Msp430Toolchain:
    """The msp430-elf toolchain; skips the test when there is none."""
    tc, reason = find_msp430_toolchain_or_none()
    if tc is None:
        pytest.skip(f"no msp430-elf toolchain: {reason}")
    return tc


def kernel_sources() -> list[Path]:
    """The runtime's portable C files (runtime_c/fx_*.c, not the platform layers)."""
    return sorted(RUNTIME.glob("fx_*.c"))


def run_checked(cmd: Sequence[str], what: str, cwd: Path | None = None) -> str:
    """Run a command; fail the test with its output when it fails. Returns stdout."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd,
                          check=False)
    if proc.returncode != 0:
        pytest.fail(f"{what} failed (exit {proc.returncode}):\n$ {' '.join(map(str, cmd))}\n"
                    f"{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def build_msp430(tc: Msp430Toolchain, sources: Sequence[Path], elf: Path, *,
                 flags: Sequence[str] = (), include_dirs: Sequence[Path] = ()) -> Path:
    """Compile and link ``sources`` with crt0.S, cio.c and fr5994.ld into ``elf``."""
    incs = [f"-I{d}" for d in [*include_dirs, RUNTIME, PLATFORM]]
    srcs = [PLATFORM / "crt0.S", PLATFORM / "cio.c", *sources]
    cmd = [str(tc.gcc), *MSP430_CFLAGS, *flags, *incs, *MSP430_LDFLAGS,
           "-T", str(PLATFORM / "fr5994.ld"), *map(str, srcs), "-lgcc", "-lmul_f5", "-o", str(elf)]
    run_checked(cmd, f"msp430 build of {elf.name}")
    return elf


def host_cc() -> str:
    """The host C compiler (gcc, else cc, else clang); skips when there is none."""
    for cc in ("gcc", "cc", "clang"):
        if shutil.which(cc):
            return cc
    pytest.skip("no host C compiler (gcc/cc/clang)")
    raise AssertionError("unreachable")


def sanitizers_work(cc: str, tmp: Path) -> bool:
    """Whether ``cc -fsanitize=address,undefined`` links and runs here."""
    src = tmp / "san_probe.c"
    src.write_text("int main(void) { return 0; }\n")
    exe = tmp / "san_probe"
    proc = subprocess.run([cc, "-fsanitize=address,undefined", str(src), "-o", str(exe)],
                          capture_output=True, check=False)
    if proc.returncode != 0:
        return False
    return subprocess.run([str(exe)], capture_output=True, check=False).returncode == 0


def build_host(sources: Sequence[Path], exe: Path, *, flags: Sequence[str] = (),
               include_dirs: Sequence[Path] = (), sanitize: bool = False) -> Path:
    """Compile ``sources`` for the host with -Wall -Wextra -Werror (and ASan/UBSan if asked)."""
    cc = host_cc()
    extra = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"] if sanitize else []
    incs = [f"-I{d}" for d in [*include_dirs, RUNTIME]]
    run_checked([cc, *HOST_CFLAGS, *extra, *flags, *incs, *map(str, sources), "-o", str(exe)],
                f"host build of {exe.name}")
    return exe
